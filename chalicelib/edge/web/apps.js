/* The dashboard's Connected apps panel: each app the user allowed to sign them in
 * (GET /me/apps), what it may do (its scopes in plain words), when it was connected
 * and last used, and "Remove access" (DELETE /me/apps/{client_id}), which ends the
 * app's tokens at once; the list is read again after. */

import { $, make } from "./dom.js";
import { onClick } from "./forms.js";
import { deleted } from "./listitems.js";
import { formatTime, problemMessage, showFlash } from "./messages.js";
import { scopeItems } from "./scopes.js";
import { api, generation } from "./session.js";

var appCount = 0; // numbers the DOM ids of list items

export function clearApps() {
  $("app-list").replaceChildren();
  $("app-empty").hidden = true;
  $("apps-error").textContent = "";
}

export async function loadApps() {
  var session = generation;
  var data = await api("GET", "/me/apps");
  if (session !== generation) return;
  $("apps-error").textContent = "";
  $("app-list").replaceChildren.apply($("app-list"), data.apps.map(appItem));
  $("app-empty").hidden = data.apps.length > 0;
}

function appDetails(app) {
  return (
    "Connected " +
    formatTime(app.connected_at) +
    " · " +
    (app.last_used_at ? "last used " + formatTime(app.last_used_at) : "not used yet")
  );
}

function appItem(app) {
  appCount += 1;
  var titleId = "app-title-" + appCount;
  var scopesId = "app-scopes-" + appCount;
  var remove = make("button", {
    type: "button",
    className: "small danger",
    "data-testid": "app-remove",
    "aria-describedby": titleId,
    text: "Remove access",
  });
  var item = make("li", { className: "app", "data-testid": "app-item" }, [
    make("p", { className: "app-title", id: titleId, "data-testid": "app-name", text: app.name }),
    make("p", { className: "small-print", id: scopesId, text: "It can:" }),
    make(
      "ul",
      { className: "scope-list compact", "aria-labelledby": scopesId, "data-testid": "app-scopes" },
      scopeItems(app.scopes),
    ),
    make("p", {
      className: "muted small-print",
      "data-testid": "app-details",
      text: appDetails(app),
    }),
    make("div", { className: "actions" }, [remove]),
  ]);
  onClick(remove, async function () {
    var path = "/me/apps/" + encodeURIComponent(app.client_id);
    var gone = await deleted(path, function (failure) {
      if (!failure.handled) $("apps-error").textContent = problemMessage(failure);
    });
    if (!gone) return;
    var position = Array.prototype.indexOf.call($("app-list").children, item);
    showFlash(app.name + " can no longer use your account.");
    try {
      await loadApps();
    } catch (failure) {
      item.remove(); // removed all the same; the list is read again next time
      if (!failure.handled) $("apps-error").textContent = problemMessage(failure);
    }
    // Focus stays in the panel: on the app now in the removed one's place, else its title.
    var items = $("app-list").children;
    var next = items[Math.min(position, items.length - 1)];
    var button = next && next.querySelector("button");
    (button || $("apps-title")).focus();
  });
  return item;
}

/* The dashboard's sessions panel ("Where you are signed in"): each signed-in device
 * with its browser, times and address, and "Sign out this device" for the others.
 * (session.js is this page's own session: its tokens.) */

import { $, make } from "./dom.js";
import { onClick } from "./forms.js";
import { deleted } from "./listitems.js";
import { formatTime, problemMessage, showFlash } from "./messages.js";
import { api, generation } from "./session.js";

function describeAgent(agent) {
  if (!agent) return "Unknown device";
  var browser = /Edg\//.test(agent)
    ? "Edge"
    : /OPR\//.test(agent)
      ? "Opera"
      : /Firefox\//.test(agent)
        ? "Firefox"
        : /Chrom(e|ium)\//.test(agent)
          ? "Chrome"
          : /Safari\//.test(agent)
            ? "Safari"
            : null;
  var system = /Windows/.test(agent)
    ? "Windows"
    : /Android/.test(agent)
      ? "Android"
      : /iPhone|iPad|iPod/.test(agent)
        ? "iOS"
        : /Mac OS X|Macintosh/.test(agent)
          ? "macOS"
          : /CrOS/.test(agent)
            ? "ChromeOS"
            : /Linux/.test(agent)
              ? "Linux"
              : null;
  if (browser && system) return browser + " on " + system;
  return browser || system || agent.slice(0, 80);
}

export async function loadSessions() {
  var session = generation;
  var data = await api("GET", "/me/sessions");
  if (session !== generation) return;
  $("sessions-error").textContent = "";
  $("session-list").replaceChildren.apply($("session-list"), data.sessions.map(sessionItem));
}

export function clearSessions() {
  $("session-list").replaceChildren();
}

function sessionItem(entry) {
  var titleId = "session-title-" + entry.id;
  var title = make("p", { className: "session-title", id: titleId }, [
    make("span", { text: describeAgent(entry.user_agent), title: entry.user_agent || "" }),
    entry.current
      ? make("span", {
          className: "badge ok",
          "data-testid": "session-current",
          text: "This device",
        })
      : null,
  ]);
  var details = make("p", {
    className: "muted small-print",
    text:
      "Signed in " +
      formatTime(entry.created_at) +
      " · last active " +
      formatTime(entry.last_used_at) +
      (entry.ip ? " · IP " + entry.ip : ""),
  });
  var item = make(
    "li",
    {
      className: entry.current ? "session current" : "session",
      "data-testid": "session-item",
      "data-current": entry.current ? "true" : "false",
    },
    [title, details],
  );
  if (!entry.current) {
    var end = make("button", {
      type: "button",
      className: "small",
      "data-testid": "session-end",
      "aria-describedby": titleId,
      text: "Sign out this device",
    });
    onClick(end, async function () {
      var path = "/me/sessions/" + encodeURIComponent(entry.id);
      var gone = await deleted(path, function (failure) {
        if (!failure.handled) $("sessions-error").textContent = problemMessage(failure);
      });
      if (!gone) return;
      var next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      showFlash("That device has been signed out.");
      var button = next && next.querySelector("button");
      (button || $("sessions-title")).focus();
    });
    item.append(make("div", { className: "actions" }, [end]));
  }
  return item;
}

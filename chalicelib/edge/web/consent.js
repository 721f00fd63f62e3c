/* The consent screen of an app's sign-in request: which app asks (its name, as text
 * only: the operator typed it), for which account, what it will be able to do (each
 * scope in plain words), where the browser goes next, and Allow or Deny. What a choice
 * does is authorize.js's: it hands showConsent the function that decides. */

import { $ } from "./dom.js";
import { onClick, setError } from "./forms.js";
import { problemMessage } from "./messages.js";
import { scopeItems } from "./scopes.js";
import { showView } from "./views.js";

var decide = null; // the request on screen: decide("allow" | "deny")
var deciding = false; // one decision at a time: a request is decided once

/* Where the browser goes after the decision, as a person recognises it: a web app's
 * origin (its scheme, host and port), or the whole URI for an app's own scheme. */
function destination(redirectUri) {
  try {
    var url = new URL(redirectUri);
    return /^https?:$/.test(url.protocol) ? url.origin : redirectUri;
  } catch (err) {
    return redirectUri;
  }
}

export function showConsent(described, username, decideRequest) {
  decide = decideRequest;
  $("consent-app").textContent = described.client.name;
  $("consent-user").textContent = username || "";
  $("consent-account").hidden = !username;
  $("consent-scopes").replaceChildren.apply($("consent-scopes"), scopeItems(described.scopes));
  $("consent-return").textContent = destination(described.redirect_uri);
  showView("consent"); // focus on the heading: it names the app
}

function choose(decision) {
  return async function () {
    if (!decide || deciding) return;
    deciding = true;
    $("consent-error").replaceChildren();
    try {
      await decide(decision);
    } catch (error) {
      if (!error.handled) setError($("consent-error"), [problemMessage(error)]);
    } finally {
      deciding = false;
    }
  };
}

onClick($("consent-allow"), choose("allow"));
onClick($("consent-deny"), choose("deny"));

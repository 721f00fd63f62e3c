/* An app's sign-in request (OAuth authorization): GET /oauth2/authorize sends the
 * browser here with ?request_id=<id>. The id is read once and taken out of the address
 * (a reload or a bookmark must not reuse it). Once signed in, the page asks the API
 * what the request wants (GET /oauth2/requests/{id}) and then: a fresh sign-in first
 * when the app asked for one (prompt=login, max_age), an answer at once when the user
 * allowed these scopes to this app before, else the consent screen. The decision
 * (POST, "allow" or "deny") answers with the URL that takes the browser back to the
 * app. continueSignedIn() is where every sign-in lands: this request if there is one,
 * else the dashboard. */

import { showConsent } from "./consent.js";
import { enterDashboard } from "./dashboard.js";
import { $ } from "./dom.js";
import { onClick } from "./forms.js";
import { problemMessage } from "./messages.js";
import { loadProfile, signedInUsername } from "./profile.js";
import { api, generation } from "./session.js";
import { showView } from "./views.js";

// The request this page is working on: { id, client, staleSession }, or null.
var pending = null;

function requestPath(request) {
  return "/oauth2/requests/" + encodeURIComponent(request.id);
}

/* Why the log-in screen shows, while a request waits (text only: an app's name). */
function setLoginContext(text) {
  $("login-context").textContent = text || "";
  $("login-context").hidden = !text;
}

function finish() {
  pending = null;
  setLoginContext(null);
}

/* Read ``request_id`` from the address (the query, or a #request_id= fragment) and
 * take it out with history.replaceState; true if there was one. */
export function takeAuthorizationRequest() {
  var params = new URLSearchParams(location.search);
  var id = params.get("request_id");
  var hash = location.hash;
  var inHash = /^#request_id=([^&]+)$/.exec(hash);
  if (!id && inHash) {
    try {
      id = decodeURIComponent(inHash[1]);
    } catch (err) {
      id = inHash[1];
    }
    hash = "";
  }
  if (!id) return false;
  params.delete("request_id");
  var query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + hash);
  pending = { id: id, client: null, staleSession: null };
  setLoginContext("An app asks you to sign in with your Gatehouse account. Log in to continue.");
  return true;
}

/* Signed in (a refreshed session, or a sign-in just now): the app's request, if one
 * waits, else the dashboard. */
export async function continueSignedIn() {
  var request = pending;
  if (!request) {
    await enterDashboard();
    return;
  }
  var session = generation;
  showView("loading", { focus: false });
  if (request.staleSession) await endStaleSession(request);
  var described;
  try {
    var answers = await Promise.all([
      api("GET", requestPath(request)),
      // Only for "Signed in as" and the username of a fresh sign-in: never fatal.
      loadProfile().catch(function () {}),
    ]);
    described = answers[0];
  } catch (error) {
    if (session === generation && pending === request) requestFailed(request, error);
    return;
  }
  if (session !== generation || pending !== request) return;
  request.client = described.client;
  if (described.reauthenticate) {
    await askToSignInAgain(request);
  } else if (described.remembered) {
    // Allowed before, with these scopes: no need to ask again.
    try {
      await decide(request, "allow");
    } catch (error) {
      if (!error.handled) requestFailed(request, error);
    }
  } else {
    showConsent(described, signedInUsername(), function (decision) {
      return decide(request, decision);
    });
  }
}

/* The app wants a sign-in newer than this session's: the log-in screen, with the
 * username filled in. The session that is replaced is remembered, and ended once the
 * new one has started, so each prompt=login does not leave a device behind in
 * "Where you are signed in". */
async function askToSignInAgain(request) {
  var session = generation;
  if (!request.staleSession) {
    try {
      var listed = await api("GET", "/me/sessions");
      var current = listed.sessions.filter(function (entry) {
        return entry.current;
      })[0];
      request.staleSession = current ? current.id : null;
    } catch (error) {
      request.staleSession = null; // not worth failing the sign-in for
    }
    if (session !== generation || pending !== request) return;
  }
  setLoginContext(request.client.name + " asks you to sign in again to confirm it is you.");
  showView("login", { focus: false });
  var username = signedInUsername();
  if (username) {
    $("login-username").value = username;
    $("login-password").focus();
  } else {
    $("login-username").focus();
  }
}

async function endStaleSession(request) {
  var stale = request.staleSession;
  request.staleSession = null;
  try {
    await api("DELETE", "/me/sessions/" + encodeURIComponent(stale));
  } catch (error) {
    // Already gone, or the server is busy: it expires on its own.
  }
}

/* POST the decision; then the browser goes where the API says (the app's redirect URI,
 * with a code or error=access_denied). A request that is gone, or that wants a fresh
 * sign-in, changes the screen; any other failure is thrown to the caller. */
async function decide(request, decision) {
  var session = generation;
  var answer;
  try {
    answer = await api("POST", requestPath(request), { decision: decision });
  } catch (error) {
    if (session !== generation || pending !== request) {
      error.handled = true;
    } else if (error.status === 401 && error.code === "login_required") {
      error.handled = true;
      await askToSignInAgain(request);
    } else if (error.status === 404) {
      error.handled = true;
      requestFailed(request, error);
    }
    throw error;
  }
  finish();
  $("returning-app").textContent = request.client.name;
  showView("returning");
  window.location.assign(answer.redirect_to);
}

/* The request cannot go on: gone (404: it expired after 10 minutes, or it was already
 * answered), or the server could not answer (try again). */
function requestFailed(request, error) {
  if (error.handled) return;
  var gone = error.status === 404;
  if (gone) finish();
  $("request-title").textContent = gone
    ? "This sign-in request has ended"
    : "The app's sign-in request could not be loaded";
  $("request-message").textContent = gone
    ? "It has expired (an app's request lasts 10 minutes) or has already been answered. " +
      "Go back to the app and sign in from there again."
    : problemMessage(error);
  $("request-retry").hidden = gone;
  showView("request");
}

onClick($("request-retry"), continueSignedIn);

onClick($("request-dashboard"), async function () {
  finish();
  await enterDashboard();
});

/* Gatehouse web page: register, log in (password or passkey), and a dashboard (profile,
 * to-dos, sessions, passkeys).
 *
 * Plain JavaScript modules, no build step, served under a strict Content-Security-Policy
 * (no inline script or style), so everything is wired with addEventListener and every
 * piece of user data is written with textContent, never parsed as HTML.
 *
 * This is the entry that index.html loads: it imports every screen, wires the links
 * between the screens, and starts the page (a link from a mail, else the session the
 * refresh cookie still holds, else the log-in screen). An app's sign-in request
 * (?request_id=, from GET /oauth2/authorize) is taken from the address first, and is
 * where the session goes once there is one (authorize.js).
 */

import { continueSignedIn, takeAuthorizationRequest } from "./authorize.js";
import { $ } from "./dom.js";
import { problemMessage, showAlert } from "./messages.js";
import { followHashLink } from "./recovery.js";
import { accessToken, refreshSession } from "./session.js";
import { currentView, goTo, showView } from "./views.js";

// Screens and panels that only wire their own forms and buttons.
import "./login.js";
import "./passkey-login.js";
import "./password.js";
import "./register.js";

// ------------------------------------------------------------------ navigation

$("go-register").addEventListener("click", goTo("register", "register-username"));
$("go-forgot").addEventListener("click", goTo("forgot", "forgot-email"));
$("register-go-login").addEventListener("click", goTo("login", "login-username"));
$("forgot-go-login").addEventListener("click", goTo("login", "login-username"));
$("reset-go-login").addEventListener("click", function () {
  if (accessToken) continueSignedIn();
  else goTo("login", "login-username")();
});
$("reset-go-forgot").addEventListener("click", goTo("forgot", "forgot-email"));
$("verify-continue").addEventListener("click", function () {
  if (accessToken) continueSignedIn();
  else startSession();
});

// ------------------------------------------------------------------ start

async function startSession() {
  showView("loading", { focus: false });
  var outcome = await refreshSession();
  if (currentView() !== "loading") return; // the user moved on meanwhile
  if (outcome === "ok") {
    await continueSignedIn();
    return;
  }
  showView("login", { focus: false });
  if (outcome !== "ended") showAlert(problemMessage(outcome));
}

takeAuthorizationRequest();
if (!followHashLink()) startSession();

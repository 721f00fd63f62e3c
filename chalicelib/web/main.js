/* Gatehouse web page: register, log in (password or passkey), and a dashboard (profile,
 * to-dos, sessions, passkeys).
 *
 * Plain JavaScript, no build step, served under a strict Content-Security-Policy (no
 * inline script or style), so everything here is wired with addEventListener and every
 * piece of user data is written with textContent, never parsed as HTML.
 */

import { send } from "./api.js";
import { clearSession, enterDashboard } from "./dashboard.js";
import { $ } from "./dom.js";
import { clearErrors, missing, onClick, onSubmit, setError, showProblem } from "./forms.js";
import { clearMessages, problemMessage, showAlert, showFlash } from "./messages.js";
import { accessToken, beginSession, refreshSession } from "./session.js";
import { currentView, goTo, showView, whenViewShown } from "./views.js";
import {
  authenticationJSON,
  conditionalAvailable,
  passkeyMessage,
  passkeysSupported,
  requestOptions,
} from "./webauthn.js";

// Panels and screens that only wire their own forms and buttons.
import "./password.js";

// ------------------------------------------------------------------ state

var resetToken = null;

// ------------------------------------------------------------------ log in

function hideTotp() {
  $("login-totp-group").hidden = true;
  $("login-totp").value = "";
}

/* A token pair from /login or /passkeys/login: the session starts, the form forgets. */
async function signedIn(pair) {
  beginSession(pair);
  $("login-form").reset();
  hideTotp();
  $("passkey-login-error").textContent = "";
  await enterDashboard();
}

onSubmit("login-form", async function () {
  clearMessages();
  $("passkey-login-error").textContent = "";
  var username = $("login-username").value.trim();
  var password = $("login-password").value;
  var needsCode = !$("login-totp-group").hidden;
  var code = $("login-totp").value.replace(/\s+/g, "");
  if (
    missing([
      ["login-username", username, "Enter your username or email."],
      ["login-password", password, "Enter your password."],
      needsCode && ["login-totp", code, "Enter the code from your authenticator app."],
    ])
  ) {
    return;
  }
  var body = { username: username, password: password, refresh_cookie: true };
  if (needsCode) body.totp_code = code;
  try {
    await signedIn(await send("POST", "/login", body));
  } catch (error) {
    if (error.code === "mfa_required") {
      $("login-totp-group").hidden = false;
      setError($("login-error"), [
        "Two-factor authentication is on for this account: enter your code to continue.",
      ]);
      $("login-totp").focus();
      return;
    }
    if (needsCode) $("login-totp").value = "";
    showProblem(error, {
      fields: { username: "login-username", password: "login-password", totp_code: "login-totp" },
      formError: "login-error",
      messages: needsCode
        ? { invalid_credentials: "The code, username or password is incorrect." }
        : null,
    });
  }
});

$("login-username").addEventListener("input", hideTotp);

// ------------------------------------------------------------------ register

onSubmit("register-form", async function (form) {
  clearMessages();
  var username = $("register-username").value.trim();
  var email = $("register-email").value.trim();
  var displayName = $("register-display-name").value.trim();
  var password = $("register-password").value;
  if (
    missing([
      ["register-username", username, "Choose a username."],
      ["register-password", password, "Choose a password."],
      [
        "register-email",
        !email || $("register-email").validity.valid,
        "Enter a valid email address.",
      ],
    ])
  ) {
    return;
  }
  var body = { username: username, password: password };
  if (email) body.email = email;
  if (displayName) body.display_name = displayName;
  try {
    var created = await send("POST", "/register", body);
    form.reset();
    showView("login", { focus: false });
    $("login-username").value = created.user.username;
    $("login-password").focus();
    showFlash(
      "Your account has been created. Log in to continue." +
        (created.user.email ? " We have sent a verification link to your email address." : ""),
    );
  } catch (error) {
    showProblem(error, {
      fields: {
        username: "register-username",
        email: "register-email",
        display_name: "register-display-name",
        password: "register-password",
        username_taken: "register-username",
        email_taken: "register-email",
      },
      formError: "register-error",
    });
  }
});

// ------------------------------------------------------------------ forgot / reset / verify

onSubmit("forgot-form", async function () {
  $("forgot-done").textContent = "";
  var email = $("forgot-email").value.trim();
  if (missing([["forgot-email", email, "Enter your email address."]])) return;
  try {
    await send("POST", "/password/forgot", { email: email });
    // The same words whether or not the address has an account.
    $("forgot-done").textContent =
      "If that address belongs to an account, a reset link is on its way. Check your inbox.";
  } catch (error) {
    showProblem(error, { fields: { email: "forgot-email" }, formError: "forgot-error" });
  }
});

onSubmit("reset-form", async function (form) {
  var password = $("reset-password").value;
  if (missing([["reset-password", password, "Choose a new password."]])) return;
  try {
    await send("POST", "/password/reset", { token: resetToken, new_password: password });
    resetToken = null;
    form.reset();
    clearSession(); // every session has ended, this browser's too
    showView("login", { focus: false });
    $("login-username").focus();
    showFlash("Your password has been changed. Log in with your new password.");
  } catch (error) {
    showProblem(error, {
      fields: { password: "reset-password", new_password: "reset-password" },
      formError: "reset-error",
      messages: {
        invalid_token:
          "This reset link is invalid, has expired or has already been used. Request a new one.",
      },
    });
  }
});

async function verifyEmail(token) {
  showView("verify");
  var result = $("verify-result");
  result.textContent = "Verifying your email address…";
  try {
    await send("POST", "/email/verify", { token: token });
    result.textContent = "Thank you: your email address is verified.";
  } catch (error) {
    result.textContent =
      error.code === "invalid_token"
        ? "This verification link is invalid, has expired or has already been used. " +
          "Log in and ask for a new one from your dashboard."
        : problemMessage(error);
  }
}

/* ``#reset=<token>`` and ``#verify=<token>`` come from the emails. The hash is cleared
 * at once, so the token stays out of the history and any later screen. */
function takeHashLink() {
  var match = /^#(reset|verify)=([^&]+)$/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, "", location.pathname + location.search);
  var token;
  try {
    token = decodeURIComponent(match[2]);
  } catch (err) {
    token = match[2];
  }
  return { kind: match[1], token: token };
}

function followHashLink() {
  var link = takeHashLink();
  if (!link) return false;
  if (link.kind === "reset") {
    resetToken = link.token;
    showView("reset");
  } else {
    verifyEmail(link.token);
  }
  return true;
}

window.addEventListener("hashchange", followHashLink);

// ------------------------------------------------------------------ navigation

$("go-register").addEventListener("click", goTo("register", "register-username"));
$("go-forgot").addEventListener("click", goTo("forgot", "forgot-email"));
$("register-go-login").addEventListener("click", goTo("login", "login-username"));
$("forgot-go-login").addEventListener("click", goTo("login", "login-username"));
$("reset-go-login").addEventListener("click", function () {
  if (accessToken) enterDashboard();
  else goTo("login", "login-username")();
});
$("reset-go-forgot").addEventListener("click", goTo("forgot", "forgot-email"));
$("verify-continue").addEventListener("click", function () {
  if (accessToken) enterDashboard();
  else startSession();
});

var PASSKEY_LOGIN_MESSAGES = {
  invalid_credentials:
    "That passkey was not accepted: it may have been removed from your account. " +
    "Log in with your password instead.",
};

// ------------------------------------------------------------------ passkeys: sign in

/* One sign-in ceremony: the server's challenge (for ``username`` when given, else for
 * whichever passkey the browser offers), then the authenticator's signature over it. */
async function passkeyAssertion(username, extra) {
  var answer = await send("POST", "/passkeys/options", username ? { username: username } : {});
  if (extra && extra.signal && extra.signal.aborted) throw extra.signal.reason;
  var request = Object.assign({ publicKey: requestOptions(answer.options) }, extra);
  return authenticationJSON(await navigator.credentials.get(request));
}

async function passkeyLogin(credential) {
  var errorLine = $("passkey-login-error");
  errorLine.textContent = "";
  try {
    await signedIn(
      await send("POST", "/passkeys/login", { credential: credential, refresh_cookie: true }),
    );
  } catch (error) {
    errorLine.textContent = passkeyMessage(error, false, PASSKEY_LOGIN_MESSAGES);
  }
}

/* Autofill (conditional mediation): while the log-in screen shows, a background request
 * lets the browser offer its passkeys under the username field. A browser allows one
 * WebAuthn request at a time, so it is aborted, and its end awaited, before any other
 * passkey request and when the screen is left. Its challenge lives five minutes on the
 * server, so it is renewed before then. A passkey the server refused is not offered
 * again until the screen is next shown: autofill would only present it once more. */
var AUTOFILL_RENEW_MS = 4 * 60 * 1000;
var autofill = null;

function startAutofill() {
  if (autofill || !passkeysSupported) return;
  var run = { controller: new AbortController(), timer: null };
  autofill = run;
  run.done = runAutofill(run).finally(function () {
    clearTimeout(run.timer);
    if (autofill === run) autofill = null;
  });
}

function stopAutofill() {
  var run = autofill;
  if (!run) return Promise.resolve();
  autofill = null;
  run.controller.abort();
  return run.done;
}

async function runAutofill(run) {
  if (!(await conditionalAvailable()) || autofill !== run) return;
  $("login-username").setAttribute("autocomplete", "username webauthn");
  run.timer = setTimeout(function () {
    if (autofill === run) stopAutofill().then(startAutofill);
  }, AUTOFILL_RENEW_MS);
  var credential;
  try {
    credential = await passkeyAssertion(null, {
      mediation: "conditional",
      signal: run.controller.signal,
    });
  } catch (error) {
    return; // aborted, or no autofill here: the button still works
  }
  if (autofill !== run) return;
  autofill = null; // spent: nothing left to abort
  await passkeyLogin(credential);
}

onClick($("passkey-login"), async function () {
  clearMessages();
  $("passkey-login-error").textContent = "";
  await stopAutofill();
  var credential;
  try {
    credential = await passkeyAssertion(null);
  } catch (error) {
    $("passkey-login-error").textContent = passkeyMessage(error, false);
    if (currentView() === "login") startAutofill();
    return;
  }
  await passkeyLogin(credential);
});

/* MFA prompt after a correct password: a passkey of this account in place of the code. */
onClick($("login-mfa-passkey"), async function () {
  var form = $("login-form");
  clearErrors(form);
  var username = $("login-username").value.trim();
  var password = $("login-password").value;
  if (
    missing([
      ["login-username", username, "Enter your username or email."],
      ["login-password", password, "Enter your password."],
    ])
  ) {
    return;
  }
  await stopAutofill();
  try {
    var passkey = await passkeyAssertion(username);
    await signedIn(
      await send("POST", "/login", {
        username: username,
        password: password,
        passkey: passkey,
        refresh_cookie: true,
      }),
    );
  } catch (error) {
    setError($("login-error"), [
      passkeyMessage(error, false, {
        invalid_credentials: "The passkey, username or password was not accepted.",
      }),
    ]);
  }
});

$("passkey-signin").hidden = !passkeysSupported;
$("login-mfa-passkey").hidden = !passkeysSupported;

// Passkey autofill runs while the log-in screen shows, and only then.
whenViewShown(function (name) {
  if (name === "login") {
    $("passkey-login-error").textContent = "";
    startAutofill();
  } else {
    stopAutofill();
  }
});

// ------------------------------------------------------------------ start

async function startSession() {
  showView("loading", { focus: false });
  var outcome = await refreshSession();
  if (currentView() !== "loading") return; // the user moved on meanwhile
  if (outcome === "ok") {
    await enterDashboard();
    return;
  }
  showView("login", { focus: false });
  if (outcome !== "ended") showAlert(problemMessage(outcome));
}

if (!followHashLink()) startSession();

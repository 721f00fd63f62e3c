/* Signing in with a passkey on the log-in screen: the "Sign in with a passkey" button,
 * the browser's autofill (conditional mediation) while the screen shows, and "Use a
 * passkey instead" of the code at the MFA prompt. */

import { send } from "./api.js";
import { $ } from "./dom.js";
import { clearErrors, missing, onClick, setError } from "./forms.js";
import { signedIn } from "./login.js";
import { clearMessages } from "./messages.js";
import { currentView, whenViewShown } from "./views.js";
import {
  authenticationJSON,
  conditionalAvailable,
  passkeyMessage,
  passkeysSupported,
  requestOptions,
} from "./webauthn.js";

var PASSKEY_LOGIN_MESSAGES = {
  invalid_credentials:
    "That passkey was not accepted: it may have been removed from your account. " +
    "Log in with your password instead.",
};

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

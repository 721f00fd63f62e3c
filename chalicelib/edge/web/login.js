/* The log-in screen's password form: username or email and password, then the code
 * from the authenticator app when the API says mfa_required; and signedIn(), where every
 * way of logging in (passkeys too) starts the session and goes on: to the app's sign-in
 * request that brought the user here, else to the dashboard. */

import { send } from "./api.js";
import { continueSignedIn } from "./authorize.js";
import { $ } from "./dom.js";
import { missing, onSubmit, setError, showProblem } from "./forms.js";
import { clearMessages } from "./messages.js";
import { beginSession } from "./session.js";

function hideTotp() {
  $("login-totp-group").hidden = true;
  $("login-totp").value = "";
}

/* A token pair from /login or /passkeys/login: the session starts, the form forgets. */
export async function signedIn(pair) {
  beginSession(pair);
  $("login-form").reset();
  hideTotp();
  $("passkey-login-error").textContent = "";
  await continueSignedIn();
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

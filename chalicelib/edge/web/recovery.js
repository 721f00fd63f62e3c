/* Getting back into an account: the forgot-password form, the reset form, and email
 * verification, which the mails' links (#reset=<token>, #verify=<token>) open. */

import { send } from "./api.js";
import { clearSession } from "./dashboard.js";
import { $ } from "./dom.js";
import { missing, onSubmit, showProblem } from "./forms.js";
import { problemMessage, showFlash } from "./messages.js";
import { showView } from "./views.js";

var resetToken = null;

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

export function followHashLink() {
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

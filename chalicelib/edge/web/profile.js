/* The dashboard's profile panel and greeting: the account as GET /me returns it (name,
 * email and its verification state, whether MFA is on), "resend" for the verification
 * link, and the display name. */

import { $ } from "./dom.js";
import { onClick, onSubmit, showProblem } from "./forms.js";
import { problemMessage, showAlert, showFlash } from "./messages.js";
import { api } from "./session.js";

var user = null;

export async function loadProfile() {
  renderUser(await api("GET", "/me"));
}

/* The username of the signed-in account, once GET /me has answered (else null). */
export function signedInUsername() {
  return user ? user.username : null;
}

export function clearProfile() {
  user = null;
  ["profile-username", "profile-display-name", "profile-email", "profile-email-status"].forEach(
    function (id) {
      $(id).textContent = "";
    },
  );
  $("dashboard-title").textContent = "Your dashboard";
  $("signed-in-as").textContent = "";
  $("signed-in-as").hidden = true;
}

function renderUser(data) {
  user = data;
  var shownName = data.display_name || data.username;
  $("dashboard-title").textContent = "Hello, " + shownName;
  $("signed-in-as").textContent = "Signed in as " + data.username;
  $("signed-in-as").hidden = false;
  $("profile-username").textContent = data.username;
  $("profile-display-name").textContent = data.display_name || "(none)";
  $("profile-email").textContent = data.email || "(none)";
  var status = $("profile-email-status");
  status.textContent = data.email ? (data.email_verified ? "Verified" : "Not verified") : "";
  status.className = data.email ? (data.email_verified ? "badge ok" : "badge warn") : "badge";
  $("resend-verification").hidden = !data.email || data.email_verified;
  $("display-name-input").value = data.display_name || "";
  // Adding a passkey asks for the second factor too when the account has one.
  $("passkey-totp-group").hidden = !data.mfa_enabled;
}

onClick($("resend-verification"), async function () {
  try {
    await api("POST", "/me/email/verification");
    showFlash("A new verification link is on its way to " + (user ? user.email : "you") + ".");
  } catch (error) {
    if (!error.handled) showAlert(problemMessage(error));
  }
});

onSubmit("display-name-form", async function () {
  var value = $("display-name-input").value.trim();
  try {
    renderUser(await api("PATCH", "/me", { display_name: value }));
    showFlash(value ? "Your display name is saved." : "Your display name is cleared.");
  } catch (error) {
    showProblem(error, {
      fields: { display_name: "display-name-input" },
      formError: "display-name-error",
    });
  }
});

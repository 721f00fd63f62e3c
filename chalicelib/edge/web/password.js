/* The dashboard's Change password panel: the current password and a new one; the other
 * devices are signed out, so the sessions panel is read again. */

import { $ } from "./dom.js";
import { missing, onSubmit, showProblem } from "./forms.js";
import { showFlash } from "./messages.js";
import { api } from "./session.js";
import { loadSessions } from "./sessions.js";

onSubmit("password-form", async function (form) {
  var current = $("password-current").value;
  var next = $("password-new").value;
  if (
    missing([
      ["password-current", current, "Enter your current password."],
      ["password-new", next, "Choose a new password."],
    ])
  ) {
    return;
  }
  try {
    await api("POST", "/me/password", { current_password: current, new_password: next });
    form.reset();
    showFlash("Your password has been changed. Your other devices have been signed out.");
    loadSessions().catch(function () {});
  } catch (error) {
    showProblem(error, {
      fields: {
        current_password: "password-current",
        invalid_credentials: "password-current",
        new_password: "password-new",
        password: "password-new",
      },
      formError: "password-error",
      messages: { invalid_credentials: "Your current password is incorrect." },
    });
  }
});

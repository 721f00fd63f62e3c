/* The register screen: a new account (username, password, optional email and display
 * name), each field error the API returns next to its field, then the log-in screen. */

import { send } from "./api.js";
import { $ } from "./dom.js";
import { missing, onSubmit, showProblem } from "./forms.js";
import { clearMessages, showFlash } from "./messages.js";
import { showView } from "./views.js";

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

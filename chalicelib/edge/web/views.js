/* The screens: one shows at a time (showView: its title, focus and document title, no
 * stale messages or field errors), and whenViewShown lets a screen start and stop what
 * runs only while it shows. */

import { $ } from "./dom.js";
import { clearErrors } from "./forms.js";
import { clearMessages } from "./messages.js";

var TITLES = {
  loading: "Loading",
  login: "Log in",
  register: "Create an account",
  forgot: "Forgot password",
  reset: "Choose a new password",
  verify: "Email verification",
  dashboard: "Dashboard",
  consent: "Allow access",
  returning: "Returning to the app",
  request: "Sign-in request",
};

var VIEWS = Object.keys(TITLES);

export function showView(name, options) {
  var focus = !options || options.focus !== false;
  VIEWS.forEach(function (view) {
    $("view-" + view).hidden = view !== name;
  });
  clearMessages();
  $("view-" + name)
    .querySelectorAll("form")
    .forEach(clearErrors);
  document.title = TITLES[name] + " · Gatehouse";
  if (focus) $(name + "-title").focus();
  shownListeners.forEach(function (listener) {
    listener(name);
  });
}

// Called with the name of every screen shown: what runs on one screen only starts and
// stops there (the passkey autofill of the log-in screen).
var shownListeners = [];

export function whenViewShown(listener) {
  shownListeners.push(listener);
}

export function currentView() {
  var shown = VIEWS.filter(function (view) {
    return !$("view-" + view).hidden;
  });
  return shown[0];
}

export function goTo(name, focusId) {
  return function () {
    showView(name, { focus: !focusId });
    if (focusId) $(focusId).focus();
  };
}

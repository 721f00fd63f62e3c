/* The dashboard as a whole: entering it (every panel loaded at once), leaving it (log
 * out, sign out everywhere, a session lost) with nothing of the account left behind. */

import { clearApps, loadApps } from "./apps.js";
import { $ } from "./dom.js";
import { clearErrors, onClick } from "./forms.js";
import { problemMessage, showAlert, showFlash } from "./messages.js";
import { clearPasskeys, loadPasskeys } from "./passkeys.js";
import { clearProfile, loadProfile } from "./profile.js";
import { api, endSession, generation, whenSessionLost } from "./session.js";
import { clearSessions, loadSessions } from "./sessions.js";
import { clearTodos, loadTodos } from "./todos.js";
import { showView } from "./views.js";

/* The session is over: nothing of its account stays on the page. */
export function clearSession() {
  endSession();
  clearProfile();
  clearTodos();
  clearSessions();
  clearPasskeys();
  clearApps();
  document.querySelectorAll("#view-dashboard form").forEach(function (form) {
    form.reset();
    clearErrors(form);
  });
}

function sessionLost(message) {
  clearSession();
  showView("login");
  showAlert(message || "Your session has ended. Please log in again.");
}

whenSessionLost(sessionLost);

export async function enterDashboard() {
  var session = generation;
  showView("dashboard", { focus: false });
  var loaded = await Promise.allSettled([
    loadProfile(),
    loadTodos(true),
    loadSessions(),
    loadPasskeys(),
    loadApps(),
  ]);
  if (session !== generation) return;
  var failed = loaded.filter(function (outcome) {
    return outcome.status === "rejected" && !outcome.reason.handled;
  });
  if (failed.length) showAlert(problemMessage(failed[0].reason));
  // Never steal focus from someone who started using a panel while the others loaded.
  var active = document.activeElement;
  if (!active || active === document.body) $("dashboard-title").focus();
}

onClick($("logout"), async function () {
  try {
    await api("POST", "/logout");
  } catch (error) {
    // Signed out already, or the server is unreachable: forget the session here anyway.
  }
  clearSession();
  showView("login", { focus: false });
  $("login-username").focus();
  showFlash("You have logged out.");
});

onClick($("logout-all"), async function () {
  try {
    await api("POST", "/logout/all");
  } catch (error) {
    if (!error.handled) showAlert(problemMessage(error));
    return;
  }
  clearSession();
  showView("login", { focus: false });
  $("login-username").focus();
  showFlash("You have been signed out on every device.");
});

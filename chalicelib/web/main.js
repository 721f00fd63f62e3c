/* Gatehouse web page: register, log in (password or passkey), and a dashboard (profile,
 * to-dos, sessions, passkeys).
 *
 * Plain JavaScript, no build step, served under a strict Content-Security-Policy (no
 * inline script or style), so everything here is wired with addEventListener and every
 * piece of user data is written with textContent, never parsed as HTML.
 */

import { send } from "./api.js";
import { $, make } from "./dom.js";
import {
  clearErrors,
  markInvalid,
  missing,
  onClick,
  onSubmit,
  setError,
  showProblem,
} from "./forms.js";
import { deleted, onEscape, textEditor } from "./listitems.js";
import { clearMessages, formatTime, problemMessage, showAlert, showFlash } from "./messages.js";
import {
  accessToken,
  api,
  beginSession,
  endSession,
  generation,
  refreshSession,
  whenSessionLost,
} from "./session.js";
import { currentView, goTo, showView, whenViewShown } from "./views.js";
import {
  authenticationJSON,
  conditionalAvailable,
  creationOptions,
  passkeyMessage,
  passkeysSupported,
  registrationJSON,
  requestOptions,
} from "./webauthn.js";

var PAGE_SIZE = 20;

// ------------------------------------------------------------------ state

var user = null;
var todoCursor = null;
var todoNodes = new Map();
var resetToken = null;

function clearSession() {
  endSession();
  user = null;
  todoCursor = null;
  todoNodes.clear();
  $("todo-list").replaceChildren();
  $("session-list").replaceChildren();
  $("passkey-list").replaceChildren();
  $("passkey-empty").hidden = true;
  $("passkey-totp-group").hidden = true;
  $("todo-more").hidden = true;
  $("todo-empty").hidden = true;
  ["profile-username", "profile-display-name", "profile-email", "profile-email-status"].forEach(
    function (id) {
      $(id).textContent = "";
    },
  );
  $("dashboard-title").textContent = "Your dashboard";
  $("signed-in-as").textContent = "";
  $("signed-in-as").hidden = true;
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

// ------------------------------------------------------------------ dashboard

async function enterDashboard() {
  var session = generation;
  showView("dashboard", { focus: false });
  var loaded = await Promise.allSettled([
    loadProfile(),
    loadTodos(true),
    loadSessions(),
    loadPasskeys(),
  ]);
  if (session !== generation) return;
  var failed = loaded.filter(function (outcome) {
    return outcome.status === "rejected" && !outcome.reason.handled;
  });
  if (failed.length) showAlert(problemMessage(failed[0].reason));
  $("dashboard-title").focus();
}

async function loadProfile() {
  renderUser(await api("GET", "/me"));
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

// ------------------------------------------------------------------ list items

// ------------------------------------------------------------------ inline editing

// ------------------------------------------------------------------ to-dos

var todoStatus = make("p", { className: "visually-hidden", role: "status", id: "todo-status" });
$("todo-list").after(todoStatus);

function announce(text) {
  todoStatus.textContent = text;
}

function updateTodoEmpty() {
  $("todo-empty").hidden = todoNodes.size > 0;
}

async function loadTodos(fromStart) {
  var path = "/todos?limit=" + PAGE_SIZE;
  if (!fromStart && todoCursor) path += "&cursor=" + encodeURIComponent(todoCursor);
  var session = generation;
  var page = await api("GET", path);
  if (session !== generation) return;
  if (fromStart) {
    todoNodes.clear();
    $("todo-list").replaceChildren();
  }
  page.items.forEach(function (todo) {
    if (!todoNodes.has(todo.id)) {
      var node = todoItem(todo);
      todoNodes.set(todo.id, node);
      $("todo-list").append(node);
    }
  });
  todoCursor = page.next_cursor || null;
  $("todo-more").hidden = !todoCursor;
  updateTodoEmpty();
}

onClick($("todo-more"), async function () {
  var before = todoNodes.size;
  try {
    await loadTodos(false);
    announce(todoNodes.size - before + " more to-dos loaded.");
    if ($("todo-more").hidden) $("todo-text").focus();
  } catch (error) {
    if (!error.handled) showAlert(problemMessage(error));
  }
});

onSubmit("todo-form", async function () {
  var input = $("todo-text");
  var text = input.value.trim();
  if (missing([["todo-text", text, "Write something to do first."]])) return;
  try {
    var todo = await api("POST", "/todos", { text: text });
    var node = todoItem(todo);
    todoNodes.set(todo.id, node);
    $("todo-list").prepend(node);
    updateTodoEmpty();
    input.value = "";
    input.focus();
    announce("Added: " + todo.text);
  } catch (error) {
    showProblem(error, { fields: { text: "todo-text" }, formError: "todo-text-error" });
  }
});

function todoItem(todo) {
  var id = todo.id;
  var checkId = "todo-check-" + id;
  var labelId = "todo-label-" + id;
  var item = make("li", {
    className: todo.completed ? "todo done" : "todo",
    "data-id": id,
    "data-testid": "todo-item",
    "data-completed": todo.completed ? "true" : "false",
  });
  var check = make("input", {
    type: "checkbox",
    id: checkId,
    "data-testid": "todo-toggle",
  });
  check.checked = Boolean(todo.completed);
  var label = make("label", {
    for: checkId,
    id: labelId,
    className: "todo-text",
    "data-testid": "todo-text",
    text: todo.text,
  });
  var edit = make("button", {
    type: "button",
    className: "small",
    "data-testid": "todo-edit",
    "aria-describedby": labelId,
    text: "Edit",
  });
  var remove = make("button", {
    type: "button",
    className: "small danger",
    "data-testid": "todo-delete",
    "aria-describedby": labelId,
    text: "Delete",
  });
  var error = make("p", {
    className: "field-error",
    role: "alert",
    id: "todo-error-" + id,
    "data-testid": "todo-item-error",
  });
  var row = make("div", { className: "todo-row" }, [
    check,
    label,
    make("div", { className: "todo-actions" }, [edit, remove]),
  ]);
  item.append(row, error);

  function show(updated) {
    todo = updated;
    label.textContent = updated.text;
    check.checked = Boolean(updated.completed);
    item.className = updated.completed ? "todo done" : "todo";
    item.setAttribute("data-completed", updated.completed ? "true" : "false");
  }

  function fail(failure) {
    if (!failure.handled) setError(error, [problemMessage(failure)]);
  }

  check.addEventListener("change", async function () {
    var wanted = check.checked;
    check.disabled = true;
    error.replaceChildren();
    try {
      show(await api("PATCH", "/todos/" + encodeURIComponent(id), { completed: wanted }));
    } catch (failure) {
      check.checked = !wanted;
      fail(failure);
    } finally {
      check.disabled = false;
      if (document.activeElement === document.body) check.focus();
    }
  });

  onClick(remove, async function () {
    error.replaceChildren();
    if (!(await deleted("/todos/" + encodeURIComponent(id), fail))) return;
    var next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    todoNodes.delete(id);
    updateTodoEmpty();
    announce("Deleted: " + todo.text);
    var target = next ? next.querySelector("input[type=checkbox]") : $("todo-text");
    target.focus();
  });

  edit.addEventListener("click", function () {
    openEditor();
  });

  function openEditor() {
    var editor = textEditor({
      id: "todo-edit-" + id,
      label: "Edit to-do",
      value: todo.text,
      maxLength: 1000,
      testId: "todo",
      className: "todo-row todo-editor",
      saveText: "Save",
      error: error,
      emptyMessage: "Write something, or delete the to-do instead.",
      save: async function (text) {
        show(await api("PATCH", "/todos/" + encodeURIComponent(id), { text: text }));
        announce("Saved: " + todo.text);
      },
      close: function () {
        editor.form.replaceWith(row);
        edit.focus();
      },
    });
    error.replaceChildren();
    row.replaceWith(editor.form);
    editor.input.focus();
    editor.input.select();
  }

  return item;
}

// ------------------------------------------------------------------ sessions

function describeAgent(agent) {
  if (!agent) return "Unknown device";
  var browser = /Edg\//.test(agent)
    ? "Edge"
    : /OPR\//.test(agent)
      ? "Opera"
      : /Firefox\//.test(agent)
        ? "Firefox"
        : /Chrom(e|ium)\//.test(agent)
          ? "Chrome"
          : /Safari\//.test(agent)
            ? "Safari"
            : null;
  var system = /Windows/.test(agent)
    ? "Windows"
    : /Android/.test(agent)
      ? "Android"
      : /iPhone|iPad|iPod/.test(agent)
        ? "iOS"
        : /Mac OS X|Macintosh/.test(agent)
          ? "macOS"
          : /CrOS/.test(agent)
            ? "ChromeOS"
            : /Linux/.test(agent)
              ? "Linux"
              : null;
  if (browser && system) return browser + " on " + system;
  return browser || system || agent.slice(0, 80);
}

async function loadSessions() {
  var session = generation;
  var data = await api("GET", "/me/sessions");
  if (session !== generation) return;
  $("sessions-error").textContent = "";
  $("session-list").replaceChildren.apply($("session-list"), data.sessions.map(sessionItem));
}

function sessionItem(entry) {
  var titleId = "session-title-" + entry.id;
  var title = make("p", { className: "session-title", id: titleId }, [
    make("span", { text: describeAgent(entry.user_agent), title: entry.user_agent || "" }),
    entry.current
      ? make("span", {
          className: "badge ok",
          "data-testid": "session-current",
          text: "This device",
        })
      : null,
  ]);
  var details = make("p", {
    className: "muted small-print",
    text:
      "Signed in " +
      formatTime(entry.created_at) +
      " · last active " +
      formatTime(entry.last_used_at) +
      (entry.ip ? " · IP " + entry.ip : ""),
  });
  var item = make(
    "li",
    {
      className: entry.current ? "session current" : "session",
      "data-testid": "session-item",
      "data-current": entry.current ? "true" : "false",
    },
    [title, details],
  );
  if (!entry.current) {
    var end = make("button", {
      type: "button",
      className: "small",
      "data-testid": "session-end",
      "aria-describedby": titleId,
      text: "Sign out this device",
    });
    onClick(end, async function () {
      var path = "/me/sessions/" + encodeURIComponent(entry.id);
      var gone = await deleted(path, function (failure) {
        if (!failure.handled) $("sessions-error").textContent = problemMessage(failure);
      });
      if (!gone) return;
      var next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      showFlash("That device has been signed out.");
      var button = next && next.querySelector("button");
      (button || $("sessions-title")).focus();
    });
    item.append(make("div", { className: "actions" }, [end]));
  }
  return item;
}

// ------------------------------------------------------------------ change password

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

var PASSKEY_LOGIN_MESSAGES = {
  invalid_credentials:
    "That passkey was not accepted: it may have been removed from your account. " +
    "Log in with your password instead.",
};

var PASSKEY_ADD_MESSAGES = {
  passkey_exists: "That passkey is already on your account.",
  passkey_limit_reached:
    "Your account holds as many passkeys as it may. Delete one to add another.",
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

// ------------------------------------------------------------------ passkeys: dashboard

var passkeyCount = 0; // numbers the DOM ids of list items (credential ids can be long)

function updatePasskeyEmpty() {
  $("passkey-empty").hidden = $("passkey-list").childElementCount > 0;
}

async function loadPasskeys() {
  var session = generation;
  var data = await api("GET", "/me/passkeys");
  if (session !== generation) return;
  $("passkey-list").replaceChildren.apply($("passkey-list"), data.passkeys.map(passkeyItem));
  updatePasskeyEmpty();
}

function passkeyDetails(passkey) {
  return (
    "Added " +
    formatTime(passkey.created_at) +
    " · " +
    (passkey.last_used_at ? "last used " + formatTime(passkey.last_used_at) : "never used")
  );
}

function passkeyItem(passkey) {
  passkeyCount += 1;
  var number = passkeyCount;
  var titleId = "passkey-title-" + number;
  var path = "/me/passkeys/" + encodeURIComponent(passkey.id);
  var name = make("span", { "data-testid": "passkey-name-text", text: passkey.name });
  var title = make("p", { className: "passkey-title", id: titleId }, [
    name,
    passkey.backed_up ? make("span", { className: "badge ok", text: "Synced" }) : null,
  ]);
  var details = make("p", {
    className: "muted small-print",
    "data-testid": "passkey-details",
    text: passkeyDetails(passkey),
  });
  var rename = make("button", {
    type: "button",
    className: "small",
    "data-testid": "passkey-rename",
    "aria-describedby": titleId,
    text: "Rename",
  });
  var remove = make("button", {
    type: "button",
    className: "small danger",
    "data-testid": "passkey-delete",
    "aria-describedby": titleId,
    text: "Delete",
  });
  var actions = make("div", { className: "actions" }, [rename, remove]);
  var error = make("p", {
    className: "field-error",
    role: "alert",
    id: "passkey-item-error-" + number,
    "data-testid": "passkey-item-error",
  });
  var item = make(
    "li",
    { className: "passkey", "data-testid": "passkey-item", "data-id": passkey.id },
    [title, details, actions, error],
  );

  function fail(failure) {
    if (!failure.handled) setError(error, [problemMessage(failure)]);
  }

  function replaceActions(node, focus) {
    error.replaceChildren();
    item.replaceChild(node, item.querySelector(".actions, .passkey-editor"));
    focus.focus();
  }

  rename.addEventListener("click", function () {
    var editor = textEditor({
      id: "passkey-rename-" + number,
      label: "Passkey name",
      value: passkey.name,
      maxLength: 64,
      testId: "passkey",
      className: "passkey-editor",
      saveText: "Save name",
      error: error,
      emptyMessage: "Give the passkey a name.",
      save: async function (text) {
        passkey = await api("PATCH", path, { name: text });
        name.textContent = passkey.name;
        showFlash("The passkey is now called “" + passkey.name + "”.");
      },
      close: function () {
        replaceActions(actions, rename);
      },
    });
    replaceActions(editor.form, editor.input);
    editor.input.select();
  });

  remove.addEventListener("click", function () {
    var confirm = make("button", {
      type: "button",
      className: "small danger",
      "data-testid": "passkey-delete-confirm",
      text: "Yes, delete it",
    });
    var keep = make("button", { type: "button", className: "small", text: "Keep it" });
    var question = make(
      "div",
      { className: "passkey-editor", role: "group", "aria-labelledby": titleId },
      [
        make("p", {
          className: "passkey-confirm",
          text: "Delete this passkey? You will no longer be able to sign in with it.",
        }),
        confirm,
        keep,
      ],
    );
    function close() {
      replaceActions(actions, remove);
    }
    keep.addEventListener("click", close);
    onEscape(question, close);
    onClick(confirm, async function () {
      if (!(await deleted(path, fail))) return;
      var next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      updatePasskeyEmpty();
      showFlash("The passkey “" + passkey.name + "” has been deleted.");
      var button = next && next.querySelector("button");
      (button || $("passkeys-title")).focus();
    });
    replaceActions(question, keep);
  });

  return item;
}

/* Add a passkey: the password (and the second factor, when on) buys a creation
 * challenge; the authenticator makes the key pair; the server keeps its public half. */
onSubmit("passkey-form", async function (form) {
  var name = $("passkey-name").value.trim();
  var password = $("passkey-password").value;
  var needsCode = !$("passkey-totp-group").hidden;
  var code = $("passkey-totp").value.replace(/\s+/g, "");
  if (
    missing([
      ["passkey-password", password, "Enter your password."],
      needsCode && ["passkey-totp", code, "Enter the code from your authenticator app."],
    ])
  ) {
    return;
  }
  var stepUp = { password: password };
  if (needsCode) stepUp.totp_code = code;
  var options;
  try {
    options = (await api("POST", "/me/passkeys/options", stepUp)).options;
  } catch (error) {
    if (error.code === "mfa_required") {
      $("passkey-totp-group").hidden = false;
      markInvalid("passkey-totp", ["Enter the code from your authenticator app."]);
      $("passkey-totp").focus();
      return;
    }
    if (needsCode) $("passkey-totp").value = "";
    showProblem(error, {
      fields: {
        password: "passkey-password",
        totp_code: "passkey-totp",
        // With a code too, which of the two was wrong is not said: the form's line.
        invalid_credentials: needsCode ? null : "passkey-password",
      },
      formError: "passkey-error",
      messages: Object.assign({}, PASSKEY_ADD_MESSAGES, {
        invalid_credentials: needsCode
          ? "The password or code is incorrect."
          : "Your password is incorrect.",
      }),
    });
    return;
  }
  var created;
  try {
    created = await navigator.credentials.create({ publicKey: creationOptions(options) });
  } catch (error) {
    setError($("passkey-error"), [passkeyMessage(error, true)]);
    return;
  }
  var body = { credential: registrationJSON(created) };
  if (name) body.name = name;
  try {
    var passkey = await api("POST", "/me/passkeys", body);
    form.reset();
    $("passkey-list").prepend(passkeyItem(passkey));
    updatePasskeyEmpty();
    showFlash("Passkey “" + passkey.name + "” added: you can sign in with it now.");
  } catch (error) {
    showProblem(error, {
      fields: { name: "passkey-name" },
      formError: "passkey-error",
      messages: PASSKEY_ADD_MESSAGES,
    });
  }
});

if (!passkeysSupported) {
  $("passkey-form").hidden = true;
  $("passkey-unsupported").hidden = false;
}

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

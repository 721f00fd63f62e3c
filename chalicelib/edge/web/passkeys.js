/* The dashboard's Passkeys panel: the list (name, added, last used), rename in place,
 * delete after a confirmation, and adding one: the password (and the code, with MFA
 * on) buys a creation challenge, the browser makes the credential, the API keeps it. */

import { $, make } from "./dom.js";
import { markInvalid, missing, onClick, onSubmit, setError, showProblem } from "./forms.js";
import { deleted, onEscape, textEditor } from "./listitems.js";
import { formatTime, problemMessage, showFlash } from "./messages.js";
import { api, generation } from "./session.js";
import {
  creationOptions,
  passkeyMessage,
  passkeysSupported,
  registrationJSON,
} from "./webauthn.js";

var PASSKEY_ADD_MESSAGES = {
  passkey_exists: "That passkey is already on your account.",
  passkey_limit_reached:
    "Your account holds as many passkeys as it may. Delete one to add another.",
};

var passkeyCount = 0; // numbers the DOM ids of list items (credential ids can be long)

export function clearPasskeys() {
  $("passkey-list").replaceChildren();
  $("passkey-empty").hidden = true;
  $("passkey-totp-group").hidden = true;
}

function updatePasskeyEmpty() {
  $("passkey-empty").hidden = $("passkey-list").childElementCount > 0;
}

export async function loadPasskeys() {
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

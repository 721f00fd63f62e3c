/* Forms and buttons: each field's error next to it (from a problem document or a check
 * before sending), and submit and click handlers that ignore a second press while the
 * first is answered. */

import { $, make } from "./dom.js";
import { problemMessage } from "./messages.js";

// What a failed field or request means, in the page's words where the page knows better
// than a generic server message.
var FIELD_MESSAGES = {
  required: "This field is required.",
  common: "This password is too common; choose another.",
  contains_username: "Do not use your username in it.",
  contains_email: "Do not use your email address in it.",
  verification_failed: "The passkey could not be verified. Please try again.",
};

function fieldMessage(fieldError) {
  return (
    FIELD_MESSAGES[fieldError.code] ||
    (typeof fieldError.message === "string" && fieldError.message) ||
    "This value is not valid."
  );
}

export function setError(node, messages) {
  node.replaceChildren();
  if (messages.length === 1) {
    node.textContent = messages[0];
  } else if (messages.length > 1) {
    node.append(
      make(
        "ul",
        {},
        messages.map(function (text) {
          return make("li", { text: text });
        }),
      ),
    );
  }
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error, .form-error").forEach(function (node) {
    node.replaceChildren();
  });
  form.querySelectorAll("[aria-invalid]").forEach(function (node) {
    node.removeAttribute("aria-invalid");
  });
}

export function markInvalid(inputId, messages) {
  setError($(inputId + "-error"), messages);
  $(inputId).setAttribute("aria-invalid", "true");
}

/* Put a problem document's messages next to their fields (``fields`` maps an API field
 * name, or a problem code, to an input id) and the rest in the form's error line. */
export function showProblem(error, options) {
  if (error.handled) return;
  var fields = options.fields || {};
  var perInput = new Map();
  var rest = [];
  function add(inputId, text) {
    if (inputId && $(inputId + "-error")) {
      if (!perInput.has(inputId)) perInput.set(inputId, []);
      perInput.get(inputId).push(text);
    } else {
      rest.push(text);
    }
  }
  if (error.errors.length) {
    error.errors.forEach(function (fieldError) {
      add(fields[fieldError.field], fieldMessage(fieldError));
    });
  } else {
    add(fields[error.code], problemMessage(error, options.messages));
  }
  var first = null;
  perInput.forEach(function (messages, inputId) {
    markInvalid(inputId, messages);
    first = first || $(inputId);
  });
  if (rest.length) setError($(options.formError), rest);
  if (first && !rest.length) first.focus();
}

/* Client-side check that the required inputs are filled in; true if one is empty. */
export function missing(checks) {
  var first = null;
  checks.forEach(function (check) {
    if (check && !check[1]) {
      markInvalid(check[0], [check[2]]);
      first = first || $(check[0]);
    }
  });
  if (first) first.focus();
  return first !== null;
}

/* Run ``task`` with the form marked busy; a second submit meanwhile is ignored. */
export async function busy(form, task) {
  if (form.dataset.busy) return;
  form.dataset.busy = "1";
  form.setAttribute("aria-busy", "true");
  var buttons = form.querySelectorAll("button[type=submit]");
  buttons.forEach(function (button) {
    button.setAttribute("aria-disabled", "true");
  });
  try {
    await task();
  } finally {
    delete form.dataset.busy;
    form.removeAttribute("aria-busy");
    buttons.forEach(function (button) {
      button.removeAttribute("aria-disabled");
    });
  }
}

/* A click handler on a button that ignores clicks while the last one is being answered. */
export function onClick(button, task) {
  button.addEventListener("click", async function (event) {
    if (button.dataset.busy) return;
    button.dataset.busy = "1";
    button.setAttribute("aria-disabled", "true");
    try {
      await task(event);
    } finally {
      delete button.dataset.busy;
      button.removeAttribute("aria-disabled");
    }
  });
}

export function onSubmit(formId, task) {
  var form = $(formId);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (form.dataset.busy) return;
    clearErrors(form);
    busy(form, function () {
      return task(form);
    });
  });
}

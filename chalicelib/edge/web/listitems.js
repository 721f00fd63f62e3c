/* What the lists of the dashboard (to-dos, sessions, passkeys) share: deleting one of
 * their items, and the one-line editor that edits an item in place. */

import { make } from "./dom.js";
import { busy, setError } from "./forms.js";
import { problemMessage } from "./messages.js";
import { api } from "./session.js";

/* DELETE one thing of a list; already gone (404) counts as deleted. Any other failure
 * goes to ``report`` and resolves false. */
export async function deleted(path, report) {
  try {
    await api("DELETE", path);
    return true;
  } catch (failure) {
    if (failure.status === 404) return true;
    report(failure);
    return false;
  }
}

export function onEscape(node, handler) {
  node.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      handler();
    }
  });
}

/* A one-line editor in place of a list item's row (a to-do's text, a passkey's name).
 * Enter saves through ``spec.save(text)`` and closes; Escape or Cancel closes; an
 * empty text is refused next to the item, an unchanged one just closes. The caller
 * puts ``form`` in place and focuses ``input``. */
export function textEditor(spec) {
  var input = make("input", {
    type: "text",
    id: spec.id,
    maxlength: spec.maxLength,
    autocomplete: "off",
    "data-testid": spec.testId + "-edit-input",
    "aria-describedby": spec.error.id,
  });
  input.value = spec.value;
  var save = make("button", {
    type: "submit",
    className: "small primary",
    "data-testid": spec.testId + "-save",
    text: spec.saveText,
  });
  var cancel = make("button", {
    type: "button",
    className: "small",
    "data-testid": spec.testId + "-cancel",
    text: "Cancel",
  });
  var form = make("form", { className: spec.className, novalidate: true }, [
    make("label", { for: spec.id, className: "visually-hidden", text: spec.label }),
    input,
    make("div", { className: "editor-actions" }, [save, cancel]),
  ]);
  cancel.addEventListener("click", spec.close);
  onEscape(input, spec.close);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    spec.error.replaceChildren();
    var text = input.value.trim();
    if (!text) {
      setError(spec.error, [spec.emptyMessage]);
      input.focus();
      return;
    }
    if (text === spec.value) {
      spec.close();
      return;
    }
    busy(form, async function () {
      try {
        await spec.save(text);
        spec.close();
      } catch (failure) {
        if (!failure.handled) setError(spec.error, [problemMessage(failure)]);
        input.focus();
      }
    });
  });
  return { form: form, input: input };
}

/* The dashboard's to-do list: a page of 20 at a time ("Load more"), add, complete,
 * edit in place and delete, each change announced to screen readers. */

import { $, make } from "./dom.js";
import { missing, onClick, onSubmit, setError, showProblem } from "./forms.js";
import { deleted, textEditor } from "./listitems.js";
import { problemMessage, showAlert } from "./messages.js";
import { api, generation } from "./session.js";

var PAGE_SIZE = 20;

var todoCursor = null;
var todoNodes = new Map();

var todoStatus = make("p", { className: "visually-hidden", role: "status", id: "todo-status" });
$("todo-list").after(todoStatus);

function announce(text) {
  todoStatus.textContent = text;
}

export function clearTodos() {
  todoCursor = null;
  todoNodes.clear();
  $("todo-list").replaceChildren();
  $("todo-more").hidden = true;
  $("todo-empty").hidden = true;
}

function updateTodoEmpty() {
  $("todo-empty").hidden = todoNodes.size > 0;
}

export async function loadTodos(fromStart) {
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

"""The per-user to-do API: create, read, change, delete, their rules, and who may see what.

Paging is in test_todos_paging.py; concurrency and the per-user cap in
test_todos_limits.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.lifecycle import comparable_headers
from tests.functional.todolist import (
    SignIn,
    Todos,
    assert_common_headers,
    assert_field_error,
    assert_todo,
    problem_of,
)

# ------------------------------------------------------------------ create


def test_create_answers_201_with_the_new_todo_which_reads_back_the_same(person: SignIn) -> None:
    me = person()
    before = int(time.time())

    response = me.create({"text": "buy milk"})
    after = int(time.time())

    assert response.status_code == 201, response.body
    assert header(response, "Content-Type") == "application/json"
    todo = assert_todo(response.json_body)
    assert todo["text"] == "buy milk"
    assert todo["completed"] is False
    # Unix seconds, not milliseconds.
    assert before <= todo["created_at"] <= after
    assert todo["updated_at"] == todo["created_at"]
    read = me.get(todo["id"])
    assert read.status_code == 200, read.body
    assert read.json_body == todo
    assert me.everything() == [todo]


def test_each_create_is_a_new_todo_even_with_the_same_text(person: SignIn) -> None:
    me = person()
    first = me.add("water the plants")
    second = me.add("water the plants")

    assert first["id"] != second["id"]
    assert {t["id"] for t in me.everything()} == {first["id"], second["id"]}


@pytest.mark.parametrize("completed", [True, False])
def test_create_may_say_whether_the_todo_is_completed(person: SignIn, completed: bool) -> None:
    me = person()
    todo = me.add("file the taxes", completed=completed)

    assert todo["completed"] is completed
    assert me.get(todo["id"]).json_body["completed"] is completed


def test_completed_sent_as_null_counts_as_absent(person: SignIn) -> None:
    me = person()
    assert me.add("call the bank", completed=None)["completed"] is False


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("  buy milk  ", "buy milk"),
        ("\n\tbuy milk\n", "buy milk"),
        ("\u3000\u00a0buy milk\u2003", "buy milk"),  # Unicode spaces are trimmed too
        ("line one\nline two", "line one\nline two"),
        ("a\tb", "a\tb"),
    ],
)
def test_text_is_trimmed_at_both_ends_only(person: SignIn, sent: str, kept: str) -> None:
    me = person()
    todo = me.add(sent)

    assert todo["text"] == kept
    assert me.get(todo["id"]).json_body["text"] == kept


UNICODE_TEXTS = [
    pytest.param("👩🏽‍💻 ship it 🚀🇳🇱", id="emoji-zwj-flags"),
    pytest.param("שלום עולם, לקנות חלב", id="hebrew-rtl"),
    pytest.param("مرحبا بالعالم ١٢٣", id="arabic-rtl-digits"),
    pytest.param("English then עברית then English", id="mixed-direction"),
    pytest.param("買牛奶と卵を買う 우유 사기", id="cjk"),
    pytest.param("cafe\u0301 vs caf\u00e9", id="combining-not-normalised"),
    pytest.param("\U0001d54b\U0001d560\U0001d555\U0001d560", id="astral-math-letters"),
    pytest.param("zero\u200bwidth and \u202eoverride", id="format-characters"),
    pytest.param("<script>alert(1)</script> & \"quotes\" 'n' \\ back", id="markup"),
    pytest.param("😀" * 1000, id="1000-emoji"),
]


@pytest.mark.parametrize("text", UNICODE_TEXTS)
@pytest.mark.parametrize("ascii_json", [True, False], ids=["escaped-json", "utf8-json"])
def test_any_unicode_text_is_kept_exactly(person: SignIn, text: str, ascii_json: bool) -> None:
    me = person()
    raw = json.dumps({"text": text}, ensure_ascii=ascii_json).encode("utf-8")

    response = me.create(raw=raw)

    assert response.status_code == 201, response.body
    todo = assert_todo(response.json_body)
    assert todo["text"] == text
    assert me.get(todo["id"]).json_body["text"] == text
    assert [t["text"] for t in me.everything()] == [text]


def test_text_of_exactly_1000_characters_after_trimming_is_accepted(person: SignIn) -> None:
    me = person()
    text = "x" * 1000

    assert me.add(f"   {text}\n\n")["text"] == text
    assert me.add("é" * 1000)["text"] == "é" * 1000


INVALID_TEXTS = [
    pytest.param("", "required", id="empty"),  # an empty required field is a missing one
    pytest.param("   ", "invalid_length", id="spaces"),
    pytest.param(" \n\t\r\n ", "invalid_length", id="whitespace"),
    pytest.param("\u3000\u2003", "invalid_length", id="unicode-spaces"),
    pytest.param("x" * 1001, "invalid_length", id="1001"),
    pytest.param("😀" * 1001, "invalid_length", id="1001-emoji"),
    pytest.param("  " + "x" * 1001 + "  ", "invalid_length", id="1001-padded"),
    pytest.param("nul\x00byte", "invalid_characters", id="nul"),
    pytest.param("bell\x07", "invalid_characters", id="bel"),
    pytest.param("\x1b[31mred\x1b[0m", "invalid_characters", id="ansi-escape"),
    pytest.param("carriage\rreturn", "invalid_characters", id="cr"),
    pytest.param("vertical\x0btab", "invalid_characters", id="vt"),
    pytest.param("delete\x7fchar", "invalid_characters", id="del"),
    pytest.param("next\x85line", "invalid_characters", id="c1-nel"),
    pytest.param("\x9b31mred", "invalid_characters", id="c1-csi"),
]


@pytest.mark.parametrize(("text", "code"), INVALID_TEXTS)
def test_text_that_breaks_the_rules_is_a_400_and_nothing_is_created(
    person: SignIn, text: str, code: str
) -> None:
    me = person()

    response = me.create({"text": text})

    assert_field_error(response, "text", code)
    assert me.everything() == []


WRONG_TYPES = [
    pytest.param({"text": 42}, "text", "invalid_type", id="text-number"),
    pytest.param({"text": True}, "text", "invalid_type", id="text-bool"),
    pytest.param({"text": ["buy milk"]}, "text", "invalid_type", id="text-list"),
    pytest.param({"text": {"value": "buy milk"}}, "text", "invalid_type", id="text-object"),
    pytest.param({"text": None}, "text", "required", id="text-null"),
    pytest.param({}, "text", "required", id="text-missing"),
    pytest.param({"completed": True}, "text", "required", id="only-completed"),
    pytest.param({"text": "a", "completed": "true"}, "completed", "invalid_type", id="str-true"),
    pytest.param({"text": "a", "completed": "false"}, "completed", "invalid_type", id="str-f"),
    pytest.param({"text": "a", "completed": 1}, "completed", "invalid_type", id="one"),
    pytest.param({"text": "a", "completed": 0}, "completed", "invalid_type", id="zero"),
    pytest.param({"text": "a", "completed": []}, "completed", "invalid_type", id="list"),
    pytest.param({"text": "a", "completed": {}}, "completed", "invalid_type", id="object"),
]


@pytest.mark.parametrize(("body", "field", "code"), WRONG_TYPES)
def test_a_missing_or_wrongly_typed_member_is_a_400_and_nothing_is_created(
    person: SignIn, body: dict[str, Any], field: str, code: str
) -> None:
    me = person()

    assert_field_error(me.create(body), field, code)
    assert me.everything() == []


@pytest.mark.parametrize(
    "body",
    [
        {"text": "a", "done": True},
        {"text": "a", "id": "00000000000000000000a"},
        {"text": "a", "created_at": 1},
        {"text": "a", "user_id": "someone-else"},
        {"text": "a", "Text": "b"},
    ],
)
def test_an_unknown_member_is_a_400_and_nothing_is_created(
    person: SignIn, body: dict[str, Any]
) -> None:
    me = person()
    unknown = next(name for name in body if name not in ("text", "completed"))

    assert_field_error(me.create(body), unknown, "unknown_field")
    assert me.everything() == []


NOT_JSON_OBJECTS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"text=buy+milk", id="form"),
    pytest.param(b"buy milk", id="plain"),
    pytest.param(b'{"text": "buy milk"', id="truncated"),
    pytest.param(b'["buy milk"]', id="array"),
    pytest.param(b'"buy milk"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"text": "a", "text": "b"}', id="duplicate-key"),
    pytest.param(b'{"text": "\xff\xfe"}', id="not-utf8"),
    pytest.param(b'{"text": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"text": "a", "completed": NaN}', id="nan"),
]


@pytest.mark.parametrize("raw", NOT_JSON_OBJECTS)
def test_a_body_that_is_not_a_json_object_is_a_400_on_create_and_on_change(
    person: SignIn, raw: bytes
) -> None:
    me = person()
    kept = me.add("keep me")

    assert_problem(me.create(raw=raw), 400, "validation_error")
    assert_problem(me.patch(kept["id"], raw=raw), 400, "validation_error")
    assert me.everything() == [kept]


def test_a_body_that_is_not_sent_as_json_is_a_400(person: SignIn) -> None:
    me = person()
    response = me.api.request(
        "POST",
        "/todos",
        raw=b"buy milk",
        token=me.token,
        headers={"Content-Type": "text/plain"},
    )

    assert_problem(response, 400, "validation_error")
    assert_common_headers(response)
    assert me.everything() == []


# ------------------------------------------------------------------ change


def test_patch_text_changes_only_the_text(person: SignIn) -> None:
    me = person()
    todo = me.add("buy milk", completed=True)

    response = me.patch(todo["id"], {"text": "  buy oat milk  "})

    assert response.status_code == 200, response.body
    changed = assert_todo(response.json_body)
    assert changed["text"] == "buy oat milk"
    assert changed["completed"] is True
    assert changed["id"] == todo["id"]
    assert changed["created_at"] == todo["created_at"]
    assert changed["updated_at"] >= changed["created_at"]
    assert me.get(todo["id"]).json_body == changed
    assert me.everything() == [changed]


def test_patch_completed_ticks_and_unticks_and_keeps_the_text(person: SignIn) -> None:
    me = person()
    todo = me.add("water the plants")

    ticked = me.patch(todo["id"], {"completed": True})
    assert ticked.status_code == 200, ticked.body
    assert ticked.json_body["completed"] is True
    assert ticked.json_body["text"] == "water the plants"
    assert me.get(todo["id"]).json_body["completed"] is True

    unticked = me.patch(todo["id"], {"completed": False})
    assert unticked.status_code == 200, unticked.body
    assert unticked.json_body["completed"] is False
    assert me.get(todo["id"]).json_body == assert_todo(unticked.json_body)


def test_patch_text_and_completed_together(person: SignIn) -> None:
    me = person()
    todo = me.add("draft")

    response = me.patch(todo["id"], {"text": "final 🎉", "completed": True})

    assert response.status_code == 200, response.body
    changed = assert_todo(response.json_body)
    assert (changed["text"], changed["completed"]) == ("final 🎉", True)
    assert changed["updated_at"] >= todo["created_at"]
    assert me.get(todo["id"]).json_body == changed


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"text": None, "completed": None}, id="only-nulls"),
    ],
)
def test_patch_with_nothing_to_change_is_a_400(person: SignIn, body: dict[str, Any]) -> None:
    me = person()
    todo = me.add("unchanged")

    assert_problem(me.patch(todo["id"], body), 400, "validation_error")
    assert me.get(todo["id"]).json_body == todo


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        pytest.param({"done": True}, "done", "unknown_field", id="unknown-alone"),
        pytest.param({"completed": True, "done": True}, "done", "unknown_field", id="unknown"),
        pytest.param({"text": "a", "id": "x"}, "id", "unknown_field", id="id"),
        pytest.param({"created_at": 0}, "created_at", "unknown_field", id="created_at"),
        pytest.param({"completed": "yes"}, "completed", "invalid_type", id="completed-str"),
        pytest.param({"completed": 1}, "completed", "invalid_type", id="completed-int"),
        pytest.param({"text": 7}, "text", "invalid_type", id="text-int"),
        pytest.param({"text": "   "}, "text", "invalid_length", id="text-blank"),
        pytest.param({"text": "y" * 1001}, "text", "invalid_length", id="text-1001"),
        pytest.param({"text": "a\x00b"}, "text", "invalid_characters", id="text-nul"),
        pytest.param({"text": "a\x7fb"}, "text", "invalid_characters", id="text-del"),
    ],
)
def test_patch_that_breaks_a_rule_is_a_400_and_changes_nothing(
    person: SignIn, body: dict[str, Any], field: str, code: str
) -> None:
    me = person()
    todo = me.add("unchanged")

    assert_field_error(me.patch(todo["id"], body), field, code)
    assert me.get(todo["id"]).json_body == todo


# ------------------------------------------------------------------ delete


def test_delete_answers_204_and_then_the_todo_is_gone_everywhere(person: SignIn) -> None:
    me = person()
    kept = me.add("keep")
    gone = me.add("drop")

    response = me.delete(gone["id"])

    assert response.status_code == 204, response.body
    assert response.body in (b"", None)
    assert_problem(me.get(gone["id"]), 404, "not_found")
    assert_problem(me.patch(gone["id"], {"completed": True}), 404, "not_found")
    assert_problem(me.delete(gone["id"]), 404, "not_found")
    assert me.everything() == [kept]
    assert me.get(kept["id"]).json_body == kept


# ------------------------------------------------------------------ 404s and isolation


def _not_found_answers(me: Todos, todo_id: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The 404 of GET, PATCH and DELETE on ``todo_id``: problem and headers, comparable."""
    answers = []
    for response in (
        me.get(todo_id),
        me.patch(todo_id, {"completed": True}),
        me.delete(todo_id),
    ):
        assert_problem(response, 404, "not_found")
        answers.append((problem_of(response), comparable_headers(response)))
    return answers


def test_another_users_id_a_malformed_id_and_a_deleted_id_are_the_same_404(
    person: SignIn,
) -> None:
    owner, me = person(), person()
    theirs = owner.add("their secret plan")
    deleted = me.add("soon gone")
    assert me.delete(deleted["id"]).status_code == 204
    mine = me.add("mine")
    never = "0" * 13 + "0" * 8  # well-formed, never created

    ids = {
        "another user's": theirs["id"],
        "deleted": deleted["id"],
        "never created": never,
        "malformed word": "not-a-todo",
        "malformed count key": "TODOCOUNT",
        "too long": mine["id"] + "0",
        "too short": mine["id"][:-1],
        "upper case": mine["id"][:13] + "ABCDEFGH",
        "not hex": mine["id"][:-1] + "g",
    }
    answers = {name: _not_found_answers(me, todo_id) for name, todo_id in ids.items()}

    reference = answers["deleted"]
    for name, found in answers.items():
        assert found == reference, name
    # GET, PATCH and DELETE say the same, too.
    assert reference[0] == reference[1] == reference[2]
    # And none of it touched anything.
    assert owner.get(theirs["id"]).json_body == theirs
    assert owner.everything() == [theirs]
    assert me.everything() == [mine]


def test_another_user_can_neither_read_change_delete_nor_list_my_todos(person: SignIn) -> None:
    alice, bob = person(), person()
    plan = alice.add("alice's surprise party")
    bobs = bob.add("bob's own")

    assert_problem(bob.get(plan["id"]), 404, "not_found")
    assert_problem(
        bob.patch(plan["id"], {"text": "cancelled", "completed": True}), 404, "not_found"
    )
    assert_problem(bob.delete(plan["id"]), 404, "not_found")

    assert alice.get(plan["id"]).json_body == plan
    assert alice.everything() == [plan]
    listed = bob.page(limit=100)
    assert listed.json_body == {"items": [bobs], "next_cursor": None}
    assert "surprise" not in listed.body.decode()


def test_changing_or_deleting_my_todos_leaves_another_users_alone(person: SignIn) -> None:
    alice, bob = person(), person()
    a = alice.add("alice")
    b = bob.add("bob")

    assert alice.patch(a["id"], {"text": "alice changed", "completed": True}).status_code == 200
    assert bob.get(b["id"]).json_body == b
    assert bob.delete(b["id"]).status_code == 204
    assert alice.get(a["id"]).json_body["text"] == "alice changed"
    assert [t["text"] for t in alice.everything()] == ["alice changed"]


# ------------------------------------------------------------------ authentication


ROUTES = [
    pytest.param(("GET", "/todos", None), id="list"),
    pytest.param(("POST", "/todos", {"text": "sneaky"}), id="create"),
    pytest.param(("GET", "/todos/{id}", None), id="read"),
    pytest.param(("PATCH", "/todos/{id}", {"completed": True}), id="change"),
    pytest.param(("DELETE", "/todos/{id}", None), id="delete"),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "token",
    [None, "", "not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
    ids=["no-header", "empty", "garbage", "alg-none"],
)
def test_every_todo_route_needs_a_valid_token(
    api: Api, person: SignIn, route: tuple[str, str, Any], token: str | None
) -> None:
    me = person()
    todo = me.add("guarded")
    method, path, body = route

    response = api.request(method, path.replace("{id}", todo["id"]), body, token=token)

    assert_problem(response, 401, "invalid_token")
    assert header(response, "WWW-Authenticate") == 'Bearer error="invalid_token"'
    assert_common_headers(response)
    assert me.everything() == [todo]


def test_after_logout_the_token_no_longer_reaches_the_todos(api: Api, person: SignIn) -> None:
    me = person()
    todo = me.add("before logout")
    assert api.post("/logout", token=me.token).status_code == 204

    response = me.page()

    assert_problem(response, 401, "invalid_token")
    assert header(response, "WWW-Authenticate") == 'Bearer error="invalid_token"'
    assert_problem(me.get(todo["id"]), 401, "invalid_token")


# ------------------------------------------------------------------ headers


def test_every_answer_carries_the_request_id_nosniff_and_no_store(api: Api, person: SignIn) -> None:
    """201, 200, 204, 400, 404 and 401 alike (``Todos`` checks each of its requests too)."""
    me = person()
    created = me.create({"text": "headers"})
    todo_id = created.json_body["id"]
    answers = [
        created,
        me.get(todo_id),
        me.patch(todo_id, {"completed": True}),
        me.page(),
        me.page(limit=0),
        me.page(cursor="forged"),
        me.create({"text": ""}),
        me.patch(todo_id, {}),
        me.delete(todo_id),
        me.get(todo_id),
        api.get("/todos"),
        api.request("DELETE", f"/todos/{todo_id}", token="nope"),
    ]
    assert [r.status_code for r in answers] == [
        201,
        200,
        200,
        200,
        400,
        400,
        400,
        400,
        204,
        404,
        401,
        401,
    ]
    request_ids = set()
    for response in answers:
        assert_common_headers(response)
        request_ids.add(header(response, "X-Request-Id"))
    assert len(request_ids) == len(answers), "each answer has its own request id"

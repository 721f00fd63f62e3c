"""Helpers shared by the to-do tests: one signed-in user's view of ``/todos``.

Every answer that goes through ``Todos`` is checked for the headers every answer
carries (request id, nosniff, no-store), so each test checks them on the way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from chalice.test import HTTPResponse

from tests.assertions import assert_problem, header
from tests.conftest import Api

TODO_FIELDS = {"id", "text", "completed", "created_at", "updated_at"}
#: More pages than any listing in these tests needs: a cursor loop fails, not hangs.
MAX_PAGES = 400


def assert_common_headers(response: HTTPResponse) -> None:
    """The headers the contract puts on every answer, success or failure."""
    assert header(response, "X-Request-Id"), response.headers
    assert header(response, "X-Content-Type-Options") == "nosniff", response.headers
    assert header(response, "Cache-Control") == "no-store", response.headers


def assert_todo(todo: Any) -> dict[str, Any]:
    """``todo`` is a Todo: exactly its five members, each of its type."""
    assert isinstance(todo, dict), todo
    assert set(todo) == TODO_FIELDS, todo
    assert isinstance(todo["id"], str) and todo["id"]
    assert isinstance(todo["text"], str)
    assert type(todo["completed"]) is bool
    for stamp in ("created_at", "updated_at"):
        assert type(todo[stamp]) is int, todo
    assert todo["updated_at"] >= todo["created_at"]
    return todo


def field_errors(document: dict[str, Any]) -> dict[str, str]:
    """The problem's field errors as ``{field: code}``."""
    listed = document.get("errors", [])
    assert isinstance(listed, list) and listed, document
    return {str(e["field"]): str(e["code"]) for e in listed}


def assert_field_error(response: HTTPResponse, field: str, code: str | None = None) -> None:
    """A 400 ``validation_error`` that names ``field`` (with ``code``, if given)."""
    document = assert_problem(response, 400, "validation_error")
    errors = field_errors(document)
    assert field in errors, document
    if code is not None:
        assert errors[field] == code, document


class Todos:
    """One signed-in user's requests to ``/todos``."""

    def __init__(self, api: Api, token: str) -> None:
        self.api = api
        self.token = token

    def _send(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> HTTPResponse:
        response = self.api.request(method, path, body, token=self.token, raw=raw)
        assert_common_headers(response)
        return response

    def create(self, body: Any = None, *, raw: bytes | None = None) -> HTTPResponse:
        return self._send("POST", "/todos", body, raw)

    def add(self, text: str, **fields: Any) -> dict[str, Any]:
        """Create a to-do that must be accepted; the Todo."""
        response = self.create({"text": text, **fields})
        assert response.status_code == 201, response.body
        return assert_todo(response.json_body)

    def get(self, todo_id: str) -> HTTPResponse:
        return self._send("GET", f"/todos/{todo_id}")

    def patch(self, todo_id: str, body: Any = None, *, raw: bytes | None = None) -> HTTPResponse:
        return self._send("PATCH", f"/todos/{todo_id}", body, raw)

    def delete(self, todo_id: str) -> HTTPResponse:
        return self._send("DELETE", f"/todos/{todo_id}")

    def page(self, *, limit: int | str | None = None, cursor: str | None = None) -> HTTPResponse:
        query = []
        if limit is not None:
            query.append(f"limit={quote(str(limit), safe='')}")
        if cursor is not None:
            query.append(f"cursor={quote(cursor, safe='')}")
        path = "/todos" + ("?" + "&".join(query) if query else "")
        return self._send("GET", path)

    def pages(self, limit: int | None = None) -> list[list[dict[str, Any]]]:
        """Every page of the list, following ``next_cursor`` until it is null."""
        found: list[list[dict[str, Any]]] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            response = self.page(limit=limit, cursor=cursor)
            assert response.status_code == 200, response.body
            body = response.json_body
            assert set(body) == {"items", "next_cursor"}, body
            found.append([assert_todo(item) for item in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return found
            assert isinstance(cursor, str) and cursor
        raise AssertionError(f"next_cursor still set after {MAX_PAGES} pages")

    def everything(self, limit: int | None = None) -> list[dict[str, Any]]:
        return [item for page in self.pages(limit) for item in page]


def sign_in(
    api: Api,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> Todos:
    """A fresh user, signed in."""
    user = new_user()
    return Todos(api, login(user["username"], user["password"])["access_token"])


#: The ``person`` fixture (tests/functional/conftest.py): call once per user a test needs.
SignIn = Callable[[], Todos]


def problem_of(response: HTTPResponse) -> dict[str, Any]:
    document = json.loads(response.body)
    assert isinstance(document, dict)
    return document

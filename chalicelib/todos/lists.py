"""Per-user to-dos: the dashboard's data, and the model for any per-user data API.

Isolation comes from the key, not from a check: every read and write uses the
partition of the authenticated caller, so another user's id, a malformed id and a
deleted id are all the same 404. Paging is one Query per page, newest first; the cursor
is the last sort key, signed (HMAC-SHA256 under a key derived from the ring's data key)
together with the caller's id, so a client can neither forge one nor replay another
user's.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any

from chalicelib.platform import errors
from chalicelib.store.todos import TodoRecord, TodoStore

TEXT_MAX = 1000
PAGE_DEFAULT, PAGE_MAX = 20, 100
_ID = re.compile(r"[0-9]{13}[0-9a-f]{8}")
#: ASCII digits only, and few: ``str.isdigit`` also admits "²" and other digits that
#: ``int`` refuses, and ``int`` refuses more than 4,300 digits (both were a 500).
_LIMIT = re.compile(r"[0-9]{1,3}")


def public_todo(todo: TodoRecord) -> dict[str, Any]:
    """The contract's ``Todo``: the record is exactly that, nothing hidden."""
    return dataclasses.asdict(todo)


def check_text(text: str) -> str:
    """1 to 1,000 characters once trimmed; any Unicode but control characters other
    than tab and newline."""
    value = text.strip()
    if not 1 <= len(value) <= TEXT_MAX:
        raise errors.ValidationError.of_field(
            "text", "invalid_length", f"Use 1 to {TEXT_MAX} characters."
        )
    # Every control character (C0, DEL and C1, Unicode category Cc), not only those < 32.
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in value):
        raise errors.ValidationError.of_field(
            "text", "invalid_characters", "Control characters are not allowed."
        )
    return value


def page_size(raw: str | None) -> int:
    if raw is None:
        return PAGE_DEFAULT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= PAGE_MAX:
        raise errors.ValidationError.of_field(
            "limit", "invalid_limit", f"Use a whole number from 1 to {PAGE_MAX}."
        )
    return int(raw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Todos:
    def __init__(
        self,
        store: TodoStore,
        data_key: Callable[[], bytes],
        clock: Callable[[], float],
        *,
        max_per_user: int,
    ) -> None:
        self._store = store
        self._data_key = data_key
        self._clock = clock
        self._max = max_per_user

    # ---------------------------------------------------------------- cursors

    def _mac(self, user_id: str, sort_key: str) -> bytes:
        key = hmac.new(self._data_key(), b"gatehouse/todo-cursor/v1", hashlib.sha256).digest()
        message = f"{user_id}\n{sort_key}".encode()
        return hmac.new(key, message, hashlib.sha256).digest()[:16]

    def _cursor(self, user_id: str, sort_key: str) -> str:
        return f"{_b64(sort_key.encode())}.{_b64(self._mac(user_id, sort_key))}"

    def _sort_key(self, user_id: str, cursor: str) -> str:
        refused = errors.ValidationError.of_field(
            "cursor", "invalid_cursor", "The cursor is not valid here."
        )
        body, _, mac = cursor.partition(".")
        try:
            sort_key = _unb64(body).decode("utf-8")
            valid = hmac.compare_digest(_unb64(mac), self._mac(user_id, sort_key))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise refused from None
        if not valid or not sort_key.startswith("TODO#"):
            raise refused
        return sort_key

    # ---------------------------------------------------------------- operations

    def create(self, user_id: str, text: str, completed: bool) -> TodoRecord:
        """A new to-do; 409 ``todo_limit_reached`` once the user holds the maximum."""
        now_ms = int(self._clock() * 1000)
        todo = TodoRecord(
            id=f"{now_ms:013d}{secrets.token_hex(4)}",
            text=check_text(text),
            completed=completed,
            created_at=now_ms // 1000,
            updated_at=now_ms // 1000,
        )
        if not self._store.create(user_id, todo, limit=self._max):
            raise errors.TodoLimitReached(
                f"A user may hold at most {self._max} to-dos; delete some first."
            )
        return todo

    def get(self, user_id: str, todo_id: str) -> TodoRecord:
        todo = self._store.get(user_id, todo_id) if _ID.fullmatch(todo_id) else None
        if todo is None:
            raise errors.NotFound("No such to-do.")
        return todo

    def page(
        self, user_id: str, *, limit: str | None, cursor: str | None
    ) -> tuple[list[TodoRecord], str | None]:
        """One page, newest first, and the cursor of the next (None on the last)."""
        after = self._sort_key(user_id, cursor) if cursor else None
        found = self._store.page(user_id, limit=page_size(limit), after=after)
        following = self._cursor(user_id, found.last_sort_key) if found.last_sort_key else None
        return found.todos, following

    def update(self, user_id: str, todo_id: str, body: dict[str, Any]) -> TodoRecord:
        """Change ``text`` and/or ``completed``; an empty change is a 400."""
        if not body:
            raise errors.ValidationError("Send 'text' and/or 'completed' to change.")
        changes: dict[str, Any] = {}
        if "text" in body:
            changes["text"] = check_text(body["text"])
        if "completed" in body:
            changes["completed"] = body["completed"]
        changes["updated_at"] = int(self._clock())
        todo = self._store.update(user_id, todo_id, changes) if _ID.fullmatch(todo_id) else None
        if todo is None:
            raise errors.NotFound("No such to-do.")
        return todo

    def delete(self, user_id: str, todo_id: str) -> None:
        if not (_ID.fullmatch(todo_id) and self._store.delete(user_id, todo_id)):
            raise errors.NotFound("No such to-do.")

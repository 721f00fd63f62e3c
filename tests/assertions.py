"""Assertions shared by the functional tests: problem documents and headers."""

from __future__ import annotations

import json
import os
from typing import Any

from chalice.test import HTTPResponse

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


#: The contract's ``User``, exactly.
USER_FIELDS = {
    "id",
    "username",
    "email",
    "email_verified",
    "display_name",
    "mfa_enabled",
    "created_at",
}


def unique(prefix: str = "user") -> str:
    """A username no other test (or earlier run on the same table) has used."""
    return f"{prefix}{os.urandom(5).hex()}"


def header(response: HTTPResponse, name: str) -> str | None:
    """A response header by case-insensitive name (HTTP header names are)."""
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def assert_problem(response: HTTPResponse, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status and code."""
    assert response.status_code == status, response.body
    assert header(response, "Content-Type") == "application/problem+json"
    document = json.loads(response.body)
    assert isinstance(document, dict)
    assert set(document) >= PROBLEM_FIELDS
    assert document["status"] == status
    assert document["code"] == code
    for member in ("type", "title", "detail"):
        assert isinstance(document[member], str) and document[member], member
    assert header(response, "X-Request-Id")
    assert header(response, "X-Content-Type-Options") == "nosniff"
    return document

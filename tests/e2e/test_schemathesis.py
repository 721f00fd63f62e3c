"""Schemathesis against the real local runner: every operation of GET /openapi.json is
called with generated requests, and every answer must be no 5xx, a documented status,
and match its documented schema (body and required headers).

Each operation runs as its own fresh user, so what one operation does to
an account (a wrong password counted by the throttle, a deleted account) cannot leak
into another's answers. ``POST /logout*`` ends the session it is called with, so those
log in again for every example.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.runner import Runner

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"
MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        parsed: dict[str, Any] = json.loads(answer.read())
        return parsed


def _signed_in(url: str) -> Callable[[], str]:
    """A fresh user; calling the result logs in (a new session) and gives its token."""
    username = f"st{os.urandom(6).hex()}"
    _post(f"{url}/register", {"username": username, "password": PASSWORD})

    def login() -> str:
        return str(
            _post(f"{url}/login", {"username": username, "password": PASSWORD})["access_token"]
        )

    return login


def _exercise(operation: schemathesis.APIOperation, url: str) -> None:
    """Up to MAX_EXAMPLES generated calls of one operation, as one fresh user; raises
    (after Hypothesis has shrunk it) on the first answer that fails a check."""
    login = _signed_in(url)
    token = login()
    ends_session = operation.path.startswith("/logout")

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        bearer = login() if ends_session else token
        case.call_and_validate(
            base_url=url, headers={"Authorization": f"Bearer {bearer}"}, checks=CHECKS
        )

    run()


def test_every_operation_answers_as_documented(shared_runner: Runner) -> None:
    schema = schemathesis.openapi.from_url(f"{shared_runner.url}/openapi.json")
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1
        try:
            _exercise(operation, shared_runner.url)
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - reported below
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    assert count >= 30
    assert not failures, "\n\n".join(failures)

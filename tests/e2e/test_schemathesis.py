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
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.runner import Runner

Operation = schemathesis.APIOperation[Any, Any, Any, Any]

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


def _exercise(operation: Operation, url: str, statuses: set[int], mode: GenerationMode) -> None:
    """Up to MAX_EXAMPLES generated calls of one operation, as one fresh user; raises
    (after Hypothesis has shrunk it) on the first answer that fails a check."""
    login = _signed_in(url)
    token = login()
    ends_session = operation.path.startswith("/logout")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: schemathesis.Case[Operation]) -> None:
        bearer = login() if ends_session else token
        response = case.call_and_validate(
            base_url=url, headers={"Authorization": f"Bearer {bearer}"}, checks=CHECKS
        )
        statuses.add(response.status_code)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(shared_runner: Runner, mode: GenerationMode) -> None:
    """Valid requests (positive) and requests that break the schema (negative)."""
    schema = schemathesis.openapi.from_url(f"{shared_runner.url}/openapi.json")
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        try:
            _exercise(operation, shared_runner.url, seen.setdefault(label, set()), mode)
        except Unsatisfiable:
            # Negative mode only: nothing of this operation can be sent wrong (no body,
            # no parameter a request may break). Positive generation always succeeds.
            assert mode is GenerationMode.NEGATIVE, label
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - reported below
            failures.append(f"{label}: {error}")
    assert not failures, "\n\n".join(failures)
    assert len(seen) >= 30
    assert sum(bool(statuses) for statuses in seen.values()) >= 20
    if mode is GenerationMode.POSITIVE:
        # The token works: signed-in operations really ran, not only their 401s.
        assert 200 in seen["GET /me"]
        assert 201 in seen["POST /todos"]
        assert 200 in seen["GET /todos"]
    else:
        assert all(400 in seen[f"POST {path}"] for path in ("/register", "/login", "/todos"))

"""Logs and metrics as an on-call engineer reads them: one JSON line per request with
the request id, CloudWatch EMF metrics on the same lines, and never a secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.edge.middleware import audited, metrics_for
from chalicelib.platform.observability import JsonFormatter
from tests.assertions import header
from tests.conftest import Api
from tests.functional import passkeys
from tests.functional.lifecycle import PASSWORD as LIFECYCLE_PASSWORD
from tests.functional.oauthflow import Client, register_client, sign_in
from tests.webauthn_authenticator import Authenticator

PASSWORD = "plum tangerine harbour 42"


class Captured(logging.Handler):
    """Every line the app's logger writes, formatted as it would be in CloudWatch."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("gatehouse")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def assert_valid_emf(line: dict[str, Any]) -> list[str]:
    """The line follows the Embedded Metric Format spec; returns its metric names."""
    block = line["_aws"]
    assert isinstance(block["Timestamp"], int)
    names = []
    for directive in block["CloudWatchMetrics"]:
        assert directive["Namespace"] == "Gatehouse"
        for dimension_set in directive["Dimensions"]:
            for dimension in dimension_set:
                assert isinstance(line[dimension], str)
        for metric in directive["Metrics"]:
            assert metric["Unit"] == "Count"
            assert isinstance(line[metric["Name"]], int | float)
            names.append(metric["Name"])
    return names


def metrics(logs: Captured) -> list[str]:
    return [name for line in logs.parsed() if "_aws" in line for name in assert_valid_emf(line)]


def test_each_request_is_one_json_line_with_its_request_id(api: Api, logs: Captured) -> None:
    response = api.get("/health")

    lines = [line for line in logs.parsed() if line["msg"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == header(response, "X-Request-Id")
    assert (line["method"], line["route"], line["status"]) == ("GET", "/health", 200)
    assert line["latency_ms"] >= 0


def test_no_password_token_or_email_ever_reaches_the_log(api: Api, logs: Captured) -> None:
    email = "observed.person@example.com"
    api.post("/register", {"username": "observed", "password": PASSWORD, "email": email})
    pair = api.post("/login", {"username": "observed", "password": PASSWORD}).json_body
    api.post("/login", {"username": "observed", "password": PASSWORD + " wrong"})
    api.get("/protected", token=pair["access_token"])
    refreshed = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]}).json_body
    api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})  # reuse

    text = "\n".join(logs.lines)
    secrets = [PASSWORD, pair["access_token"], pair["refresh_token"], refresh_secret(refreshed)]
    assert logs.lines
    for secret in [*secrets, email, "observed.person"]:
        assert secret not in text
    user_lines = [line for line in logs.parsed() if line.get("route") == "/protected"]
    assert user_lines and user_lines[0]["user_id"]


def refresh_secret(pair: dict[str, Any]) -> str:
    return str(pair["refresh_token"]).rsplit(".", 1)[-1]


def test_logins_registrations_and_reuse_are_counted_as_emf_metrics(
    api: Api, logs: Captured
) -> None:
    api.post("/register", {"username": "counted", "password": PASSWORD})
    pair = api.post("/login", {"username": "counted", "password": PASSWORD}).json_body
    api.post("/login", {"username": "counted", "password": "not the password 1"})
    api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
    api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})

    counted = metrics(logs)
    for name in ("Registration", "LoginSucceeded", "LoginFailed", "TokenRefreshed"):
        assert counted.count(name) == 1, counted
    assert counted.count("RefreshReuse") == 1
    reuse = next(line for line in logs.parsed() if line["msg"] == "RefreshReuse")
    assert reuse["level"] == "WARNING"
    assert reuse["user_id"] == str(pair["refresh_token"]).split(".", 1)[0]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (("POST", "/login", 429, "too_many_attempts"), ["Throttled"]),
        (("POST", "/password/forgot", 429, "too_many_attempts"), ["Throttled"]),
        (("GET", "/me", 503, "service_unavailable"), ["ServerError"]),
        (("POST", "/login", 401, "mfa_required"), ["MfaChallenged"]),
        (("GET", "/health", 200, None), []),
    ],
)
def test_throttles_mfa_challenges_and_server_errors_are_counted(
    answer: tuple[str, str, int, str | None], expected: list[str]
) -> None:
    assert metrics_for(*answer) == expected


def test_security_events_are_audit_lines_and_nothing_else_is(api: Api, logs: Captured) -> None:
    """The lines the optional archive ships (``{ $.audit IS TRUE }``): logins, failed
    ones included, registrations, refreshes and their reuse; not reads or to-dos."""
    api.post("/register", {"username": "audited", "password": PASSWORD})
    pair = api.post("/login", {"username": "audited", "password": PASSWORD}).json_body
    api.get("/me", token=pair["access_token"])
    api.post("/login", {"username": "audited", "password": "not the password 1"})
    api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
    api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})  # reuse
    api.get("/health")

    audit = [
        (line["msg"], line.get("route"), line.get("status"))
        for line in logs.parsed()
        if line.get("audit") is True
    ]
    assert audit == [
        ("request", "/register", 201),
        ("request", "/login", 200),
        ("request", "/login", 401),
        ("request", "/token/refresh", 200),
        ("RefreshReuse", None, None),
        ("request", "/token/refresh", 401),
    ]
    others = [line for line in logs.parsed() if "audit" not in line]
    assert {(line["method"], line["route"]) for line in others} == {
        ("GET", "/me"),
        ("GET", "/health"),
    }


@pytest.mark.parametrize(
    ("method", "route", "status", "expected"),
    [
        ("POST", "/me/password", 204, True),
        ("DELETE", "/me/mfa/totp", 204, True),
        ("POST", "/password/forgot", 202, True),
        ("GET", "/me/sessions", 200, False),
        ("GET", "/todos", 429, True),
        ("POST", "/todos", 201, False),
        ("PATCH", "/todos/{todo_id}", 200, False),
    ],
)
def test_which_answers_are_audited(method: str, route: str, status: int, expected: bool) -> None:
    assert audited(method, route, status) is expected


# ------------------------------------------------------------------ passkeys


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (("POST", "/passkeys/login", 200, None), ["LoginSucceeded", "PasskeyLoginSucceeded"]),
        (
            ("POST", "/passkeys/login", 401, "invalid_credentials"),
            ["LoginFailed", "PasskeyLoginFailed"],
        ),
        (("POST", "/passkeys/login", 400, "validation_error"), []),
        (("POST", "/passkeys/login", 429, "too_many_attempts"), ["Throttled"]),
        (("POST", "/passkeys/options", 200, None), []),
    ],
)
def test_passkey_sign_ins_count_as_logins_and_as_their_own(
    answer: tuple[str, str, int, str | None], expected: list[str]
) -> None:
    """LoginFailed, which the login-failure alarm watches, counts both ways in."""
    assert metrics_for(*answer) == expected


def test_passkey_lines_are_emf_metrics_and_audit_lines_with_events_to_match(
    api: Api, logs: Captured, new_user: Callable[..., dict[str, Any]]
) -> None:
    """A passkey's life as the log and the user's activity show it: every change and
    every sign-in (refused or cloned too) is an audit line and an activity event; the
    options the sign-in page asks for are neither. No challenge, signature or
    credential member reaches the log."""
    user = new_user()
    token = api.post("/login", {"username": user["username"], "password": LIFECYCLE_PASSWORD})
    access = token.json_body["access_token"]
    authenticator = Authenticator()
    logs.lines.clear()

    options = passkeys.creation_options(api, access)
    created = authenticator.create(options)
    added = api.post("/me/passkeys", {"credential": created}, token=access).json_body
    path = f"/me/passkeys/{added['id']}"
    sign_in_options = passkeys.request_options(api)
    asserted = authenticator.get(sign_in_options, sign_count=7)
    assert passkeys.passkey_login(api, asserted).status_code == 200
    forged = authenticator.get(passkeys.request_options(api), bad_signature=True)
    assert passkeys.passkey_login(api, forged).status_code == 401
    assert passkeys.sign_in(api, authenticator, sign_count=7).status_code == 401  # cloned
    assert api.request("PATCH", path, {"name": "Desk"}, token=access).status_code == 200
    assert api.request("DELETE", path, None, token=access).status_code == 204

    counted = metrics(logs)
    assert counted.count("LoginSucceeded") == counted.count("PasskeyLoginSucceeded") == 1
    assert counted.count("LoginFailed") == counted.count("PasskeyLoginFailed") == 2
    assert counted.count("PasskeyCloned") == 1
    audit = [
        (line.get("method"), line.get("route"), line.get("status"), line["msg"])
        for line in logs.parsed()
        if line.get("audit") is True
    ]
    assert audit == [
        ("POST", "/me/passkeys/options", 200, "request"),
        ("POST", "/me/passkeys", 201, "request"),
        ("POST", "/passkeys/login", 200, "request"),
        ("POST", "/passkeys/login", 401, "request"),
        (None, None, None, "PasskeyCloned"),
        ("POST", "/passkeys/login", 401, "request"),
        ("PATCH", "/me/passkeys/{passkey_id}", 200, "request"),
        ("DELETE", "/me/passkeys/{passkey_id}", 204, "request"),
    ]
    listed = api.get("/me/activity", token=access).json_body["events"]
    kinds = [(e["type"], e["outcome"]) for e in listed if e["type"].startswith("passkey")]
    assert kinds == [
        ("passkey_removed", "success"),
        ("passkey_renamed", "success"),
        ("passkey_login", "cloned"),
        ("passkey_login", "failure"),
        ("passkey_login", "success"),
        ("passkey_added", "success"),
    ]
    text = "\n".join(logs.lines)
    secrets = [
        options["challenge"],
        sign_in_options["challenge"],
        *created["response"].values(),
        *asserted["response"].values(),
        forged["response"]["signature"],
        added["id"],
    ]
    for secret in secrets:
        if isinstance(secret, str) and len(secret) > 8:
            assert secret not in text


def test_the_token_endpoint_counts_grants_and_errors_and_logs_no_secret(
    api: Api, logs: Captured, new_user: Callable[..., dict[str, Any]]
) -> None:
    client = register_client(api)
    made = new_user(password=PASSWORD)
    token = api.post("/login", {"username": made["username"], "password": PASSWORD}).json_body[
        "access_token"
    ]
    tokens, back = sign_in(client, token)
    client.exchange(back["code"])  # reused: invalid_grant
    wrong = Client(api, client.client_id, "not-the-secret", client.redirect_uri)
    wrong.exchange("whatever")  # invalid_client

    counted = metrics(logs)
    assert counted.count("OAuthTokenIssued") == 1
    assert counted.count("OAuthTokenError") == 2
    assert counted.count("OAuthClientRefused") == 2
    assert counted.count("OAuthAuthorized") == 1
    assert counted.count("OAuthClientChanged") == 1
    errors = [line for line in logs.parsed() if line.get("msg") == "OAuthTokenError"]
    assert sorted(line["Error"] for line in errors) == ["invalid_client", "invalid_grant"]
    assert all(line["audit"] is True for line in errors)
    text = "\n".join(logs.lines)
    for secret in (
        str(client.secret),
        tokens["access_token"],
        tokens["refresh_token"],
        back["code"],
    ):
        assert secret not in text

"""Property-based requests: any JSON value in any field gets a contract answer (a
success or a problem document with a 4xx status), never a 5xx."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from chalice.test import HTTPResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.edge.localgateway import GatewayClient
from tests.assertions import PROBLEM_FIELDS, header, unique
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD

EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

lone_surrogates = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3)
strings = st.text(max_size=40) | lone_surrogates | st.sampled_from(["", " ", "a@b.co", PASSWORD])
scalars = st.none() | st.booleans() | st.integers() | st.floats() | strings
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
fresh_usernames = st.builds(lambda: unique("fz"))
fresh_emails = st.builds(lambda: f"{unique('fz')}@example.com")


def field(*also: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(json_values, *also)


def assert_answered(response: HTTPResponse, allowed: set[int]) -> None:
    """A contract answer: an allowed status, and a problem document for an error."""
    assert response.status_code < 500, response.body
    assert response.status_code in allowed, (response.status_code, response.body)
    assert header(response, "X-Request-Id")
    if response.status_code >= 400:
        assert header(response, "Content-Type") == "application/problem+json"
        document = json.loads(response.body)
        assert set(document) >= PROBLEM_FIELDS
        assert document["status"] == response.status_code


@EXAMPLES
@given(
    body=st.fixed_dictionaries(
        {
            "username": field(fresh_usernames),
            "password": field(st.just(PASSWORD)),
        },
        optional={
            "email": field(fresh_emails),
            "display_name": json_values,
            "admin": json_values,
        },
    )
)
def test_register_never_answers_5xx(gateway_client: GatewayClient, body: dict[str, Any]) -> None:
    response = Api(gateway_client.http).post("/register", body)

    assert_answered(response, {201, 400, 409})


@EXAMPLES
@given(
    body=st.fixed_dictionaries(
        {"username": field(fresh_usernames), "password": field(st.just(PASSWORD))},
        optional={"totp_code": json_values, "remember": json_values},
    )
)
def test_login_never_answers_5xx(gateway_client: GatewayClient, body: dict[str, Any]) -> None:
    response = Api(gateway_client.http).post("/login", body)

    assert_answered(response, {200, 400, 401, 429})


@EXAMPLES
@given(
    path=st.sampled_from(["/token/refresh", "/password/reset", "/email/verify", "/logout"]),
    body=st.dictionaries(
        st.sampled_from(["token", "refresh_token", "new_password", "email", "other"]),
        json_values,
        max_size=3,
    ),
)
def test_public_token_routes_never_answer_5xx(
    gateway_client: GatewayClient, path: str, body: dict[str, Any]
) -> None:
    response = Api(gateway_client.http).post(path, body)

    assert_answered(response, {200, 204, 400, 401, 429})


@EXAMPLES
@given(
    method_path=st.sampled_from(
        [
            ("PATCH", "/me"),
            ("POST", "/me/password"),
            ("POST", "/me/mfa/totp/confirm"),
            ("DELETE", "/me/mfa/totp"),
        ]
    ),
    body=st.dictionaries(
        st.sampled_from(
            ["email", "display_name", "current_password", "new_password", "code", "password", "x"]
        ),
        field(fresh_emails),
        max_size=3,
    ),
)
def test_signed_in_routes_never_answer_5xx(
    api: Api,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
    method_path: tuple[str, str],
    body: dict[str, Any],
) -> None:
    user = new_user(username=f"fz{os.urandom(6).hex()}")
    token = login(user["username"], PASSWORD)["access_token"]
    method, path = method_path

    response = api.request(method, path, body, token=token)

    assert_answered(response, {200, 204, 400, 401, 409, 429})

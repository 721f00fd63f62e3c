"""What every response carries, whatever produced it, and CORS for allowed origins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chalice.test import HTTPResponse

from chalicelib.platform.config import Settings
from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.lifecycle import installed

ALLOWED = "https://app.example"
OTHER = "https://evil.example"


@pytest.fixture
def cors(settings: Settings) -> Iterator[None]:
    """Serve with one allowed origin for the length of a test."""
    with installed(settings, cors_origins=frozenset({ALLOWED})):
        yield


def assert_secured(response: HTTPResponse) -> None:
    assert header(response, "X-Request-Id")
    assert header(response, "X-Content-Type-Options") == "nosniff"
    assert header(response, "Strict-Transport-Security") == "max-age=63072000; includeSubDomains"
    assert header(response, "Referrer-Policy") == "no-referrer"
    assert header(response, "X-Frame-Options") == "DENY"


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/health", None, None, 200),
        ("POST", "/login", {"username": 1}, None, 400),
        ("GET", "/protected", None, None, 401),  # API Gateway's own answer, adapted
        ("GET", "/protected", None, "garbage", 401),  # the authorizer's refusal
        ("GET", "/no/such/route", None, None, 404),
        ("DELETE", "/health", None, None, 405),
    ],
)
def test_every_api_answer_carries_the_security_headers(
    api: Api, case: tuple[str, str, object, str | None, int]
) -> None:
    method, path, body, token, status = case
    response = api.request(method, path, body, token=token)

    assert response.status_code == status
    assert_secured(response)
    assert (
        header(response, "Content-Security-Policy") == "default-src 'none'; frame-ancestors 'none'"
    )


def test_the_web_page_keeps_its_own_policy_and_the_common_headers(api: Api) -> None:
    response = api.get("/")

    assert_secured(response)
    assert "script-src 'self'" in (header(response, "Content-Security-Policy") or "")
    assert header(response, "Cache-Control") == "no-cache"


def test_an_allowed_origin_may_read_answers_and_caches_are_told_it_varies(
    api: Api, cors: None
) -> None:
    response = api.get("/health", headers={"Origin": ALLOWED})

    assert header(response, "Access-Control-Allow-Origin") == ALLOWED
    assert header(response, "Vary") == "Origin"
    assert "X-Request-Id" in (header(response, "Access-Control-Expose-Headers") or "")
    assert header(response, "Access-Control-Allow-Credentials") is None


def test_another_origin_gets_no_cors_grant(api: Api, cors: None) -> None:
    response = api.get("/health", headers={"Origin": OTHER})

    assert response.status_code == 200
    assert header(response, "Access-Control-Allow-Origin") is None
    assert header(response, "Vary") == "Origin"


def test_a_preflight_from_an_allowed_origin_lists_the_served_methods(api: Api, cors: None) -> None:
    response = api.request(
        "OPTIONS",
        "/me",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )

    assert response.status_code == 204
    assert header(response, "Access-Control-Allow-Origin") == ALLOWED
    assert header(response, "Access-Control-Allow-Methods") == "DELETE, GET, PATCH"
    assert header(response, "Access-Control-Allow-Headers") == "Authorization, Content-Type"
    assert_secured(response)


@pytest.mark.parametrize(
    ("origin", "method"),
    [(OTHER, "POST"), (ALLOWED, "PUT")],  # a refused origin; a method /login does not serve
)
def test_a_refused_preflight_is_a_403_problem(
    api: Api, cors: None, origin: str, method: str
) -> None:
    response = api.request(
        "OPTIONS", "/login", headers={"Origin": origin, "Access-Control-Request-Method": method}
    )

    assert_problem(response, 403, "origin_not_allowed")
    if origin == OTHER:
        assert header(response, "Access-Control-Allow-Origin") is None


def test_with_no_origins_configured_there_is_no_cors_at_all(api: Api) -> None:
    response = api.request(
        "OPTIONS", "/login", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )

    assert_problem(response, 403, "origin_not_allowed")
    assert header(response, "Vary") is None

"""GET /protected behind the bearer authorizer, the gateway's own answers, and /health."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from chalice.test import HTTPResponse

from chalicelib.crypto.keys import (
    KeyRing,
    KeySource,
    LocalKeyFile,
    PublicPart,
    new_private_pem,
    ring_from_pems,
)
from chalicelib.crypto.tokens import AccessClaims, AccessTokens
from chalicelib.platform.config import Settings
from chalicelib.wiring import Services
from tests.assertions import assert_problem, header
from tests.conftest import Api

PASSWORD = "correct horse battery staple"


class StaticKeys:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def load(self) -> KeyRing:
        return self.ring


@pytest.fixture
def session(
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
    app_services: Services,
) -> tuple[dict[str, Any], AccessClaims]:
    """A logged-in user: the token pair and what its access token says."""
    user = new_user(password=PASSWORD)
    pair = login(user["username"], PASSWORD)
    return pair, app_services.tokens.verify(pair["access_token"])


def assert_invalid_token(response: HTTPResponse) -> None:
    assert_problem(response, 401, "invalid_token")
    challenge = header(response, "WWW-Authenticate")
    assert challenge is not None and challenge.startswith("Bearer")


def tokens_like(
    settings: Settings, *, keys: KeySource[KeyRing] | None = None, clock: float | None = None
) -> AccessTokens:
    """An ``AccessTokens`` configured as the app's, with another clock or key ring source."""
    source = keys if keys is not None else LocalKeyFile(settings.key_file)
    return AccessTokens(
        source,
        PublicPart(source),
        issuer=settings.issuer,
        audience=settings.audience,
        lifetime=settings.access_token_seconds,
        clock=(lambda: clock) if clock is not None else time.time,
    )


# ------------------------------------------------------------------ accepted


def test_a_valid_access_token_reaches_protected(
    api: Api, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    pair, claims = session

    response = api.get("/protected", token=pair["access_token"])

    assert response.status_code == 200, response.body
    assert response.json_body["user"] == {"id": claims.user_id, "username": claims.username}
    assert isinstance(response.json_body["message"], str)
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "X-Content-Type-Options") == "nosniff"


def test_the_bearer_scheme_is_case_insensitive(
    api: Api, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    pair, _ = session

    response = api.get("/protected", headers={"Authorization": f"bearer {pair['access_token']}"})

    assert response.status_code == 200, response.body


# ------------------------------------------------------------------ refused


def test_no_authorization_header_is_401_invalid_token(api: Api) -> None:
    assert_invalid_token(api.client.request("GET", "/protected", headers={}))


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer " + "x" * 10_000,
        "Basic dXNlcjpwYXNzd29yZA==",
        "Digest username=alice",
        "garbage",
        "Bearer \u00e9\u00e9\u00e9",
    ],
)
def test_a_missing_or_malformed_bearer_token_is_401_invalid_token(
    api: Api, authorization: str
) -> None:
    response = api.client.request("GET", "/protected", headers={"Authorization": authorization})

    assert_invalid_token(response)


def test_an_access_token_under_another_scheme_is_401_invalid_token(
    api: Api, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    pair, _ = session
    headers = {"Authorization": f"Basic {pair['access_token']}"}

    assert_invalid_token(api.client.request("GET", "/protected", headers=headers))


def test_a_refresh_token_used_as_a_bearer_token_is_401_invalid_token(
    api: Api, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    pair, _ = session

    assert_invalid_token(api.get("/protected", token=pair["refresh_token"]))


def test_an_expired_token_for_a_live_session_is_401_invalid_token(
    api: Api, settings: Settings, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    _, claims = session
    an_hour_ago = time.time() - 3600
    expired = tokens_like(settings, clock=an_hour_ago).issue(
        claims.user_id, claims.username, claims.session_id
    )

    assert_invalid_token(api.get("/protected", token=expired))


def test_a_fresh_token_from_the_same_keys_works_as_the_control(
    api: Api, settings: Settings, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    _, claims = session
    fresh = tokens_like(settings).issue(claims.user_id, claims.username, claims.session_id)

    assert api.get("/protected", token=fresh).status_code == 200


def test_a_token_signed_by_a_foreign_key_is_401_invalid_token(
    api: Api, settings: Settings, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    _, claims = session
    foreign_keys = StaticKeys(ring_from_pems([new_private_pem()]))
    forged = tokens_like(settings, keys=foreign_keys).issue(
        claims.user_id, claims.username, claims.session_id
    )

    assert_invalid_token(api.get("/protected", token=forged))


def test_a_token_for_a_session_that_does_not_exist_is_401_invalid_token(
    api: Api, settings: Settings, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    _, claims = session
    made_up = tokens_like(settings).issue(claims.user_id, claims.username, "no-such-session")

    assert_invalid_token(api.get("/protected", token=made_up))


def test_a_token_whose_session_was_deleted_is_401_invalid_token(
    api: Api, settings: Settings, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    pair, claims = session
    assert api.get("/protected", token=pair["access_token"]).status_code == 200
    client = boto3.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint,
        region_name=settings.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.delete_item(
        TableName=settings.table_name,
        Key={
            "pk": {"S": f"USER#{claims.user_id}"},
            "sk": {"S": f"SESSION#{claims.session_id}"},
        },
    )

    assert_invalid_token(api.get("/protected", token=pair["access_token"]))


def test_invalid_token_answers_do_not_say_why(
    api: Api, settings: Settings, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    _, claims = session
    expired = tokens_like(settings, clock=time.time() - 3600).issue(
        claims.user_id, claims.username, claims.session_id
    )
    answers = [
        api.client.request("GET", "/protected", headers={}),
        api.get("/protected", token="garbage"),
        api.get("/protected", token=expired),
    ]

    assert len({response.body for response in answers}) == 1


# ------------------------------------------------------------------ the gateway's own answers


@pytest.mark.parametrize("path", ["/nope", "/protected/extra", "/login/x/y", "/.env", "/%00"])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer garbage", "Basic dXNlcg==", "Bearer \u00e9"],
    ids=["no-auth", "bearer", "basic", "non-ascii"],
)
def test_an_unknown_route_is_404_not_found(api: Api, path: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = api.client.request("GET", path, headers=headers)

    assert_problem(response, 404, "not_found")
    assert header(response, "WWW-Authenticate") is None


def test_an_unknown_route_with_a_valid_token_is_404_not_found(
    api: Api, session: tuple[dict[str, Any], AccessClaims]
) -> None:
    pair, _ = session

    assert_problem(api.get("/no/such/route", token=pair["access_token"]), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/login", "POST"),
        ("GET", "/login", "POST"),
        ("PUT", "/register", "POST"),
        ("POST", "/protected", "GET"),
        ("DELETE", "/protected", "GET"),
        ("PUT", "/health", "GET"),
        ("PATCH", "/health", "GET"),
        ("HEAD", "/health", "GET"),
        ("OPTIONS", "/login", "POST"),
        ("OPTIONS", "/protected", "GET"),
    ],
)
def test_a_wrong_method_is_405_method_not_allowed_with_allow(
    api: Api, method: str, path: str, allow: str
) -> None:
    response = api.request(method, path)

    assert_problem(response, 405, "method_not_allowed")
    assert header(response, "Allow") == allow


def test_a_wrong_method_with_a_json_body_is_still_405(api: Api) -> None:
    response = api.request("PUT", "/login", {"username": "alice", "password": PASSWORD})

    assert_problem(response, 405, "method_not_allowed")


# ------------------------------------------------------------------ health


def test_health_is_ok_with_its_checks(api: Api) -> None:
    response = api.get("/health")

    assert response.status_code == 200, response.body
    assert header(response, "Content-Type") == "application/json"
    body = response.json_body
    assert body["status"] == "ok"
    assert isinstance(body["checks"], dict) and body["checks"]
    assert set(body["checks"].values()) == {"ok"}
    assert header(response, "X-Request-Id")
    assert header(response, "X-Content-Type-Options") == "nosniff"


def test_health_needs_no_token_and_ignores_a_bad_one(api: Api) -> None:
    response = api.get("/health", token="garbage")

    assert response.status_code == 200

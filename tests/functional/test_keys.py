"""Signing keys as a client sees them: JWKS, discovery, and rotation with no logout.

Rotation tests give the app its own key file (a separate ``Services``, installed for the
test and the session fixture's put back afterwards). Each ``Services.build`` stands for a
fresh container: it reads the key ring once, as a cold Lambda does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlparse

import jwt
import pytest

from chalicelib import wiring
from chalicelib.crypto.keys import KeyDocument, LocalKeyFile
from chalicelib.platform.config import Settings
from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.oauthflow import register_client, sign_in

PASSWORD = "correct horse battery staple"
JWK_FIELDS = {"kty", "kid", "alg", "use", "n", "e"}
PRIVATE_JWK_FIELDS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@dataclass
class OwnKeys:
    """The app running on a key file of its own; ``container()`` starts a fresh one."""

    settings: Settings
    file: LocalKeyFile

    def container(self) -> wiring.Services:
        built = wiring.Services.build(self.settings)
        wiring.install(built)
        return built

    def rotate(self) -> KeyDocument:
        document = self.file.read().rotated(int(time.time()))
        self.file.write(document)
        return document

    def retire(self, kid: str) -> KeyDocument:
        document = self.file.read().retired(kid)
        self.file.write(document)
        return document


@pytest.fixture
def own_keys(tmp_path: Any, settings: Settings, app_services: wiring.Services) -> Iterator[OwnKeys]:
    own = replace(settings, key_file=tmp_path / "signing-keys.json")
    try:
        yield OwnKeys(own, LocalKeyFile(own.key_file))
    finally:
        wiring.install(app_services)


@pytest.fixture
def user_login(api: Api, new_user: Callable[..., dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """A fresh user; each call logs them in again and returns the token pair."""
    user = new_user(password=PASSWORD)

    def do() -> dict[str, Any]:
        response = api.post("/login", {"username": user["username"], "password": PASSWORD})
        assert response.status_code == 200, response.body
        return dict(response.json_body)

    return do


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def fetch_jwks(api: Api) -> dict[str, Any]:
    response = api.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def jwks_kids(api: Api) -> set[str]:
    return {key["kid"] for key in fetch_jwks(api)["keys"]}


def verify_with_jwks_only(
    token: str, jwks: dict[str, Any], *, issuer: str, audience: str
) -> dict[str, Any]:
    """What a third-party verifier does: the JWK Set, RS256 only, our issuer and audience."""
    key_set = jwt.PyJWKSet.from_dict(jwks)
    signing_key = key_set[kid_of(token)]
    claims: dict[str, Any] = jwt.decode(
        token, signing_key.key, algorithms=["RS256"], audience=audience, issuer=issuer
    )
    return claims


def works(api: Api, access_token: str) -> bool:
    status = api.get("/protected", token=access_token).status_code
    assert status in (200, 401)
    return status == 200


def max_age(cache_control: str | None) -> int:
    assert cache_control is not None
    directives = [d.strip() for d in cache_control.split(",")]
    assert "public" in directives, cache_control
    (age,) = [d for d in directives if d.startswith("max-age=")]
    return int(age.removeprefix("max-age="))


# ------------------------------------------------------------------ JWKS


def test_jwks_publishes_exactly_the_verifying_keys(api: Api, own_keys: OwnKeys) -> None:
    own_keys.rotate()
    document = own_keys.rotate()  # three keys: one signs, all verify
    own_keys.container()

    response = api.get("/.well-known/jwks.json")

    assert response.status_code == 200, response.body
    assert header(response, "Content-Type") == "application/json"
    assert max_age(header(response, "Cache-Control")) > 0
    assert header(response, "X-Content-Type-Options") == "nosniff"
    keys = response.json_body["keys"]
    assert sorted(key["kid"] for key in keys) == sorted(k.kid for k in document.keys)
    for key in keys:
        assert set(key) == JWK_FIELDS
        assert not set(key) & PRIVATE_JWK_FIELDS
        assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
        assert key["e"] == "AQAB"
        assert len(key["n"]) >= 342  # 2048 bits, base64url without padding
        assert "=" not in key["n"]


def test_jwks_needs_no_token(api: Api) -> None:
    response = api.get("/.well-known/jwks.json", token="garbage")

    assert response.status_code == 200
    assert response.json_body["keys"]


def test_a_token_verifies_with_only_the_jwks_document(
    api: Api, settings: Settings, user_login: Callable[[], dict[str, Any]]
) -> None:
    pair = user_login()
    discovery = api.get("/.well-known/openid-configuration").json_body

    claims = verify_with_jwks_only(
        pair["access_token"],
        fetch_jwks(api),
        issuer=discovery["issuer"],
        audience=settings.audience,
    )

    me = api.get("/protected", token=pair["access_token"]).json_body["user"]
    assert claims["sub"] == me["id"]
    assert claims["username"] == me["username"]
    assert {"iss", "aud", "sub", "username", "iat", "exp", "jti", "sid"} <= set(claims)
    assert jwt.get_unverified_header(pair["access_token"])["alg"] == "RS256"


def test_a_jwks_verifier_refuses_a_token_with_another_audience(
    api: Api, settings: Settings, user_login: Callable[[], dict[str, Any]]
) -> None:
    pair = user_login()

    with pytest.raises(jwt.InvalidAudienceError):
        verify_with_jwks_only(
            pair["access_token"],
            fetch_jwks(api),
            issuer=settings.issuer,
            audience="some-other-api",
        )


# ------------------------------------------------------------------ discovery


def test_discovery_names_the_tokens_issuer_and_the_jwks_uri(
    api: Api, settings: Settings, user_login: Callable[[], dict[str, Any]]
) -> None:
    pair = user_login()

    response = api.get("/.well-known/openid-configuration")

    assert response.status_code == 200, response.body
    assert max_age(header(response, "Cache-Control")) > 0
    document = response.json_body
    token_claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert document["issuer"] == token_claims["iss"] == settings.issuer
    jwks_uri = urlparse(document["jwks_uri"])
    assert jwks_uri.scheme in ("http", "https") and jwks_uri.netloc
    assert jwks_uri.path.endswith("/.well-known/jwks.json")
    assert "RS256" in document["id_token_signing_alg_values_supported"]
    # The advertised JWKS is the one this API serves.
    assert api.get(jwks_uri.path).json_body == fetch_jwks(api)


# ------------------------------------------------------------------ rotation


def test_rotation_keeps_old_tokens_working_and_signs_new_ones_with_the_new_key(
    api: Api,
    settings: Settings,
    own_keys: OwnKeys,
    user_login: Callable[[], dict[str, Any]],
) -> None:
    own_keys.container()
    before = user_login()
    old_kid = kid_of(before["access_token"])
    assert jwks_kids(api) == {old_kid}

    rotated = own_keys.rotate()
    own_keys.container()

    assert rotated.signing_kid != old_kid
    assert works(api, before["access_token"])
    after = user_login()
    assert kid_of(after["access_token"]) == rotated.signing_kid
    assert works(api, after["access_token"])
    jwks = fetch_jwks(api)
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, rotated.signing_kid}
    for token in (before["access_token"], after["access_token"]):
        verify_with_jwks_only(token, jwks, issuer=settings.issuer, audience=settings.audience)


def test_a_session_started_before_a_rotation_refreshes_onto_the_new_key(
    api: Api, own_keys: OwnKeys, user_login: Callable[[], dict[str, Any]]
) -> None:
    own_keys.container()
    before = user_login()

    rotated = own_keys.rotate()
    own_keys.container()
    response = api.post("/token/refresh", {"refresh_token": before["refresh_token"]})

    assert response.status_code == 200, response.body
    assert kid_of(response.json_body["access_token"]) == rotated.signing_kid
    assert works(api, response.json_body["access_token"])


def test_after_retiring_the_old_key_its_tokens_fail_and_it_leaves_the_jwks(
    api: Api,
    settings: Settings,
    own_keys: OwnKeys,
    user_login: Callable[[], dict[str, Any]],
) -> None:
    own_keys.container()
    before = user_login()
    old_kid = kid_of(before["access_token"])
    rotated = own_keys.rotate()
    own_keys.container()
    after = user_login()

    own_keys.retire(old_kid)
    own_keys.container()

    assert_problem(api.get("/protected", token=before["access_token"]), 401, "invalid_token")
    assert works(api, after["access_token"])
    jwks = fetch_jwks(api)
    assert {key["kid"] for key in jwks["keys"]} == {rotated.signing_kid}
    with pytest.raises(KeyError):  # the JWK Set has no key for its kid
        verify_with_jwks_only(
            before["access_token"], jwks, issuer=settings.issuer, audience=settings.audience
        )


def test_the_signing_key_cannot_be_retired(own_keys: OwnKeys) -> None:
    document = own_keys.file.read()

    with pytest.raises(ValueError, match="signing key"):
        own_keys.retire(document.signing_kid)

    assert own_keys.file.read() == document


def test_oidcc_server_rotate_keys_id_tokens_use_the_new_key_and_old_ones_still_verify(
    api: Api, own_keys: OwnKeys, user_login: Callable[[], dict[str, Any]]
) -> None:
    own_keys.container()
    client = register_client(api)
    before, _ = sign_in(client, user_login()["access_token"])
    rotated = own_keys.rotate()
    own_keys.container()  # a fresh container reads the rotated ring

    after, _ = sign_in(client, user_login()["access_token"])

    assert kid_of(after["id_token"]) == rotated.signing_kid != kid_of(before["id_token"])
    keys = jwt.PyJWKSet.from_dict(fetch_jwks(api))
    issuer = wiring.get().settings.issuer
    for tokens in (before, after):
        key = next(k for k in keys.keys if k.key_id == kid_of(tokens["id_token"]))
        claims = jwt.decode(
            tokens["id_token"],
            key.key,
            algorithms=["RS256"],
            audience=client.client_id,
            issuer=issuer,
        )
        assert claims["aud"] == client.client_id
        assert api.get("/oauth2/userinfo", token=tokens["access_token"]).status_code == 200

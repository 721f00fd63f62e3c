"""The authorization code flow with PKCE, end to end through the HTTP interface.

A client registered as the operator does, a user signed in on the web page (its bearer
token), and the client's requests exactly as the contract describes them. Each test
names the OpenID Foundation conformance module it stands in for where there is one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from chalicelib import wiring
from chalicelib.accounts.sessions import Device
from chalicelib.oauth.messages import HttpRequest
from chalicelib.oauth.provider import Provider
from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.oauthflow import (
    REDIRECT_URI,
    Client,
    allowed,
    basic,
    consent,
    query_of,
    register_client,
    s256,
    sign_in,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(api: Api) -> Client:
    return register_client(api)


@pytest.fixture
def user(
    new_user: Callable[..., dict[str, Any]], login: Callable[[str, str], dict[str, Any]]
) -> dict[str, Any]:
    """A registered user with an email and a display name, and their web-page session."""
    made = new_user(email=f"{time.time_ns()}@example.com", display_name="Ada Lovelace")
    return {**made, "access_token": login(made["username"], PASSWORD)["access_token"]}


def id_token_claims(api: Api, token: str, audience: str) -> dict[str, Any]:
    """Verify an ID token as a relying party does: the JWKS, RS256, issuer, audience."""
    keys = jwt.PyJWKSet.from_dict(api.get("/.well-known/jwks.json").json_body)
    kid = jwt.get_unverified_header(token)["kid"]
    issuer = wiring.get().settings.issuer
    key = next(k for k in keys.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer
    )
    return claims


def userinfo(api: Api, access_token: str) -> Any:
    return api.get("/oauth2/userinfo", token=access_token)


def oauth_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert header(response, "Content-Type") == "application/json"
    assert header(response, "Cache-Control") == "no-store"
    body: dict[str, Any] = json.loads(response.body)
    assert body["error"] == error
    return body


# ------------------------------------------------------------------ the happy path


def test_oidcc_server_code_flow_gives_verifiable_tokens(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    started = client.authorize(nonce="n-123", state="s-456")
    assert started.status_code == 302
    issuer = wiring.get().settings.issuer
    location = str(header(started, "Location"))
    assert location.startswith(f"{issuer}/?request_id=")
    request_id = query_of(location)["request_id"]

    described = api.get(f"/oauth2/requests/{request_id}", token=user["access_token"])
    assert described.status_code == 200
    assert described.json_body == {
        "client": {"client_id": client.client_id, "name": "Wiki"},
        "scopes": ["openid", "profile", "email", "offline_access"],
        "redirect_uri": REDIRECT_URI,
        "remembered": False,
        "reauthenticate": False,
    }
    decided = api.post(
        f"/oauth2/requests/{request_id}", {"decision": "allow"}, token=user["access_token"]
    )
    back = query_of(decided.json_body["redirect_to"])
    assert decided.json_body["redirect_to"].startswith(REDIRECT_URI + "?")
    assert back["state"] == "s-456" and back["iss"] == issuer

    exchanged = client.exchange(back["code"])

    assert exchanged.status_code == 200, exchanged.body
    assert header(exchanged, "Cache-Control") == "no-store"
    tokens = exchanged.json_body
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    assert tokens["scope"] == "openid profile email offline_access"
    assert tokens["refresh_token"]
    claims = id_token_claims(api, tokens["id_token"], client.client_id)
    assert claims["sub"] == user["user"]["id"]
    assert claims["azp"] == client.client_id
    assert claims["nonce"] == "n-123"
    assert claims["email"] == user["email"] and claims["email_verified"] is False
    assert claims["preferred_username"] == user["username"]
    assert claims["name"] == "Ada Lovelace"
    assert abs(claims["auth_time"] - time.time()) < 60
    assert claims["sid"]
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    assert access["client_id"] == client.client_id and access["sub"] == user["user"]["id"]
    assert access["scope"] == tokens["scope"]


def test_oidcc_userinfo_get_and_post_header_and_body(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    tokens, _ = sign_in(client, user["access_token"])
    expected = {
        "sub": user["user"]["id"],
        "email": user["email"],
        "email_verified": False,
        "preferred_username": user["username"],
        "name": "Ada Lovelace",
    }
    # oidcc-userinfo-get
    assert userinfo(api, tokens["access_token"]).json_body == expected
    # oidcc-userinfo-post-header
    posted = api.client.request(
        "POST",
        "/oauth2/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        body=b"",
    )
    assert posted.status_code == 200 and json.loads(posted.body) == expected
    # oidcc-userinfo-post-body
    in_body = api.client.request(
        "POST",
        "/oauth2/userinfo",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=f"access_token={tokens['access_token']}".encode(),
    )
    assert in_body.status_code == 200 and json.loads(in_body.body) == expected


def test_oidcc_scope_profile_and_email_give_only_their_claims(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    tokens, _ = sign_in(client, user["access_token"], scope="openid email")
    assert userinfo(api, tokens["access_token"]).json_body == {
        "sub": user["user"]["id"],
        "email": user["email"],
        "email_verified": False,
    }
    assert "refresh_token" not in tokens
    profile, _ = sign_in(client, user["access_token"], scope="openid profile")
    claims = id_token_claims(api, profile["id_token"], client.client_id)
    assert "email" not in claims and claims["preferred_username"] == user["username"]


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    tokens, _ = sign_in(client, user["access_token"], nonce="")
    assert "nonce" not in id_token_claims(api, tokens["id_token"], client.client_id)


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(
    client: Client, user: dict[str, Any]
) -> None:
    tokens, _ = sign_in(client, user["access_token"], extra_unknown="ignored")
    assert tokens["id_token"]


def test_oidcc_ensure_post_request_succeeds(api: Api, client: Client, user: dict[str, Any]) -> None:
    form = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "code_challenge": s256(client.verifier),
        "code_challenge_method": "S256",
    }
    posted = api.client.request(
        "POST",
        "/oauth2/authorize",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode(form).encode(),
    )
    assert posted.status_code == 302, posted.body
    back = consent(api, user["access_token"], str(header(posted, "Location")))
    assert client.exchange(back["code"]).status_code == 200


def test_plain_oauth_without_openid_gives_no_id_token(client: Client, user: dict[str, Any]) -> None:
    tokens, _ = sign_in(client, user["access_token"], scope="profile", nonce="")
    assert "id_token" not in tokens and tokens["scope"] == "profile"


def test_oidcc_server_client_secret_post(client: Client, user: dict[str, Any]) -> None:
    back = allowed(client, user["access_token"])
    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": client.redirect_uri,
        "code_verifier": client.verifier,
    }
    assert client.token(form, auth="post").status_code == 200


def test_a_public_client_exchanges_with_its_id_and_pkce_alone(
    api: Api, user: dict[str, Any]
) -> None:
    spa = register_client(api, public=True, redirect_uris=("http://127.0.0.1:5173/cb",))
    tokens, _ = sign_in(spa, user["access_token"])
    assert id_token_claims(api, tokens["id_token"], spa.client_id)["sub"] == user["user"]["id"]


# ------------------------------------------------------------------ the code and PKCE


def test_oidcc_codereuse_fails_and_ends_the_tokens_of_the_first_use(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    back = allowed(client, user["access_token"])
    first = client.exchange(back["code"])
    assert first.status_code == 200
    access = first.json_body["access_token"]
    assert userinfo(api, access).status_code == 200

    again = client.exchange(back["code"])

    oauth_error(again, 400, "invalid_grant")
    assert_problem(userinfo(api, access), 401, "invalid_token")


def provider_at(offset: float) -> Provider:
    """The app's provider with a clock ``offset`` seconds ahead (the only thing a test
    cannot wait for)."""
    return wiring.get().provider_with(lambda: time.time() + offset)


def exchange_at(offset: float, client: Client, code: str) -> dict[str, Any]:
    form = {
        "grant_type": ["authorization_code"],
        "code": [code],
        "redirect_uri": [client.redirect_uri],
        "code_verifier": [client.verifier],
    }
    request = HttpRequest(
        method="POST",
        url=wiring.get().settings.issuer + "/oauth2/token",
        headers={"Authorization": basic(client.client_id, str(client.secret))},
        query={},
        form=form,
        device=Device("test", "127.0.0.1"),
    )
    answer = provider_at(offset).token(request)
    return {"status": answer.status, **json.loads(answer.body)}


def test_oidcc_codereuse_30seconds_still_ends_the_first_uses_tokens(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    back = allowed(client, user["access_token"])
    first = client.exchange(back["code"])
    assert first.status_code == 200

    again = exchange_at(30, client, back["code"])

    assert again["status"] == 400 and again["error"] == "invalid_grant"
    assert_problem(userinfo(api, first.json_body["access_token"]), 401, "invalid_token")


def test_a_code_expires_after_60_seconds(api: Api, client: Client, user: dict[str, Any]) -> None:
    back = allowed(client, user["access_token"])
    late = exchange_at(61, client, back["code"])
    assert late["status"] == 400 and late["error"] == "invalid_grant"


def test_the_wrong_verifier_or_redirect_uri_is_invalid_grant(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    for overrides in ({"code_verifier": "x" * 50}, {"redirect_uri": REDIRECT_URI + "x"}):
        back = allowed(client, user["access_token"])
        oauth_error(client.exchange(back["code"], **overrides), 400, "invalid_grant")


def test_oidcc_ensure_request_with_valid_pkce_succeeds_and_a_code_is_bound_to_its_client(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    other = register_client(api)
    back = allowed(client, user["access_token"])
    stolen = Client(api, other.client_id, other.secret, REDIRECT_URI, client.verifier)
    oauth_error(stolen.exchange(back["code"]), 400, "invalid_grant")


def test_a_wrong_client_secret_is_401_invalid_client_with_basic_challenge(
    client: Client, user: dict[str, Any]
) -> None:
    back = allowed(client, user["access_token"])
    client.secret = "not-the-secret"
    answer = client.exchange(back["code"])
    oauth_error(answer, 401, "invalid_client")
    assert str(header(answer, "WWW-Authenticate")).startswith("Basic")


# ------------------------------------------------------------------ authorization errors


def test_oidcc_ensure_registered_redirect_uri_is_a_page_never_a_redirect(
    client: Client,
) -> None:
    for answer in (
        client.authorize(redirect_uri="https://evil.example/callback"),
        client.authorize(client_id="0" * 32),
        client.authorize(redirect_uri=""),  # oidcc-ensure-redirect-uri-in-authorization-request
    ):
        assert answer.status_code == 400
        assert header(answer, "Location") is None
        assert str(header(answer, "Content-Type")).startswith("text/html")


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": "", "code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none"}, "login_required"),  # oidcc-prompt-none-not-logged-in
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example/request.jwt"}, "request_uri_not_supported"),
    ],
)
def test_other_errors_go_back_to_the_client_with_state_and_iss(
    client: Client, params: dict[str, str], error: str
) -> None:
    answer = client.authorize(state="keep-me", **params)
    assert answer.status_code == 302
    location = str(header(answer, "Location"))
    assert location.startswith(REDIRECT_URI + "?")
    back = query_of(location)
    assert back["error"] == error
    assert back["state"] == "keep-me"
    assert back["iss"] == wiring.get().settings.issuer
    assert "code" not in back


def test_deny_sends_access_denied_and_a_request_is_decided_once(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    started = client.authorize(state="s1")
    request_id = query_of(str(header(started, "Location")))["request_id"]
    path = f"/oauth2/requests/{request_id}"
    denied = api.post(path, {"decision": "deny"}, token=user["access_token"])
    back = query_of(denied.json_body["redirect_to"])
    assert back["error"] == "access_denied" and back["state"] == "s1"
    assert_problem(
        api.post(path, {"decision": "allow"}, token=user["access_token"]), 404, "not_found"
    )
    assert_problem(api.get(path, token=user["access_token"]), 404, "not_found")


def test_the_request_api_needs_the_signed_in_user_and_a_valid_decision(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    started = client.authorize()
    request_id = query_of(str(header(started, "Location")))["request_id"]
    path = f"/oauth2/requests/{request_id}"
    assert_problem(api.get(path), 401, "invalid_token")
    assert_problem(
        api.post(path, {"decision": "maybe"}, token=user["access_token"]), 400, "validation_error"
    )
    assert_problem(
        api.get("/oauth2/requests/unknown", token=user["access_token"]), 404, "not_found"
    )


# ------------------------------------------------------------------ tokens keep their place


def test_a_client_access_token_is_refused_by_the_first_party_api_and_vice_versa(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    tokens, _ = sign_in(client, user["access_token"])
    assert_problem(api.get("/protected", token=tokens["access_token"]), 401, "invalid_token")
    assert_problem(userinfo(api, user["access_token"]), 401, "invalid_token")
    refresh = api.post("/token/refresh", {"refresh_token": tokens["refresh_token"]})
    assert_problem(refresh, 401, "invalid_token")


def test_a_password_change_ends_the_clients_tokens_at_once(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    tokens, _ = sign_in(client, user["access_token"])
    changed = api.post(
        "/me/password",
        {"current_password": PASSWORD, "new_password": "another horse battery staple"},
        token=user["access_token"],
    )
    assert changed.status_code == 204
    assert_problem(userinfo(api, tokens["access_token"]), 401, "invalid_token")


def test_the_clients_session_is_not_listed_among_the_users_sessions(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    sign_in(client, user["access_token"])
    sessions = api.get("/me/sessions", token=user["access_token"]).json_body["sessions"]
    assert len(sessions) == 1 and sessions[0]["current"] is True


def test_discovery_names_the_endpoints_under_the_issuer(api: Api) -> None:
    issuer = wiring.get().settings.issuer
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        document = api.get(path).json_body
        assert document["issuer"] == issuer
        assert document["authorization_endpoint"] == f"{issuer}/oauth2/authorize"
        assert document["token_endpoint"] == f"{issuer}/oauth2/token"
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert document["authorization_response_iss_parameter_supported"] is True


def test_characters_oauth_does_not_allow_get_a_page_or_invalid_request(client: Client) -> None:
    # authlib raises (a 500) on these in an error description: refused before it runs.
    page = client.authorize(response_type="\u00d1\u00aa\x05")
    assert page.status_code == 400
    assert str(header(page, "Content-Type")).startswith("text/html")
    answer = client.token({"grant_type": "authorization_code", "code": "\u00e9"})
    oauth_error(answer, 400, "invalid_request")


# ------------------------------------------------------------------ prompt, max_age, consent


def request_of(client: Client, token: str, **params: str) -> tuple[str, dict[str, Any]]:
    started = client.authorize(**params)
    request_id = query_of(str(header(started, "Location")))["request_id"]
    described = client.api.get(f"/oauth2/requests/{request_id}", token=token)
    assert described.status_code == 200, described.body
    return request_id, described.json_body


def test_oidcc_prompt_login_asks_for_a_fresh_sign_in_before_the_decision(
    api: Api,
    client: Client,
    user: dict[str, Any],
    login: Callable[[str, str], dict[str, Any]],
) -> None:
    request_id, described = request_of(client, user["access_token"], prompt="login")
    assert described["reauthenticate"] is True
    path = f"/oauth2/requests/{request_id}"
    stale = api.post(path, {"decision": "allow"}, token=user["access_token"])
    assert_problem(stale, 401, "login_required")

    time.sleep(1.1)  # auth_time is in whole seconds: sign in a second after the request
    fresh = login(user["username"], PASSWORD)["access_token"]
    assert api.get(path, token=fresh).json_body["reauthenticate"] is False
    decided = api.post(path, {"decision": "allow"}, token=fresh)
    back = query_of(decided.json_body["redirect_to"])
    tokens = client.exchange(back["code"]).json_body
    claims = id_token_claims(api, tokens["id_token"], client.client_id)
    assert claims["auth_time"] >= int(time.time()) - 5


def test_oidcc_max_age_1_and_10000(client: Client, user: dict[str, Any]) -> None:
    _, recent = request_of(client, user["access_token"], max_age="10000")
    assert recent["reauthenticate"] is False
    time.sleep(2.1)
    _, old = request_of(client, user["access_token"], max_age="1")
    assert old["reauthenticate"] is True


def test_consent_is_remembered_for_the_same_scopes_unless_prompt_consent(
    client: Client, user: dict[str, Any]
) -> None:
    _, first = request_of(client, user["access_token"], scope="openid email")
    assert first["remembered"] is False
    sign_in(client, user["access_token"], scope="openid email")
    _, same = request_of(client, user["access_token"], scope="openid")
    assert same["remembered"] is True
    _, wider = request_of(client, user["access_token"], scope="openid email profile")
    assert wider["remembered"] is False
    _, asked = request_of(client, user["access_token"], scope="openid", prompt="consent")
    assert asked["remembered"] is False
    _, choose = request_of(client, user["access_token"], scope="openid", prompt="select_account")
    assert choose["remembered"] is False


# ------------------------------------------------------------------ the browser's sign-in


def page_sign_in(api: Api, username: str) -> tuple[str, str]:
    """Sign in as the web page does (refresh cookie mode): the access token and the
    provider's browser sign-in cookie it set."""
    answer = api.post(
        "/login", {"username": username, "password": PASSWORD, "refresh_cookie": True}
    )
    assert answer.status_code == 200, answer.body
    # The test client hands multi-value headers over as lists (API Gateway: one
    # Set-Cookie header per cookie).
    set_cookie = next(v for k, v in answer.headers.items() if k.lower() == "set-cookie")
    assert isinstance(set_cookie, list) and len(set_cookie) == 2
    jar: SimpleCookie = SimpleCookie()
    for line in set_cookie:
        jar.load(line)
    signin = jar["gh_signin"]
    assert signin["httponly"] and signin["secure"] and signin["samesite"] == "Lax"
    assert signin["path"] == "/oauth2"
    return answer.json_body["access_token"], signin.value


def with_cookie(client: Client, cookie: str, **params: str) -> Any:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "scope": "openid email",
            "state": "s",
            "nonce": "n",
            "code_challenge": s256(client.verifier),
            "code_challenge_method": "S256",
            **params,
        }
    )
    return client.api.client.request(
        "GET", "/oauth2/authorize?" + query, headers={"Cookie": f"gh_signin={cookie}"}
    )


def test_oidcc_prompt_none_logged_in_gives_a_code_at_once_after_a_first_consent(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    token, cookie = page_sign_in(api, user["username"])
    needs_consent = query_of(str(header(with_cookie(client, cookie, prompt="none"), "Location")))
    assert needs_consent["error"] == "consent_required"
    sign_in(client, token, scope="openid email")

    answer = with_cookie(client, cookie, prompt="none")

    back = query_of(str(header(answer, "Location")))
    assert "code" in back and back["state"] == "s"
    tokens = client.exchange(back["code"]).json_body
    claims = id_token_claims(api, tokens["id_token"], client.client_id)
    assert claims["sub"] == user["user"]["id"] and claims["nonce"] == "n"
    # Without prompt=none too: a signed-in browser with a remembered consent goes straight back.
    assert "code" in query_of(str(header(with_cookie(client, cookie), "Location")))


def test_oidcc_id_token_hint_of_another_user_with_prompt_none_is_login_required(
    api: Api,
    client: Client,
    user: dict[str, Any],
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> None:
    token, cookie = page_sign_in(api, user["username"])
    mine, _ = sign_in(client, token, scope="openid email")
    assert "code" in query_of(
        str(
            header(
                with_cookie(client, cookie, prompt="none", id_token_hint=mine["id_token"]),
                "Location",
            )
        )
    )
    other = new_user()
    theirs, _ = sign_in(client, login(other["username"], PASSWORD)["access_token"])
    refused = with_cookie(client, cookie, prompt="none", id_token_hint=theirs["id_token"])
    assert query_of(str(header(refused, "Location")))["error"] == "login_required"


def test_a_logged_out_or_forged_browser_sign_in_counts_for_nothing(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    token, cookie = page_sign_in(api, user["username"])
    sign_in(client, token, scope="openid email")
    forged = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    assert query_of(str(header(with_cookie(client, forged, prompt="none"), "Location")))[
        "error"
    ] == ("login_required")
    assert api.post("/logout", token=token).status_code == 204
    after = with_cookie(client, cookie, prompt="none")
    assert query_of(str(header(after, "Location")))["error"] == "login_required"


def test_rp_initiated_logout_ends_the_browsers_sign_in_too(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    token, cookie = page_sign_in(api, user["username"])
    tokens, _ = sign_in(client, token, scope="openid email")
    answer = client.api.client.request(
        "GET",
        "/oauth2/logout?" + urlencode({"id_token_hint": tokens["id_token"]}),
        headers={"Cookie": f"gh_signin={cookie}"},
    )
    assert answer.status_code == 200
    dropped = next(v for k, v in answer.headers.items() if k.lower() == "set-cookie")
    assert any(c.startswith("gh_signin=;") and "Max-Age=0" in c for c in dropped)
    assert_problem(api.get("/protected", token=token), 401, "invalid_token")
    after = with_cookie(client, cookie, prompt="none")
    assert query_of(str(header(after, "Location")))["error"] == "login_required"


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_a_body_that_is_not_a_form_gets_an_rfc_6749_error_not_a_problem(
    api: Api, path: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = api.client.request("POST", path, headers=headers, body=b'{"grant_type": "x"}')
    body = oauth_error(answer, 400, "invalid_request")
    assert "application/x-www-form-urlencoded" in body["error_description"]


def test_userinfo_without_any_token_challenges_without_an_error_code(api: Api) -> None:
    answer = api.client.request("GET", "/oauth2/userinfo")
    assert_problem(answer, 401, "invalid_token")
    assert header(answer, "WWW-Authenticate") == "Bearer"
    garbage = api.get("/oauth2/userinfo", token="garbage")
    assert header(garbage, "WWW-Authenticate") == 'Bearer error="invalid_token"'


def test_a_sign_in_made_for_the_request_meets_any_max_age_even_0(
    api: Api,
    client: Client,
    user: dict[str, Any],
    login: Callable[[str, str], dict[str, Any]],
) -> None:
    time.sleep(1.1)  # the fixture's sign-in is now a second old: too old for max_age=0
    request_id, described = request_of(client, user["access_token"], max_age="0")
    assert described["reauthenticate"] is True
    time.sleep(1.1)  # auth_time is in whole seconds: sign in a second after the request
    fresh = login(user["username"], PASSWORD)["access_token"]
    time.sleep(1.1)  # and decide later still: a max_age of 0 is met by that sign-in
    path = f"/oauth2/requests/{request_id}"
    assert api.get(path, token=fresh).json_body["reauthenticate"] is False
    assert api.post(path, {"decision": "allow"}, token=fresh).status_code == 200


def test_a_narrower_grant_keeps_the_scopes_allowed_before_and_the_first_time(
    api: Api, client: Client, user: dict[str, Any]
) -> None:
    sign_in(client, user["access_token"], scope="openid email")
    (first,) = api.get("/me/apps", token=user["access_token"]).json_body["apps"]
    time.sleep(1.1)
    sign_in(client, user["access_token"], scope="openid profile")
    (after,) = api.get("/me/apps", token=user["access_token"]).json_body["apps"]
    assert after["scopes"] == ["openid", "email", "profile"]
    assert after["connected_at"] == first["connected_at"]

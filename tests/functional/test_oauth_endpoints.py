"""Revocation (RFC 7009), introspection (RFC 7662), client_credentials, and
RP-initiated logout (the ``oidcc-rp-initiated-logout*`` conformance modules)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from chalicelib import wiring
from chalicelib.crypto.tokens import new_id
from chalicelib.oauth.clients import ClientRegistration
from chalicelib.oauth.tokens import ClientTokens
from chalicelib.store.items import AuthorizationCode
from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.oauthflow import FORM, Client, basic, query_of, register_client, sign_in

PASSWORD = "correct horse battery staple"
AFTER_LOGOUT = "https://rp.example/signed-out"


@pytest.fixture
def client(api: Api) -> Client:
    clients = wiring.get().clients
    record, secret = clients.register(
        ClientRegistration(
            name="Wiki",
            redirect_uris=("https://rp.example/callback",),
            post_logout_redirect_uris=(AFTER_LOGOUT,),
        )
    )
    return Client(api, record.id, secret)


def post_form(client: Client, path: str, form: dict[str, str]) -> Any:
    headers = {"Content-Type": FORM}
    if client.secret:
        headers["Authorization"] = basic(client.client_id, client.secret)
    else:
        form = {**form, "client_id": client.client_id}
    return client.api.client.request("POST", path, headers=headers, body=urlencode(form).encode())


def introspect(client: Client, token: str) -> dict[str, Any]:
    answer = post_form(client, "/oauth2/introspect", {"token": token})
    assert answer.status_code == 200, answer.body
    body: dict[str, Any] = json.loads(answer.body)
    return body


def revoke(client: Client, token: str, **extra: str) -> Any:
    return post_form(client, "/oauth2/revoke", {"token": token, **extra})


def logout(api: Api, **params: str) -> Any:
    return api.client.request("GET", "/oauth2/logout?" + urlencode(params))


# ------------------------------------------------------------------ introspection


def test_introspection_describes_a_live_token_and_says_inactive_once_it_is_revoked(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    live = introspect(client, tokens["access_token"])
    issuer = wiring.get().settings.issuer
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert live == {
        "active": True,
        "sub": claims["sub"],
        "client_id": client.client_id,
        "scope": tokens["scope"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": issuer,
        "token_type": "Bearer",
    }
    refresh = introspect(client, tokens["refresh_token"])
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"

    assert revoke(client, tokens["refresh_token"]).status_code == 200

    assert introspect(client, tokens["access_token"]) == {"active": False}
    assert introspect(client, tokens["refresh_token"]) == {"active": False}
    assert_problem(api.get("/oauth2/userinfo", token=tokens["access_token"]), 401, "invalid_token")


def test_introspection_of_garbage_or_a_first_party_token_is_inactive(
    client: Client, user_token: str
) -> None:
    for token in ("garbage", user_token, "a.b.c", "0" * 32 + "." + "1" * 32 + ".x"):
        assert introspect(client, token) == {"active": False}


def test_introspection_needs_client_authentication(client: Client, user_token: str) -> None:
    tokens, _ = sign_in(client, user_token)
    client.secret = "wrong"
    answer = post_form(client, "/oauth2/introspect", {"token": tokens["access_token"]})
    assert answer.status_code == 401 and json.loads(answer.body)["error"] == "invalid_client"


def test_a_public_client_introspects_only_its_own_tokens(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    spa = register_client(api, public=True, redirect_uris=("http://127.0.0.1:5173/cb",))
    assert introspect(spa, tokens["access_token"]) == {"active": False}
    resource_server = register_client(api)  # a confidential client may
    assert introspect(resource_server, tokens["access_token"])["active"] is True


# ------------------------------------------------------------------ revocation


def test_revoking_the_access_token_ends_its_session_and_unknown_tokens_are_200(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    assert revoke(client, tokens["access_token"], token_type_hint="access_token").status_code == 200
    refreshed = client.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 400
    assert revoke(client, "not-a-token").status_code == 200


def test_a_client_cannot_revoke_another_clients_token(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    other = register_client(api)
    refused = revoke(other, tokens["access_token"])
    assert refused.status_code == 400 and json.loads(refused.body)["error"] == "invalid_grant"
    assert api.get("/oauth2/userinfo", token=tokens["access_token"]).status_code == 200


# ------------------------------------------------------------------ client_credentials


def test_client_credentials_gives_the_client_an_access_token_and_nothing_else(
    api: Api,
) -> None:
    clients = wiring.get().clients
    record, secret = clients.register(
        ClientRegistration(name="Nightly job", grant_types=("client_credentials",))
    )
    job = Client(api, record.id, secret)
    answer = job.token({"grant_type": "client_credentials"})
    assert answer.status_code == 200, answer.body
    body = answer.json_body
    assert set(body) == {"access_token", "token_type", "expires_in"}
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == record.id and claims["client_id"] == record.id
    assert introspect(job, body["access_token"])["active"] is True
    assert_problem(api.get("/oauth2/userinfo", token=body["access_token"]), 401, "invalid_token")
    scoped = job.token({"grant_type": "client_credentials", "scope": "openid"})
    assert scoped.status_code == 400 and json.loads(scoped.body)["error"] == "invalid_scope"
    clients.delete(record.id)
    # gone with its client
    other = register_client(api)
    assert introspect(other, body["access_token"]) == {"active": False}


def test_a_code_client_may_not_use_client_credentials(client: Client) -> None:
    answer = client.token({"grant_type": "client_credentials"})
    assert answer.status_code == 400 and json.loads(answer.body)["error"] == "unauthorized_client"


# ------------------------------------------------------------------ RP-initiated logout


def test_oidcc_rp_initiated_logout_ends_the_session_and_returns_with_state(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    answer = logout(
        api,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=AFTER_LOGOUT,
        state="bye",
    )
    assert answer.status_code == 302
    location = str(header(answer, "Location"))
    assert location.startswith(AFTER_LOGOUT + "?") and query_of(location)["state"] == "bye"
    assert_problem(api.get("/oauth2/userinfo", token=tokens["access_token"]), 401, "invalid_token")
    assert introspect(client, tokens["refresh_token"]) == {"active": False}


@pytest.mark.parametrize(
    "params",
    [
        # oidcc-rp-initiated-logout-bad-post-logout-redirect-uri
        {"post_logout_redirect_uri": "https://evil.example/after"},
        # oidcc-rp-initiated-logout-modified-id-token-hint
        {"id_token_hint": "MODIFIED", "post_logout_redirect_uri": AFTER_LOGOUT},
        # oidcc-rp-initiated-logout-no-id-token-hint with an unregistered URI
        {"post_logout_redirect_uri": AFTER_LOGOUT + "/other"},
    ],
)
def test_a_bad_logout_request_is_a_page_never_a_redirect(
    api: Api, client: Client, user_token: str, params: dict[str, str]
) -> None:
    tokens, _ = sign_in(client, user_token)
    if params.get("id_token_hint") == "MODIFIED":
        head, body, signature = tokens["id_token"].split(".")
        params["id_token_hint"] = f"{head}.{body}.{signature[:-4]}AAAA"
    else:
        params["id_token_hint"] = tokens["id_token"]
    answer = logout(api, **params)
    assert answer.status_code == 400 and header(answer, "Location") is None
    assert api.get("/oauth2/userinfo", token=tokens["access_token"]).status_code == 200


def test_oidcc_rp_initiated_logout_with_another_clients_hint_is_refused(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    other = register_client(api)
    answer = logout(api, id_token_hint=tokens["id_token"], client_id=other.client_id)
    assert answer.status_code == 400 and header(answer, "Location") is None


def test_oidcc_rp_initiated_logout_no_params_shows_the_signed_out_page(api: Api) -> None:
    answer = logout(api)
    assert answer.status_code == 200
    assert str(header(answer, "Content-Type")).startswith("text/html")
    assert b"signed out" in answer.body


def test_an_expired_id_token_is_still_a_valid_hint(api: Api, client: Client) -> None:
    svc = wiring.get()
    hours_ago = ClientTokens(svc.tokens, lambda: time.time() - 3 * 3600)
    code = AuthorizationCode(
        client_id=client.client_id,
        redirect_uri="https://rp.example/callback",
        scope="openid",
        nonce="",
        code_challenge="",
        user_id=new_id(),
        username="someone",
        email="",
        email_verified=False,
        display_name="",
        auth_time=int(time.time()) - 3 * 3600,
        session_id=new_id(),
        expires_at=0,
    )
    hint = hours_ago.id_token(code, "an-access-token")
    answer = logout(api, id_token_hint=hint, post_logout_redirect_uri=AFTER_LOGOUT)
    assert answer.status_code == 302


# ------------------------------------------------------------------ connected apps


def test_connected_apps_lists_the_app_and_remove_access_ends_its_tokens_at_once(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token, scope="openid email offline_access")

    apps = api.get("/me/apps", token=user_token).json_body["apps"]

    assert len(apps) == 1
    app = apps[0]
    assert app["client_id"] == client.client_id and app["name"] == "Wiki"
    assert app["scopes"] == ["openid", "email", "offline_access"]
    assert app["last_used_at"] >= app["connected_at"] > 0

    removed = api.request("DELETE", f"/me/apps/{client.client_id}", token=user_token)

    assert removed.status_code == 204
    assert_problem(api.get("/oauth2/userinfo", token=tokens["access_token"]), 401, "invalid_token")
    assert introspect(client, tokens["refresh_token"]) == {"active": False}
    assert api.get("/me/apps", token=user_token).json_body["apps"] == []
    kinds = [e["type"] for e in api.get("/me/activity", token=user_token).json_body["events"]]
    assert kinds[:3] == ["app_access_removed", "app_sign_in", "app_authorized"]
    # The web page's own session lives on.
    assert api.get("/protected", token=user_token).status_code == 200
    again = api.request("DELETE", f"/me/apps/{client.client_id}", token=user_token)
    assert_problem(again, 404, "not_found")


def test_removing_one_users_app_leaves_another_users_tokens(
    api: Api,
    client: Client,
    user_token: str,
    new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> None:
    theirs, _ = sign_in(client, user_token)
    made = new_user()
    mine = login(made["username"], PASSWORD)["access_token"]
    sign_in(client, mine)
    assert api.request("DELETE", f"/me/apps/{client.client_id}", token=mine).status_code == 204
    assert api.get("/oauth2/userinfo", token=theirs["access_token"]).status_code == 200
    assert_problem(api.request("DELETE", "/me/apps/not-an-id", token=mine), 404, "not_found")


def test_deleting_a_client_makes_its_tokens_inactive_and_unrefreshable(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)
    resource_server = register_client(api)
    wiring.get().clients.delete(client.client_id)
    assert introspect(resource_server, tokens["access_token"]) == {"active": False}
    assert introspect(resource_server, tokens["refresh_token"]) == {"active": False}
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert client.token(form).status_code == 401

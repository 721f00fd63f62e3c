"""OAuth refresh tokens (RFC 6749 6, RFC 9700 4.14) and the races of the token endpoint.

A client's refresh token rotates on every use, is bound to its client, and a spent one
(or the loser of two racing refreshes) ends the whole family, as first-party refresh
tokens do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.oauthflow import Client, allowed, register_client, sign_in
from tests.racing import all_at_once, statuses

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("keep_os_environ")


@pytest.fixture
def client(api: Api) -> Client:
    return register_client(api)


def refresh(client: Client, refresh_token: str, **extra: str) -> Any:
    return client.token({"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def works(api: Api, access_token: str) -> bool:
    status = api.get("/oauth2/userinfo", token=access_token).status_code
    assert status in (200, 401)
    return status == 200


def test_oidcc_refresh_token_rotates_and_a_spent_one_ends_the_family(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)

    renewed = refresh(client, tokens["refresh_token"])

    assert renewed.status_code == 200, renewed.body
    assert header(renewed, "Cache-Control") == "no-store"
    fresh = renewed.json_body
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["scope"] == tokens["scope"]
    assert works(api, fresh["access_token"])

    replayed = refresh(client, tokens["refresh_token"])

    assert replayed.status_code == 400
    assert json.loads(replayed.body)["error"] == "invalid_grant"
    assert not works(api, fresh["access_token"])
    assert refresh(client, fresh["refresh_token"]).status_code == 400


def test_a_narrower_scope_narrows_the_access_token_and_a_wider_one_is_refused(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token, scope="openid email offline_access")

    narrower = refresh(client, tokens["refresh_token"], scope="openid")

    assert narrower.status_code == 200, narrower.body
    assert narrower.json_body["scope"] == "openid"
    assert api.get(
        "/oauth2/userinfo", token=narrower.json_body["access_token"]
    ).json_body.keys() == {"sub"}
    wider = refresh(client, narrower.json_body["refresh_token"], scope="openid profile")
    assert wider.status_code == 400 and json.loads(wider.body)["error"] == "invalid_scope"
    # The refused request spent nothing: the token still refreshes, at the granted scope.
    again = refresh(client, narrower.json_body["refresh_token"])
    assert again.status_code == 200 and again.json_body["scope"] == "openid email offline_access"


def test_a_refresh_token_is_bound_to_its_client(api: Api, client: Client, user_token: str) -> None:
    tokens, _ = sign_in(client, user_token)
    other = register_client(api)

    stolen = refresh(other, tokens["refresh_token"])

    assert stolen.status_code == 400 and json.loads(stolen.body)["error"] == "invalid_grant"
    assert refresh(client, tokens["refresh_token"]).status_code == 200


def test_a_first_party_refresh_token_is_refused_at_the_token_endpoint(
    api: Api, client: Client, new_user: Callable[..., dict[str, Any]],
    login: Callable[[str, str], dict[str, Any]],
) -> None:  # fmt: skip
    made = new_user()
    pair = login(made["username"], PASSWORD)
    answer = refresh(client, pair["refresh_token"])
    assert answer.status_code == 400 and json.loads(answer.body)["error"] == "invalid_grant"
    assert api.post("/token/refresh", {"refresh_token": pair["refresh_token"]}).status_code == 200


def test_fifty_concurrent_exchanges_of_one_code_give_exactly_one_200(
    api: Api, client: Client, user_token: str
) -> None:
    back = allowed(client, user_token)

    answers = all_at_once([lambda: client.exchange(back["code"])] * 50)

    counted = statuses(answers)
    assert counted[200] <= 1 and counted[200] + counted[400] == 50
    # Whichever won, the losers' reuse ended its session: no token of this code lives.
    for answer in answers:
        if answer.status_code == 200:
            assert not works(api, answer.json_body["access_token"])


def test_fifty_concurrent_refreshes_give_at_most_one_200_and_end_the_family(
    api: Api, client: Client, user_token: str
) -> None:
    tokens, _ = sign_in(client, user_token)

    answers = all_at_once([lambda: refresh(client, tokens["refresh_token"])] * 50)

    counted = statuses(answers)
    assert counted[200] <= 1 and counted[200] + counted[400] == 50
    winners = [a.json_body for a in answers if a.status_code == 200]
    for won in winners:
        assert not works(api, won["access_token"])
        assert refresh(client, won["refresh_token"]).status_code == 400
    assert_problem(api.get("/oauth2/userinfo", token=tokens["access_token"]), 401, "invalid_token")

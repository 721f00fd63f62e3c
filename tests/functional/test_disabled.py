"""A disabled account: no login, no refresh, live access tokens refused at once; enabling
it lets the user back in."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.wiring import Services
from tests.assertions import assert_problem, unique
from tests.conftest import Api

PASSWORD = "correct horse battery staple"


def log_in(api: Api, username: str, password: str = PASSWORD) -> Any:
    return api.post("/login", {"username": username, "password": password})


def test_a_disabled_user_cannot_log_in_and_is_told_only_invalid_credentials(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD, email=f"{unique('disabled')}@example.com")
    control = new_user(password=PASSWORD)
    assert app_services.accounts.set_disabled(user["user"]["id"], True)

    disabled = log_in(api, user["username"])
    by_email = log_in(api, user["email"])
    wrong_password = log_in(api, control["username"], "not the right password")

    for response in (disabled, by_email, wrong_password):
        assert_problem(response, 401, "invalid_credentials")
    assert json.loads(disabled.body) == json.loads(wrong_password.body)
    assert json.loads(by_email.body) == json.loads(wrong_password.body)


def test_disabling_refuses_live_access_tokens_and_refresh_tokens_at_once(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD)
    pairs = [log_in(api, user["username"]).json_body for _ in range(2)]
    assert api.get("/protected", token=pairs[0]["access_token"]).status_code == 200

    assert app_services.accounts.set_disabled(user["user"]["id"], True)

    for pair in pairs:
        assert_problem(api.get("/protected", token=pair["access_token"]), 401, "invalid_token")
        refreshed = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
        assert_problem(refreshed, 401, "invalid_token")


def test_disabling_one_user_leaves_others_signed_in(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD)
    other = new_user(password=PASSWORD)
    other_pair = log_in(api, other["username"]).json_body

    assert app_services.accounts.set_disabled(user["user"]["id"], True)

    assert api.get("/protected", token=other_pair["access_token"]).status_code == 200
    refreshed = api.post("/token/refresh", {"refresh_token": other_pair["refresh_token"]})
    assert refreshed.status_code == 200


def test_enabling_lets_the_user_log_in_again_but_old_sessions_stay_ended(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    user = new_user(password=PASSWORD)
    old = log_in(api, user["username"]).json_body
    assert app_services.accounts.set_disabled(user["user"]["id"], True)
    assert log_in(api, user["username"]).status_code == 401

    assert app_services.accounts.set_disabled(user["user"]["id"], False)

    again = log_in(api, user["username"])
    assert again.status_code == 200, again.body
    assert api.get("/protected", token=again.json_body["access_token"]).status_code == 200
    refreshed = api.post("/token/refresh", {"refresh_token": again.json_body["refresh_token"]})
    assert refreshed.status_code == 200
    # Enabling does not bring back the sessions that disabling ended.
    assert api.get("/protected", token=old["access_token"]).status_code == 401
    old_refresh = api.post("/token/refresh", {"refresh_token": old["refresh_token"]})
    assert_problem(old_refresh, 401, "invalid_token")


def test_a_disabled_flag_alone_stops_refresh_even_if_a_session_survived(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    # Disabling ends the sessions; the refresh transaction also checks the flag, so a
    # session written in a race with the disable (it survived) still cannot refresh.
    user = new_user(password=PASSWORD)
    pair = log_in(api, user["username"]).json_body
    assert app_services.store.set_disabled(user["user"]["id"], True)  # flag only

    refreshed = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})

    assert_problem(refreshed, 401, "invalid_token")
    assert app_services.store.set_disabled(user["user"]["id"], False)
    again = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200, again.body


def test_disabling_an_unknown_user_reports_false(app_services: Services) -> None:
    assert app_services.accounts.set_disabled("0" * 32, True) is False

"""Username-first passkey sign-in (options that say nothing of the account), and a
passkey in place of a TOTP code at ``POST /login``, through the API on DynamoDB Local."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.wiring import Services
from tests.assertions import assert_problem, unique
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, enable_totp
from tests.functional.passkeys import (
    Holder,
    enrol,
    events,
    holder_of,
    passkey_login,
    request_options,
)
from tests.functional.test_throttle import dynamodb_calls
from tests.webauthn_authenticator import Authenticator

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]


# ------------------------------------------------------------------ username first


def test_options_are_the_same_for_every_name_and_list_no_credentials(
    api: Api, holder: Holder, new_user: NewUser, app_services: Services
) -> None:
    """No allow list, and no lookup: a known name with passkeys, one without, a
    disabled account, an unknown name and no name get the same answer (but for the
    challenge) from the same DynamoDB calls, so the options tell nothing of accounts."""
    enrol(api, holder.token, Authenticator())
    disabled = new_user()
    assert app_services.accounts.set_disabled(disabled["user"]["id"], True)
    names = [holder.username, new_user()["username"], disabled["username"], unique("nobody")]

    answers = []
    for name in (*names, None):
        with dynamodb_calls(app_services) as calls:
            answers.append((request_options(api, name), calls))

    first, first_calls = answers[0]
    assert first["allowCredentials"] == []
    assert first_calls == ["TransactWriteItems"]  # challenge, IP claim and check at once
    for options, calls in answers:
        assert {**options, "challenge": ""} == {**first, "challenge": ""}
        assert calls == first_calls
    assert len({options["challenge"] for options, _ in answers}) == len(answers)


def test_username_first_sign_in_works_by_username_and_by_email(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(email=f"{unique('pk')}@example.com")
    holder = holder_of(api, user, login(user["username"], PASSWORD)["access_token"])

    for name in (holder.username.upper(), user["email"]):
        options = request_options(api, name)
        response = passkey_login(api, holder.authenticator.get(options, user_handle=None))
        assert response.status_code == 200, response.body


def test_another_users_passkey_cannot_answer_options_asked_for_a_username(
    api: Api, holder: Holder, new_user: NewUser, login: Login
) -> None:
    victim = new_user()
    options = request_options(api, victim["username"])

    response = passkey_login(api, holder.authenticator.get(options))

    assert_problem(response, 401, "invalid_credentials")
    assert events(api, holder.token, "passkey_login") == ["failure"]


# ------------------------------------------------------------------ in place of a TOTP code


def login_with(api: Api, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return api.post("/login", {"username": username, "password": password, **extra})


def test_with_mfa_on_a_passkey_stands_in_for_the_code(api: Api, holder: Holder) -> None:
    enable_totp(api, holder.token)
    assert_problem(login_with(api, holder.username), 401, "mfa_required")
    options = request_options(api, holder.username)

    response = login_with(api, holder.username, passkey=holder.authenticator.get(options))

    assert response.status_code == 200, response.body
    token = response.json_body["access_token"]
    assert events(api, token, "login")[0] == "success"


def test_a_discoverable_challenge_works_at_login_too(api: Api, holder: Holder) -> None:
    enable_totp(api, holder.token)

    response = login_with(
        api, holder.username, passkey=holder.authenticator.get(request_options(api))
    )

    assert response.status_code == 200, response.body


def test_a_passkey_does_not_replace_the_password(api: Api, holder: Holder) -> None:
    enable_totp(api, holder.token)
    credential = holder.authenticator.get(request_options(api, holder.username))

    response = login_with(api, holder.username, "not the password", passkey=credential)

    assert_problem(response, 401, "invalid_credentials")


def test_another_users_passkey_or_a_bad_one_fails_the_login(
    api: Api, holder: Holder, new_user: NewUser, login: Login
) -> None:
    enable_totp(api, holder.token)
    other = new_user()
    stranger = holder_of(api, other, login(other["username"], PASSWORD)["access_token"])

    foreign = stranger.authenticator.get(request_options(api))
    forged = holder.authenticator.get(request_options(api), bad_signature=True)
    replayed = holder.authenticator.get(request_options(api))
    assert login_with(api, holder.username, passkey=replayed).status_code == 200

    for credential in (foreign, forged, replayed):
        response = login_with(api, holder.username, passkey=credential)
        assert_problem(response, 401, "invalid_credentials")
    assert events(api, holder.token, "login")[:3] == ["failure"] * 3


def test_a_code_and_a_passkey_together_are_400(api: Api, holder: Holder) -> None:
    credential = holder.authenticator.get(request_options(api))

    response = login_with(api, holder.username, totp_code="123456", passkey=credential)

    document = assert_problem(response, 400, "validation_error")
    assert document["errors"][0]["field"] == "passkey"


def test_with_mfa_off_the_passkey_member_is_ignored(api: Api, holder: Holder) -> None:
    credential = holder.authenticator.get(request_options(api))

    response = login_with(api, holder.username, passkey=credential)

    assert response.status_code == 200, response.body

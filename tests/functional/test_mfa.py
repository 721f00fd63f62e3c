"""TOTP two-factor authentication and recovery codes, through the API on DynamoDB Local."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from chalice.test import HTTPResponse

from chalicelib.platform.config import Settings
from tests.assertions import assert_problem
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, delete, enable_totp, table_dump, wrong_code

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]


def login_with(api: Api, username: str, password: str = PASSWORD, **code: Any) -> HTTPResponse:
    return api.post("/login", {"username": username, "password": password, **code})


def next_code(secret: str) -> str:
    """The code of the next 30-second step: valid now (one step of clock skew is
    allowed) and later than any code used so far in the test."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def mfa_enabled(api: Api, token: str) -> bool:
    return bool(api.get("/me", token=token).json_body["mfa_enabled"])


@pytest.fixture
def signed_in(new_user: NewUser, login: Login) -> tuple[str, str]:
    """A fresh user's username and access token."""
    user = new_user()
    return user["username"], login(user["username"], PASSWORD)["access_token"]


# ------------------------------------------------------------------ enrolment


def test_enrolment_returns_a_secret_and_an_otpauth_uri(
    api: Api, signed_in: tuple[str, str]
) -> None:
    username, token = signed_in

    response = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token)

    assert response.status_code == 200, response.body
    assert set(response.json_body) == {"secret", "otpauth_uri"}
    secret = response.json_body["secret"]
    parsed = pyotp.parse_uri(response.json_body["otpauth_uri"])
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == secret
    assert parsed.issuer == "Gatehouse"
    assert parsed.name == username
    assert parsed.digits == 6 and parsed.interval == 30
    assert len(pyotp.TOTP(secret).now()) == 6


def test_mfa_is_not_on_until_confirmed(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    assert api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).status_code == 200

    assert mfa_enabled(api, token) is False
    assert login_with(api, username).status_code == 200


def test_a_wrong_confirmation_code_is_400_on_the_code_field(
    api: Api, signed_in: tuple[str, str]
) -> None:
    username, token = signed_in
    secret = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]

    for code in (wrong_code(secret), "12345", "abcdef", ""):
        response = api.post("/me/mfa/totp/confirm", {"code": code}, token=token)
        document = assert_problem(response, 400, "validation_error")
        assert document["errors"][0]["field"] == "code"

    assert mfa_enabled(api, token) is False
    assert login_with(api, username).status_code == 200


def test_the_right_code_turns_mfa_on_and_returns_ten_recovery_codes(
    api: Api, signed_in: tuple[str, str]
) -> None:
    _, token = signed_in
    secret = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]

    response = api.post("/me/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, token=token)

    assert response.status_code == 200, response.body
    codes = response.json_body["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(isinstance(code, str) and len(code) >= 10 for code in codes)
    assert mfa_enabled(api, token) is True


def test_confirming_with_nothing_pending_is_409(api: Api, signed_in: tuple[str, str]) -> None:
    _, token = signed_in

    response = api.post("/me/mfa/totp/confirm", {"code": "123456"}, token=token)

    assert_problem(response, 409, "mfa_not_pending")


def test_a_second_enrolment_replaces_the_pending_secret(
    api: Api, signed_in: tuple[str, str]
) -> None:
    _, token = signed_in
    first = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]
    second = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]
    assert first != second

    stale = api.post("/me/mfa/totp/confirm", {"code": pyotp.TOTP(first).now()}, token=token)
    fresh = api.post("/me/mfa/totp/confirm", {"code": pyotp.TOTP(second).now()}, token=token)

    assert_problem(stale, 400, "validation_error")
    assert fresh.status_code == 200, fresh.body


def test_enrolling_again_while_mfa_is_on_is_409(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    secret, _ = enable_totp(api, token)

    response = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token)

    assert_problem(response, 409, "mfa_already_enabled")
    assert login_with(api, username, totp_code=next_code(secret)).status_code == 200


def test_the_secret_and_recovery_codes_are_not_readable_from_a_table_dump(
    api: Api, signed_in: tuple[str, str], settings: Settings
) -> None:
    _, token = signed_in
    pending = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]
    assert pending not in table_dump(settings)

    secret, codes = enable_totp(api, token)

    dump = table_dump(settings)
    assert secret not in dump
    assert secret.lower() not in dump.lower()
    for code in codes:
        assert code not in dump
        assert code.replace("-", "") not in dump


# ------------------------------------------------------------------ login with MFA on


def test_login_without_a_code_is_mfa_required(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    enable_totp(api, token)

    assert_problem(login_with(api, username), 401, "mfa_required")
    assert_problem(login_with(api, username, totp_code=""), 401, "mfa_required")
    assert_problem(login_with(api, username, totp_code=None), 401, "mfa_required")


def test_a_wrong_password_is_invalid_credentials_whatever_the_code(
    api: Api, signed_in: tuple[str, str]
) -> None:
    username, token = signed_in
    secret, _ = enable_totp(api, token)

    for code in ({}, {"totp_code": next_code(secret)}):
        response = login_with(api, username, "not the password", **code)
        assert_problem(response, 401, "invalid_credentials")
    assert login_with(api, username, totp_code=next_code(secret)).status_code == 200


def test_a_wrong_code_is_invalid_credentials(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    secret, _ = enable_totp(api, token)

    for code in (wrong_code(secret), "12345", "1234567", "not-a-code"):
        assert_problem(login_with(api, username, totp_code=code), 401, "invalid_credentials")


def test_a_right_code_logs_in_and_the_session_works(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    secret, _ = enable_totp(api, token)

    response = login_with(api, username, totp_code=next_code(secret))

    assert response.status_code == 200, response.body
    assert mfa_enabled(api, response.json_body["access_token"]) is True


def test_a_totp_code_cannot_be_replayed(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    secret, _ = enable_totp(api, token)
    code = next_code(secret)

    first = login_with(api, username, totp_code=code)
    replay = login_with(api, username, totp_code=code)

    assert first.status_code == 200, first.body
    assert_problem(replay, 401, "invalid_credentials")


def test_the_code_that_confirmed_enrolment_cannot_log_in(
    api: Api, signed_in: tuple[str, str]
) -> None:
    username, token = signed_in
    secret = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]
    code = pyotp.TOTP(secret).now()
    assert api.post("/me/mfa/totp/confirm", {"code": code}, token=token).status_code == 200

    assert_problem(login_with(api, username, totp_code=code), 401, "invalid_credentials")


def test_a_recovery_code_works_once(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    _, codes = enable_totp(api, token)

    first = login_with(api, username, totp_code=codes[0])
    again = login_with(api, username, totp_code=codes[0])
    another = login_with(api, username, totp_code=f"  {codes[1].upper()} ")

    assert first.status_code == 200, first.body
    assert_problem(again, 401, "invalid_credentials")
    assert another.status_code == 200, another.body
    assert_problem(login_with(api, username, totp_code=codes[1]), 401, "invalid_credentials")


def test_one_users_recovery_code_does_not_open_another_account(
    api: Api, new_user: NewUser, login: Login
) -> None:
    alice, bob = new_user(), new_user()
    _, alice_codes = enable_totp(api, login(alice["username"], PASSWORD)["access_token"])
    enable_totp(api, login(bob["username"], PASSWORD)["access_token"])

    response = login_with(api, bob["username"], totp_code=alice_codes[0])

    assert_problem(response, 401, "invalid_credentials")
    assert login_with(api, alice["username"], totp_code=alice_codes[0]).status_code == 200


# ------------------------------------------------------------------ turning MFA off


def test_disabling_mfa_needs_the_password(
    api: Api, signed_in: tuple[str, str], settings: Settings
) -> None:
    username, token = signed_in
    secret, _ = enable_totp(api, token)

    wrong = delete(api, "/me/mfa/totp", {"password": "not the password"}, token=token)
    missing = delete(api, "/me/mfa/totp", token=token)

    assert_problem(wrong, 401, "invalid_credentials")
    assert_problem(missing, 400, "validation_error")
    assert mfa_enabled(api, token) is True
    assert_problem(login_with(api, username), 401, "mfa_required")

    right = delete(api, "/me/mfa/totp", {"password": PASSWORD}, token=token)

    assert right.status_code == 204, right.body
    assert mfa_enabled(api, token) is False
    assert login_with(api, username).status_code == 200
    assert secret not in table_dump(settings)


def test_mfa_can_be_enrolled_again_after_disabling(api: Api, signed_in: tuple[str, str]) -> None:
    username, token = signed_in
    old_secret, old_codes = enable_totp(api, token)
    assert delete(api, "/me/mfa/totp", {"password": PASSWORD}, token=token).status_code == 204

    new_secret, _ = enable_totp(api, token)

    assert new_secret != old_secret
    assert_problem(login_with(api, username, totp_code=old_codes[0]), 401, "invalid_credentials")
    assert login_with(api, username, totp_code=next_code(new_secret)).status_code == 200

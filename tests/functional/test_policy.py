"""The password policy, as a user meets it on every route that sets a password:
POST /register, POST /me/password and POST /password/reset."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import HTTPResponse

from chalicelib.platform.config import Settings
from tests.assertions import assert_problem, unique
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, RESET_MARKER, last_token, verify_address

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
ROUTES = ["register", "change", "reset"]


@dataclass
class Target:
    """Who is choosing a password, and how this route submits one."""

    username: str
    email: str
    attempt: Callable[[str], HTTPResponse]
    success: int


@pytest.fixture(params=ROUTES)
def target(
    request: pytest.FixtureRequest,
    api: Api,
    new_user: NewUser,
    login: Login,
    settings: Settings,
) -> Target:
    route = str(request.param)
    if route == "register":
        username = unique("pol")
        address = f"{unique('box')}@example.com"

        def register(password: str) -> HTTPResponse:
            body = {"username": username, "password": password, "email": address}
            return api.post("/register", body)

        return Target(username, address, register, 201)

    user = new_user(email=f"{unique('box')}@example.com")
    if route == "change":
        token = login(user["username"], PASSWORD)["access_token"]

        def change(password: str) -> HTTPResponse:
            body = {"current_password": PASSWORD, "new_password": password}
            return api.post("/me/password", body, token=token)

        return Target(user["username"], user["email"], change, 204)

    verify_address(api, settings, user["email"])
    assert api.post("/password/forgot", {"email": user["email"]}).status_code == 202
    reset_token = last_token(settings, user["email"], RESET_MARKER)

    def reset(password: str) -> HTTPResponse:
        return api.post("/password/reset", {"token": reset_token, "new_password": password})

    return Target(user["username"], user["email"], reset, 204)


def refused_codes(response: HTTPResponse) -> list[str]:
    document = assert_problem(response, 400, "weak_password")
    assert all(error["field"] == "password" for error in document["errors"])
    assert all(error["message"] for error in document["errors"])
    return [error["code"] for error in document["errors"]]


# ------------------------------------------------------------------ each rule, each route


def test_a_short_password_is_too_short(target: Target) -> None:
    assert refused_codes(target.attempt("Zq7!x")) == ["too_short"]


def test_a_password_over_256_characters_is_too_long(target: Target) -> None:
    assert refused_codes(target.attempt("Zq7!x-" * 43)) == ["too_long"]  # 258 characters


@pytest.mark.parametrize("common", ["password1", "qwertyuiop", "PassWord1", "iloveyou"])
def test_a_common_password_is_refused_as_common(target: Target, common: str) -> None:
    assert refused_codes(target.attempt(common)) == ["common"]


def test_a_password_containing_the_username_is_refused(target: Target) -> None:
    password = f"my {target.username.upper()} is great"

    assert refused_codes(target.attempt(password)) == ["contains_username"]


def test_a_password_containing_the_email_local_part_is_refused(target: Target) -> None:
    local = target.email.split("@")[0]

    assert refused_codes(target.attempt(f"{local}-likes-tea")) == ["contains_email"]


def test_every_failing_rule_is_reported_at_once(target: Target) -> None:
    local = target.email.split("@")[0]
    password = (target.username + local) * 20  # over 256 characters, and both names

    codes = refused_codes(target.attempt(password))

    assert sorted(codes) == ["contains_email", "contains_username", "too_long"]


def test_a_good_password_is_accepted(target: Target) -> None:
    response = target.attempt("a perfectly fine passphrase")

    assert response.status_code == target.success, response.body


def test_a_common_password_typed_in_full_width_is_still_common(target: Target) -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "password1")

    assert refused_codes(target.attempt(full_width)) == ["common"]


# ------------------------------------------------------------------ register specifics


def test_register_reports_all_four_rules_together(api: Api) -> None:
    body = {"username": "qwe", "password": "qwe", "email": "qwe@example.com"}

    codes = refused_codes(api.post("/register", body))

    assert sorted(codes) == ["common", "contains_email", "contains_username", "too_short"]


@pytest.mark.parametrize(("length", "accepted"), [(7, False), (8, True), (256, True), (257, False)])
def test_length_limits_are_inclusive(api: Api, length: int, accepted: bool) -> None:
    password = ("Kx9#mV2q" * 40)[:length]

    response = api.post("/register", {"username": unique(), "password": password})

    if accepted:
        assert response.status_code == 201, response.body
    else:
        assert refused_codes(response) == ["too_short" if length < 8 else "too_long"]


def test_length_counts_characters_not_bytes(api: Api) -> None:
    short = api.post("/register", {"username": unique(), "password": "密码密码密码密"})
    enough = api.post("/register", {"username": unique(), "password": "密码密码密码密码"})

    assert refused_codes(short) == ["too_short"]
    assert enough.status_code == 201, enough.body


@pytest.mark.parametrize(
    "password",
    [
        "🔐🔑 ключ 密码 pässwörd",
        "пароль для входа в систему",
        "كلمة المرور السرية",
        "\u00a0spaces\u3000and\ttabs\u00a0",
        "e\u0301toile filante ☄",
    ],
    ids=["emoji-mix", "cyrillic", "arabic", "odd-spaces", "combining"],
)
def test_any_unicode_password_registers_and_logs_in(api: Api, password: str) -> None:
    username = unique()
    created = api.post("/register", {"username": username, "password": password})

    logged_in = api.post("/login", {"username": username, "password": password})

    assert created.status_code == 201, created.body
    assert logged_in.status_code == 200, logged_in.body


def test_a_password_registered_in_full_width_logs_in_typed_in_ascii(api: Api) -> None:
    username = unique()
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "Quartz9Lemonade")
    assert api.post("/register", {"username": username, "password": full_width}).status_code == 201

    response = api.post("/login", {"username": username, "password": "Quartz9Lemonade"})

    assert response.status_code == 200, response.body


def test_composed_and_decomposed_accents_are_one_password(api: Api) -> None:
    composed = "crème brûlée au café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    username = unique()
    assert api.post("/register", {"username": username, "password": composed}).status_code == 201

    response = api.post("/login", {"username": username, "password": decomposed})

    assert response.status_code == 200, response.body


def test_a_different_password_of_the_same_letters_does_not_log_in(api: Api) -> None:
    username = unique()
    assert (
        api.post("/register", {"username": username, "password": "crème brûlée"}).status_code == 201
    )

    response = api.post("/login", {"username": username, "password": "creme brulee"})

    assert_problem(response, 401, "invalid_credentials")


# ------------------------------------------------------------------ the new password is the one


def test_a_full_width_new_password_from_me_password_logs_in_typed_in_ascii(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "Saffron7Harbour")
    body = {"current_password": PASSWORD, "new_password": full_width}
    assert api.post("/me/password", body, token=token).status_code == 204

    response = api.post("/login", {"username": user["username"], "password": "Saffron7Harbour"})

    assert response.status_code == 200, response.body


def test_a_unicode_password_set_by_reset_logs_in(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = new_user(email=f"{unique('uni')}@example.com")
    verify_address(api, settings, user["email"])
    assert api.post("/password/forgot", {"email": user["email"]}).status_code == 202
    token = last_token(settings, user["email"], RESET_MARKER)
    new = "новый пароль 🔑 nouveau"
    assert api.post("/password/reset", {"token": token, "new_password": new}).status_code == 204

    response = api.post("/login", {"username": user["username"], "password": new})

    assert response.status_code == 200, response.body


def test_a_refused_change_keeps_the_old_password(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    body = {"current_password": PASSWORD, "new_password": "password1"}
    assert_problem(api.post("/me/password", body, token=token), 400, "weak_password")

    assert login(user["username"], PASSWORD)["access_token"]
    refused = api.post("/login", {"username": user["username"], "password": "password1"})
    assert_problem(refused, 401, "invalid_credentials")

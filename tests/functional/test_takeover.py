"""A stolen access token must not become the account (issue 13, item 1).

An access token is 15 minutes of access. What would turn it into the account for good
(a new email, which then receives the reset links; a second factor of the thief's own)
needs the password again, and the second factor when MFA is on; a reset link goes
only to an address its owner proved; the old address hears of a change; and a reset
ends every passkey, so whoever registered an address first keeps no way in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyotp

from chalicelib.platform.config import Settings
from tests.assertions import assert_problem, unique
from tests.conftest import Api
from tests.functional.lifecycle import (
    PASSWORD,
    RESET_MARKER,
    VERIFY_MARKER,
    body_of,
    enable_totp,
    last_token,
    mail_to,
    patch,
    verify_address,
)
from tests.functional.passkeys import enrol, passkeys_of, sign_in
from tests.webauthn_authenticator import Authenticator

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
WRONG = "not the password at all"
NEW_PASSWORD = "a brand new passphrase"


def address(prefix: str = "mail") -> str:
    return f"{unique(prefix)}@example.com"


def me(api: Api, token: str) -> dict[str, Any]:
    return dict(api.get("/me", token=token).json_body)


def forgot(api: Api, email: str) -> None:
    assert api.post("/password/forgot", {"email": email}).status_code == 202


def reset_mails(settings: Settings, email: str) -> list[str]:
    return [body_of(m) for m in mail_to(settings, email) if RESET_MARKER in body_of(m)]


# ------------------------------------------------------------------ PATCH /me email


def test_an_email_change_without_the_password_is_400_and_changes_nothing(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]

    document = assert_problem(
        patch(api, "/me", {"email": address("thief")}, token=token), 400, "validation_error"
    )

    assert [(e["field"], e["code"]) for e in document["errors"]] == [("password", "required")]
    assert me(api, token)["email"] == user["email"]


def test_an_empty_password_is_as_missing_as_none(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]

    response = patch(api, "/me", {"email": address("thief"), "password": ""}, token=token)

    assert_problem(response, 400, "validation_error")
    assert me(api, token)["email"] == user["email"]


def test_a_wrong_password_on_an_email_change_is_401_and_counts_like_a_login(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]
    thief = address("thief")

    for _ in range(10):
        response = patch(api, "/me", {"email": thief, "password": WRONG}, token=token)
        assert_problem(response, 401, "invalid_credentials")
    locked = patch(api, "/me", {"email": thief, "password": PASSWORD}, token=token)

    assert_problem(locked, 429, "too_many_attempts")
    assert me(api, token)["email"] == user["email"]
    assert_problem(
        api.post("/login", {"username": user["username"], "password": PASSWORD}),
        429,
        "too_many_attempts",
    )


def test_with_mfa_on_an_email_change_needs_a_code_too_and_spends_it(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]
    secret, _ = enable_totp(api, token)  # spends the code of this 30-second step
    moved = address("moved")

    without = patch(api, "/me", {"email": moved, "password": PASSWORD}, token=token)
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step's, accepted early
    wrong = patch(
        api, "/me", {"email": moved, "password": PASSWORD, "totp_code": "000000"}, token=token
    )
    right = patch(
        api, "/me", {"email": moved, "password": PASSWORD, "totp_code": code}, token=token
    )
    replayed = patch(
        api, "/me", {"email": address(), "password": PASSWORD, "totp_code": code}, token=token
    )

    assert_problem(without, 401, "mfa_required")
    if code != "000000":
        assert_problem(wrong, 401, "invalid_credentials")
    assert right.status_code == 200, right.body
    assert right.json_body["email"] == moved
    assert_problem(replayed, 401, "invalid_credentials")  # a code works once


def test_the_display_name_alone_needs_no_password(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]

    response = patch(api, "/me", {"display_name": "Renamed"}, token=token)

    assert response.status_code == 200, response.body
    assert response.json_body["display_name"] == "Renamed"


def test_the_old_address_is_told_what_happened_when_and_from_where_with_no_link(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    old, new = address("old"), address("new")
    user = new_user(email=old)
    token = login(user["username"], PASSWORD)["access_token"]

    response = api.request(
        "PATCH",
        "/me",
        {"email": new, "password": PASSWORD},
        token=token,
        headers={"User-Agent": "takeover-test/1.0"},
    )

    assert response.status_code == 200, response.body
    [notice] = [m for m in mail_to(settings, old) if "changed" in str(m["Subject"])]
    text = body_of(notice)
    assert user["username"] in text
    assert f"{new[0]}***@example.com" in text and new not in text
    assert "127.0.0.1" in text and "takeover-test/1.0" in text
    assert " UTC" in text
    assert "http" not in text and "token" not in text.lower()
    assert VERIFY_MARKER in body_of(mail_to(settings, new)[-1])


def test_a_change_that_only_normalisation_sees_through_is_still_an_email_change(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]

    changed = patch(api, "/me", {"email": user["email"].upper(), "password": PASSWORD}, token=token)

    assert changed.status_code == 200, changed.body
    events = api.get("/me/activity", token=token).json_body["events"]
    assert events[0]["type"] == "email_change"


def test_a_case_only_change_of_an_address_is_one_counter_not_a_503(
    api: Api, new_user: NewUser, login: Login
) -> None:
    """The old and new address are the same mailbox: one mail counter, claimed once."""
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]

    response = patch(
        api, "/me", {"email": user["email"].title(), "password": PASSWORD}, token=token
    )

    assert response.status_code == 200, response.body


# ------------------------------------------------------------------ POST /me/mfa/totp


def test_enrolling_totp_needs_the_password(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]

    missing = api.post("/me/mfa/totp", token=token)
    empty = api.post("/me/mfa/totp", {"password": ""}, token=token)
    wrong = api.post("/me/mfa/totp", {"password": WRONG}, token=token)
    right = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token)

    assert_problem(missing, 400, "validation_error")
    assert_problem(empty, 400, "validation_error")
    assert_problem(wrong, 401, "invalid_credentials")
    assert right.status_code == 200, right.body
    assert right.json_body["otpauth_uri"].startswith("otpauth://totp/")


def test_wrong_passwords_at_totp_enrolment_are_throttled_like_logins(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]

    for _ in range(10):
        wrong = api.post("/me/mfa/totp", {"password": WRONG}, token=token)
        assert_problem(wrong, 401, "invalid_credentials")

    assert_problem(
        api.post("/me/mfa/totp", {"password": PASSWORD}, token=token), 429, "too_many_attempts"
    )


def test_own_right_step_ups_never_lock_the_owner_out(
    api: Api, new_user: NewUser, login: Login
) -> None:
    """A step-up that passes gives its claim back: twenty in a row are all fine."""
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]

    for _ in range(20):
        assert api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).status_code == 200

    assert login(user["username"], PASSWORD)["access_token"]


# ------------------------------------------------------------------ reset links


def test_a_reset_link_goes_only_to_a_verified_address(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = new_user(email=address())

    forgot(api, user["email"])
    before_verifying = reset_mails(settings, user["email"])
    verify_address(api, settings, user["email"])
    forgot(api, user["email"])

    assert before_verifying == []
    assert len(reset_mails(settings, user["email"])) == 1


def test_after_a_change_the_new_address_gets_reset_links_only_once_verified(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    """The thief's way in: move the address, then ask for a reset. It now needs the
    password to move it, and the moved address must be proven before it gets links."""
    user = new_user(email=address())
    verify_address(api, settings, user["email"])
    token = login(user["username"], PASSWORD)["access_token"]
    new = address("new")
    assert patch(api, "/me", {"email": new, "password": PASSWORD}, token=token).status_code == 200

    forgot(api, new)
    forgot(api, user["email"])

    assert reset_mails(settings, new) == []
    assert reset_mails(settings, user["email"]) == []
    assert me(api, token)["email_verified"] is False


# ------------------------------------------------------------------ a reset ends passkeys


def test_a_pre_registered_address_keeps_no_passkey_after_its_owner_resets(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    """Someone registers the victim's address first and adds a passkey. The victim
    verifies the address (the link went to their mailbox), resets the password, and
    the squatter's passkey and sessions are gone; TOTP would stay, see
    docs/concepts/account-protection.md."""
    victim = address("victim")
    squatter = new_user(email=victim)
    squatter_token = login(squatter["username"], PASSWORD)["access_token"]
    authenticator = Authenticator()
    enrol(api, squatter_token, authenticator)
    assert sign_in(api, authenticator).status_code == 200

    verify_address(api, settings, victim)  # the owner of the mailbox follows the link
    forgot(api, victim)
    [mail] = reset_mails(settings, victim)
    token = mail.split(RESET_MARKER, 1)[1].split()[0]
    reset = api.post("/password/reset", {"token": token, "new_password": NEW_PASSWORD})

    assert reset.status_code == 204, reset.body
    assert_problem(sign_in(api, authenticator), 401, "invalid_credentials")
    assert_problem(api.get("/me", token=squatter_token), 401, "invalid_token")
    owner = login(victim, NEW_PASSWORD)["access_token"]
    assert passkeys_of(api, owner) == []
    events = api.get("/me/activity", token=owner).json_body["events"]
    assert ("password_reset", "success") in [(e["type"], e["outcome"]) for e in events]


def test_after_a_reset_the_owner_can_add_passkeys_again(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    """The passkey count went with the passkeys: the limit starts again from zero."""
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]
    enrol(api, token, Authenticator())
    verify_address(api, settings, user["email"])
    forgot(api, user["email"])
    reset_token = last_token(settings, user["email"], RESET_MARKER)
    assert (
        api.post(
            "/password/reset", {"token": reset_token, "new_password": NEW_PASSWORD}
        ).status_code
        == 204
    )
    fresh = login(user["username"], NEW_PASSWORD)["access_token"]

    with_password = {"password": NEW_PASSWORD}
    options = api.post("/me/passkeys/options", with_password, token=fresh)

    assert options.status_code == 200, options.body
    assert passkeys_of(api, fresh) == []

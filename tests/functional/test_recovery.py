"""Mail flows on DynamoDB Local: forgotten password, reset, email verification."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chalicelib.accounts import identity
from chalicelib.accounts.recovery import Recovery, RecoveryTimes
from chalicelib.accounts.sessions import Device
from chalicelib.crypto.passwords import PasswordPolicy
from chalicelib.platform.config import Settings
from chalicelib.platform.mail import LocalOutbox
from chalicelib.store.items import OneTimeRecord
from chalicelib.wiring import Services
from tests.assertions import assert_problem, header, unique
from tests.conftest import Api
from tests.functional.lifecycle import (
    PASSWORD,
    RESET_MARKER,
    VERIFY_MARKER,
    body_of,
    comparable_headers,
    last_token,
    mail_to,
    outbox,
    patch,
    table_dump,
    verify_address,
)

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
NEW_PASSWORD = "a brand new passphrase"


def user_with_email(new_user: NewUser, prefix: str = "mail") -> dict[str, Any]:
    return new_user(email=f"{unique(prefix)}@example.com")


def verified_user(
    api: Api, settings: Settings, new_user: NewUser, prefix: str = "mail"
) -> dict[str, Any]:
    """A user whose address is verified: only such an address is sent reset links."""
    user = user_with_email(new_user, prefix)
    verify_address(api, settings, user["email"])
    return user


def reset_token(api: Api, settings: Settings, address: str) -> str:
    response = api.post("/password/forgot", {"email": address})
    assert response.status_code == 202, response.body
    return last_token(settings, address, RESET_MARKER)


def reset(api: Api, token: str, password: str = NEW_PASSWORD) -> Any:
    return api.post("/password/reset", {"token": token, "new_password": password})


def email_verified(api: Api, token: str) -> bool:
    return bool(api.get("/me", token=token).json_body["email_verified"])


# ------------------------------------------------------------------ POST /password/forgot


def test_forgot_answers_the_same_for_a_known_and_an_unknown_email(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    known = verified_user(api, settings, new_user, "known")["email"]
    unknown = f"{unique('unknown')}@example.com"
    mails_before = len(outbox(settings))

    for_known = api.post("/password/forgot", {"email": known})
    after_known = len(outbox(settings))
    for_unknown = api.post("/password/forgot", {"email": unknown})

    assert for_known.status_code == for_unknown.status_code == 202
    assert for_known.body == for_unknown.body
    assert comparable_headers(for_known) == comparable_headers(for_unknown)
    assert header(for_known, "X-Request-Id") != header(for_unknown, "X-Request-Id")
    assert after_known == mails_before + 1
    assert len(outbox(settings)) == after_known
    assert mail_to(settings, unknown) == []
    [mail] = [m for m in mail_to(settings, known) if RESET_MARKER in body_of(m)]
    assert "reset" in str(mail["Subject"]).lower()


def test_forgot_finds_the_account_whatever_the_case_of_the_email(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)

    token = reset_token(api, settings, user["email"].upper())

    assert reset(api, token).status_code == 204


def test_forgot_with_a_malformed_email_is_400(api: Api) -> None:
    document = assert_problem(
        api.post("/password/forgot", {"email": "no-at-sign"}), 400, "validation_error"
    )
    assert [e["field"] for e in document["errors"]] == ["email"]


def test_the_mail_carries_no_password_and_the_table_keeps_only_the_tokens_hash(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)

    token = reset_token(api, settings, user["email"])

    text = body_of(mail_to(settings, user["email"])[-1])
    assert PASSWORD not in text
    assert user["username"] in text
    dump = table_dump(settings)
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump


# ------------------------------------------------------------------ POST /password/reset


def test_a_reset_token_works_once(api: Api, new_user: NewUser, settings: Settings) -> None:
    user = verified_user(api, settings, new_user)
    token = reset_token(api, settings, user["email"])

    first = reset(api, token)
    second = reset(api, token, "yet another passphrase")

    assert first.status_code == 204, first.body
    assert_problem(second, 401, "invalid_token")
    logged_in = api.post("/login", {"username": user["username"], "password": NEW_PASSWORD})
    assert logged_in.status_code == 200


def test_a_reset_sets_the_new_password_and_ends_every_session(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)
    sessions = [login(user["username"], PASSWORD) for _ in range(2)]
    token = reset_token(api, settings, user["email"])

    assert reset(api, token).status_code == 204

    for pair in sessions:
        assert_problem(api.get("/me", token=pair["access_token"]), 401, "invalid_token")
        refreshed = api.post("/token/refresh", {"refresh_token": pair["refresh_token"]})
        assert_problem(refreshed, 401, "invalid_token")
    old = api.post("/login", {"username": user["username"], "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    fresh = login(user["username"], NEW_PASSWORD)["access_token"]
    events = api.get("/me/activity", token=fresh).json_body["events"]
    assert ("password_reset", "success") in [(e["type"], e["outcome"]) for e in events]


def test_a_weak_new_password_is_refused_without_spending_the_token(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)
    token = reset_token(api, settings, user["email"])

    weak = reset(api, token, "password1")
    named = reset(api, token, f"i am {user['username']}")
    good = reset(api, token)

    assert [e["code"] for e in assert_problem(weak, 400, "weak_password")["errors"]] == ["common"]
    named_codes = [e["code"] for e in assert_problem(named, 400, "weak_password")["errors"]]
    assert "contains_username" in named_codes
    assert good.status_code == 204, good.body
    assert_problem(
        api.post("/login", {"username": user["username"], "password": "password1"}),
        401,
        "invalid_credentials",
    )


@pytest.mark.parametrize("token", ["x", "not-a-real-token-" + "a" * 40, "\u00e9\u00e9\u00e9"])
def test_an_unknown_reset_token_is_401(api: Api, token: str) -> None:
    assert_problem(reset(api, token), 401, "invalid_token")


def past_recovery(app_services: Services, directory: Path, seconds_ago: int) -> Recovery:
    """The real recovery service, but living ``seconds_ago`` in the past (a token it
    issues expired that long ago, if its lifetime is shorter), mailing to ``directory``."""
    return Recovery(
        app_services.store,
        app_services.accounts,
        PasswordPolicy(),
        app_services.throttle,
        mailer=LocalOutbox(directory, "no-reply@gatehouse.local"),
        clock=lambda: time.time() - seconds_ago,
        times=RecoveryTimes(forgot_floor_seconds=0.0),
        links=app_services.settings.issuer,
    )


def test_an_expired_reset_token_is_refused(
    api: Api, new_user: NewUser, app_services: Services, tmp_path: Path, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)
    recovery = past_recovery(app_services, tmp_path, seconds_ago=31 * 60)
    recovery.forgot(user["email"], Device("pytest", "127.0.0.1"))
    token = last_token(tmp_path, user["email"], RESET_MARKER)

    weak = reset(api, token, "password1")
    good = reset(api, token)

    assert_problem(weak, 401, "invalid_token")
    assert_problem(good, 401, "invalid_token")
    assert (
        api.post("/login", {"username": user["username"], "password": PASSWORD}).status_code == 200
    )


def test_a_reset_token_still_inside_its_lifetime_works(
    api: Api, new_user: NewUser, app_services: Services, tmp_path: Path, settings: Settings
) -> None:
    """The same issue path as the expired case, 29 minutes ago: the lifetime is 30."""
    user = verified_user(api, settings, new_user)
    recovery = past_recovery(app_services, tmp_path, seconds_ago=29 * 60)
    recovery.forgot(user["email"], Device("pytest", "127.0.0.1"))

    response = reset(api, last_token(tmp_path, user["email"], RESET_MARKER))

    assert response.status_code == 204, response.body


def test_a_reset_token_mailed_before_an_email_change_no_longer_works(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    """Whoever still reads the old mailbox must not take the account back."""
    user = verified_user(api, settings, new_user)
    token = reset_token(api, settings, user["email"])
    session = login(user["username"], PASSWORD)["access_token"]
    new = f"{unique('moved')}@example.com"
    assert patch(api, "/me", {"email": new, "password": PASSWORD}, token=session).status_code == 200

    assert_problem(reset(api, token), 401, "invalid_token")
    assert login(user["username"], PASSWORD)["access_token"]
    verify_address(api, settings, new)
    assert reset(api, reset_token(api, settings, new)).status_code == 204


def test_a_verification_token_does_not_reset_a_password(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = user_with_email(new_user)
    verify = last_token(settings, user["email"], VERIFY_MARKER)

    assert_problem(reset(api, verify), 401, "invalid_token")
    assert api.post("/email/verify", {"token": verify}).status_code == 204


def test_a_reset_token_does_not_verify_an_email_and_still_resets(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)
    token = reset_token(api, settings, user["email"])

    assert_problem(api.post("/email/verify", {"token": token}), 401, "invalid_token")
    assert reset(api, token).status_code == 204


@pytest.fixture
def keep_os_environ() -> Iterator[None]:
    """``chalice.test`` swaps ``os.environ`` around each request; overlapping requests
    can leave a copy behind (see test_concurrency.py)."""
    original = os.environ
    yield
    os.environ = original  # noqa: B003 - restoring the object itself


@pytest.mark.usefixtures("keep_os_environ")
def test_one_reset_token_raced_ten_times_resets_once(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    user = verified_user(api, settings, new_user)
    token = reset_token(api, settings, user["email"])
    barrier = threading.Barrier(10)

    def race(n: int) -> int:
        barrier.wait(timeout=30)
        return int(reset(api, token, f"racing passphrase number {n}").status_code)

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(race, range(10)))

    assert statuses == [204] + [401] * 9


# ------------------------------------------------------------------ POST /email/verify


def test_the_registration_mail_verifies_the_email_once(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = user_with_email(new_user)
    [mail] = mail_to(settings, user["email"])
    token = last_token(settings, user["email"], VERIFY_MARKER)
    session = login(user["username"], PASSWORD)["access_token"]
    assert "verify" in str(mail["Subject"]).lower()
    assert email_verified(api, session) is False

    first = api.post("/email/verify", {"token": token})
    second = api.post("/email/verify", {"token": token})

    assert first.status_code == 204, first.body
    assert email_verified(api, session) is True
    assert_problem(second, 401, "invalid_token")


def test_registering_without_an_email_sends_nothing(api: Api, settings: Settings) -> None:
    before = len(outbox(settings))

    assert api.post("/register", {"username": unique(), "password": PASSWORD}).status_code == 201

    assert len(outbox(settings)) == before


def test_a_verify_token_for_a_changed_email_does_not_verify_the_new_one(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = user_with_email(new_user)
    stale = last_token(settings, user["email"], VERIFY_MARKER)
    session = login(user["username"], PASSWORD)["access_token"]
    new = f"{unique('changed')}@example.com"
    assert patch(api, "/me", {"email": new, "password": PASSWORD}, token=session).status_code == 200

    response = api.post("/email/verify", {"token": stale})

    assert_problem(response, 401, "invalid_token")
    assert email_verified(api, session) is False
    fresh = last_token(settings, new, VERIFY_MARKER)
    assert api.post("/email/verify", {"token": fresh}).status_code == 204
    assert email_verified(api, session) is True


def test_an_expired_verify_token_is_refused(
    api: Api, new_user: NewUser, login: Login, app_services: Services
) -> None:
    user = user_with_email(new_user)
    token = f"expired-{unique()}"
    record = OneTimeRecord(
        purpose="verify",
        user_id=user["user"]["id"],
        email_key=identity.email_key(user["email"]),
        expires_at=int(time.time()) - 60,
    )
    app_services.store.put_one_time(hashlib.sha256(token.encode()).hexdigest(), record)

    response = api.post("/email/verify", {"token": token})

    assert_problem(response, 401, "invalid_token")
    assert email_verified(api, login(user["username"], PASSWORD)["access_token"]) is False


def test_verification_can_be_sent_again(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = user_with_email(new_user)
    session = login(user["username"], PASSWORD)["access_token"]
    first = last_token(settings, user["email"], VERIFY_MARKER)

    response = api.post("/me/email/verification", token=session)

    assert response.status_code == 202, response.body
    assert len(mail_to(settings, user["email"])) == 2
    again = last_token(settings, user["email"], VERIFY_MARKER)
    assert again != first
    assert api.post("/email/verify", {"token": again}).status_code == 204
    assert email_verified(api, session) is True


def test_asking_for_verification_needs_a_token(api: Api) -> None:
    assert_problem(api.post("/me/email/verification"), 401, "invalid_token")


def test_a_verified_email_is_not_mailed_again(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = user_with_email(new_user)
    session = login(user["username"], PASSWORD)["access_token"]
    assert (
        api.post(
            "/email/verify", {"token": last_token(settings, user["email"], VERIFY_MARKER)}
        ).status_code
        == 204
    )

    response = api.post("/me/email/verification", token=session)

    assert response.status_code == 202
    assert len(mail_to(settings, user["email"])) == 1


def test_a_reset_lifts_the_login_lockout_of_the_account(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    """Whoever holds the reset link proves ownership: they may log in at once, though
    someone else had locked the account with wrong guesses (by username and by email)."""
    user = verified_user(api, settings, new_user)
    for login in [user["username"]] * 10 + [user["email"]] * 10:
        api.post("/login", {"username": login, "password": "wrong guess 123"})
    locked = api.post("/login", {"username": user["username"], "password": user["password"]})
    assert_problem(locked, 429, "too_many_attempts")

    assert reset(api, reset_token(api, settings, user["email"])).status_code == 204

    for login in (user["username"], user["email"]):
        answer = api.post("/login", {"username": login, "password": NEW_PASSWORD})
        assert answer.status_code == 200, answer.body

"""The signed-in user's own account on DynamoDB Local: GET/PATCH/DELETE /me,
POST /me/password and GET /me/activity."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.platform import errors
from chalicelib.platform.config import Settings
from chalicelib.store.items import ActivityEvent, PasskeyRecord
from chalicelib.wiring import Services
from tests.assertions import USER_FIELDS, assert_problem, unique
from tests.conftest import Api
from tests.functional.lifecycle import (
    PASSWORD,
    VERIFY_MARKER,
    body_of,
    counts,
    delete,
    enable_totp,
    last_token,
    mail_to,
    partition,
    patch,
    same_window,
    sort_key_kinds,
)

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
EVENT_FIELDS = {"type", "at", "ip", "user_agent", "outcome"}
NEW_PASSWORD = "a fresh and long passphrase"


def me(api: Api, token: str) -> dict[str, Any]:
    response = api.get("/me", token=token)
    assert response.status_code == 200, response.body
    return dict(response.json_body)


# ------------------------------------------------------------------ GET /me


def test_get_me_is_the_contract_user_and_nothing_else(
    api: Api, new_user: NewUser, login: Login
) -> None:
    address = f"{unique('Me')}@Example.com"
    user = new_user(email=address, display_name="Mia Example")
    token = login(user["username"], PASSWORD)["access_token"]

    response = api.get("/me", token=token)

    assert response.status_code == 200, response.body
    body = response.json_body
    assert set(body) == USER_FIELDS
    assert body == user["user"]
    assert body["username"] == user["username"]
    assert body["email"] == address
    assert body["email_verified"] is False
    assert body["display_name"] == "Mia Example"
    assert body["mfa_enabled"] is False
    assert isinstance(body["created_at"], int)
    text = json.dumps(body)
    for secret in (PASSWORD, "$2b$", "bcrypt", "hash", "secret", "recovery"):
        assert secret not in text


def test_get_me_shows_no_mfa_secret_once_mfa_is_on(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    secret, codes = enable_totp(api, token)

    body = me(api, token)

    assert set(body) == USER_FIELDS and body["mfa_enabled"] is True
    text = json.dumps(body)
    assert secret not in text
    assert not any(code in text for code in codes)


def test_get_me_without_a_token_is_401(api: Api) -> None:
    assert_problem(api.get("/me"), 401, "invalid_token")


# ------------------------------------------------------------------ PATCH /me


def test_patch_me_changes_the_display_name(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user(display_name="Old Name")
    token = login(user["username"], PASSWORD)["access_token"]

    response = patch(api, "/me", {"display_name": "  New Name  "}, token=token)

    assert response.status_code == 200, response.body
    assert response.json_body["display_name"] == "New Name"
    assert set(response.json_body) == USER_FIELDS
    assert me(api, token)["display_name"] == "New Name"


def test_patch_me_with_an_empty_display_name_clears_it(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user(display_name="Someone")
    token = login(user["username"], PASSWORD)["access_token"]

    response = patch(api, "/me", {"display_name": ""}, token=token)

    assert response.status_code == 200, response.body
    assert me(api, token)["display_name"] is None


def test_patch_me_with_a_new_email_unverifies_it_and_mails_the_new_address(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    old = f"{unique('old')}@example.com"
    user = new_user(email=old)
    token = login(user["username"], PASSWORD)["access_token"]
    assert (
        api.post("/email/verify", {"token": last_token(settings, old, VERIFY_MARKER)}).status_code
        == 204
    )
    assert me(api, token)["email_verified"] is True
    new = f"{unique('new')}@example.com"

    response = patch(api, "/me", {"email": new, "password": PASSWORD}, token=token)

    assert response.status_code == 200, response.body
    assert response.json_body["email"] == new
    assert response.json_body["email_verified"] is False
    assert me(api, token)["email_verified"] is False
    [mail] = mail_to(settings, new)
    assert "Verify" in str(mail["Subject"])
    assert (
        api.post("/email/verify", {"token": last_token(settings, new, VERIFY_MARKER)}).status_code
        == 204
    )
    assert me(api, token)["email_verified"] is True


def test_patch_me_with_the_same_email_in_another_case_stays_verified(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    address = f"{unique('case')}@example.com"
    user = new_user(email=address)
    token = login(user["username"], PASSWORD)["access_token"]
    verify = last_token(settings, address, VERIFY_MARKER)
    assert api.post("/email/verify", {"token": verify}).status_code == 204

    response = patch(api, "/me", {"email": address.upper(), "password": PASSWORD}, token=token)

    assert response.status_code == 200, response.body
    assert response.json_body["email"] == address.upper()
    assert response.json_body["email_verified"] is True
    verifications = [m for m in mail_to(settings, address) if VERIFY_MARKER in body_of(m)]
    assert len(verifications) == 1  # no new verification message, only the change notice
    assert "changed" in str(mail_to(settings, address)[-1]["Subject"])


def test_patch_me_with_another_accounts_email_is_409_and_changes_nothing(
    api: Api, new_user: NewUser, login: Login
) -> None:
    taken = f"{unique('taken')}@example.com"
    new_user(email=taken)
    mine = f"{unique('mine')}@example.com"
    user = new_user(email=mine)
    token = login(user["username"], PASSWORD)["access_token"]

    response = patch(api, "/me", {"email": taken.upper(), "password": PASSWORD}, token=token)

    assert_problem(response, 409, "email_taken")
    assert me(api, token)["email"] == mine


def test_the_old_email_is_free_after_a_change(api: Api, new_user: NewUser, login: Login) -> None:
    old = f"{unique('free')}@example.com"
    user = new_user(email=old)
    token = login(user["username"], PASSWORD)["access_token"]
    assert (
        patch(
            api,
            "/me",
            {"email": f"{unique('moved')}@example.com", "password": PASSWORD},
            token=token,
        ).status_code
        == 200
    )

    other = api.post("/register", {"username": unique(), "password": PASSWORD, "email": old})

    assert other.status_code == 201, other.body
    by_old_email = api.post("/login", {"username": old, "password": PASSWORD})
    assert by_old_email.status_code == 200
    assert me(api, by_old_email.json_body["access_token"])["id"] == other.json_body["user"]["id"]


def test_the_new_email_logs_in_and_the_old_one_does_not(
    api: Api, new_user: NewUser, login: Login
) -> None:
    old = f"{unique('was')}@example.com"
    user = new_user(email=old)
    token = login(user["username"], PASSWORD)["access_token"]
    new = f"{unique('now')}@example.com"
    assert patch(api, "/me", {"email": new, "password": PASSWORD}, token=token).status_code == 200

    assert login(new, PASSWORD)["access_token"]
    assert_problem(
        api.post("/login", {"username": old, "password": PASSWORD}), 401, "invalid_credentials"
    )


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        ({"username": "renamed"}, ("username", "unknown_field")),
        ({"email_verified": True}, ("email_verified", "unknown_field")),
        ({"mfa_enabled": False}, ("mfa_enabled", "unknown_field")),
        ({"display_name": 42}, ("display_name", "invalid_type")),
        ({"email": ["a@example.com"]}, ("email", "invalid_type")),
        ({"email": "not an email"}, ("email", "invalid_email")),
        ({"display_name": "bad\u0000name"}, ("display_name", "invalid_display_name")),
    ],
)
def test_patch_me_with_an_unknown_field_or_a_wrong_type_is_400(
    api: Api, new_user: NewUser, login: Login, body: dict[str, Any], refused: tuple[str, str]
) -> None:
    user = new_user(display_name="Kept")
    token = login(user["username"], PASSWORD)["access_token"]

    document = assert_problem(patch(api, "/me", body, token=token), 400, "validation_error")

    assert [(e["field"], e["code"]) for e in document["errors"]] == [refused]
    assert me(api, token) == user["user"]


# ------------------------------------------------------------------ POST /me/password


def test_changing_the_password_with_a_wrong_current_one_is_401(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    body = {"current_password": "not my password", "new_password": NEW_PASSWORD}

    assert_problem(api.post("/me/password", body, token=token), 401, "invalid_credentials")
    assert login(user["username"], PASSWORD)["access_token"]
    refused = api.post("/login", {"username": user["username"], "password": NEW_PASSWORD})
    assert_problem(refused, 401, "invalid_credentials")


def test_changing_the_password_keeps_this_session_and_ends_every_other(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    mine = login(user["username"], PASSWORD)
    others = [login(user["username"], PASSWORD) for _ in range(2)]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

    response = api.post("/me/password", body, token=mine["access_token"])

    assert response.status_code == 204, response.body
    assert me(api, mine["access_token"])["id"] == user["user"]["id"]
    refreshed = api.post("/token/refresh", {"refresh_token": mine["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.body
    for other in others:
        assert_problem(api.get("/me", token=other["access_token"]), 401, "invalid_token")
        stale = api.post("/token/refresh", {"refresh_token": other["refresh_token"]})
        assert_problem(stale, 401, "invalid_token")


def test_after_a_change_the_new_password_logs_in_and_the_old_one_does_not(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert api.post("/me/password", body, token=token).status_code == 204

    assert login(user["username"], NEW_PASSWORD)["access_token"]
    old = api.post("/login", {"username": user["username"], "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")


def test_changing_the_password_needs_both_fields(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]

    document = assert_problem(
        api.post("/me/password", {"new_password": NEW_PASSWORD}, token=token),
        400,
        "validation_error",
    )

    assert [e["field"] for e in document["errors"]] == ["current_password"]


# ------------------------------------------------------------------ GET /me/activity


def test_activity_lists_every_kind_of_event_newest_first(
    api: Api, new_user: NewUser, login: Login
) -> None:
    same_window()  # the tenth failure below must lock the account, in one hourly window
    user = new_user()
    agent = {"User-Agent": "activity-test/1.0"}
    first = api.post(
        "/login", {"username": user["username"], "password": PASSWORD}, headers=agent
    ).json_body
    token = first["access_token"]
    api.post("/login", {"username": user["username"], "password": "wrong password!"})
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert api.post("/me/password", body, token=token, headers=agent).status_code == 204
    secret, _ = enable_totp(api, token, NEW_PASSWORD)
    assert (
        api.request("DELETE", "/me/mfa/totp", {"password": NEW_PASSWORD}, token=token).status_code
        == 204
    )
    second = login(user["username"], NEW_PASSWORD)
    rotated = api.post("/token/refresh", {"refresh_token": second["refresh_token"]})
    assert rotated.status_code == 200
    reused = api.post("/token/refresh", {"refresh_token": second["refresh_token"]})
    assert_problem(reused, 401, "invalid_token")
    for _ in range(10):
        api.post("/login", {"username": user["username"], "password": "wrong password!"})

    response = api.get("/me/activity", token=token)

    assert response.status_code == 200, response.body
    events = response.json_body["events"]
    for event in events:
        assert set(event) == EVENT_FIELDS
        assert isinstance(event["at"], int)
        assert event["ip"] == "127.0.0.1"
        assert isinstance(event["user_agent"], str)
    ats = [e["at"] for e in events]
    assert ats == sorted(ats, reverse=True)
    happened = [(e["type"], e["outcome"]) for e in reversed(events)]
    assert happened == [
        ("login", "success"),
        ("login", "failure"),
        ("password_change", "success"),
        ("mfa_enabled", "success"),
        ("mfa_disabled", "success"),
        ("login", "success"),
        ("refresh_reuse", "session_ended"),
        *[("login", "failure")] * 9,
        ("login", "throttled"),
    ]
    assert events[-1]["user_agent"] == "activity-test/1.0"
    assert secret not in json.dumps(events)


def test_activity_shows_the_user_agent_and_mfa_required(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    enable_totp(api, token)
    attempt = {"username": user["username"], "password": PASSWORD}
    asked = api.post("/login", attempt, headers={"User-Agent": "phone-app/2"})
    assert_problem(asked, 401, "mfa_required")

    newest = api.get("/me/activity", token=token).json_body["events"][0]

    assert (newest["type"], newest["outcome"]) == ("login", "mfa_required")
    assert newest["user_agent"] == "phone-app/2"


def test_another_users_events_never_appear(api: Api, new_user: NewUser, login: Login) -> None:
    alice, bob = new_user(), new_user()
    alice_agent = {"User-Agent": f"alice-{unique()}"}
    for password in (PASSWORD, "wrong password!"):
        api.post(
            "/login", {"username": alice["username"], "password": password}, headers=alice_agent
        )
    bob_token = login(bob["username"], PASSWORD)["access_token"]

    events = api.get("/me/activity", token=bob_token).json_body["events"]

    assert [(e["type"], e["outcome"]) for e in events] == [("login", "success")]
    assert alice_agent["User-Agent"] not in json.dumps(events)


def test_activity_needs_a_token(api: Api) -> None:
    assert_problem(api.get("/me/activity"), 401, "invalid_token")


# ------------------------------------------------------------------ DELETE /me


def test_deleting_with_a_wrong_password_is_401_and_deletes_nothing(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = new_user(email=f"{unique('keep')}@example.com")
    token = login(user["username"], PASSWORD)["access_token"]
    before = partition(settings, user["user"]["id"])

    response = delete(api, "/me", {"password": "not my password"}, token=token)

    assert_problem(response, 401, "invalid_credentials")
    assert me(api, token) == user["user"]
    assert login(user["username"], PASSWORD)["access_token"]
    retaken = api.post("/register", {"username": user["username"], "password": PASSWORD})
    assert_problem(retaken, 409, "username_taken")
    after = {item["sk"]["S"] for item in partition(settings, user["user"]["id"])}
    assert {item["sk"]["S"] for item in before} <= after


def test_deleting_without_a_password_is_400(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]

    assert_problem(delete(api, "/me", token=token), 400, "validation_error")
    assert me(api, token)["id"] == user["user"]["id"]


def test_deleting_the_account_removes_it_and_everything_it_owns(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    address = f"{unique('gone')}@example.com"
    user = new_user(email=address, display_name="Soon Gone")
    user_id = user["user"]["id"]
    session = login(user["username"], PASSWORD)
    other = login(user["username"], PASSWORD)
    assert api.post("/token/refresh", {"refresh_token": other["refresh_token"]}).status_code == 200
    api.post("/login", {"username": user["username"], "password": "wrong password!"})
    enable_totp(api, session["access_token"])
    todo = api.post("/todos", {"text": "buy milk"}, token=session["access_token"])
    assert todo.status_code == 201, todo.body
    kinds = sort_key_kinds(partition(settings, user_id))
    assert kinds >= {"PROFILE", "SESSION", "SPENT", "EVENT", "TODO", "TODOCOUNT"}

    response = delete(api, "/me", {"password": PASSWORD}, token=session["access_token"])

    assert response.status_code == 204, response.body
    assert partition(settings, user_id) == []
    for pair in (session, other):
        assert_problem(api.get("/me", token=pair["access_token"]), 401, "invalid_token")
    gone = api.post("/login", {"username": user["username"], "password": PASSWORD})
    assert_problem(gone, 401, "invalid_credentials")
    again = api.post(
        "/register", {"username": user["username"], "password": PASSWORD, "email": address}
    )
    assert again.status_code == 201, again.body
    assert again.json_body["user"]["id"] != user_id
    assert again.json_body["user"]["mfa_enabled"] is False
    fresh = login(address, PASSWORD)["access_token"]
    events = api.get("/me/activity", token=fresh).json_body["events"]
    assert [(e["type"], e["outcome"]) for e in events] == [("login", "success")]
    assert api.get("/todos", token=fresh).json_body["items"] == []


def test_writes_for_an_account_deleted_meanwhile_leave_nothing_but_the_failure_counts(
    api: Api, new_user: NewUser, app_services: Services
) -> None:
    # What a wrong-password login that read the user just before DELETE /me writes
    # once the deletion has swept the partition: a failure and its event.
    user = new_user()
    record = app_services.store.get_user(user["user"]["id"])
    assert record is not None
    app_services.accounts.delete(record)
    throttle = app_services.throttle
    counters = throttle.counters(account=record.username_key)
    before = counts(app_services, counters)
    event = ActivityEvent(record.id, "login", "failure", int(time.time()), "192.0.2.1", "pytest")

    throttle.claim(counters)
    app_services.accounts.record(event)
    throttle.give_back(throttle.claim(counters), event=event)
    # And a passkey enrolment that passed its checks before the deletion.
    passkey = PasskeyRecord(record.id, "Y3JlZA", "a2V5", 0, "internal", "Laptop", 0, 0, False)
    with pytest.raises(errors.NotFound):
        app_services.store.add_passkey(passkey, limit=10, event=event)

    assert partition(app_services.settings, record.id) == []
    assert counts(app_services, counters) == [n + 1 for n in before]

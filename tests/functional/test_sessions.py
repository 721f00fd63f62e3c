"""Sessions through the API on DynamoDB Local: refresh rotation and reuse detection,
logout, logout everywhere, the session list and ending one session."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import HTTPResponse

from chalicelib.accounts.sessions import Device, Lifetimes, Sessions
from chalicelib.crypto.tokens import RefreshToken
from chalicelib.platform import errors
from chalicelib.store.items import UserRecord
from chalicelib.wiring import Services
from tests.assertions import assert_problem, header
from tests.conftest import Api

PASSWORD = "correct horse battery staple"
TOKEN_PAIR_FIELDS = {
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "refresh_expires_in",
}
SESSION_FIELDS = {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}
DAY = 24 * 3600


@dataclass(frozen=True)
class SignedIn:
    """One session of one user: who, and the token pair its login returned."""

    user_id: str
    username: str
    session_id: str
    access_token: str
    refresh_token: str


@pytest.fixture
def sign_in(api: Api, app_services: Services) -> Callable[..., SignedIn]:
    """Log ``username`` in (one more session), optionally from a given user agent."""

    def do(username: str, user_agent: str = "pytest") -> SignedIn:
        response = api.post(
            "/login",
            {"username": username, "password": PASSWORD},
            headers={"User-Agent": user_agent},
        )
        assert response.status_code == 200, response.body
        pair = response.json_body
        claims = app_services.tokens.verify(pair["access_token"])
        return SignedIn(
            user_id=claims.user_id,
            username=claims.username,
            session_id=claims.session_id,
            access_token=pair["access_token"],
            refresh_token=pair["refresh_token"],
        )

    return do


@pytest.fixture
def username(new_user: Callable[..., dict[str, Any]]) -> str:
    return str(new_user(password=PASSWORD)["username"])


def assert_invalid_token(response: HTTPResponse) -> None:
    assert_problem(response, 401, "invalid_token")


def works(api: Api, access_token: str) -> bool:
    """Whether the access token still opens /protected (200) or is refused (401)."""
    status = api.get("/protected", token=access_token).status_code
    assert status in (200, 401)
    return status == 200


def refresh(api: Api, refresh_token: str) -> HTTPResponse:
    return api.post("/token/refresh", {"refresh_token": refresh_token})


def listed_ids(api: Api, access_token: str) -> list[str]:
    response = api.get("/me/sessions", token=access_token)
    assert response.status_code == 200, response.body
    return [s["id"] for s in response.json_body["sessions"]]


# ------------------------------------------------------------------ refresh


def test_refresh_returns_a_new_token_pair_for_the_same_session(
    api: Api, app_services: Services, sign_in: Callable[..., SignedIn], username: str
) -> None:
    first = sign_in(username)

    response = refresh(api, first.refresh_token)

    assert response.status_code == 200, response.body
    assert header(response, "Cache-Control") == "no-store"
    pair = response.json_body
    assert set(pair) == TOKEN_PAIR_FIELDS
    assert pair["token_type"] == "Bearer"
    assert isinstance(pair["expires_in"], int) and pair["expires_in"] > 0
    assert isinstance(pair["refresh_expires_in"], int) and pair["refresh_expires_in"] > 0
    assert pair["access_token"] != first.access_token
    assert pair["refresh_token"] != first.refresh_token
    claims = app_services.tokens.verify(pair["access_token"])
    assert (claims.user_id, claims.session_id) == (first.user_id, first.session_id)
    assert works(api, pair["access_token"])
    assert listed_ids(api, pair["access_token"]) == [first.session_id]


def test_the_new_refresh_token_refreshes_again(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    token = sign_in(username).refresh_token

    for _ in range(3):
        response = refresh(api, token)
        assert response.status_code == 200, response.body
        token = response.json_body["refresh_token"]

    assert works(api, response.json_body["access_token"])


def test_a_spent_refresh_token_is_refused(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    first = sign_in(username)
    assert refresh(api, first.refresh_token).status_code == 200

    assert_invalid_token(refresh(api, first.refresh_token))


def test_reusing_a_spent_refresh_token_ends_the_whole_session(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    stolen = sign_in(username)
    other = sign_in(username)
    second = refresh(api, stolen.refresh_token).json_body
    newest = refresh(api, second["refresh_token"]).json_body
    assert works(api, newest["access_token"])
    assert stolen.session_id in listed_ids(api, other.access_token)

    assert_invalid_token(refresh(api, stolen.refresh_token))

    assert not works(api, newest["access_token"])
    assert_invalid_token(refresh(api, newest["refresh_token"]))
    assert stolen.session_id not in listed_ids(api, other.access_token)
    # Only that family ends: the user's other session is untouched.
    assert works(api, other.access_token)
    assert refresh(api, other.refresh_token).status_code == 200
    # And the user can see what happened.
    events = api.get("/me/activity", token=other.access_token).json_body["events"]
    assert [(e["type"], e["outcome"]) for e in events].count(
        ("refresh_reuse", "session_ended")
    ) == 1


def test_a_refresh_token_never_issued_is_refused_without_ending_the_session(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    # Anyone can read the user and session ids (the JWT's sub and sid); guessing the
    # secret wrong must not let them end somebody's session.
    victim = sign_in(username)
    forged = f"{victim.user_id}.{victim.session_id}.not-the-secret"

    assert_invalid_token(refresh(api, forged))

    assert works(api, victim.access_token)
    assert refresh(api, victim.refresh_token).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "...",
        f"{'0' * 32}.{'1' * 32}.secret",
        f"{'A' * 32}.{'B' * 32}.secret",
        f"{'0' * 32}.{'1' * 32}.secret.extra",
        "x" * 1024,
    ],
)
def test_a_malformed_or_unknown_refresh_token_is_401_invalid_token(api: Api, token: str) -> None:
    assert_invalid_token(refresh(api, token))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"not json",
        b"[]",
        b'"a string"',
        b"null",
        b"{}",
        b'{"refresh_token": null}',
        b'{"refresh_token": 5}',
        b'{"refresh_token": true}',
        b'{"refresh_token": ["x"]}',
        b'{"refresh_token": {"x": 1}}',
        b'{"refresh_token": "x", "extra": 1}',
        b'{"refresh_token": "x", "refresh_token": "y"}',
        b'{"token": "x"}',
        b'{"refresh_token": "' + b"x" * 1025 + b'"}',
        b'{"refresh_token": "' + b"x" * 17_000 + b'"}',
        b'{"refresh_token": "\xff\xfe"}',
        b'{"refresh_token": "\\ud800"}',
    ],
    ids=lambda raw: repr(raw[:40]),
)
def test_a_bad_refresh_body_is_400_validation_error(api: Api, raw: bytes) -> None:
    assert_problem(api.post("/token/refresh", raw=raw), 400, "validation_error")


def test_an_access_token_used_as_a_refresh_token_is_401_invalid_token(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    session = sign_in(username)

    assert_invalid_token(refresh(api, session.access_token))
    assert works(api, session.access_token)


@pytest.mark.parametrize("path", ["/protected", "/me/sessions"])
def test_a_refresh_token_used_as_a_bearer_token_is_401_invalid_token(
    api: Api, sign_in: Callable[..., SignedIn], username: str, path: str
) -> None:
    session = sign_in(username)

    response = api.get(path, token=session.refresh_token)

    assert_invalid_token(response)
    assert (header(response, "WWW-Authenticate") or "").startswith("Bearer")


# ------------------------------------------------------------------ logout


def test_logout_ends_the_session_at_once(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    session = sign_in(username)
    assert works(api, session.access_token)

    response = api.post("/logout", token=session.access_token)

    assert response.status_code == 204, response.body
    assert not works(api, session.access_token)
    assert_invalid_token(refresh(api, session.refresh_token))


@pytest.mark.parametrize(
    "body",
    [None, {}, {"refresh_token": None}, "own refresh token", {"refresh_token": "garbage"}],
    ids=["no-body", "empty-object", "null", "own-refresh-token", "garbage-refresh-token"],
)
def test_logout_with_or_without_a_body_is_204(
    api: Api, sign_in: Callable[..., SignedIn], username: str, body: Any
) -> None:
    session = sign_in(username)
    if body == "own refresh token":
        body = {"refresh_token": session.refresh_token}

    response = api.post("/logout", body, token=session.access_token)

    assert response.status_code == 204, response.body
    assert response.body in (b"", "")
    assert not works(api, session.access_token)
    assert_invalid_token(refresh(api, session.refresh_token))


def test_logout_with_a_bad_body_is_400_and_keeps_the_session(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    session = sign_in(username)

    response = api.post("/logout", raw=b'{"refresh_token": 5}', token=session.access_token)

    assert_problem(response, 400, "validation_error")
    assert works(api, session.access_token)


def test_logout_without_a_token_is_401(api: Api) -> None:
    assert_invalid_token(api.post("/logout"))


def test_logout_with_another_own_refresh_token_ends_that_session_too(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    here = sign_in(username)
    there = sign_in(username)
    third = sign_in(username)

    response = api.post("/logout", {"refresh_token": there.refresh_token}, token=here.access_token)

    assert response.status_code == 204
    assert not works(api, here.access_token)
    assert not works(api, there.access_token)
    assert works(api, third.access_token)


def test_logout_with_another_users_refresh_token_leaves_that_user_alone(
    api: Api,
    sign_in: Callable[..., SignedIn],
    username: str,
    new_user: Callable[..., dict[str, Any]],
) -> None:
    mine = sign_in(username)
    theirs = sign_in(new_user(password=PASSWORD)["username"])

    response = api.post("/logout", {"refresh_token": theirs.refresh_token}, token=mine.access_token)

    assert response.status_code == 204
    assert not works(api, mine.access_token)
    assert works(api, theirs.access_token)
    assert refresh(api, theirs.refresh_token).status_code == 200


def test_logout_all_ends_every_session_of_the_user_only(
    api: Api,
    sign_in: Callable[..., SignedIn],
    username: str,
    new_user: Callable[..., dict[str, Any]],
) -> None:
    sessions = [sign_in(username) for _ in range(3)]
    someone_else = sign_in(new_user(password=PASSWORD)["username"])

    response = api.post("/logout/all", token=sessions[0].access_token)

    assert response.status_code == 204, response.body
    for session in sessions:
        assert not works(api, session.access_token)
        assert_invalid_token(refresh(api, session.refresh_token))
    assert works(api, someone_else.access_token)
    assert refresh(api, someone_else.refresh_token).status_code == 200
    # The user can sign in again afterwards.
    assert works(api, sign_in(username).access_token)


def test_logout_all_without_a_token_is_401(api: Api) -> None:
    assert_invalid_token(api.post("/logout/all"))


# ------------------------------------------------------------------ the session list


def test_the_session_list_shows_each_session_and_marks_the_callers(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    before = int(time.time())
    phone = sign_in(username, user_agent="Phone/1.0")
    laptop = sign_in(username, user_agent="Laptop/2.0")

    response = api.get("/me/sessions", token=laptop.access_token)

    assert response.status_code == 200, response.body
    assert header(response, "Cache-Control") == "no-store"
    listed = response.json_body["sessions"]
    assert {s["id"] for s in listed} == {phone.session_id, laptop.session_id}
    for entry in listed:
        assert set(entry) == SESSION_FIELDS
        assert isinstance(entry["created_at"], int) and entry["created_at"] >= before - 1
        assert isinstance(entry["last_used_at"], int)
        assert entry["last_used_at"] >= entry["created_at"]
        assert isinstance(entry["ip"], str) and entry["ip"]
    by_id = {s["id"]: s for s in listed}
    assert by_id[phone.session_id]["user_agent"] == "Phone/1.0"
    assert by_id[laptop.session_id]["user_agent"] == "Laptop/2.0"
    assert [s["id"] for s in listed if s["current"] is True] == [laptop.session_id]
    assert by_id[phone.session_id]["current"] is False
    # Newest first.
    assert [s["created_at"] for s in listed] == sorted(
        (s["created_at"] for s in listed), reverse=True
    )


def test_the_current_session_follows_the_caller(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    first = sign_in(username)
    second = sign_in(username)

    for caller in (first, second):
        listed = api.get("/me/sessions", token=caller.access_token).json_body["sessions"]
        assert [s["id"] for s in listed if s["current"]] == [caller.session_id]


def test_the_session_list_shows_only_the_callers_own_sessions(
    api: Api,
    sign_in: Callable[..., SignedIn],
    username: str,
    new_user: Callable[..., dict[str, Any]],
) -> None:
    mine = sign_in(username)
    sign_in(new_user(password=PASSWORD)["username"])

    assert listed_ids(api, mine.access_token) == [mine.session_id]


def test_a_refresh_updates_last_used_and_keeps_the_session_id(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    session = sign_in(username, user_agent="Old/1.0")

    response = api.post(
        "/token/refresh",
        {"refresh_token": session.refresh_token},
        headers={"User-Agent": "New/2.0"},
    )

    assert response.status_code == 200, response.body
    listed = api.get("/me/sessions", token=response.json_body["access_token"]).json_body
    (entry,) = listed["sessions"]
    assert entry["id"] == session.session_id
    assert entry["user_agent"] == "New/2.0"
    assert entry["last_used_at"] >= entry["created_at"]


def test_the_session_list_needs_a_token(api: Api) -> None:
    assert_invalid_token(api.get("/me/sessions"))


# ------------------------------------------------------------------ ending one session


def delete_session(api: Api, session_id: str, access_token: str) -> HTTPResponse:
    return api.request("DELETE", f"/me/sessions/{session_id}", token=access_token)


def test_deleting_a_session_ends_it_and_only_it(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    here = sign_in(username)
    lost_phone = sign_in(username)

    response = delete_session(api, lost_phone.session_id, here.access_token)

    assert response.status_code == 204, response.body
    assert not works(api, lost_phone.access_token)
    assert_invalid_token(refresh(api, lost_phone.refresh_token))
    assert works(api, here.access_token)
    assert listed_ids(api, here.access_token) == [here.session_id]


def test_deleting_the_callers_own_session_ends_it(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    session = sign_in(username)

    assert delete_session(api, session.session_id, session.access_token).status_code == 204

    assert not works(api, session.access_token)


def test_deleting_a_session_twice_is_404(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    here = sign_in(username)
    there = sign_in(username)
    assert delete_session(api, there.session_id, here.access_token).status_code == 204

    assert_problem(delete_session(api, there.session_id, here.access_token), 404, "not_found")


def test_deleting_another_users_session_is_404_and_leaves_it_alive(
    api: Api,
    sign_in: Callable[..., SignedIn],
    username: str,
    new_user: Callable[..., dict[str, Any]],
) -> None:
    mine = sign_in(username)
    theirs = sign_in(new_user(password=PASSWORD)["username"])

    response = delete_session(api, theirs.session_id, mine.access_token)

    assert_problem(response, 404, "not_found")
    assert works(api, theirs.access_token)
    assert refresh(api, theirs.refresh_token).status_code == 200
    assert works(api, mine.access_token)


@pytest.mark.parametrize(
    "session_id",
    ["not-a-session", "0" * 32, "A" * 32, "0" * 31, "0" * 33, "%2e%2e", "x" * 300],
)
def test_deleting_a_malformed_or_unknown_session_id_is_404(
    api: Api, sign_in: Callable[..., SignedIn], username: str, session_id: str
) -> None:
    session = sign_in(username)

    assert_problem(delete_session(api, session_id, session.access_token), 404, "not_found")
    assert works(api, session.access_token)


def test_the_404_for_another_users_session_is_the_404_for_a_missing_one(
    api: Api,
    sign_in: Callable[..., SignedIn],
    username: str,
    new_user: Callable[..., dict[str, Any]],
) -> None:
    mine = sign_in(username)
    theirs = sign_in(new_user(password=PASSWORD)["username"])

    foreign = assert_problem(
        delete_session(api, theirs.session_id, mine.access_token), 404, "not_found"
    )
    missing = assert_problem(delete_session(api, "f" * 32, mine.access_token), 404, "not_found")

    assert foreign == missing


def test_deleting_a_session_needs_a_token(
    api: Api, sign_in: Callable[..., SignedIn], username: str
) -> None:
    session = sign_in(username)

    assert_invalid_token(api.request("DELETE", f"/me/sessions/{session.session_id}"))
    assert works(api, session.access_token)


# ------------------------------------------------------------------ lifetimes


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sessions_at(app_services: Services, clock: Clock, *, absolute: int, idle: int) -> Sessions:
    """The app's sessions service on the same table and keys, with its own clock and lifetimes."""
    return Sessions(app_services.store, app_services.tokens, clock, Lifetimes(absolute, idle))


def user_record(app_services: Services, new_user: Callable[..., dict[str, Any]]) -> UserRecord:
    record = app_services.store.get_user(new_user(password=PASSWORD)["user"]["id"])
    assert record is not None
    return record


DEVICE = Device(user_agent="pytest", ip="127.0.0.1")


def test_a_session_idle_for_longer_than_the_idle_lifetime_cannot_refresh(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    clock = Clock(time.time() - 2 * 3600)
    started = sessions_at(app_services, clock, absolute=30 * DAY, idle=3600).start(
        user_record(app_services, new_user), DEVICE
    )
    assert started["refresh_expires_in"] == 3600

    assert_invalid_token(refresh(api, started["refresh_token"]))


def test_a_session_within_its_idle_lifetime_can_refresh(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    # The control for the test above: the same, but started recently enough.
    clock = Clock(time.time() - 60)
    started = sessions_at(app_services, clock, absolute=30 * DAY, idle=3600).start(
        user_record(app_services, new_user), DEVICE
    )

    assert refresh(api, started["refresh_token"]).status_code == 200


def test_a_session_past_its_absolute_lifetime_cannot_refresh_even_if_used(
    api: Api, app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    clock = Clock(time.time() - 10 * DAY)
    sessions = sessions_at(app_services, clock, absolute=3 * DAY, idle=2 * DAY)
    pair = sessions.start(user_record(app_services, new_user), DEVICE)
    # Refreshed every day: never idle, yet the absolute lifetime still ends it.
    clock.now += DAY
    pair = sessions.refresh(pair["refresh_token"], DEVICE)
    assert pair["refresh_expires_in"] == 2 * DAY  # the idle deadline is nearer
    clock.now += DAY
    pair = sessions.refresh(pair["refresh_token"], DEVICE)
    assert pair["refresh_expires_in"] == DAY  # now the absolute one is
    clock.now += DAY

    with pytest.raises(errors.InvalidToken):
        sessions.refresh(pair["refresh_token"], DEVICE)
    assert_invalid_token(refresh(api, pair["refresh_token"]))


def test_an_expired_session_is_not_listed_and_its_access_tokens_fail(
    api: Api, app_services: Services, sign_in: Callable[..., SignedIn], username: str
) -> None:
    live = sign_in(username)
    user = app_services.store.get_user(live.user_id)
    assert user is not None
    clock = Clock(time.time() - 2 * 3600)
    sessions = sessions_at(app_services, clock, absolute=30 * DAY, idle=3600)
    expired = sessions.start(user, DEVICE)
    expired_id = RefreshToken.parse(expired["refresh_token"]).session_id
    # An access token that is itself fresh, for that expired session.
    fresh_token = app_services.tokens.issue(user.id, user.username, expired_id)

    assert not works(api, fresh_token)
    assert listed_ids(api, live.access_token) == [live.session_id]


def test_a_password_login_whose_hash_changed_meanwhile_opens_no_session(
    app_services: Services, new_user: Callable[..., dict[str, Any]]
) -> None:
    # What a login that verified the old password just before a change holds: the
    # old record. The change lands first; then the login's transaction runs.
    stale = user_record(app_services, new_user)
    app_services.accounts.change_password(stale, "a wholly different passphrase")
    sessions = app_services.sessions

    with pytest.raises(errors.InvalidCredentials):
        sessions.start(stale, DEVICE, password_hash=stale.password_hash)

    assert app_services.store.list_sessions(stale.id) == []
    assert app_services.store.list_events(stale.id, 10) == []
    # A sign-in that never read the password (a passkey) carries no such condition.
    sessions.start(stale, DEVICE)
    assert len(app_services.store.list_sessions(stale.id)) == 1

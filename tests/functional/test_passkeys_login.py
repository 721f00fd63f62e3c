"""Discoverable passkey sign-in (no username typed) through the API on DynamoDB Local:
the session it opens, every refused assertion, and cloned authenticators."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.platform.config import Settings
from chalicelib.wiring import Services
from tests.assertions import assert_problem, header
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, enable_totp, installed
from tests.functional.passkeys import (
    Holder,
    creation_options,
    events,
    expire,
    holder_of,
    passkey_login,
    passkeys_of,
    request_options,
    sign_in,
)
from tests.webauthn_authenticator import (
    AT,
    BE,
    BS,
    ED,
    UP,
    UV,
    Authenticator,
    attested_data,
    b64,
    cbor,
)

TOKEN_PAIR = {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"}


def refused(response: Any) -> None:
    assert_problem(response, 401, "invalid_credentials")
    assert header(response, "WWW-Authenticate") is None


def test_options_without_a_username_leave_the_choice_to_the_browser(api: Api) -> None:
    options = request_options(api)

    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    assert options["timeout"] == 300_000
    assert set(options) == {"challenge", "timeout", "rpId", "allowCredentials", "userVerification"}


def test_sign_in_opens_a_session_like_login(api: Api, holder: Holder) -> None:
    response = sign_in(api, holder.authenticator)

    assert response.status_code == 200, response.body
    assert set(response.json_body) == TOKEN_PAIR
    assert header(response, "Cache-Control") == "no-store"
    token = response.json_body["access_token"]
    assert api.get("/me", token=token).json_body["username"] == holder.username
    refreshed = api.post("/token/refresh", {"refresh_token": response.json_body["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.body
    assert events(api, token, "passkey_login") == ["success"]
    listed = passkeys_of(api, token)[0]
    assert listed["last_used_at"] is not None


def test_the_refresh_token_can_travel_in_the_cookie(api: Api, holder: Holder) -> None:
    credential = holder.authenticator.get(request_options(api))

    response = passkey_login(api, credential, refresh_cookie=True)

    assert response.status_code == 200, response.body
    assert response.json_body["refresh_token"] is None
    assert "gh_refresh=" in str(header(response, "Set-Cookie"))
    assert "HttpOnly" in str(header(response, "Set-Cookie"))


def test_a_passkey_satisfies_mfa(api: Api, holder: Holder) -> None:
    enable_totp(api, holder.token)

    response = sign_in(api, holder.authenticator)

    assert response.status_code == 200, response.body


def test_an_authenticator_that_does_not_count_signs_in_again_and_again(
    api: Api, holder: Holder
) -> None:
    holder.authenticator.counting = False
    holder.authenticator.credentials[0].sign_count = 0

    for _ in range(3):
        assert sign_in(api, holder.authenticator).status_code == 200


# ------------------------------------------------------------------ every refusal


@pytest.mark.parametrize(
    "changes",
    [
        {"origin": "http://evil.example:8000"},
        {"origin": "http://127.0.0.1:8000"},
        {"origin": "https://localhost:8000"},
        {"origin": "http://localhost:8000.evil.example"},
        {"origin": "http://localhost:8000/"},
        {"origin": "http://localhost:80001"},
        {"origin": "http://localhost"},
        {"origin": "http://LOCALHOST:8000"},
        {"rp_id": "evil.example"},
        {"kind": "webauthn.create"},
        {"flags": UP},
        {"flags": 0},
        {"bad_signature": True},
        {"challenge": b64(b"\x02" * 32)},
        {"user_handle": None},
        {"user_handle": b"0" * 32},
        {"user_handle": b"\xff\xfe"},
        {"client_extra": {"crossOrigin": True}},
        {"client_extra": {"crossOrigin": "false"}},
        {"client_extra": {"crossOrigin": None}},
        {"client_extra": {"crossOrigin": []}},
        {"client_extra": {"topOrigin": "http://evil.example"}},
        {"client_extra": {"topOrigin": "http://localhost:8000"}},
        {"flags": UP | UV | BS},
    ],
    ids=lambda changes: "-".join(f"{k}={v!r}"[:40] for k, v in changes.items()),
)
def test_an_assertion_with_anything_wrong_is_invalid_credentials(
    api: Api, holder: Holder, changes: dict[str, Any]
) -> None:
    response = sign_in(api, holder.authenticator, **changes)

    refused(response)
    assert events(api, holder.token, "passkey_login") in ([], ["failure"])
    assert passkeys_of(api, holder.token)[0]["last_used_at"] is None


@pytest.mark.parametrize(
    "changes",
    [
        {"flags": UP | UV | BE},
        {"flags": UP | UV | BE | BS},
        {"flags": UP | UV | 0x02 | 0x20},  # reserved bits are ignored, as WebAuthn says
        {"flags": UP | UV | ED, "appended": cbor({"credProtect": 2})},
    ],
    ids=["eligible", "backed-up", "reserved-bits", "extensions"],
)
def test_what_webauthn_allows_signs_in(api: Api, holder: Holder, changes: dict[str, Any]) -> None:
    assert sign_in(api, holder.authenticator, **changes).status_code == 200


def test_attested_credential_data_in_an_assertion_is_refused(api: Api, holder: Holder) -> None:
    """Only a registration carries a public key (AT); an assertion never does."""
    credential = holder.authenticator.credentials[0]

    response = sign_in(
        api, holder.authenticator, flags=UP | UV | AT, appended=attested_data(credential)
    )

    refused(response)


def test_an_attackers_own_passkey_naming_the_victim_is_refused(
    api: Api, holder: Holder, new_user: Callable[..., dict[str, Any]]
) -> None:
    """The attacker's credential is real and enrolled, but in their own account: a
    user handle naming the victim finds no such passkey in the victim's partition."""
    attacker = new_user()
    token = api.post("/login", {"username": attacker["username"], "password": PASSWORD})
    own = holder_of(api, attacker, token.json_body["access_token"]).authenticator

    refused(sign_in(api, own, user_handle=holder.user_id.encode()))

    assert sign_in(api, own).status_code == 200  # the same passkey, naming its owner
    assert events(api, holder.token, "passkey_login") == ["failure"]


def test_a_password_change_leaves_passkeys_working(api: Api, holder: Holder) -> None:
    """A passkey is a credential of its own, not derived from the password."""
    body = {"current_password": PASSWORD, "new_password": "a wholly new passphrase 7"}
    assert api.post("/me/password", body, token=holder.token).status_code == 204

    assert sign_in(api, holder.authenticator).status_code == 200


def test_no_library_logs_the_credential_id(
    api: Api, holder: Holder, caplog: pytest.LogCaptureFixture
) -> None:
    """Only Gatehouse's own lines reach the log: ``fido2`` would log each id at INFO."""
    caplog.set_level(logging.INFO)

    assert sign_in(api, holder.authenticator).status_code == 200

    raw = holder.authenticator.credentials[0].credential_id
    assert not [r for r in caplog.records if raw.hex() in r.getMessage()]


def test_a_failure_of_a_known_user_is_on_their_activity(api: Api, holder: Holder) -> None:
    refused(sign_in(api, holder.authenticator, bad_signature=True))

    assert events(api, holder.token, "passkey_login") == ["failure"]


def test_the_one_answer_does_not_tell_failures_apart(api: Api, holder: Holder) -> None:
    stranger = Authenticator()
    stranger.new_credential("localhost", holder.user_id.encode())
    bodies = [
        json.loads(sign_in(api, holder.authenticator, bad_signature=True).body),
        json.loads(sign_in(api, stranger).body),
        json.loads(sign_in(api, holder.authenticator, origin="http://evil.example").body),
    ]

    assert bodies[0] == bodies[1] == bodies[2]


def test_an_unknown_credential_of_a_real_user_is_refused(api: Api, holder: Holder) -> None:
    stranger = Authenticator()
    stranger.new_credential("localhost", holder.user_id.encode())

    refused(sign_in(api, stranger))


def test_a_replayed_assertion_is_refused(api: Api, holder: Holder) -> None:
    credential = holder.authenticator.get(request_options(api))
    assert passkey_login(api, credential).status_code == 200

    refused(passkey_login(api, credential))


def test_an_expired_challenge_is_refused(api: Api, holder: Holder, settings: Settings) -> None:
    options = request_options(api)
    expire(settings, options)

    refused(passkey_login(api, holder.authenticator.get(options)))


def test_an_enrolment_challenge_cannot_sign_in(api: Api, holder: Holder) -> None:
    enrolment = creation_options(api, holder.token)
    options = {**request_options(api), "challenge": enrolment["challenge"]}

    refused(passkey_login(api, holder.authenticator.get(options)))


def test_a_disabled_user_cannot_sign_in(api: Api, holder: Holder, app_services: Services) -> None:
    assert app_services.accounts.set_disabled(holder.user_id, True)
    try:
        refused(sign_in(api, holder.authenticator))
    finally:
        app_services.accounts.set_disabled(holder.user_id, False)

    assert sign_in(api, holder.authenticator).status_code == 200


# ------------------------------------------------------------------ cloned authenticators


@pytest.mark.parametrize("presented", [0, 1, 5])
def test_a_count_that_does_not_grow_is_a_cloned_authenticator(
    api: Api, holder: Holder, presented: int
) -> None:
    assert sign_in(api, holder.authenticator, sign_count=5).status_code == 200

    refused(sign_in(api, holder.authenticator, sign_count=presented))

    assert events(api, holder.token, "passkey_login")[:2] == ["cloned", "success"]
    assert sign_in(api, holder.authenticator, sign_count=6).status_code == 200


def test_a_clone_is_logged_as_a_metric(
    api: Api, holder: Holder, caplog: pytest.LogCaptureFixture
) -> None:
    assert sign_in(api, holder.authenticator, sign_count=9).status_code == 200
    logger = logging.getLogger("gatehouse")
    logger.addHandler(caplog.handler)
    try:
        refused(sign_in(api, holder.authenticator, sign_count=3))
    finally:
        logger.removeHandler(caplog.handler)

    cloned = [r for r in caplog.records if r.getMessage() == "PasskeyCloned"]
    assert len(cloned) == 1
    fields = getattr(cloned[0], "fields")  # noqa: B009 - set by the extra= of the log call
    assert fields["PasskeyCloned"] == 1
    assert "PasskeyCloned" in json.dumps(fields["_aws"])
    assert (fields["stored_count"], fields["presented_count"]) == (9, 3)
    assert fields["user_id"] == holder.user_id


# ------------------------------------------------------------------ throttle counters


def test_a_passkey_sign_in_clears_the_accounts_lockout(
    api: Api, holder: Holder, settings: Settings
) -> None:
    with installed(settings, throttle_account=(3, 10)):
        for _ in range(3):
            api.post("/login", {"username": holder.username, "password": "wrong"})
        locked = api.post("/login", {"username": holder.username, "password": PASSWORD})
        assert_problem(locked, 429, "too_many_attempts")

        assert sign_in(api, holder.authenticator).status_code == 200

        again = api.post("/login", {"username": holder.username, "password": PASSWORD})
        assert again.status_code == 200, again.body

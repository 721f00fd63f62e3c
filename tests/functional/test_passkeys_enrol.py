"""Passkey enrolment through the API on DynamoDB Local: options, step-up, verification
of the attestation (every way it can be wrong), limits and duplicates."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pyotp
import pytest

from chalicelib.platform.config import Settings
from chalicelib.wiring import Services
from tests.assertions import assert_problem
from tests.conftest import Api
from tests.functional.lifecycle import PASSWORD, enable_totp, installed, table_dump, wrong_code
from tests.functional.passkeys import (
    Holder,
    creation_options,
    enrol,
    events,
    expire,
    passkeys_of,
    sign_in,
)
from tests.webauthn_authenticator import (
    AT,
    BS,
    EDDSA,
    ES256,
    ES384,
    RS256,
    UP,
    UV,
    Authenticator,
    b64,
    cbor,
    cose_key,
    new_key,
    unb64,
)

#: P-256's base point: a valid public key to send in malformed COSE keys.
P256_X = bytes.fromhex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")
P256_Y = bytes.fromhex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
PASSKEY_FIELDS = {"id", "name", "created_at", "last_used_at", "transports", "backed_up"}


@pytest.fixture
def signed_in(new_user: NewUser, login: Login) -> tuple[dict[str, Any], str]:
    user = new_user(display_name="Ada L.")
    return user, login(user["username"], PASSWORD)["access_token"]


def refused_enrolment(api: Api, token: str, credential: dict[str, Any]) -> None:
    response = api.post("/me/passkeys", {"credential": credential}, token=token)
    document = assert_problem(response, 400, "validation_error")
    assert document["errors"] == [
        {
            "field": "credential",
            "code": "verification_failed",
            "message": "The passkey could not be verified.",
        }
    ]


# ------------------------------------------------------------------ options and step-up


def test_creation_options_ask_for_a_discoverable_verified_credential(
    api: Api, signed_in: tuple[dict[str, Any], str]
) -> None:
    user, token = signed_in

    options = creation_options(api, token)

    assert options["rp"] == {"id": "localhost", "name": "Gatehouse"}
    assert options["user"] == {
        "id": b64(user["user"]["id"].encode()),
        "name": user["username"],
        "displayName": "Ada L.",
    }
    assert len(unb64(options["challenge"])) == 32
    assert re.fullmatch(r"[A-Za-z0-9_-]+", options["challenge"])
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert {p["type"] for p in options["pubKeyCredParams"]} == {"public-key"}
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["timeout"] == 300_000


def test_options_exclude_the_passkeys_the_user_has(api: Api, holder: Holder) -> None:
    options = creation_options(api, holder.token)

    assert options["excludeCredentials"] == [
        {"type": "public-key", "id": holder.passkey["id"], "transports": ["hybrid", "internal"]}
    ]


def test_a_wrong_password_is_refused_and_counted(
    api: Api, signed_in: tuple[dict[str, Any], str]
) -> None:
    _, token = signed_in

    response = api.post("/me/passkeys/options", {"password": "not it"}, token=token)

    assert_problem(response, 401, "invalid_credentials")
    assert events(api, token, "password_check") == ["failure"]


def test_with_mfa_on_the_step_up_needs_a_code_and_spends_it(
    api: Api, signed_in: tuple[dict[str, Any], str]
) -> None:
    _, token = signed_in
    secret, recovery = enable_totp(api, token)
    code = pyotp.TOTP(secret).at(time.time() + 30)

    def ask(**extra: Any) -> Any:
        return api.post("/me/passkeys/options", {"password": PASSWORD, **extra}, token=token)

    assert_problem(ask(), 401, "mfa_required")
    assert_problem(ask(totp_code=wrong_code(secret)), 401, "invalid_credentials")
    assert_problem(ask(totp_code=code, password="not it"), 401, "invalid_credentials")
    assert ask(totp_code=code).status_code == 200
    assert_problem(ask(totp_code=code), 401, "invalid_credentials")  # spent
    assert ask(totp_code=recovery[0]).status_code == 200
    assert_problem(ask(totp_code=recovery[0]), 401, "invalid_credentials")


def test_without_a_token_enrolment_is_401(api: Api) -> None:
    assert_problem(api.post("/me/passkeys/options", {"password": "x"}), 401, "invalid_token")
    assert_problem(api.get("/me/passkeys"), 401, "invalid_token")


# ------------------------------------------------------------------ enrolment


def test_enrolment_stores_the_passkey_and_records_it(
    api: Api, signed_in: tuple[dict[str, Any], str]
) -> None:
    _, token = signed_in
    authenticator = Authenticator()

    passkey = enrol(api, token, authenticator)

    assert set(passkey) == PASSKEY_FIELDS
    assert passkey["id"] == authenticator.credentials[0].id
    assert passkey["name"] == time.strftime("Passkey %Y-%m-%d", time.gmtime())
    assert passkey["last_used_at"] is None
    assert passkey["transports"] == ["hybrid", "internal"]
    assert passkey["backed_up"] is False
    assert abs(passkey["created_at"] - time.time()) < 60
    assert passkeys_of(api, token) == [passkey]
    assert events(api, token, "passkey_added") == ["success"]


def test_a_name_is_trimmed_and_the_list_is_newest_first(
    api: Api, signed_in: tuple[dict[str, Any], str]
) -> None:
    _, token = signed_in
    first = enrol(api, token, Authenticator(), name="  Laptop  ")
    time.sleep(1.1)  # created_at is in seconds
    second = enrol(api, token, Authenticator(), name="Phone")

    assert first["name"] == "Laptop"
    assert [p["id"] for p in passkeys_of(api, token)] == [second["id"], first["id"]]


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "bad\u0000name", "tab\tname"])
def test_a_bad_name_is_400_on_the_name_field(
    api: Api, signed_in: tuple[dict[str, Any], str], name: str
) -> None:
    _, token = signed_in
    credential = Authenticator().create(creation_options(api, token))

    response = api.post("/me/passkeys", {"credential": credential, "name": name}, token=token)

    document = assert_problem(response, 400, "validation_error")
    assert document["errors"][0]["field"] == "name"
    assert passkeys_of(api, token) == []


@pytest.mark.parametrize("alg", [EDDSA, RS256])
def test_eddsa_and_rs256_passkeys_enrol_and_sign_in(
    api: Api, signed_in: tuple[dict[str, Any], str], alg: int
) -> None:
    _, token = signed_in
    authenticator = Authenticator()
    credential = authenticator.create(creation_options(api, token), alg=alg)
    assert api.post("/me/passkeys", {"credential": credential}, token=token).status_code == 201

    assert sign_in(api, authenticator).status_code == 200


def test_the_challenge_is_stored_only_as_its_hash(
    api: Api, signed_in: tuple[dict[str, Any], str], settings: Settings
) -> None:
    _, token = signed_in
    challenge = creation_options(api, token)["challenge"]

    dump = table_dump(settings)
    assert challenge not in dump
    assert unb64(challenge).hex() not in dump


# ------------------------------------------------------------------ every refusal


def _wrong(options: dict[str, Any], authenticator: Authenticator, case: str) -> dict[str, Any]:
    """A registration for ``options`` with one thing wrong."""
    changes: dict[str, dict[str, Any]] = {
        "origin": {"origin": "http://evil.example:8000"},
        "ip_origin": {"origin": "http://127.0.0.1:8000"},
        "rp_id": {"rp_id": "evil.example"},
        "type": {"kind": "webauthn.get"},
        "no_uv": {"flags": UP | AT},
        "no_up": {"flags": UV | AT},
        "no_credential_data": {"flags": UP | UV},
        "algorithm": {"alg": ES384},
        "challenge": {"challenge": b64(b"\x01" * 32)},
        "cross_origin": {"client_extra": {"crossOrigin": True}},
        "short_id": {"credential_id": b"\x07" * 15},
        "backed_up_not_eligible": {"flags": UP | UV | AT | BS},
        "top_origin": {"client_extra": {"topOrigin": "http://evil.example"}},
        "off_curve": {"cose": {1: 2, 3: ES256, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}},
        "other_curve": {"cose": {1: 2, 3: ES256, -1: 2, -2: b"\x01" * 48, -3: b"\x02" * 48}},
        "no_y": {"cose": {1: 2, 3: ES256, -1: 1, -2: b"\x01" * 32}},
        "text_x": {"cose": {1: 2, 3: ES256, -1: 1, -2: "x", -3: "y"}},
        "short_rsa": {"cose": {1: 3, 3: RS256, -1: b"\xc1" * 128, -2: b"\x01\x00\x01"}},
        "huge_exponent": {"cose": {1: 3, 3: RS256, -1: b"\xc1" * 256, -2: b"\x03" * 9}},
        "short_ed25519": {"cose": {1: 1, 3: EDDSA, -1: 6, -2: b"\x01" * 31}},
        "rs1": {"cose": {1: 3, 3: -65535, -1: b"\xc1" * 256, -2: b"\x01\x00\x01"}},
        "alg_only": {"cose": {3: ES256}},
        "list_x": {"cose": {1: 2, 3: ES256, -1: 1, -2: list(P256_X), -3: P256_Y}},
        "true_crv": {"cose": {1: 2, 3: ES256, -1: True, -2: P256_X, -3: P256_Y}},
        "true_kty": {"cose": {1: True, 3: EDDSA, -1: 6, -2: P256_X}},
    }
    return authenticator.create(options, **changes[case])


@pytest.mark.parametrize(
    "case",
    [
        "origin",
        "ip_origin",
        "rp_id",
        "type",
        "no_uv",
        "no_up",
        "no_credential_data",
        "algorithm",
        "challenge",
        "cross_origin",
        "short_id",
        "backed_up_not_eligible",
        "top_origin",
        "off_curve",
        "other_curve",
        "no_y",
        "text_x",
        "short_rsa",
        "huge_exponent",
        "short_ed25519",
        "rs1",
        "alg_only",
        "list_x",
        "true_crv",
        "true_kty",
    ],
)
def test_a_registration_with_anything_wrong_is_refused_and_stores_nothing(
    api: Api, signed_in: tuple[dict[str, Any], str], case: str
) -> None:
    _, token = signed_in
    options = creation_options(api, token)

    refused_enrolment(api, token, _wrong(options, Authenticator(), case))

    assert passkeys_of(api, token) == []
    assert events(api, token, "passkey_added") == []


@pytest.mark.parametrize("alg", [ES256, EDDSA, RS256])
def test_only_the_members_of_the_key_type_are_stored(
    api: Api, signed_in: tuple[dict[str, Any], str], app_services: Services, alg: int
) -> None:
    """Extra COSE members (another label, a text key, a nested list, a boolean) are
    dropped: the stored key is the authenticator's own, member for member."""
    user, token = signed_in
    authenticator, key = Authenticator(), new_key(alg)
    extra: dict[Any, Any] = {-4: [[1, 2], []], 7: True, "note": "kept?"}
    options = creation_options(api, token)
    credential = authenticator.create(options, alg=alg, cose={**cose_key(key, alg), **extra})
    authenticator.credentials[-1].key = key
    assert api.post("/me/passkeys", {"credential": credential}, token=token).status_code == 201

    stored = app_services.store.get_passkey(user["user"]["id"], credential["id"])
    assert stored is not None
    assert unb64(stored.public_key) == cbor(cose_key(key, alg))
    assert sign_in(api, authenticator).status_code == 200


def test_a_challenge_is_single_use(api: Api, signed_in: tuple[dict[str, Any], str]) -> None:
    _, token = signed_in
    options = creation_options(api, token)
    first = Authenticator().create(options)
    assert api.post("/me/passkeys", {"credential": first}, token=token).status_code == 201

    refused_enrolment(api, token, Authenticator().create(options))
    assert len(passkeys_of(api, token)) == 1


def test_an_expired_challenge_is_refused(
    api: Api, signed_in: tuple[dict[str, Any], str], settings: Settings
) -> None:
    _, token = signed_in
    options = creation_options(api, token)
    expire(settings, options)

    refused_enrolment(api, token, Authenticator().create(options))


def test_another_users_challenge_is_refused_and_stays_theirs(
    api: Api, signed_in: tuple[dict[str, Any], str], new_user: NewUser, login: Login
) -> None:
    _, token = signed_in
    other = new_user()
    other_token = login(other["username"], PASSWORD)["access_token"]
    theirs = creation_options(api, other_token)

    refused_enrolment(api, token, Authenticator().create(theirs))

    credential = Authenticator().create(theirs)
    assert (
        api.post("/me/passkeys", {"credential": credential}, token=other_token).status_code == 201
    )


def test_a_sign_in_challenge_cannot_enrol(api: Api, signed_in: tuple[dict[str, Any], str]) -> None:
    _, token = signed_in
    sign_in_options = api.post("/passkeys/options", {}).json_body["options"]
    options = {**creation_options(api, token), "challenge": sign_in_options["challenge"]}

    refused_enrolment(api, token, Authenticator().create(options))


# ------------------------------------------------------------------ limits and duplicates


def test_a_credential_the_user_already_has_is_409(api: Api, holder: Holder) -> None:
    again = holder.authenticator.create(
        creation_options(api, holder.token), credential_id=unb64(holder.passkey["id"])
    )

    response = api.post("/me/passkeys", {"credential": again}, token=holder.token)

    assert_problem(response, 409, "passkey_exists")
    assert len(passkeys_of(api, holder.token)) == 1


def test_past_the_limit_options_and_enrolment_are_409(
    api: Api, signed_in: tuple[dict[str, Any], str], settings: Settings
) -> None:
    _, token = signed_in
    with installed(settings, passkey_limit=2):
        pending = [creation_options(api, token) for _ in range(3)]
        for options in pending[:2]:
            credential = Authenticator().create(options)
            assert (
                api.post("/me/passkeys", {"credential": credential}, token=token).status_code == 201
            )

        late = api.post(
            "/me/passkeys", {"credential": Authenticator().create(pending[2])}, token=token
        )
        asked = api.post("/me/passkeys/options", {"password": PASSWORD}, token=token)

        assert_problem(late, 409, "passkey_limit_reached")
        assert_problem(asked, 409, "passkey_limit_reached")
        assert len(passkeys_of(api, token)) == 2


def test_the_default_limit_is_ten(api: Api, signed_in: tuple[dict[str, Any], str]) -> None:
    _, token = signed_in
    for _ in range(10):
        enrol(api, token, Authenticator())

    response = api.post("/me/passkeys/options", {"password": PASSWORD}, token=token)

    assert_problem(response, 409, "passkey_limit_reached")


def test_at_the_limit_the_step_up_spends_no_recovery_code(
    api: Api, signed_in: tuple[dict[str, Any], str], settings: Settings
) -> None:
    """The limit is checked before the step-up: a user at it keeps the code they sent."""
    user, token = signed_in
    _, recovery = enable_totp(api, token)
    with installed(settings, passkey_limit=1):
        enrol(api, token, Authenticator(), totp_code=recovery[0])

        asked = api.post(
            "/me/passkeys/options", {"password": PASSWORD, "totp_code": recovery[1]}, token=token
        )
        assert_problem(asked, 409, "passkey_limit_reached")

    again = {"username": user["username"], "password": PASSWORD, "totp_code": recovery[1]}
    assert api.post("/login", again).status_code == 200

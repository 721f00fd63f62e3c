"""Username-first passkey sign-in, its enumeration resistance, and a passkey in place of
a TOTP code at ``POST /login``, through the API on DynamoDB Local."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.services import Services
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
from tests.webauthn_authenticator import Authenticator, unb64

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]


def allowed(options: dict[str, Any]) -> list[dict[str, Any]]:
    return list(options["allowCredentials"])


# ------------------------------------------------------------------ username first


def test_options_for_a_username_list_its_passkeys(api: Api, holder: Holder) -> None:
    second = enrol(api, holder.token, Authenticator())

    listed = allowed(request_options(api, holder.username))

    assert sorted(c["id"] for c in listed) == sorted([holder.passkey["id"], second["id"]])
    assert all(c["type"] == "public-key" for c in listed)
    assert all(c["transports"] == ["hybrid", "internal"] for c in listed)


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


def test_an_unknown_name_gets_a_stable_decoy_of_the_same_shape(
    api: Api, holder: Holder, new_user: NewUser
) -> None:
    nobody = unique("nobody")
    without_passkeys = new_user()["username"]

    real = request_options(api, holder.username)
    decoys = [request_options(api, nobody) for _ in range(2)]
    other = request_options(api, without_passkeys)

    shapes = {
        json.dumps(sorted((k, type(v).__name__) for k, v in o.items()))
        for o in (real, *decoys, other)
    }
    assert len(shapes) == 1
    for options in (*decoys, other):
        assert 1 <= len(allowed(options)) <= 3
        for decoy in allowed(options):
            assert set(decoy) == {"type", "id", "transports"} == set(allowed(real)[0])
            assert 16 <= len(unb64(decoy["id"])) <= 64
            assert decoy["transports"] and decoy["type"] == "public-key"
    assert allowed(decoys[0]) == allowed(decoys[1])
    assert allowed(request_options(api, nobody.upper())) == allowed(decoys[0])
    assert allowed(decoys[0]) != allowed(other)
    assert decoys[0]["challenge"] != decoys[1]["challenge"]


def test_unknown_names_get_one_to_three_decoys_so_the_count_says_little(api: Api) -> None:
    counts = {len(allowed(request_options(api, unique("nobody")))) for _ in range(40)}

    assert counts == {1, 2, 3}


def test_a_decoy_credential_signs_no_one_in(api: Api, holder: Holder) -> None:
    nobody = unique("nobody")
    options = request_options(api, nobody)
    fake = Authenticator()
    fake.new_credential(
        "localhost", holder.user_id.encode(), credential_id=unb64(allowed(options)[0]["id"])
    )

    assert_problem(passkey_login(api, fake.get(options)), 401, "invalid_credentials")


def test_a_disabled_user_gets_a_decoy(api: Api, holder: Holder, app_services: Services) -> None:
    assert app_services.accounts.set_disabled(holder.user_id, True)
    try:
        listed = allowed(request_options(api, holder.username))
    finally:
        app_services.accounts.set_disabled(holder.user_id, False)

    assert [c["id"] for c in listed] != [holder.passkey["id"]]


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

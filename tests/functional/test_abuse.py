"""Abuse that is not a password guess (issue 13, items 3-5 and 7): mail as a weapon,
links from a forged ``Host``, yes/no oracles, IPv6 rotation and empty fields."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from chalicelib.edge.bodies import BODIES
from chalicelib.edge.localgateway import GatewayClient
from chalicelib.platform.config import Settings
from chalicelib.wiring import Services
from tests.assertions import assert_problem, unique
from tests.conftest import Api
from tests.functional.lifecycle import (
    PASSWORD,
    RESET_MARKER,
    VERIFY_MARKER,
    api_at,
    body_of,
    installed,
    mail_to,
    patch,
    retry_after,
    same_window,
    unique_ip,
    verify_address,
)
from tests.functional.passkeys import Holder, holder_of, passkey_login, request_options
from tests.functional.test_throttle import dynamodb_calls

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
EVIL = {"Host": "evil.example", "X-Forwarded-Proto": "https"}


@pytest.fixture(autouse=True)
def one_window() -> None:
    same_window()


def address(prefix: str = "mail") -> str:
    return f"{unique(prefix)}@example.com"


# ------------------------------------------------------------------ mail as a weapon


def test_verification_mail_cannot_be_sent_without_end(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    """Five messages an hour per account (the registration's is the first), then 429."""
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]

    answers = [api.post("/me/email/verification", token=token) for _ in range(25)]

    assert [a.status_code for a in answers[:4]] == [202] * 4
    for refused in answers[4:]:
        assert_problem(refused, 429, "too_many_attempts")
        assert retry_after(refused) <= 3600
    assert len(mail_to(settings, user["email"])) == 5


def test_email_changes_cannot_mail_without_end(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]
    targets = [address("flood") for _ in range(8)]

    answers = [
        patch(api, "/me", {"email": target, "password": PASSWORD}, token=token)
        for target in targets
    ]

    # The registration's verification message was the account's first of five.
    assert [a.status_code for a in answers[:4]] == [200] * 4
    for refused in answers[4:]:
        assert_problem(refused, 429, "too_many_attempts")
        assert retry_after(refused) > 0
    assert all(mail_to(settings, t) == [] for t in targets[4:])
    assert api.get("/me", token=token).json_body["email"] == targets[3]


def test_one_address_gets_at_most_its_share_whatever_the_accounts(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    """Six accounts in turn move their email to one inbox, then are deleted (which frees
    the address and mails nothing): the inbox's own limit holds (five messages an hour),
    whichever account sends."""
    inbox = address("inbox")
    statuses = []
    for _ in range(6):
        user = new_user(email=address())
        token = login(user["username"], PASSWORD)["access_token"]
        moved = patch(api, "/me", {"email": inbox, "password": PASSWORD}, token=token)
        statuses.append(moved.status_code)
        gone = api.request("DELETE", "/me", {"password": PASSWORD}, token=token)
        assert gone.status_code == 204

    assert statuses == [200] * 5 + [429]
    assert len([m for m in mail_to(settings, inbox) if VERIFY_MARKER in body_of(m)]) == 5


# ------------------------------------------------------------------ links from configuration


def test_a_forged_host_does_not_reach_the_links_in_mail(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    email = address()
    registered = api.post(
        "/register", {"username": unique(), "password": PASSWORD, "email": email}, headers=EVIL
    )
    assert registered.status_code == 201
    verify_address(api, settings, email)
    assert api.post("/password/forgot", {"email": email}, headers=EVIL).status_code == 202
    user = new_user(email=address())
    token = login(user["username"], PASSWORD)["access_token"]
    api.post("/me/email/verification", token=token, headers=EVIL)

    texts = [body_of(m) for m in mail_to(settings, email) + mail_to(settings, user["email"])]

    assert any(RESET_MARKER in t for t in texts)
    for text in texts:
        assert "evil.example" not in text
        assert f"Open {settings.issuer}/#" in text
    assert settings.issuer.startswith("http")


def test_discovery_and_tokens_name_the_configured_issuer_whatever_the_host(
    api: Api, new_user: NewUser, login: Login, settings: Settings
) -> None:
    document = api.get("/.well-known/openid-configuration", headers=EVIL).json_body
    user = new_user()
    claims = jwt.decode(
        login(user["username"], PASSWORD)["access_token"], options={"verify_signature": False}
    )

    assert document["issuer"] == claims["iss"] == settings.issuer
    assert document["jwks_uri"] == f"{settings.issuer}/.well-known/jwks.json"
    assert "evil.example" not in str(document)


# ------------------------------------------------------------------ no free oracles


def test_registrations_from_one_ip_are_limited_taken_names_included(
    gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    """Each answer says whether a name is taken (201 or 409): every one counts."""
    taken = new_user()["username"]
    prober = api_at(gateway_client, unique_ip())
    with installed(settings, throttle_register=(3, 30)):
        answers = [
            prober.post("/register", {"username": name, "password": PASSWORD})
            for name in (taken, unique(), taken, unique())
        ]
        elsewhere = api_at(gateway_client, unique_ip()).post(
            "/register", {"username": unique(), "password": PASSWORD}
        )

    assert [a.status_code for a in answers[:3]] == [409, 201, 409]
    assert_problem(answers[3], 429, "too_many_attempts")
    assert retry_after(answers[3]) > 0
    assert elsewhere.status_code == 201


def test_email_changes_from_one_ip_are_limited_like_registrations(
    gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    """``email_taken`` answers whether an address has an account: probing it costs."""
    holders = [new_user(email=address())["email"] for _ in range(3)]
    prober_user = new_user(email=address())
    prober = api_at(gateway_client, unique_ip())
    token = prober.post(
        "/login", {"username": prober_user["username"], "password": PASSWORD}
    ).json_body["access_token"]
    with installed(settings, throttle_register=(3, 30)):
        answers = [
            patch(prober, "/me", {"email": held, "password": PASSWORD}, token=token)
            for held in [*holders, address()]
        ]

    assert [a.status_code for a in answers[:3]] == [409] * 3
    assert_problem(answers[3], 429, "too_many_attempts")


def test_ipv6_clients_are_limited_by_their_slash_64(
    gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    """Any address of a /64 is one client: rotating through them buys nothing."""
    user = new_user()
    net, next_net = os.urandom(2).hex(), os.urandom(2).hex()
    prefix = f"2001:db8:{net}:{net}"
    wrong = {"username": user["username"], "password": "not the password"}
    with installed(settings, throttle_ip=(3, 30)):
        guesses = [
            api_at(gateway_client, f"{prefix}::{n:x}").post(
                "/login", {**wrong, "username": unique()}
            )
            for n in range(1, 4)
        ]
        rotated = api_at(gateway_client, f"{prefix}:ffff:1:2:3").post("/login", wrong)
        mapped_v4 = unique_ip()
        for _ in range(3):
            api_at(gateway_client, mapped_v4).post("/login", {**wrong, "username": unique()})
        as_mapped = api_at(gateway_client, f"::ffff:{mapped_v4}").post("/login", wrong)
        other = api_at(gateway_client, f"2001:db8:{net}:{next_net}::1").post("/login", wrong)

    assert [g.status_code for g in guesses] == [401] * 3
    assert_problem(rotated, 429, "too_many_attempts")
    assert_problem(as_mapped, 429, "too_many_attempts")
    assert_problem(other, 401, "invalid_credentials")


def test_username_first_passkey_sign_in_costs_the_same_for_unknown_and_known_names(
    api: Api, holder: Holder, new_user: NewUser, login: Login, app_services: Services
) -> None:
    """An assertion with no user handle, for options asked for a name: the same
    DynamoDB work whether the name has an account (and passkeys) or not."""
    stranger_user = new_user()
    stranger = holder_of(
        api, stranger_user, login(stranger_user["username"], PASSWORD)["access_token"]
    )
    calls = {}
    for name in (holder.username, unique("nobody")):
        options = request_options(api, name)
        credential = stranger.authenticator.get(options, user_handle=None)
        with dynamodb_calls(app_services) as made:
            assert_problem(passkey_login(api, credential), 401, "invalid_credentials")
        calls[name] = made

    known, unknown = calls.values()
    assert known == unknown, calls
    assert known.count("GetItem") == 3  # guard, user, passkey


# ------------------------------------------------------------------ empty is missing


def _required_strings() -> list[tuple[str, str, str]]:
    return [
        (method, path, field.name)
        for (method, path), body in BODIES.items()
        for field in body.fields
        if field.required and field.kind is str
    ]


@pytest.mark.parametrize("case", _required_strings(), ids="-".join)
def test_a_required_field_sent_empty_is_a_400_naming_it(
    api: Api, new_user: NewUser, login: Login, case: tuple[str, str, str]
) -> None:
    method, path, name = case
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    body = {
        f.name: ("" if f.name == name else "filler text")
        for f in BODIES[(method, path)].fields
        if f.required
    }
    concrete = path.replace("{todo_id}", "0" * 32).replace("{passkey_id}", "AAAA")

    response = api.request(method, concrete, body, token=token)

    document = assert_problem(response, 400, "validation_error")
    assert (name, "required") in [(e["field"], e["code"]) for e in document["errors"]]
    assert api.get("/me", token=token).status_code == 200


def test_an_empty_username_at_login_is_400_not_401(api: Api) -> None:
    response = api.post("/login", {"username": "", "password": PASSWORD})

    assert_problem(response, 400, "validation_error")

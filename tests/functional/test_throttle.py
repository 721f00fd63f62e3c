"""Brute-force limits on DynamoDB Local: per account name, per client IP, on the email
flows and on second-factor codes. Every count lives in the table, so it holds across
Lambda containers; these tests prove that with separate ``Services`` objects."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from botocore.model import OperationModel
from chalice.test import HTTPResponse

from chalicelib import wiring
from chalicelib.accounts import identity
from chalicelib.accounts.throttle import Counter, pair
from chalicelib.edge.localgateway import GatewayClient
from chalicelib.platform.config import Settings
from chalicelib.wiring import Services
from tests.assertions import assert_problem, unique
from tests.conftest import PROJECT_DIR, Api
from tests.functional.lifecycle import (
    PASSWORD,
    RESET_MARKER,
    VERIFY_MARKER,
    api_at,
    client,
    comparable_headers,
    delete,
    enable_totp,
    installed,
    last_token,
    retry_after,
    same_window,
    unique_ip,
    verify_address,
    wrong_code,
)

NewUser = Callable[..., dict[str, Any]]
Login = Callable[[str, str], dict[str, Any]]
ACCOUNT_LIMIT = 10
WRONG = "not the password at all"


@pytest.fixture(autouse=True)
def one_window() -> None:
    same_window()


def attempt(api: Api, username: str, password: str = WRONG, **extra: str) -> HTTPResponse:
    return api.post("/login", {"username": username, "password": password, **extra})


def fail(api: Api, username: str, times: int) -> None:
    for _ in range(times):
        assert_problem(attempt(api, username), 401, "invalid_credentials")


def assert_throttled(response: HTTPResponse) -> int:
    assert_problem(response, 429, "too_many_attempts")
    return retry_after(response)


@contextlib.contextmanager
def dynamodb_calls(svc: Services) -> Iterator[list[str]]:
    """The DynamoDB operations ``svc`` makes inside the block, in order."""
    calls: list[str] = []

    def record(model: OperationModel, **_: Any) -> None:
        calls.append(model.name)

    events = svc.store._client.meta.events
    events.register("before-call.dynamodb", record, unique_id="count-dynamodb-calls")
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb", unique_id="count-dynamodb-calls")


# ------------------------------------------------------------------ per account name


def test_the_eleventh_failure_in_an_hour_is_429_even_with_the_right_password(
    api: Api, new_user: NewUser
) -> None:
    user = new_user()
    fail(api, user["username"], ACCOUNT_LIMIT)

    response = attempt(api, user["username"], PASSWORD)

    assert assert_throttled(response) <= 3600  # Retry-After: until the hour's window ends
    assert_throttled(attempt(api, user["username"].upper(), PASSWORD))


def test_a_throttled_attempt_is_refused_with_one_read_and_no_password_check(
    api: Api, new_user: NewUser, app_services: Services
) -> None:
    user = new_user()
    with dynamodb_calls(app_services) as counted:
        fail(api, user["username"], 1)
    assert len(counted) > 1  # an ordinary failure looks the user up and counts itself
    fail(api, user["username"], ACCOUNT_LIMIT - 1)

    with dynamodb_calls(app_services) as throttled:
        response = attempt(api, user["username"], PASSWORD)

    assert_throttled(response)
    assert throttled == ["TransactWriteItems"]  # the refused claim, and nothing more


def test_an_unknown_account_is_throttled_exactly_like_a_known_one(
    api: Api, new_user: NewUser
) -> None:
    known = new_user()["username"]
    ghost = unique("ghost")
    answers: dict[str, list[HTTPResponse]] = {known: [], ghost: []}
    for _ in range(ACCOUNT_LIMIT + 2):
        for name in (known, ghost):
            answers[name].append(attempt(api, name))

    for mine, theirs in zip(answers[known], answers[ghost], strict=True):
        assert mine.status_code == theirs.status_code
        assert mine.body == theirs.body
        assert comparable_headers(mine, "Retry-After") == comparable_headers(theirs, "Retry-After")
    assert [r.status_code for r in answers[known]] == [401] * ACCOUNT_LIMIT + [429, 429]
    for name in (known, ghost):
        assert_throttled(answers[name][-1])


def test_an_email_login_name_is_throttled_too(api: Api, new_user: NewUser) -> None:
    address = f"{unique('thr')}@example.com"
    new_user(email=address)
    fail(api, address, ACCOUNT_LIMIT)

    assert_throttled(attempt(api, address.upper(), PASSWORD))


def test_the_count_lives_in_dynamodb_not_in_one_process(
    api: Api, new_user: NewUser, settings: Settings, gateway_client: GatewayClient
) -> None:
    """Three separately built ``Services`` (each its own DynamoDB client, as three
    Lambda containers would be) and two test clients share one count."""
    user = new_user()
    other_client = Api(GatewayClient(gateway_client._app, "local", str(PROJECT_DIR)).http)
    with installed(settings) as first:
        fail(api, user["username"], 5)
    with installed(settings) as second:
        assert second is not first and second.store is not first.store
        fail(other_client, user["username"], 5)
    with installed(settings):
        assert_throttled(attempt(api, user["username"], PASSWORD))
        assert_throttled(attempt(other_client, user["username"], PASSWORD))

    hour = pair("account", *settings.throttle_account)[0]
    counter = Counter("account", hour, identity.username_key(user["username"]), int(time.time()))
    item = store_item(settings, counter)
    assert item is not None and item["failures"] == {"N": str(ACCOUNT_LIMIT)}
    assert user["username"] not in json.dumps(item)  # the key is hashed


def store_item(settings: Settings, counter: Counter) -> dict[str, Any] | None:
    answer = client(settings).get_item(
        TableName=settings.table_name, Key=counter.item_key, ConsistentRead=True
    )
    item = answer.get("Item")
    return dict(item) if item is not None else None


def test_a_successful_login_resets_the_account_count(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    fail(api, user["username"], ACCOUNT_LIMIT - 1)
    login(user["username"], PASSWORD)

    fail(api, user["username"], ACCOUNT_LIMIT - 1)

    assert attempt(api, user["username"], PASSWORD).status_code == 200


def test_one_account_being_locked_does_not_lock_another(api: Api, new_user: NewUser) -> None:
    locked, other = new_user(), new_user()
    fail(api, locked["username"], ACCOUNT_LIMIT)
    assert_throttled(attempt(api, locked["username"], PASSWORD))

    assert attempt(api, other["username"], PASSWORD).status_code == 200


def test_the_locking_failure_is_on_the_activity(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    fail(api, user["username"], ACCOUNT_LIMIT)
    attempt(api, user["username"], PASSWORD)

    events = api.get("/me/activity", token=token).json_body["events"]

    outcomes = [e["outcome"] for e in events if e["type"] == "login"]
    assert outcomes[0] == "throttled"
    assert outcomes.count("failure") == ACCOUNT_LIMIT - 1
    assert outcomes[-1] == "success"


# ------------------------------------------------------------------ per client IP


def test_failures_spread_over_many_accounts_from_one_ip_end_in_429(
    gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    real = new_user()
    attacker = api_at(gateway_client, unique_ip())
    with installed(settings, throttle_ip=(5, 50)):
        for _ in range(5):
            assert_problem(attempt(attacker, unique("spray")), 401, "invalid_credentials")

        blocked = attempt(attacker, real["username"], PASSWORD)
        elsewhere = attempt(api_at(gateway_client, unique_ip()), real["username"], PASSWORD)

    assert_throttled(blocked)
    assert elsewhere.status_code == 200, elsewhere.body


def test_a_successful_login_does_not_reset_the_ip_count(
    gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    real = new_user()
    caller = api_at(gateway_client, unique_ip())
    with installed(settings, throttle_ip=(5, 50)):
        for _ in range(4):
            attempt(caller, unique("spray"))
        assert attempt(caller, real["username"], PASSWORD).status_code == 200
        attempt(caller, unique("spray"))

        assert_throttled(attempt(caller, real["username"], PASSWORD))


# ------------------------------------------------------------------ email flows


def test_the_sixth_reset_request_for_one_email_in_an_hour_is_429(
    api: Api, new_user: NewUser, settings: Settings
) -> None:
    known = new_user(email=f"{unique('fgt')}@example.com")["email"]
    unknown = f"{unique('nobody')}@example.com"
    with installed(settings, forgot_floor_seconds=0.0):
        for _ in range(5):
            assert api.post("/password/forgot", {"email": known}).status_code == 202
            assert api.post("/password/forgot", {"email": unknown}).status_code == 202

        sixth_known = api.post("/password/forgot", {"email": known.upper()})
        sixth_unknown = api.post("/password/forgot", {"email": unknown})
        another = api.post("/password/forgot", {"email": f"{unique('other')}@example.com"})

    assert_throttled(sixth_known)
    assert_throttled(sixth_unknown)
    assert sixth_known.body == sixth_unknown.body
    assert comparable_headers(sixth_known, "Retry-After") == comparable_headers(
        sixth_unknown, "Retry-After"
    )
    assert another.status_code == 202


def test_bad_reset_tokens_from_one_ip_end_in_429_without_spending_a_good_one(
    api: Api, gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    user = new_user(email=f"{unique('rst')}@example.com")
    verify_address(api, settings, user["email"])
    assert api.post("/password/forgot", {"email": user["email"]}).status_code == 202
    good = last_token(settings, user["email"], RESET_MARKER)
    guesser = api_at(gateway_client, unique_ip())
    with installed(settings, throttle_ip=(5, 50)):
        for n in range(5):
            body = {"token": f"guess-{n}-{unique()}", "new_password": "a brand new passphrase"}
            assert_problem(guesser.post("/password/reset", body), 401, "invalid_token")

        blocked = guesser.post(
            "/password/reset", {"token": good, "new_password": "a brand new passphrase"}
        )
        honest = api_at(gateway_client, unique_ip()).post(
            "/password/reset", {"token": good, "new_password": "a brand new passphrase"}
        )

    assert_throttled(blocked)
    assert honest.status_code == 204, honest.body


def test_bad_verification_tokens_from_one_ip_end_in_429(
    api: Api, gateway_client: GatewayClient, new_user: NewUser, settings: Settings
) -> None:
    user = new_user(email=f"{unique('vfy')}@example.com")
    good = last_token(settings, user["email"], VERIFY_MARKER)
    guesser = api_at(gateway_client, unique_ip())
    with installed(settings, throttle_ip=(5, 50)):
        for n in range(5):
            body = {"token": f"guess-{n}-{unique()}"}
            assert_problem(guesser.post("/email/verify", body), 401, "invalid_token")

        blocked = guesser.post("/email/verify", {"token": good})
        honest = api_at(gateway_client, unique_ip()).post("/email/verify", {"token": good})

    assert_throttled(blocked)
    assert honest.status_code == 204, honest.body


# ------------------------------------------------------------------ second factor and re-checks


def test_wrong_totp_codes_count_toward_the_account_limit(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    secret, _ = enable_totp(api, login(user["username"], PASSWORD)["access_token"])
    for _ in range(ACCOUNT_LIMIT):
        response = attempt(api, user["username"], PASSWORD, totp_code=wrong_code(secret))
        assert_problem(response, 401, "invalid_credentials")

    right = pyotp.TOTP(secret).at(time.time() + 30)
    assert_throttled(attempt(api, user["username"], PASSWORD, totp_code=right))


def test_wrong_confirmation_codes_are_throttled(api: Api, new_user: NewUser, login: Login) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    secret = api.post("/me/mfa/totp", {"password": PASSWORD}, token=token).json_body["secret"]
    for _ in range(ACCOUNT_LIMIT):
        response = api.post("/me/mfa/totp/confirm", {"code": wrong_code(secret)}, token=token)
        assert_problem(response, 400, "validation_error")

    right = api.post("/me/mfa/totp/confirm", {"code": pyotp.TOTP(secret).now()}, token=token)

    assert_throttled(right)
    assert api.get("/me", token=token).json_body["mfa_enabled"] is False


def test_wrong_passwords_for_account_deletion_are_throttled(
    api: Api, new_user: NewUser, login: Login
) -> None:
    user = new_user()
    token = login(user["username"], PASSWORD)["access_token"]
    for _ in range(ACCOUNT_LIMIT):
        assert_problem(
            delete(api, "/me", {"password": WRONG}, token=token), 401, "invalid_credentials"
        )

    assert_throttled(delete(api, "/me", {"password": PASSWORD}, token=token))
    assert api.get("/me", token=token).status_code == 200


def test_the_throttle_survives_the_services_being_rebuilt_from_the_environment(
    api: Api, new_user: NewUser, app_services: Services
) -> None:
    """A cold start (``install(None)``: rebuild from the environment) forgets nothing."""
    user = new_user()
    fail(api, user["username"], ACCOUNT_LIMIT)
    wiring.install(None)
    try:
        assert_throttled(attempt(api, user["username"], PASSWORD))
    finally:
        wiring.install(app_services)

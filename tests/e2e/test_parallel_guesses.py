"""Parallel guesses cannot outrun the throttle (issue 13, item 2), on the real runner.

Each attempt is claimed atomically before the password (or code, or token) is checked,
so however many arrive at once, at most the limit are checked: the rest are 429 before
any bcrypt work. Before, every one of 40 parallel wrong logins was checked (40 x 401).
Each test gets a DynamoDB Local of its own, so the one client IP (127.0.0.1) starts at
zero.
"""

from __future__ import annotations

import http.client
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyotp
import pytest

from scripts.dynamodb_local import DynamoDBLocal, free_port
from tests.e2e.runner import Runner, serve
from tests.functional.lifecycle import VERIFY_MARKER, last_token, wrong_code
from tests.racing import all_at_once

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
PARALLEL = 40
#: The limits this runner is given: the account's default, and the IP's made small.
ACCOUNT_LIMIT, IP_LIMIT = 10, 12

Answer = tuple[int, dict[str, Any]]


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Runner]:
    """A runner on a DynamoDB Local of its own: the one client IP (127.0.0.1) starts at
    zero, whatever other tests counted on it."""
    own = DynamoDBLocal(free_port())
    own.start()
    limits = {"THROTTLE_ACCOUNT": f"{ACCOUNT_LIMIT}/50", "THROTTLE_IP": f"{IP_LIMIT}/1000"}
    try:
        with serve(own, tmp_path, **limits) as started:
            yield started
    finally:
        own.stop()


def call(runner: Runner, method: str, path: str, body: Any = None, token: str = "") -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", runner.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body or {}).encode(), headers)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def signed_up(runner: Runner, **extra: str) -> tuple[str, str]:
    """A new account on ``runner``: its username and an access token."""
    username = f"guess{os.urandom(4).hex()}"
    status, _ = call(
        runner, "POST", "/register", {"username": username, "password": PASSWORD, **extra}
    )
    assert status == 201
    status, pair = call(runner, "POST", "/login", {"username": username, "password": PASSWORD})
    assert status == 200, pair
    return username, str(pair["access_token"])


def with_mfa(runner: Runner) -> tuple[str, str]:
    """A new account with TOTP on: its username and TOTP secret."""
    username, token = signed_up(runner)
    status, enrolled = call(runner, "POST", "/me/mfa/totp", {"password": PASSWORD}, token)
    assert status == 200, enrolled
    code = pyotp.TOTP(enrolled["secret"]).now()
    assert call(runner, "POST", "/me/mfa/totp/confirm", {"code": code}, token)[0] == 200
    return username, str(enrolled["secret"])


def held(answers: Counter[tuple[int, str]], refusal: tuple[int, str], limit: int) -> bool:
    """Exactly ``limit`` attempts were checked (and refused as ``refusal``); the rest 429."""
    return answers == {refusal: limit, (429, "too_many_attempts"): PARALLEL - limit}


def at_once(request: Callable[[], Answer]) -> Counter[tuple[int, str]]:
    answers = all_at_once([request] * PARALLEL)
    return Counter((status, str(body.get("code", ""))) for status, body in answers)


def test_forty_parallel_wrong_logins_check_at_most_the_limit(guarded: Runner) -> None:
    username, _ = signed_up(guarded)

    answers = at_once(
        partial(call, guarded, "POST", "/login", {"username": username, "password": WRONG})
    )

    assert held(answers, (401, "invalid_credentials"), ACCOUNT_LIMIT), answers
    status, _ = call(guarded, "POST", "/login", {"username": username, "password": PASSWORD})
    assert status == 429


def test_forty_parallel_wrong_totp_codes_check_at_most_the_limit(guarded: Runner) -> None:
    username, secret = with_mfa(guarded)
    body = {"username": username, "password": PASSWORD, "totp_code": wrong_code(secret)}

    answers = at_once(partial(call, guarded, "POST", "/login", body))

    assert held(answers, (401, "invalid_credentials"), ACCOUNT_LIMIT), answers


def test_forty_parallel_recovery_code_guesses_check_at_most_the_limit(guarded: Runner) -> None:
    username, _ = with_mfa(guarded)
    body = {"username": username, "password": PASSWORD, "totp_code": "aaaaa-bbbbb"}

    answers = at_once(partial(call, guarded, "POST", "/login", body))

    assert held(answers, (401, "invalid_credentials"), ACCOUNT_LIMIT), answers


def test_forty_parallel_wrong_step_ups_check_at_most_the_limit(guarded: Runner) -> None:
    _, token = signed_up(guarded)

    answers = at_once(partial(call, guarded, "DELETE", "/me", {"password": WRONG}, token))

    assert held(answers, (401, "invalid_credentials"), ACCOUNT_LIMIT), answers
    assert call(guarded, "GET", "/me", token=token)[0] == 200


def test_forty_parallel_bad_reset_tokens_check_at_most_the_ip_limit(guarded: Runner) -> None:
    body = {"token": "a-token-nobody-was-sent", "new_password": "a brand new passphrase"}

    answers = at_once(partial(call, guarded, "POST", "/password/reset", body))

    assert held(answers, (401, "invalid_token"), IP_LIMIT), answers


def test_forty_parallel_bad_verification_tokens_check_at_most_the_ip_limit(
    guarded: Runner,
) -> None:
    address = f"guess{os.urandom(4).hex()}@example.com"
    signed_up(guarded, email=address)
    good = last_token(guarded.outbox, address, VERIFY_MARKER)

    answers = at_once(
        partial(call, guarded, "POST", "/email/verify", {"token": "not-sent-to-anyone"})
    )

    assert held(answers, (401, "invalid_token"), IP_LIMIT), answers
    # The IP is held now, the good token with it (unspent, until the window ends).
    assert call(guarded, "POST", "/email/verify", {"token": good})[0] == 429

"""Passkey sign-in: its DynamoDB round trips, and ``POST /passkeys/login`` against its floor.

A discoverable sign-in is two requests: ``POST /passkeys/options`` (no username) stores
a challenge, ``POST /passkeys/login`` spends it with an assertion. Both are counted, and
username-first options too. The assertions come from the tests' software authenticator
(tests/webauthn_authenticator.py, ES256 on P-256), enrolled through the routes a client
would call.

Every sign-in needs a challenge of its own and a sign count larger than the last, so
all of them are prepared before the timed rounds: one options request and one assertion
per sign-in, used in the order they were signed. The floor is a bare ES256 verification
(``cryptography``: SHA-256 of ``clientDataJSON``, ECDSA over the authenticator data and
that hash) plus a replay of exactly the calls one sign-in made, recorded from a second
passkey of the same user so that the subject's counts and the replay's never meet. The
replay must commit as the subject does, not time DynamoDB's cheaper refusals: each one
spends a challenge of its own (stored beforehand by the app's own ``put_challenge``,
as options without counters would), and its count update names the count the recorded
sign-in left (written back unchanged), so its condition holds every time.

Everything comes from a TEST-NET address of its own: a run asks for over a hundred
options, and options are limited per IP (300 an hour by default).
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from chalice.test import HTTPResponse, TestHTTPClient
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench.fixture import PASSWORD, Fixture, client_from, expect, send, sign_up
from bench.report import Report
from bench.roundtrips import Calls, recorded
from bench.rows import calls_report_row, reported_row
from bench.stats import interleave
from chalicelib.accounts.passkeys import CHALLENGE_SECONDS, SIGN_IN
from chalicelib.store import items, table
from chalicelib.store.items import ChallengeRecord
from tests.webauthn_authenticator import RP_ID, Authenticator, Credential, b64, unb64

ACCOUNT = "bench.passkey"
SOURCE_IP = "192.0.2.30"
#: The sign-in transaction's condition on the passkey's count (store/passkeys.py, use_action).
_COUNT_CONDITION = "sign_count = :stored"
#: What one bare verification checks: authenticator data, clientDataJSON, signature.
Signed = tuple[bytes, bytes, bytes]


def _enrol(api: TestHTTPClient, token: str, authenticator: Authenticator) -> Credential:
    """A new passkey of ``authenticator``, added through the routes (password step-up)."""
    asked = send(api, "POST", "/me/passkeys/options", {"password": PASSWORD}, token=token)
    created = authenticator.create(expect(asked, 200).json_body["options"])
    expect(send(api, "POST", "/me/passkeys", {"credential": created}, token=token), 201)
    return authenticator.credentials[-1]


def _options(api: TestHTTPClient, username: str | None = None) -> dict[str, Any]:
    body = {} if username is None else {"username": username}
    return dict(expect(send(api, "POST", "/passkeys/options", body), 200).json_body["options"])


def _log_in(api: TestHTTPClient, assertion: dict[str, Any]) -> HTTPResponse:
    return expect(send(api, "POST", "/passkeys/login", {"credential": assertion}), 200)


def _sign_in(
    fx: Fixture, api: TestHTTPClient, authenticator: Authenticator, username: str | None = None
) -> tuple[Calls, Calls]:
    """The calls of one options request and of the sign-in that spends its challenge."""
    client = fx.services.store._client
    with recorded(client) as options:
        asked = _options(api, username)
    with recorded(client) as login:
        _log_in(api, authenticator.get(asked))
    return options, login


def _committing(calls: Calls, challenge_hash: str) -> Calls:
    """The same calls, spending the challenge ``challenge_hash`` and writing the
    passkey's count back with the value its condition expects, so they commit."""
    rewritten = Calls(operations=list(calls.operations), sends=calls.sends)
    spent = counted = 0
    for operation, recorded_params in calls.params:
        params = copy.deepcopy(recorded_params)
        if operation == "DeleteItem" and params["Key"]["pk"]["S"].startswith("CHALLENGE#"):
            params["Key"] = items.challenge_key(challenge_hash)
            spent += 1
        for action in params.get("TransactItems", []):
            update = action.get("Update", {})
            if update.get("ConditionExpression") == _COUNT_CONDITION:
                values = update["ExpressionAttributeValues"]
                values[":stored"] = values[":new"]
                counted += 1
        rewritten.params.append((operation, params))
    if (spent, counted) != (1, 1):
        raise RuntimeError("no challenge spent or count written in the sign-in: update the bench")
    return rewritten


def _replays(fx: Fixture, calls: Calls, count: int) -> deque[Callable[[], bool]]:
    """``count`` committing replays of ``calls``, each with a stored challenge of its own."""
    client = table.connect(fx.settings)
    expires = int(time.time()) + CHALLENGE_SECONDS
    replays: deque[Callable[[], bool]] = deque()
    for _ in range(count):
        challenge_hash = hashlib.sha256(os.urandom(32)).hexdigest()
        fx.services.store.put_challenge(
            challenge_hash, ChallengeRecord(SIGN_IN, "", "", expires), []
        )
        replays.append(_committing(calls, challenge_hash).replayer(client, strict=True))
    return replays


def _signed(authenticator: Authenticator, credential: Credential, count: int) -> deque[Signed]:
    """``count`` assertions of ``credential`` on fresh challenges, as raw bytes."""
    signed: deque[Signed] = deque()
    for _ in range(count):
        options = {"rpId": RP_ID, "challenge": b64(os.urandom(32))}
        response = authenticator.get(options, credential)["response"]
        parts = ("authenticatorData", "clientDataJSON", "signature")
        data, client_data, signature = (unb64(response[part]) for part in parts)
        signed.append((data, client_data, signature))
    return signed


def measure(
    fx: Fixture, report: Report, *, rounds: int = 80, batch: int = 2, warmup: int = 5
) -> None:
    """Count a discoverable and a username-first sign-in, then time sign-ins vs the floor."""
    with client_from(SOURCE_IP) as api:
        access, _ = sign_up(api, ACCOUNT)
        subject_key, replayed_key = Authenticator(), Authenticator()
        _enrol(api, access, subject_key)
        credential = _enrol(api, access, replayed_key)
        discoverable = _sign_in(fx, api, subject_key)
        username_first = _sign_in(fx, api, subject_key, ACCOUNT)
        _, replayed = _sign_in(fx, api, replayed_key)
        count = warmup + rounds * batch
        assertions = deque(subject_key.get(_options(api)) for _ in range(count))
        replays = _replays(fx, replayed, count)
        signed = _signed(replayed_key, credential, count)
        public_key = credential.key.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise RuntimeError("the bench's passkeys are ES256")
        algorithm = ec.ECDSA(hashes.SHA256())

        def subject() -> None:
            _log_in(api, assertions.popleft())

        def baseline() -> None:
            data, client_data, signature = signed.popleft()
            public_key.verify(signature, data + hashlib.sha256(client_data).digest(), algorithm)
            if not replays.popleft()():
                raise RuntimeError("the replayed sign-in found no user or passkey")

        paired = interleave(subject, baseline, rounds=rounds, batch=batch, warmup=warmup)
    options, login = discoverable
    report.add(
        calls_report_row("DynamoDB calls per passkey sign-in (options + login)", *discoverable),
        f"Passkey sign-in round trips: botocore `before-call` events during one discoverable "
        f"sign-in, POST /passkeys/options with no username ({options.summary()}) then "
        f"POST /passkeys/login with a software authenticator's ES256 assertion "
        f"({login.summary()}). {_username_first(discoverable, username_first)} No budget "
        f"in DESIGN.md: reported only.",
    )
    if _differs(discoverable, username_first):
        report.add(
            calls_report_row("DynamoDB calls per username-first passkey sign-in", *username_first)
        )
    report.add(
        reported_row("POST /passkeys/login (test client)", paired),
        f"POST /passkeys/login: median per-request time through the adapted test client of a "
        f"discoverable sign-in (ES256 passkey, sign count growing by one each time), each on "
        f"a challenge from its own POST /passkeys/options, asked for and signed before the "
        f"timed rounds, vs a floor of a bare ES256 verification of another assertion "
        f"(`cryptography`: SHA-256 of clientDataJSON, ECDSA over the authenticator data and "
        f"that hash) plus a replay with boto3, on a client built like the app's, of exactly "
        f"the calls one sign-in with a second passkey of the same user made "
        f"({replayed.summary()}, same parameters, except that each replay spends a challenge "
        f"of its own, stored beforehand, and its count update writes back the count its "
        f"condition expects, so every replay commits as the subject's sign-in does). "
        f"{rounds} interleaved rounds of {batch} sign-ins each side after {warmup} warm-up "
        f"sign-ins; {paired.spread()}. No budget in DESIGN.md: reported only.",
    )


def _differs(first: tuple[Calls, Calls], second: tuple[Calls, Calls]) -> bool:
    return [c.operations for c in first] != [c.operations for c in second]


def _username_first(discoverable: tuple[Calls, Calls], username_first: tuple[Calls, Calls]) -> str:
    """What the note says of username-first sign-in (its own row when it differs)."""
    if _differs(discoverable, username_first):
        options, login = username_first
        return (
            f"Username-first sign-in differs (its own row): {options.summary()}, then "
            f"{login.summary()}."
        )
    return "Username-first options (POST /passkeys/options with the username) make the same calls."

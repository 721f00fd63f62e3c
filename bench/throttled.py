"""A throttled login vs one bcrypt verify: a locked account name must cost no bcrypt.

``Throttle.claim`` refuses before any lookup or password work (throttle.py): the
attempt's one conditional transaction is refused, so an attacker who keeps guessing at a
locked name gets 429s that cost the service almost nothing. If the claim moved after the
verify, the ratio would jump from a few hundredths to about one. The attempts here
present the right password: even that is refused.

The account is locked with the default limits, from a client IP of its own, so the
failures that lock it leave 127.0.0.1's counters (every other figure's) untouched.
"""

from __future__ import annotations

import bcrypt

from bench.fixture import PASSWORD, WRONG_PASSWORD, Fixture, client_from, expect, send, sign_up
from bench.report import Report
from bench.roundtrips import recorded
from bench.rows import ratio_row
from bench.stats import interleave

BUDGET = 0.10
SOURCE_IP = "192.0.2.20"
ACCOUNT = "bench.locked"


def measure(fx: Fixture, report: Report, *, rounds: int = 12) -> None:
    """Lock ``ACCOUNT`` with wrong passwords, then time its 429s against bcrypt alone."""
    limit = min(limit.max_failures for limit in fx.services.throttle.policy.account)
    cost = fx.settings.bcrypt_cost
    password = PASSWORD.encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(cost))
    with client_from(SOURCE_IP) as api:
        sign_up(api, ACCOUNT)
        for _ in range(limit):
            wrong = {"username": ACCOUNT, "password": WRONG_PASSWORD}
            expect(send(api, "POST", "/login", wrong), 401)
        right = {"username": ACCOUNT, "password": PASSWORD}
        with recorded(fx.services.store._client) as calls:
            expect(send(api, "POST", "/login", right), 429)

        def subject() -> None:
            expect(send(api, "POST", "/login", right), 429)

        def baseline() -> None:
            if not bcrypt.checkpw(password, hashed):
                raise RuntimeError("bcrypt refused its own hash")

        paired = interleave(subject, baseline, rounds=rounds, batch=1, warmup=2)
    report.add(
        ratio_row(f"throttled POST /login / bcrypt (cost {cost})", paired, BUDGET),
        f"Throttled login: median time through the adapted test client of a login with the "
        f"right password for an account name already at its limit ({limit} failures this "
        f"hour; the answer is 429), vs one `bcrypt.checkpw` at cost {cost}. {rounds} "
        f"interleaved rounds of one call each side; {paired.spread()}. The refused attempt "
        f"made {calls.summary()} (the refused claim) and nothing else: no lookup, no bcrypt, "
        "nothing written.",
    )

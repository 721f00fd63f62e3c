"""``GET /protected`` and ``POST /login`` in-process, through ``chalice.test.Client``.

Both go through the same ``AdaptedGateway`` test client the tests use, so what is
measured is the app's own work (plus Chalice's local API Gateway imitation), with
DynamoDB Local on the other end of a loopback socket on both sides of every ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import bcrypt
from chalice.test import Client

from bench import PROJECT_DIR, bare_app
from bench.fixture import PASSWORD, STAGE, USERNAME, Fixture, expect, send
from bench.report import Measured, Report
from bench.roundtrips import recorded
from bench.rows import calls_row, ratio_row
from bench.stats import interleave
from chalicelib.store import table

PROTECTED_BUDGET = 1.5
LOGIN_BUDGET = 1.10
LOGIN_CALLS_BUDGET = 4
AUTHORIZER_CALLS_BUDGET = 1


def protected(fx: Fixture, report: Report, *, rounds: int = 200, batch: int = 5) -> None:
    """/protected through the adapted gateway vs a bare route doing the same verify + GetItem."""
    with recorded(fx.services.store._client) as calls:
        expect(send(fx.api, "GET", "/protected", token=fx.token), 200)
    tokens = fx.services.tokens
    bare = bare_app.build(
        tokens.signing.ring.signing.private_key.public_key(),
        audience=tokens.audience,
        issuer=tokens.issuer,
        session_alive=calls.replayer(table.connect(fx.settings)),
    )
    with Client(bare, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as bare_client:
        plain = bare_client.http

        def subject() -> None:
            expect(send(fx.api, "GET", "/protected", token=fx.token), 200)

        def baseline() -> None:
            expect(send(plain, "GET", bare_app.PATH, token=fx.token), 200)

        paired = interleave(subject, baseline, rounds=rounds, batch=batch, warmup=300)
    wall, cpu = _replay_cost(calls.replayer(table.connect(fx.settings)))
    report.measured["protected"] = Measured(paired, calls)
    report.add(
        ratio_row("GET /protected (test client)", paired, PROTECTED_BUDGET),
        "GET /protected: median per-request time through `chalice.test.Client` with "
        "`AdaptedGateway` (authorizer, middleware, JSON access log to a temp file), vs a bare "
        "Chalice app with one un-authorized route that runs `jwt.decode` on the same token "
        "(same RS256 public key, audience, issuer, leeway, required claims) plus the "
        f"authorizer's own DynamoDB calls replayed ({calls.summary()}, same parameters), "
        "through a plain `chalice.test.Client` (stock `LocalGateway`). "
        f"{rounds} interleaved rounds of {batch} requests each side; "
        f"{paired.spread()}. For scale, those DynamoDB calls alone, on a client configured "
        f"like the app's: {wall * 1000:.2f} ms wall, {cpu * 1000:.2f} ms CPU.",
    )
    report.add(
        calls_row("DynamoDB calls per authorized request", calls, AUTHORIZER_CALLS_BUDGET),
        f"Authorizer round trips: botocore `before-call` events on the services' client "
        f"during one authorized GET /protected: {calls.summary()}.",
    )


def _replay_cost(replay: Callable[[], bool], calls: int = 500) -> tuple[float, float]:
    """Mean (wall, CPU) seconds of one replay of the authorizer's DynamoDB calls."""
    for _ in range(50):
        replay()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        replay()
    return (time.perf_counter() - wall) / calls, (time.process_time() - cpu) / calls


def login(fx: Fixture, report: Report, *, rounds: int = 30) -> None:
    """/login at bcrypt cost 12 vs one bare bcrypt verify plus the same DynamoDB calls."""
    body = {"username": USERNAME, "password": PASSWORD}
    with recorded(fx.services.store._client) as calls:
        expect(send(fx.api, "POST", "/login", body), 200)
    cost = fx.services.settings.bcrypt_cost
    password = PASSWORD.encode()
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(cost))
    replay = calls.replayer(table.connect(fx.settings))

    def subject() -> None:
        expect(send(fx.api, "POST", "/login", body), 200)

    def baseline() -> None:
        if not bcrypt.checkpw(password, hashed):
            raise RuntimeError("bcrypt refused its own hash")
        replay()

    paired = interleave(subject, baseline, rounds=rounds, batch=1, warmup=1)
    report.measured["login"] = Measured(paired, calls)
    report.add(
        ratio_row(f"POST /login (bcrypt cost {cost})", paired, LOGIN_BUDGET),
        f"POST /login: median time through the adapted test client, vs `bcrypt.checkpw` at "
        f"cost {cost} plus a replay, with boto3 on a client built like the app's, of exactly "
        f"the calls one login made ({calls.summary()}, same parameters). {rounds} interleaved "
        f"rounds of one login each side; {paired.spread()}.",
    )
    report.add(
        calls_row("DynamoDB calls per login", calls, LOGIN_CALLS_BUDGET),
        f"Login round trips: botocore `before-call` events during one successful login: "
        f"{calls.summary()}.",
    )

"""``POST /token/refresh`` through the test client vs a replay of its DynamoDB calls.

A refresh is two round trips (read the session, rotate it in one transaction) plus
what the app does around them: the gateway imitation, middleware, parsing the token,
signing a new access token (RS256), the access log. The baseline makes exactly the
recorded calls with boto3 and nothing else, so the ratio is everything that is not
DynamoDB. DESIGN.md sets no budget for it, so it is reported, not judged.

A verbatim replay of the rotation would be refused: its condition names the hash the
refresh just spent. The replayed transaction therefore writes the session back with
that same hash (one attribute changed, after one reset of the item), so it commits
every time, exactly as the subject's does, instead of timing DynamoDB's cheaper refusal.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from bench.fixture import USERNAME, Fixture, expect, log_in, send
from bench.report import Measured, Report
from bench.roundtrips import Calls, recorded
from bench.rows import calls_row, reported_row
from bench.stats import interleave
from chalicelib.crypto.tokens import new_id
from chalicelib.store import table

CALLS_BUDGET = 2
#: The rotation's condition on the live hash (chalicelib.store.table.Store.rotate_session).
_LIVE_HASH_CONDITION = "refresh_hash = :old"


def _committing(calls: Calls) -> tuple[Calls, list[dict[str, Any]]]:
    """The same calls, with each rotated session written back with the hash its condition
    expects; and those session items, to put once so the first replay commits too."""
    rewritten = Calls(operations=list(calls.operations), sends=calls.sends)
    resets: list[dict[str, Any]] = []
    for operation, recorded_params in calls.params:
        params = copy.deepcopy(recorded_params)
        for action in params.get("TransactItems", []):
            put = action.get("Put", {})
            if _LIVE_HASH_CONDITION in put.get("ConditionExpression", ""):
                put["Item"]["refresh_hash"] = put["ExpressionAttributeValues"][":old"]
                resets.append({"TableName": put["TableName"], "Item": put["Item"]})
        rewritten.params.append((operation, params))
    if not resets:
        raise RuntimeError("no session rotation among the refresh's calls: update the bench")
    return rewritten, resets


def _signing_cost(fx: Fixture, count: int = 200) -> float:
    """CPU seconds to issue one access token, for scale (RS256 signing dominates)."""
    tokens = fx.services.tokens
    start = time.process_time()
    for _ in range(count):
        tokens.issue(new_id(), USERNAME, new_id())
    return (time.process_time() - start) / count


def measure(fx: Fixture, report: Report, *, rounds: int = 60, batch: int = 4) -> None:
    """Refresh a token chain of its own vs replaying a recorded refresh of another session."""
    _, captured = log_in(fx.api, USERNAME)
    with recorded(fx.services.store._client) as calls:
        expect(send(fx.api, "POST", "/token/refresh", {"refresh_token": captured}), 200)
    replayed, resets = _committing(calls)
    client = table.connect(fx.settings)
    for item in resets:
        client.put_item(**item)
    replay = replayed.replayer(client, strict=True)
    live = [log_in(fx.api, USERNAME)[1]]

    def subject() -> None:
        answer = send(fx.api, "POST", "/token/refresh", {"refresh_token": live[0]})
        live[0] = str(expect(answer, 200).json_body["refresh_token"])

    def baseline() -> None:
        if not replay():
            raise RuntimeError("the replayed refresh found no session")

    paired = interleave(subject, baseline, rounds=rounds, batch=batch, warmup=20)
    report.measured["refresh"] = Measured(paired, calls)
    report.add(
        reported_row("POST /token/refresh (test client)", paired),
        f"POST /token/refresh: median per-request time through the adapted test client, a "
        f"chain of refreshes each spending the token the previous one issued, vs a replay "
        f"with boto3, on a client built like the app's, of exactly the calls one refresh "
        f"made ({calls.summary()}, same parameters, except that the replayed rotation writes "
        f"the session back with the hash its condition expects, so it commits every time as "
        f"the subject's does). {rounds} interleaved rounds of {batch} requests each side; "
        f"{paired.spread()}. No budget in DESIGN.md: reported only (against /protected's "
        f"1.5x it would {'pass' if paired.ratio <= 1.5 else 'fail'}; its baseline, unlike "
        f"this one, also verifies a JWT). For scale, issuing the new access token alone "
        f"costs {_signing_cost(fx) * 1000:.2f} ms of CPU.",
    )
    report.add(
        calls_row("DynamoDB calls per refresh", calls, CALLS_BUDGET),
        f"Refresh round trips: botocore `before-call` events during one successful "
        f"POST /token/refresh: {calls.summary()}.",
    )

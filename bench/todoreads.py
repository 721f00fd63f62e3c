"""DynamoDB round trips of reading to-dos: one each, after the authorizer's session check.

DESIGN.md's budget ("to-do read 1") is the route's own work; every guarded request also
makes the authorizer's one GetItem first (counted in its own row), so that many calls
are taken off the front of what a to-do read recorded.
"""

from __future__ import annotations

from bench.fixture import Fixture, expect, send
from bench.report import Report, Row
from bench.roundtrips import Calls, recorded

CALLS_BUDGET = 1


def _after_authorizer(fx: Fixture, path: str, authorizer: int) -> Calls:
    """The calls one ``GET path`` made, less the authorizer's ``authorizer`` first ones."""
    with recorded(fx.services.store._client) as calls:
        expect(send(fx.api, "GET", path, token=fx.token), 200)
    return Calls(
        operations=calls.operations[authorizer:],
        params=calls.params[authorizer:],
        sends=calls.sends - authorizer,
    )


def measure(fx: Fixture, report: Report) -> None:
    """Count one GET /todos/{id} and one GET /todos (first page) beyond the authorizer."""
    authorizer = report.measured["protected"].calls.count
    created = expect(send(fx.api, "POST", "/todos", {"text": "bench"}, token=fx.token), 201)
    one = _after_authorizer(fx, f"/todos/{created.json_body['id']}", authorizer)
    page = _after_authorizer(fx, "/todos", authorizer)
    worst = max(one.count, page.count)
    report.add(
        Row(
            figure="DynamoDB calls per to-do read / list page (after the authorizer's)",
            measured=f"{one.count} / {page.count}",
            baseline="-",
            ratio="-",
            budget=f"<= {CALLS_BUDGET}",
            passed=worst <= CALLS_BUDGET and one.sends == one.count,
        ),
        f"To-do read round trips: botocore `before-call` events during one GET "
        f"/todos/{{id}} ({one.summary()}) and one GET /todos ({page.summary()}), each "
        f"after the authorizer's {authorizer} call(s) (its own row).",
    )

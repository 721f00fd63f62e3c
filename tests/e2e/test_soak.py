"""The short soak in ``make test``: bench/soak.py's mixed load on the real local runner.

About 1,500 requests in 15 s from 20 clients, each signed in as its own user (bcrypt at
the tests' cost). Every answer must be the one its operation expects, and the runner's
memory must stay flat (bench/soak.py says how that is judged). ``make soak`` runs the
full 20,000-request, 2-minute version at the deployed cost.
"""

from __future__ import annotations

import pytest

from bench.soak import Plan, describe, soak
from tests.e2e.runner import Runner

pytestmark = pytest.mark.e2e

SHORT = Plan(requests=1_500, seconds=15.0, clients=20)
#: A loose bound on a shared 2-core box: a stall (a lock, a retry storm) shows, noise not.
P99_CEILING_MS = 2_000.0


def test_a_short_soak_answers_every_request_as_expected_in_flat_memory(runner: Runner) -> None:
    result = soak(runner.url, runner.process.pid, SHORT)

    report = describe(result)
    print(report)
    assert result.sent >= SHORT.requests, report
    assert result.tally.unexpected == 0, report
    assert result.setup.unexpected == 0, report
    assert result.rss.flat, report
    for operation in result.tally.latencies:
        assert result.percentile(operation, 0.99) < P99_CEILING_MS, report

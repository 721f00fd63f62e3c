"""Login timing: an unknown user, a wrong password and the right one must cost the same.

If an unknown name answered sooner (no bcrypt) or a wrong password later (extra
writes), a timing attacker could tell which accounts exist without any answer saying
so. All three go through the adapted test client, interleaved round by round, and the
unknown and wrong cases are each a ratio over the right password's time.

These attempts fail on purpose, many more than the throttle allows (10 per account
name, 100 per IP an hour). They are served by services built with limits too high to
reach, from an address of their own, so what is timed is the failure path and not the
cheaper 429, and the default-limit figures after this one start from clean counters.
Unknown names are fresh every attempt, as a scan of names would be.

A fourth side logs in with the right password again: the same work as the baseline,
so its ratio is this run's noise floor (on a box shared with other work, a few
percent or more), reported beside the two that are judged.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from bench.cpu import process_seconds
from bench.fixture import (
    PASSWORD,
    WRONG_PASSWORD,
    Fixture,
    client_from,
    expect,
    installed,
    send,
    sign_up,
)
from bench.report import Report
from bench.rows import band_row, reported_row
from bench.stats import interleave_sides, pair
from chalicelib import wiring

BAND = (0.90, 1.10)
#: Limits no measurement can reach (failures per hour, per day).
UNREACHABLE = (10**6, 10**6)
SOURCE_IP = "192.0.2.10"
ACCOUNT = "bench.timing"


@dataclass
class _Metered:
    """One side's attempts, adding up the CPU DynamoDB Local spent on each.

    This process's CPU time is already kept per side; with DynamoDB Local's beside it,
    a wall-time difference that neither process's work explains is the box's scheduling,
    not something the three paths do differently.
    """

    attempt: Callable[[], object]
    pid: int
    seconds: float = 0.0
    count: int = 0

    def __call__(self) -> None:
        before = process_seconds(self.pid)
        self.attempt()
        self.seconds += process_seconds(self.pid) - before
        self.count += 1

    @property
    def ms(self) -> str:
        return f"{self.seconds * 1000 / max(self.count, 1):.1f} ms"


def measure(fx: Fixture, report: Report, *, rounds: int = 24) -> None:
    """Unknown, wrong, right and right again, once each per round, order rotating."""
    relaxed = wiring.Services.build(
        replace(fx.settings, throttle_account=UNREACHABLE, throttle_ip=UNREACHABLE)
    )
    names = (f"bench.nobody{n:05d}" for n in itertools.count())
    with installed(relaxed, restore=fx.services), client_from(SOURCE_IP) as api:
        sign_up(api, ACCOUNT)

        def attempt(username: str, password: str, status: int) -> Any:
            body = {"username": username, "password": password}
            return expect(send(api, "POST", "/login", body), status).json_body

        same = attempt(next(names), PASSWORD, 401) == attempt(ACCOUNT, WRONG_PASSWORD, 401)

        metered = [
            _Metered(lambda: attempt(next(names), PASSWORD, 401), fx.ddb_pid),
            _Metered(lambda: attempt(ACCOUNT, WRONG_PASSWORD, 401), fx.ddb_pid),
            _Metered(lambda: attempt(ACCOUNT, PASSWORD, 200), fx.ddb_pid),
            _Metered(lambda: attempt(ACCOUNT, PASSWORD, 200), fx.ddb_pid),
        ]
        sides = interleave_sides(metered, rounds=rounds, batch=1, warmup=2)
    unknown, wrong, right, again = sides
    cost = fx.settings.bcrypt_cost
    method = (
        f"Login timing (this row and the next two): {rounds} rounds after 2 warm-up rounds, "
        f"each one login per side through the adapted test client: unknown user, wrong "
        f"password, right password, and right password again, the order rotated so each "
        f"side takes every place equally often; the right password is every ratio's "
        f"baseline. Served with the throttle's limits raised out of reach (so failures are "
        f"timed, not 429s) from client IP {SOURCE_IP}. The two refusals' bodies were "
        f"{'identical' if same else 'DIFFERENT'}. The ratio judged is the median of the "
        f"per-round ratios, because a round's sides ran within about a second of each other "
        f"and a busy box's load cancels within it. DynamoDB Local's CPU per attempt (10 ms "
        f"clock ticks, mean over warm-up and rounds): unknown {metered[0].ms}, wrong "
        f"{metered[1].ms}, right {metered[2].ms}, right again {metered[3].ms} (the last "
        f"two do the same work: their gap is this reading's noise, JVM garbage collection "
        f"landing on whichever attempt is in flight)."
    )
    for figure, side, what in (
        ("unknown user", unknown, "a fresh, never-registered username each attempt"),
        ("wrong password", wrong, f"a registered user ({ACCOUNT}) and a wrong password"),
    ):
        paired = pair(side, right)
        report.add(
            band_row(f"POST /login {figure} / right password (cost {cost})", paired, *BAND),
            *([method] if figure == "unknown user" else []),
            f"Login timing, {figure}: a refused login with {what}, vs a successful login "
            f"of {ACCOUNT}. Paired ratio {paired.paired_ratio:.3f}; the ratio of the two "
            f"medians in the table's columns {paired.ratio:.3f}, of the fastest attempts "
            f"(the low tail a timing attacker filters for) {paired.minimum_ratio:.3f}; "
            f"{paired.spread()}. Within {BAND[0]:.2f}x-{BAND[1]:.2f}x a timing attacker "
            f"cannot tell the two apart.",
        )
    control = pair(again, right)
    report.add(
        reported_row(
            f"POST /login right password again / right (cost {cost})",
            control,
            control.paired_ratio,
        ),
        f"Login timing, noise control: the right password's login timed as two sides. Both "
        f"do the same work, so this ratio's distance from 1.00 is the run's noise floor for "
        f"the two above: paired {control.paired_ratio:.3f}, ratio of medians "
        f"{control.ratio:.3f}, of the fastest {control.minimum_ratio:.3f}; "
        f"{control.spread()}.",
    )

"""Run every benchmark once, print the table and write bench/REPORT.md.

Order matters a little: the in-process figures run first, while nothing else is
running; then the two servers, loaded one at a time; the cold-start subprocesses run
last, after DynamoDB Local has stopped. A completed run exits 0 whatever it measured:
these are benchmarks, not timed tests (DESIGN.md). With ``--check`` a missed budget
exits 1, for whoever wants to gate on one machine's figures.
"""

from __future__ import annotations

import argparse
import time

from bench import (
    PROJECT_DIR,
    chart,
    coldstart,
    cost,
    enumeration,
    fixture,
    inprocess,
    mfa,
    oauth,
    package,
    passkeys,
    refresh,
    server,
    throttled,
    todoreads,
)
from bench.report import Report, code_version, load_average, machine, markdown, text_table

REPORT_PATH = PROJECT_DIR / "bench" / "REPORT.md"
CHART_PATH = PROJECT_DIR / "bench" / "latency.png"


def _step(name: str) -> None:
    print(f"... {name}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a budget is missed")
    check = parser.parse_args(argv).check
    started, load_before = time.perf_counter(), load_average()
    report = Report()
    print(f"Gatehouse benchmarks on {machine()}", flush=True)
    _step("starting DynamoDB Local, registering a user (bcrypt cost 12)")
    with fixture.started() as fx:
        _step("GET /protected vs a bare Chalice route")
        inprocess.protected(fx, report)
        _step("POST /login vs bcrypt + the same DynamoDB calls")
        inprocess.login(fx, report)
        _step("POST /token/refresh vs a replay of its DynamoDB calls")
        refresh.measure(fx, report)
        _step("passkey sign-in: its DynamoDB calls; POST /passkeys/login vs ES256 + the same")
        passkeys.measure(fx, report)
        _step("OAuth: the code exchange and userinfo vs their floors, round trips")
        oauth.measure(fx, report)
        _step("DynamoDB calls of to-do reads")
        todoreads.measure(fx, report)
        _step("POST /login: unknown user, wrong password, right password")
        enumeration.measure(fx, report)
        _step("POST /login on a locked account name vs bcrypt alone")
        throttled.measure(fx, report)
        mfa.measure(fx, report)
        _step("local servers: scripts/serve.py and stock chalice local, loaded in turn")
        server.measure(fx, report)
    _step("cold start: fresh interpreters, no .pyc")
    coldstart.measure(report)
    package.measure(report)
    costs = cost.add(report)
    chart.add(report, CHART_PATH)
    elapsed = time.perf_counter() - started
    print()
    print(text_table(report))
    print()
    for item in costs:
        print(f"per 1,000 {item.operation.label}: ${item.total_usd * 1000:.4f} (model)")
    load = (load_before, load_average())
    code = code_version(PROJECT_DIR)
    REPORT_PATH.write_text(markdown(report, elapsed, load, code), encoding="utf-8")
    print(
        f"\n{'all budgets met' if report.passed else 'SOME BUDGETS MISSED'}; "
        f"{elapsed:.0f} s; written to {REPORT_PATH.relative_to(PROJECT_DIR)}"
    )
    return 1 if check and not report.passed else 0

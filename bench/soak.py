"""Soak: a bounded mixed load on the real local runner, then three checks.

``make soak`` (``python -m bench.soak``) sends 20,000 requests over about 2 minutes
from 20 clients, each signed in as its own user, to ``scripts/serve.py`` on a private
DynamoDB Local at the deployed bcrypt cost, and writes ``bench/SOAK.md``. A shorter run
(about 1,500 requests in 15 s) is an end-to-end test in ``make test``
(tests/e2e/test_soak.py), against the tests' runner.

The mix is what a signed-in client does: mostly ``GET /protected`` and to-do reads and
writes, token refreshes (each client spends the refresh token its last refresh or login
gave it), and a few logins, kept rare because each costs a bcrypt verify (about 235 ms
of CPU at cost 12). Each client paces itself to its share of the planned rate, so the
load is the same whatever the server's speed, and a slow server shows as latency, not
as fewer requests.

The checks:
1. every answer had the status its operation expects (no 4xx surprise, no 5xx, no
   dropped connection);
2. p50 and p99 latency per operation (reported; the test bounds p99 loosely);
3. the server's memory stayed flat: its RSS (``VmRSS`` in ``/proc/<pid>/status``),
   sampled every 250 ms, compared as the median of the last quarter of the run against
   the median of the first quarter after a warm-up (the first 10%, while caches, the
   JIT of DynamoDB Local and Python's allocator settle). Flat means it grew by at most
   ``RSS_TOLERANCE_MIB`` or ``RSS_TOLERANCE_RATIO``, whichever is larger: a leak of
   1 KiB per request grows 20 MiB over 20,000 requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import PROJECT_DIR

#: Operation -> weight per 1,000 requests. Logins are rare: each is a bcrypt verify.
MIX: dict[str, int] = {
    "protected": 400,
    "todo_list": 200,
    "todo_create": 130,
    "refresh": 95,
    "todo_update": 90,
    "todo_delete": 80,
    "login": 5,
}
#: The one status each operation must answer.
EXPECTED: dict[str, int] = {
    "protected": 200,
    "todo_list": 200,
    "todo_create": 201,
    "refresh": 200,
    "todo_update": 200,
    "todo_delete": 204,
    "login": 200,
    "register": 201,
}
RSS_TOLERANCE_MIB = 15.0
RSS_TOLERANCE_RATIO = 0.20
RSS_SAMPLE_SECONDS = 0.25
WARMUP_FRACTION = 0.10
PASSWORD = "soak test passphrase, long enough"
SOAK_REPORT = PROJECT_DIR / "bench" / "SOAK.md"
#: Unexpected answers kept verbatim for the report (the count covers all of them).
KEPT_SURPRISES = 10


@dataclass(frozen=True)
class Plan:
    requests: int = 20_000
    seconds: float = 120.0
    clients: int = 20


@dataclass
class Tally:
    """Every client's results, merged under a lock."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    surprises: list[str] = field(default_factory=list)
    unexpected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation: str, status: int, seconds: float, body: bytes) -> None:
        with self.lock:
            self.latencies.setdefault(operation, []).append(seconds)
            counts = self.statuses.setdefault(operation, {})
            counts[status] = counts.get(status, 0) + 1
            if status != EXPECTED[operation]:
                self.unexpected += 1
                if len(self.surprises) < KEPT_SURPRISES:
                    self.surprises.append(f"{operation} -> {status}: {body[:200]!r}")


@dataclass(frozen=True)
class Rss:
    """The server's resident memory over the run, in MiB."""

    idle: float
    first_quarter: float
    last_quarter: float
    peak: float
    samples: int

    @property
    def growth(self) -> float:
        return self.last_quarter - self.first_quarter

    @property
    def allowed(self) -> float:
        return max(RSS_TOLERANCE_MIB, self.first_quarter * RSS_TOLERANCE_RATIO)

    @property
    def flat(self) -> bool:
        return self.growth <= self.allowed


@dataclass(frozen=True)
class Result:
    plan: Plan
    elapsed: float
    #: The mix, timed; ``setup`` holds the sign-ups before it (checked, not timed).
    tally: Tally
    setup: Tally
    rss: Rss

    @property
    def sent(self) -> int:
        return sum(len(v) for v in self.tally.latencies.values())

    @property
    def passed(self) -> bool:
        return self.tally.unexpected == 0 and self.setup.unexpected == 0 and self.rss.flat

    def percentile(self, operation: str, fraction: float) -> float:
        """Nearest-rank percentile of the operation's latencies, in ms."""
        ordered = sorted(self.tally.latencies[operation])
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


class Client:
    """One simulated user on one keep-alive connection."""

    def __init__(self, base_url: str, username: str) -> None:
        parts = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30
        )
        self.username = username
        self.access = ""
        self.refresh_token = ""
        self.todos: list[str] = []

    def send(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        """One request; (status, body, seconds). A dropped connection is status 0."""
        headers = {"Content-Type": "application/json", "User-Agent": "gatehouse-soak"}
        if self.access:
            headers["Authorization"] = f"Bearer {self.access}"
        data = None if body is None else json.dumps(body)
        started = time.perf_counter()
        try:
            self._connection.request(method, path, data, headers)
            response = self._connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            self._connection.close()
            return 0, repr(error).encode(), time.perf_counter() - started
        return response.status, payload, time.perf_counter() - started

    def take_pair(self, payload: bytes) -> None:
        pair = json.loads(payload)
        self.access, self.refresh_token = pair["access_token"], pair["refresh_token"]

    def sign_up(self, tally: Tally) -> bool:
        """Register and log in; False (and counted) if either fails."""
        credentials = {"username": self.username, "password": PASSWORD}
        status, body, seconds = self.send("POST", "/register", credentials)
        tally.add("register", status, seconds, body)
        if status != EXPECTED["register"]:
            return False
        return self.operation("login", tally)

    def operation(self, name: str, tally: Tally) -> bool:
        """Run one operation of the mix and record it; whether it answered as expected."""
        if name in ("todo_update", "todo_delete") and not self.todos:
            name = "todo_create"
        status, body, seconds = self._request(name)
        tally.add(name, status, seconds, body)
        if status != EXPECTED[name]:
            return False
        if name in ("login", "refresh"):
            self.take_pair(body)
        elif name == "todo_create":
            self.todos.append(json.loads(body)["id"])
        elif name == "todo_delete":
            self.todos.pop()
        return True

    def _request(self, name: str) -> tuple[int, bytes, float]:
        """The operation's request: (method, path, body) from the client's state."""
        if name == "login":
            self.access = ""  # a login carries no bearer token
        last = self.todos[-1] if self.todos else ""
        method, path, body = {
            "login": ("POST", "/login", {"username": self.username, "password": PASSWORD}),
            "refresh": ("POST", "/token/refresh", {"refresh_token": self.refresh_token}),
            "protected": ("GET", "/protected", None),
            "todo_list": ("GET", "/todos?limit=20", None),
            "todo_create": ("POST", "/todos", {"text": f"soak {time.monotonic_ns()}"}),
            "todo_update": ("PATCH", f"/todos/{last}", {"completed": True}),
            "todo_delete": ("DELETE", f"/todos/{last}", None),
        }[name]
        return self.send(method, path, body)

    def close(self) -> None:
        self._connection.close()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _sample_rss(pid: int, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    while not stop.wait(RSS_SAMPLE_SECONDS):
        samples.append((time.perf_counter(), _rss_mib(pid)))


def _summarise_rss(idle: float, samples: list[tuple[float, float]], started: float) -> Rss:
    """First quarter after the warm-up vs the last quarter of the load."""
    end = samples[-1][0]
    warm = started + (end - started) * WARMUP_FRACTION
    steady = [rss for at, rss in samples if at >= warm]
    quarter = max(1, len(steady) // 4)
    return Rss(
        idle=idle,
        first_quarter=statistics.median(steady[:quarter]),
        last_quarter=statistics.median(steady[-quarter:]),
        peak=max(rss for _, rss in samples),
        samples=len(samples),
    )


def _drive(client: Client, count: int, interval: float, start: float, tally: Tally) -> None:
    """Send ``count`` operations, one every ``interval`` seconds on a fixed timetable."""
    pick = random.Random(client.username).choices  # noqa: S311 - a load mix, not a secret
    names, weights = list(MIX), list(MIX.values())
    for index, name in enumerate(pick(names, weights, k=count)):
        delay = start + index * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.operation(name, tally)


def soak(base_url: str, server_pid: int, plan: Plan, *, label: str = "soak") -> Result:
    """Sign up ``plan.clients`` users, then run the mix; the result with its checks."""
    tally, setup = Tally(), Tally()
    clients = [
        Client(base_url, f"{label}{index:02d}x{time.time_ns()}") for index in range(plan.clients)
    ]
    _all_threads([partial(c.sign_up, setup) for c in clients])
    idle = _rss_mib(server_pid)
    per_client = plan.requests // plan.clients
    interval = plan.seconds / per_client
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(server_pid, stop, samples), daemon=True)
    started = time.perf_counter()
    sampler.start()
    try:
        # Clients start spread over one interval, not in lockstep.
        _all_threads(
            [
                partial(
                    _drive, c, per_client, interval, started + interval * i / len(clients), tally
                )
                for i, c in enumerate(clients)
            ]
        )
    finally:
        stop.set()
        sampler.join()
        for client in clients:
            client.close()
    elapsed = time.perf_counter() - started
    return Result(plan, elapsed, tally, setup, _summarise_rss(idle, samples, started))


def _all_threads(work: list[Callable[[], object]]) -> None:
    threads = [threading.Thread(target=job, daemon=True) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def describe(result: Result) -> str:
    """The result as Markdown: the per-operation table, memory, and the verdict."""
    tally, setup, rss = result.tally, result.setup, result.rss
    rows = [
        "| operation | requests | expected | answers | p50 | p99 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in sorted(tally.latencies, key=lambda n: -len(tally.latencies[n])):
        answers = ", ".join(f"{n} x {s}" for s, n in sorted(tally.statuses[name].items()))
        rows.append(
            f"| {name} | {len(tally.latencies[name])} | {EXPECTED[name]} | {answers} | "
            f"{result.percentile(name, 0.50):.1f} ms | {result.percentile(name, 0.99):.1f} ms |"
        )
    verdict = "pass" if result.passed else "FAIL"
    lines = [
        f"{result.sent} requests from {result.plan.clients} clients in {result.elapsed:.1f} s "
        f"({result.sent / result.elapsed:.0f} req/s; planned {result.plan.requests} in "
        f"{result.plan.seconds:.0f} s), after {result.plan.clients} sign-ups (register + "
        f"login; {result.setup.unexpected} unexpected). Unexpected answers: {tally.unexpected}.",
        "",
        *rows,
        "",
        f"Server RSS: {rss.idle:.1f} MiB idle after sign-up; median {rss.first_quarter:.1f} MiB "
        f"in the first quarter after warm-up, {rss.last_quarter:.1f} MiB in the last "
        f"({rss.growth:+.1f} MiB; allowed +{rss.allowed:.1f} MiB); peak {rss.peak:.1f} MiB; "
        f"{rss.samples} samples. Memory {'flat' if rss.flat else 'GREW'}.",
        "",
        f"Verdict: {verdict}.",
    ]
    surprises = setup.surprises + tally.surprises
    if surprises:
        lines += ["", "Unexpected answers (first few):", *(f"- `{s}`" for s in surprises)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``make soak``: a private DynamoDB Local and runner, the full soak, bench/SOAK.md."""
    from bench import fixture, server  # noqa: PLC0415 - starts DynamoDB Local; CLI only
    from bench.report import code_version, load_average, machine  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--requests", type=int, default=Plan.requests)
    parser.add_argument("--seconds", type=float, default=Plan.seconds)
    parser.add_argument("--clients", type=int, default=Plan.clients)
    args = parser.parse_args(argv)
    plan = Plan(args.requests, args.seconds, args.clients)
    load_before = load_average()
    print(
        f"Soak on {machine()}: {plan.requests} requests, {plan.seconds:.0f} s, "
        f"{plan.clients} clients",
        flush=True,
    )
    with ExitStack() as stack:
        fx = stack.enter_context(fixture.started())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatehouse-soak-")))
        running = stack.enter_context(server.running("soak", server.ours, fx, tmp))
        result = soak(f"http://{server.HOST}:{running.port}", running.process.pid, plan)
    text = describe(result)
    print(text)
    SOAK_REPORT.write_text(
        "# Gatehouse soak report\n\n"
        "Written by `make soak` (`python -m bench.soak`, see its docstring): "
        "`scripts/serve.py` on a private in-memory DynamoDB Local, bcrypt cost "
        f"{fx.settings.bcrypt_cost}.\n\n"
        f"Code: {code_version(PROJECT_DIR)}.\n\n"
        f"Machine: {machine()}; 1-minute load average {load_before:.2f} at the start, "
        f"{load_average():.2f} at the end.\n\n{text}\n",
        encoding="utf-8",
    )
    print(f"written to {SOAK_REPORT.relative_to(PROJECT_DIR)}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

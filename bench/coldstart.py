"""Cold start: importing app.py in a fresh interpreter, with no bytecode cache at all.

A Lambda cold start imports the handler module. Each run is a new ``python -B`` with
``PYTHONDONTWRITEBYTECODE=1`` and ``PYTHONPYCACHEPREFIX`` set to an empty directory, so
no ``.pyc`` is read or written, for our code or any library: both sides compile
everything from source, the worst case. The baseline imports only the libraries the app
cannot do without; the ratio is what app.py and chalicelib add on top of them.
"""

from __future__ import annotations

import os
import statistics
import subprocess  # nosec B404
import sys
import tempfile
import time
from dataclasses import dataclass, field

from bench import PROJECT_DIR
from bench.cpu import reaped_children_seconds
from bench.report import Report, Row

SUBJECT = "import app"
BASELINE = "import chalice, boto3, jwt, bcrypt"
BUDGET = 1.3


def _clean_env(cache_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=cache_prefix)
    return env


@dataclass
class Runs:
    """Wall and CPU seconds of each run of one command."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def span(self) -> str:
        return f"min {min(self.wall) * 1000:.0f} / max {max(self.wall) * 1000:.0f} ms"


def _run(code: str, env: dict[str, str], runs: Runs | None = None) -> None:
    cpu, wall = reaped_children_seconds(), time.perf_counter()
    subprocess.run(  # noqa: S603  # nosec B603 - our own interpreter, fixed arguments
        [sys.executable, "-B", "-c", code],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    if runs is not None:
        runs.wall.append(time.perf_counter() - wall)
        runs.cpu.append(reaped_children_seconds() - cpu)


def measure(report: Report, *, pairs: int = 10) -> None:
    """``pairs`` subject runs and as many baseline runs, alternating, after one of each."""
    subject, baseline = Runs(), Runs()
    with tempfile.TemporaryDirectory(prefix="gatehouse-pycache-") as prefix:
        env = _clean_env(prefix)
        _run(SUBJECT, env)
        _run(BASELINE, env)
        for index in range(pairs):
            order = [(SUBJECT, subject), (BASELINE, baseline)]
            for code, runs in order if index % 2 == 0 else reversed(order):
                _run(code, env, runs)
        leaked = sum(len(files) for _, _, files in os.walk(prefix))
    median = statistics.median
    ratio = median(subject.wall) / median(baseline.wall)
    cpu_ratio = median(subject.cpu) / median(baseline.cpu)
    report.add(
        Row(
            figure="cold start (import, no .pyc)",
            measured=f"{median(subject.wall) * 1000:.0f} ms",
            baseline=f"{median(baseline.wall) * 1000:.0f} ms",
            ratio=f"{ratio:.2f}x",
            budget=f"<= {BUDGET:.2f}x",
            passed=ratio <= BUDGET,
        ),
        f"Cold start: wall time of a fresh `python -B -c '{SUBJECT}'` vs "
        f"`python -B -c '{BASELINE}'` (cwd the project, PYTHONDONTWRITEBYTECODE=1, "
        f"PYTHONPYCACHEPREFIX an empty temp dir, {leaked} .pyc files found in it after), "
        f"interpreter start-up included on both sides; ratio of medians over {pairs} "
        f"alternating runs each (subject {subject.span()}, baseline {baseline.span()}); "
        f"CPU time (user + system) ratio of medians {cpu_ratio:.2f}x.",
    )

"""The results table: printed to the terminal and written to ``bench/REPORT.md``.

One row per budget in DESIGN.md. A row whose budget is a ratio carries both sides;
a count or a size carries only the measured value. Notes say exactly what each
baseline was, so a reader can judge the figure without reading the code.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess  # nosec B404
from dataclasses import dataclass, field
from pathlib import Path

from bench.roundtrips import Calls
from bench.stats import Paired


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    baseline: str
    ratio: str
    budget: str
    #: None for a figure with no budget, reported for information only.
    passed: bool | None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "-"
        return "pass" if self.passed else "FAIL"


@dataclass(frozen=True)
class Measured:
    """One operation's timings and DynamoDB calls, kept for the cost model and the chart."""

    paired: Paired
    calls: Calls


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: By operation (``login``, ``protected``, ``refresh``): what the figures were built from.
    measured: dict[str, Measured] = field(default_factory=dict)
    #: Markdown sections after the table (the chart, the cost model).
    sections: list[str] = field(default_factory=list)

    def add(self, row: Row, *notes: str) -> None:
        self.rows.append(row)
        self.notes.extend(notes)

    @property
    def passed(self) -> bool:
        return all(row.passed is not False for row in self.rows)


HEADERS = ("figure", "measured", "baseline", "ratio", "budget", "result")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.figure, row.measured, row.baseline, row.ratio, row.budget, row.verdict)


def machine() -> str:
    """CPU model, cores, Python and the date: what a reader needs to compare two runs."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}; {now}"
    )


def text_table(report: Report) -> str:
    rows = [HEADERS, *(_cells(r) for r in report.rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _git(project_dir: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603  # nosec B603 B607 - our own fixed git arguments
        ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def code_version(project_dir: Path) -> str:
    """The commit measured, and whether the app's code differed from it (others' edits)."""
    try:
        commit = _git(project_dir, "rev-parse", "--short", "HEAD").strip()
        dirty = _git(project_dir, "status", "--porcelain", "--", "app.py", "chalicelib", "scripts")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if dirty.strip():
        changed = len(dirty.splitlines())
        return f"commit {commit} plus uncommitted changes to {changed} app file(s)"
    return f"commit {commit}, app code unmodified"


def load_average() -> float:
    """The 1-minute load average: above the core count, something else shared the box."""
    return os.getloadavg()[0]


def markdown(report: Report, elapsed: float, load: tuple[float, float], code: str) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    parts = [
        "# Gatehouse benchmark report",
        "",
        "Written by `make bench` (`python -m bench`); every ratio is against a baseline",
        "measured in the same run, interleaved with the subject.",
        "",
        f"Code: {code}.",
        "",
        f"Machine: {machine()}. Whole run: {elapsed:.0f} s; 1-minute load average "
        f"{load[0]:.2f} at the start, {load[1]:.2f} at the end (well above {os.cpu_count()} "
        f"means other work shared the cores: ratios hold up, absolute figures suffer).",
        "",
        line(HEADERS),
        line(tuple("---" for _ in HEADERS)),
        *(line(_cells(r)) for r in report.rows),
        "",
        *(f"{section}\n" for section in report.sections),
        "## How each figure was measured",
        "",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    return "\n".join(parts)

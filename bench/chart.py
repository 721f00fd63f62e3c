"""The latency chart: login and GET /protected against their floors, as ``bench/latency.png``.

Each panel plots the cumulative distribution of the subject's per-round latency beside
its baseline's, from the same interleaved rounds as the table's ratios: login against a
bare bcrypt verify at the same cost plus the same DynamoDB calls, GET /protected against
a bare Chalice route that verifies the same JWT and makes the same GetItem. The gap
between the two curves is what Gatehouse adds. matplotlib is imported here only, so only
the benchmark needs it (requirements-dev.txt).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.inprocess import LOGIN_BUDGET, PROTECTED_BUDGET
from bench.report import Report

#: (operation, panel title, the floor's label, the budget as a ratio to the floor).
PANELS = (
    ("login", "POST /login", "floor: bcrypt verify + its DynamoDB calls", LOGIN_BUDGET),
    ("protected", "GET /protected", "floor: bare route, JWT verify + 1 GetItem", PROTECTED_BUDGET),
)
#: The x axis ends at this quantile of both sides, so one stalled round cannot squash
#: the rest into a corner.
SHOWN_QUANTILE = 0.99


def draw(report: Report, path: Path) -> None:
    """Write the two-panel PNG to ``path``."""
    import matplotlib  # noqa: PLC0415 - bench only

    matplotlib.use("Agg")  # no display: write files only
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, (key, title, floor, budget) in zip(axes, PANELS, strict=True):
        paired = report.measured[key].paired
        batch = "one request" if key == "login" else "mean of a round's requests"
        for samples, label, style in (
            (paired.subject, "Gatehouse", "-"),
            (paired.baseline, floor, "--"),
        ):
            ms = sorted(x * 1000 for x in samples)
            fractions = [(i + 1) / len(ms) for i in range(len(ms))]
            median = statistics.median(ms)
            axis.step(ms, fractions, style, where="post", label=f"{label} (median {median:.1f} ms)")
        both = sorted(x * 1000 for x in paired.subject + paired.baseline)
        axis.set_xlim(right=both[int((len(both) - 1) * SHOWN_QUANTILE)] * 1.02)
        axis.set_title(
            f"{title}: {paired.ratio:.2f}x its floor (budget {budget:.2f}x), "
            f"{len(paired.subject)} rounds",
            fontsize=10,
        )
        axis.set_xlabel(f"latency, ms ({batch})")
        axis.set_ylabel("fraction of rounds at or below")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def add(report: Report, path: Path) -> None:
    """Draw the chart and link it from the report."""
    draw(report, path)
    report.sections.append(
        "## Latency against the floors\n\n"
        f"![Login and GET /protected latency against their floors]({path.name})\n\n"
        "Cumulative distributions of the per-round latencies behind the table's first two "
        "ratios (bench/chart.py): each curve is one side of the same interleaved rounds; "
        f"the x axis stops at the {SHOWN_QUANTILE:.0%} quantile of both."
    )

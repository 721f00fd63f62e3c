"""Building table rows from measurements: one shape per kind of budget in DESIGN.md.

A ratio with a ceiling, a ratio that must stay inside a band around 1.0, a count of
round trips, and a ratio or a count of round trips with no budget at all, only reported.
"""

from __future__ import annotations

from bench.report import Row
from bench.roundtrips import Calls
from bench.stats import Paired


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _row(
    figure: str, paired: Paired, budget: str, passed: bool | None, ratio: float | None = None
) -> Row:
    return Row(
        figure=figure,
        measured=ms(paired.subject_median),
        baseline=ms(paired.baseline_median),
        ratio=f"{paired.ratio if ratio is None else ratio:.2f}x",
        budget=budget,
        passed=passed,
    )


def ratio_row(figure: str, paired: Paired, budget: float) -> Row:
    """The subject may cost at most ``budget`` times the baseline."""
    return _row(figure, paired, f"<= {budget:.2f}x", paired.ratio <= budget)


def band_row(figure: str, paired: Paired, low: float, high: float) -> Row:
    """The subject must cost about what the baseline does: neither less nor more.

    Judged on the paired ratio (the median of per-round ratios), which a busy box moves
    least; the columns still show each side's median time.
    """
    ratio = paired.paired_ratio
    return _row(figure, paired, f"{low:.2f}x-{high:.2f}x", low <= ratio <= high, ratio)


def reported_row(figure: str, paired: Paired, ratio: float | None = None) -> Row:
    """A ratio DESIGN.md sets no budget for: shown, never a pass or a failure.

    ``ratio`` replaces the ratio of medians, for a row read beside ``band_row``s.
    """
    return _row(figure, paired, "report", None, ratio)


def calls_row(figure: str, calls: Calls, budget: int) -> Row:
    sends = "" if calls.sends == calls.count else f" ({calls.sends} HTTP sends)"
    return Row(
        figure=figure,
        measured=f"{calls.count}{sends}",
        baseline="-",
        ratio="-",
        budget=f"<= {budget}",
        passed=calls.count <= budget,
    )


def calls_report_row(figure: str, *steps: Calls) -> Row:
    """Round trips of the requests of one flow, in order ("2 + 5"): no budget, reported."""
    sends = " + ".join(str(step.sends) for step in steps)
    counts = " + ".join(str(step.count) for step in steps)
    retried = "" if all(step.sends == step.count for step in steps) else f" ({sends} HTTP sends)"
    return Row(
        figure=figure,
        measured=f"{counts}{retried}",
        baseline="-",
        ratio="-",
        budget="report",
        passed=None,
    )

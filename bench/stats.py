"""Interleaved timing and the medians every figure is built from.

Subject and baseline alternate round by round (and swap order each round), so drift in
CPU frequency, DynamoDB Local's JIT or GC, or a neighbour's load lands on both sides.
A round times a batch of calls so that timer resolution never matters.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Paired:
    """Per-call seconds of each round, for subject and baseline, in the order measured.

    Wall time is the figure (what a caller waits, DynamoDB Local's answer included);
    this process's CPU time is kept beside it because it excludes that wait and so
    shows the app's own work with much less noise.
    """

    subject: list[float]
    baseline: list[float]
    subject_cpu: list[float]
    baseline_cpu: list[float]

    @property
    def subject_median(self) -> float:
        return statistics.median(self.subject)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)

    @property
    def ratio(self) -> float:
        """The reported figure: the ratio of the two medians."""
        return self.subject_median / self.baseline_median

    @property
    def round_ratios(self) -> list[float]:
        """Each round's own ratio; their spread says how noisy the run was."""
        return sorted(s / b for s, b in zip(self.subject, self.baseline, strict=True))

    @property
    def paired_ratio(self) -> float:
        """The median of the per-round ratios.

        Each round's sides ran next to each other, so a neighbour's load that comes and
        goes over seconds lands on both and cancels within the round; the ratio of the
        two medians only cancels it on average. On a busy box the paired figure is the
        steadier of the two, which matters for a budget that is a band around 1.0.
        """
        return statistics.median(self.round_ratios)

    @property
    def minimum_ratio(self) -> float:
        """The ratio of the fastest calls: the least-disturbed cost of each side."""
        return min(self.subject) / min(self.baseline)

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(self.subject_cpu) / statistics.median(self.baseline_cpu)

    def spread(self) -> str:
        """Per-round ratios and the CPU view, for the report's notes."""
        ratios = self.round_ratios
        subject_cpu = statistics.median(self.subject_cpu) * 1000
        baseline_cpu = statistics.median(self.baseline_cpu) * 1000
        return (
            f"per-round wall ratio min {ratios[0]:.2f}, median {statistics.median(ratios):.2f}, "
            f"max {ratios[-1]:.2f} over {len(ratios)} rounds; CPU time in this process per "
            f"call {subject_cpu:.2f} ms vs {baseline_cpu:.2f} ms ({self.cpu_ratio:.2f}x)"
        )


def interleave(
    subject: Callable[[], object],
    baseline: Callable[[], object],
    *,
    rounds: int,
    batch: int,
    warmup: int = 3,
) -> Paired:
    """Time ``batch`` calls of each side per round, alternating which side goes first."""
    (subject_wall, subject_cpu), (baseline_wall, baseline_cpu) = interleave_sides(
        [subject, baseline], rounds=rounds, batch=batch, warmup=warmup
    )
    return Paired(subject_wall, baseline_wall, subject_cpu, baseline_cpu)


#: Per-round (wall, CPU) seconds per call of one side.
Side = tuple[list[float], list[float]]


def interleave_sides(
    calls: Sequence[Callable[[], object]], *, rounds: int, batch: int, warmup: int = 3
) -> list[Side]:
    """Any number of sides, timed in turn each round.

    Two sides simply swap order each round. With more, the order also rotates by one
    every other round, so over ``2 * len(calls)`` rounds every side takes every place
    equally often (all six orders of three): none always runs right after another
    side's connection churn or garbage.
    """
    for _ in range(warmup):
        for call in calls:
            call()
    sides: list[Side] = [([], []) for _ in calls]
    indices = list(range(len(calls)))
    for index in range(rounds):
        shift = (index // 2) % len(calls) if len(calls) > 2 else 0
        order = indices[shift:] + indices[:shift]
        for position in order if index % 2 == 0 else reversed(order):
            wall_seconds, cpu_seconds = _time_batch(calls[position], batch)
            sides[position][0].append(wall_seconds)
            sides[position][1].append(cpu_seconds)
    return sides


def pair(subject: Side, baseline: Side) -> Paired:
    """Two of ``interleave_sides``' sides as a subject/baseline pair (same rounds)."""
    return Paired(subject[0], baseline[0], subject[1], baseline[1])


def _time_batch(call: Callable[[], object], batch: int) -> tuple[float, float]:
    """Mean (wall, process CPU) seconds per call over one batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batch):
        call()
    return (time.perf_counter() - wall) / batch, (time.process_time() - cpu) / batch

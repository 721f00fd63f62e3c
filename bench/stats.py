"""Interleaved timing and the medians every figure is built from.

Subject and baseline alternate round by round (and swap order each round), so drift in
CPU frequency, DynamoDB Local's JIT or GC, or a neighbour's load lands on both sides.
A round times a batch of calls so that timer resolution never matters.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
    for _ in range(warmup):
        subject()
        baseline()
    subject_side: tuple[list[float], list[float]] = ([], [])
    baseline_side: tuple[list[float], list[float]] = ([], [])
    sides = ((subject, subject_side), (baseline, baseline_side))
    for index in range(rounds):
        for call, (wall, cpu) in sides if index % 2 == 0 else reversed(sides):
            wall_seconds, cpu_seconds = _time_batch(call, batch)
            wall.append(wall_seconds)
            cpu.append(cpu_seconds)
    return Paired(subject_side[0], baseline_side[0], subject_side[1], baseline_side[1])


def _time_batch(call: Callable[[], object], batch: int) -> tuple[float, float]:
    """Mean (wall, process CPU) seconds per call over one batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batch):
        call()
    return (time.perf_counter() - wall) / batch, (time.process_time() - cpu) / batch

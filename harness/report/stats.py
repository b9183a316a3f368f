"""Per scenario and variant: medians with their min-max over every saga of every run.

Nothing is pooled across scenarios: 20 racing sagas say nothing about a happy path.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.report.axis import ms_label
from harness.report.traces import SagaMetrics


@dataclass(frozen=True)
class Spread:
    """The median of ``n`` samples with the smallest and the largest."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread | None:
        samples = sorted(values)
        if not samples:
            return None
        return cls(statistics.median(samples), samples[0], samples[-1], len(samples))

    def label(self, unit: str = " ms") -> str:
        """``145 ms (99-170)``: the median, then min-max when the samples differ."""
        text = f"{ms_label(self.median)}{unit}"
        if self.low != self.high:
            text += f" ({ms_label(self.low)}-{ms_label(self.high)})"
        return text

    def count_label(self) -> str:
        """A count's median with its range, without a unit: ``21 (19-23)``."""
        text = f"{self.median:g}"
        return text + (f" ({self.low:g}-{self.high:g})" if self.low != self.high else "")


@dataclass(frozen=True)
class VariantStats:
    """One variant's numbers for one scenario, over all its sagas in all runs."""

    scenario: str
    variant: str
    runs: int
    sagas_per_run: int
    latency: Spread
    quiescence: Spread
    tail: Spread
    work: Spread
    queue: Spread
    coordination: Spread
    spans: Spread
    messages: Spread
    retries_per_run: Spread

    @property
    def samples(self) -> str:
        """``1 saga x 3 runs``."""
        sagas = "saga" if self.sagas_per_run == 1 else "sagas"
        runs = "run" if self.runs == 1 else "runs"
        return f"{self.sagas_per_run} {sagas} x {self.runs} {runs}"


def scenario_stats(metrics: list[SagaMetrics]) -> dict[str, dict[str, VariantStats]]:
    """``{scenario: {variant: stats}}`` in the order scenarios first appear."""
    grouped: dict[str, dict[str, list[SagaMetrics]]] = defaultdict(lambda: defaultdict(list))
    for m in metrics:
        grouped[m.scenario][m.variant].append(m)
    return {
        scenario: {variant: _stats(items) for variant, items in by_variant.items()}
        for scenario, by_variant in grouped.items()
    }


def _stats(items: list[SagaMetrics]) -> VariantStats:
    per_run: dict[int, list[SagaMetrics]] = defaultdict(list)
    for m in items:
        per_run[m.repeat].append(m)

    def spread(value: Callable[[SagaMetrics], float]) -> Spread:
        found = Spread.of(value(m) for m in items)
        assert found is not None  # a scenario's group is never empty
        return found

    retries = Spread.of(sum(m.retries for m in run) for run in per_run.values())
    assert retries is not None
    return VariantStats(
        scenario=items[0].scenario,
        variant=items[0].variant,
        runs=len(per_run),
        sagas_per_run=max(len(run) for run in per_run.values()),
        latency=spread(lambda m: m.e2e_ms),
        quiescence=spread(lambda m: m.quiescence_ms),
        tail=spread(lambda m: m.tail_ms),
        work=spread(lambda m: m.work_ms),
        queue=spread(lambda m: m.queue_ms),
        coordination=spread(lambda m: m.coordination_ms),
        spans=spread(lambda m: m.spans),
        messages=spread(lambda m: m.messages),
        retries_per_run=retries,
    )


def median_saga(items: list[SagaMetrics]) -> SagaMetrics:
    """The saga whose latency is the median (the lower one of an even count)."""
    ordered = sorted(items, key=lambda m: m.e2e_ms)
    return ordered[(len(ordered) - 1) // 2]


def median_run(items: list[SagaMetrics]) -> int:
    """The run whose slowest saga is the median among runs: the one the report draws."""
    slowest: dict[int, float] = defaultdict(float)
    for m in items:
        slowest[m.repeat] = max(slowest[m.repeat], m.e2e_ms)
    ordered = sorted(slowest, key=lambda repeat: (slowest[repeat], repeat))
    return ordered[(len(ordered) - 1) // 2]

"""Time axes for the report's charts: round tick steps, labels in ms or s, linear or log."""

from __future__ import annotations

import math
from dataclasses import dataclass

STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class LinearAxis:
    """``0 .. top`` milliseconds drawn over ``width`` pixels; ``top`` is the last tick."""

    top: float
    step: float
    width: float

    @classmethod
    def covering(cls, longest_ms: float, width: float, ticks: int = 6) -> LinearAxis:
        """The shortest axis with round ticks that holds ``longest_ms``."""
        longest = max(longest_ms, 1.0)
        step = nice_step(longest / ticks)
        return cls(top=math.ceil(longest / step - 1e-9) * step, step=step, width=width)

    def x(self, ms: float) -> float:
        return max(0.0, min(ms, self.top)) * self.width / self.top

    def ticks(self) -> list[Tick]:
        count = round(self.top / self.step)
        return [Tick(self.x(i * self.step), time_label(i * self.step)) for i in range(count + 1)]


@dataclass(frozen=True)
class LogAxis:
    """Decades from ``low`` to ``high`` milliseconds over ``width`` pixels."""

    low: float
    high: float
    width: float

    @classmethod
    def covering(cls, smallest_ms: float, largest_ms: float, width: float) -> LogAxis:
        low = 10.0 ** math.floor(math.log10(max(smallest_ms, 0.1)))
        high = 10.0 ** math.ceil(math.log10(max(largest_ms, low * 10)))
        return cls(low=low, high=max(high, low * 10), width=width)

    def x(self, ms: float) -> float:
        value = max(self.low, min(ms, self.high))
        return self.width * math.log10(value / self.low) / math.log10(self.high / self.low)

    def ticks(self) -> list[Tick]:
        decades = round(math.log10(self.high / self.low))
        values = [self.low * 10**i for i in range(decades + 1)]
        return [Tick(self.x(v), time_label(v)) for v in values]


def nice_step(raw: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``raw``."""
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in STEPS if m * magnitude >= raw - 1e-12)


def time_label(ms: float) -> str:
    """``250 ms``, ``1.5 s``; whole numbers without decimals."""
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def ms_label(ms: float) -> str:
    """A duration for a table: one decimal under 10 ms, whole milliseconds above, 0 for none."""
    if ms == 0:
        return "0"
    return f"{ms:.1f}" if ms < 10 else f"{ms:,.0f}"

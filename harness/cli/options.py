"""The command line's shared options, and upper bounds for every count a user types.

A count without a ceiling is a foot-gun: `bench --orders 1000000000000` would run for years.
`Bound.option` builds a typer option whose range typer checks before the command starts, so
an out-of-range value is a usage error (exit 2, one line), and its help shows the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.variants import VARIANTS
from shared.settings import StoreKind


@dataclass(frozen=True)
class Bound:
    """The sane range of a count option: ``low <= value <= high``."""

    low: int
    high: int

    def option(self, *names: str, help: str) -> Any:
        """A typer option for this range, e.g. ``Annotated[int, ORDERS.option("--orders")]``."""
        return typer.Option(*names, min=self.low, max=self.high, help=help)


ORDERS = Bound(1, 10_000)
"""Sagas per benchmark run: 10,000 already takes minutes per variant on a laptop."""
CONCURRENCY = Bound(1, 1_000)
"""Sagas in flight at once: beyond this the bench measures the machine's file handles."""
REPEAT = Bound(1, 20)
"""Times the catalogue runs in one demo."""
PORT = Bound(0, 65_535)
"""A TCP port; 0 asks the system for a free one."""
TIMEOUT_S = Bound(1, 3_600)
"""Seconds a saga may take: past an hour it is stuck, whatever the fault plan says."""
DURATION_S = Bound(1, 3_600)
"""Seconds each rate of an open-model run lasts: an hour is a long endurance run."""
DEADLINE_S = Bound(1, 600)
"""Seconds after its scheduled start within which a benchmark saga counts as in time."""
P95_BOUND_MS = Bound(1, 600_000)
"""The p95 a swept rate must stay under to hold."""
MAX_RATE = 1_000.0
"""Sagas per second an open-model run may offer."""
RATES = 20
"""Rates one sweep may list."""
RATE_HINT = "'--rate'"
OPEN_SAGAS = 200_000
"""Sagas one open-model run may start (rate x duration)."""


class Variant(StrEnum):
    orchestration = "orchestration"
    choreography = "choreography"
    both = "both"

    @property
    def names(self) -> list[str]:
        return list(VARIANTS) if self is Variant.both else [self.value]


VariantOpt = Annotated[Variant, typer.Option("--variant", "-v", help="Which style to run.")]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON document on stdout instead.")
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=TIMEOUT_S.low,
        max=TIMEOUT_S.high,
        help="Seconds a saga may take before it counts as stuck.",
    ),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option(
        "--report-dir",
        help="Folder for report.html, report.md, results.json, traces.jsonl and the log "
        "(created if missing).",
    ),
]

StoreOpt = Annotated[
    StoreKind | None,
    typer.Option(
        "--store",
        help="Where the services keep their data: sqlite files (default) or postgres "
        "(SAGA_POSTGRES_URL, or an embedded server). Overrides SAGA_STORE.",
    ),
]


def parse_rates(text: str | None) -> tuple[float, ...]:
    """``--rate 5,10,20`` as rates (sagas/s), each above 0 and at most MAX_RATE, distinct.

    A bad list is a usage error naming the offending item (typer prints it on one line).
    """
    if text is None:
        return ()
    rates: list[float] = []
    for item in text.split(","):
        try:
            rate = float(item.strip())
        except ValueError:
            message = f"{item.strip()!r} is not a number of sagas per second"
            raise typer.BadParameter(message, param_hint=RATE_HINT) from None
        if not 0 < rate <= MAX_RATE or rate != rate:
            message = f"{item.strip()} is not in (0, {MAX_RATE:g}] sagas per second"
            raise typer.BadParameter(message, param_hint=RATE_HINT)
        rates.append(rate)
    if len(rates) > RATES:
        message = f"{len(rates)} rates given; a sweep takes at most {RATES}"
        raise typer.BadParameter(message, param_hint=RATE_HINT)
    if len(set(rates)) != len(rates):
        message = "a rate appears twice; list each rate once"
        raise typer.BadParameter(message, param_hint=RATE_HINT)
    return tuple(sorted(rates))


AttachOpt = Annotated[
    Path | None,
    typer.Option(
        "--attach",
        metavar="[STATE_DIR]",
        help="Drive the deployment `saga-compare up` runs there (alone: SAGA_STATE_DIR, or "
        ".state) from the front door: start sagas and observe them, start nothing.",
    ),
]

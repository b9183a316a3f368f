"""Where a process's CPU goes, by category, from py-spy's raw (collapsed) stacks.

A sample is one thread's stack at one instant (``frame;frame;... count``). Samples whose
innermost frame is a thread waiting (a pool's queue, a selector, a condition) are idle and
dropped. The rest are put in one category: the exporter's thread is span export; any other
sample goes by its innermost frame that belongs to a known module (a span made inside a store
transaction is tracing's cost; the SQL statement around it is the store's). Categories hold
CPU shares, which stay meaningful on a busy machine; a share of the process's measured CPU per
saga gives milliseconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "select (selectors.py",
    "EpollSelector.select",
)
"""Innermost frames of a thread that is waiting, not working."""

SPAN_EXPORT = "span export (encode, write)"
SPAN_CREATION = "span creation, attributes, context"
EXPORTING = ("BatchProcessor.worker", "trace_files.py", "exporter/otlp", "span_export")
"""The exporter's thread does nothing else: a sample with any of these frames is export."""

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        SPAN_CREATION,
        (
            "opentelemetry/",
            "shared/telemetry.py",
            "shared/propagation.py",
            "process_span (",
            "send_span (",
            "published_headers (",
            "ServerAttributes.",
            "message_attributes (",
            "server_attributes (",
        ),
    ),
    ("SQLite (statements, commits)", ("sqlite3", "shared/store/sqlite")),
    ("Postgres (asyncpg)", ("asyncpg/", "shared/store/postgres", "shared/store/bridge.py")),
    ("thread hand-offs", ("concurrent/futures", "threading.py", "run_in_executor")),
    ("NATS client", ("nats/",)),
    ("serialization (pydantic, json)", ("pydantic", "json/", "google/protobuf")),
    ("Temporal SDK (workflow sandbox, worker)", ("temporalio/",)),
    ("asyncio event loop", ("asyncio/", "selectors.py", "contextvars")),
    ("psutil (the bench's sampler)", ("psutil/",)),
    ("our code", ("choreography/", "orchestration/", "shared/", "harness/")),
)
"""A sample's category is that of its innermost frame matching one (first pattern wins in a
frame): a wrapper on the stack (a tracing interceptor around a whole activity) does not claim
the work done inside it."""
OTHER = "other"


@dataclass(frozen=True)
class Profile:
    """Samples per category, and the total of working (non-idle) samples."""

    by_category: dict[str, int]
    working: int
    idle: int

    def share(self, category: str) -> float:
        return self.by_category.get(category, 0) / self.working if self.working else 0.0

    def rows(self) -> list[tuple[str, int]]:
        return sorted(self.by_category.items(), key=lambda item: -item[1])


def categorize(stack: str) -> str:
    """The category of one sample's stack (frames joined by ``;``, outermost first)."""
    if any(pattern in stack for pattern in EXPORTING):
        return SPAN_EXPORT
    for frame in reversed(stack.split(";")):
        for category, patterns in CATEGORIES:
            if any(pattern in frame for pattern in patterns):
                return category
    return OTHER


def idle(stack: str) -> bool:
    leaf = stack.rsplit(";", 1)[-1]
    return any(pattern in leaf for pattern in IDLE_LEAVES)


def read_profile(lines: Iterable[str]) -> Profile:
    """Parse py-spy's raw output (``--format raw``) into categories."""
    counts: Counter[str] = Counter()
    idle_samples = 0
    for line in lines:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit():
            continue
        if idle(stack):
            idle_samples += int(number)
            continue
        counts[categorize(stack)] += int(number)
    return Profile(dict(counts), sum(counts.values()), idle_samples)


def markdown(profile: Profile, cpu_ms_per_saga: float) -> str:
    """A table: category, share of the working samples, and that share of the CPU per saga
    the process was measured to use (samples of threads waiting for the GIL count as working
    for py-spy, so shares, not sample counts, are what to trust)."""
    lines = ["| where the CPU goes | share | CPU ms/saga |", "|---|---|---|"]
    for category, _ in profile.rows():
        share = profile.share(category)
        lines.append(f"| {category} | {share:.1%} | {share * cpu_ms_per_saga:.2f} |")
    lines.append(f"| **total (measured)** | 100% | {cpu_ms_per_saga:.2f} |")
    return "\n".join(lines) + "\n"

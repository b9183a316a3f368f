"""Reading py-spy's stacks: idle waits dropped, tracing wherever it is, the rest by leaf."""

from __future__ import annotations

from harness.bench.profile import SPAN_CREATION, SPAN_EXPORT, categorize, markdown, read_profile

LOOP = "run (asyncio/runners.py:190);Handle._run (asyncio/events.py:80)"
STORE = "Thread.run (threading.py:982);SqliteStore._write (shared/store/sqlite.py:175)"
SDK = "Span.__init__ (opentelemetry/sdk/trace/__init__.py:800)"
EXPORT = "BatchProcessor.worker (opentelemetry/sdk/_shared_internal/__init__.py:162)"
RAW = [
    f"{LOOP};LaneConsumer._handle (choreography/bus.py:502);{SDK} 30\n",
    f"{STORE};add (choreography/outbox.py:74);inject (shared/propagation.py:66) 10\n",
    f"{STORE};SqliteTx.execute (shared/store/sqlite.py:69) 25\n",
    f"Thread.run (threading.py:982);{EXPORT};encode_line (shared/trace_files.py:60) 15\n",
    f"{LOOP};Msg.ack (nats/aio/msg.py:90) 20\n",
    "Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 500\n",
    "not a stack line\n",
]


def test_trace_context_written_inside_a_store_transaction_counts_as_tracing_not_the_store() -> None:
    assert categorize(RAW[1].rsplit(" ", 1)[0]) == SPAN_CREATION
    assert categorize(RAW[2].rsplit(" ", 1)[0]).startswith("SQLite")


def test_idle_waits_are_dropped_and_shares_add_up() -> None:
    profile = read_profile(RAW)

    assert (profile.working, profile.idle) == (100, 500)
    assert profile.by_category[SPAN_CREATION] == 40
    assert profile.by_category[SPAN_EXPORT] == 15
    assert profile.by_category["NATS client"] == 20
    assert sum(profile.share(c) for c in profile.by_category) == 1.0


def test_the_table_spreads_the_measured_cpu_by_share() -> None:
    table = markdown(read_profile(RAW), cpu_ms_per_saga=10.0)

    assert "| span creation, attributes, context | 40.0% | 4.00 |" in table
    assert table.rstrip().endswith("| **total (measured)** | 100% | 10.00 |")

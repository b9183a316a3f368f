"""The calibration table against real servers: every engine operation measured, positive."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench.calibration import LABELS, Sizes, calibrate
from shared.postgres_server import EmbeddedPostgres
from shared.settings import Settings, StoreKind

SMALL = Sizes(messages=100, transactions=50, postgres_transactions=20, workflows=4,
              activity_workflows=2, warmup=1)  # fmt: skip
"""Enough of each that the servers' CPU counters (10 ms ticks) see the batch."""


async def test_a_sqlite_run_calibrates_nats_sqlite_and_temporal_on_servers_of_its_own(
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "bench"  # not made yet, as a review's bench scratch is not
    found = await calibrate(Settings(store=StoreKind.SQLITE), sizes=SMALL, scratch=scratch)

    keys = [op.key for op in found.operations]
    assert keys == [key for key in LABELS if key != "postgres_tx"]
    assert set(found.skipped) == {"postgres_tx"}
    derived = {"activity_remote", "activity_local"}  # workflows with activities less empty ones
    for op in found.operations:
        assert op.count > 0 and op.label == LABELS[op.key], op
        # A difference of two timings may come out 0 (clipped) on a busy machine; a direct
        # timing may not.
        assert op.wall_ms >= 0 if op.key in derived else op.wall_ms > 0, op
    by_key = {op.key: op for op in found.operations}
    # Every operation that reaches a server shows in that server's CPU or in ours.
    assert by_key["nats_publish"].cpu_ms_total > 0
    assert by_key["workflow"].cpu_ms.get("server", 0) > 0
    assert by_key["activity_remote"].wall_ms > by_key["activity_local"].wall_ms
    assert 0 < found.seconds < 120
    assert list(scratch.iterdir()) == []  # its servers' folder removed after


@pytest.mark.slow
async def test_a_postgres_run_calibrates_a_postgres_transaction_on_its_server(
    postgres_server: EmbeddedPostgres,
) -> None:
    settings = Settings(store=StoreKind.POSTGRES, postgres_url=postgres_server.url)

    found = await calibrate(settings, sizes=SMALL)

    (postgres,) = [op for op in found.operations if op.key == "postgres_tx"]
    assert found.skipped == {}
    assert postgres.count == SMALL.postgres_transactions
    assert postgres.wall_ms > 0 and postgres.cpu_ms_total > 0

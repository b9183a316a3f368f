"""Cold start in a fresh interpreter, on the store a user picks."""

from __future__ import annotations

import pytest

from harness.bench.cold import cold_start

pytestmark = pytest.mark.slow  # a new interpreter and an embedded Postgres


async def test_a_cold_start_on_the_embedded_postgres_reaches_its_first_saga() -> None:
    # As root the embedded Postgres runs as its own system user, which must be able to reach
    # its state folder inside the cold start's scratch folder.
    timings = await cold_start("choreography", None, "postgres")

    assert 0 < timings["imports_s"] <= timings["ready_s"] <= timings["first_saga_s"]

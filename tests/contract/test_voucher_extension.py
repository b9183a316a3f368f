"""A compensatable step with business state of its own, added by a definition and one module.

The ``voucher`` definition (shared/definitions.py) is the order saga plus `apply_voucher`
before the pivot, run by the voucher service (shared/services/voucher.py): its own table,
migration, compensation (`revoke_voucher`), failure reason (``no_voucher``) and conservation
invariant. Neither variant's code knows it. Each style, each store: the happy path redeems a
voucher; a failed shipment gives it back; a customer without vouchers is refused with the
step's own reason; and the invariants, the voucher's own among them, hold.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from harness.compare.faulty import Faulty, injected
from harness.compare.runner import run_scenario
from harness.compare.scenarios import ANTARCTICA, FAST, SagaCase, Scenario, order
from shared.contracts import OrderRequest, Phase, SagaOutcome, SagaStatus, StepStatus
from shared.definitions import definition_named
from shared.faults import FaultPlan
from shared.postgres_server import EmbeddedPostgres
from shared.runtime import SagaRuntime
from shared.seed import seed
from shared.services import voucher
from shared.store import StoreFactory, sqlite_stores
from shared.store.postgres import postgres_stores

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

VOUCHER = definition_named("voucher")
CONFIGS = (("orchestration", "remote"), ("orchestration", "local"), ("choreography", None))


async def _stores(backend: str, server: EmbeddedPostgres, data_dir: Path) -> StoreFactory:
    if backend == "sqlite":
        return sqlite_stores(data_dir)
    return postgres_stores(await server.create_database(f"voucher_{uuid.uuid4().hex[:12]}"))


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[(v, a, b) for v, a in CONFIGS for b in ("sqlite", "postgres")],
    ids=lambda p: "-".join(part for part in p if part),
)
async def runtime(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: EmbeddedPostgres,
) -> AsyncIterator[Faulty[SagaRuntime]]:
    variant, activities, backend = request.param
    module = importlib.import_module(f"{variant}.runtime")
    data_dir: Path = tmp_path_factory.mktemp(f"voucher-{variant}-{backend}")
    stores = await _stores(backend, postgres_server, data_dir)
    options = {"activities": activities} if activities else {}
    plans, hooks = injected(variant)
    async with module.open_runtime(
        data_dir, VOUCHER, stores=stores, hooks=hooks, **options
    ) as started:
        await seed(started.domain)
        yield Faulty(started, plans)


async def vouchers_of(runtime: Faulty[SagaRuntime], customer: str) -> int:
    return (await runtime.domain.snapshot()).extra["vouchers"][customer]


async def run(runtime: Faulty[SagaRuntime], placed: OrderRequest) -> SagaOutcome:
    saga_id = placed.order_id
    await runtime.start_saga(saga_id, placed, FaultPlan(), FAST)
    return await runtime.wait(saga_id, 30)


def statuses(outcome: SagaOutcome, phase: Phase) -> dict[str, StepStatus]:
    return {str(s.step): s.status for s in outcome.steps if s.phase is phase}


async def test_the_added_step_redeems_a_voucher_on_the_happy_path(
    runtime: Faulty[SagaRuntime],
) -> None:
    before = await vouchers_of(runtime, "alice")

    outcome = await run(runtime, order(f"v-happy-{uuid.uuid4().hex[:6]}", points=100))

    assert outcome.status is SagaStatus.COMPLETED
    assert statuses(outcome, Phase.FORWARD)[voucher.APPLY] is StepStatus.DONE
    assert await vouchers_of(runtime, "alice") == before - 1


async def test_a_failed_shipment_gives_the_voucher_back_through_its_compensation(
    runtime: Faulty[SagaRuntime],
) -> None:
    before = await vouchers_of(runtime, "bob")
    placed = order(f"v-undo-{uuid.uuid4().hex[:6]}", customer="bob", address=ANTARCTICA)

    outcome = await run(runtime, placed)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, "shipment_failed")
    assert statuses(outcome, Phase.COMPENSATE)[voucher.REVOKE] is StepStatus.DONE
    assert await vouchers_of(runtime, "bob") == before


async def test_a_customer_without_vouchers_is_refused_with_the_steps_own_reason(
    runtime: Faulty[SagaRuntime],
) -> None:
    """One voucher more than the customer holds, all at once: which saga loses is a race, so
    the counts are checked, and every invariant (the voucher's own too) over the run."""
    orders = [order(f"v-carol-{n}", customer="carol") for n in range(voucher.PER_CUSTOMER + 1)]
    scenario = Scenario(
        "vouchers_run_out",
        "A customer orders once more than she has vouchers",
        "The added step refuses with its own reason; its compensation chain runs as any other.",
        tuple(SagaCase(placed) for placed in orders),
        expected_counts={SagaStatus.COMPLETED: voucher.PER_CUSTOMER, SagaStatus.COMPENSATED: 1},
    )

    run = await run_scenario(runtime, scenario)

    refused = [r.outcome for r in run.sagas if r.outcome.status is SagaStatus.COMPENSATED]
    assert [(o.reason, o.failed_step) for o in refused] == [(voucher.NO_VOUCHER, voucher.APPLY)]
    assert run.state.extra["vouchers"] == {"alice": 3, "bob": 3, "carol": 0}
    assert run.invariants == dict.fromkeys(run.invariants, True)
    assert "vouchers_conserved" in run.invariants

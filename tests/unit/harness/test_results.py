"""results.json as a model: rows per saga and run, checks and comparisons per run, versions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.compare.conditions import SOURCE, gather
from harness.compare.results import (
    FlowDrift,
    Results,
    document,
    exit_code,
    latency_medians,
    load_results,
    save_results,
    with_drift,
)
from harness.compare.runner import SagaRun, ScenarioRun
from harness.compare.scenarios import get
from shared.contracts import BusinessState, OrderRecord, Reason, SagaOutcome, SagaStatus
from shared.definitions import ORDERS_V1
from shared.seed import DEFAULT_SEED

OUT_OF_STOCK = get("out_of_stock")
DEFAULT_SEED_STOCK = {p: product.stock for p, product in DEFAULT_SEED.products.items()}


def untouched_state(status: SagaStatus, reason: Reason | None) -> BusinessState:
    """What an out-of-stock saga leaves behind: the seed, and its order record."""
    (case,) = OUT_OF_STOCK.sagas
    return BusinessState(
        stock=DEFAULT_SEED_STOCK,
        reserved={},
        charges=[],
        points=dict(DEFAULT_SEED.points),
        shipments=[],
        orders=[
            OrderRecord(
                saga_id="s",
                order_id=case.order.order_id,
                total_cents=case.order.total_cents,
                status=status,
                reason=reason,
            )
        ],
    )


def run(
    variant: str,
    repeat: int,
    ms: float,
    status: SagaStatus = SagaStatus.COMPENSATED,
    reason: Reason | None = Reason.OUT_OF_STOCK,
) -> ScenarioRun:
    (case,) = OUT_OF_STOCK.sagas
    outcome = SagaOutcome(saga_id="s", order_id=case.order.order_id, status=status, reason=reason)
    saga = SagaRun(case, "s", outcome, "a" * 32, ms)
    state = untouched_state(status, reason)
    return ScenarioRun(OUT_OF_STOCK, variant, (saga,), state, ORDERS_V1, repeat)


def three_runs() -> list[ScenarioRun]:
    return [
        run(variant, repeat, ms)
        for repeat, times in enumerate([(90, 12), (150, 20), (110, 16)], start=1)
        for variant, ms in zip(("orchestration", "choreography"), times, strict=True)
    ]


def test_every_run_gets_its_rows_checks_and_comparison() -> None:
    results = document(three_runs())

    assert results.schema_version == 2
    assert results.repeats == 3
    assert [(r.repeat, r.variant) for r in results.results][:2] == [
        (1, "orchestration"),
        (1, "choreography"),
    ]
    assert len(results.runs) == 6
    assert [(c.repeat, c.differences) for c in results.comparisons] == [(1, []), (2, []), (3, [])]
    assert results.equivalent and results.expected_met and all(results.invariants.values())
    assert exit_code(results) == 0


def test_a_difference_in_one_run_fails_equivalence_and_is_named_by_run() -> None:
    runs = three_runs()
    runs[3] = run("choreography", 2, 20, SagaStatus.COMPLETED, None)

    results = document(runs)

    assert not results.equivalent
    assert not results.expected_met
    assert all(line.startswith("run 2: ") for line in results.differences["out_of_stock"])
    assert exit_code(results) == 1


def test_a_broken_invariant_in_any_run_fails_the_run() -> None:
    runs = three_runs()
    broken = untouched_state(SagaStatus.COMPENSATED, Reason.OUT_OF_STOCK).model_copy(
        update={"stock": {**DEFAULT_SEED_STOCK, "widget": 1}}
    )
    runs[4] = ScenarioRun(OUT_OF_STOCK, "orchestration", runs[4].sagas, broken, ORDERS_V1, 3)

    results = document(runs)

    assert results.invariants["stock_conserved"] is False
    assert exit_code(results) == 1


def test_results_json_round_trips_and_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    save_results(document(three_runs()), path)

    text = path.read_text()
    assert text.startswith('{\n  "schema_version": 2,')
    assert load_results(path) == document(three_runs())


def test_a_version_one_file_still_loads_as_one_run(tmp_path: Path) -> None:
    current = json.loads(document(three_runs()[:2]).model_dump_json())
    old = {
        "results": [{k: v for k, v in row.items() if k != "repeat"} for row in current["results"]],
        "equivalent": True,
        "invariants": current["invariants"],
        "differences": {"out_of_stock": []},
        "invariants_by_run": {"orchestration/out_of_stock": {"stock_conserved": True}},
        "expected_met": True,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))

    loaded = load_results(path)

    assert loaded is not None
    assert (loaded.schema_version, loaded.repeats) == (2, 1)
    assert loaded.runs[0].variant == "orchestration"
    assert loaded.differences == {"out_of_stock": []}


def test_a_file_that_is_not_results_is_a_one_line_value_error(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"schema_version": 2, "equivalent": "maybe"}')

    with pytest.raises(ValueError, match="is not a results file: ") as caught:
        load_results(path)
    assert "\n" not in str(caught.value)


def test_a_missing_results_file_is_no_results(tmp_path: Path) -> None:
    assert load_results(tmp_path / "results.json") is None


def test_latency_medians_are_per_scenario_and_variant_over_runs() -> None:
    assert latency_medians(three_runs()) == {
        ("out_of_stock", "orchestration"): 110,
        ("out_of_stock", "choreography"): 16,
    }


def test_exit_code_is_one_when_equivalence_an_invariant_or_an_expectation_fails() -> None:
    held = Results(equivalent=True, invariants={"a": True}, expected_met=True, results=[])
    assert exit_code(held) == 0
    assert exit_code(held.model_copy(update={"equivalent": False})) == 1
    assert exit_code(held.model_copy(update={"invariants": {"a": False}})) == 1
    assert exit_code(held.model_copy(update={"expected_met": False})) == 1


def test_a_saga_whose_flow_drifts_from_the_spec_fails_the_run() -> None:
    held = Results(equivalent=True, invariants={"a": True}, expected_met=True, results=[])
    drifting = FlowDrift(
        variant="choreography",
        scenario="happy_path",
        order_id="happy-1",
        findings=["extra trigger inventory -> points: inventory.reserved (of deduct_points)"],
    )

    assert exit_code(with_drift(held, 1, [])) == 0
    assert exit_code(with_drift(held, 1, [drifting])) == 1


def test_the_run_conditions_are_written_with_the_results_and_read_back(tmp_path: Path) -> None:
    conditions = gather(store="sqlite", definition="v1")
    results = document(three_runs(), conditions)

    save_results(results, tmp_path / "results.json")
    written = json.loads((tmp_path / "results.json").read_text())

    assert written["conditions"]["cores"] >= 1
    assert written["conditions"]["store"] == "sqlite"
    assert set(written["conditions"]["versions"]) >= {"python", "temporal", "nats-server"}
    assert load_results(tmp_path / "results.json") == results


def test_the_conditions_name_this_checkout_s_commit() -> None:
    head = subprocess.run(
        ["git", "-C", str(SOURCE), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()

    conditions = gather(store="postgres", definition="v1", activities="local")

    assert conditions.commit == head
    assert conditions.code.startswith(head[:7])
    assert "postgres store, local activities" in conditions.line()
    assert len(conditions.load_at_start) == 3

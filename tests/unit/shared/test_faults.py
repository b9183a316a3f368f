"""A FaultPlan is data: the same seed always yields the same faults on the same attempts."""

from __future__ import annotations

import pytest

from shared.contracts import Phase, StepName
from shared.definitions import ORDERS_V1
from shared.faults import CrashPoint, FaultPlan, FaultRule

SPEC = ORDERS_V1.spec
ALL_STEPS = (*SPEC.forward_steps, *SPEC.compensations)


def faults_of(plan: FaultPlan, saga_ids: list[str]) -> list[list[str]]:
    return [
        plan.decide(saga_id, step, attempt).kinds
        for saga_id in saga_ids
        for step in ALL_STEPS
        for attempt in (1, 2, 3)
    ]


def test_same_seed_yields_the_same_random_plan_and_the_same_faults() -> None:
    sagas = [f"s-{i}" for i in range(30)]
    first, second = FaultPlan.random(42, SPEC, rate=0.5), FaultPlan.random(42, SPEC, rate=0.5)
    assert first == second
    assert faults_of(first, sagas) == faults_of(second, sagas)
    assert any(faults_of(first, sagas))


def test_different_seeds_yield_different_plans() -> None:
    plans = {FaultPlan.random(seed, SPEC, rate=0.5).model_dump_json() for seed in range(10)}
    assert len(plans) > 1


def test_probabilistic_rules_replay_per_saga_and_vary_across_sagas() -> None:
    plan = FaultPlan(
        seed=9, rules=[FaultRule(step=StepName.CHARGE_PAYMENT, permanent=True, probability=0.5)]
    )
    fired = [plan.decide(f"s-{i}", StepName.CHARGE_PAYMENT, 1).permanent for i in range(200)]
    again = [plan.decide(f"s-{i}", StepName.CHARGE_PAYMENT, 1).permanent for i in range(200)]
    assert fired == again
    assert 50 < sum(fired) < 150


def test_transient_fails_exactly_the_first_n_attempts() -> None:
    plan = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, transient=2)])
    assert [plan.decide("s", StepName.CHARGE_PAYMENT, a).transient for a in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,
    ]
    assert not plan.decide("s", StepName.RESERVE_INVENTORY, 1).kinds


def test_duplicate_and_crash_hit_the_first_attempt_only() -> None:
    plan = FaultPlan(
        rules=[
            FaultRule(step=StepName.CREATE_SHIPMENT, duplicate=True, crash=CrashPoint.AFTER_COMMIT)
        ]
    )
    first = plan.decide("s", StepName.CREATE_SHIPMENT, 1)
    second = plan.decide("s", StepName.CREATE_SHIPMENT, 2)
    assert first.lose_ack and first.crash is CrashPoint.AFTER_COMMIT
    assert not second.lose_ack and second.crash is None


def test_compensate_phase_on_a_forward_name_targets_its_compensation() -> None:
    rule = FaultRule(step=StepName.CHARGE_PAYMENT, phase=Phase.COMPENSATE, transient=1)
    plan = FaultPlan(rules=[rule]).resolve(SPEC)
    assert plan.rules[0].step is StepName.REFUND_PAYMENT
    assert plan.rules[0].phase is Phase.COMPENSATE
    assert plan.decide("s", StepName.REFUND_PAYMENT, 1).transient
    assert not plan.decide("s", StepName.CHARGE_PAYMENT, 1).transient


def test_delays_add_up_and_hang_is_kept() -> None:
    plan = FaultPlan(
        rules=[
            FaultRule(step=StepName.DEDUCT_POINTS, delay_ms=100),
            FaultRule(step=StepName.DEDUCT_POINTS, delay_ms=50, hang=True),
        ]
    )
    action = plan.decide("s", StepName.DEDUCT_POINTS, 5)
    assert action.delay_s == pytest.approx(0.15)
    assert action.hang


def test_a_plan_round_trips_through_json() -> None:
    plan = FaultPlan.random(5, SPEC, rate=0.8)
    assert FaultPlan.model_validate_json(plan.model_dump_json()) == plan


def test_a_rule_for_a_step_the_spec_lacks_is_refused_naming_it() -> None:
    plan = FaultPlan(rules=[FaultRule(step="apply_voucher", permanent=True)])
    with pytest.raises(ValueError, match=r"faults.rules\[0\].step: unknown step 'apply_voucher'"):
        plan.resolve(SPEC)

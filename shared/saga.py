"""The order saga as data: steps in order, their services and compensations, the pivot."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import OrderRequest, Phase, Reason, ServiceName, StepName


@dataclass(frozen=True)
class StepSpec:
    """One forward step; ``compensation`` is None for steps after the pivot."""

    name: StepName
    service: ServiceName
    compensation: StepName | None
    failure_reason: Reason | None
    pivot: bool = False


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        StepName.RESERVE_INVENTORY,
        ServiceName.INVENTORY,
        StepName.RELEASE_INVENTORY,
        Reason.OUT_OF_STOCK,
    ),
    StepSpec(
        StepName.CHARGE_PAYMENT,
        ServiceName.PAYMENT,
        StepName.REFUND_PAYMENT,
        Reason.PAYMENT_DECLINED,
    ),
    StepSpec(
        StepName.DEDUCT_POINTS,
        ServiceName.POINTS,
        StepName.RESTORE_POINTS,
        Reason.INSUFFICIENT_POINTS,
    ),
    StepSpec(
        StepName.CREATE_SHIPMENT,
        ServiceName.SHIPPING,
        StepName.CANCEL_SHIPMENT,
        Reason.SHIPMENT_FAILED,
        pivot=True,
    ),
    StepSpec(StepName.COMPLETE_ORDER, ServiceName.ORDERS, None, None),
)

_BY_NAME = {spec.name: spec for spec in STEPS}
_BY_COMPENSATION = {spec.compensation: spec for spec in STEPS if spec.compensation}


def spec(step: StepName) -> StepSpec:
    """The forward step a name belongs to (a compensation name maps to its forward step)."""
    return _BY_NAME.get(step) or _BY_COMPENSATION[step]


def phase_of(step: StepName) -> Phase:
    return Phase.COMPENSATE if step in _BY_COMPENSATION else Phase.FORWARD


def compensation_of(step: StepName) -> StepName | None:
    return _BY_NAME[step].compensation


def forward_of(compensation: StepName) -> StepName:
    return _BY_COMPENSATION[compensation].name


def service_of(step: StepName) -> ServiceName:
    return spec(step).service


def applies(step: StepName, order: OrderRequest) -> bool:
    """Whether a forward step runs for this order: points are skipped when none are used."""
    return not (step is StepName.DEDUCT_POINTS and order.points_to_use == 0)


FORWARD_STEPS: tuple[StepName, ...] = tuple(s.name for s in STEPS)
COMPENSATIONS: tuple[StepName, ...] = tuple(s.compensation for s in STEPS if s.compensation)
PIVOT: StepName = next(s.name for s in STEPS if s.pivot)

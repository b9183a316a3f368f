"""The saga definitions this project ships, by name; ``SAGA_DEFINITION`` picks one per process.

``v1`` is the order saga (reserve inventory, charge payment, deduct points, create the shipment
— the pivot — and complete the order). ``v2`` is its next version, deployed while v1 sagas run
(docs/versioning.md): a fraud check before the payment (`shared/services/fraud.py`) and the
charge's amount reported as money (`shared/services/payment_v2.py`); it still understands v1's
workflows and events. ``voucher`` is the extension example: v1 plus a compensatable step
before the pivot with business state of its own (`shared/services/voucher.py`); adding it
touched this file and that module only (docs/domain.md). ``pessimistic`` is the order
saga reordered by the pessimistic view (docs/anomalies.md): the points deduction is the pivot.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from shared.contracts import StepName
from shared.definition import DefinitionRef, SagaDefinition
from shared.saga import SAGA, SagaSpec
from shared.services import SERVICES
from shared.validation import InvalidInput

ORDERS_V1 = SagaDefinition(
    name="orders", version="v1", spec=SAGA, services=SERVICES, title="the order saga"
)
"""The order saga, version 1: what every command runs unless the settings say otherwise."""


@cache
def _v2() -> SagaDefinition:
    from shared.saga import StepSpec
    from shared.services import fraud, payment_v2

    step = StepSpec(
        name=fraud.CHECK,
        service="fraud",
        done="cleared",
        compensation=fraud.VOID,
        compensated="voided",
        failure_reason=fraud.SUSPECTED,
    )
    return SagaDefinition(
        name="orders",
        version="v2",
        spec=SAGA.extended(step, after=StepName.RESERVE_INVENTORY),
        services={**SERVICES, "payment": payment_v2.SERVICE, "fraud": fraud.SERVICE},
        title="the order saga, version 2: a fraud check before the payment, the charge in money",
        earlier=(ORDERS_V1.ref,),
        release=2,
    )


@cache
def _voucher() -> SagaDefinition:
    from shared.saga import StepSpec
    from shared.services import voucher

    step = StepSpec(
        name="apply_voucher",
        service="voucher",
        done="applied",
        compensation="revoke_voucher",
        compensated="revoked",
        failure_reason="no_voucher",
    )
    return SagaDefinition(
        name="orders-voucher",
        version="v1",
        spec=SAGA.extended(step, after=StepName.CHARGE_PAYMENT),
        services={**SERVICES, "voucher": voucher.SERVICE},
        title="the order saga with a voucher redeemed before the shipment",
    )


@cache
def _pessimistic() -> SagaDefinition:
    """The pessimistic view of the points (Frank & Zahle 1998): the deduction moved to where
    nothing can give it back — it is the pivot, so no other saga ever reads a deduction that is
    later restored. The shipment follows it and, past the pivot, is retried, never compensated.
    Every order runs the deduction (zero points too): a pivot is never skipped."""
    from shared.saga import StepSpec

    steps = {step.name: step for step in SAGA.steps}
    deduct = steps[StepName.DEDUCT_POINTS].model_copy(update={"pivot": True, "skip_unless": None})
    ship = StepSpec(name=StepName.CREATE_SHIPMENT, service="shipping", done="created")
    reserve, charge, complete = (
        steps[StepName.RESERVE_INVENTORY],
        steps[StepName.CHARGE_PAYMENT],
        steps[StepName.COMPLETE_ORDER],
    )
    return SagaDefinition(
        name="orders-pessimistic",
        version="v1",
        spec=SagaSpec(steps=(reserve, charge, deduct, ship, complete)),
        services=SERVICES,
        title="the order saga with the points deduction as its pivot (pessimistic view)",
    )


DEFINITIONS: dict[str, Callable[[], SagaDefinition]] = {
    "v1": lambda: ORDERS_V1,
    "v2": _v2,
    "voucher": _voucher,
    "pessimistic": _pessimistic,
}
"""Every definition by the name ``SAGA_DEFINITION`` takes."""
DEFAULT = "v1"


def definition_named(name: str) -> SagaDefinition:
    """The definition of that name, or InvalidInput naming the choices."""
    try:
        return DEFINITIONS[name]()
    except KeyError:
        choices = ", ".join(DEFINITIONS)
        raise InvalidInput(
            f"SAGA_DEFINITION={name!r}: no such saga definition; use one of: {choices}"
        ) from None


def definition_of(ref: DefinitionRef) -> SagaDefinition | None:
    """The shipped definition a reference names (name, version and digest), if any."""
    return next((found for found in shipped() if found.ref == ref), None)


def shipped() -> list[SagaDefinition]:
    """Every definition this code ships (a trace or results file may come from any of them)."""
    return [make() for make in DEFINITIONS.values()]


def service_of_step(step: str) -> str | None:
    """The service that runs a step or compensation in any shipped definition (a step's name
    means the same in every definition that has it), or None for an unknown name."""
    for definition in shipped():
        if definition.spec.knows(step):
            return str(definition.spec.service_of(step))
    return None


def known_services() -> tuple[str, ...]:
    """Every service of any shipped definition, in saga order (v1's first)."""
    return tuple(dict.fromkeys(str(s) for d in shipped() for s in d.spec.services))


__all__ = [
    "DEFAULT",
    "DEFINITIONS",
    "ORDERS_V1",
    "definition_named",
    "definition_of",
    "known_services",
    "service_of_step",
    "shipped",
]

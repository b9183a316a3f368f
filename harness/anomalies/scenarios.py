"""The five interleavings, each forced by the injector's holds, with its countermeasure off and on.

Every scenario is two sagas (or one and the shop) over a small catalogue, ``A`` and ``B``; a
hold says "hold this saga before a step until a signal": another saga reached a step
(`shared.faults.reached`), tried one (`seams.tried`), the driver did something, or — for a step
meant to commit late — the saga settled or its engine retried the step (`seams.late`). The same
hold works in an activity and in a participant reaction: both run through the step seam.

A scenario's ``settings`` say which countermeasures (and saga definition) each cell runs with:
``off`` turns the anomaly's countermeasure off, each ``on`` cell applies one that prevents it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.anomalies.kinds import Anomaly
from harness.anomalies.seams import late, tried
from harness.compare.scenarios import ANTARCTICA, HOME
from shared.contracts import LineItem, OrderRequest, SagaPolicy, StepName
from shared.countermeasures import Countermeasures
from shared.faults import Hold, reached, released
from shared.seed import Product, SeedData

SEED = SeedData(
    products={"widget": Product(name="Widget", price_cents=1_999, stock=10)},
    points={"alice": 100, "bob": 0},
)
"""Small on purpose: every saga of a scenario touches the same rows."""
NEW_PRICE = 2_499
HOLD_S = 30.0
"""How long a hold waits before its attempt fails (and is retried, to wait again)."""
POLICY = SagaPolicy(
    deadline_s=120.0,
    attempt_timeout_s=5.0,
    initial_backoff_s=0.05,
    backoff_factor=2.0,
    max_backoff_s=0.4,
    compensation_attempts=4,
)
"""Long attempts, so a hold never times out in a deterministic run; a step held to commit late
is abandoned by the orchestration after 5 s (its next attempt releases it)."""
DECLINED = "card-0002"
CARD = "card-4242"


@dataclass(frozen=True)
class Setting:
    """What the services of a cell run with: the switches and the saga definition."""

    name: str
    countermeasures: Countermeasures
    definition: str = "v1"


@dataclass(frozen=True)
class Saga:
    """One saga of a scenario: its letter, its order and the holds of its plan."""

    letter: str
    order: OrderRequest
    holds: tuple[Hold, ...] = ()


@dataclass(frozen=True)
class Cancel:
    """The customer cancels ``saga`` once its ``step`` arrived (and is held)."""

    saga: str
    step: str


@dataclass(frozen=True)
class Reprice:
    """The shop changes a price once every saga started, then gives ``then``."""

    product: str
    price_cents: int
    then: str


@dataclass(frozen=True)
class Scenario:
    anomaly: Anomaly
    title: str
    sagas: tuple[Saga, ...]
    off: Setting
    on: tuple[Setting, ...]
    cancels: tuple[Cancel, ...] = ()
    reprices: tuple[Reprice, ...] = ()
    late: tuple[tuple[str, str], ...] = ()
    """(saga letter, step) held to commit late: released when the saga settles or the step's
    engine tries it again."""
    story: tuple[str, ...] = field(default=())
    """The interleaving in words, one line per event (the report and the docs draw it)."""
    occurs_in: tuple[str, ...] = ("orchestration", "choreography")
    """The styles whose ``off`` cell shows the anomaly; in the others it cannot happen (the
    ``off`` cell is the test that shows it)."""

    @property
    def settings(self) -> tuple[Setting, ...]:
        return (self.off, *self.on)


def order(letter: str, customer: str, quantity: int, **extra: object) -> OrderRequest:
    fields: dict[str, object] = {
        "order_id": letter,
        "customer_id": customer,
        "items": [LineItem(product_id="widget", quantity=quantity, unit_price_cents=1_999)],
        "payment_method": CARD,
        "shipping_address": HOME,
        **extra,
    }
    return OrderRequest.model_validate(fields)


def _hold(step: str, until: str) -> Hold:
    return Hold(step=step, at="before", until=until, timeout_s=HOLD_S)


def _off(name: str, *switches: str) -> Setting:
    return Setting(name, Countermeasures.only_off(*switches))


R, C, D, S = (
    StepName.RESERVE_INVENTORY,
    StepName.CHARGE_PAYMENT,
    StepName.DEDUCT_POINTS,
    StepName.CREATE_SHIPMENT,
)

LOST_UPDATE = Scenario(
    Anomaly.LOST_UPDATE,
    "A's release writes back the stock it read, over B's reservation",
    sagas=(
        Saga(
            "A",
            order("A", "bob", 2, payment_method=DECLINED),
            (_hold(C, reached("{B}", R, "after")),),
        ),
        Saga("B", order("B", "bob", 3), (_hold(R, reached("{A}", R, "after")),)),
    ),
    off=_off("commutative_updates off", "commutative_updates"),
    on=(Setting("commutative_updates on", Countermeasures()),),
    story=(
        "A reserves 2 widgets (reads 10, writes 8)",
        "B reserves 3 (reads 8, writes 5)",
        "A's card is declined; A releases its reservation",
        "off: the release writes back the 10 A read — B's reservation is lost",
        "on: the release adds 2 back — 7 on the shelf, 3 reserved by B",
    ),
)

DIRTY_READ = Scenario(
    Anomaly.DIRTY_READ,
    "B is refused on points A deducted and then gave back",
    sagas=(
        Saga(
            "A",
            order("A", "alice", 1, points_to_use=100, shipping_address=ANTARCTICA),
            (_hold(S, tried("{B}", D)),),
        ),
        Saga(
            "B", order("B", "alice", 1, points_to_use=100), (_hold(D, reached("{A}", D, "after")),)
        ),
    ),
    off=_off("points_lock off", "points_lock"),
    on=(
        Setting("points_lock on", Countermeasures()),
        Setting("pessimistic view", Countermeasures.only_off("points_lock"), "pessimistic"),
    ),
    story=(
        "A deducts alice's 100 points (balance 100 -> 0)",
        "B wants 100 points of alice too",
        "off: B reads 0 and is refused insufficient_points",
        "A's shipment to Antarctica fails; A restores the 100 points",
        "off: B was refused on points that came back — no serial order does that",
        "points lock: A's 100 are pending; B waits, then deducts them once A gave them back",
        "pessimistic view: the deduction is A's pivot — A keeps the points and waits for an"
        " operator; B's refusal is true",
    ),
)

FUZZY_READ = Scenario(
    Anomaly.FUZZY_READ,
    "the price changes between A's admission and its charge",
    sagas=(Saga("A", order("A", "bob", 2), (_hold(C, released("repriced-{A}")),)),),
    off=_off("by_value off", "by_value"),
    on=(
        Setting("by_value on", Countermeasures()),
        Setting("reread_value on", Countermeasures.parse("-by_value,reread_value")),
    ),
    reprices=(Reprice("widget", NEW_PRICE, "repriced-{A}"),),
    story=(
        "A is admitted at 19.99 a widget (total 39.98)",
        "the shop reprices the widget to 24.99",
        "off: A's charge reads the catalogue — it charges 49.98 for an order of 39.98",
        "by value: A charges the 39.98 it carries",
        "reread value: A's charge sees the new price and refuses (price_changed); A compensates",
    ),
)

CANCEL_OVERWRITTEN = Scenario(
    Anomaly.CANCEL_OVERWRITTEN,
    "A's completion arrives after A recorded the customer's cancel",
    sagas=(Saga("A", order("A", "bob", 1), (_hold(S, late("{A}", S)),)),),
    off=_off("order_lock off", "order_lock", "version_file"),
    on=(_off("order_lock on", "version_file"),),
    cancels=(Cancel("A", S),),
    late=(("A", S),),
    occurs_in=("choreography",),
    story=(
        "A's shipment (its pivot) is held before it commits; the customer cancels A",
        "the cancel fences the shipment: it has not committed (no tombstone: the version file is"
        " off in both cells, so the late commit can happen at all)",
        "choreography: the fenced pivot refuses, the chain compensates, A ends COMPENSATED",
        "the held shipment commits late; its completion follows",
        "off: the completion writes COMPLETED over the cancel — the customer was told cancelled",
        "on: the order is not pending any more, the completion is refused",
        "orchestration: the workflow waits for the shipment's answer before anything else, so"
        " the pivot's commit wins and A completes; nothing is overwritten in either cell",
    ),
)

EARLY_COMPENSATION = Scenario(
    Anomaly.EARLY_COMPENSATION,
    "A's reservation commits after the cancel fenced it",
    sagas=(Saga("A", order("A", "bob", 2), (_hold(R, late("{A}", R)),)),),
    off=_off("version_file off", "version_file"),
    on=(Setting("version_file on", Countermeasures()),),
    cancels=(Cancel("A", R),),
    late=(("A", R),),
    occurs_in=("choreography",),
    story=(
        "A's reservation is held before it commits; the customer cancels A",
        "the cancel fences the reservation: it has not committed, nothing to undo",
        "choreography: A ends COMPENSATED; the held reservation then commits",
        "off: nothing refuses it — the stock stays reserved, and the saga goes on behind its own"
        " end (charge, shipment) until its completion is refused",
        "on: the fence left a tombstone; the late reservation is refused",
        "orchestration: the first attempt is abandoned after 5 s, still held; the next attempt"
        " releases it. The workflow waits for the attempt's answer and compensates whatever"
        " committed, and the abandoned attempt finds that answer in the step log: no leak, with"
        " the version file off too",
    ),
)

SCENARIOS: dict[Anomaly, Scenario] = {
    s.anomaly: s
    for s in (LOST_UPDATE, DIRTY_READ, FUZZY_READ, CANCEL_OVERWRITTEN, EARLY_COMPENSATION)
}

"""The saga tracker, in the orders service: what nobody else in a choreography knows.

It folds every saga event into the saga's view (`projection.py`, a pure fold) in the orders
store, one row per saga, and decides the end — COMPLETED once the last step is done;
COMPENSATED only once every step that acted has its compensation confirmed and no step is
still in flight; NEEDS_INTERVENTION when a compensation failed or a step after the pivot
failed, which keeps the saga open for an operator (it is settled: its effects stay as they
are until someone acts) — and it enforces the business deadline: a saga not past its pivot by
then gets ``order.cancel_requested``, the same event as a customer's cancel.

One module per job, behind the `Tracker` facade (facade.py) the rest of the variant holds:

- `projector.py`: batches of events folded into the ``sagas`` table, ends recorded;
- `deadlines.py`: a timer per open saga, and cancel issuance (deadline or customer);
- `operator_actions.py`: an operator's retry or resolution, carried out once (the NATS side
  of operator commands is choreography/operator.py);
- `queries.py`: describe, wait, the intervention queue, polling when the tracker runs in
  another process;
- `table.py`: the ``sagas`` table's rows, shared by the four.
"""

from choreography.tracker.facade import Tracker
from choreography.tracker.operator_actions import (
    OPERATOR_INBOX,
    DuplicateCommand,
    Refusal,
    check_waiting,
)
from choreography.tracker.projector import EndHook
from choreography.tracker.queries import Intervention
from choreography.tracker.table import in_flight, load, record_end, save

__all__ = [
    "OPERATOR_INBOX",
    "DuplicateCommand",
    "EndHook",
    "Intervention",
    "Refusal",
    "Tracker",
    "check_waiting",
    "in_flight",
    "load",
    "record_end",
    "save",
]

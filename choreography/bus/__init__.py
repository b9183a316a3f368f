"""The only package that knows NATS: publish batches, durable pull consumers, dead letters.

A consumer is one durable pull consumer per service (``filter_subjects`` = exactly the events
the service reacts to, explicit ack, ``max_deliver`` set), read with nats-py's own pull
subscription. One module per job:

- `jetstream.py`: the connection, publishing with stream acks, creating durables, pausing one;
- `pull.py`: the pull consumer over nats-py's ``fetch``, and what each pull status means;
- `consumer.py`: the loop every consumer runs (fetch, in-progress acks, ack / nak / term);
- `lanes.py`: the lane dispatcher (one saga's messages in order, sagas side by side);
- `batches.py`: the batch consumer (the tracker's projection);
- `dead_letters.py`: a copy to ``dlq.<service>.<subject>`` with its headers, then ``term``;
- `tracing.py`: the OTel messaging spans (producer ``send``, consumer ``process``);
- `messages.py`, `spec.py`: what is published and delivered, and a durable's settings.

What other packages use is re-exported here.
"""

from choreography.bus.batches import BatchConsumer
from choreography.bus.jetstream import CONSUMER_SETUP_ATTEMPTS, PUBLISH_TIMEOUT_S, Bus
from choreography.bus.lanes import LaneConsumer
from choreography.bus.messages import (
    MSG_ID_HEADER,
    SAGA_ID_HEADER,
    BatchHandler,
    Delivery,
    Handler,
    LaneKey,
    Outgoing,
    Poison,
    Retry,
)
from choreography.bus.pull import FetchPolicy
from choreography.bus.spec import ConsumerSpec
from choreography.bus.tracing import destination_template, message_attributes

__all__ = [
    "CONSUMER_SETUP_ATTEMPTS",
    "MSG_ID_HEADER",
    "PUBLISH_TIMEOUT_S",
    "SAGA_ID_HEADER",
    "BatchConsumer",
    "BatchHandler",
    "Bus",
    "ConsumerSpec",
    "Delivery",
    "FetchPolicy",
    "Handler",
    "LaneConsumer",
    "LaneKey",
    "Outgoing",
    "Poison",
    "Retry",
    "destination_template",
    "message_attributes",
]

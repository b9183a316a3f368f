"""The one way this variant connects to Temporal: pydantic payloads and client-side tracing.

The TracingInterceptor goes on the client only; workers built from a client inherit it
(registering it on the worker too would duplicate every span). The caller's client traces with
a routing tracer (its spans join the caller's: the harness's ``StartWorkflow``); a worker gets
a client of its own over the same connection whose tracer is fixed to ``order-saga-worker``:
Temporal runs workflow code on executor threads, where no asyncio context says who is running.
"""

from __future__ import annotations

from datetime import timedelta

from opentelemetry import trace
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from orchestration.visibility import KEYS
from shared.servers import ServerError
from shared.telemetry import Component, Tracing

TRACER_NAME = "saga-compare.orchestration"


async def connect(
    address: str,
    namespace: str,
    *,
    tracing: Tracing | None = None,
    component: Component | None = None,
) -> Client:
    """Connect with the pydantic converter and tracing (fixed to ``component`` if given)."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=[_interceptor(tracing, component)],
    )


def for_component(client: Client, tracing: Tracing | None, component: Component) -> Client:
    """A client over the same connection whose spans name ``component`` (an in-process worker)."""
    config = client.config()
    config["interceptors"] = [_interceptor(tracing, component)]
    return Client(**config)


def untraced(client: Client) -> Client:
    """A client over the same connection that traces nothing: for reads that are not saga work
    (the monitor's queries and history reads would otherwise each start a trace of their own)."""
    config = client.config()
    config["interceptors"] = []
    return Client(**config)


def _interceptor(tracing: Tracing | None, component: Component | None) -> TracingInterceptor:
    tracer = tracing.tracer(TRACER_NAME, component) if tracing else trace.get_tracer(TRACER_NAME)
    return TracingInterceptor(tracer)


async def check_search_attributes(client: Client) -> None:
    """Fail in one line, naming the command, unless the saga's search attributes exist."""
    request = ListSearchAttributesRequest(namespace=client.namespace)
    response = await client.operator_service.list_search_attributes(
        request, timeout=timedelta(seconds=10)
    )
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    missing = [key.name for key in KEYS if response.custom_attributes.get(key.name) != keyword]
    if missing:
        names = " ".join(f"--name {name}" for name in missing)
        raise ServerError(
            f"the Temporal namespace {client.namespace!r} lacks the search attributes"
            f" {', '.join(missing)}; create them once: temporal operator search-attribute create"
            f" --namespace {client.namespace} {names} --type Keyword"
        )


async def register_search_attributes(client: Client) -> None:
    """Add the saga's search attributes to the client's namespace (test servers, a new cluster).

    The same as ``temporal operator search-attribute create`` for each; the dev server gets
    them at start instead (orchestration/server.py).
    """
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    request = AddSearchAttributesRequest(
        namespace=client.namespace, search_attributes={key.name: keyword for key in KEYS}
    )
    await client.operator_service.add_search_attributes(request, timeout=timedelta(seconds=10))

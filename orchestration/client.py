"""The one way this variant connects to Temporal: pydantic payloads and client-side tracing.

The TracingInterceptor goes on the client only; workers built from this client inherit it
(registering it on the worker too would duplicate every span).
"""

from __future__ import annotations

from opentelemetry import trace
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from shared.telemetry import Tracing

TRACER_NAME = "saga-compare.orchestration"


async def connect(address: str, namespace: str, *, tracing: Tracing | None = None) -> Client:
    """Connect with the pydantic converter and OpenTelemetry tracing (global provider default)."""
    tracer = tracing.tracer(TRACER_NAME) if tracing else trace.get_tracer(TRACER_NAME)
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor(tracer)],
    )

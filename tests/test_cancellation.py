"""Timeouts and cancellation: every span ends, with an error type, and no context leaks into the next call."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, StatusCode
from test_inprocess import traced

from mcp_tracing import _attributes as attr
from mcp_tracing._compat import IS_V2

pytestmark = pytest.mark.anyio


def ours(exporter: InMemorySpanExporter, name: str, kind: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == name and s.kind.name == kind and s.instrumentation_scope.name == attr.INSTRUMENTATION_NAME
    ]


def assert_abandoned(exporter: InMemorySpanExporter, turn: Span, error_type: str) -> ReadableSpan:
    """The abandoned call's client span ended as an error of ``error_type``; the next call's parent is the
    caller's span (no context leaked); the server's span of the abandoned request ended. Returns it."""
    (client,) = ours(exporter, "tools/call slow", "CLIENT")
    assert client.status.status_code is StatusCode.ERROR
    assert (client.attributes or {})[attr.ERROR_TYPE] == error_type
    (after,) = ours(exporter, "tools/call echo", "CLIENT")
    assert after.parent is not None and after.parent.span_id == turn.get_span_context().span_id
    (served,) = ours(exporter, "tools/call slow", "SERVER")
    assert served.end_time is not None
    return served


async def test_a_timed_out_call_ends_its_spans_with_the_timeout_error_and_the_next_call_is_clean(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    tracer = provider.get_tracer("tests")
    async with traced(provider) as session:
        with tracer.start_as_current_span("turn") as turn:
            timeout = 0.2 if IS_V2 else timedelta(seconds=0.2)
            with pytest.raises(Exception) as raised:
                await session.call_tool("slow", {}, read_timeout_seconds=timeout)  # type: ignore[arg-type]
            await session.call_tool("echo", {"text": "after"})
    served = assert_abandoned(exporter, turn, str(raised.value.error.code))  # type: ignore[attr-defined]
    # The server's span of the abandoned request ends too (at the latest when the connection closes).
    assert served.status.status_code is StatusCode.ERROR


async def test_a_caller_cancellation_ends_the_span_as_cancelled_and_leaks_no_context(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    tracer = provider.get_tracer("tests")
    async with traced(provider) as session:
        with tracer.start_as_current_span("turn") as turn:
            with anyio.move_on_after(0.2) as scope:
                await session.call_tool("slow", {})
            assert scope.cancelled_caught
            await session.call_tool("echo", {"text": "after"})
    assert_abandoned(exporter, turn, "CancelledError")

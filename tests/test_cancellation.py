"""Timeouts and cancellation: every span ends, with an error type, and no context leaks into the next call."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest
from helpers.inprocess import traced
from mcp import ClientSession
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, Span, StatusCode

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2

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
    assert served.status.status_code is StatusCode.ERROR  # the peer's cancel reached the handler
    assert (served.attributes or {})[attr.ERROR_TYPE] == "CancelledError"
    assert_cancel_carries_context(exporter, client)
    return served


def assert_cancel_carries_context(exporter: InMemorySpanExporter, abandoned: ReadableSpan) -> None:
    """The ``notifications/cancelled`` for the abandoned request is sent under its span (so its ``_meta``
    names it), and on mcp 2.x, whose server sees the notification, the server's span is its child."""
    (sent,) = ours(exporter, attr.CANCELLED_NOTIFICATION, "CLIENT")
    assert sent.parent is not None and sent.parent.span_id == abandoned.get_span_context().span_id
    assert (sent.attributes or {})[attr.MCP_METHOD_NAME] == attr.CANCELLED_NOTIFICATION
    received = ours(exporter, attr.CANCELLED_NOTIFICATION, "SERVER")
    if IS_V2:
        assert [r.parent.span_id for r in received if r.parent] == [sent.get_span_context().span_id]
    else:  # mcp 1.x's server session consumes the notification before any handler sees it
        assert received == []


async def cancel_by_hand(session: ClientSession, exporter: InMemorySpanExporter) -> None:
    """What a mcp 1.x application does after giving up on a request (the 1.x SDK sends no cancel itself)."""
    if IS_V2:
        return
    from mcp import types

    (client,) = ours(exporter, "tools/call slow", "CLIENT")
    request_id = int(str((client.attributes or {})[attr.JSONRPC_REQUEST_ID]))
    context = client.get_span_context()
    assert context is not None
    with trace.use_span(NonRecordingSpan(context)):  # sent in the abandoned request's context
        await session.send_notification(
            types.ClientNotification(  # type: ignore[call-arg]
                types.CancelledNotification(
                    params=types.CancelledNotificationParams(requestId=request_id)  # pyright: ignore[reportCallIssue]
                )
            )
        )


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
            await cancel_by_hand(session, exporter)
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
            await cancel_by_hand(session, exporter)
            await session.call_tool("echo", {"text": "after"})
    assert_abandoned(exporter, turn, "CancelledError")

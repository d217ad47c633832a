"""Server-to-client requests and notifications both ways: the sender injects ``_meta``, the receiver's span
is parented to it, and progress reports land on the request they report on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import all_spans, one, probe_params, structured
from helpers.inprocess import McpServer, connected, traced
from helpers.stdio_calls import assert_one_client_and_one_server_span_per_request, run_calls
from mcp.types import CreateMessageResult, ElicitResult, ErrorData, ListRootsResult
from opentelemetry import context as otel_context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
from _probe_tools import add_probe_tools

pytestmark = pytest.mark.anyio

MODEL_ANSWER = {"role": "assistant", "content": {"type": "text", "text": "42"}, "model": "m", "stopReason": "endTurn"}


def sampling(seen: list[trace.SpanContext]) -> Any:
    """A sampling callback that records the span it runs under and answers from a 'model' span of its own."""

    async def callback(context: Any, params: Any) -> CreateMessageResult:
        seen.append(trace.get_current_span().get_span_context())
        with trace.get_tracer("tests.agent").start_as_current_span("model.generate"):
            return CreateMessageResult.model_validate(MODEL_ANSWER)

    return callback


async def elicitation(context: Any, params: Any) -> ElicitResult:
    return ElicitResult.model_validate({"action": "accept", "content": {"answer": "yes"}})


async def roots(context: Any) -> ListRootsResult | ErrorData:
    return ListRootsResult.model_validate({"roots": [{"uri": "file:///work/project"}]})


async def refusing_roots(context: Any) -> ListRootsResult | ErrorData:
    return ErrorData(code=-32001, message="no roots for you")


def server() -> Any:
    probe = McpServer("both")
    add_probe_tools(probe)
    return probe


def ours(exporter: InMemorySpanExporter, name: str, kind: str | None = None) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == name
        and s.instrumentation_scope.name == attr.INSTRUMENTATION_NAME
        and (kind is None or s.kind.name == kind)
    ]


def only(exporter: InMemorySpanExporter, name: str, kind: str | None = None) -> ReadableSpan:
    (span,) = ours(exporter, name, kind)
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    return span.get_span_context().span_id


def assert_chain(*spans: ReadableSpan) -> None:
    """Each span is the child of the one before it, all in one trace."""
    assert len({s.get_span_context().trace_id for s in spans}) == 1
    for parent, child in zip(spans, spans[1:], strict=False):
        assert parent_of(child) == span_id(parent), (parent.name, parent.kind, child.name, child.kind)


async def test_sampling_over_stdio_nests_the_clients_answer_under_the_servers_tools_call(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """agent tools/call -> (server) tools/call -> (server) sampling/createMessage -> (agent)
    sampling/createMessage -> the callback's own model span: one trace across two processes and back."""
    provider, exporter = capture
    seen: list[trace.SpanContext] = []
    root, results = await run_calls(
        probe_params(),
        [("ask_model", {"question": "answer?"}, {})],
        provider,
        session_options={"sampling_callback": sampling(seen)},
    )
    assert structured(results[0]) == "42"
    spans = all_spans(exporter, spans_file)
    call = one(spans, "tools/call ask_model", "CLIENT")
    served = one(spans, "tools/call ask_model", "SERVER")
    asked = one(spans, "sampling/createMessage", "CLIENT")
    answered = one(spans, "sampling/createMessage", "SERVER")
    model = one(spans, "model.generate")
    chain = [root, call, served, asked, answered, model]
    assert {s.trace_id for s in chain} == {root.trace_id}
    assert [s.parent_id for s in chain[1:]] == [s.span_id for s in chain[:-1]]
    assert asked.pid == served.pid != answered.pid == call.pid  # local spans are the agent's (no pid recorded)
    assert seen[0].span_id == int(answered.span_id, 16)  # the callback runs in the receiving span's context
    expected = {
        attr.MCP_METHOD_NAME: "sampling/createMessage",
        attr.JSONRPC_REQUEST_ID: asked.attributes[attr.JSONRPC_REQUEST_ID],
        attr.MCP_PROTOCOL_VERSION: call.attributes[attr.MCP_PROTOCOL_VERSION],
        attr.NETWORK_TRANSPORT: "pipe",
        attr.SERVER_NAME: "probe",
    }
    assert asked.attributes == expected
    assert answered.attributes == expected
    assert (asked.status, answered.status) == ("UNSET", "UNSET")
    assert_one_client_and_one_server_span_per_request(spans)


async def test_an_untrusted_server_cannot_put_the_clients_callback_in_its_trace_or_send_it_baggage(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """``trace_session(policy="untrusted")`` (issue 15): the server's sampling request starts a new trace on the
    client, linked to the server's span, and the baggage in its ``_meta`` never reaches the callback (so it can
    never be forwarded to another server)."""
    from opentelemetry import baggage

    provider, exporter = capture
    seen: list[trace.SpanContext] = []
    carried: list[object] = []

    def recording(inner: Any) -> Any:
        async def callback(context: Any, params: Any) -> Any:
            carried.append(baggage.get_baggage("tenant"))
            return await inner(context, params)

        return callback

    token = otel_context.attach(baggage.set_baggage("tenant", "evil-corp"))  # what arrives with the request
    try:
        await run_calls(
            probe_params(),
            [("ask_model", {"question": "answer?"}, {})],
            provider,
            session_options={"sampling_callback": recording(sampling(seen))},
            trace_options={"policy": "untrusted"},
        )
    finally:
        otel_context.detach(token)
    spans = all_spans(exporter, spans_file)
    asked = one(spans, "sampling/createMessage", "CLIENT")
    answered = one(spans, "sampling/createMessage", "SERVER")
    assert answered.parent_id is None and answered.trace_id != asked.trace_id
    assert asked.span_id in answered.links
    assert carried == [None]
    assert one(spans, "model.generate").parent_id == answered.span_id


def test_the_stricter_policy_holds_when_middleware_and_server_both_give_one() -> None:
    from mcp_tracing._core.policy import stricter

    assert stricter("default", "untrusted") == stricter("untrusted", "default") == "untrusted"
    assert stricter("gateway", "default") == stricter("default", "gateway") == "gateway"
    assert stricter("gateway", "untrusted") == "untrusted" and stricter("default", "default") == "default"


async def test_elicitation_and_roots_are_traced_both_ways_with_their_outcomes(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    options = {"elicitation_callback": elicitation, "list_roots_callback": roots}
    async with traced(provider, server(), options) as session:
        asked = await session.call_tool("ask_user", {"question": "ok?"})
        listed = await session.call_tool("client_roots", {})
    assert asked.content[0].text == "yes"  # type: ignore[union-attr]
    assert "file:///work/project" in listed.content[0].text  # type: ignore[union-attr]
    for tool, method in (("ask_user", "elicitation/create"), ("client_roots", "roots/list")):
        assert_chain(
            only(exporter, f"tools/call {tool}", "CLIENT"),
            only(exporter, f"tools/call {tool}", "SERVER"),
            only(exporter, method, "CLIENT"),
            only(exporter, method, "SERVER"),
        )
        for span in ours(exporter, method):
            assert (span.attributes or {})[attr.MCP_METHOD_NAME] == method
            assert span.status.is_unset, span.status


async def test_a_refused_server_to_client_request_ends_both_spans_with_the_error_code(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    async with traced(provider, server(), {"list_roots_callback": refusing_roots}) as session:
        try:  # mcp 2.x passes the client's error on as the tools/call error; mcp 1.x makes it an isError result
            refused = (await session.call_tool("client_roots", {})).isError  # pyright: ignore[reportAttributeAccessIssue]  # 1.x name
        except Exception as exc:
            refused = "no roots for you" in str(exc)
    assert refused
    asked, answered = only(exporter, "roots/list", "CLIENT"), only(exporter, "roots/list", "SERVER")
    assert parent_of(answered) == span_id(asked)
    for span in (asked, answered):
        assert span.status.status_code.name == "ERROR"
        assert (span.attributes or {})[attr.ERROR_TYPE] == "-32001"
        assert (span.attributes or {})[attr.RPC_RESPONSE_STATUS_CODE] == "-32001"


async def test_progress_reports_are_events_on_their_request_and_notifications_nest_under_the_handler(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Three progress notifications: each an ``mcp.progress`` event on the client's tools/call span, and each
    a CLIENT span under the server's tools/call (sender) with the client's SERVER span under it (receiver).
    The log line is housekeeping (no span), but the logging callback still runs in the handler's context."""
    provider, exporter = capture
    reported: list[tuple[float, float | None]] = []
    logged_under: list[trace.SpanContext] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total))

    async def on_log(params: Any) -> None:
        logged_under.append(trace.get_current_span().get_span_context())

    async with traced(provider, server(), {"logging_callback": on_log}) as session:
        with anyio.fail_after(10):
            await session.call_tool("steps", {"n": 3}, progress_callback=on_progress)
            while len(logged_under) < 1 or len(ours(exporter, attr.PROGRESS_NOTIFICATION, "SERVER")) < 3:
                await anyio.lowlevel.checkpoint()  # the last notifications are handled in tasks of their own
    assert reported == [(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)]
    call = only(exporter, "tools/call steps", "CLIENT")
    served = only(exporter, "tools/call steps", "SERVER")
    events = [(e.name, dict(e.attributes or {})) for e in call.events]
    assert events == [
        (attr.PROGRESS_EVENT, {attr.PROGRESS_VALUE: float(step), attr.PROGRESS_TOTAL: 3.0}) for step in (1, 2, 3)
    ]
    sent = ours(exporter, attr.PROGRESS_NOTIFICATION, "CLIENT")
    received = ours(exporter, attr.PROGRESS_NOTIFICATION, "SERVER")
    assert len(sent) == 3 and all(parent_of(s) == span_id(served) for s in sent)
    assert sorted(parent_of(r) for r in received) == sorted(span_id(s) for s in sent)  # type: ignore[type-var]
    assert ours(exporter, "notifications/message") == []
    assert logged_under[0].span_id == span_id(served)


async def test_server_to_client_operations_are_measured_on_both_sides(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """The sender records ``mcp.client.operation.duration``, the receiver ``mcp.server.operation.duration``,
    whichever of them is the MCP server (the conventions' definition)."""
    provider, _ = capture
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    probe = mcp_tracing.instrument_server(server(), tracer_provider=provider, meter_provider=meters)
    async with connected(probe, list_roots_callback=roots) as session:
        mcp_tracing.trace_session(session, tracer_provider=provider, meter_provider=meters)
        await session.initialize()
        await session.call_tool("client_roots", {})
    data = reader.get_metrics_data()
    assert data is not None
    methods: dict[str, set[str]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:  # type: ignore[attr-defined]
                    method = str(dict(point.attributes or {}).get(attr.MCP_METHOD_NAME))
                    methods.setdefault(metric.name, set()).add(method)
    assert methods["mcp.client.operation.duration"] >= {"tools/call", "roots/list"}
    assert methods["mcp.server.operation.duration"] >= {"tools/call", "roots/list"}


@pytest.mark.skipif(not IS_V2, reason="the in-process Client(server) exists in mcp 2.x only")
async def test_a_client_object_traces_sampling_both_ways(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """mcp 2.x's ``Client(server)`` in legacy mode (the 2025 handshake, which has server-to-client requests)."""
    from mcp.client.client import Client  # type: ignore[import-not-found]

    provider, exporter = capture
    probe = mcp_tracing.instrument_server(server(), tracer_provider=provider)
    seen: list[trace.SpanContext] = []
    client = mcp_tracing.trace_session(
        Client(probe, mode="legacy", sampling_callback=sampling(seen)), tracer_provider=provider
    )
    async with client:
        with anyio.fail_after(10):
            result = await client.call_tool("ask_model", {"question": "answer?"})
    assert result.content[0].text == "42"  # type: ignore[union-attr]
    assert_chain(
        only(exporter, "tools/call ask_model", "CLIENT"),
        only(exporter, "tools/call ask_model", "SERVER"),
        only(exporter, "sampling/createMessage", "CLIENT"),
        only(exporter, "sampling/createMessage", "SERVER"),
    )
    assert seen[0].span_id == span_id(only(exporter, "sampling/createMessage", "SERVER"))

"""The lean hot path: what a call no longer does, and that the trace it leaves is the same.

Under an unsampled parent no span is made on either side (the context still travels, the metrics are still
recorded); on mcp 2.x a request's ``_meta`` is injected once (by the SDK's dispatcher, our span current);
the metrics skip a meter provider that records nothing; the hash key is resolved once per tracer; the SDK's
models are read without exceptions; mcp 1.x's request models are copied with the new ``_meta``, not
validated again.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import outcome, structured
from helpers.inprocess import connected, make_server
from opentelemetry import context as otel_context, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from pydantic import BaseModel, ConfigDict, RootModel

import mcp_tracing
from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.client_tracer import ClientTracer, _without_stale  # pyright: ignore[reportPrivateUsage]
from mcp_tracing._core.registry import IS_V2
from mcp_tracing._core.unsampled import skips
from mcp_tracing.metrics import McpMetrics
from mcp_tracing.privacy import args_hash

pytestmark = pytest.mark.anyio

TRACE_ID, SPAN_ID = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


def unsampled_turn(sampled: bool = False) -> otel_context.Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else 0)
    return trace.set_span_in_context(NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, False, flags)))


def recording(sampler: Any = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def reporting_server() -> Any:
    server = make_server()

    @server.tool()
    def context_report() -> dict[str, object]:
        span_context = trace.get_current_span().get_span_context()
        return {
            "trace_id": f"{span_context.trace_id:032x}",
            "span_id": f"{span_context.span_id:016x}",
            "sampled": span_context.trace_flags.sampled,
        }

    return server


def operations(reader: InMemoryMetricReader) -> dict[str, list[dict[str, object]]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[dict[str, object]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name.endswith("operation.duration"):
                    for point in metric.data.data_points:  # type: ignore[union-attr]
                        out.setdefault(metric.name, []).append(dict(point.attributes or {}))  # type: ignore[arg-type]
    return out


async def test_under_an_unsampled_turn_no_span_is_made_yet_the_context_and_the_metrics_go_on() -> None:
    provider, exporter = recording()  # the SDK's default: parent-based
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    server = mcp_tracing.instrument_server(reporting_server(), tracer_provider=provider, meter_provider=meters)
    async with connected(server) as session:
        mcp_tracing.trace_session(session, tracer_provider=provider, meter_provider=meters)
        await session.initialize()
        exporter.clear()
        token = otel_context.attach(unsampled_turn())
        try:
            report = structured(await session.call_tool("context_report", {}))
            failed = await session.call_tool("save", {"record": "not a dict"})  # a tool error
        finally:
            otel_context.detach(token)
        # Read before the connection closes (its server session span, sampled when it opened, ends then).
        made = [(s.name, s.kind.name) for s in exporter.get_finished_spans()]
    assert outcome(failed)["isError"] is True
    assert made == []  # nothing made on either side, not even a dropped span
    # The handler ran in the agent's unsampled context itself: its trace, its span, "not sampled".
    assert report == {"trace_id": f"{TRACE_ID:032x}", "span_id": f"{SPAN_ID:016x}", "sampled": False}
    measured = operations(reader)
    client = [p for p in measured["mcp.client.operation.duration"] if p.get(attr.GEN_AI_TOOL_NAME) == "save"]
    server_side = [p for p in measured["mcp.server.operation.duration"] if p.get(attr.GEN_AI_TOOL_NAME) == "save"]
    assert [p.get(attr.ERROR_TYPE) for p in client] == [attr.ERROR_TOOL]  # the client still sees isError
    assert len(server_side) == 1 and server_side[0][attr.MCP_METHOD_NAME] == attr.TOOLS_CALL
    for name in ("mcp.client.operation.duration", "mcp.server.operation.duration"):
        assert {p.get(attr.GEN_AI_TOOL_NAME) for p in measured[name] if p[attr.MCP_METHOD_NAME] == attr.TOOLS_CALL} == {
            "context_report",
            "save",
        }


async def test_a_sampler_that_may_keep_children_of_unsampled_parents_is_still_asked() -> None:
    provider, exporter = recording(ALWAYS_ON)  # not parent-based: keeps everything
    server = mcp_tracing.instrument_server(reporting_server(), tracer_provider=provider)
    async with connected(server) as session:
        mcp_tracing.trace_session(session, tracer_provider=provider)
        await session.initialize()
        exporter.clear()
        token = otel_context.attach(unsampled_turn())
        try:
            report = structured(await session.call_tool("context_report", {}))
        finally:
            otel_context.detach(token)
    ours = {(s.name, s.kind.name): s for s in exporter.get_finished_spans()}
    client, server_span = ours[("tools/call context_report", "CLIENT")], ours[("tools/call context_report", "SERVER")]
    assert client.parent is not None and client.parent.span_id == SPAN_ID
    assert server_span.parent is not None and server_span.parent.span_id == client.context.span_id
    assert report is not None and report["span_id"] == f"{server_span.context.span_id:016x}"


@pytest.mark.parametrize(
    ("sampler", "sampled_parent", "expected"),
    [
        (None, False, True),  # the SDK's default, ParentBased(ALWAYS_ON)
        (ParentBased(TraceIdRatioBased(0.5)), False, True),
        (ALWAYS_OFF, False, True),
        (ALWAYS_ON, False, False),
        (ParentBased(ALWAYS_ON, local_parent_not_sampled=ALWAYS_ON), False, False),
        (None, True, False),  # a sampled parent: the span is made
    ],
)
def test_skips_only_where_the_sampler_is_certain_to_drop(sampler: Any, sampled_parent: bool, expected: bool) -> None:
    provider, _ = recording(sampler)
    tracer = provider.get_tracer("t")
    assert skips(tracer, unsampled_turn(sampled_parent)) is expected
    token = otel_context.attach(unsampled_turn(sampled_parent))  # None: the current context
    try:
        assert skips(tracer) is expected
    finally:
        otel_context.detach(token)
    assert skips(tracer, otel_context.Context()) is False  # no parent: the sampler decides the root


def test_skips_asks_the_tracer_a_proxy_stands_for() -> None:
    assert skips(trace.NoOpTracer(), unsampled_turn()) is True
    proxy = trace.ProxyTracer("t")  # the global provider's tracer, whatever the tests set it to
    real = trace.get_tracer_provider().get_tracer("t")
    assert skips(proxy, unsampled_turn()) is skips(real, unsampled_turn())


def test_without_stale_drops_only_what_the_propagator_owns() -> None:
    params = {"name": "echo", "_meta": {"traceparent": "00-old", "tracestate": "a=1", "progressToken": 3}}
    assert _without_stale(params) == {"name": "echo", "_meta": {"progressToken": 3}}
    clean = {"name": "echo", "_meta": {"progressToken": 3}}
    assert _without_stale(clean) is clean and _without_stale(None) is None


@pytest.mark.skipif(not IS_V2, reason="mcp 2.x's dispatcher injects _meta itself")
async def test_on_mcp_2_a_request_is_injected_once_by_the_sdk_with_our_span_current(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp_tracing._core import client_tracer

    injected: list[object] = []
    real = client_tracer.inject_meta  # pyright: ignore[reportPrivateImportUsage]

    def counting(meta: Any = None, **kwargs: Any) -> dict[str, object]:
        injected.append(meta)
        return real(meta, **kwargs)

    monkeypatch.setattr(client_tracer, "inject_meta", counting)
    provider, exporter = recording()
    server = mcp_tracing.instrument_server(reporting_server(), tracer_provider=provider)
    async with connected(server) as session:
        tracer = mcp_tracing.trace_session(session, tracer_provider=provider)
        await session.initialize()  # a request, then the notifications/initialized notification
        assert len(injected) == 1  # the notification only: the SDK does not inject those
        injected.clear()
        report = structured(await session.call_tool("context_report", {}))
        assert injected == []
    del tracer
    spans = {(s.name, s.kind.name): s for s in exporter.get_finished_spans()}
    client, server_span = spans[("tools/call context_report", "CLIENT")], spans[("tools/call context_report", "SERVER")]
    assert server_span.parent is not None and server_span.parent.span_id == client.context.span_id
    assert report is not None and report["span_id"] == f"{server_span.context.span_id:016x}"


def test_metrics_on_a_meter_provider_that_records_nothing_are_skipped() -> None:
    from opentelemetry.metrics._internal import _ProxyMeterProvider  # pyright: ignore[reportPrivateUsage]

    assert McpMetrics(NoOpMeterProvider()).enabled is False
    proxy = _ProxyMeterProvider()  # the API's global one, before any SDK provider is set
    metrics = McpMetrics(proxy)
    assert metrics.enabled is False
    reader = InMemoryMetricReader()
    proxy.on_set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert metrics.enabled is True  # the proxy forwards from now on: recording starts
    metrics.client_operation(0.5, {attr.MCP_METHOD_NAME: attr.TOOLS_CALL})
    assert operations(reader)["mcp.client.operation.duration"] == [{attr.MCP_METHOD_NAME: attr.TOOLS_CALL}]


def test_a_tracer_resolves_the_hash_key_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TRACING_HASH_KEY", "a" * 32)
    tracer = ClientTracer(trace.NoOpTracer())
    first = tracer.hash_key()
    monkeypatch.setenv("MCP_TRACING_HASH_KEY", "b" * 32)
    assert tracer.hash_key() is first == b"a" * 32  # the session keeps the key it started hashing with
    arguments = {"b": [1, "é"], "a": None}
    assert args_hash(arguments, key=first) == args_hash(arguments, key=b"a" * 32) != args_hash(arguments)
    assert args_hash(arguments) == args_hash(arguments, key=b"b" * 32)


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    is_error: bool = False


class _Wrapper(RootModel[_Extra]):
    pass


class _Plain:
    @property
    def isError(self) -> bool:
        return True


def test_field_reads_models_extras_wrappers_and_plain_objects() -> None:
    model = _Extra.model_validate({"is_error": True, "serverInfo": {"name": "s"}})
    assert _spans.field(model, "isError", "is_error") is True
    assert _spans.field(model, "serverInfo") == {"name": "s"}  # an extra field
    assert _spans.field(_Wrapper(model), "is_error") is True  # mcp 1.x's RootModel results, unwrapped
    assert _spans.field(model, "nothing", "else") is None
    assert _spans.field(_Plain(), "isError") is True
    assert _spans.field({"isError": False}, "isError") is False
    assert _spans.is_tool_error(model) and not _spans.is_tool_error({"content": []})


@pytest.mark.skipif(IS_V2, reason="mcp 1.x's typed request models")
def test_on_mcp_1_the_request_is_copied_with_the_new_meta_not_validated_again() -> None:
    import mcp.types as types  # pyright: ignore[reportMissingImports]

    from mcp_tracing._sdk.v1 import _dump, _with_params  # pyright: ignore[reportPrivateUsage]

    params = types.CallToolRequestParams(name="echo", arguments={"a": 1}, _meta={"progressToken": 5, "mine": "x"})  # type: ignore[call-arg]
    request = types.ClientRequest(types.CallToolRequest(method="tools/call", params=params))  # type: ignore[call-arg]
    data = _dump(request)
    traceparent = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"
    meta = {**data["params"]["_meta"], "traceparent": traceparent}
    sent = _with_params(request, data, {**data["params"], "_meta": meta})
    assert type(sent) is type(request) and type(sent.root) is type(request.root)
    assert _dump(sent) == {
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": {"a": 1},
            "_meta": meta,
        },
    }
    assert meta == {"progressToken": 5, "mine": "x", "traceparent": traceparent}
    assert _dump(request) == data  # the caller's request is left as it was
    listing = types.ClientRequest(types.ListToolsRequest(method="tools/list"))  # type: ignore[call-arg]
    listed = _with_params(listing, _dump(listing), {"_meta": {"traceparent": traceparent}})
    assert _dump(listed) == {"method": "tools/list", "params": {"_meta": {"traceparent": traceparent}}}


@pytest.mark.parametrize("policy", ["default", "gateway", "untrusted"])
async def test_the_http_middleware_makes_no_span_under_an_unsampled_header_but_carries_it(policy: Any) -> None:
    """The HTTP SERVER span follows the same rule: an unsampled ``traceparent`` makes none, the caller's span
    stands in for it (what the MCP server spans link to or, under ``gateway``, parent on), and the request is
    served in the caller's context. ``untrusted`` starts a new trace, which the sampler decides anew."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from mcp_tracing.asgi import SCOPE_KEY

    try:
        import httpx2 as httpx
    except ImportError:
        import httpx  # type: ignore[no-redef]
    provider, exporter = recording()
    seen: list[tuple[Any, trace.SpanContext]] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        seen.append((request.scope.get(SCOPE_KEY), trace.get_current_span().get_span_context()))
        return PlainTextResponse("ok")

    app = mcp_tracing.TraceContextMiddleware(
        Starlette(routes=[Route("/mcp", endpoint, methods=["POST"])]), policy=policy, tracer_provider=provider
    )
    header = {"traceparent": f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-00", "TraceState": "k=v"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/mcp", headers=header)
    assert (response.status_code, response.text) == (200, "ok")
    ((info, current),) = seen
    made = exporter.get_finished_spans()
    if policy == "untrusted":  # a new root, sampled by the default sampler, linked to what arrived
        (span,) = made
        assert span.parent is None and [link.context.span_id for link in span.links] == [SPAN_ID]
        assert current == span.get_span_context() == info.span.get_span_context()
        return
    assert made == ()
    assert (current.trace_id, current.span_id, current.trace_flags.sampled) == (TRACE_ID, SPAN_ID, False)
    assert current.trace_state.get("k") == "v"  # the header's names are read whatever their case
    assert info.span.get_span_context() == current and not info.span.is_recording() and info.policy == policy

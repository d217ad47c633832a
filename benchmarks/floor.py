"""The floor (mcp 2.x): the information mcp_tracing records for a ``tools/call``, produced with the OpenTelemetry
API and SDK directly and nothing else. No parent choice, no filters, no privacy, no error handling beyond the
call's: what any implementation pays for the same spans, context and metrics, so the benchmarks can say how
much of mcp_tracing's cost is its own.

Client: a CLIENT span with the lesson's and the conventions' attributes (9, with the arguments hash and shape
and the result size), the context injected into ``params._meta``, one ``mcp.client.operation.duration``
record. Server: the context extracted, a SERVER span with the same, one ``mcp.server.operation.duration``
record. ``install_client`` wraps a session's dispatcher (where mcp_tracing wraps it); ``FloorMiddleware``
stands where the SDK's ``OpenTelemetryMiddleware`` stood.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context, propagate, trace
from opentelemetry.metrics import Histogram, MeterProvider
from opentelemetry.trace import SpanKind

KEY = b"k" * 32
CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
PROTOCOL = "2025-11-25"


def _arguments(params: Mapping[str, Any]) -> dict[str, str]:
    arguments = params.get("arguments") or {}
    digest = hmac.digest(KEY, CANONICAL.encode(arguments).encode(), "sha256")[:16].hex()
    return {"mcp_tracing.tool.args_hash": digest, "mcp_tracing.tool.args_shape": ",".join(sorted(arguments))}


def _outcome(result: object) -> dict[str, Any]:
    dump = getattr(result, "model_dump_json", None)
    size = len((dump(by_alias=True, exclude_none=True) if dump else COMPACT.encode(result)).encode())
    return {"mcp_tracing.tool.result_size": size, "mcp_tracing.tool.status": "ok"}


def _histogram(meter_provider: MeterProvider, name: str) -> Histogram:
    return meter_provider.get_meter("floor").create_histogram(name, unit="s")


def install_client(session: Any, tracer_provider: trace.TracerProvider, meter_provider: MeterProvider) -> None:
    """Traces every ``tools/call`` a 2.x ``ClientSession`` sends (other requests go as they are)."""
    tracer = tracer_provider.get_tracer("floor")
    histogram = _histogram(meter_provider, "mcp.client.operation.duration")
    dispatcher = session._dispatcher
    send_raw_request = dispatcher.send_raw_request

    async def traced(method: str, params: Mapping[str, Any] | None, opts: Any = None, **kwargs: Any) -> Any:
        if method != "tools/call" or params is None:
            return await send_raw_request(method, params, opts, **kwargs)
        started = time.perf_counter()
        tool = params["name"]
        attributes: dict[str, Any] = {
            "mcp.method.name": method,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "mcp.protocol.version": PROTOCOL,
            "network.transport": "pipe",
        }
        measured = dict(attributes)
        attributes.update(_arguments(params))
        span = tracer.start_span(f"{method} {tool}", kind=SpanKind.CLIENT, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            meta: dict[str, Any] = {}
            propagate.inject(meta)
            result = await send_raw_request(method, {**params, "_meta": meta}, opts, **kwargs)
            span.set_attributes(_outcome(result))
            return result
        finally:
            otel_context.detach(token)
            span.end()
            histogram.record(time.perf_counter() - started, measured)

    dispatcher.send_raw_request = traced


class FloorMiddleware:
    """A 2.x ``ServerMiddleware``: one SERVER span per ``tools/call``, under the context its ``_meta`` carries."""

    def __init__(self, tracer_provider: trace.TracerProvider, meter_provider: MeterProvider) -> None:
        self._tracer = tracer_provider.get_tracer("floor")
        self._histogram = _histogram(meter_provider, "mcp.server.operation.duration")

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        params = ctx.params
        if ctx.method != "tools/call" or params is None:
            return await call_next(ctx)
        started = time.perf_counter()
        tool = params["name"]
        attributes: dict[str, Any] = {
            "mcp.method.name": ctx.method,
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "mcp.protocol.version": PROTOCOL,
            "network.transport": "pipe",
        }
        measured = dict(attributes)
        attributes["jsonrpc.request.id"] = str(ctx.request_id)
        attributes.update(_arguments(params))
        parent = propagate.extract(ctx.meta or {})
        span = self._tracer.start_span(
            f"tools/call {tool}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            result = await call_next(ctx)
            span.set_attributes(_outcome(result))
            return result
        finally:
            otel_context.detach(token)
            span.end()
            self._histogram.record(time.perf_counter() - started, measured)


def install_server(server: Any, tracer_provider: trace.TracerProvider, meter_provider: MeterProvider) -> None:
    """``FloorMiddleware`` in place of the SDK's ``OpenTelemetryMiddleware`` on a 2.x server."""
    from mcp.server._otel import OpenTelemetryMiddleware

    lowlevel = getattr(server, "_lowlevel_server", server)
    chain: list[Any] = lowlevel.middleware
    chain[:] = [m for m in chain if not isinstance(m, OpenTelemetryMiddleware)]
    chain.insert(0, FloorMiddleware(tracer_provider, meter_provider))

"""Where every microsecond of a traced ``tools/call`` goes: ``python benchmarks/budget.py`` (``--json``).

Each piece of the work a traced call does is timed alone, in this process, on the objects a real call makes
(a ``tools/call echo`` with ``{"text": "hello"}``, its ``CallToolResult``, an SDK ``TracerProvider`` whose
batching processor drops the spans, an SDK ``MeterProvider``), for three ways of producing the trace:

* **mcp_tracing**: the tracers' own code (``ClientTracer``, ``ServerTracer``), piece by piece, as a call runs it;
* **SDK's own**: what mcp 2.x's built-in tracing does (its ``MCP send`` span, its ``OpenTelemetryMiddleware``);
* **floor**: the information mcp_tracing records (the same attributes, the arguments hash, the result size, the
  metrics), produced with the OpenTelemetry API and SDK directly and nothing else: what any implementation pays.

A piece is timed ``--number`` times per repeat, 9 repeats interleaved across all pieces and ways, and the
fastest repeat is kept (µs per call: the least disturbed by the rest of the machine, as ``timeit`` advises).
Pieces run warm and alone, so their sum
is a lower bound of what they cost inside a call; ``run.py`` and ``instructions.py`` measure whole calls.
mcp 2.x only (its models and its built-in tracing are what is compared).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import sys
import timeit
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from opentelemetry import context as otel_context, propagate, trace
from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind

Piece = Callable[[], object]
SIDES = ("client", "server")
WAYS = ("mcp_tracing", "sdk", "floor")
PIECES = (
    "filter, parent, sampling",
    "attributes",
    "span start/end",
    "context attach/detach",
    "_meta inject/extract",
    "arguments hash + shape",
    "result outcome",
    "metrics",
)


class Queued(SpanProcessor):
    """What a batching processor does on the caller's thread (a bounded append), without its export thread
    waking up in the middle of a timing."""

    def __init__(self) -> None:
        self.spans: deque[ReadableSpan] = deque(maxlen=2048)

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def pieces(stack: ExitStack) -> dict[tuple[str, str, str], Piece]:
    """``(side, piece, way) -> one run of that piece``; pieces a way does not do are absent."""
    from mcp.shared._otel import extract_trace_context, inject_trace_context
    from mcp.types import CallToolResult, TextContent

    from mcp_tracing._core import attributes as attr, spans as _spans
    from mcp_tracing._core.client_tracer import ACTIVE_CLIENT_SPAN, ClientTracer, _Outcome, _without_stale
    from mcp_tracing._core.server_tracer import ServerTracer
    from mcp_tracing._core.tool_spans import claim_tool_span
    from mcp_tracing._core.transport import TransportInfo
    from mcp_tracing._core.unsampled import skips
    from mcp_tracing._sdk.v2 import _GatedSpan
    from mcp_tracing.metrics import McpMetrics
    from mcp_tracing.privacy import Privacy, hash_key
    from mcp_tracing.propagation import extract_meta
    from mcp_tracing.sampling import MethodFilter

    provider = TracerProvider()
    provider.add_span_processor(Queued())
    stack.callback(provider.shutdown)
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    stack.callback(meters.shutdown)
    tracer = provider.get_tracer("mcp_tracing")
    method, params = attr.TOOLS_CALL, {"name": "echo", "arguments": {"text": "hello"}}
    result = CallToolResult(content=[TextContent(type="text", text="hello")])  # what a server handler returns
    # ... and what the client side gets from mcp 2.x's dispatcher: the JSON-RPC result, a dict
    wire_result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    client = ClientTracer(
        tracer,
        server_name="bench",
        transport=TransportInfo(attr.TRANSPORT_PIPE),
        protocol_version="2025-11-25",
        filter=MethodFilter.resolve(None, None),
        privacy=Privacy(),
        metrics=McpMetrics(meters),
    )
    server = ServerTracer(tracer, provider, server_name="bench", metrics=McpMetrics(meters), privacy=Privacy())
    root = tracer.start_span("agent")  # a sampled parent, as an agent's tool.call span would be
    stack.callback(root.end)
    parent_token = otel_context.attach(trace.set_span_in_context(root))
    stack.callback(otel_context.detach, parent_token)
    live = tracer.start_span("live")  # attributes land on a recording span, as they would
    # ... which is current, and the client's own (as it is while the SDK sends the message).
    live_token = otel_context.attach(trace.set_span_in_context(live))
    stack.callback(otel_context.detach, live_token)
    active = ACTIVE_CLIENT_SPAN.set((live, True))
    stack.callback(ACTIVE_CLIENT_SPAN.reset, active)
    client_attributes = client._attributes(method, params)  # pyright: ignore[reportPrivateUsage]
    meta: dict[str, object] = {}
    propagate.inject(meta)
    extracted = extract_meta(meta)
    server_attributes = server._attributes(method, params, 1, "2025-11-25", None)  # pyright: ignore[reportPrivateUsage]
    name = _spans.span_name(method, params)
    outcome = _Outcome(span=live, attributes=client_attributes)

    def client_parent() -> object:
        client.filter.traces(method)
        return skips(client.tracer, client._fallback_context())  # pyright: ignore[reportPrivateUsage]

    def client_attrs() -> object:
        client._ask_peer()  # pyright: ignore[reportPrivateUsage]
        claim_tool_span(method, params)
        return client._attributes(method, params)  # pyright: ignore[reportPrivateUsage]

    def start_end(attributes: dict[str, Any], kind: SpanKind, context: Any = None) -> Piece:
        def run() -> None:
            tracer.start_span(name, context=context, kind=kind, attributes=attributes).end()

        return run

    def client_context() -> None:
        token = otel_context.attach(trace.set_span_in_context(live))
        active = ACTIVE_CLIENT_SPAN.set((live, True))
        ACTIVE_CLIENT_SPAN.reset(active)
        otel_context.detach(token)

    def client_meta() -> None:
        # mcp_tracing strips stale keys; mcp 2.x's dispatcher injects (into our span's context) behind the gate.
        out = dict(_without_stale(params) or {})
        out_meta: dict[str, Any] = {}
        with _GatedSpan(
            lambda *_a, **_k: None,  # pyright: ignore[reportUnknownLambdaType]
            "MCP send tools/call echo",
            kind=SpanKind.CLIENT,
            attributes={"mcp.method.name": method, "jsonrpc.request.id": "1"},
        ):
            inject_trace_context(out_meta)
        out["_meta"] = out_meta

    def server_context() -> None:
        token = otel_context.attach(trace.set_span_in_context(live))
        otel_context.detach(token)

    def client_result() -> None:
        client._record_result(live, method, wire_result, "echo")  # pyright: ignore[reportPrivateUsage]

    def sdk_span(attributes: dict[str, Any], kind: SpanKind, context: Any = None) -> Piece:
        sdk_tracer = provider.get_tracer("mcp-python-sdk")

        def run() -> None:
            with sdk_tracer.start_as_current_span(name, kind=kind, attributes=attributes, context=context):
                pass

        return run

    sdk_client_attributes = {"mcp.method.name": method, "jsonrpc.request.id": "1"}
    sdk_server_attributes = {
        "mcp.method.name": method,
        "mcp.protocol.version": "2025-11-25",
        "jsonrpc.request.id": "1",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "echo",
    }
    histogram: Histogram = meters.get_meter("floor").create_histogram("floor.duration", unit="s")
    metric_attributes = {k: v for k, v in client_attributes.items() if k != attr.SERVER_NAME}
    key = hash_key()

    def floor_hash() -> None:
        arguments = params["arguments"]
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()[:32]
        live.set_attributes({attr.TOOL_ARGS_HASH: digest, attr.TOOL_ARGS_SHAPE: ",".join(sorted(arguments))})

    compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)

    def floor_result() -> None:
        size = len(result.model_dump_json(by_alias=True, exclude_none=True).encode())
        live.set_attributes({attr.TOOL_RESULT_SIZE: size, attr.TOOL_STATUS: attr.STATUS_OK})

    def floor_client_result() -> None:
        live.set_attributes({attr.TOOL_RESULT_SIZE: len(compact.encode(wire_result).encode()), attr.TOOL_STATUS: "ok"})

    def sdk_result() -> None:
        if result.is_error:
            live.set_attribute("error.type", "tool_error")

    def floor_inject() -> None:
        out: dict[str, Any] = {}
        propagate.inject(out)

    return {
        ("client", "filter, parent, sampling", "mcp_tracing"): client_parent,
        ("client", "attributes", "mcp_tracing"): client_attrs,
        ("client", "attributes", "sdk"): lambda: {"mcp.method.name": method, "jsonrpc.request.id": "1"},
        ("client", "attributes", "floor"): lambda: dict(client_attributes),
        ("client", "span start/end", "mcp_tracing"): start_end(client_attributes, SpanKind.CLIENT),
        ("client", "span start/end", "sdk"): sdk_span(sdk_client_attributes, SpanKind.CLIENT),
        ("client", "span start/end", "floor"): start_end(client_attributes, SpanKind.CLIENT),
        ("client", "context attach/detach", "mcp_tracing"): client_context,
        ("client", "context attach/detach", "floor"): server_context,
        ("client", "_meta inject/extract", "mcp_tracing"): client_meta,
        ("client", "_meta inject/extract", "sdk"): lambda: inject_trace_context({}),
        ("client", "_meta inject/extract", "floor"): floor_inject,
        ("client", "arguments hash + shape", "mcp_tracing"): lambda: _spans.record_arguments(
            live, method, params, client.privacy, client.hash_key
        ),
        ("client", "arguments hash + shape", "floor"): floor_hash,
        ("client", "result outcome", "mcp_tracing"): client_result,
        ("client", "result outcome", "floor"): floor_client_result,
        ("client", "metrics", "mcp_tracing"): lambda: client._measure(method, params, outcome, 0.001),  # pyright: ignore[reportPrivateUsage]
        ("client", "metrics", "floor"): lambda: histogram.record(0.001, metric_attributes),
        ("server", "filter, parent, sampling", "mcp_tracing"): lambda: (
            server.filter.traces(method),
            skips(server.tracer, extracted),
        ),
        ("server", "attributes", "mcp_tracing"): lambda: server._attributes(method, params, 1, "2025-11-25", None),  # pyright: ignore[reportPrivateUsage]
        ("server", "attributes", "sdk"): lambda: dict(sdk_server_attributes),
        ("server", "attributes", "floor"): lambda: dict(server_attributes),
        ("server", "span start/end", "mcp_tracing"): start_end(server_attributes, SpanKind.SERVER),
        ("server", "span start/end", "sdk"): sdk_span(sdk_server_attributes, SpanKind.SERVER),
        ("server", "span start/end", "floor"): start_end(server_attributes, SpanKind.SERVER),
        ("server", "context attach/detach", "mcp_tracing"): server_context,
        ("server", "context attach/detach", "floor"): server_context,
        ("server", "_meta inject/extract", "mcp_tracing"): lambda: extract_meta(meta),
        ("server", "_meta inject/extract", "sdk"): lambda: extract_trace_context(meta),
        ("server", "_meta inject/extract", "floor"): lambda: propagate.extract(meta),
        ("server", "arguments hash + shape", "mcp_tracing"): lambda: _spans.record_arguments(
            live, method, params, server.privacy, server.hash_key
        ),
        ("server", "arguments hash + shape", "floor"): floor_hash,
        ("server", "result outcome", "mcp_tracing"): lambda: server.record(live, method, result, params=params),
        ("server", "result outcome", "sdk"): sdk_result,
        ("server", "result outcome", "floor"): floor_result,
        ("server", "metrics", "mcp_tracing"): lambda: server._measure(live, server_attributes, None, 0.001),  # pyright: ignore[reportPrivateUsage]
        ("server", "metrics", "floor"): lambda: histogram.record(0.001, metric_attributes),
    }


def budget(number: int = 2000, repeats: int = 9) -> dict[str, Any]:
    """µs per piece, side and way, with per-side and whole-call totals. The repeats are interleaved (each
    repeat times every piece of every way once, in a shuffled order), so a moment of machine noise lands on
    one repeat of each rather than on every repeat of one way."""
    with ExitStack() as stack:
        runs = pieces(stack)
        for run in runs.values():  # warm every cache first
            for _ in range(200):
                run()
        fastest: dict[tuple[str, str, str], float] = {}
        order = list(runs)
        shuffle = random.Random(7)
        for _ in range(repeats):
            shuffle.shuffle(order)
            for key in order:
                took = timeit.timeit(runs[key], number=number) / number * 1e6
                fastest[key] = min(took, fastest.get(key, took))
    rows: list[dict[str, Any]] = []
    for side in SIDES:
        for piece in PIECES:
            row: dict[str, Any] = {"side": side, "piece": piece}
            for way in WAYS:
                row[way] = fastest.get((side, piece, way))
            rows.append(row)
    totals = {way: sum(row[way] or 0.0 for row in rows) for way in WAYS}
    return {"rows": rows, "totals": totals, "number": number, "repeats": repeats}


def table(result: dict[str, Any]) -> str:
    """The budget as a markdown table (µs per call)."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        "| side | piece | mcp_tracing µs | SDK's own µs | floor µs |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        cells = " | ".join(cell(row[way]) for way in WAYS)
        lines.append(f"| {row['side']} | {row['piece']} | {cells} |")
    totals = result["totals"]
    lines.append("| **both** | **total** | " + " | ".join(f"**{totals[way]:.1f}**" for way in WAYS) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=2000, help="runs of each piece per repeat (default 2000)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    result = budget(args.number)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

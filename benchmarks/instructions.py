"""CPU instructions per MCP tool call, per variant, counted by valgrind's callgrind (deterministic where timings on
a busy host are not): ``python benchmarks/instructions.py [--calls N] [--only VARIANT]``.

Each variant runs in a process of its own under ``valgrind --tool=callgrind --instr-atstart=no``: an MCP server
and a client session in that process, over memory streams (the JSON-RPC path of stdio without the pipes), both
sides traced as the variant says. After a warm-up the process says so; collection is switched on
(``callgrind_control -i on``) for ``N`` ``tools/call echo`` calls only, then off, and the count divided by ``N``.

Variants (both sides alike): ``untraced``; ``meta_by_hand`` (untraced, the calls carrying an unsampled
``traceparent`` in ``_meta`` put there by hand: what the SDK itself spends to carry a context); ``sdk`` (mcp
2.x's own tracing, an SDK TracerProvider); ``mcp_tracing`` (spans and the MCP metrics); ``propagation``
(mcp_tracing, the calls made under an agent span that was not sampled, an always-off sampler, no metrics);
``floor`` (mcp 2.x: the same spans and metrics made with the OTel SDK directly, ``floor.py``). Spans are made
and dropped by a batching processor whose exporter discards them, as in ``run.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

VARIANTS = ("untraced", "meta_by_hand", "sdk", "mcp_tracing", "propagation", "floor")
HAND_META = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
"""What ``meta_by_hand`` sends: an unsampled context in ``_meta``, no tracing at all (the propagation floor)."""
WARMUP = 30

CHILD = r"""
import logging, os, sys
import anyio
from mcp import ClientSession
from opentelemetry import context as otel_context, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import mcp_tracing
from mcp_tracing._core.registry import IS_V2

variant, calls = sys.argv[1], int(sys.argv[2])
logging.disable(logging.INFO)  # mcp 1.x logs every request at INFO on stderr
sys.path.insert(0, __BENCHMARKS__)


class Drop(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


provider = TracerProvider(sampler=ALWAYS_OFF) if variant == "propagation" else TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Drop()))
if variant in ("sdk",):
    trace.set_tracer_provider(provider)  # the SDK's own spans, through the global provider
metered = variant in ("mcp_tracing", "floor")
meters = MeterProvider(metric_readers=[InMemoryMetricReader()]) if metered else NoOpMeterProvider()

if IS_V2:
    from mcp.server.mcpserver import MCPServer as Server
else:
    from mcp.server.fastmcp import FastMCP as Server

server = Server("bench")


@server.tool()
def echo(text: str) -> str:
    return text


lowlevel = getattr(server, "_lowlevel_server", None) or getattr(server, "_mcp_server")
if variant in ("mcp_tracing", "propagation"):
    mcp_tracing.instrument_server(server, tracer_provider=provider, meter_provider=meters)
elif variant == "floor":
    import floor

    floor.install_server(server, provider, meters)


async def main():
    client_write, server_read = anyio.create_memory_object_stream(16)
    server_write, client_read = anyio.create_memory_object_stream(16)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lowlevel.run, server_read, server_write, lowlevel.create_initialization_options())
        async with ClientSession(client_read, client_write) as session:
            if variant in ("mcp_tracing", "propagation"):
                mcp_tracing.trace_session(session, tracer_provider=provider, meter_provider=meters)
            elif variant == "floor":
                floor.install_client(session, provider, meters)
            await session.initialize()
            if variant == "propagation":  # an agent whose turn was not sampled: its calls carry that on
                parent = trace.NonRecordingSpan(
                    trace.SpanContext(0x5CE0E9A5, 0x5CE0E9A5, is_remote=False, trace_flags=trace.TraceFlags(0))
                )
                otel_context.attach(trace.set_span_in_context(parent))
            options = {"meta": __HAND_META__} if variant == "meta_by_hand" else {}
            for _ in range(__WARMUP__):
                await session.call_tool("echo", {"text": "hello"}, **options)
            print("ready", flush=True)
            sys.stdin.readline()
            for _ in range(calls):
                await session.call_tool("echo", {"text": "hello"}, **options)
            print("done", flush=True)
            sys.stdin.readline()
        tg.cancel_scope.cancel()


anyio.run(main)
os._exit(0)  # no exit-time flushing in the count
"""
CHILD = (
    CHILD.replace("__WARMUP__", str(WARMUP))
    .replace("__HAND_META__", repr(HAND_META))
    .replace("__BENCHMARKS__", repr(str(Path(__file__).resolve().parent)))
)


def count(variant: str, calls: int, python: str) -> int:
    """Instructions (``Ir``) of ``calls`` calls of one variant."""
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control is None:
        raise SystemExit("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        child = subprocess.Popen(
            [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", "-q"]
            + [python, "-c", CHILD, variant, str(calls)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            for expected, switch in (("ready", "on"), ("done", "off")):
                line = child.stdout.readline().strip()
                if line != expected:
                    raise RuntimeError(f"{variant}: expected {expected!r}, got {line!r}")
                subprocess.run([control, "-i", switch, str(child.pid)], check=True, capture_output=True, timeout=120)
                child.stdin.write("\n")
                child.stdin.flush()
            child.wait(timeout=600)
        finally:
            if child.poll() is None:
                child.kill()
        totals = re.search(r"^totals: (\d+)", out.read_text(), re.M)  # "summary" stays 0 with --instr-atstart=no
        if totals is None:
            raise RuntimeError(f"{variant}: no totals in the callgrind output")
        return int(totals.group(1))


def mcp_version(python: str) -> str:
    """The mcp version ``python`` has installed."""
    return subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('mcp'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def variants_for(line: str) -> list[str]:
    """The variants an SDK line has: mcp 1.x has no tracing of its own (its "sdk" variant would be the untraced
    call again), and the floor is written against mcp 2.x."""
    return [v for v in VARIANTS if not (line.startswith("1.") and v in ("sdk", "floor"))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls counted per variant (default 200)")
    parser.add_argument("--only", action="append", choices=VARIANTS, help="only these variants (repeatable)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter (its mcp line is measured)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    line = mcp_version(args.python)
    variants = [v for v in variants_for(line) if not args.only or v in args.only]
    results = {variant: count(variant, args.calls, args.python) / args.calls for variant in variants}
    if args.json:
        print(json.dumps(results))
        return 0
    base = results.get("untraced")
    print(f"mcp {line}: one in-process tools/call echo, client and server, {args.calls} calls counted per variant")
    for variant, per_call in results.items():
        extra = ""
        if base is not None and variant != "untraced":
            extra = f"  (+{(per_call - base) / 1e3:,.0f}k, {per_call / base:.3f}x untraced)"
        print(f"{variant:>12}: {per_call / 1e3:,.0f}k instructions per call{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

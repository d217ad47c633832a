"""Runs every benchmark and writes the results: ``python benchmarks/run.py`` (``--smoke`` for a quick check).

What is measured (each a paired, interleaved run in this one process: every round calls each variant once,
in a shuffled order, so drift and noise hit all variants alike):

* a stdio tool call (``echo``), untraced vs untraced with an unsampled context put in ``_meta`` by hand
  (what the SDK itself spends to carry a context: the floor of "propagation only") vs mcp 2.x's built-in
  tracing vs mcp_tracing fully traced (client and server: spans and the MCP metrics) vs propagation only (the
  calls made under an agent span that was not sampled: context carried, nothing recorded, no metrics) vs the
  floor (``floor.py``: the same spans and metrics made with the OpenTelemetry SDK directly, nothing else);
* the same over streamable HTTP;
* the same two on mcp 1.30 (untraced vs mcp_tracing vs propagation only), when ``--mcp1-python`` names an
  interpreter with mcp 1.30 (``.venv-mcp1/bin/python`` by default, where it exists);
* CPU instructions per call of each variant on both lines (``instructions.py``, under valgrind, when installed);
* the per-piece budget of a call (``budget.py``: µs per piece and side, mcp_tracing vs the SDK's own vs the floor);
* the ``mcp-tracing wrap`` proxy vs the same server called directly;
* the tail sampler's memory at 50k spans a minute for 10 simulated minutes;
* the local store at 1M spans (``store.py``): each command of the incident workflow, ingest from 1 and 4
  processes on an empty store and on one at its cap, size per span.

For each call variant: the median, the 10th-90th percentile spread, the ratio of medians to the untraced
call, the paired ratio (the median over rounds of variant/untraced in the same round) and, where mcp 2.x's own
tracing runs beside it, the paired ratio to that. Spans are made
for real (an SDK TracerProvider, batched) and dropped by the exporter: the cost of making them, not of
shipping them. Results go to ``benchmarks/results.json`` and ``benchmarks/results.md``; a full run also puts
the tables into README.md between the ``bench``, ``budget`` and ``store`` markers. ``--smoke`` runs a few rounds of each
and checks the results are right (CI runs it), with no claim about speed (and no mcp 1.30 or valgrind run).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client as sdk_stdio_client
from opentelemetry import context as otel_context, trace
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import mcp_tracing
from mcp_tracing._core.registry import IS_V2, MCP_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parent))
import budget
import floor
import instructions
import store

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "benchmarks" / "bench_server.py"
README = ROOT / "README.md"
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")
STORE_MARKERS = ("<!-- store:start -->", "<!-- store:end -->")
BUDGET_MARKERS = ("<!-- budget:start -->", "<!-- budget:end -->")
TARGETS = {"mcp_tracing": ("mcp 2.x built-in", 1.02), "propagation only": ("untraced", 1.03)}
"""The latency targets: variant -> (compared with, at most this paired ratio)."""
UNSAMPLED_TURN = trace.set_span_in_context(
    trace.NonRecordingSpan(trace.SpanContext(0x5CE0E9A5, 0x5CE0E9A5, is_remote=False, trace_flags=trace.TraceFlags(0)))
)
"""An agent's turn that was not sampled: the "propagation only" calls are made in it."""
BENCHMARKS = ("stdio", "http", "proxy", "tail_memory", "store", "budget")


class Counting(SpanExporter):
    """Drops spans, counting them (the smoke run checks what was made)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def provider(exporter: SpanExporter, **options: Any) -> TracerProvider:
    made = TracerProvider(**options)
    made.add_span_processor(BatchSpanProcessor(exporter))
    return made


# mcp 2.x makes its own spans with one module-level tracer, bound to the global provider. To measure
# "untraced" and "built-in" side by side in one process, that tracer is replaced by one that asks which
# variant is calling (a context variable set around each call): a no-op tracer, or an SDK tracer.
SDK_TRACER: contextvars.ContextVar[trace.Tracer] = contextvars.ContextVar("bench_sdk_tracer")
NOOP = trace.NoOpTracer()


class _VariantTracer:
    def __getattr__(self, name: str) -> Any:
        return getattr(SDK_TRACER.get(NOOP), name)


def install_variant_tracer() -> None:
    if IS_V2:
        import importlib

        setattr(importlib.import_module("mcp.shared._otel"), "_tracer", _VariantTracer())  # noqa: B010


@dataclass
class Variant:
    name: str
    server_mode: str  # BENCH_MODE of its server
    sdk_tracer: trace.Tracer = NOOP
    tracer_provider: TracerProvider | None = None  # trace_session with this provider
    meters: bool = True  # trace_session's metrics into an SDK MeterProvider (else a no-op one)
    floor: bool = False  # floor.install_client instead of trace_session
    meta: dict[str, Any] | None = None  # call_tool(meta=...): a context put in _meta by hand
    parent: Context | None = None  # attached around each call
    proxied: bool = False
    session: Any = None
    samples: list[float] = field(default_factory=lambda: [])


@dataclass
class Setup:
    """The providers the variants use; their exporters count what was made."""

    builtin: Counting = field(default_factory=Counting)
    full: Counting = field(default_factory=Counting)
    unsampled: Counting = field(default_factory=Counting)
    floored: Counting = field(default_factory=Counting)
    meters: MeterProvider = field(default_factory=lambda: MeterProvider(metric_readers=[InMemoryMetricReader()]))

    def __post_init__(self) -> None:
        self.builtin_provider = provider(self.builtin)
        self.full_provider = provider(self.full)
        self.unsampled_provider = provider(self.unsampled, sampler=ALWAYS_OFF)
        self.floor_provider = provider(self.floored)

    def call_variants(self) -> list[Variant]:
        variants = [
            Variant("untraced", "untraced"),
            Variant("_meta by hand", "untraced", meta=dict(instructions.HAND_META)),
        ]
        if IS_V2:
            variants.append(Variant("mcp 2.x built-in", "sdk", sdk_tracer=self.builtin_provider.get_tracer("mcp")))
        variants.append(Variant("mcp_tracing", "traced", tracer_provider=self.full_provider))
        variants.append(
            Variant(
                "propagation only",
                "propagation",
                tracer_provider=self.unsampled_provider,
                meters=False,
                parent=UNSAMPLED_TURN,
            )
        )
        if IS_V2:
            variants.append(Variant("floor", "floor", tracer_provider=self.floor_provider, floor=True))
        return variants

    def flush(self) -> None:
        for made in (self.builtin_provider, self.full_provider, self.unsampled_provider, self.floor_provider):
            made.force_flush()


def server_env(mode: str, transport: str = "stdio") -> dict[str, str]:
    return {"BENCH_MODE": mode, "BENCH_TRANSPORT": transport, "MCP_TRACING_STORE": os.environ["MCP_TRACING_STORE"]}


async def open_stdio(stack: AsyncExitStack, variant: Variant, setup: Setup) -> Any:
    args = [str(SERVER)]
    if variant.proxied:
        args = ["-m", "mcp_tracing.cli", "wrap", "--", sys.executable, str(SERVER)]
    params = StdioServerParameters(command=sys.executable, args=args, env=server_env(variant.server_mode))
    traced = variant.tracer_provider is not None and not variant.floor
    transport = mcp_tracing.stdio_client(params) if traced else sdk_stdio_client(params)
    read, write = await stack.enter_async_context(transport)
    return await start_session(stack, read, write, variant, setup)


async def start_session(stack: AsyncExitStack, read: Any, write: Any, variant: Variant, setup: Setup) -> Any:
    session = await stack.enter_async_context(ClientSession(read, write))
    meters = setup.meters if variant.meters else NoOpMeterProvider()
    if variant.floor and variant.tracer_provider is not None:
        floor.install_client(session, variant.tracer_provider, setup.meters)
    elif variant.tracer_provider is not None:
        mcp_tracing.trace_session(session, tracer_provider=variant.tracer_provider, meter_provider=meters)
    await session.initialize()
    return session


@asynccontextmanager
async def http_server(mode: str) -> AsyncIterator[str]:
    env = {**os.environ, **server_env(mode, "http")}
    process = await anyio.open_process([sys.executable, str(SERVER)], env=env, stderr=None)
    try:
        assert process.stdout is not None
        received = b""
        with anyio.fail_after(60):
            while b"\n" not in received:
                received += await process.stdout.receive()
        line = received.split(b"\n", 1)[0].decode()
        if not line.startswith("URL "):
            raise RuntimeError(f"the HTTP bench server did not start ({mode})")
        yield line.split()[1]
    finally:
        process.terminate()
        with anyio.fail_after(30):
            await process.wait()
        await process.aclose()


async def open_http(stack: AsyncExitStack, variant: Variant, setup: Setup) -> Any:
    url = await stack.enter_async_context(http_server(variant.server_mode))
    if variant.tracer_provider is not None and not variant.floor:
        transport = mcp_tracing.streamable_http_client(url)
    else:
        from mcp.client.streamable_http import streamable_http_client

        transport = streamable_http_client(url)
    read, write, *_ = await stack.enter_async_context(transport)
    return await start_session(stack, read, write, variant, setup)


async def call(variant: Variant) -> float:
    token = SDK_TRACER.set(variant.sdk_tracer)
    parent = otel_context.attach(variant.parent) if variant.parent is not None else None
    try:
        started = time.perf_counter()
        if variant.meta is not None:
            result = await variant.session.call_tool("echo", {"text": "hello"}, meta=variant.meta)
        else:
            result = await variant.session.call_tool("echo", {"text": "hello"})
        elapsed = time.perf_counter() - started
    finally:
        if parent is not None:
            otel_context.detach(parent)
        SDK_TRACER.reset(token)
    text = result.content[0].text
    if text != "hello":
        raise AssertionError(f"{variant.name}: the call returned {text!r}")
    return elapsed


async def measure(variants: list[Variant], rounds: int, warmup: int, seed: int = 7) -> None:
    order = list(variants)
    shuffle = random.Random(seed)
    for index in range(warmup + rounds):
        shuffle.shuffle(order)
        for variant in order:
            elapsed = await call(variant)
            if index >= warmup:
                variant.samples.append(elapsed)


def summarize(variants: list[Variant]) -> list[dict[str, Any]]:
    base = variants[0].samples
    by_name = {variant.name: variant.samples for variant in variants}
    sdk = by_name.get("mcp 2.x built-in")
    rows: list[dict[str, Any]] = []
    for variant in variants:
        samples = variant.samples
        deciles = statistics.quantiles(samples, n=10)
        paired = statistics.median(v / b for v, b in zip(samples, base, strict=True))
        target = TARGETS.get(variant.name)
        target_paired = None
        if target is not None and target[0] in by_name:
            reference = by_name[target[0]]
            target_paired = statistics.median(v / b for v, b in zip(samples, reference, strict=True))
        rows.append(
            {
                "variant": variant.name,
                "median_ms": statistics.median(samples) * 1e3,
                "p10_ms": deciles[0] * 1e3,
                "p90_ms": deciles[-1] * 1e3,
                "ratio": statistics.median(samples) / statistics.median(base),
                "paired_ratio": paired,
                "vs_sdk": statistics.median(v / b for v, b in zip(samples, sdk, strict=True)) if sdk else None,
                "target": None
                if target is None or target_paired is None
                else {"vs": target[0], "at_most": target[1], "paired": target_paired},
                "calls": len(samples),
            }
        )
    return rows


async def bench_calls(
    opener: Callable[[AsyncExitStack, Variant, Setup], Any], rounds: int, warmup: int, setup: Setup
) -> list[dict[str, Any]]:
    variants = setup.call_variants()
    async with AsyncExitStack() as stack:
        for variant in variants:
            variant.session = await opener(stack, variant, setup)
        await measure(variants, rounds, warmup)
    return summarize(variants)


async def bench_proxy(rounds: int, warmup: int, setup: Setup) -> list[dict[str, Any]]:
    variants = [Variant("direct", "untraced"), Variant("mcp-tracing wrap", "untraced", proxied=True)]
    async with AsyncExitStack() as stack:
        for variant in variants:
            variant.session = await open_stdio(stack, variant, setup)
        await measure(variants, rounds, warmup)
    return summarize(variants)


def bench_tail_memory(minutes: int, per_minute: int) -> dict[str, Any]:
    """The tail sampler fed ``per_minute`` spans a minute (10-span traces) on a simulated clock."""
    from mcp_tracing.sampling import TailSamplingProcessor

    now = [0.0]
    kept = Counting()
    sampler = TailSamplingProcessor(SimpleSpanProcessor(kept), clock=lambda: now[0], background=False)
    made = TracerProvider()
    made.add_span_processor(sampler)
    tracer = made.get_tracer("bench")
    step = 60.0 / per_minute
    peak_buffered = 0
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    traces = minutes * per_minute // 10
    for _ in range(traces):
        with tracer.start_as_current_span("agent.turn"):
            for _ in range(9):
                tracer.start_span("tool.call").end()
                now[0] += step
        now[0] += step
        peak_buffered = max(peak_buffered, sampler.stats().buffered_spans)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stats = sampler.stats()
    made.shutdown()
    return {
        "simulated_minutes": minutes,
        "spans_per_minute": per_minute,
        "spans": traces * 10,
        "peak_buffered_spans": peak_buffered,
        "peak_memory_mb": (peak - baseline) / 2**20,
        "end_memory_mb": (current - baseline) / 2**20,
        "kept_traces": stats.kept_traces,
        "dropped_traces": stats.dropped_traces,
    }


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "mcp": MCP_VERSION,
        "mcp_tracing": mcp_tracing.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def _call_rows(label: str, rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for row in rows:
        vs_sdk = f"{row['vs_sdk']:.3f}x" if row.get("vs_sdk") is not None else ""
        target = row.get("target")
        goal = ""
        if target:
            met = "met" if target["paired"] <= target["at_most"] else "**missed**"
            goal = f"<= {target['at_most']:.2f}x {'the SDK' if target['vs'] != 'untraced' else 'untraced'}: {met}"
        lines.append(
            f"| {label} | {row['variant']} | {row['median_ms']:.3f} ms | {row['p10_ms']:.3f}-{row['p90_ms']:.3f} ms "
            f"| {row['ratio']:.3f}x | {row['paired_ratio']:.3f}x | {vs_sdk} | {goal} |"
        )
    return lines


def instructions_table(counted: dict[str, dict[str, float]]) -> list[str]:
    """Instructions per call of each variant, per SDK line (``instructions.py``)."""
    lines = ["| one in-process `tools/call echo` | " + " | ".join(f"mcp {line}" for line in counted) + " |"]
    lines.append("|---|" + "---|" * len(counted))
    names = {
        "untraced": "untraced",
        "meta_by_hand": "untraced, an unsampled `_meta` put there by hand",
        "sdk": "the SDK's own tracing",
        "mcp_tracing": "mcp_tracing, spans and metrics",
        "propagation": "propagation only (unsampled turn)",
        "floor": "floor: the same with the OTel SDK directly",
    }
    for variant, name in names.items():
        cells: list[str] = []
        for per_line in counted.values():
            value, base, sdk = per_line.get(variant), per_line.get("untraced"), per_line.get("sdk")
            if value is None or base is None:
                cells.append("-")
                continue
            cell = f"{value / 1e3:,.0f}k"
            if variant != "untraced":
                cell += f" (+{(value - base) / 1e3:,.0f}k"
                if sdk is not None and variant in ("mcp_tracing", "floor"):
                    cell += f", {(value - base) / (sdk - base):.2f}x the SDK's"
                cell += ")"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Ran {m['date']} on {m['cpu']} ({m['cores']} cores), {m['os']}, Python {m['python']}, mcp {m['mcp']}, "
        f"mcp_tracing {m['mcp_tracing']}; {results['rounds']} paired rounds per call benchmark.",
        "",
        "| benchmark | variant | median | p10-p90 | ratio (medians) | paired ratio | vs the SDK's own | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for bench in ("stdio", "http", "proxy"):
        lines += _call_rows(f"{bench} tool call", results.get(bench, []))
    mcp1 = results.get("mcp1") or {}
    for bench in ("stdio", "http"):
        lines += _call_rows(f"{bench} tool call, mcp {mcp1.get('mcp', '1.x')}", mcp1.get(bench, []))
    tail = results.get("tail_memory")
    if tail is not None:
        lines.append(
            f"| tail sampler | {tail['spans_per_minute']:,} spans/min for {tail['simulated_minutes']} simulated min "
            f"({tail['spans']:,} spans) | peak {tail['peak_memory_mb']:.1f} MB, at most "
            f"{tail['peak_buffered_spans']:,} spans buffered | | | | | bounded |"
        )
    counted = results.get("instructions")
    if counted:
        lines += ["", f"CPU instructions per call (callgrind, {results['instruction_calls']} calls counted):", ""]
        lines += instructions_table(counted)
    return "\n".join(lines) + "\n"


def update_readme(text: str, markers: tuple[str, str] = MARKERS) -> None:
    readme = README.read_text()
    start, end = readme.find(markers[0]), readme.find(markers[1])
    if start < 0 or end < 0:
        raise SystemExit(f"README.md has no {markers[0]} markers")
    README.write_text(readme[: start + len(markers[0])] + "\n" + text + readme[end:])


def check_smoke(results: dict[str, Any], setup: Setup) -> None:
    """What a smoke run must show: every variant measured, spans made where they should be, none elsewhere."""
    expected = [
        "untraced",
        "_meta by hand",
        *(["mcp 2.x built-in"] if IS_V2 else []),
        "mcp_tracing",
        "propagation only",
        *(["floor"] if IS_V2 else []),
    ]
    for bench in ("stdio", "http"):
        measured = [row["variant"] for row in results.get(bench, [])]
        if bench in results and measured != expected:
            raise AssertionError(f"variants measured ({bench}): {measured}")
    made = (setup.full.spans, setup.unsampled.spans, setup.builtin.spans, setup.floored.spans)
    calls_made = "stdio" in results or "http" in results
    if calls_made and (made[0] == 0 or made[1] != 0 or (IS_V2 and (made[2] == 0 or made[3] == 0))):
        raise AssertionError(f"spans made (full, unsampled, built-in, floor): {made}")
    tail = results.get("tail_memory")
    if tail is not None and tail["kept_traces"] + tail["dropped_traces"] == 0:
        raise AssertionError("the tail sampler decided nothing")
    rows = results["budget"]["rows"] if "budget" in results else []
    if not all(row["mcp_tracing"] > 0 and (row["floor"] is not None or "filter" in row["piece"]) for row in rows):
        raise AssertionError("the budget left a piece unmeasured")
    if "store" in results:
        store.check(results["store"])


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    setup = Setup()
    install_variant_tracer()
    rounds, warmup = (20, 5) if args.smoke else (args.rounds, 100)
    results: dict[str, Any] = {"machine": machine(), "rounds": rounds, "smoke": args.smoke}
    only = set(args.only or BENCHMARKS)
    if "stdio" in only:
        results["stdio"] = await bench_calls(open_stdio, rounds, warmup, setup)
    if "http" in only:
        results["http"] = await bench_calls(open_http, rounds, warmup, setup)
    if "proxy" in only:
        results["proxy"] = await bench_proxy(rounds, warmup, setup)
    setup.flush()
    minutes, per_minute = (1, 5_000) if args.smoke else (10, 50_000)
    if "tail_memory" in only:
        results["tail_memory"] = bench_tail_memory(minutes, per_minute)
    if "store" in only:
        sizes = (5_000, 2_000) if args.smoke else (1_000_000, 200_000)
        results["store"] = store.run(*sizes, lambda text: print(f"store: {text}", file=sys.stderr, flush=True))
    if "budget" in only and IS_V2:
        results["budget"] = budget.budget(200 if args.smoke else 5000)
    if args.smoke:
        check_smoke(results, setup)
    results["spans_made"] = {
        "built-in": setup.builtin.spans,
        "mcp_tracing": setup.full.spans,
        "floor": setup.floored.spans,
    }
    return results


def other_line(python: str, args: argparse.Namespace) -> dict[str, Any]:
    """The stdio and HTTP call benchmarks run by ``python`` (another SDK line), as ``run.py --only ... --json``."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [python, str(Path(__file__).resolve()), "--rounds", str(args.rounds), "--output", tmp, "--no-readme"]
        done = subprocess.run(
            [*command, "--only", "stdio", "--only", "http"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Its servers' own shutdown noise (mcp 1.x logs a cancelled SSE writer at SIGTERM) is shown only on failure.
        if done.returncode != 0:
            raise SystemExit(f"{python} benchmarks/run.py failed:\n{done.stderr[-3000:]}")
        other = json.loads((Path(tmp) / "results.json").read_text())
    return {"mcp": other["machine"]["mcp"], "stdio": other["stdio"], "http": other["http"]}


def count_instructions(pythons: Sequence[str], calls: int) -> dict[str, dict[str, float]]:
    """Instructions per call of every variant each interpreter's SDK line has (``instructions.py``)."""
    counted: dict[str, dict[str, float]] = {}
    for python in pythons:
        line = instructions.mcp_version(python)
        variants = instructions.variants_for(line)
        counted[line] = {variant: instructions.count(variant, calls, python) / calls for variant in variants}
    return counted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="a few rounds of each, checked for correctness")
    parser.add_argument("--rounds", type=int, default=2000, help="paired rounds per call benchmark (default 2000)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks", help="where results.json/md go")
    parser.add_argument("--no-readme", action="store_true", help="do not put the tables into README.md")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these (repeatable)")
    default_mcp1 = ROOT / ".venv-mcp1" / "bin" / "python"
    parser.add_argument(
        "--mcp1-python",
        default=str(default_mcp1) if default_mcp1.exists() and IS_V2 else None,
        help="an interpreter with mcp 1.30: its stdio and HTTP rows too (default .venv-mcp1/bin/python)",
    )
    parser.add_argument(
        "--instruction-calls",
        type=int,
        default=200,
        help="calls counted per variant under callgrind (0: none; default 200, skipped without valgrind)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MCP_TRACING_STORE"] = str(Path(tmp) / "proxy.db")  # where the wrap proxy's spans go
        results = anyio.run(run_all, args)
    full = not args.smoke and not args.only
    if full and args.mcp1_python:
        results["mcp1"] = other_line(args.mcp1_python, args)
    if full and args.instruction_calls and shutil.which("valgrind"):
        pythons = [sys.executable, *([args.mcp1_python] if args.mcp1_python else [])]
        results["instructions"] = count_instructions(pythons, args.instruction_calls)
        results["instruction_calls"] = args.instruction_calls
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    budget_text = budget.table(results["budget"]) if "budget" in results else ""
    (args.output / "results.md").write_text(text + ("\n" + budget_text if budget_text else ""))
    print(text)
    print(budget_text)
    if "store" in results:
        print(store.table(results["store"]))
    if full and not args.no_readme:
        update_readme(text)
        if "store" in results:
            update_readme(store.table(results["store"]) + "\n", STORE_MARKERS)
        if budget_text:
            update_readme(budget_text, BUDGET_MARKERS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

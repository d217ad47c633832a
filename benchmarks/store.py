"""The local store at the lesson's scale: ``python benchmarks/store.py [--spans N] [--json]``.

Generates a store of ``N`` spans (default 1,000,000) shaped as the lesson's sessions are (an ``agent.session``
with a request id, a user, a source and a cost; turns; model calls with tokens; tool calls on the agent's side
and their server spans in two server processes, about 23 spans a trace, 5% of traces with an error), started
over the last two hours, written through ``SqliteSpanExporter`` in batches of 512 as the export thread
writes them. Then it times each ``mcp-tracing`` command of the incident workflow on it (median of 5, the CLI
in process), the store's size per span, and ingest in spans/s from 1 and 4 processes on an empty store and on
a store at its cap (where every writer's retention runs), checking that no span is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mcp_tracing.store import SqliteSpanExporter, TraceStore
from mcp_tracing.testing import SpanRecord

MS = 1_000_000
BATCH = 512
WINDOW_S = 2 * 3600


def session(chance: random.Random, number: int, start: int) -> list[SpanRecord]:
    """One session of the lesson's shape: about 23 spans, across the agent and two servers."""
    trace_id = f"{chance.getrandbits(128):032x}"
    spans: list[SpanRecord] = []

    def add(
        name: str,
        parent: str | None,
        begin: int,
        length: int,
        service: str,
        attributes: dict[str, Any],
        status: str = "UNSET",
    ) -> str:
        span_id = f"{chance.getrandbits(64):016x}"
        spans.append(
            SpanRecord(
                name=name,
                trace_id=trace_id,
                span_id=span_id,
                parent_id=parent,
                kind="INTERNAL",
                start_ns=begin,
                end_ns=begin + length,
                status=status,
                service=service,
                pid=1,
                attributes=attributes,
            )
        )
        return span_id

    failed = chance.random() < 0.05
    root = add(
        "agent.session",
        None,
        start,
        9_000 * MS,
        "agent",
        {
            "request_id": f"req-{number}",
            "user.id": f"u{number % 500}",
            "gen_ai.agent.name": "support",
            "mcp_tracing.session.request_source": chance.choice(["api", "slack", "cron"]),
            "mcp_tracing.session.total_cost_estimate": round(chance.random() * 2, 4),
        },
    )
    at = start + MS
    for turn_number in range(3):
        turn = add("agent.turn", root, at, 2_500 * MS, "agent", {"mcp_tracing.turn.number": turn_number})
        add(
            "model.call",
            turn,
            at + MS,
            800 * MS,
            "agent",
            {
                "gen_ai.request.model": "claude-sonnet",
                "gen_ai.usage.input_tokens": chance.randint(500, 9000),
                "gen_ai.usage.output_tokens": chance.randint(10, 900),
            },
        )
        for call in range(3):
            tool = chance.choice(["read_file", "search", "query", "write_file", "list_dir"])
            server = "files-server" if tool in ("read_file", "write_file", "list_dir") else "search-server"
            begin = at + (900 + call * 300) * MS
            client = add(
                f"tools/call {tool}",
                turn,
                begin,
                250 * MS,
                "agent",
                {
                    "gen_ai.tool.name": tool,
                    "mcp.method.name": "tools/call",
                    "jsonrpc.request.id": str(turn_number * 3 + call + 2),
                    "mcp_tracing.server.name": server,
                    "mcp_tracing.tool.args_hash": f"{chance.getrandbits(64):016x}",
                },
            )
            bad = failed and turn_number == 2 and call == 2
            add(
                f"tools/call {tool}",
                client,
                begin + 2 * MS,
                240 * MS,
                server,
                {
                    "gen_ai.tool.name": tool,
                    "mcp.method.name": "tools/call",
                    "mcp_tracing.tool.status": "error" if bad else "ok",
                    "mcp_tracing.tool.result_size": chance.randint(10, 200_000),
                },
                "ERROR" if bad else "UNSET",
            )
        at += 2_600 * MS
    return spans


def sessions(count_spans: int, *, seed: int = 1, end_ns: int | None = None) -> Iterator[list[SpanRecord]]:
    """Sessions totalling at least ``count_spans`` spans, started evenly over the two hours before ``end_ns``."""
    chance = random.Random(seed)
    end = end_ns if end_ns is not None else time.time_ns()
    per = 23
    count = -(-count_spans // per)
    for number in range(count):
        yield session(chance, number, end - WINDOW_S * 10**9 + number * (WINDOW_S * 10**9 // count))


def batches(count_spans: int, **options: Any) -> Iterator[list[SpanRecord]]:
    pending: list[SpanRecord] = []
    for spans in sessions(count_spans, **options):
        pending.extend(spans)
        while len(pending) >= BATCH:
            yield pending[:BATCH]
            pending = pending[BATCH:]
    if pending:
        yield pending


def write(path: Path, count_spans: int, **options: Any) -> tuple[int, float]:
    """Writes through the exporter's own transaction (the export thread's path); spans written and seconds."""
    exporter = SqliteSpanExporter(path)
    connection = exporter._open()  # pyright: ignore[reportPrivateUsage]
    assert connection is not None
    written = 0
    elapsed = 0.0
    for batch in batches(count_spans, **options):  # made outside the timing: the export thread gets them made
        started = time.perf_counter()
        exporter._insert(connection, batch)  # pyright: ignore[reportPrivateUsage]
        exporter._written += len(batch)  # pyright: ignore[reportPrivateUsage]
        if exporter._written >= 1_000:  # pyright: ignore[reportPrivateUsage]
            exporter._written = 0  # pyright: ignore[reportPrivateUsage]
            exporter._apply_retention(connection)  # pyright: ignore[reportPrivateUsage]
        elapsed += time.perf_counter() - started
        written += len(batch)
    exporter.shutdown()
    return written, elapsed


def _writer(path: str, count_spans: int, seed: int, cap: int, end_ns: int, out: Any) -> None:
    os.environ["MCP_TRACING_STORE_MAX_SPANS"] = str(cap)
    out.put(write(Path(path), count_spans, seed=seed, end_ns=end_ns))


def ingest(path: Path, processes: int, spans_each: int, cap: int, end: int) -> dict[str, Any]:
    """Spans/s from ``processes`` writers at once (wall time of the slowest), and what the store holds. The
    sessions written start in the two hours before ``end``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_writer, args=(str(path), spans_each, 100 + n, cap, end, queue))
        for n in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    wall = time.perf_counter() - started
    written = sum(r[0] for r in results)
    store = TraceStore(path)
    held = store._query("SELECT count(*) FROM spans")[0][0]  # pyright: ignore[reportPrivateUsage]
    store.close()
    return {
        "processes": processes,
        "spans": written,
        "spans_per_s": written / max(r[1] for r in results),
        "wall_s": wall,
        "held": held,
    }


def timed(command: list[str], runs: int = 5) -> dict[str, Any]:
    from mcp_tracing import cli

    timings: list[float] = []
    output = ""
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
            status = cli.main(command)
        timings.append(time.perf_counter() - started)
        if status != 0:
            raise AssertionError(f"{command}: exit {status}: {err.getvalue()[:300]}")
        output = out.getvalue() + err.getvalue()
    return {"median_ms": statistics.median(timings) * 1e3, "max_ms": max(timings) * 1e3, "output": output}


def commands(path: Path, trace_id: str) -> list[tuple[str, list[str]]]:
    store = ["--store", str(path)]
    return [
        ("traces", [*store, "traces"]),
        ("traces --where tool_name=query", [*store, "traces", "--where", "tool_name=query"]),
        ("traces --where request_id=req-1234", [*store, "traces", "--where", "request_id=req-1234"]),
        ("traces --where user_id=u7", [*store, "traces", "--where", "user_id=u7"]),
        ("traces --where tokens_in>8900", [*store, "traces", "--where", "tokens_in>8900"]),
        ("traces --errors --since 1h", [*store, "traces", "--errors", "--since", "1h"]),
        ("show ID", [*store, "show", trace_id]),
        ("analyze ID", [*store, "analyze", trace_id]),
        ("analyze --since 1h", [*store, "analyze", "--since", "1h"]),
    ]


def run(spans: int, ingest_spans: int, report: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {"spans": spans}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.db"
        report(f"writing {spans:,} spans ...")
        written, seconds = write(path, spans)
        results["generate"] = {"spans": written, "spans_per_s": written / seconds}
        size = sum(p.stat().st_size for p in Path(tmp).glob("big.db*"))
        results["bytes_per_span"] = size / written
        store = TraceStore(path)
        trace_id = store.traces(where=[], limit=1)[0].trace_id
        results["traces"] = store.count_traces()
        store.close()
        results["ingest_spans"] = ingest_spans
        results["commands"] = {}
        for name, command in commands(path, trace_id):
            report(f"timing {name} ...")
            timing = timed(command)
            results["commands"][name] = {k: v for k, v in timing.items() if k != "output"}
            if name == "analyze --since 1h":
                lines = timing["output"].splitlines()
                results["commands"][name]["said"] = [line for line in lines if "skipped" in line][:1]
        store = TraceStore(path)
        newest = store._query("SELECT max(start_ns) FROM traces")[0][0]  # pyright: ignore[reportPrivateUsage]
        store.close()
        for processes in (1, 4):
            for at_cap in (False, True):
                where = f"a store at its cap of {spans:,}" if at_cap else "an empty store"
                label = f"{processes} process{'es' if processes > 1 else ''}, {where}"
                report(f"ingest: {label} ...")
                target = Path(tmp) / f"ingest-{processes}-{at_cap}.db"
                if at_cap:  # the generated store, full: every batch written makes retention delete as much
                    shutil.copyfile(path, target)
                cap = spans if at_cap else 10 * ingest_spans
                end = newest + WINDOW_S * 10**9 + 1  # every session written is newer than the store's
                row = ingest(target, processes, ingest_spans // processes, cap, end)
                store = TraceStore(target)
                new = store._query(  # pyright: ignore[reportPrivateUsage]
                    "SELECT total(spans) FROM traces WHERE start_ns > ?", [newest]
                )[0][0]
                store.close()
                row["lost"] = row["spans"] - int(new)  # every span written is held: retention took old ones
                row["cap"] = cap if at_cap else None
                results.setdefault("ingest", {})[label] = row
                target.unlink()
    return results


def check(results: dict[str, Any]) -> None:
    """What any run must show, whatever its speed: every command answered, no span lost, the cap held (give
    or take what each writer writes between two retention checks)."""
    expected = {name for name, _ in commands(Path("x"), "0")}
    if set(results["commands"]) != expected:
        raise AssertionError(f"commands timed: {sorted(results['commands'])}")
    for label, row in results["ingest"].items():
        if row["lost"] != 0:
            raise AssertionError(f"ingest ({label}): {row['lost']} spans lost")
        slack = 1_000 + BATCH
        if row["cap"] is not None and not row["cap"] - slack * 4 <= row["held"] <= row["cap"] + slack * 4:
            raise AssertionError(f"ingest ({label}): {row['held']} spans held, cap {row['cap']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans in the generated store (default 1,000,000)")
    parser.add_argument("--ingest-spans", type=int, default=200_000, help="spans per ingest run (default 200,000)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    results = run(args.spans, args.ingest_spans, lambda text: print(text, file=sys.stderr, flush=True))
    check(results)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Store of {results['spans']:,} spans ({results['traces']:,} traces),"
        f" {results['bytes_per_span']:.0f} bytes a span;"
        f" written at {results['generate']['spans_per_s']:,.0f} spans/s (one process, retention on). Commands: the"
        " median and max of 5 runs, in process.",
        "",
        "| command | median | max |",
        "|---|---|---|",
    ]
    for name, row in results["commands"].items():
        said = f" ({'; '.join(row['said'])})" if row.get("said") else ""
        lines.append(f"| `{name}`{said} | {row['median_ms']:.0f} ms | {row['max_ms']:.0f} ms |")
    ingested = next(iter(results["ingest"].values()))["spans"]
    lines += ["", f"| ingest, {ingested:,} spans in batches of {BATCH} | spans/s | spans held after | lost |"]
    lines.append("|---|---|---|---|")
    for label, row in results["ingest"].items():
        lines.append(f"| {label} | {row['spans_per_s']:,.0f} | {row['held']:,} | {row['lost']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""The local store and the ``mcp-tracing`` command over traces built span by span."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import StatusCode

from mcp_tracing import agent
from mcp_tracing.cli import main
from mcp_tracing.store import SqliteSpanExporter, TraceStore, Where

pytestmark = pytest.mark.sdk_independent  # the same on either SDK line: scripts/test runs it on mcp 2.x only

MS = 1_000_000
T0 = time.time_ns() - 60 * 1_000_000_000  # a minute ago, so --since 1h finds it


def provider_for(path: Path, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path)))
    return provider


def lesson_trace(path: Path, *, offset_ms: int = 0, fail: bool = False, cost: float = 0.5) -> str:
    """The lesson's example trace (agent side and server side in two 'processes'), with fixed timings."""
    agent_side, server_side = provider_for(path, "agent"), provider_for(path, "files-server")
    a, s = agent_side.get_tracer("t"), server_side.get_tracer("t")
    t = T0 + offset_ms * MS

    def span(
        tracer: trace.Tracer, name: str, start: int, end: int, parent: trace.Span | None, **attrs: object
    ) -> trace.Span:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        created = tracer.start_span(name, context=ctx, start_time=t + start * MS, attributes=attrs)  # type: ignore[arg-type]
        created.end(end_time=t + end * MS)
        return created

    root = a.start_span(
        "agent.session", start_time=t, attributes={"request_id": f"req-{offset_ms}", agent.TOTAL_COST_ESTIMATE: cost}
    )
    turn = a.start_span("agent.turn", context=trace.set_span_in_context(root), start_time=t + 10 * MS)
    span(a, "model.call", 20, 200, turn, **{agent.TOKENS_IN: 1200, agent.TOKENS_OUT: 80})
    call = a.start_span(
        "tool.call",
        context=trace.set_span_in_context(turn),
        start_time=t + 210 * MS,
        attributes={"gen_ai.tool.name": "read_file"},
    )
    server = span(s, "tools/call read_file", 215, 255, call, **{"mcp_tracing.tool.status": "ok"})
    if fail:
        server_span = s.start_span("fs.read", context=trace.set_span_in_context(server), start_time=t + 220 * MS)
        server_span.set_status(StatusCode.ERROR)
        server_span.end(end_time=t + 230 * MS)
    call.end(end_time=t + 260 * MS)
    turn.end(end_time=t + 330 * MS)
    root.end(end_time=t + 800 * MS)
    return format(root.get_span_context().trace_id, "032x")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "traces.db"
    monkeypatch.setenv("MCP_TRACING_STORE", str(path))
    yield path


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


EXPECTED_TREE = """\
agent.session [800 ms] (agent)
└── agent.turn [320 ms] (agent)
    ├── model.call [180 ms] {tokens_in: 1200, tokens_out: 80} (agent)
    └── tool.call [50 ms] {tool: read_file} (agent)
        └── tools/call read_file [40 ms] {status: ok} (files-server)"""


# 800 ms in 40 characters: 20 ms each. Offsets round down, lengths to the nearest (at least one).
EXPECTED_BARS = [
    "█" * 40,  # agent.session 0-800
    "█" * 16 + " " * 24,  # agent.turn 10-330
    " " + "█" * 9 + " " * 30,  # model.call 20-200
    " " * 10 + "█" * 2 + " " * 28,  # tool.call 210-260
    " " * 10 + "█" * 2 + " " * 28,  # tools/call read_file 215-255
]


def test_show_draws_the_lessons_tree_across_processes(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace_id = lesson_trace(store)
    code, out, err = run_cli("show", trace_id[:8], "--bars", "0", capsys=capsys)
    assert (code, err) == (0, "")
    assert out == f"trace {trace_id}: 5 spans from 2 processes\n{EXPECTED_TREE}\n"
    code, out, err = run_cli("show", trace_id[:8], capsys=capsys)  # time bars by default, 40 wide
    width = max(len(line) for line in EXPECTED_TREE.splitlines())
    bars = [f"{line:<{width}}  |{bar}|" for line, bar in zip(EXPECTED_TREE.splitlines(), EXPECTED_BARS, strict=True)]
    assert (code, err) == (0, "")
    assert out == f"trace {trace_id}: 5 spans from 2 processes\n" + "\n".join(bars) + "\n"
    code, out, _ = run_cli("show", trace_id, "--json", capsys=capsys)
    spans = json.loads(out)
    assert [s["name"] for s in spans] == [
        "agent.session",
        "agent.turn",
        "model.call",
        "tool.call",
        "tools/call read_file",
    ]
    assert {s["service"] for s in spans} == {"agent", "files-server"}


def test_show_marks_errors(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace_id = lesson_trace(store, fail=True)
    _, out, _ = run_cli("show", trace_id, "--bars", "0", capsys=capsys)
    tail = "        └── tools/call read_file [40 ms] {status: ok} (files-server)\n"
    assert tail + "            └── fs.read [10 ms] (files-server) ERROR" in out


def test_traces_lists_and_filters(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slow_ok = lesson_trace(store, offset_ms=0, cost=0.5)
    failing = lesson_trace(store, offset_ms=1000, fail=True, cost=2.5)
    code, out, _ = run_cli("traces", "--json", capsys=capsys)
    rows = json.loads(out)
    assert code == 0 and [r["trace_id"] for r in rows] == [failing, slow_ok]  # most recent first
    assert rows[0] == {
        "trace_id": failing,
        "root": "agent.session",
        "services": ["agent", "files-server"],
        "start_ns": rows[0]["start_ns"],
        "duration_ms": 800.0,
        "spans": 6,
        "errors": 1,
        "findings": 0,
        "lost_servers": [],  # the files server's half is there
    }

    def ids(*args: str) -> list[str]:
        code, out, err = run_cli("traces", "--json", *args, capsys=capsys)
        assert (code, err) == (0, ""), err
        return [r["trace_id"] for r in json.loads(out)]

    assert ids("--errors") == [failing]
    assert ids("--slower-than", "500ms") == [failing, slow_ok]
    assert ids("--slower-than", "2s") == []
    assert ids("--where", "total_cost_estimate>1") == [failing]
    assert ids("--where", "total_cost_estimate<=0.5") == [slow_ok]
    assert ids("--where", "request_id=req-0") == [slow_ok]
    assert ids("--where", "request_id!=req-0") == [failing]
    assert ids("--where", "tokens_in=1200", "--where", "tool_name=read_file") == [failing, slow_ok]
    assert ids("--where", "gen_ai.usage.input_tokens>5000") == []
    assert ids("--since", "1h") == [failing, slow_ok]
    assert ids("--since", "1s") == []
    assert ids("--limit", "1") == [failing]
    code, out, _ = run_cli("traces", capsys=capsys)
    lines = out.splitlines()
    assert lines[0].split() == ["TRACE", "ROOT", "SERVICES", "START", "DURATION", "SPANS", "ERRORS", "FINDINGS"]
    assert lines[1].split()[:3] == [failing, "agent.session", "agent,files-server"]
    assert lines[1].split()[-5:] == ["800", "ms", "6", "1", "0"]


def test_traces_counts_each_listed_traces_findings(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from helpers.traces import Trace, write

    t = Trace("b" * 32)
    turn = t.turn()
    t.span("model.call", 0, 50, turn)
    for i in range(4):  # an N+1: four short calls in a row to one tool
        t.call("read_file", 60 + 12 * i, 70 + 12 * i, turn)
    write(store, t)
    code, out, _ = run_cli("traces", "--json", capsys=capsys)
    assert code == 0 and [(row["trace_id"], row["findings"]) for row in json.loads(out)] == [("b" * 32, 1)]
    code, out, _ = run_cli("traces", capsys=capsys)
    row, note = out.splitlines()[1].split("  ⚠ ")
    assert row.split()[-3:] == ["7", "0", "1"] and note == 'no spans from "files"'  # spans, errors, findings


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "0123abcd"), "no trace 0123abcd in"),
        (("show", "xyz"), "not a trace id: 'xyz'"),
        (("traces", "--where", "cost"), None),
        (("traces", "--where", "name>abc"), None),
        (("traces", "--slower-than", "fast"), None),
        (("traces", "--limit", "0"), None),
    ],
)
def test_bad_input_gives_one_line_and_a_non_zero_exit(
    store: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str | None
) -> None:
    lesson_trace(store)
    if message is None:  # argparse's usage errors: exit 2, one error line after the usage line
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        assert exited.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith("mcp-tracing traces: error: ")
        return
    code, out, err = run_cli(*args, capsys=capsys)
    assert (code, out) == (1, "") and err.startswith(f"mcp-tracing: error: {message}") and err.count("\n") == 1


class _FixedTraceIds(RandomIdGenerator):
    def __init__(self, *trace_ids: int) -> None:
        self._ids = iter(trace_ids)

    def generate_trace_id(self) -> int:
        return next(self._ids)


def test_an_ambiguous_prefix_is_an_error_naming_the_candidates(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    provider = TracerProvider(id_generator=_FixedTraceIds(0xABC1 << 112, 0xABC2 << 112))
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(store)))
    for _ in range(2):
        provider.get_tracer("t").start_span("root").end()
    code, _, err = run_cli("show", "ABC", capsys=capsys)
    first, second = f"{0xABC1 << 112:032x}", f"{0xABC2 << 112:032x}"
    assert (code, err) == (1, f"mcp-tracing: error: ambiguous trace id prefix abc: {first}, {second}\n")
    code, out, _ = run_cli("show", "abc2", capsys=capsys)
    assert code == 0 and out.startswith(f"trace {second}: 1 span from 1 process\n")


def test_missing_empty_and_corrupt_stores_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    code, _, err = run_cli("--store", str(missing), "traces", capsys=capsys)
    assert (
        code == 1
        and err
        == f"mcp-tracing: error: no trace store at {missing} (run an instrumented agent, or `mcp-tracing demo`)\n"
    )
    empty = tmp_path / "empty.db"
    SqliteSpanExporter(empty).export([])
    code, _, err = run_cli("--store", str(empty), "traces", capsys=capsys)
    assert code == 1 and err == f"mcp-tracing: error: the store at {empty} holds no traces yet\n"
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    code, _, err = run_cli("--store", str(corrupt), "show", "abc", capsys=capsys)
    assert code == 1 and err.startswith(f"mcp-tracing: error: {corrupt} is not a readable mcp-tracing store")
    monkeypatch.delenv("MCP_TRACING_STORE", raising=False)


def test_the_store_file_is_private_uses_wal_and_is_indexed(store: Path) -> None:
    lesson_trace(store)
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexes = {row[1] for row in db.execute("PRAGMA index_list(spans)")}
        assert "spans_by_start" in indexes and any(name.startswith("sqlite_autoindex_spans") for name in indexes)
        plan = " ".join(str(row) for row in db.execute("EXPLAIN QUERY PLAN SELECT * FROM spans WHERE trace_id = 'x'"))
        assert "USING INDEX" in plan or "USING PRIMARY KEY" in plan


def test_retention_drops_old_spans_and_keeps_at_most_the_configured_count(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = lesson_trace(store, offset_ms=-3 * 86_400_000)  # three days earlier
    recent = [lesson_trace(store, offset_ms=n) for n in range(3)]
    monkeypatch.setenv("MCP_TRACING_STORE_MAX_AGE", "2d")
    monkeypatch.setenv("MCP_TRACING_STORE_MAX_SPANS", "12")
    SqliteSpanExporter(store).export([])  # a writer opening the store applies retention
    reader = TraceStore(store)
    kept = {row.trace_id for row in reader.traces(limit=100)}
    assert old not in kept and kept == set(recent[1:])  # 3 x 5 spans > 12: the oldest trace goes
    reader.close()


def test_where_parsing() -> None:
    assert Where.parse("total_cost_estimate>1") == Where("total_cost_estimate", ">", 1.0)
    assert Where.parse("request_id = 'abc'") == Where("request_id", "=", "abc")
    assert Where.parse("tokens_in>=10") == Where("gen_ai.usage.input_tokens", ">=", 10.0)
    for bad in ("cost", "a>b", "=3", "a="):
        with pytest.raises(ValueError, match="bad --where"):
            Where.parse(bad)


WRITER = """
import os, sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from mcp_tracing.store import SqliteSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": f"writer-{sys.argv[2]}"}))
exporter = SqliteSpanExporter(sys.argv[1])
provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=10_000, max_export_batch_size=50))
tracer = provider.get_tracer("w")
for i in range(int(sys.argv[3])):
    tracer.start_span(f"span {i}").end()
provider.shutdown()
"""


def test_three_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writers = [
        subprocess.Popen([sys.executable, str(script), str(path), str(n), "3000"], stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], errors
    assert not any("locked" in e or "Error" in e for e in errors), errors
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT service, count(*) FROM spans GROUP BY service ORDER BY service").fetchall() == [
            ("writer-0", 3000),
            ("writer-1", 3000),
            ("writer-2", 3000),
        ]

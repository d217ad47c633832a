"""The store's format 2: the same answers as format 1's queries, from the trace summaries and the attribute
index; a format 1 file migrated in place; retention by whole traces, oldest first, under concurrent writers."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_tracing.store import SqliteSpanExporter, TraceStore, Where
from mcp_tracing.store._index import TEXT_LIMIT
from mcp_tracing.store._sqlite import FORMAT
from mcp_tracing.store.exporter import _row  # pyright: ignore[reportPrivateUsage]
from mcp_tracing.testing import SpanRecord

pytestmark = pytest.mark.sdk_independent

NOW = time.time_ns()
MS = 1_000_000

FORMAT_1 = """
CREATE TABLE spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL, kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, status TEXT NOT NULL, service TEXT, pid INTEGER,
    attributes TEXT NOT NULL, links TEXT NOT NULL, events TEXT NOT NULL, PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_by_start ON spans (start_ns);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('format', 'mcp-tracing/1');
"""
"""The schema mcp_tracing wrote before format 2, verbatim."""


def format_1_traces(
    db: sqlite3.Connection,
    *,
    since_s: float | None = None,
    errors_only: bool = False,
    slower_than_s: float | None = None,
    where: tuple[Where, ...] = (),
    limit: int = 20,
) -> list[tuple[Any, ...]]:
    """Format 1's ``traces`` query (before the summaries and the index), kept as the reference."""
    clauses: list[str] = []
    args: list[Any] = []
    if since_s is not None:
        clauses.append("s.start_ns >= ?")
        args.append(NOW - int(since_s * 1e9))
    for condition in where:
        sql, values = condition.scan_sql()
        clauses.append(sql.replace("t.trace_id", "s.trace_id"))
        args.extend(values)
    having: list[str] = []
    if errors_only:
        having.append("sum(s.status = 'ERROR') > 0")
    if slower_than_s is not None:
        having.append("max(s.end_ns) - min(s.start_ns) >= ?")
        args.append(int(slower_than_s * 1e9))
    root = (
        "(SELECT r.name FROM spans r WHERE r.trace_id = s.trace_id ORDER BY (r.parent_id IS NOT NULL"
        " AND r.parent_id IN (SELECT p.span_id FROM spans p WHERE p.trace_id = r.trace_id)), r.start_ns LIMIT 1)"
    )
    sql = (
        "SELECT s.trace_id, min(s.start_ns), max(s.end_ns), count(*), sum(s.status = 'ERROR'),"
        f" group_concat(DISTINCT s.service), {root} FROM spans s"
        + (" WHERE " + " AND ".join(clauses) if clauses else "")
        + " GROUP BY s.trace_id"
        + (" HAVING " + " AND ".join(having) if having else "")
        + " ORDER BY min(s.start_ns) DESC LIMIT ?"
    )
    return [
        (trace_id, root_name or "?", tuple(sorted(filter(None, (services or "").split(",")))), start, end, n, errs or 0)
        for trace_id, start, end, n, errs, services, root_name in db.execute(sql, [*args, limit]).fetchall()
    ]


def seeded(count: int = 120, seed: int = 3) -> list[SpanRecord]:
    """Traces of the lesson's shapes, with every kind of value ``--where`` meets: lesson keys, request ids
    (text, and text that reads as a number), numbers, booleans, lists, long text, errors, several services,
    a span whose parent is elsewhere. Start times never tie within a trace."""
    chance = random.Random(seed)
    records: list[SpanRecord] = []
    for index in range(count):
        trace_id = f"{chance.getrandbits(128):032x}"
        start = NOW - (index * 37 + chance.randint(0, 20)) * 60_000 * MS  # up to ~3 days back
        root_id = f"{chance.getrandbits(64):016x}"
        services = ["agent", *chance.sample(["files", "search", "db"], chance.randint(0, 2))]
        root_attributes: dict[str, Any] = {
            "request_id": f"req-{index}" if index % 7 else str(index),
            "user.id": f"u{index % 9}",
            "mcp_tracing.session.total_cost_estimate": round(chance.random() * 3, 3),
            "mcp_tracing.session.request_source": chance.choice(["api", "slack", "cron"]),
            "flag": chance.random() < 0.5,
            "tags": ["a", "b"],
        }
        records.append(record(trace_id, root_id, None, "agent.session", start, 400 + index, "agent", root_attributes))
        for position in range(chance.randint(1, 8)):
            tool = chance.choice(["read_file", "search", "query", "write_file"])
            attributes: dict[str, Any] = {
                "gen_ai.tool.name": tool,
                "mcp.method.name": "tools/call",
                "jsonrpc.request.id": str(position + 1),
                "gen_ai.usage.input_tokens": chance.randint(10, 5000),
                "gen_ai.request.temperature": chance.choice([0.0, 0.2, 0.7]),
                "mcp_tracing.tool.result_size": chance.randint(0, 10**6),
                "note": "x" * (TEXT_LIMIT + 5) if position == 3 else "short",
                "gen_ai.tool.call.arguments": json.dumps({"path": f"/tmp/{index}"}),
            }
            parent = root_id if position != 5 else "f" * 16  # a parent in no store: a second root candidate
            status = "ERROR" if chance.random() < 0.08 else "UNSET"
            records.append(
                record(
                    trace_id,
                    f"{chance.getrandbits(64):016x}",
                    parent,
                    f"tools/call {tool}",
                    start + (position + 1) * 3 * MS,
                    2 * MS,
                    chance.choice(services),
                    attributes,
                    status,
                )
            )
    return records


def record(
    trace_id: str,
    span_id: str,
    parent: str | None,
    name: str,
    start: int,
    length: int,
    service: str | None,
    attributes: dict[str, Any],
    status: str = "UNSET",
) -> SpanRecord:
    return SpanRecord(
        name=name,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent,
        kind="INTERNAL",
        start_ns=start,
        end_ns=start + length,
        status=status,
        service=service,
        pid=1,
        attributes=attributes,
    )


def write_format_2(path: Path, records: list[SpanRecord], batch: int = 50) -> None:
    exporter = SqliteSpanExporter(path)
    connection = exporter._open()  # pyright: ignore[reportPrivateUsage]
    assert connection is not None
    for index in range(0, len(records), batch):
        exporter._insert(connection, records[index : index + batch])  # pyright: ignore[reportPrivateUsage]
    exporter.shutdown()


def write_format_1(path: Path, records: list[SpanRecord]) -> None:
    db = sqlite3.connect(path)
    db.executescript(FORMAT_1)
    db.executemany("INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [_row(r) for r in records])
    db.commit()
    db.close()


QUERIES: list[dict[str, Any]] = [
    {},
    {"limit": 500},
    {"errors_only": True, "limit": 500},
    {"slower_than_s": 0.02, "limit": 500},
    {"since_s": 3600 * 24, "limit": 500},
    *(
        {"where": (Where.parse(text),), "limit": 500}
        for text in (
            "tool_name=search",
            "request_id=req-8",
            "request_id=14",  # a text id that reads as a number
            "jsonrpc.request.id=3",
            "tokens_in>4000",
            "tokens_in<=100",
            "temperature=0",
            "temperature!=0.2",
            "total_cost_estimate>2.5",
            "request_source=slack",
            "user_id=u3",
            "flag=1",  # booleans never match
            "tags=a",  # nor lists
            "result_size>=990000",
            "no_such_key=1",
            'gen_ai.tool.call.arguments={"path": "/tmp/5"}',  # a payload key: answered by reading the spans
            f"note={'x' * (TEXT_LIMIT + 5)}",  # longer than the index holds: read from the spans
            "note=short",
            "note!=short",
        )
    ),
    {"where": (Where.parse("tool_name=query"), Where.parse("tokens_in>2000")), "errors_only": True, "limit": 500},
]


def summaries(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (r.trace_id, r.root, r.services, r.start_ns, r.start_ns + round(r.duration_ms * 1e6), r.spans, r.errors)
        for r in rows
    ]


@pytest.mark.parametrize("query", QUERIES, ids=[str(q) for q in QUERIES])
def test_format_2_answers_as_format_1_did(tmp_path: Path, query: dict[str, Any]) -> None:
    records = seeded()
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    write_format_1(old, records)
    write_format_2(new, records)
    with sqlite3.connect(old) as db:
        expected = format_1_traces(db, **query)
    store = TraceStore(new)
    try:
        got = summaries(store.traces(**query))
    finally:
        store.close()
    assert got == expected
    none_expected = ("flag", "tags", "no_such_key")  # booleans, lists and absent keys never match
    assert bool(expected) != any(w.key in none_expected for w in query.get("where", ()))


def test_a_format_1_store_is_migrated_in_place_with_progress(tmp_path: Path) -> None:
    records = seeded(count=1200)
    path = tmp_path / "traces.db"
    write_format_1(path, records)
    with sqlite3.connect(path) as db:
        expected = format_1_traces(db, where=(Where.parse("tool_name=search"),), limit=2000)
        every = format_1_traces(db, limit=2000)
    seen: list[tuple[int, int]] = []
    store = TraceStore(path, progress=lambda done, total: seen.append((done, total)))
    try:
        assert summaries(store.traces(where=(Where.parse("tool_name=search"),), limit=2000)) == expected
        assert summaries(store.traces(limit=2000)) == every and len(every) == 1200
        assert store.count_traces() == 1200
    finally:
        store.close()
    assert seen[-1] == (1200, 1200) and len(seen) == 3  # 500 traces a transaction
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (FORMAT,)
        assert db.execute("SELECT value FROM meta WHERE key = 'spans'").fetchone() == (str(len(records)),)
        assert db.execute("SELECT count(*) FROM meta WHERE key = 'migrated_through'").fetchone() == (0,)


def test_a_writer_migrates_an_old_store_aside_and_keeps_writing(tmp_path: Path) -> None:
    records = seeded(count=600)
    path = tmp_path / "traces.db"
    write_format_1(path, records[:-40])
    write_format_2(path, records[-40:])  # the writer's own spans go in at once, in format 2
    for thread in threading.enumerate():
        if thread.name == "mcp-tracing-store-migration":
            thread.join(timeout=60)
            assert not thread.is_alive()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (FORMAT,)
        expected = format_1_traces(db, limit=1000)
        assert db.execute("SELECT value FROM meta WHERE key = 'spans'").fetchone() == (str(len(records)),)
    store = TraceStore(path)
    try:
        assert summaries(store.traces(limit=1000)) == expected and len(expected) == 600
    finally:
        store.close()


def test_an_old_store_that_cannot_be_migrated_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_tracing.store import StoreError, reader

    path = tmp_path / "traces.db"
    write_format_1(path, seeded(count=5))

    def read_only(connection: sqlite3.Connection, progress: object = None) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")  # what a file we may not write says

    monkeypatch.setattr(reader, "migrate", read_only)
    with pytest.raises(StoreError, match=r"older format and could not be migrated \(attempt to write a readonly"):
        TraceStore(path)


WRITER = """
import sys, time
from mcp_tracing.store import SqliteSpanExporter
from mcp_tracing.testing import SpanRecord
path, writer, traces = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
exporter = SqliteSpanExporter(path)
for n in range(traces):
    start = time.time_ns()
    trace_id = f"{writer:08x}{n:024x}"
    spans = [
        SpanRecord(name=f"s{k}", trace_id=trace_id, span_id=f"{k + 1:016x}", parent_id=None if k == 0 else f"{1:016x}",
                   kind="INTERNAL", start_ns=start + k, end_ns=start + k + 10, status="UNSET", service=f"w{writer}",
                   pid=writer, attributes={"writer": writer, "n": n})
        for k in range(5)
    ]
    exporter._insert(exporter._open(), spans)
    exporter._written += 5
    if exporter._written >= 25:
        exporter._written = 0
        exporter._apply_retention(exporter._open())
exporter.shutdown()
"""


@pytest.mark.subprocess
def test_retention_keeps_whole_traces_oldest_first_under_concurrent_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "traces.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env_cap = "300"
    monkeypatch.setenv("MCP_TRACING_STORE_MAX_SPANS", env_cap)
    writers = [
        subprocess.Popen([sys.executable, str(script), str(path), str(n), "200"], stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    errors = [w.communicate(timeout=120)[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0, 0], errors
    assert not any("Traceback" in e or "locked" in e for e in errors), errors
    with sqlite3.connect(path) as db:
        # While they wrote: never more than the cap and what each writer writes between its checks.
        total = db.execute("SELECT count(*) FROM spans").fetchone()[0]
        assert 0 < total <= 300 + 3 * 25
        per_trace = dict(db.execute("SELECT trace_id, count(*) FROM spans GROUP BY trace_id").fetchall())
        assert set(per_trace.values()) == {5}  # whole traces only
        assert db.execute("SELECT value FROM meta WHERE key = 'spans'").fetchone() == (str(total),)
        summary = dict(db.execute("SELECT trace_id, spans FROM traces").fetchall())
        assert summary == per_trace  # a summary for every stored trace, none for a deleted one
        orphans = db.execute(
            "SELECT count(*) FROM attributes WHERE trace_no NOT IN (SELECT trace_no FROM traces)"
        ).fetchone()
        assert orphans == (0,)
        before = dict(db.execute("SELECT trace_id, start_ns FROM traces").fetchall())
    SqliteSpanExporter(path).export([])  # a writer opening the store applies retention: the cap exactly
    with sqlite3.connect(path) as db:
        kept = dict(db.execute("SELECT trace_id, start_ns FROM traces").fetchall())
        assert db.execute("SELECT count(*) FROM spans").fetchone() == (len(kept) * 5,)
    assert len(kept) * 5 <= 300 and len(kept) * 5 > 300 - 5
    dropped = set(before) - set(kept)
    assert not dropped or max(before[t] for t in dropped) <= min(kept.values())  # the oldest went first


def test_the_cli_says_what_the_index_cannot_answer_and_what_analyze_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcp_tracing.cli import main

    path = tmp_path / "traces.db"
    write_format_2(path, seeded(count=30))
    store = ["--store", str(path)]
    assert main([*store, "traces", "--where", 'gen_ai.tool.call.arguments={"path": "/tmp/5"}', "--json"]) == 0
    out, err = capsys.readouterr()
    assert [row["root"] for row in json.loads(out)] == ["agent.session"]
    assert err == (
        "mcp-tracing: note: --where gen_ai.tool.call.arguments: not in the attribute index (a payload key, or a"
        " value longer than it holds); reading every span\n"
    )
    assert main([*store, "traces", "--where", "tool_name=search"]) == 0
    assert capsys.readouterr().err == ""  # indexed: nothing to say
    assert main([*store, "analyze", "--since", "7d", "--max-traces", "5", "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)  # --json stays one document
    assert (
        err
        == "mcp-tracing: analyzed the newest 5 of the 30 traces in the last 7d (25 skipped: --max-traces N to change)\n"
    )
    assert main([*store, "analyze", "--since", "7d"]) == 0
    assert capsys.readouterr().err == ""  # all of them: nothing skipped

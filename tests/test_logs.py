"""Python ``logging`` on the trace: records written under a sampled span become log records of that span (in
the store beside it), every record carries the ids as fields, Python's last resort keeps printing (with the
ids), and ``mcp-tracing show``/``logs`` print them where they belong."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.otlp import OtlpReceiver
from helpers.processes import clean_env
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from mcp_tracing._core import logs as bridge
from mcp_tracing.cli import main
from mcp_tracing.store import SqliteSpanExporter, TraceStore
from mcp_tracing.store._retention import apply as apply_retention
from mcp_tracing.store.exporter import SqliteLogExporter

try:
    from mcp.server.mcpserver import Context  # mcp 2.x
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context  # type: ignore[no-redef,attr-defined]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def exported() -> Iterator[InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    bridge.install(provider)
    try:
        yield exporter
    finally:
        bridge.uninstall()


def test_a_record_under_a_sampled_span_is_exported_with_its_ids_and_no_other_is(
    exported: InMemoryLogRecordExporter,
) -> None:
    tracer = TracerProvider().get_tracer("t")
    log = logging.getLogger("tests.logs.sampled")
    log.warning("outside any span")
    with tracer.start_as_current_span("work") as span:
        log.warning("inside %s", "work")
        try:
            raise KeyError("k")
        except KeyError:
            log.exception("it failed")
    with TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_as_current_span("unsampled"):
        log.warning("under an unsampled span")
    logging.getLogger("opentelemetry.sdk.test").warning("OpenTelemetry's own: never exported")
    with tracer.start_as_current_span("sdk"):
        for name in ("mcp", "mcp.server.lowlevel", "fastmcp.tools"):  # the MCP SDKs': they echo peers' text
            logging.getLogger(name).error("Error executing tool: secret")
        logging.getLogger("mcp_tracing_like_app").warning("an application logger that starts alike")
    records = [item.log_record for item in exported.get_finished_logs()]
    assert [r.body for r in records] == ["inside work", "it failed", "an application logger that starts alike"]
    records = records[:2]
    context = span.get_span_context()
    assert {(r.trace_id, r.span_id) for r in records} == {(context.trace_id, context.span_id)}
    first, second = records
    assert (first.severity_text, first.severity_number and first.severity_number.name) == ("WARNING", "WARN")
    assert dict(first.attributes or {}).keys() == {"code.file.path", "code.function.name", "code.line.number"}
    assert (second.attributes or {})["exception.type"] == "KeyError"
    scopes = [item.instrumentation_scope.name for item in exported.get_finished_logs()]
    assert scopes == ["tests.logs.sampled", "tests.logs.sampled", "mcp_tracing_like_app"]


def test_every_record_carries_the_ids_as_fields_for_the_applications_formats(
    exported: InMemoryLogRecordExporter,
) -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    log = logging.getLogger("tests.logs.fields")
    log.addHandler(handler)
    try:
        log.warning("no span")
        with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
            log.warning("a span")
    finally:
        log.removeHandler(handler)
    context = span.get_span_context()
    assert [(r.otelTraceID, r.otelSpanID, r.otelTraceSampled) for r in seen] == [  # type: ignore[attr-defined]
        ("0", "0", False),
        (f"{context.trace_id:032x}", f"{context.span_id:016x}", True),
    ]


def test_where_ours_is_the_only_handler_the_last_resort_still_prints_with_the_ids(
    exported: InMemoryLogRecordExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python prints WARNING and above bare when a record finds no handler; our root handler must not silence
    that. pytest's own handlers are taken off the root for the test, as in a script that configures nothing."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h is not bridge.installed()]
    for handler in others:
        root.removeHandler(handler)
    try:
        log = logging.getLogger("tests.logs.last_resort")
        log.info("below the last resort's level")
        log.warning("no span")
        with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
            log.error("in a span")
        context = span.get_span_context()
        assert capsys.readouterr().err.splitlines() == [
            "no span",
            f"in a span [trace_id={context.trace_id:032x} span_id={context.span_id:016x}]",
        ]
        own = logging.StreamHandler(sys.stdout)
        log.addHandler(own)
        try:
            log.warning("the application's handler prints it")
        finally:
            log.removeHandler(own)
    finally:
        for handler in others:
            root.addHandler(handler)
    assert capsys.readouterr() == ("the application's handler prints it\n", "")


def test_uninstall_puts_back_the_record_factory_and_takes_the_handler_off() -> None:
    factory = logging.getLogRecordFactory()
    bridge.install(LoggerProvider())
    assert bridge.installed() in logging.getLogger().handlers
    assert logging.getLogRecordFactory() is not factory
    bridge.uninstall()
    assert bridge.installed() is None and logging.getLogRecordFactory() is factory
    assert not any(isinstance(h, bridge.TraceLogHandler) for h in logging.getLogger().handlers)


def _store_with_logs(path: Path) -> tuple[str, str, str]:
    """A trace of two spans in the store, a log record under each and one outside any trace."""
    spans = SqliteSpanExporter(path)
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    provider = LoggerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(SqliteLogExporter(spans)))
    bridge.install(provider)
    try:
        log = logging.getLogger("tests.logs.store")
        tracer = tracer_provider.get_tracer("t")
        log.warning("before the trace")
        with tracer.start_as_current_span("outer") as outer:
            log.warning("in outer")
            with tracer.start_as_current_span("inner") as inner:
                log.error("in inner\nsecond line")
    finally:
        bridge.uninstall()
        tracer_provider.shutdown()
    return (
        format(outer.get_span_context().trace_id, "032x"),
        format(outer.get_span_context().span_id, "016x"),
        format(inner.get_span_context().span_id, "016x"),
    )


def test_the_store_keeps_a_traces_records_and_retention_takes_them_with_the_trace(tmp_path: Path) -> None:
    store_path = tmp_path / "t.db"
    trace_id, outer, inner = _store_with_logs(store_path)
    store = TraceStore(store_path)
    try:
        logs = store.logs(trace_id)
    finally:
        store.close()
    assert [(r.span_id, r.level, r.logger, r.body, r.service) for r in logs] == [
        (outer, "WARNING", "tests.logs.store", "in outer", "agent"),
        (inner, "ERROR", "tests.logs.store", "in inner\nsecond line", "agent"),
    ]
    connection = sqlite3.connect(store_path, isolation_level=None)
    assert connection.execute("SELECT count(*) FROM logs").fetchone() == (2,)  # none outside a trace
    apply_retention(connection, cutoff_ns=time.time_ns() + 1, max_spans=10)
    assert connection.execute("SELECT count(*) FROM logs").fetchone() == (0,)
    connection.close()


def test_a_store_written_before_logs_reads_as_having_none(tmp_path: Path) -> None:
    store_path = tmp_path / "t.db"
    trace_id, _, _ = _store_with_logs(store_path)
    connection = sqlite3.connect(store_path)
    connection.execute("DROP TABLE logs")
    connection.commit()
    connection.close()
    store = TraceStore(store_path)
    try:
        assert store.logs(trace_id) == []
    finally:
        store.close()


def test_show_prints_each_record_under_its_span_and_logs_lists_them_with_ids_and_span_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "t.db"
    trace_id, outer, inner = _store_with_logs(store_path)
    assert main(["--store", str(store_path), "show", "--bars", "0"]) == 0
    assert [re.sub(r"\[\d+ ms\]", "[N ms]", line) for line in capsys.readouterr().out.splitlines()[1:]] == [
        "outer [N ms] (agent)",
        "  · WARNING tests.logs.store: in outer",
        "└── inner [N ms] (agent)",
        "      · ERROR tests.logs.store: in inner …",
    ]
    assert main(["--store", str(store_path), "show", "--bars", "0", "--no-logs"]) == 0
    assert "·" not in capsys.readouterr().out
    assert main(["--store", str(store_path), "logs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"trace {trace_id}: 2 log records"
    assert lines[1].endswith(" WARNING  agent tests.logs.store: in outer")
    assert lines[2:] == [
        f"    span {outer} in outer",
        lines[3],
        f"    span {inner} in outer › inner",
    ]
    assert lines[3].endswith(" ERROR    agent tests.logs.store: in inner …")
    assert main(["--store", str(store_path), "logs", trace_id[:8], "--json"]) == 0
    assert [r["body"] for r in json.loads(capsys.readouterr().out)] == ["in outer", "in inner\nsecond line"]


SERVER = """
import logging

from opentelemetry import trace

import mcp_tracing

try:
    from mcp.server.mcpserver import Context, MCPServer
except ImportError:
    from mcp.server.fastmcp import Context, FastMCP as MCPServer

logging.basicConfig(level=logging.INFO)  # this server shows INFO: its records are exported at INFO too
mcp_tracing.configure("notes-server")
server = MCPServer("notes")
mcp_tracing.instrument_server(server)


@server.tool()
async def read_note(name: str, ctx: Context) -> str:
    with trace.get_tracer("notes").start_as_current_span("notes.read"):
        logging.getLogger("notes").info("reading %s", name)
        logging.getLogger("notes").warning("%s is old", name)
        logging.getLogger("notes").debug("below this server's level: not exported")
    # To the client, which records it under this tool's span. (Built here: a warning printing this source line
    # to stderr, which is recorded, would otherwise show the text.)
    await ctx.info("the notification's text: " + "s3" + "cr3t")
    return name


server.run()
"""

AGENT = """
import logging
import sys

import anyio
from mcp import ClientSession, StdioServerParameters

import mcp_tracing
from mcp_tracing import agent


async def main() -> None:
    mcp_tracing.configure("notes-agent")
    params = StdioServerParameters(command=sys.executable, args=["server.py"])
    async with agent.session(agent_type="notes-agent"):
        async with mcp_tracing.stdio_client(params) as (read, write), ClientSession(read, write) as session:
            mcp_tracing.trace_session(session)
            await session.initialize()
            async with agent.tool_call("read_note"):
                logging.getLogger("agent").warning("calling read_note")
                await session.call_tool("read_note", {"name": "todo"})


anyio.run(main)
"""


@pytest.mark.subprocess
def test_records_of_an_agent_and_its_stdio_server_land_under_their_spans_in_one_store(tmp_path: Path) -> None:
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "agent.py").write_text(AGENT)
    env = clean_env(HOME=str(tmp_path), MCP_TRACING_STDERR_LOGS="on")
    env.pop("XDG_DATA_HOME", None)
    done = subprocess.run(
        [sys.executable, "agent.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    store = TraceStore(tmp_path / ".local" / "share" / "mcp-tracing" / "traces.db")
    try:
        (summary,) = store.traces()
        spans = {s.span_id: s for s in store.spans(summary.trace_id)}
        logs = store.logs(summary.trace_id)
    finally:
        store.close()
    from_stderr = [r for r in logs if r.attributes.get("mcp_tracing.log.source") == "stderr"]
    logs = [r for r in logs if r not in from_stderr]
    placed = [(spans[r.span_id or ""].name, spans[r.span_id or ""].kind, r.service, r.level, r.body) for r in logs]
    assert placed == [
        ("execute_tool read_note", "INTERNAL", "notes-agent", "WARNING", "calling read_note"),
        ("notes.read", "INTERNAL", "notes-server", "INFO", "reading todo"),
        ("notes.read", "INTERNAL", "notes-server", "WARNING", "todo is old"),
        # The MCP notification, recorded by the agent under the server's span its _meta named; no text by default.
        ("tools/call read_note", "SERVER", "notes-agent", "INFO", ""),
    ]
    assert logs[-1].attributes["mcp_tracing.log.size"] == len(b'"the notification\'s text: s3cr3t"')
    # The server's stderr (its basicConfig handler's lines), recorded by the agent under the span of the spawn.
    root = next(s for s in spans.values() if s.parent_id is None)
    assert {(r.span_id, r.logger, r.service) for r in from_stderr} == {(root.span_id, "server", "notes-agent")}
    assert {"INFO:notes:reading todo", "WARNING:notes:todo is old"} <= {r.body for r in from_stderr}
    cli = [sys.executable, "-m", "mcp_tracing.cli", "--store", str(store.path)]
    shown = subprocess.run([*cli, "show", "--bars", "0"], env=env, capture_output=True, text=True, timeout=60)
    lines = [re.sub(r"\[\d+ ms\]", "[N ms]", line) for line in shown.stdout.splitlines()]
    tool_at = next(i for i, line in enumerate(lines) if "tools/call read_note" in line and "(notes-server)" in line)
    assert lines[tool_at + 1 : tool_at + 5] == [
        "    │     · INFO mcp: (33 bytes; the text is not recorded by default)",
        "    │   └── notes.read [N ms] (notes-server)",
        "    │         · INFO notes: reading todo",
        "    │         · WARNING notes: todo is old",
    ], "\n".join(lines)  # under the server's span: the notification, then the tool's own span and its records
    listed = subprocess.run([*cli, "logs"], env=env, capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert listed[0] == f"trace {summary.trace_id}: {len(logs) + len(from_stderr)} log records"
    assert {line.split(" span ")[-1].split(" in ")[0] for line in listed[2::2]} == {r.span_id for r in logs} | {
        root.span_id
    }
    assert "s3cr3t" not in shown.stdout + "\n".join(listed)
    # The agent configured no logging: Python's last resort still printed its warning, now with the ids.
    (agent_warning,) = [line for line in done.stderr.splitlines() if line.startswith("calling read_note")]
    assert agent_warning.startswith(f"calling read_note [trace_id={summary.trace_id} span_id=")


LOG_AGENT = """
import logging
import time

from opentelemetry import trace

import mcp_tracing

mcp_tracing.configure("log-agent")
tracer = trace.get_tracer("agent")
for n in range(5):
    with tracer.start_as_current_span(f"step {n}"):
        logging.getLogger("app").warning("step %d", n)
    time.sleep(0.1)  # the program's own pace: 5 export intervals of 100 ms
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("status", [200, 405])
def test_over_otlp_records_go_to_the_logs_endpoint_and_a_backend_that_takes_none_is_asked_once(
    status: int, otlp_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    endpoint, received = otlp_receiver
    OtlpReceiver.logs_status = status
    done = subprocess.run(
        [sys.executable, "-c", LOG_AGENT],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BLRP_SCHEDULE_DELAY="100"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    spans = {s["span_id"]: s["name"] for s in received}
    printed = [line for line in done.stderr.splitlines() if line.startswith("step ")]
    assert [line.split(" [")[0] for line in printed] == [f"step {n}" for n in range(5)]  # the last resort, with ids
    others = [line for line in done.stderr.splitlines() if not line.startswith("step ")]
    if status == 405:
        assert len(OtlpReceiver.log_bodies) == 1, "asked again after a 405"
        assert len(others) == 1, others
        (line,) = others
        assert re.fullmatch(r"mcp_tracing: \S+/v1/logs does not take OTLP logs \(HTTP 405\); .*", line), line
        return
    assert others == []
    records = [
        (format(r.trace_id[-8:].hex()), r.span_id.hex(), r.body.string_value, r.severity_text)
        for body in OtlpReceiver.log_bodies
        for resource in ExportLogsServiceRequest.FromString(body).resource_logs
        for scope in resource.scope_logs
        for r in scope.log_records
    ]
    assert [(spans[span_id], text, level) for _, span_id, text, level in records] == [
        (f"step {n}", f"step {n}", "WARNING") for n in range(5)
    ]


# ------------------------------------------------------------------------------ MCP log notifications


class _Switchable(InMemoryLogRecordExporter):
    """The process's one global LoggerProvider exports here; each test reads what it made."""


_GLOBAL_LOGS = _Switchable()


@pytest.fixture
def global_logs() -> Iterator[_Switchable]:
    """The global LoggerProvider (set once per process: OpenTelemetry refuses to replace it)."""
    from opentelemetry import _logs

    if not isinstance(_logs.get_logger_provider(), LoggerProvider):
        provider = LoggerProvider(resource=Resource.create({"service.name": "agent"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(_GLOBAL_LOGS))
        _logs.set_logger_provider(provider)
    _GLOBAL_LOGS.clear()
    yield _GLOBAL_LOGS


def _noisy_server() -> Any:
    from helpers.inprocess import McpServer

    server = McpServer("noisy")

    @server.tool()
    async def noisy(ctx: Context) -> str:  # type: ignore[type-arg]
        await ctx.warning('token=s3cr3t in "postgres://u:hunter2@db/x"')
        await ctx.log("debug", {"api_key": "k-123", "rows": 3}, logger_name="db")
        return "ok"

    return server


@pytest.mark.anyio
@pytest.mark.parametrize("capture", [False, True], ids=["privacy defaults", "capture_content"])
async def test_a_servers_log_notifications_become_records_under_its_tool_span_and_keep_text_out_by_default(
    global_logs: _Switchable, capture: bool
) -> None:
    from helpers.inprocess import connected
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import mcp_tracing
    from mcp_tracing.privacy import Privacy

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    server = mcp_tracing.instrument_server(_noisy_server(), tracer_provider=provider)
    async with connected(server) as session:
        # The client's privacy decides what it records of what its server sent.
        mcp_tracing.trace_session(session, tracer_provider=provider, privacy=Privacy(capture_content=capture))
        await session.initialize()
        await session.call_tool("noisy", {})
    (served,) = [s for s in spans.get_finished_spans() if s.name == "tools/call noisy" and s.kind.name == "SERVER"]
    records = [item.log_record for item in global_logs.get_finished_logs()]
    assert [(r.trace_id, r.span_id) for r in records] == [(served.context.trace_id, served.context.span_id)] * 2, (
        "both under the server's tools/call span, the context its _meta carried"
    )
    warning, debug = records
    assert (warning.severity_text, warning.severity_number and warning.severity_number.name) == ("WARNING", "WARN")
    assert (debug.severity_text, debug.severity_number and debug.severity_number.name) == ("DEBUG", "DEBUG")
    assert dict(warning.attributes or {}) == {
        "mcp.log.level": "warning",
        "mcp_tracing.log.size": len(json.dumps('token=s3cr3t in "postgres://u:hunter2@db/x"').encode()),
        "mcp_tracing.log.source": "notifications/message",
    }
    assert dict(debug.attributes or {})["mcp.log.logger"] == "db"
    assert [item.instrumentation_scope.name for item in global_logs.get_finished_logs()] == ["mcp", "db"]
    if not capture:
        assert [warning.body, debug.body] == ["", ""]
        assert "s3cr3t" not in str(global_logs.get_finished_logs()[0].to_json())
    else:
        assert warning.body == 'token=s3cr3t in "postgres://u:[REDACTED]@db/x"'
        assert json.loads(str(debug.body)) == {"api_key": "[REDACTED]", "rows": 3}


# ------------------------------------------------------------------------------------ a server's stderr


CHILD = r"""
import os, sys
os.write(2, b"first line\n")
os.write(2, b"caf\xc3\xa9 \xff half")
os.write(2, b" a line\r\n")
os.write(2, b"x" * 20000 + b"\n")
os.write(2, b"no newline at the end")
"""


@pytest.mark.subprocess
def test_a_childs_stderr_passes_through_byte_for_byte_and_each_line_is_a_record_under_the_spawn_span(
    global_logs: _Switchable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_tracing._core.stderr_logs import LINE_LIMIT, STDERR_LOGS_ENV, stderr_lines

    monkeypatch.setenv(STDERR_LOGS_ENV, "on")

    errlog = (tmp_path / "err").open("wb")
    with TracerProvider().get_tracer("t").start_as_current_span("spawner") as spawner:
        lines = stderr_lines(errlog, "child")
    assert lines is not None
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD], stderr=lines.child_end)
    finally:
        lines.spawned()
    assert child.wait(timeout=30) == 0
    assert lines.wait(10)
    errlog.close()
    expected = b"first line\ncaf\xc3\xa9 \xff half a line\r\n" + b"x" * 20000 + b"\nno newline at the end"
    assert (tmp_path / "err").read_bytes() == expected
    records = [item.log_record for item in global_logs.get_finished_logs()]
    assert [r.body for r in records] == [
        "first line",
        "café \ufffd half a line",
        "x" * LINE_LIMIT,
        "x" * LINE_LIMIT,
        "x" * (20000 - 2 * LINE_LIMIT),
        "no newline at the end",
    ]
    context = spawner.get_span_context()
    assert {(r.trace_id, r.span_id) for r in records} == {(context.trace_id, context.span_id)}
    assert dict(records[0].attributes or {}) == {"mcp_tracing.log.source": "stderr", "mcp_tracing.server.name": "child"}
    assert {item.instrumentation_scope.name for item in global_logs.get_finished_logs()} == {"child"}


def test_a_childs_stderr_is_left_alone_unless_asked_for_and_outside_a_sampled_span(
    global_logs: _Switchable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off by default: a server's stderr carries what its SDK prints of failing calls (arguments, exception
    text), which the privacy defaults keep out of every record."""
    from mcp_tracing._core.stderr_logs import STDERR_LOGS_ENV, stderr_lines

    monkeypatch.delenv(STDERR_LOGS_ENV, raising=False)
    with TracerProvider().get_tracer("t").start_as_current_span("s"):
        assert stderr_lines(sys.stderr, "child") is None
    monkeypatch.setenv(STDERR_LOGS_ENV, "on")
    assert stderr_lines(sys.stderr, "child") is None  # no span: nothing to put the lines under
    with TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_as_current_span("unsampled"):
        assert stderr_lines(sys.stderr, "child") is None


def test_traces_where_finds_a_trace_by_an_attribute_of_its_log_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``code.function.name`` is on the log records only (no span has it): the trace is found through them."""
    store_path = tmp_path / "t.db"
    trace_id, _, _ = _store_with_logs(store_path)
    store = ["--store", str(store_path)]
    assert main([*store, "traces", "--where", "function.name=_store_with_logs", "--json"]) == 0
    assert [row["trace_id"] for row in json.loads(capsys.readouterr().out)] == [trace_id]
    assert main([*store, "traces", "--where", "code.line.number>1000000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([*store, "traces", "--where", "function.name=elsewhere", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_log_records_count_toward_the_stores_cap_and_go_with_their_traces_oldest_first(tmp_path: Path) -> None:
    """``MCP_TRACING_STORE_MAX_SPANS`` caps spans and log records together: over it, whole traces go, oldest
    first, with their records; records of no stored trace go last, oldest first."""
    from mcp_tracing.store._index import log_count, span_count
    from mcp_tracing.store.records import LogRecord as StoredLog

    store_path = tmp_path / "t.db"
    first, _, _ = _store_with_logs(store_path)  # 2 spans, 2 records
    second, _, _ = _store_with_logs(store_path)
    writer = SqliteSpanExporter(store_path)
    orphans = [StoredLog("f" * 32, None, n, 9, "INFO", "x", f"orphan {n}", None, None) for n in range(3)]
    assert writer.write_logs(orphans)
    writer.shutdown()
    connection = sqlite3.connect(store_path, isolation_level=None)
    assert (span_count(connection), log_count(connection)) == (4, 7)
    apply_retention(connection, cutoff_ns=0, max_spans=7)  # 11 stored: the older trace goes (2 spans, 2 records)
    assert (span_count(connection), log_count(connection)) == (2, 5)
    assert {row[0] for row in connection.execute("SELECT DISTINCT trace_id FROM spans")} == {second}
    apply_retention(connection, cutoff_ns=0, max_spans=1)  # the other trace too, then the oldest orphans
    assert (span_count(connection), log_count(connection)) == (0, 1)
    assert connection.execute("SELECT body FROM logs").fetchall() == [("orphan 2",)]
    assert first != second
    connection.close()


ZERO_CODE = """
import logging

from opentelemetry import trace

with trace.get_tracer("zc").start_as_current_span("zero-code work"):
    logging.getLogger("app").warning("a warning under the span")
logging.getLogger("app").warning("outside any span: not kept")
"""


@pytest.mark.subprocess
@pytest.mark.sdk_independent
def test_under_zero_code_the_logs_exporter_entry_point_stores_a_traces_records(tmp_path: Path) -> None:
    """``opentelemetry-instrument --logs_exporter mcp_tracing``, with OpenTelemetry's own logging handler: the
    record written under the span is stored beside it; the one outside any trace is not."""
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    command = [
        str(instrument),
        *("--traces_exporter", "mcp_tracing", "--logs_exporter", "mcp_tracing", "--metrics_exporter", "none"),
        *("--service_name", "zc", sys.executable, "-c", ZERO_CODE),
    ]
    env = clean_env(HOME=str(tmp_path), OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true")
    env.pop("XDG_DATA_HOME", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    store = TraceStore(tmp_path / ".local" / "share" / "mcp-tracing" / "traces.db")
    try:
        (summary,) = store.traces()
        (span,) = store.spans(summary.trace_id)
        logs = store.logs(summary.trace_id)
    finally:
        store.close()
    assert [(r.span_id, r.body, r.service, r.logger) for r in logs] == [
        (span.span_id, "a warning under the span", "zc", "app")
    ]


def test_the_applications_own_logging_set_up_after_ours_still_takes_effect(
    exported: InMemoryLogRecordExporter,
) -> None:
    """``logging.basicConfig`` does nothing when the root logger has a handler, and ``dictConfig`` takes the
    root's handlers off: both run with ours set aside, and ours is back after (a process that calls
    ``configure()`` first, then sets up its logging, must get the logging it asked for)."""
    import io
    import logging.config

    root = logging.getLogger()
    ours = bridge.installed()
    others, level = [h for h in root.handlers if h is not ours], root.level
    for handler in others:
        root.removeHandler(handler)
    stream = io.StringIO()
    try:
        logging.basicConfig(level=logging.INFO, format="APP %(levelname)s %(message)s", stream=stream)
        logging.getLogger("tests.logs.setup").info("an info line")
        assert stream.getvalue() == "APP INFO an info line\n"
        assert ours in root.handlers and len(root.handlers) == 2
        # (disable_existing_loggers off: this process's other loggers, the suite's, must keep working)
        configuration = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING", "handlers": []}}
        logging.config.dictConfig(configuration)
        assert root.handlers == [ours]  # the application's configuration took the others off; ours is back
    finally:
        for handler in [h for h in root.handlers if h is not ours]:
            root.removeHandler(handler)
        for handler in others:
            root.addHandler(handler)
        root.setLevel(level)


def test_uninstall_gives_the_logging_set_up_functions_back() -> None:
    import logging.config

    originals = (logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig)
    bridge.install(LoggerProvider())
    assert logging.basicConfig is not originals[0]
    bridge.uninstall()
    assert (logging.basicConfig, logging.config.dictConfig, logging.config.fileConfig) == originals

"""Every span arrives, in one place: no split stores, nothing lost at exit or SIGTERM, nothing stalls.

A trace with a missing half looks like broken propagation, so each path by which a half went missing is
played here with real processes: a child whose environment differs from its spawner's, a server on the SDK's
own runner stopped by a signal, a slow or refusing or black-holed backend, the zero-code path into the store.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import free_port
from helpers.otlp import OtlpReceiver
from helpers.processes import assert_lesson_shape, clean_env
from mcp import ClientSession
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import mcp_tracing
from mcp_tracing import cli
from mcp_tracing._core import attributes as attr
from mcp_tracing.store import SqliteSpanExporter, TraceStore
from mcp_tracing.store.patterns import lost_halves
from mcp_tracing.testing import span_record

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ROOT / "tests" / "servers"
EXAMPLES = ROOT / "examples"


def run(
    args: list[str], *, cwd: Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=clean_env(**env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def stored(store: Path) -> TraceStore:
    assert store.exists(), f"no store at {store}"
    return TraceStore(store)


def assert_whole_demo(store: Path, stdout: str) -> None:
    """The demo's trace, from one store: 41 spans of 3 processes, the lesson's shape, no lost half."""
    assert stdout.splitlines()[0].endswith("41 spans from 3 processes"), stdout[:300]
    reader = stored(store)
    (summary,) = reader.traces()
    assert summary.services == ("demo-agent", "files-server", "sql-server")
    spans = reader.spans(summary.trace_id)
    assert_lesson_shape([s.__dict__ for s in spans])
    assert lost_halves(spans) == [] and "⚠" not in stdout


# ------------------------------------------------------------------------------- one store for the run


CHILD_HOME = """
import sys
import mcp.client.stdio as sdk_stdio
from mcp_tracing import cli

# The SDK spawns with this process's HOME: give the child another one, as sudo, a launcher or a sandbox would.
defaults = sdk_stdio.get_default_environment
sdk_stdio.get_default_environment = lambda: {**defaults(), "HOME": sys.argv[1]}
raise SystemExit(cli.main(["demo"]))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("case", ["XDG_DATA_HOME set", "relative MCP_TRACING_STORE", "HOME different in the child"])
def test_every_process_of_the_demo_writes_to_the_one_store(tmp_path: Path, case: str) -> None:
    """The spawner passes the store it resolved (an absolute path), not what it resolved it from."""
    home = tmp_path / "home"
    if case == "XDG_DATA_HOME set":
        done = run(["-m", "mcp_tracing.cli", "demo"], HOME=str(home), XDG_DATA_HOME=str(tmp_path / "xdg"))
        store = tmp_path / "xdg" / "mcp-tracing" / "traces.db"
    elif case == "relative MCP_TRACING_STORE":
        (tmp_path / "run").mkdir()
        done = run(["-m", "mcp_tracing.cli", "demo"], cwd=tmp_path / "run", HOME=str(home), MCP_TRACING_STORE="t.db")
        store = tmp_path / "run" / "t.db"
    else:
        done = run(["-c", CHILD_HOME, str(tmp_path / "other-home")], HOME=str(home), XDG_DATA_HOME="")
        store = home / ".local" / "share" / "mcp-tracing" / "traces.db"
    assert done.returncode == 0, done.stderr
    assert_whole_demo(store, done.stdout)
    assert not list(tmp_path.glob("other-home/**/traces.db")), "the child wrote a store of its own"
    assert "mcp_tracing" not in done.stderr  # nothing to say: no fallback, no export failure


def test_a_store_the_process_cannot_open_is_said_once_and_it_writes_its_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    exporter = SqliteSpanExporter(blocker / "traces.db")  # its folder cannot be made: a file is in the way
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with caplog.at_level(logging.WARNING, logger="mcp_tracing.store"):
        for n in range(3):
            provider.get_tracer("t").start_span(f"s{n}").end()
    provider.shutdown()
    fallback = tmp_path / "xdg" / "mcp-tracing" / "traces.db"
    (message,) = [r.getMessage() for r in caplog.records]  # once, not once per batch
    assert message == (
        f"mcp_tracing: cannot open the trace store {blocker / 'traces.db'} (File exists); "
        f"writing this process's spans to {fallback} instead"
    )
    (summary, *_) = stored(fallback).traces()
    assert len(stored(fallback).traces()) == 3 and summary.root == "s2"


def test_when_no_store_can_be_opened_spans_are_dropped_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    monkeypatch.delenv("MCP_TRACING_STORE", raising=False)
    exporter = SqliteSpanExporter()
    with caplog.at_level(logging.WARNING, logger="mcp_tracing.store"):
        results = [exporter.export([_finished_span()]) for _ in range(3)]
    exporter.shutdown()
    assert [r.name for r in results] == ["FAILURE"] * 3
    assert len(caplog.records) == 1 and "this process's spans are not stored" in caplog.records[0].getMessage()


def _finished_span() -> Any:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("one").end()
    (span,) = exporter.get_finished_spans()
    return span


def test_the_child_is_given_the_hash_key_file_its_spawner_resolved(tmp_path: Path) -> None:
    from mcp_tracing.stdio import child_environment

    parent = {"HOME": str(tmp_path / "h"), "XDG_DATA_HOME": "relative/is/ignored"}
    env = child_environment(None, parent_env=parent)
    assert env["MCP_TRACING_HASH_KEY_FILE"] == str(tmp_path / "h" / ".local" / "share" / "mcp-tracing" / "hash.key")
    assert "MCP_TRACING_HASH_KEY_FILE" not in child_environment(
        None, parent_env={**parent, "MCP_TRACING_HASH_KEY": "k"}
    )
    certificate = child_environment(None, parent_env={"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "ca.pem"})
    assert certificate["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] == str(Path.cwd() / "ca.pem")


# ------------------------------------------------------------------------------------ SIGTERM, runners


async def _serve_and_call(transport: str, port: int, store: Path, provider: TracerProvider) -> Any:
    env = clean_env(MCP_TRACING_STORE=str(store))
    process = await anyio.open_process(
        [sys.executable, str(SERVERS / "runner_server.py"), transport, str(port)], env=env, stdout=None
    )
    assert process.stderr is not None
    with anyio.fail_after(30):  # uvicorn says when it listens
        seen = b""
        while b"Uvicorn running on" not in seen:
            seen += await process.stderr.receive()
    url = f"http://127.0.0.1:{port}" + ("/mcp" if transport == "streamable-http" else "/sse")
    tracer = provider.get_tracer("tests.agent")
    with tracer.start_as_current_span("agent.root", kind=SpanKind.INTERNAL):
        if transport == "streamable-http":
            client = mcp_tracing.streamable_http_client(url, tracer_provider=provider)
        else:
            from mcp.client.sse import sse_client

            client = sse_client(url)
        async with client as (read, write, *_), ClientSession(read, write) as session:
            mcp_tracing.trace_session(session, tracer_provider=provider)
            with anyio.fail_after(20):
                await session.initialize()
                for n in range(3):
                    await session.call_tool("work", {"n": n})
    return process


@pytest.mark.subprocess
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("transport", "signum"),
    [("streamable-http", signal.SIGTERM), ("streamable-http", signal.SIGINT), ("sse", signal.SIGTERM)],
    ids=["streamable-http-SIGTERM", "streamable-http-SIGINT", "sse-SIGTERM"],
)
async def test_a_server_on_the_sdks_own_runner_stores_every_span_when_stopped_by_a_signal(
    tmp_path: Path, capture: tuple[TracerProvider, InMemorySpanExporter], transport: str, signum: int
) -> None:
    """``instrument_server`` + ``configure()`` and the SDK's ``run()``: SIGTERM flushes before uvicorn's re-raised
    SIGTERM kills the process (with the status it would have untraced); SIGINT exits through the exit handler."""
    provider, exporter = capture
    store = tmp_path / "server.db"
    process = await _serve_and_call(transport, free_port(), store, provider)
    process.send_signal(signum)
    with anyio.fail_after(30):
        status = await process.wait()
        stderr = b""
        assert process.stderr is not None
        async for chunk in process.stderr:
            stderr += chunk
    await process.aclose()
    if signum == signal.SIGTERM:
        assert status == -signal.SIGTERM, stderr.decode()  # as untraced: uvicorn re-raises it, we chain
    client_spans = {s.span_id: s for s in map(span_record, exporter.get_finished_spans()) if s.kind == "CLIENT"}
    calls = [s for s in client_spans.values() if s.name == "tools/call work"]
    assert len(calls) == 3
    reader = stored(store)
    server_spans = reader.spans(calls[0].trace_id)
    assert {s.service for s in server_spans} == {"runner-server"}
    served = [s for s in server_spans if s.name == "tools/call work"]
    assert sorted(s.parent_id or "" for s in served) == sorted(c.span_id for c in calls)
    assert all(s.kind == "SERVER" and s.trace_id == calls[0].trace_id for s in served)
    works = [s for s in server_spans if s.name == "runner.work"]
    assert sorted(w.parent_id or "" for w in works) == sorted(s.span_id for s in served)
    initialize = [s for s in server_spans if s.name == attr.INITIALIZE]
    assert len(initialize) == 1 and initialize[0].parent_id in client_spans
    # The runner serves through TraceContextMiddleware (issue 14, item 3): an HTTP SERVER span per request,
    # named by its route, that each MCP server span links to.
    http_spans = {s.span_id: s for t in reader.traces() for s in reader.spans(t.trace_id) if "url.path" in s.attributes}
    route = "/mcp" if transport == "streamable-http" else "/messages"
    posts = [s for s in http_spans.values() if s.name == f"POST {route}"]
    assert all(s.kind == "SERVER" and s.attributes["http.route"] == route for s in posts)
    for call in served:
        (link,) = call.links
        assert http_spans[link].name == f"POST {route}"
        if transport == "streamable-http":  # its POST carries the client span in traceparent
            assert http_spans[link].parent_id == call.parent_id
    if transport == "streamable-http":
        (root,) = [s.span_id for s in map(span_record, exporter.get_finished_spans()) if s.name == "agent.root"]
        # notifications/initialized has no span of its own (housekeeping): its POST carries the caller's span
        assert len(posts) == 6 and {p.parent_id for p in posts} <= {*client_spans, root}
        assert sorted(s.name for s in http_spans.values() if s not in posts) == ["DELETE /mcp", "GET /mcp"]
    else:  # the SDK's sse_client sends no traceparent: each POST is a root of its own
        assert len(posts) == 6 and all(p.parent_id is None for p in posts)
        assert [s.name for s in http_spans.values() if s not in posts] == ["GET /sse"]


# ---------------------------------------------------------------------------------- slow and bad backends


SLOW_AGENT = """
import sys, anyio
from mcp import ClientSession, StdioServerParameters
from opentelemetry import trace
import mcp_tracing

mcp_tracing.configure("slow-agent")

async def main():
    params = StdioServerParameters(
        command=sys.executable, args=[sys.argv[1]], env={"FILES_ROOT": sys.argv[2], "OTEL_SERVICE_NAME": "files"}
    )
    with trace.get_tracer("agent").start_as_current_span("agent.run"):
        async with mcp_tracing.stdio_client(params) as (read, write), ClientSession(read, write) as session:
            mcp_tracing.trace_session(session)
            await session.initialize()
            for word in ("a", "b", "c"):
                await session.call_tool("search", {"word": word})
    # ... and the agent exits right after its last call

anyio.run(main)
"""


@pytest.mark.subprocess
def test_a_stdio_server_exporting_to_a_slow_endpoint_delivers_every_span(
    tmp_path: Path, otlp_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """The endpoint answers each request 1.5 s late. The server flushes first thing at EOF, and stdio_client
    gives it its grace before the SDK's SIGTERM: every span of both processes arrives, in one trace."""
    endpoint, received = otlp_receiver
    OtlpReceiver.delay_s = 1.5
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("a b c")
    started = time.monotonic()
    done = run(
        ["-c", SLOW_AGENT, str(EXAMPLES / "stdio_server.py"), str(tmp_path / "files")],
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    spans = OtlpReceiver.wait_for(lambda got: sum(s["service"] == "files" for s in got) >= 9, timeout=10)
    files = sorted(s["name"] for s in spans if s["service"] == "files")
    assert files == sorted(["mcp.server.session", "initialize", "tools/list", *["tools/call search", "fs.scan"] * 3]), (
        files
    )
    by_id = {s["span_id"]: s for s in spans}
    served = [s for s in spans if s["name"] == "tools/call search" and s["kind"] == "SERVER"]
    assert len(served) == 3 and len({s["trace_id"] for s in spans}) == 1
    for span in served:
        client = by_id[span["parent_id"]]
        assert (client["service"], client["kind"], client["name"]) == ("slow-agent", "CLIENT", "tools/call search")
    assert sum(s["name"] == "fs.scan" for s in spans) == 3
    assert sum(s["name"] == attr.SERVER_SESSION_SPAN for s in spans) == 1
    assert elapsed < 60, elapsed
    assert "Traceback" not in done.stderr


METRIC_AGENT = """
import time
from opentelemetry import trace
import mcp_tracing
from mcp_tracing.metrics import McpMetrics

mcp_tracing.configure("metric-agent")
metrics = McpMetrics()
tracer = trace.get_tracer("agent")
for n in range(5):
    with tracer.start_as_current_span(f"step {n}"):
        metrics.client_operation(0.01, {"mcp.method.name": "tools/call"})
    time.sleep(0.1)  # the program's own pace (5 metric export intervals of 100 ms in all)
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("case", ["traces-only endpoint", "metrics exporter none", "metrics refused (405)"])
def test_configure_sends_metrics_only_where_asked_and_exits_promptly(
    case: str, otlp_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    endpoint, received = otlp_receiver
    env = {"OTEL_METRIC_EXPORT_INTERVAL": "100", "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}
    if case == "traces-only endpoint":
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = endpoint + "/v1/traces"
    elif case == "metrics exporter none":
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_METRICS_EXPORTER="none")
    else:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        OtlpReceiver.metrics_status = 405
    started = time.monotonic()
    done = run(["-c", METRIC_AGENT], timeout=60, **env)  # pyright: ignore[reportArgumentType]  # env: variables only
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert sorted(s["name"] for s in received) == [f"step {n}" for n in range(5)]
    if case == "metrics refused (405)":
        assert len(OtlpReceiver.metric_bodies) == 1, "asked again after a 405"
        (line,) = done.stderr.splitlines()
        assert re.fullmatch(r"mcp_tracing: \S+/v1/metrics does not take OTLP metrics \(HTTP 405\); .*", line), line
    else:
        assert OtlpReceiver.metric_bodies == [] and done.stderr == ""
    assert elapsed < 15, elapsed


@pytest.mark.subprocess
def test_configure_exits_within_the_shutdown_timeout_against_a_black_holed_endpoint(black_hole: str) -> None:
    """The OTLP exporters would wait 30 s per request (their timeout); exit waits MCP_TRACING_SHUTDOWN_TIMEOUT."""
    started = time.monotonic()
    done = run(
        ["-c", METRIC_AGENT],
        timeout=90,
        OTEL_EXPORTER_OTLP_ENDPOINT=black_hole,
        OTEL_EXPORTER_OTLP_TIMEOUT="30",
        OTEL_METRIC_EXPORT_INTERVAL="100",
        MCP_TRACING_SHUTDOWN_TIMEOUT="2",
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 15, elapsed  # 2 s of waiting at exit, plus start-up and the script's own 0.5 s
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr and len(lines) == len(set(lines)) <= 3, lines
    assert any("exporting spans at exit took longer than 2.0 s" in line for line in lines), lines


# ------------------------------------------------------------------------------------------ zero code


def readme_block(heading: str) -> list[str]:
    """The commands of the first ```bash block after ``heading`` in README.md, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading) :]
    block = after[after.index("```bash\n") + len("```bash\n") :]
    block = block[: block.index("```")]
    return [re.sub(r"\s*#.*$", "", line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.subprocess
def test_the_readmes_zero_code_commands_run_as_written_give_one_trace_in_the_store(tmp_path: Path) -> None:
    """``opentelemetry-instrument --traces_exporter mcp_tracing`` on the plain agent and server (no tracing code):
    one connected trace in the local store. The README's commands run verbatim (the install line is checked
    against what the test venv holds: the package itself and opentelemetry-distro)."""
    commands = readme_block("### Zero code")
    install, *rest = commands
    assert install.split()[:2] == ["pip", "install"] and set(install.split()[2:]) == {".", "opentelemetry-distro"}
    env = clean_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path))
    env.pop("XDG_DATA_HOME", None)
    outputs = []
    for command in rest:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
        outputs.append(done.stdout)
    store = stored(tmp_path / ".local" / "share" / "mcp-tracing" / "traces.db")
    (summary,) = store.traces()
    assert summary.services == ("agent", "weather") and summary.root == attr.CLIENT_SESSION_SPAN
    spans = store.spans(summary.trace_id)
    by_id = {s.span_id: s for s in spans}
    for served in (s for s in spans if s.service == "weather" and s.kind == "SERVER"):
        assert by_id[served.parent_id or ""].service == "agent", served
    assert lost_halves(spans) == []
    assert summary.trace_id in outputs[-1]


# ------------------------------------------------------------------------------------ the missing half


def _store_with_calls(path: Path, *, answered: list[bool], server_name: str = "files") -> str:
    """A stored trace: an agent span and one tools/call CLIENT span per entry, with a SERVER child if True."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("agent.session") as root:
        for ok in answered:
            attributes = {attr.MCP_METHOD_NAME: "tools/call", attr.SERVER_NAME: server_name}
            with tracer.start_as_current_span("tools/call read", kind=SpanKind.CLIENT, attributes=attributes):
                if ok:
                    tracer.start_span("tools/call read", kind=SpanKind.SERVER).end()
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert cli.main(list(args)) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("answered", "hint"),
    [
        ([True, True, True], None),
        (
            [False, False, False],
            'no spans from server "files" (3 calls): it is not traced, exports to another '
            "store or endpoint, or was killed before it flushed",
        ),
        (
            [True, True, False],
            '1 of 3 calls to server "files" have no server span: it was killed before it '
            "flushed, or lost the context of those calls",
        ),
    ],
    ids=["whole", "server half missing", "last call missing"],
)
def test_show_and_traces_say_when_a_servers_half_of_the_trace_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answered: list[bool], hint: str | None
) -> None:
    store = tmp_path / "t.db"
    trace_id = _store_with_calls(store, answered=answered)
    shown = _cli(capsys, "--store", str(store), "show", trace_id, "--bars", "0")
    warnings = [line for line in shown if line.startswith("⚠")]
    assert warnings == ([f"⚠ {hint}"] if hint else [])
    (row,) = _cli(capsys, "--store", str(store), "traces")[1:]
    assert row.endswith('⚠ no spans from "files"') == (hint is not None), row
    import json

    (listed,) = json.loads("\n".join(_cli(capsys, "--store", str(store), "traces", "--json")))
    assert listed["lost_servers"] == ([] if hint is None else ["files"])


def test_a_server_name_with_control_characters_is_quoted_in_the_hint(tmp_path: Path) -> None:
    store = tmp_path / "t.db"
    trace_id = _store_with_calls(store, answered=[False], server_name="x\x1b]0;PWNED\x07")
    (half,) = lost_halves(TraceStore(store).spans(trace_id))
    assert "\x1b" not in half.describe() and '"x\\u001b]0;PWNED\\u0007"' in half.describe()


# ------------------------------------------------------------------------------------------- the grace


def test_a_bad_exit_grace_is_refused_and_the_sdk_is_left_as_it_was() -> None:
    import mcp.client.stdio as sdk_stdio

    from mcp_tracing.stdio import DEFAULT_GRACE_S, exit_grace_s

    with pytest.raises(ValueError, match="exit_grace"):
        exit_grace_s(-1)
    assert exit_grace_s(None) == DEFAULT_GRACE_S and exit_grace_s(0) == 0
    assert not hasattr(sdk_stdio._terminate_process_tree, "__wrapped__")


@pytest.mark.subprocess
@pytest.mark.anyio
@pytest.mark.parametrize("grace", [2.0, 6.0])
async def test_a_server_slow_to_exit_gets_the_grace_then_the_sdks_sigterm(grace: float, tmp_path: Path) -> None:
    """A server that takes 4 s to exit after EOF: with 6 s of grace it exits on its own; with the SDK's 2 s it
    gets the SDK's SIGTERM. The SDK function is wrapped only while the transport is open."""
    import mcp.client.stdio as sdk_stdio
    from mcp import StdioServerParameters

    from mcp_tracing.stdio import _grace

    marker = tmp_path / "terminated"
    script = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (open({str(marker)!r}, 'w').close(), sys.exit(0)))\n"
        "for line in sys.stdin: pass\n"  # until EOF
        "time.sleep(4)\n"  # a slow exporter, as far as the spawner can tell
    )
    params = StdioServerParameters(command=sys.executable, args=["-c", script])
    started = time.monotonic()
    async with mcp_tracing.stdio_client(params, exit_grace=grace):
        assert _grace.get() == grace and hasattr(sdk_stdio._terminate_process_tree, "__wrapped__")
    elapsed = time.monotonic() - started
    assert not hasattr(sdk_stdio._terminate_process_tree, "__wrapped__") and _grace.get() is None
    if grace > 4:
        assert not marker.exists() and elapsed >= 4, elapsed  # waited for it to exit by itself
    else:
        assert marker.exists(), elapsed  # still running after 2 s: the SDK's SIGTERM


# ------------------------------------------------------------------------------- bounded flushing (fast)


class _StuckProvider:
    """A provider whose flush never ends on its own (an exporter stuck on a dead endpoint)."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()
        self.calls = 0

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls += 1
        self.release.wait(30)
        return True


def test_a_stuck_flush_is_waited_for_only_as_long_as_the_timeout_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mcp_tracing._core import shutdown as _shutdown

    stuck = _StuckProvider()
    try:
        with caplog.at_level(logging.WARNING, logger="mcp_tracing._core.shutdown"):
            started = time.monotonic()
            results = [_shutdown.flush(stuck, timeout=0.2) for _ in range(2)]  # type: ignore[arg-type]
            waited = time.monotonic() - started
    finally:
        stuck.release.set()
    assert results == [False, False] and stuck.calls == 2 and waited < 10
    (message,) = [r.getMessage() for r in caplog.records if "flushing spans" in r.getMessage()]
    assert message.startswith("mcp_tracing: flushing spans took longer than 0.2 s")


def test_a_failing_flush_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    from mcp_tracing._core import shutdown as _shutdown

    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("exporter bug")

    with caplog.at_level(logging.WARNING, logger="mcp_tracing._core.shutdown"):
        late = _shutdown.run_bounded([("broken", broken), ("fine", lambda: ran.append("fine"))], 5)
    assert late == [] and ran == ["fine"]
    assert [r.getMessage() for r in caplog.records] == ["mcp_tracing: broken failed"]


def test_a_bad_shutdown_timeout_is_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mcp_tracing._core import settings, shutdown as _shutdown

    monkeypatch.setattr(settings, "_warned", set())
    monkeypatch.setenv("MCP_TRACING_SHUTDOWN_TIMEOUT", "soon")
    with caplog.at_level(logging.WARNING, logger="mcp_tracing._core.shutdown"):
        assert _shutdown.shutdown_timeout() == _shutdown.DEFAULT_SHUTDOWN_TIMEOUT_S
    monkeypatch.setenv("MCP_TRACING_SHUTDOWN_TIMEOUT", "0.5")
    assert _shutdown.shutdown_timeout() == 0.5
    assert len(caplog.records) == 1


FORKED = """
import os, sys
from mcp_tracing._core import shutdown as _shutdown
_shutdown._helpers.prepare(2)
pid = os.fork()
if pid == 0:  # the helper threads did not come along: new ones must run the job
    late = _shutdown.run_bounded([("job", lambda: None)], 10)
    os._exit(0 if late == [] else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.subprocess
def test_a_forked_child_flushes_with_helpers_of_its_own() -> None:
    done = run(["-c", FORKED], timeout=60)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------------- the SDK's own spawn


SDK_SPAWN_AGENT = """
import json, sys, anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client  # the SDK's own spawner, not mcp_tracing's
from opentelemetry import trace
import mcp_tracing

mcp_tracing.configure("sdk-spawner")

async def main():
    env = {"PROBE_TRACED": "0", "CALLER_NOTE": "kept"}
    params = StdioServerParameters(command=sys.executable, args=[sys.argv[1]], env=env)
    with trace.get_tracer("agent").start_as_current_span("agent.run") as span:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("env_report", {})
    report = result.structuredContent if hasattr(result, "structuredContent") else result.structured_content
    print(json.dumps({"env": report["env"], "span": format(span.get_span_context().span_id, "016x")}))

anyio.run(main)
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("opt_out", [False, True])
def test_configure_makes_the_sdks_own_spawns_carry_the_context_and_the_store(tmp_path: Path, opt_out: bool) -> None:
    """``configure()`` alone: a server spawned with the SDK's ``stdio_client`` (as ``Client(StdioServerParameters)``
    and fastmcp do) gets the span current at spawn and this process's store, as ``mcp_tracing.stdio_client``'s
    children do. ``MCP_TRACING_SPAWN_ENVIRONMENT=off`` leaves the SDK's spawns as they are."""
    import json

    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    if opt_out:
        env["MCP_TRACING_SPAWN_ENVIRONMENT"] = "off"
    done = run(["-c", SDK_SPAWN_AGENT, str(SERVERS / "probe_server.py")], **env)  # pyright: ignore[reportArgumentType]
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    if opt_out:
        assert "TRACEPARENT" not in out["env"] and "MCP_TRACING_STORE" not in out["env"]
        return
    assert out["env"]["TRACEPARENT"].split("-")[2] == out["span"]
    assert out["env"]["MCP_TRACING_STORE"] == str(tmp_path / "xdg" / "mcp-tracing" / "traces.db")
    assert out["env"]["CALLER_NOTE"] == "kept"  # what the caller gives is passed as before


# ------------------------------------------------------------------------------- exporter choice (fast)


@pytest.mark.parametrize(
    ("env", "traces", "metrics"),
    [
        ({}, ["mcp_tracing"], []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, ["otlp"], ["RefusalAwareMetricExporter"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, ["otlp"], []),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:1/v1/metrics"},
            ["mcp_tracing"],
            ["RefusalAwareMetricExporter"],
        ),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, [], []),
        (
            {"OTEL_TRACES_EXPORTER": "console,mcp_tracing", "OTEL_METRICS_EXPORTER": "console"},
            ["console", "mcp_tracing"],
            ["ConsoleMetricExporter"],
        ),
    ],
    ids=["nothing set", "endpoint", "traces-only endpoint", "metrics-only endpoint", "none", "console"],
)
def test_exporters_follow_the_opentelemetry_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], traces: list[str], metrics: list[str]
) -> None:
    from mcp_tracing._core import exporters as _exporters

    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _exporters.traces_destination() == traces
    made = _exporters.metric_exporters()
    assert [type(e).__name__ for e in made] == metrics
    for exporter in made:
        exporter.shutdown()


def test_unknown_exporters_and_a_missing_grpc_exporter_are_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from mcp_tracing._core import exporters as _exporters, settings

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,zipkin_json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setattr(settings, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="mcp_tracing._core.exporters"):
        for _ in range(2):
            made = _exporters.span_exporters(tmp_path / "t.db")
            assert [type(e).__name__ for e in made] == ["OTLPSpanExporter"]  # over HTTP/protobuf instead
            for exporter in made:
                exporter.shutdown()
    assert [r.getMessage() for r in caplog.records] == [
        "mcp_tracing: the gRPC OTLP exporter is not installed; exporting over HTTP/protobuf",
        "mcp_tracing: no opentelemetry_traces_exporter named 'zipkin_json' is installed; ignored",
    ]

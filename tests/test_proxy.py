"""``mcp-tracing wrap``: unmodified third-party stdio servers traced from outside, bytes untouched."""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import stored_spans as stored
from helpers.processes import other_python
from mcp import ClientSession, StdioServerParameters
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2
from mcp_tracing.privacy import args_hash
from mcp_tracing.proxy import SERVER_EXITED, Framer, Proxy, command_name, messages
from mcp_tracing.store import TraceStore
from mcp_tracing.store.records import span_record
from mcp_tracing.testing import SpanRecord

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from plain_agent import answer  # the canned 'model' of the plain agent

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
RAW = [sys.executable, str(ROOT / "tests" / "servers" / "raw_server.py")]
WRAP = [sys.executable, "-m", "mcp_tracing.cli", "wrap", "--"]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def proxy_env(store: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_", "TRACEPARENT"))}
    key = os.environ["MCP_TRACING_HASH_KEY"]  # the tests' key (conftest): hashes comparable across processes
    return {**env, "MCP_TRACING_STORE": str(store), "MCP_TRACING_HASH_KEY": key, "OTEL_SERVICE_NAME": "proxy", **extra}


def line(message: object) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"


def request(request_id: int, method: str, params: object = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


async def run(command: list[str], data: bytes, env: dict[str, str] | None = None) -> tuple[bytes, int]:
    with anyio.fail_after(60):
        done = await anyio.run_process(command, input=data, env=env, check=False, stderr=None)
    return done.stdout, done.returncode


# ------------------------------------------------------------------------------------------- bytes


async def test_the_client_receives_the_same_bytes_with_and_without_the_proxy(tmp_path: Path) -> None:
    """1 MB messages both ways, raw UTF-8, batches, notifications both ways: byte for byte the same."""
    store = tmp_path / "t.db"
    big_param = "é" * 500_000  # 1 MB of UTF-8 from the client
    data = b"".join(
        [
            line(request(1, "initialize", {"protocolVersion": "2025-06-18"})),
            line({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            line(request(2, "big", {"_meta": {"progressToken": 7}})),
            line(request(3, "unicode", {"text": "ünïcödé ✓"})),
            line([request(4, "echo", {"n": 1}), {"jsonrpc": "2.0", "method": "notifications/x"}, request(5, "fail")]),
            line(request(6, "echo", {"text": big_param})),
            line(request(7, "tools/call", {"name": "lookup", "arguments": {"q": "x"}})),
            line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}}),
        ]
    )
    direct, direct_status = await run(RAW, data)
    proxied, proxied_status = await run(WRAP + RAW, data, proxy_env(store, TRACEPARENT=TRACEPARENT))
    assert (proxied_status, direct_status) == (0, 0)
    assert len(direct) > 2_000_000 and "héllo ✓ 🚀 日本".encode() in direct
    assert proxied == direct

    spans = stored(store)
    (session,) = [s for s in spans if s.name == attr.SERVER_SESSION_SPAN]
    assert (session.trace_id, session.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    served = {s.attributes.get(attr.JSONRPC_REQUEST_ID): s for s in spans if s.kind == "SERVER" and s.end_ns}
    assert sorted(k for k in served if k is not None) == ["1", "2", "3", "4", "5", "6", "7"]
    assert all(s.parent_id == session.span_id for s in served.values())  # no _meta: under the session span
    assert [served[k].name for k in ("1", "2", "3", "4", "5", "7")] == [
        "initialize",
        "big",
        "unicode",
        "echo",
        "fail",
        "tools/call lookup",
    ]
    assert served["5"].attributes[attr.ERROR_TYPE] == "-32602" and served["5"].status == "ERROR"
    assert served["7"].attributes[attr.ERROR_TYPE] == attr.ERROR_TOOL
    assert served["7"].attributes[attr.TOOL_ARGS_HASH] == args_hash({"q": "x"})
    assert "s3cr3t" not in json.dumps([s.__dict__ for s in spans], default=str)  # error text is never recorded
    # Notifications: an instant span each, but housekeeping (notifications/initialized, the server's log lines).
    notes = sorted((s.name, s.kind, s.end_ns - s.start_ns) for s in spans if s.name.startswith("notifications/"))
    assert notes == [("notifications/cancelled", "SERVER", 0), ("notifications/x", "SERVER", 0)]


async def test_the_server_crashing_mid_call(tmp_path: Path) -> None:
    """The pending span ends with an error, the client gets EOF, the proxy exits as the server did."""
    store = tmp_path / "t.db"
    data = line(request(1, "echo", {"n": 1})) + line(request(2, "crash"))
    direct, direct_status = await run(RAW, data)
    proxied, proxied_status = await run(WRAP + RAW, data, proxy_env(store))
    assert (proxied, proxied_status) == (direct, direct_status) and direct_status == 3
    (crashed,) = [s for s in stored(store) if s.name == "crash"]
    assert (crashed.status, crashed.attributes[attr.ERROR_TYPE]) == ("ERROR", SERVER_EXITED)
    assert crashed.end_ns >= crashed.start_ns


async def test_a_server_killed_by_a_signal_kills_the_proxy_with_it(tmp_path: Path) -> None:
    store = tmp_path / "t.db"
    data = line(request(1, "die"))
    direct, direct_status = await run(RAW, data)
    proxied, proxied_status = await run(WRAP + RAW, data, proxy_env(store))
    assert (proxied, proxied_status) == (direct, direct_status) == (direct, -signal.SIGTERM)
    (died,) = [s for s in stored(store) if s.name == "die"]  # flushed before the proxy died
    assert died.attributes[attr.ERROR_TYPE] == SERVER_EXITED


async def test_sigterm_to_the_proxy_reaches_the_server(tmp_path: Path) -> None:
    """The proxy passes SIGTERM on and ends as the server did (here: killed by it)."""
    store = tmp_path / "t.db"
    process = await anyio.open_process(WRAP + RAW, env=proxy_env(store))
    try:
        assert process.stdin is not None and process.stdout is not None
        await process.stdin.send(line(request(1, "echo", {"n": 1})))
        received = b""
        with anyio.fail_after(30):
            while received.count(b"\n") < 2:  # the log notification, then the answer: the proxy is running
                received += await process.stdout.receive()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            status = await process.wait()
    finally:
        await process.aclose()
    assert status == -signal.SIGTERM
    assert [s.name for s in stored(store) if s.kind == "SERVER"] == ["echo"]


async def test_wrap_without_a_command_or_with_a_missing_one(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process(WRAP, env=proxy_env(tmp_path / "t.db"), check=False)
    assert done.returncode == 2 and b"no server command" in done.stderr
    with anyio.fail_after(60):
        done = await anyio.run_process(
            WRAP + [str(tmp_path / "no-such-server")], env=proxy_env(tmp_path / "t.db"), check=False
        )
    assert done.returncode == 127 and b"cannot start" in done.stderr and done.stdout == b""
    assert not (tmp_path / "t.db").exists() or stored(tmp_path / "t.db") == []  # a start that failed records nothing


# --------------------------------------------------------------------------------- real servers, traced


async def traced_calls(
    provider: TracerProvider,
    command: list[str],
    store: Path,
    calls: list[tuple[str, dict[str, Any]]],
    **session_options: Any,
) -> tuple[trace.Span, list[Any]]:
    """A traced client spawning ``wrap -- command`` in span ``agent.run``; returns the span and results."""
    params = StdioServerParameters(
        command=WRAP[0],
        args=[*WRAP[1:], *command],
        env={"MCP_TRACING_STORE": str(store), "OTEL_SERVICE_NAME": "proxy"},
    )
    results: list[Any] = []
    with provider.get_tracer("tests").start_as_current_span("agent.run") as root:
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(mcp_tracing.stdio_client(params))
            session = await stack.enter_async_context(ClientSession(read, write, **session_options))
            mcp_tracing.trace_session(session, tracer_provider=provider)
            with anyio.fail_after(60):
                await session.initialize()
                for name, arguments in calls:
                    results.append(await session.call_tool(name, arguments))
    return root, results


def assert_connected(
    root: trace.Span, exporter: InMemorySpanExporter, store: Path, calls: list[tuple[str, dict[str, Any]]]
) -> list[SpanRecord]:
    """Client tools/call -> proxy tools/call for every call, one trace, session span under the spawn span."""
    client = [span_record(s) for s in exporter.get_finished_spans()]
    proxy = stored(store)
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert {s.trace_id for s in proxy} == {trace_id}
    (session,) = [s for s in proxy if s.name == attr.SERVER_SESSION_SPAN]
    assert session.parent_id == format(root.get_span_context().span_id, "016x")
    for tool, arguments in calls:
        name = f"tools/call {tool}"
        (sent,) = [s for s in client if s.name == name and s.kind == "CLIENT"]
        (served,) = [s for s in proxy if s.name == name and s.kind == "SERVER"]
        assert served.parent_id == sent.span_id
        assert served.attributes[attr.TOOL_ARGS_HASH] == sent.attributes[attr.TOOL_ARGS_HASH] == args_hash(arguments)
        assert served.attributes[attr.JSONRPC_REQUEST_ID] == sent.attributes[attr.JSONRPC_REQUEST_ID]
        assert served.attributes[attr.NETWORK_TRANSPORT] == "pipe"
        assert served.attributes[attr.TOOL_STATUS] == "ok"
        assert sent.start_ns <= served.start_ns <= served.end_ns <= sent.end_ns
    return proxy


@pytest.mark.subprocess
async def test_wrapping_an_untraced_python_server_on_mcp_1_30(
    capture: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    provider, exporter = capture
    python = other_python() if IS_V2 else sys.executable  # the mcp==1.30.0 venv's interpreter
    calls = [("forecast", {"city": "Oslo"}), ("summarize", {"city": "Paris"})]
    server = [python, str(ROOT / "examples" / "plain_server.py")]
    root, results = await traced_calls(provider, server, tmp_path / "t.db", calls, sampling_callback=answer)
    assert [r.content[0].text for r in results] == ["snow, -3C", "pack an umbrella"]
    proxy = assert_connected(root, exporter, tmp_path / "t.db", calls)
    (initialize,) = [s for s in proxy if s.name == "initialize"]
    assert initialize.attributes[attr.SERVER_NAME] == "weather"  # learnt from the initialize result
    # The server asked its client for a completion while serving summarize: the one request in flight.
    (asked,) = [s for s in proxy if s.name == "sampling/createMessage"]
    (summarize,) = [s for s in proxy if s.name == "tools/call summarize"]
    assert (asked.kind, asked.parent_id) == ("CLIENT", summarize.span_id)
    assert summarize.start_ns <= asked.start_ns <= asked.end_ns <= summarize.end_ns


def everything() -> list[str]:
    """The TypeScript reference server from npm (scripts/test installs it; .ci/run always has it)."""
    path = os.environ.get("MCP_TRACING_EVERYTHING")
    if not path or not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install @modelcontextprotocol/server-everything (scripts/test)")
        pytest.skip("MCP_TRACING_EVERYTHING is not set (scripts/test installs the npm server and sets it)")
    return ["node", path, "stdio"]


@pytest.mark.subprocess
async def test_wrapping_the_typescript_reference_server(
    capture: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    provider, exporter = capture
    calls = [("echo", {"message": "hi ✓"}), ("get-sum", {"a": 2, "b": 3}), ("get-tiny-image", {})]
    root, results = await traced_calls(provider, everything(), tmp_path / "t.db", calls)
    assert "hi ✓" in results[0].content[0].text and "5" in results[1].content[0].text
    proxy = assert_connected(root, exporter, tmp_path / "t.db", calls)
    (initialize,) = [s for s in proxy if s.name == "initialize"]
    assert initialize.attributes[attr.SERVER_NAME] == "mcp-servers/everything"


# ------------------------------------------------------------------------------------ framing, in process


def test_the_framer_sees_whole_messages_whatever_the_chunks() -> None:
    seen: list[bytes] = []
    stream = b'{"a":1}\n\n{"b":"' + b"x" * 50 + b'"}\n' + b"y" * 150 + b'\n{"c":3}\n{"partial"'
    for size in (1, 7, len(stream)):
        seen.clear()
        framer = Framer(lambda message, _at: seen.append(message), limit=100)
        for i in range(0, len(stream), size):
            framer.feed(stream[i : i + size], 0)
        # Blank lines skipped; the 150-byte line is over the limit: forwarded (not here) but not read.
        assert seen == [b'{"a":1}', b'{"b":"' + b"x" * 50 + b'"}', b'{"c":3}'], size


def test_messages_reads_objects_and_batches_and_ignores_the_rest() -> None:
    assert list(messages(b'{"id":1}')) == [{"id": 1}]
    assert list(messages(b'[{"id":1},2,{"id":3}]')) == [{"id": 1}, {"id": 3}]
    assert list(messages(b"not json")) == []
    assert list(messages(b"\xff\xfe")) == []
    assert list(messages(b"42")) == []


def test_the_proxy_pairs_answers_read_before_their_requests_and_ties_progress(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """Each direction is read by its own thread: an answer can be read before its request. Progress lands on
    its request; a cancel ends it; a server request with two client requests in flight hangs off the session."""
    provider, exporter = capture
    proxy = Proxy(tracer_provider=provider)
    progress = {"progressToken": "p", "progress": 1, "total": 2}
    proxy.from_server(line({"jsonrpc": "2.0", "id": 1, "result": {"content": []}}), 2_000)
    proxy.from_client(line(request(1, "tools/call", {"name": "a"})), 1_000)
    proxy.from_client(line(request(2, "tools/call", {"name": "b"})), 3_000)
    proxy.from_client(line(request(3, "tools/call", {"name": "c", "_meta": {"progressToken": "p"}})), 3_000)
    proxy.from_server(line({"jsonrpc": "2.0", "id": 0, "method": "roots/list"}), 3_500)
    proxy.from_server(line({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress}), 3_600)
    proxy.from_client(line({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}), 4_000)
    proxy.from_client(line({"jsonrpc": "2.0", "id": 0, "result": {"roots": []}}), 4_500)
    proxy.close(exited=False)
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name != "notifications/cancelled"}
    a, b, c = spans["tools/call a"], spans["tools/call b"], spans["tools/call c"]
    assert (a.start_time, a.end_time, a.status.is_unset) == (1_000, 2_000, True)
    assert (b.end_time, (b.attributes or {})[attr.ERROR_TYPE]) == (4_000, "CancelledError")
    assert c.status.is_unset and c.end_time is not None  # still pending at close, but the server did not die
    assert [(e.name, dict(e.attributes or {})) for e in c.events] == [
        (attr.PROGRESS_EVENT, {attr.PROGRESS_VALUE: 1.0, attr.PROGRESS_TOTAL: 2.0})
    ]
    roots = spans["roots/list"]
    assert roots.parent is not None and roots.parent.span_id == proxy.session.get_span_context().span_id
    assert (roots.kind.name, roots.start_time, roots.end_time) == ("CLIENT", 3_500, 4_500)
    assert spans["notifications/progress"].parent.span_id == proxy.session.get_span_context().span_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["python3.11", "-u", "/srv/weather_server.py"], "weather_server"),
        (["npx", "-y", "@modelcontextprotocol/server-everything"], "server-everything"),
        (["uv", "run", "files.py"], "files"),
        (["/usr/local/bin/my-mcp-server", "--port", "1"], "my-mcp-server"),
        ([], "server"),
    ],
)
def test_a_server_with_no_name_of_its_own_is_named_after_its_command(argv: list[str], name: str) -> None:
    assert command_name(argv) == name


@pytest.mark.parametrize(
    ("given", "handshake", "expected"),
    [
        (None, None, "weather_server"),  # never answered a handshake: the command's name
        (None, "initialize", "weather"),  # a 2025 server names itself in initialize
        (None, "server/discover", "weather"),  # a 2026-07-28 server, in its server/discover result
        ("forecasts", "server/discover", "forecasts"),  # --server-name wins
    ],
)
def test_the_wrapped_servers_name_comes_from_the_flag_the_handshake_or_the_command(
    capture: tuple[TracerProvider, InMemorySpanExporter], given: str | None, handshake: str | None, expected: str
) -> None:
    provider, exporter = capture
    proxy = Proxy(server_name=given, fallback_name="weather_server", tracer_provider=provider)
    if handshake == "initialize":
        result: dict[str, object] = {"protocolVersion": "2025-11-25", "serverInfo": {"name": "weather", "version": "1"}}
    else:
        stamp = {"io.modelcontextprotocol/serverInfo": {"name": "weather", "version": "1"}}
        result = {
            "supportedVersions": ["2026-07-28"],
            "_meta": stamp,
            "serverInfo": {"name": "weather", "version": "1"},
        }
    if handshake is not None:
        proxy.from_client(line(request(1, handshake, {})), 1_000)
        proxy.from_server(line({"jsonrpc": "2.0", "id": 1, "result": result}), 2_000)
    proxy.from_client(line(request(2, "tools/call", {"name": "forecast"})), 3_000)
    proxy.from_server(line({"jsonrpc": "2.0", "id": 2, "result": {"content": []}}), 4_000)
    proxy.close(exited=False)
    (call,) = [s for s in exporter.get_finished_spans() if s.name == "tools/call forecast"]
    assert (call.attributes or {})[attr.SERVER_NAME] == expected


async def test_a_wrapped_servers_stderr_passes_through_and_each_line_is_a_record_under_its_session_span(
    tmp_path: Path,
) -> None:
    store = tmp_path / "t.db"
    server = "import sys; sys.stderr.write('starting\\nready on stdio\\n'); sys.stdin.read(); sys.stderr.write('bye')"
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [*WRAP[:-1], "--server-name", "weather", "--", sys.executable, "-c", server],
            input=b"",
            env=proxy_env(store, TRACEPARENT=TRACEPARENT, MCP_TRACING_STDERR_LOGS="on"),
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"starting\nready on stdio\nbye"  # byte for byte, as unwrapped
    reader = TraceStore(store)
    try:
        trace_id = TRACEPARENT.split("-")[1]
        (session,) = [s for s in reader.spans(trace_id) if s.name == attr.SERVER_SESSION_SPAN]
        logs = reader.logs(trace_id)
    finally:
        reader.close()
    assert [(r.body, r.span_id, r.logger, r.service) for r in logs] == [
        (text, session.span_id, "weather", "proxy") for text in ("starting", "ready on stdio", "bye")
    ]

"""``McpInstrumentor``: zero-code tracing under ``opentelemetry-instrument``, and a clean on/off/on cycle."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import read_requests
from helpers.inprocess import McpServer, connected
from helpers.otlp import OtlpReceiver
from mcp import ClientSession
from mcp.client import stdio as sdk_stdio
from mcp.client.stdio import stdio_client as EARLY_STDIO_CLIENT
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2
from mcp_tracing.instrumentor import McpInstrumentor

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
PLAIN_AGENT = ROOT / "examples" / "plain_agent.py"
PLAIN_SERVER = ROOT / "examples" / "plain_server.py"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"

Spans = list[dict[str, Any]]


def instrumented(service: str, *argv: str) -> list[str]:
    """A command line run under OpenTelemetry's auto-instrumentation, as a user would type it."""
    return [str(INSTRUMENT), "--service_name", service, sys.executable, *argv]


def otlp_env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    env.update(
        OTEL_TRACES_EXPORTER="otlp_proto_http",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
    )
    return env


def find(spans: Spans, service: str, name: str, kind: str) -> dict[str, Any]:
    matches = [s for s in spans if (s["service"], s["name"], s["kind"]) == (service, name, kind)]
    assert len(matches) == 1, (service, name, kind, [(s["service"], s["name"], s["kind"]) for s in spans])
    return matches[0]


def complete(spans: Spans) -> bool:
    """Both processes' spans are in: the agent's session span and the server's end the run."""
    names = {(s["service"], s["name"]) for s in spans}
    return {("agent", attr.CLIENT_SESSION_SPAN), ("weather", "tools/call summarize")} <= names


def assert_one_trace_both_ways(spans: Spans, *, stdio: bool) -> None:
    """The whole run is one trace: session span at the root, every server span under the client span of
    its request, and the sampling request back from the server under the server's tools/call."""
    session = find(spans, "agent", attr.CLIENT_SESSION_SPAN, "INTERNAL")
    assert session["parent_id"] is None
    for name in ("initialize", "tools/call forecast", "tools/call summarize"):
        client = find(spans, "agent", name, "CLIENT")
        server = find(spans, "weather", name, "SERVER")
        assert client["parent_id"] == session["span_id"], name
        assert server["parent_id"] == client["span_id"], name
    asked = find(spans, "weather", "sampling/createMessage", "CLIENT")
    answered = find(spans, "agent", "sampling/createMessage", "SERVER")
    assert asked["parent_id"] == find(spans, "weather", "tools/call summarize", "SERVER")["span_id"]
    assert answered["parent_id"] == asked["span_id"]
    if stdio:  # the child read TRACEPARENT at start: its session span is a child of the spawning one
        assert find(spans, "weather", attr.SERVER_SESSION_SPAN, "INTERNAL")["parent_id"] == session["span_id"]
    assert {s["trace_id"] for s in spans} == {session["trace_id"]}
    # The SDK 2.x spans were replaced, not doubled. Over HTTP, the httpx2/httpx instrumentation that
    # opentelemetry-instrument also loads adds an HTTP span per request, each under an mcp_tracing span.
    ours = {s["span_id"] for s in spans if s["scope"] == attr.INSTRUMENTATION_NAME}
    http = [s for s in spans if s["scope"] != attr.INSTRUMENTATION_NAME]
    assert all(s["scope"].startswith("opentelemetry.instrumentation.httpx") for s in http), http
    assert all(s["parent_id"] in ours for s in http)
    assert bool(http) is not stdio
    tool = find(spans, "agent", "tools/call forecast", "CLIENT")["attributes"]
    assert tool[attr.GEN_AI_TOOL_NAME] == "forecast"
    assert tool[attr.NETWORK_TRANSPORT] == ("pipe" if stdio else "tcp")
    assert tool[attr.SERVER_NAME] == "weather"


@pytest.mark.subprocess
async def test_opentelemetry_instrument_traces_an_untouched_agent_and_stdio_server_as_one_trace(
    otlp_receiver: tuple[str, Spans],
) -> None:
    endpoint, _ = otlp_receiver
    server = instrumented("weather", str(PLAIN_SERVER))
    agent = instrumented("agent", str(PLAIN_AGENT), "stdio", "--", *server)
    with anyio.fail_after(60):
        done = await anyio.run_process(agent, env=otlp_env(endpoint), check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == ["forecast -> rain, 12C", "summarize -> pack an umbrella"]
    spans = await anyio.to_thread.run_sync(OtlpReceiver.wait_for, complete)
    assert_one_trace_both_ways(spans, stdio=True)


@pytest.mark.subprocess
async def test_opentelemetry_instrument_traces_an_untouched_agent_and_http_server_as_one_trace(
    otlp_receiver: tuple[str, Spans],
) -> None:
    endpoint, _ = otlp_receiver
    env = otlp_env(endpoint)
    process = await anyio.open_process(instrumented("weather", str(PLAIN_SERVER), "--http"), env=env)
    try:
        assert process.stdout is not None
        with anyio.fail_after(30):
            line = b""
            while b"\n" not in line:
                line += await process.stdout.receive()
        url = line.split(b"\n", 1)[0].split()[1].decode()
        with anyio.fail_after(60):
            done = await anyio.run_process(instrumented("agent", str(PLAIN_AGENT), "http", url), env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode().splitlines() == ["forecast -> rain, 12C", "summarize -> pack an umbrella"]
    finally:
        process.terminate()  # uvicorn shuts down cleanly; the OpenTelemetry SDK flushes at exit
        with anyio.fail_after(30):
            await process.wait()
        await process.aclose()
    spans = await anyio.to_thread.run_sync(OtlpReceiver.wait_for, complete)
    assert_one_trace_both_ways(spans, stdio=False)


# ------------------------------------------------------------------------------ in process: on/off/on


@pytest.fixture
def instrumentor() -> Iterator[McpInstrumentor]:
    instrumentor = McpInstrumentor()
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()


def ours(exporter: InMemorySpanExporter) -> list[tuple[str, str]]:
    return sorted(
        (s.name, s.kind.name)
        for s in exporter.get_finished_spans()
        if s.instrumentation_scope is not None
        and s.instrumentation_scope.name == attr.INSTRUMENTATION_NAME
        and s.name != "tools/list"  # mcp 2.x lists tools after a first call, to validate results
    )


def sdk_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if (s.instrumentation_scope is None or s.instrumentation_scope.name != attr.INSTRUMENTATION_NAME)
        and "tools/list" not in s.name
    ]


def echo_server() -> Any:
    server = McpServer("echoes")

    @server.tool()
    def echo(text: str) -> str:
        return text

    return server


EXPECTED = [("tools/call echo", "CLIENT"), ("tools/call echo", "SERVER")]


async def test_instrument_uninstrument_instrument_again(
    instrumentor: McpInstrumentor, capture: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """On: one client and one server span per call. Off: the process behaves as if never instrumented
    (originals restored; objects made while on pass through; on mcp 2.x the SDK's own spans are back). On
    again: the objects made earlier are traced again, still once."""
    provider, exporter = capture
    patched = (ClientSession.__init__, sdk_stdio.get_default_environment)
    instrumentor.instrument(tracer_provider=provider)
    instrumentor.instrument(tracer_provider=provider)  # idempotent: a second call changes nothing
    assert ClientSession.__init__ is not patched[0] and sdk_stdio.get_default_environment is not patched[1]
    early_server = echo_server()
    async with connected(early_server) as early:
        await early.initialize()
        exporter.clear()
        await early.call_tool("echo", {"text": "on"})
        assert ours(exporter) == EXPECTED
        assert sdk_spans(exporter) == []

        instrumentor.uninstrument()
        instrumentor.uninstrument()  # idempotent too
        assert (ClientSession.__init__, sdk_stdio.get_default_environment) == patched
        exporter.clear()
        await early.call_tool("echo", {"text": "off"})
        async with connected(echo_server()) as late:
            await late.initialize()
            await late.call_tool("echo", {"text": "off"})
        assert ours(exporter) == []
        # What mcp would do untraced: on 2.x its own CLIENT and SERVER span per request, on 1.x nothing.
        sdk_names = sorted((s.name, s.kind.name) for s in sdk_spans(exporter) if "echo" in s.name)
        if IS_V2:
            assert sdk_names.count(("MCP send tools/call echo", "CLIENT")) == 2
            assert sdk_names.count(("tools/call echo", "SERVER")) == 2
        else:
            assert sdk_names == []

        instrumentor.instrument(tracer_provider=provider)
        exporter.clear()
        await early.call_tool("echo", {"text": "on again"})
        assert ours(exporter) == EXPECTED
        assert sdk_spans(exporter) == []


async def test_instrumented_http_client_sends_traceparent_with_the_sdks_own_transport(
    instrumentor: McpInstrumentor, capture: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    """The SDK's ``streamable_http_client``, imported after ``instrument()``: every POST carries a header,
    the same context as its ``_meta``."""
    from helpers import http_probe
    from helpers.requests import header

    provider, exporter = capture
    instrumentor.instrument(tracer_provider=provider)
    from mcp.client.streamable_http import streamable_http_client

    requests = tmp_path / "requests.jsonl"
    async with http_probe(tmp_path / "spans.jsonl", requests) as url:
        async with streamable_http_client(url) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await session.call_tool("work", {"n": 1})
    (call,) = [r for r in read_requests(requests) if (r.get("body") or {}).get("method") == "tools/call"]
    traceparent = header(call, "traceparent")
    assert traceparent == call["body"]["params"]["_meta"]["traceparent"]
    (client,) = [s for s in exporter.get_finished_spans() if s.name == "tools/call work"]
    assert traceparent.split("-")[2] == format(client.get_span_context().span_id, "016x")
    assert client.attributes is not None and client.attributes[attr.SERVER_PORT] == int(url.split(":")[2].split("/")[0])


@pytest.mark.subprocess
async def test_an_sdk_stdio_client_imported_before_instrument_still_spawns_with_the_context(
    instrumentor: McpInstrumentor, capture: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's ``stdio_client`` bound before ``instrument()`` (here at this module's import) is not
    replaced, but the environment it spawns with is: the context current at spawn, and ``OTEL_*``."""
    from helpers import probe_params, structured

    provider, _ = capture
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    instrumentor.instrument(tracer_provider=provider)
    assert EARLY_STDIO_CLIENT is not sdk_stdio.stdio_client  # the module's name is the drop-in now
    with provider.get_tracer("tests").start_as_current_span("spawn") as spawn:
        async with EARLY_STDIO_CLIENT(probe_params(traced=False)) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                report = structured(await session.call_tool("env_report", {}))
    context = spawn.get_span_context()
    env = report["env"]
    assert env["TRACEPARENT"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:9"


def test_an_sdk_the_instrumentor_cannot_patch_leaves_the_application_untraced_and_running(
    instrumentor: McpInstrumentor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A future SDK with a hook moved: ``instrument()`` logs, undoes what it did, and the app starts as is."""
    original_init = ClientSession.__init__
    real_after_init = McpInstrumentor._after_init  # pyright: ignore[reportPrivateUsage]
    calls: list[str] = []

    def after_init_then_fail(self: McpInstrumentor, cls: type[Any], install: Any) -> None:
        real_after_init(self, cls, install)
        calls.append(cls.__name__)
        if len(calls) == 2:
            raise AttributeError("Server.__init__ moved")

    monkeypatch.setattr(McpInstrumentor, "_after_init", after_init_then_fail)
    instrumentor.instrument()
    assert calls == ["ClientSession", "Server"]
    assert ClientSession.__init__ is original_init  # the first patch was undone too
    assert "could not instrument this version of mcp" in caplog.text


async def test_a_failing_transport_ends_the_session_span_with_its_error_type(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """The zero-code session span around a transport that fails to open records the type, never the text."""
    from contextlib import asynccontextmanager

    from mcp_tracing.instrumentor import _rooted  # pyright: ignore[reportPrivateUsage]

    provider, exporter = capture

    @asynccontextmanager
    async def refusing(url: str) -> AsyncIterator[Any]:
        raise ConnectionRefusedError(f"no server at {url} (secret=s3cr3t)")
        yield

    instrumentor = McpInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with pytest.raises(ConnectionRefusedError):
            async with _rooted(refusing, provider)("http://127.0.0.1:9/mcp"):
                pass
    finally:
        instrumentor.uninstrument()
    (span,) = [s for s in exporter.get_finished_spans() if s.name == attr.CLIENT_SESSION_SPAN]
    assert span.status.status_code.name == "ERROR" and span.status.description == "ConnectionRefusedError"
    assert dict(span.attributes or {}) == {attr.ERROR_TYPE: "ConnectionRefusedError"}
    assert span.events == ()


def test_the_sdk_http_client_is_returned_untouched_when_it_cannot_be_instrumented(
    instrumentor: McpInstrumentor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import mcp_tracing.http

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("transport layout changed")

    monkeypatch.setattr(mcp_tracing.http, "instrument_http_client", broken)
    instrumentor.instrument()
    from mcp.client import streamable_http

    client = streamable_http.create_mcp_http_client()  # pyright: ignore[reportPrivateImportUsage]
    assert getattr(client, "_mcp_tracing_http", None) is None
    assert "could not instrument the SDK's HTTP client" in caplog.text


UNDONE = """
import inspect, signal, sys
import anyio
import mcp, mcp.client.session, mcp.client.stdio, mcp.client.streamable_http, mcp.server.lowlevel
from mcp_tracing._core.registry import IS_V2
if IS_V2:
    import mcp.shared.jsonrpc_dispatcher, mcp.server.mcpserver
else:
    import mcp.server.fastmcp


def snapshot():
    # every global of every loaded SDK module, and every attribute of every SDK class, as objects
    found = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "mcp" or name.startswith("mcp.")):
            continue
        for key, value in list(vars(module).items()):
            found[(name, key)] = value
            if inspect.isclass(value) and value.__module__.startswith("mcp"):
                for attribute, member in list(vars(value).items()):
                    found[(name, key, attribute)] = member
    return found


from mcp_tracing.instrumentor import McpInstrumentor

handler = signal.getsignal(signal.SIGTERM)
instrumentor = McpInstrumentor()
instrumentor.instrument()
assert signal.getsignal(signal.SIGTERM) is not handler  # flushes at SIGTERM while on
instrumentor.uninstrument()
assert signal.getsignal(signal.SIGTERM) is handler  # nothing made meanwhile needs it: put back

before = snapshot()
instrumentor.instrument()
send, receive = anyio.create_memory_object_stream(1)
session = mcp.client.session.ClientSession(receive, send)  # traced: the 2.x gate is held now
server = mcp.server.lowlevel.Server("s")
import wrapt
now = snapshot()
patched = [key for key, value in now.items() if key in before and before[key] is not value]
proxy = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)  # wrapt 2 renamed the base of its wrappers
by_hand = [key for key in patched if not isinstance(now[key], proxy)]  # not a wrapt wrapper
instrumentor.uninstrument()
after = snapshot()
changed = [key for key in before if key not in after or after[key] is not before[key]]
print(len(before), len(patched), by_hand, "|", changed)
"""


@pytest.mark.subprocess
def test_uninstrument_leaves_every_sdk_object_as_it_was() -> None:
    """Every SDK module global and class attribute is the very object it was before ``instrument()``, the 2.x
    ``otel_span`` gate included, after a session and a server were made meanwhile (a server made meanwhile still
    flushes at SIGTERM; with nothing made, the SIGTERM handler is put back too)."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", UNDONE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    counts, changed = done.stdout.split(" | ")
    checked, patched, by_hand = counts.split(" ", 2)
    assert int(checked) > 1000 and int(patched) >= (9 if IS_V2 else 8), done.stdout  # it did patch, then undid
    assert by_hand == "[]", by_hand  # every patch is a wrapt wrapper, which unwrap takes off
    assert changed.strip() == "[]", changed


def test_importing_mcp_tracing_imports_no_sdk_module() -> None:
    """``opentelemetry-instrument`` loads our instrumentor (and so the package) before Starlette's: had it
    imported mcp then, the SDK would hold the Starlette class that instrumentor replaces, and no HTTP span would
    ever be made (tests/test_frameworks_mcp1.py sees it end to end; this is its fast check, on both lines)."""
    import subprocess

    script = (
        "import sys, mcp_tracing, mcp_tracing.instrumentor, mcp_tracing.config\n"
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'starlette.applications'))))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

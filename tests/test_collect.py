"""``mcp-tracing collect``: OTLP/HTTP from the OpenTelemetry SDK's own exporters and from hand-written OTLP JSON,
into the local store; bad bodies answered as OTLP says, the receiver still serving after them."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.rpc.status_pb2 import Status
from helpers import free_port
from helpers.processes import clean_env
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from mcp_tracing.store import TraceStore

pytestmark = [pytest.mark.sdk_independent, pytest.mark.subprocess]


class Collector:
    def __init__(self, store: Path, port: int, process: subprocess.Popen[str]) -> None:
        self.store, self.port, self.process = store, port, process
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> list[str]:
        """Stops the receiver (SIGTERM) and returns the rest of what it said on stderr."""
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0, "the receiver ended badly"
        rest: str = self.process.stderr.read() if self.process.stderr else ""
        assert "Traceback" not in rest, rest
        return rest.splitlines()

    def post(self, path: str, body: bytes, content_type: str, encoding: str | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
        request = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def reader(self) -> TraceStore:
        return TraceStore(self.store)


def _first_line(stream: object, timeout: float) -> str:
    """The first line ``stream`` gives, waited for at most ``timeout`` seconds."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)  # type: ignore[attr-defined]
    reader.start()
    reader.join(timeout)
    assert got, f"no line in {timeout}s"
    return got[0]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    store, port = tmp_path / "collected.db", free_port()
    command = [sys.executable, "-m", "mcp_tracing.cli", "--store", str(store), "collect", "--port", str(port)]
    process = subprocess.Popen(command, env=clean_env(), stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(process.stderr, 60)
        assert line == f"mcp-tracing collect: receiving OTLP/HTTP on http://127.0.0.1:{port} into {store}\n", line
        collector = Collector(store, port, process)
        yield collector
    finally:
        if process.poll() is None:
            Collector(store, port, process).stop()


def _provider(
    collector: Collector, service: str, *, compression: Compression = Compression.NoCompression
) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=collector.url + "/v1/traces", compression=compression)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["protobuf", "gzip"])
def test_the_sdks_own_exporters_spans_and_logs_are_stored_whole(collector: Collector, compression: Compression) -> None:
    provider = _provider(collector, "ts-like-server", compression=compression)
    logs = LoggerProvider(resource=Resource.create({"service.name": "ts-like-server"}))
    exporter = OTLPLogExporter(endpoint=collector.url + "/v1/logs", compression=compression)
    logs.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("tools/call lookup", kind=SpanKind.SERVER) as outer:
        outer.set_attributes({"mcp.method.name": "tools/call", "n": 3, "ok": True, "ratio": 0.5, "tags": ["a", "b"]})
        with tracer.start_as_current_span("db.query") as inner:
            inner.set_status(StatusCode.ERROR)
            logs.get_logger("db").emit(LogRecord(body="slow query", severity_text="WARN"))
    provider.shutdown()
    logs.shutdown()
    trace_id = format(outer.get_span_context().trace_id, "032x")
    store = collector.reader()
    try:
        spans = {s.name: s for s in store.spans(trace_id)}
        (record,) = store.logs(trace_id)
        (summary,) = store.traces()
    finally:
        store.close()
    assert set(spans) == {"tools/call lookup", "db.query"}
    served, query = spans["tools/call lookup"], spans["db.query"]
    assert (served.kind, served.parent_id, served.service) == ("SERVER", None, "ts-like-server")
    assert served.attributes == {"mcp.method.name": "tools/call", "n": 3, "ok": True, "ratio": 0.5, "tags": ["a", "b"]}
    assert (query.parent_id, query.status) == (served.span_id, "ERROR")
    assert (record.span_id, record.body, record.level, record.logger) == (query.span_id, "slow query", "WARN", "db")
    assert (summary.trace_id, summary.spans, summary.errors, summary.root) == (trace_id, 2, 1, "tools/call lookup")


TRACE_ID = "5b8efff798038103d269b633813fc60c"
TRUE_X = {"key": "x", "value": {"boolValue": True}}
JSON_BODY = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node-server"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "node"},
                    "spans": [
                        {
                            "traceId": TRACE_ID,
                            "spanId": "eee19b7ec3c1b174",
                            "parentSpanId": "eee19b7ec3c1b173",
                            "name": "tools/call add",
                            "kind": 2,
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "attributes": [
                                {"key": "count", "value": {"intValue": "42"}},
                                {
                                    "key": "nested",
                                    "value": {"kvlistValue": {"values": [{"key": "x", "value": {"boolValue": True}}]}},
                                },
                            ],
                            "status": {"code": 1},
                        },
                        {"traceId": "zz", "spanId": "eee19b7ec3c1b175", "name": "bad id"},
                    ],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize("gzipped", [False, True], ids=["json", "json+gzip"])
def test_otlp_json_with_hex_ids_is_stored_and_answered_in_json(collector: Collector, gzipped: bool) -> None:
    good = dict(JSON_BODY)
    good["resourceSpans"][0]["scopeSpans"][0]["spans"] = JSON_BODY["resourceSpans"][0]["scopeSpans"][0]["spans"][:1]
    body = json.dumps(good).encode()
    status, answer = collector.post(
        "/v1/traces", gzip.compress(body) if gzipped else body, "application/json", "gzip" if gzipped else None
    )
    assert (status, json.loads(answer)) == (200, {})
    store = collector.reader()
    try:
        (span,) = store.spans(TRACE_ID)
    finally:
        store.close()
    assert (span.name, span.kind, span.status, span.service) == ("tools/call add", "SERVER", "OK", "node-server")
    assert (span.span_id, span.parent_id, span.start_ns, span.end_ns) == (
        "eee19b7ec3c1b174",
        "eee19b7ec3c1b173",
        1544712660000000000,
        1544712661000000000,
    )
    assert span.attributes == {"count": 42, "nested": {"x": True}}


JSON = "application/json"


def _status(answer: bytes, json_body: bool) -> Status:
    return Status(**json.loads(answer)) if json_body else Status.FromString(answer)


def test_bad_bodies_get_the_otlp_error_answer_and_the_receiver_keeps_serving(collector: Collector) -> None:
    valid = ExportTraceServiceRequest()
    span = valid.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(TRACE_ID), bytes.fromhex("00000000000000aa"), "ok"
    whole = valid.SerializeToString()
    bomb = gzip.compress(b"\0" * (40 * 1024 * 1024))  # 40 MiB of zeros in 40 KB: over the 32 MiB limit inflated
    cases = [
        ("/v1/traces", b"\xff\xff\xff\xff", "application/x-protobuf", None, 400),
        ("/v1/traces", whole[: len(whole) // 2], "application/x-protobuf", None, 400),  # truncated
        ("/v1/traces", gzip.compress(whole)[:-8], "application/x-protobuf", "gzip", 400),  # truncated gzip
        ("/v1/traces", b"not gzip at all", "application/x-protobuf", "gzip", 400),
        ("/v1/traces", whole, "application/x-protobuf", "br", 400),
        ("/v1/traces", b"[1, 2]", "application/json", None, 400),
        (
            "/v1/traces",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            "application/json",
            None,
            400,
        ),
        ("/v1/traces", b"{" * 100_000, "application/json", None, 400),  # deeply nested
        ("/v1/logs", b"\x0a\xff", "application/x-protobuf", None, 400),
        ("/v1/traces", bomb, "application/x-protobuf", "gzip", 413),
        ("/v1/traces", b"\0" * (33 * 1024 * 1024), "application/x-protobuf", None, 413),
        ("/v1/traces", whole, "text/plain", None, 415),
    ]
    for path, body, content_type, encoding, expected in cases:
        status, answer = collector.post(path, body, content_type, encoding)
        assert status == expected, (body[:40], status, answer[:200])
        assert _status(answer, content_type == "application/json").code == 3, answer[:200]
    assert collector.post("/v1/traces", whole, "application/x-protobuf") == (200, b"")
    assert collector.post("/v1/metrics", b"", "application/x-protobuf") == (200, b"")
    assert collector.post("/v1/metrics", b"", "application/x-protobuf") == (200, b"")
    store = collector.reader()
    try:
        assert [s.name for s in store.spans(TRACE_ID)] == ["ok"]
    finally:
        store.close()
    assert collector.stop() == [
        "mcp-tracing collect: metrics are accepted and discarded (the store keeps traces)",  # once
        "mcp-tracing collect: stopped; 15 requests (3 gzip, 12 refused), 1 span and 0 log records received",
    ]


def test_ten_thousand_spans_from_four_concurrent_exporters_are_all_stored(collector: Collector) -> None:
    def send(worker: int) -> str:
        provider = TracerProvider(resource=Resource.create({"service.name": f"worker-{worker}"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.url + "/v1/traces")))
        tracer = provider.get_tracer("load")
        with tracer.start_as_current_span(f"root {worker}") as root:
            for n in range(2_499):
                tracer.start_span(f"child {n}").end()
        provider.shutdown()
        return format(root.get_span_context().trace_id, "032x")

    with ThreadPoolExecutor(4) as pool:
        trace_ids = list(pool.map(send, range(4)))
    store = collector.reader()
    try:
        counts = [len(store.spans(trace_id)) for trace_id in trace_ids]
    finally:
        store.close()
    assert counts == [2_500] * 4


def test_a_non_loopback_address_is_refused_without_the_explicit_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_tracing.cli", "--store", str(tmp_path / "s.db"), "collect", "--host", "0.0.0.0"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        done.stderr.splitlines()[-1]
        == "mcp-tracing: error: --host 0.0.0.0 is not loopback; add --allow-remote to listen there"
    )


def test_the_demo_exported_over_otlp_to_the_receiver_lands_whole_in_its_store(
    collector: Collector, tmp_path: Path
) -> None:
    """Python processes join through the receiver with the standard variable alone (configure() exports OTLP)."""
    done = subprocess.run(
        [sys.executable, "-m", "mcp_tracing.cli", "demo"],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.split()[1].rstrip(":")
    assert done.stdout == f"trace {trace_id}: exported over OTLP ({collector.url})\n"
    store = collector.reader()
    try:
        spans = store.spans(trace_id)
    finally:
        store.close()
    assert len(spans) == 41 and {s.service for s in spans} == {"demo-agent", "files-server", "sql-server"}
    assert not (tmp_path / ".local").exists()  # nothing went to a store of the demo's own


def _node_modules() -> Path:
    """The Node packages of tests/servers/node_server.mjs (scripts/test installs them; .ci/run always has them)."""
    import os
    import shutil

    path = os.environ.get("MCP_TRACING_NODE_MODULES")
    if not path or not Path(path).is_dir() or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install the Node server's packages (scripts/test: .npm-node-server)")
        pytest.skip("MCP_TRACING_NODE_MODULES is not set (scripts/test installs them with npm and sets it)")
    return Path(path)


NODE_AGENT = """
import sys

import anyio
from mcp import ClientSession, StdioServerParameters

import mcp_tracing
from mcp_tracing import agent


async def main() -> None:
    mcp_tracing.configure("py-agent")
    params = StdioServerParameters(command="node", args=[sys.argv[1]])
    async with agent.session(agent_type="py-agent"):
        async with mcp_tracing.stdio_client(params) as (read, write), ClientSession(read, write) as session:
            mcp_tracing.trace_session(session)
            await session.initialize()
            async with agent.tool_call("add"):
                result = await session.call_tool("add", {"a": 2, "b": 3})
    print(result.content[0].text)


anyio.run(main)
"""


@pytest.mark.parametrize(
    "protocol",
    [("http/json", "none"), ("http/protobuf", "none"), ("http/json", "gzip")],
    ids=["json", "protobuf", "gzip"],
)
def test_a_node_servers_spans_arrive_through_collect_under_the_python_agents_tool_call(
    collector: Collector, tmp_path: Path, protocol: tuple[str, str]
) -> None:
    """A Python agent spawns a Node MCP server traced with OpenTelemetry JS; both export OTLP to the receiver
    (the agent's settings reach the child: OTEL_* is forwarded), and the Node span of the call is the child of
    the agent's execute_tool span: one connected tree in one store."""
    modules = _node_modules()
    server = tmp_path / "node_server.mjs"
    server.write_text((Path(__file__).parent / "servers" / "node_server.mjs").read_text())
    (tmp_path / "node_modules").symlink_to(modules)  # ES modules resolve packages from the importing file's folder
    (tmp_path / "agent.py").write_text(NODE_AGENT)
    env = clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol[0],
        OTEL_EXPORTER_OTLP_COMPRESSION=protocol[1],
        HOME=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "agent.py", str(server)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "5\n"
    store = collector.reader()
    try:
        (summary,) = store.traces()
        spans = store.spans(summary.trace_id)
    finally:
        store.close()
    by_id = {s.span_id: s for s in spans}
    (node,) = [s for s in spans if s.service == "node-server"]
    assert (node.name, node.kind, node.status) == ("tools/call add", "SERVER", "OK")
    assert node.attributes == {"mcp.method.name": "tools/call", "gen_ai.tool.name": "add"}
    parent = by_id[node.parent_id or ""]
    assert (parent.name, parent.service) == ("execute_tool add", "py-agent")
    assert by_id[parent.parent_id or ""].name == "invoke_agent py-agent"
    assert summary.services == ("node-server", "py-agent") and summary.root == "invoke_agent py-agent"
    said = collector.stop()[-1]
    if protocol[1] == "gzip":  # every body was gzip: the Node exporter's (chunked, no length) too
        requests = re.search(r"stopped; (\d+) requests \((\d+) gzip", said)
        assert requests is not None and requests.group(1) == requests.group(2), said

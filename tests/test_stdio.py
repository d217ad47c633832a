"""End to end over real stdio subprocesses: the agent's spans and the spawned server's spans in one trace."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import HANDSHAKE, all_spans, one, outcome, probe_params, structured
from helpers.processes import other_python
from helpers.stdio_calls import Call, assert_one_client_and_one_server_span_per_request, run_calls
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
import mcp_tracing.stdio
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2, MCP_VERSION
from mcp_tracing.privacy import args_hash
from mcp_tracing.testing import read_spans

pytestmark = pytest.mark.anyio


async def test_tool_call_spans_one_trace_across_the_process_boundary(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """agent root -> client tools/call -> (child) server tools/call -> the tool's own span, one trace."""
    provider, exporter = capture
    root, results = await run_calls(probe_params(), [("work", {"n": 3}, {})], provider)
    assert structured(results[0]) == "done 3"
    spans = all_spans(exporter, spans_file)
    client = one(spans, "tools/call work", "CLIENT")
    server = one(spans, "tools/call work", "SERVER")
    inner = one(spans, "probe.work")
    assert {s.trace_id for s in (client, server, inner)} == {root.trace_id}
    assert client.parent_id == root.span_id
    assert server.parent_id == client.span_id
    assert inner.parent_id == server.span_id
    assert server.pid != os.getpid() and inner.pid == server.pid
    session = one(spans, attr.SERVER_SESSION_SPAN)  # the child read TRACEPARENT: the span current at spawn
    assert (session.trace_id, session.parent_id, session.pid) == (root.trace_id, root.span_id, server.pid)
    assert server.service == "probe-server"

    request_id = client.attributes[attr.JSONRPC_REQUEST_ID]
    version = client.attributes[attr.MCP_PROTOCOL_VERSION]
    common = {
        attr.MCP_METHOD_NAME: "tools/call",
        attr.GEN_AI_OPERATION_NAME: "execute_tool",
        attr.GEN_AI_TOOL_NAME: "work",
        attr.JSONRPC_REQUEST_ID: request_id,
        attr.MCP_PROTOCOL_VERSION: version,
        attr.NETWORK_TRANSPORT: "pipe",
        attr.SERVER_NAME: "probe",
        attr.TOOL_ARGS_HASH: args_hash({"n": 3}),
        attr.TOOL_ARGS_SHAPE: "n",
        attr.TOOL_STATUS: "ok",
    }
    assert isinstance(client.attributes.pop(attr.TOOL_RESULT_SIZE), int)
    assert isinstance(server.attributes.pop(attr.TOOL_RESULT_SIZE), int)
    assert client.attributes == common
    assert server.attributes == common
    assert (client.kind, server.kind, client.status, server.status) == ("CLIENT", "SERVER", "UNSET", "UNSET")
    assert_one_client_and_one_server_span_per_request(spans)
    # The handshake is traced as well; notifications/initialized is housekeeping: no span on either side.
    assert one(spans, "initialize", "SERVER").parent_id == one(spans, "initialize", "CLIENT").span_id
    assert [s for s in spans if s.name == "notifications/initialized"] == []


async def test_session_span_is_child_of_the_spawn_span_and_parents_messages_without_meta(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """The child reads TRACEPARENT at start; messages without _meta nest under its session span.

    A hand-written JSON-RPC client, since every real client (mcp 2.x's own, untraced) injects _meta. The
    server's stdin is then closed: the spans must be flushed on EOF.
    """
    provider, _ = capture
    with provider.get_tracer("tests").start_as_current_span("agent.spawn") as spawn:
        env = {**os.environ, **mcp_tracing.stdio.child_environment({"PROBE_TRACED": "1"})}
    returncode, replies = await raw_exchange(env, RAW_HANDSHAKE + [RAW_WORK, RAW_LIST], close_stdin=True)
    assert returncode == 0 and all("result" in r for r in replies)
    trace_id, spawn_id = (
        format(spawn.get_span_context().trace_id, "032x"),
        format(spawn.get_span_context().span_id, "016x"),
    )
    spans = read_spans(spans_file)
    session = one(spans, attr.SERVER_SESSION_SPAN)
    assert (session.trace_id, session.parent_id) == (trace_id, spawn_id)
    assert session.kind == "INTERNAL" and session.service == "probe-server"
    for name in ("initialize", "tools/call work", "tools/list"):
        server = one(spans, name, "SERVER")
        assert (server.trace_id, server.parent_id) == (trace_id, session.span_id), name
    assert one(spans, "probe.work").parent_id == one(spans, "tools/call work", "SERVER").span_id
    assert len(spans) == 5  # notifications/initialized: housekeeping, no span


async def test_child_environment_carries_context_and_exporter_settings_but_not_the_agents_name(
    capture: tuple[TracerProvider, InMemorySpanExporter],
    spans_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """PATH, the caller's env and OTEL_*/MCP_TRACING_* reach the child, with the store resolved to an absolute
    path (from XDG_DATA_HOME, which the child itself does not get); the service name stays its own."""
    provider, exporter = capture
    for name in [n for n in os.environ if n.startswith(("OTEL_", "MCP_TRACING_")) and n != "MCP_TRACING_EXAMPLE_SPANS"]:
        monkeypatch.delenv(name)  # whatever the machine running the tests has set
    monkeypatch.setenv("MCP_TRACING_HASH_KEY", "test-key")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=agents")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "agent-svc")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=agent-svc,team=agents")
    monkeypatch.setenv("MCP_TRACING_SETTING", "on")
    params = probe_params({"CALLER_VAR": "from-caller", "OTEL_TRACES_SAMPLER_ARG": "1.0"})
    root, results = await run_calls(params, [("env_report", {}, {})], provider)
    report = structured(results[0])
    env = report["env"]
    traceparent = env.pop("TRACEPARENT")
    assert traceparent.split("-")[1:3] == [root.trace_id, root.span_id]
    assert env == {
        "CALLER_VAR": "from-caller",
        "MCP_TRACING_EXAMPLE_SPANS": str(spans_file),
        "MCP_TRACING_HASH_KEY": "test-key",
        "MCP_TRACING_SETTING": "on",
        "MCP_TRACING_STORE": str(tmp_path / "xdg" / "mcp-tracing" / "traces.db"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-team=agents",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",  # the caller's value wins over the forwarded one
    }
    assert report["has_path"] is True
    assert report["service_name"] == "probe-server"
    assert {s.service for s in read_spans(spans_file)} == {"probe-server"}


async def test_a_service_name_the_caller_gives_the_child_is_used(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, _ = capture
    monkeypatch.setenv("OTEL_SERVICE_NAME", "agent-svc")
    _, results = await run_calls(probe_params({"OTEL_SERVICE_NAME": "files"}), [("env_report", {}, {})], provider)
    assert structured(results[0])["service_name"] == "files"
    assert {s.service for s in read_spans(spans_file)} == {"files"}


async def test_a_traceparent_the_caller_set_is_kept(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, _ = capture
    chosen = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    _, results = await run_calls(probe_params({"TRACEPARENT": chosen}), [("env_report", {}, {})], provider)
    assert structured(results[0])["env"]["TRACEPARENT"] == chosen
    session = one(read_spans(spans_file), attr.SERVER_SESSION_SPAN)
    assert (session.trace_id, session.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")


MALFORMED_TRACEPARENTS = {
    "garbage": "not a traceparent",
    "bad-hex": "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
    "zero-trace-id": "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "zero-span-id": "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "version-ff": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "10kb": "00-" + "a" * 10_240,
}

CALLS: list[Call] = [("work", {"n": 2}, {}), ("boom", {"secret": "x"}, {})]


@pytest.mark.parametrize("value", MALFORMED_TRACEPARENTS.values(), ids=MALFORMED_TRACEPARENTS.keys())
async def test_malformed_traceparent_in_env_means_a_new_root_and_an_unchanged_answer(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, value: str
) -> None:
    provider, _ = capture
    env = {"TRACEPARENT": value}
    _, untraced = await run_calls(
        probe_params(env, traced=False), CALLS, provider, traced_client=False, calls_in_span=False
    )
    _, traced = await run_calls(probe_params(env), CALLS, provider, traced_client=False, calls_in_span=False)
    assert [outcome(r) for r in traced] == [outcome(r) for r in untraced]
    spans = read_spans(spans_file)
    assert one(spans, attr.SERVER_SESSION_SPAN).parent_id is None
    assert "b7ad6b7169203331" not in {s.parent_id for s in spans}
    assert "0af7651916cd43dd8448eb211c80319c" not in {s.trace_id for s in spans}


MALFORMED_META: dict[str, object] = {
    "wrong-type": 12345,
    "bad-hex": "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
    "zero-trace-id": "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "zero-span-id": "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "10kb": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" + "x" * 10_240,
}


@pytest.mark.parametrize("value", MALFORMED_META.values(), ids=MALFORMED_META.keys())
async def test_malformed_meta_traceparent_is_ignored_and_the_answer_unchanged(spans_file: Path, value: object) -> None:
    """A bad _meta.traceparent counts as absent: the server span falls back to the session span.

    Sent by hand: real clients (mcp 2.x's own included) overwrite the caller's traceparent.
    """
    call = {**RAW_WORK, "params": {**RAW_WORK["params"], "_meta": {"traceparent": value, "custom": "kept"}}}
    base = {**os.environ, "MCP_TRACING_EXAMPLE_SPANS": str(spans_file)}
    _, untraced = await raw_exchange(
        {**base, "PROBE_TRACED": "0", "MCP_TRACING_EXAMPLE_SPANS": ""}, RAW_HANDSHAKE + [call], close_stdin=True
    )
    code, traced = await raw_exchange({**base, "PROBE_TRACED": "1"}, RAW_HANDSHAKE + [call], close_stdin=True)
    assert code == 0
    assert traced == untraced and "result" in traced[-1]
    spans = read_spans(spans_file)
    session = one(spans, attr.SERVER_SESSION_SPAN)
    assert session.parent_id is None  # spawned without TRACEPARENT: the session is a new root
    server = one(spans, "tools/call work", "SERVER")
    assert (server.trace_id, server.parent_id) == (session.trace_id, session.span_id)


async def test_errors_are_recorded_and_the_caller_sees_what_the_untraced_sdk_returns(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    calls: list[Call] = [
        ("work", {"n": 1}, {}),
        ("boom", {"secret": "s3cr3t"}, {}),
        ("no_such_tool", {}, {}),
        ("work", {"n": "not a number"}, {}),
    ]
    _, untraced = await run_calls(probe_params(traced=False), calls, provider, traced_client=False, traced_spawn=False)
    exporter.clear()
    _, traced = await run_calls(probe_params(), calls, provider)
    assert [outcome(r) for r in traced] == [outcome(r) for r in untraced]

    spans = all_spans(exporter, spans_file)
    assert "s3cr3t" not in json.dumps([s.__dict__ for s in spans], default=str)
    client_calls = sorted(
        (s for s in spans if s.kind == "CLIENT" and s.attributes[attr.MCP_METHOD_NAME] == "tools/call"),
        key=lambda s: s.start_ns,
    )
    assert len(client_calls) == len(calls)
    for span, result in zip(client_calls, traced, strict=True):
        server = next(s for s in spans if s.kind == "SERVER" and s.parent_id == span.span_id)
        if isinstance(result, BaseException):
            code = str(result.error.code)  # type: ignore[attr-defined]
            expected = {attr.ERROR_TYPE: code, attr.RPC_RESPONSE_STATUS_CODE: code, attr.TOOL_STATUS: "error"}
        elif result.isError if not IS_V2 else result.is_error:
            expected = {attr.ERROR_TYPE: "tool_error", attr.TOOL_STATUS: "tool_error"}
        else:
            expected = {attr.TOOL_STATUS: "ok"}
        for side in (span, server):
            got = {
                k: side.attributes.get(k) for k in (attr.ERROR_TYPE, attr.RPC_RESPONSE_STATUS_CODE, attr.TOOL_STATUS)
            }
            assert {k: v for k, v in got.items() if v is not None} == expected, (side.name, side.kind)
            assert side.status == ("UNSET" if expected == {attr.TOOL_STATUS: "ok"} else "ERROR")
    assert_one_client_and_one_server_span_per_request(spans)


RAW_HANDSHAKE = HANDSHAKE  # a raw client's initialize and initialized, as the hostile-input tests send
RAW_WORK = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "work", "arguments": {"n": 7}}}
RAW_LIST = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}


async def raw_exchange(
    env: dict[str, str], messages: list[dict[str, Any]], *, close_stdin: bool
) -> tuple[int, list[dict[str, Any]]]:
    """Speaks JSON-RPC to the probe server by hand, waiting for each response; then EOF or SIGTERM."""
    from helpers import PROBE

    with anyio.fail_after(20):
        async with await anyio.open_process([sys.executable, str(PROBE)], env=env) as process:
            assert process.stdin is not None and process.stdout is not None
            buffer = bytearray()
            replies: list[dict[str, Any]] = []
            for message in messages:
                await process.stdin.send(json.dumps(message).encode() + b"\n")
                while "id" in message:
                    while b"\n" not in buffer:
                        buffer.extend(await process.stdout.receive())
                    line, _, rest = bytes(buffer).partition(b"\n")
                    buffer[:] = rest
                    reply = json.loads(line)
                    if reply.get("id") == message["id"]:
                        replies.append(reply)
                        break
            if close_stdin:
                await process.stdin.aclose()
            else:
                process.send_signal(signal.SIGTERM)
            return await process.wait(), replies


async def test_spans_are_flushed_when_the_server_gets_sigterm(spans_file: Path) -> None:
    """A server killed with SIGTERM still exports its spans, and dies of SIGTERM as it would untraced."""
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    env = {**os.environ, "TRACEPARENT": parent, "PROBE_TRACED": "1"}
    returncode, replies = await raw_exchange(env, RAW_HANDSHAKE + [RAW_WORK], close_stdin=False)
    assert returncode == -signal.SIGTERM and all("result" in r for r in replies)
    spans = read_spans(spans_file)
    session = one(spans, attr.SERVER_SESSION_SPAN)
    assert (session.trace_id, session.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert one(spans, "tools/call work", "SERVER").parent_id == session.span_id
    assert one(spans, "probe.work").parent_id == one(spans, "tools/call work", "SERVER").span_id


async def test_an_applications_own_sigterm_handler_still_runs_after_the_flush(spans_file: Path) -> None:
    env = {**os.environ, "PROBE_TRACED": "1", "PROBE_SIGTERM_EXIT": "7"}
    returncode, replies = await raw_exchange(env, RAW_HANDSHAKE + [RAW_WORK], close_stdin=False)
    assert returncode == 7 and all("result" in r for r in replies)
    spans = read_spans(spans_file)
    assert one(spans, "tools/call work", "SERVER").parent_id == one(spans, attr.SERVER_SESSION_SPAN).span_id


async def test_client_and_server_on_different_mcp_major_versions_give_one_trace(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """A 2.x client with a 1.30 server, or a 1.30 client with a 2.x server (whichever this venv is not)."""
    python = other_python()
    provider, exporter = capture
    root, results = await run_calls(
        probe_params(python=python), [("work", {"n": 4}, {}), ("env_report", {}, {})], provider
    )
    report = structured(results[1])
    assert report["mcp_version"].split(".")[0] != MCP_VERSION.split(".")[0], report["mcp_version"]
    spans = all_spans(exporter, spans_file)
    client = one(spans, "tools/call work", "CLIENT")
    server = one(spans, "tools/call work", "SERVER")
    assert {client.trace_id, server.trace_id, one(spans, "probe.work").trace_id} == {root.trace_id}
    assert (client.parent_id, server.parent_id) == (root.span_id, client.span_id)
    assert one(spans, "probe.work").parent_id == server.span_id
    assert one(spans, attr.SERVER_SESSION_SPAN).parent_id == root.span_id
    assert_one_client_and_one_server_span_per_request(spans)


async def test_an_unsampled_parent_means_the_child_records_nothing_yet_still_propagates(spans_file: Path) -> None:
    """Head sampling across a real stdio child: the child follows the sampled flag it is handed."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    unsampled.add_span_processor(SimpleSpanProcessor(exporter))
    root, results = await run_calls(probe_params(), [("context_report", {}, {}), ("env_report", {}, {})], unsampled)
    report, env = structured(results[0]), structured(results[1])["env"]
    assert int(env["TRACEPARENT"].rsplit("-", 1)[1], 16) & 1 == 0  # "not sampled" travelled with the context
    assert report["trace_id"] == root.trace_id  # the tool ran inside the agent's trace
    assert exporter.get_finished_spans() == ()
    assert read_spans(spans_file) == []  # and nothing was recorded in the child

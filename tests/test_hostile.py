"""Hostile peers and bad input (issue 15): what a peer chooses is bounded before it becomes a span, printed
safely, and a trace of any depth is drawn."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import PROBE, http_probe
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mcp_tracing import _attributes as attr
from mcp_tracing import _spans
from mcp_tracing._bounds import CUT_MARK, NAME_LIMIT, URI_LIMIT
from mcp_tracing._text import terminal_safe
from mcp_tracing.cli import main
from mcp_tracing.store import SqliteSpanExporter
from mcp_tracing.testing import read_spans

HUGE = "x" * 2_000_000

# ------------------------------------------------------------------ row 1: peer-given strings are bounded


def test_every_peer_given_string_is_cut_to_its_limit() -> None:
    params = {"name": HUGE, "uri": HUGE, "arguments": {f"k{i}": i for i in range(100_000)}}
    name = _spans.span_name("tools/call", params)
    assert name == "tools/call " + HUGE[: NAME_LIMIT - 1] + CUT_MARK
    assert _spans.span_name(HUGE, None) == HUGE[: NAME_LIMIT - 1] + CUT_MARK
    tool = _spans.message_attributes(
        "tools/call", params, request_id=HUGE, protocol_version=HUGE, server_name=HUGE, transport="pipe"
    )
    assert tool[attr.GEN_AI_TOOL_NAME] == HUGE[: NAME_LIMIT - 1] + CUT_MARK
    for key in (attr.JSONRPC_REQUEST_ID, attr.MCP_PROTOCOL_VERSION, attr.SERVER_NAME):
        assert len(str(tool[key])) == NAME_LIMIT
    resource = _spans.message_attributes("resources/read", params)
    assert len(str(resource[attr.MCP_RESOURCE_URI])) == URI_LIMIT
    assert len(_spans.message_attributes(HUGE, None)[attr.MCP_METHOD_NAME]) == NAME_LIMIT  # type: ignore[arg-type]
    assert _spans.span_name("tools/call", {"name": "ok"}) == "tools/call ok"  # short values are left alone


def call(request_id: int, name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": {}}}


HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "evil", "version": "1"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]


def assert_small_spans(spans_file: Path, calls: int) -> None:
    """Every span of the server's is small: names and values cut, never the 2 MB the peer sent."""
    assert spans_file.stat().st_size < 10_000 * calls, spans_file.stat().st_size  # 4 MB per call before
    served = [s for s in read_spans(spans_file) if s.kind == "SERVER" and s.name.startswith("tools/call")]
    assert len(served) == calls
    for span in served:
        assert len(span.name) == len("tools/call ") + NAME_LIMIT and span.name.endswith(CUT_MARK)
        assert all(len(str(v)) <= URI_LIMIT for v in span.attributes.values())


@pytest.mark.subprocess
@pytest.mark.anyio
async def test_a_2mb_tool_name_over_stdio_makes_a_small_span(spans_file: Path) -> None:
    env = {**os.environ, "PROBE_TRACED": "1"}
    process = await anyio.open_process([sys.executable, str(PROBE)], env=env, stderr=None)
    lines = [*HANDSHAKE, *(call(i, HUGE) for i in range(1, 6))]
    assert process.stdin is not None and process.stdout is not None
    async with process:
        with anyio.fail_after(60):
            for message in lines:
                await process.stdin.send(json.dumps(message).encode() + b"\n")
            answered, buffer = 0, b""
            while answered < 6:  # initialize and the 5 calls (unknown tool: an error result each)
                buffer += await process.stdout.receive()
                answered = buffer.count(b"\n")
            await process.stdin.aclose()
            await process.wait()
    assert_small_spans(spans_file, 5)


@pytest.mark.subprocess
@pytest.mark.anyio
async def test_a_2mb_tool_name_over_http_makes_a_small_span(spans_file: Path) -> None:
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx  # type: ignore[no-redef]
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with http_probe(spans_file) as url, httpx.AsyncClient(timeout=30) as client:
        first = await client.post(url, json=HANDSHAKE[0], headers=headers)
        session = {"mcp-session-id": first.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        await client.post(url, json=HANDSHAKE[1], headers={**headers, **session})
        for i in range(1, 21):
            answer = await client.post(url, json=call(i, HUGE), headers={**headers, **session})
            assert answer.status_code == 200
    assert_small_spans(spans_file, 20)


# ------------------------------------------------------------------ row 2: terminal escape injection

HOSTILE = "x\x1b]0;PWNED\x07\x1b[2J\u202egnp.exe\x9b31m"


def test_terminal_safe_shows_every_control_as_an_escape() -> None:
    assert terminal_safe(HOSTILE) == "x\\x1b]0;PWNED\\x07\\x1b[2J\\u202egnp.exe\\x9b31m"
    assert terminal_safe("tools/call read_file ✓ 日本") == "tools/call read_file ✓ 日本"
    assert terminal_safe("a\nb\tc\x7f") == "a\\x0ab\\x09c\\x7f"


def hostile_trace(path: Path) -> str:
    """A two-span trace whose names, attribute and service carry terminal escapes; returns its id."""

    provider = TracerProvider(resource=Resource.create({"service.name": f"svc{HOSTILE}"}))
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(path)))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(f"agent {HOSTILE}") as root:
        with tracer.start_as_current_span(f"tools/call {HOSTILE}", attributes={attr.SERVER_NAME: HOSTILE}):
            pass
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def test_show_traces_and_analyze_never_print_a_control_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "traces.db"
    monkeypatch.setenv("MCP_TRACING_STORE", str(store))
    trace_id = hostile_trace(store)
    for args in (["traces"], ["show", trace_id, "--width", "0"], ["show", trace_id], ["analyze", trace_id]):
        assert main(args) == 0
        out, _ = capsys.readouterr()
        assert HOSTILE not in out and "\\x1b]0;PWNED" in out or args[0] == "analyze", (args, out)
        assert not [c for c in out if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"], args
    assert main(["show", trace_id, "--json"]) == 0
    assert HOSTILE in "".join(s["name"] for s in json.loads(capsys.readouterr()[0]))  # JSON stays exact


# ------------------------------------------------------------------ row 9: deep traces


def deep_chain(path: Path, depth: int) -> str:
    """One chain of ``depth`` spans, each the parent of the next; returns the trace id."""
    from opentelemetry import trace

    provider = TracerProvider(resource=Resource.create({"service.name": "deep"}))
    tracer = provider.get_tracer("tests")
    spans: list[Any] = []
    ctx = None
    for i in range(depth):
        span = tracer.start_span(f"step {i}", context=ctx)
        spans.append(span)
        ctx = trace.set_span_in_context(span)
    for span in reversed(spans):
        span.end()
    SqliteSpanExporter(path).export(spans)
    return format(spans[0].get_span_context().trace_id, "032x")


def test_a_5000_deep_chain_is_drawn_by_show_html_and_analyze(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "traces.db"
    monkeypatch.setenv("MCP_TRACING_STORE", str(store))
    trace_id = deep_chain(store, 5000)
    assert main(["show", trace_id, "--width", "0"]) == 0
    lines = capsys.readouterr()[0].splitlines()[1:]
    assert len(lines) == 5000 and lines[0].startswith("step 0 [")
    assert max(len(line) for line in lines) < 400  # indentation capped: a line never grows with the depth
    assert "└── [depth 4999] step 4999 [" in lines[-1]
    assert main(["show", trace_id, "--html", str(tmp_path / "deep.html")]) == 0
    assert (tmp_path / "deep.html").stat().st_size > 0
    assert main(["analyze", trace_id]) == 0
    capsys.readouterr()


# ------------------------------------------------------------------ row 6: the hash key


RACER = """
import sys
from mcp_tracing.privacy import _key
sys.stdout.write(_key().hex())
"""


@pytest.mark.subprocess
def test_twelve_processes_racing_on_a_fresh_install_share_one_whole_key(tmp_path: Path) -> None:
    import subprocess

    for trial in range(3):
        key_file = tmp_path / f"trial{trial}" / "hash.key"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_TRACING_")}
        env["MCP_TRACING_HASH_KEY_FILE"] = str(key_file)
        racers = [
            subprocess.Popen([sys.executable, "-c", RACER], env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(12)
        ]
        keys = {racer.communicate(timeout=60)[0] for racer in racers}
        assert len(keys) == 1 and len(bytes.fromhex(keys.pop())) == 32, trial
        assert key_file.stat().st_size == 32 and [p.name for p in key_file.parent.iterdir()] == ["hash.key"]


def test_an_empty_or_short_key_file_is_replaced_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mcp_tracing import privacy

    monkeypatch.delenv("MCP_TRACING_HASH_KEY", raising=False)
    for content in (b"", b"short"):
        key_file = tmp_path / f"{len(content)}.key"
        key_file.write_bytes(content)
        monkeypatch.setenv("MCP_TRACING_HASH_KEY_FILE", str(key_file))
        caplog.clear()
        key = privacy._key()  # pyright: ignore[reportPrivateUsage]
        assert len(key) == 32 and key_file.read_bytes() == key
        assert len([r for r in caplog.records if "replacing it" in r.getMessage()]) == 1


# ------------------------------------------------------------------ row 10: --where


def test_where_matches_ids_as_text_and_keys_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "traces.db"
    monkeypatch.setenv("MCP_TRACING_STORE", str(store))
    provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_span_processor(SimpleSpanProcessor(SqliteSpanExporter(store)))
    tracer = provider.get_tracer("tests")
    ids: dict[str, str] = {}
    for name, attributes in (
        ("by-id", {attr.JSONRPC_REQUEST_ID: "1", "tokens": 7}),
        ("by-key", {"axb": "v", "tokens": 8.5}),
    ):
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            ids[name] = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    def found(where: str) -> set[str]:
        assert main(["traces", "--json", "--where", where]) == 0
        return {row["trace_id"] for row in json.loads(capsys.readouterr()[0])}

    assert found("jsonrpc.request.id=1") == {ids["by-id"]}  # before: nothing (the id is text, 1 a number)
    assert found("request.id=1") == {ids["by-id"]}
    assert found("a_b=v") == set()  # before: "_" matched any character
    assert found("axb=v") == {ids["by-key"]}
    assert found("tokens>7") == {ids["by-key"]} and found("tokens=7") == {ids["by-id"]}


# ------------------------------------------------------------------ weaker points: opt-in redaction


@pytest.mark.parametrize(
    "key", ["privateKey", "private-key", "PRIVATE_KEY", "pwd", "passphrase", "aws_access_key_id", "AWS.Secret.Key"]
)
def test_redaction_matches_every_spelling_of_a_secret_key(key: str) -> None:
    from mcp_tracing.privacy import REDACTED, Privacy

    assert Privacy().redact({key: "s3cr3t", "path": "/tmp/a"}) == {key: REDACTED, "path": "/tmp/a"}


def test_redaction_hides_header_lists_and_dsn_passwords() -> None:
    from mcp_tracing.privacy import REDACTED, Privacy

    headers = [{"name": "Authorization", "value": "Bearer x"}, {"name": "Accept", "value": "json"}]
    assert Privacy().redact({"headers": headers}) == {
        "headers": [{"name": "Authorization", "value": REDACTED}, {"name": "Accept", "value": "json"}]
    }
    dsn = "postgres://bob:hunter2@db:5432/app and https://example.com/a"
    assert Privacy().redact({"dsn": dsn}) == {"dsn": f"postgres://bob:{REDACTED}@db:5432/app and https://example.com/a"}


# ------------------------------------------------------------------ rows 3, 4, 11: the proxy


def wrap_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    return {**env, "MCP_TRACING_STORE": str(tmp_path / "wrap.db"), "OTEL_METRICS_EXPORTER": "none"}


WRAP = [sys.executable, "-m", "mcp_tracing.cli", "wrap", "--"]


@pytest.mark.subprocess
def test_wrap_dies_of_its_servers_sigkill_like_the_server(tmp_path: Path) -> None:
    import signal
    import subprocess

    suicide = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    done = subprocess.run([*WRAP, *suicide], env=wrap_env(tmp_path), capture_output=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()  # before: OSError [Errno 22], exit 1
    assert b"Traceback" not in done.stderr


@pytest.mark.subprocess
def test_wrap_ends_when_its_client_stops_reading(tmp_path: Path) -> None:
    import shlex
    import subprocess

    command = " ".join(shlex.quote(word) for word in [*WRAP, "yes", "x"]) + " | head -c 10"
    done = subprocess.run(  # before: never ended (one run hung 36 minutes)
        ["bash", "-c", command], env=wrap_env(tmp_path), capture_output=True, timeout=30, check=False
    )
    assert done.stdout == b"x\nx\nx\nx\nx\n" and b"Traceback" not in done.stderr


@pytest.mark.subprocess
def test_wrap_passes_json_nested_too_deep_to_parse_without_a_traceback(tmp_path: Path) -> None:
    import subprocess

    deep = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    done = subprocess.run(
        [*WRAP, "cat"], input=deep, env=wrap_env(tmp_path), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout == deep
    assert b"Traceback" not in done.stderr and b"RecursionError" not in done.stderr

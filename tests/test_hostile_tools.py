"""Hostile input to mcp_tracing's own tools (issue 15): the ``wrap`` proxy, the store, the CLI and its views,
the hash key, redaction and the tail sampler. Nothing here depends on the SDK line: ``scripts/test`` runs it
on mcp 2.x only (marker ``sdk_independent``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import HANDSHAKE, HUGE, WRAP, rss, tool_call as call, wrap_env
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.bounds import CUT_MARK, NAME_LIMIT
from mcp_tracing.cli import main
from mcp_tracing.cli.text import terminal_safe
from mcp_tracing.store import SqliteSpanExporter

pytestmark = pytest.mark.sdk_independent


@pytest.mark.subprocess
def test_the_sdks_attribute_limits_apply_on_top_where_set(tmp_path: Path) -> None:
    """``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` and ``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`` hold through ``configure()``;
    span names, which they do not cover, stay at ``NAME_LIMIT``."""
    import subprocess

    from helpers import stored_spans

    raw = [sys.executable, str(Path(__file__).parent / "servers" / "raw_server.py")]
    limits = {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "40", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "5"}
    sent = b"".join(json.dumps(m).encode() + b"\n" for m in [*HANDSHAKE, call(1, HUGE)])
    env = wrap_env(tmp_path) | limits
    done = subprocess.run([*WRAP, *raw], input=sent, env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    (tool,) = [s for s in stored_spans(tmp_path / "wrap.db") if s.name.startswith("tools/call")]
    assert len(tool.name) == len("tools/call ") + NAME_LIMIT
    assert len(tool.attributes) == 5 and all(len(str(v)) <= 40 for v in tool.attributes.values())


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
    for args in (["traces"], ["show", trace_id, "--bars", "0"], ["show", trace_id], ["analyze", trace_id]):
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
    assert main(["show", trace_id, "--bars", "0"]) == 0
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
from mcp_tracing.privacy import hash_key
sys.stdout.write(hash_key().hex())
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
        key = privacy.hash_key()
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


# ------------------------------------------------------------------ row 5: what the proxy holds


def answer_line(request_id: object, result: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode() + b"\n"


def request_line(request_id: int, size: int = 100) -> bytes:
    return json.dumps(call(request_id, "t") | {"params": {"name": "t", "arguments": {"blob": "b" * size}}}).encode()


def test_the_proxy_holds_few_small_answers_and_at_most_max_pending_requests() -> None:
    """Before: every unknown-id answer kept whole (up to 1024 of them), and every unanswered request with its
    params, without a count limit."""
    import tracemalloc

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mcp_tracing.proxy import MAX_EARLY, MAX_PENDING, UNANSWERED, Proxy

    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    proxy = Proxy(tracer_provider=provider)
    megabyte = {"content": [{"type": "text", "text": "r" * 1_000_000}]}
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(100):  # answers to ids never requested, one with a 1 MB id
            proxy.from_server(answer_line(f"never-{i}" if i else "i" * 1_000_000, megabyte), 1_000)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 2_000_000, held  # before: over 100 MB
    assert len(proxy._early) == 100  # pyright: ignore[reportPrivateUsage]
    for i in range(MAX_EARLY + 50):
        proxy.from_server(answer_line(f"later-{i}", {}), 2_000)
    assert len(proxy._early) == MAX_EARLY  # pyright: ignore[reportPrivateUsage]

    for i in range(MAX_PENDING + 100):
        proxy.from_client(request_line(i), 3_000 + i)
    assert len(proxy._from_client) == MAX_PENDING  # pyright: ignore[reportPrivateUsage]
    pushed_out = [s for s in exporter.get_finished_spans() if (s.attributes or {}).get(attr.ERROR_TYPE) == UNANSWERED]
    assert sorted(str((s.attributes or {})[attr.JSONRPC_REQUEST_ID]) for s in pushed_out) == sorted(
        str(i) for i in range(100)
    )  # the oldest ones, each ended when pushed out
    assert all(s.status.status_code.name == "ERROR" for s in pushed_out)
    proxy.from_server(answer_line(MAX_PENDING + 99, {"content": [], "isError": True}), 9_000_000)
    (last,) = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(attr.JSONRPC_REQUEST_ID) == str(MAX_PENDING + 99)
    ]
    assert (last.attributes or {})[attr.ERROR_TYPE] == attr.ERROR_TOOL and last.end_time == 9_000_000


def ask(request_id: int, tool: str) -> bytes:
    return json.dumps(call(request_id, tool)).encode()


def test_an_answer_read_before_its_request_gives_its_span_what_the_answer_said() -> None:
    """A held answer is a summary; the span it ends gets the same attributes as from the answer itself."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mcp_tracing.privacy import Privacy
    from mcp_tracing.proxy import Proxy

    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    proxy = Proxy(tracer_provider=provider, privacy=Privacy(capture_content=True, allow_tools=frozenset({"seen"})))
    result = {"content": [{"type": "text", "text": "fine"}]}
    for order in ("answer first", "request first"):
        for tool, request_id in (("seen", 1), ("unseen", 2)):
            steps = [(proxy.from_server, answer_line(request_id, result)), (proxy.from_client, ask(request_id, tool))]
            for observe, message in steps if order == "answer first" else reversed(steps):
                observe(message, 1)
    proxy.from_client(json.dumps(HANDSHAKE[0] | {"id": 9}).encode(), 1)
    proxy.from_server(answer_line(9, {"protocolVersion": "2025-06-18", "serverInfo": {"name": "s" * 5000}}), 2)
    proxy.from_server(json.dumps({"jsonrpc": "2.0", "id": 3, "error": {"code": [[1]], "message": "m"}}).encode(), 2)
    proxy.from_client(json.dumps(call(3, "seen")).encode(), 1)
    spans = [dict(s.attributes or {}) for s in exporter.get_finished_spans()]
    by_tool = [
        {k: v for k, v in s.items() if k != attr.JSONRPC_REQUEST_ID} for s in spans if s.get(attr.GEN_AI_TOOL_NAME)
    ]
    assert by_tool[0] == by_tool[2] and by_tool[1] == by_tool[3]  # the same whichever came first
    assert by_tool[0][attr.GEN_AI_TOOL_CALL_RESULT] == json.dumps(result, separators=(",", ":"))
    assert attr.GEN_AI_TOOL_CALL_RESULT not in by_tool[1] and int(str(by_tool[1][attr.TOOL_RESULT_SIZE])) > 0
    assert by_tool[4][attr.ERROR_TYPE] == "list"  # a code that is not a scalar is named by its type
    assert proxy.server_name == "s" * (NAME_LIMIT - 1) + CUT_MARK


WHOLESALE = """
import sys
answer = '{"jsonrpc":"2.0","id":"never-%d","result":{"content":[{"type":"text","text":"' + "r" * 1_000_000 + '"}]}}'
sys.stdout.write('{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"ready"}}\\n')
sys.stdout.flush()
seen = 0
for line in sys.stdin:
    seen += 1
    if seen == int(sys.argv[1]):
        for i in range(300):
            sys.stdout.write(answer % i + "\\n")
        sys.stdout.write('{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"done"}}\\n')
        sys.stdout.flush()
"""


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_wrap_stays_small_under_unknown_answers_and_unanswered_requests(tmp_path: Path) -> None:
    """300 x 1 MB answers to ids never requested, 20,000 requests never answered: before, 343 MB while idle."""
    import subprocess
    import threading

    requests = 20_000
    server = tmp_path / "wholesale.py"
    server.write_text(WHOLESALE)
    proxy = subprocess.Popen(
        [*WRAP, sys.executable, str(server), str(requests)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=wrap_env(tmp_path),
    )
    assert proxy.stdin is not None and proxy.stdout is not None
    ready, received = threading.Event(), threading.Event()
    sizes: list[int] = []

    def drain() -> None:
        assert proxy.stdout is not None
        for out_line in proxy.stdout:
            if b'"ready"' in out_line:  # through the proxy: it has configured tracing and started its server
                ready.set()
            elif b'"done"' in out_line:
                received.set()
            else:
                sizes.append(len(out_line))

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "the proxy never started its server"
        started = rss(proxy.pid)
        for i in range(requests):
            proxy.stdin.write(request_line(i) + b"\n")
        proxy.stdin.flush()
        assert received.wait(120), "the server's answers never came through"
        grown = rss(proxy.pid) - started
        proxy.stdin.close()
        assert proxy.wait(60) == 0
    finally:
        proxy.kill()
        reader.join(10)
    assert len(sizes) == 300 and all(size > 1_000_000 for size in sizes)  # every answer through
    # About 45 MB measured (4,096 pending spans at ~3.6 KB, the export queue, the allocator); 343 MB before.
    assert grown < 120_000_000, grown
    print(f"wrap grew by {grown / 1e6:.1f} MB")


# ------------------------------------------------------------------ weaker points: the store file


def write_one_span(exporter: SqliteSpanExporter) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s").end()
    provider.shutdown()


@pytest.mark.parametrize("linked", ["store.db", "store.db-wal"])
def test_a_link_planted_at_the_store_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, linked: str
) -> None:
    """Before: SQLite followed the link and wrote the spans (arguments hashes, captured content) through it."""
    import logging

    from helpers import stored_spans

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    (tmp_path / linked).symlink_to(victim)
    with caplog.at_level(logging.WARNING, logger="mcp_tracing.store"):
        write_one_span(SqliteSpanExporter(tmp_path / "store.db"))
    assert victim.read_bytes() == b""  # nothing written through the link
    (message,) = [r.getMessage() for r in caplog.records]
    assert f"{linked} is a symbolic link, which the store does not follow" in message
    assert [s.name for s in stored_spans(tmp_path / "xdg" / "mcp-tracing" / "traces.db")] == ["s"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_store_left_readable_by_others_is_made_the_owners_alone(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    write_one_span(SqliteSpanExporter(store))
    store.chmod(0o644)  # before: kept as found, with every later span readable by every user
    write_one_span(SqliteSpanExporter(store))
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir() if p.name.startswith("store.db")}
    assert set(modes.values()) == {0o600}, modes


# ------------------------------------------------------------------ weaker points: the tail sampler's ratio


def test_trace_ids_chosen_with_zero_low_bits_are_kept_at_the_ratio_like_any_other() -> None:
    """Before: 1000 of 1000 kept at a 5% ratio (the decision read only the low 64 bits); 43 of 1000 random."""
    import random

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    from mcp_tracing.sampling import TailSamplingProcessor

    class ChosenIds(RandomIdGenerator):  # a caller sending traceparents it picked: random high bits, low bits 0
        chosen = random.Random(15)

        def generate_trace_id(self) -> int:
            return self.chosen.getrandbits(64) << 64

    exporter = InMemorySpanExporter()
    sampler = TailSamplingProcessor(SimpleSpanProcessor(exporter), ratio=0.05, slow_s=60.0, grace_s=0.0)
    provider = TracerProvider(id_generator=ChosenIds())
    provider.add_span_processor(sampler)
    for _ in range(1000):
        provider.get_tracer("t").start_span("root").end()
    provider.force_flush()
    kept = len(exporter.get_finished_spans())
    provider.shutdown()
    assert 20 <= kept <= 85, kept  # 5% of 1000 = 50 (binomial sd ~6.9)


# ------------------------------------------------------------------ weaker points: bidi in the HTML page


def test_the_html_page_shows_control_and_bidi_characters_as_escapes(tmp_path: Path) -> None:
    """Before: a right-to-left override in a tool name reached the page's text as itself and reversed what
    followed it (``exe.png`` shown for ``\\u202egnp.exe``)."""
    import re

    from mcp_tracing.store import TraceStore
    from mcp_tracing.store.patterns import LABELS, Finding
    from mcp_tracing.ui import trace_page, trace_view

    store = tmp_path / "traces.db"
    trace_id = hostile_trace(store)
    reader = TraceStore(store)
    spans = reader.spans(trace_id)
    reader.close()
    finding = Finding(next(iter(LABELS)), trace_id, (spans[0].span_id,), 1.0, f"slow {HOSTILE}", f"fix {HOSTILE}")
    page = trace_page(trace_view(spans, [finding])).html
    (payload,) = re.findall(r'<script id="trace-data" type="application/json">(.*?)</script>', page, re.S)
    shown: list[str] = []

    def strings(value: object) -> None:
        if isinstance(value, str):
            shown.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
                strings(key)
                strings(item)
        elif isinstance(value, list):
            for item in value:  # pyright: ignore[reportUnknownVariableType]
                strings(item)

    strings(json.loads(payload))  # what the script puts on the page, as it will read it
    unsafe = {c for text in [*shown, page] for c in text if terminal_safe(c) != c and c != "\n"}
    assert not unsafe, unsafe
    assert f"tools/call {terminal_safe(HOSTILE)}" in shown and f"svc{terminal_safe(HOSTILE)}" in shown
    assert f"slow {terminal_safe(HOSTILE)}" in shown and f"fix {terminal_safe(HOSTILE)}" in shown  # the finding

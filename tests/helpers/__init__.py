"""Test helpers: spawning the probe server, collecting spans of both processes as SpanRecords."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import StdioServerParameters
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_tracing._core.registry import IS_V2
from mcp_tracing.testing import SpanRecord, read_spans, span_record

ROOT = Path(__file__).resolve().parents[2]  # tests/helpers/__init__.py -> the repository
PROBE = ROOT / "tests" / "servers" / "probe_server.py"


def probe_params(env: Mapping[str, str] | None = None, *, python: str | None = None, traced: bool = True):
    return StdioServerParameters(
        command=python or sys.executable,
        args=[str(PROBE)],
        # The untraced baseline exports nothing, so the spans file holds the traced run's spans only.
        env={**(env or {}), "PROBE_TRACED": "1"}
        if traced
        else {**(env or {}), "PROBE_TRACED": "0", "MCP_TRACING_EXAMPLE_SPANS": ""},
    )


def all_spans(exporter: InMemorySpanExporter, spans_file: Path) -> list[SpanRecord]:
    return [span_record(s) for s in exporter.get_finished_spans()] + read_spans(spans_file)


def by_name(spans: Iterable[SpanRecord], name: str) -> list[SpanRecord]:
    return [s for s in spans if s.name == name]


def one(spans: Iterable[SpanRecord], name: str, kind: str | None = None) -> SpanRecord:
    found = [s for s in spans if s.name == name and (kind is None or s.kind == kind)]
    assert len(found) == 1, f"expected one {name!r} ({kind}), got {[(s.name, s.kind) for s in spans]}"
    return found[0]


def structured(result: Any) -> Any:
    """The structured content of a CallToolResult, on either SDK line."""
    value = getattr(result, "structured_content" if IS_V2 else "structuredContent", None)
    return value.get("result", value) if isinstance(value, dict) and set(value) == {"result"} else value


def outcome(result: Any) -> Any:
    """What a caller sees, comparable across runs: the result as JSON, or the exception's type/code/message."""
    if isinstance(result, BaseException):
        error = getattr(result, "error", None)
        return (type(result).__name__, getattr(error, "code", None), getattr(error, "message", str(result)))
    return result.model_dump(mode="json", by_alias=True)


HTTP_PROBE = ROOT / "tests" / "servers" / "http_probe_server.py"


@asynccontextmanager
async def http_probe(
    spans_file: Path,
    requests_file: Path | None = None,
    *,
    stateless: bool = False,
    json_response: bool = False,
    traced: bool = True,
    policy: str = "default",
    middleware_policy: str | None = None,
    python: str | None = None,
) -> AsyncIterator[str]:
    """Runs the HTTP probe server in a subprocess; yields its MCP URL; stops it (SIGTERM) and waits."""
    env = {
        **os.environ,
        "MCP_TRACING_EXAMPLE_SPANS": str(spans_file) if traced else "",
        "PROBE_STATELESS": "1" if stateless else "0",
        "PROBE_JSON": "1" if json_response else "0",
        "PROBE_TRACED": "1" if traced else "0",
        "PROBE_POLICY": policy,
        "PROBE_MIDDLEWARE_POLICY": middleware_policy or "",
        "PROBE_REQUESTS": str(requests_file) if requests_file else "",
    }
    process = await anyio.open_process([python or sys.executable, str(HTTP_PROBE)], env=env, stderr=None)
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            buffer = b""
            while b"\n" not in buffer:
                chunk = await process.stdout.receive()
                buffer += chunk
        port = int(buffer.split(b"\n", 1)[0].split()[1])
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        with anyio.fail_after(20):
            await process.wait()
        await process.aclose()


def read_requests(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def read_until(stream: Any, marker: bytes) -> bytes:
    """What a process wrote to ``stream`` up to and including ``marker`` (waits at most 30 s)."""
    seen = b""
    with anyio.fail_after(30):
        while marker not in seen:
            seen += await stream.receive()
    return seen


def free_port() -> int:
    """A TCP port on 127.0.0.1 free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_spans(store: Path) -> list[SpanRecord]:
    """Every span of every trace in a local store."""
    from mcp_tracing.store import TraceStore

    reader = TraceStore(store)
    try:
        return [s for trace_id in reader.trace_ids() for s in reader.spans(trace_id)]
    finally:
        reader.close()


# ------------------------------------------------------------------ hostile peers (tests/test_hostile*.py)

HUGE = "x" * 2_000_000
"""A 2 MB tool name, as in the report."""


def tool_call(request_id: int, name: str) -> dict[str, Any]:
    """A raw ``tools/call`` request."""
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, "arguments": {}}}


HANDSHAKE: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
]
"""A raw client's ``initialize`` and ``notifications/initialized``."""

WRAP = [sys.executable, "-m", "mcp_tracing.cli", "wrap", "--"]
"""``mcp-tracing wrap --`` with this interpreter."""


def wrap_env(tmp_path: Path) -> dict[str, str]:
    """This environment without OTel or mcp_tracing settings, storing in ``tmp_path/wrap.db``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    return {**env, "MCP_TRACING_STORE": str(tmp_path / "wrap.db"), "OTEL_METRICS_EXPORTER": "none"}


def rss(pid: int) -> int:
    """Resident bytes of a running process (Linux)."""
    for status_line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if status_line.startswith("VmRSS:"):
            return int(status_line.split()[1]) * 1024
    raise AssertionError("no VmRSS")

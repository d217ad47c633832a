"""The arguments hash: keyed, canonical, never the arguments themselves."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from mcp_tracing import privacy


def test_same_arguments_same_hash_whatever_the_key_order() -> None:
    assert privacy.args_hash({"a": 1, "b": [1, 2]}) == privacy.args_hash({"b": [1, 2], "a": 1})
    assert privacy.args_hash({"a": 1}) != privacy.args_hash({"a": 2})
    assert privacy.args_hash(None) is None


def test_the_hash_is_keyed_so_guessing_low_entropy_arguments_does_not_work(monkeypatch: pytest.MonkeyPatch) -> None:
    arguments = {"user_id": 42}
    plain = hashlib.sha256(json.dumps(arguments, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    first = privacy.args_hash(arguments)
    monkeypatch.setenv(privacy.HASH_KEY_ENV, "another-key")
    second = privacy.args_hash(arguments)
    assert first is not None and second is not None and len(first) == 32
    assert first != second and not plain.startswith(first) and not plain.startswith(second)


def test_without_a_configured_key_one_is_made_once_per_installation_with_mode_0600(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(privacy.HASH_KEY_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    privacy._installation_key.cache_clear()
    first = privacy.args_hash({"x": 1})
    key_file = tmp_path / "data" / "mcp-tracing" / "hash.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    privacy._installation_key.cache_clear()  # a new process reads the same file
    assert privacy.args_hash({"x": 1}) == first


def test_an_unwritable_data_directory_falls_back_to_a_per_process_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(privacy.HASH_KEY_ENV)
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    privacy._installation_key.cache_clear()
    assert privacy.args_hash({"x": 1}) == privacy.args_hash({"x": 1})


def test_unserialisable_arguments_still_hash() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    assert privacy.args_hash(loop) is not None


# ---------------------------------------------------------------------------------- opt-in content capture

import anyio  # noqa: E402
from helpers.inprocess import connected, make_server  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import mcp_tracing  # noqa: E402
from mcp_tracing.privacy import Privacy  # noqa: E402

RECORD = {
    "user": "ada",
    "password": "hunter2",
    "nested": {"API_Key": "k-123", "note": "x" * 50},
    "list": [{"token": "t"}],
}


async def _calls(provider: TracerProvider, privacy: Privacy | None) -> None:
    server = mcp_tracing.instrument_server(make_server(), privacy=privacy, tracer_provider=provider)
    async with connected(server) as session:
        mcp_tracing.trace_session(session, privacy=privacy, tracer_provider=provider)
        await session.initialize()
        await session.call_tool("save", {"record": RECORD})
        await session.call_tool("echo", {"text": "plain"})
        try:
            await session.get_prompt("broken_prompt")
        except Exception:
            pass


def _spans(exporter: InMemorySpanExporter, name: str) -> list[dict[str, object]]:
    return [dict(s.attributes or {}) for s in exporter.get_finished_spans() if s.name == name]


def test_nothing_is_captured_by_default(capture: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = capture
    anyio.run(_calls, provider, None)
    for attributes in _spans(exporter, "tools/call save"):
        assert "gen_ai.tool.call.arguments" not in attributes and "gen_ai.tool.call.result" not in attributes
    assert "hunter2" not in str([s.to_json() for s in exporter.get_finished_spans()])


def test_opt_in_capture_is_redacted_capped_and_limited_to_allowed_tools(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    privacy = Privacy(capture_content=True, max_length=120, deny_tools=frozenset({"echo"}))
    anyio.run(_calls, provider, privacy)
    saves = _spans(exporter, "tools/call save")
    assert len(saves) == 2  # client and server
    for attributes in saves:
        arguments = str(attributes["gen_ai.tool.call.arguments"])
        assert arguments.startswith('{"record":{"user":"ada","password":"[REDACTED]","nested":{"API_Key":"[REDACTED]"')
        assert arguments.endswith("...[truncated]") and len(arguments) == 120 + len("...[truncated]")
        assert "hunter2" not in str(attributes["gen_ai.tool.call.result"])
        assert "k-123" not in str(attributes)
    for attributes in _spans(exporter, "tools/call echo"):  # denied
        assert "gen_ai.tool.call.arguments" not in attributes and "gen_ai.tool.call.result" not in attributes
    failing = [s for s in exporter.get_finished_spans() if s.name == "prompts/get broken_prompt"]
    assert failing and all("s3cr3t" not in s.to_json() for s in failing)


def test_exception_text_is_opt_in(capture: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = capture
    anyio.run(_calls, provider, Privacy(capture_exception_text=True))
    texts = [s.status.description or "" for s in exporter.get_finished_spans() if s.name == "prompts/get broken_prompt"]
    assert any("broken_prompt" in text for text in texts), texts


def test_the_switches_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Privacy.from_env() == Privacy()
    monkeypatch.setenv("MCP_TRACING_CAPTURE_CONTENT", "1")
    monkeypatch.setenv("MCP_TRACING_CAPTURE_EXCEPTION_TEXT", "true")
    assert Privacy.from_env() == Privacy(capture_content=True, capture_exception_text=True)
    assert Privacy(capture_content=True, allow_tools=frozenset({"a"})).captures("b") is False
    assert Privacy(capture_content=True).captures(None) is False

"""Running Python in a clean environment; the other SDK line's interpreter; the lesson's trace shape."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    return {**env, **extra}


def run_python(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """This interpreter with ``args``, in an environment free of OTel/mcp_tracing settings but ``env``."""
    return subprocess.run(
        [sys.executable, *args], env=clean_env(**env), capture_output=True, text=True, timeout=120, check=False
    )


def assert_lesson_shape(spans: list[dict[str, Any]]) -> None:
    """invoke_agent -> agent.turn -> execute_tool -> server spans of two other processes, in one trace (the
    GenAI conventions' names, the default)."""
    by_id = {s["span_id"]: s for s in spans}
    assert len({s["trace_id"] for s in spans}) == 1

    def ancestors(span: dict[str, Any]) -> list[str]:
        names = []
        while span.get("parent_id") in by_id:
            span = by_id[span["parent_id"]]
            names.append(span["name"])
        return names

    server_spans = [s for s in spans if s["name"].startswith("tools/call") and s["service"] != "demo-agent"]
    assert {s["service"] for s in server_spans} == {"files-server", "sql-server"}
    for span in server_spans:
        tool = span["name"].removeprefix("tools/call ")
        assert ancestors(span)[:3] == [f"execute_tool {tool}", "agent.turn", "invoke_agent shop-assistant"], span
    names = {s["name"] for s in spans}
    assert {"chat scripted-model", "state.checkpoint", "validator.run", "fs.read", "db.query", "POST /mcp"} <= names


def other_python() -> str:
    """The interpreter of the other mcp major version's venv (scripts/test sets it); skips the test without it.

    Under CI a missing interpreter fails the test instead: the cross-version check must not go quiet.
    """
    path = os.environ.get("MCP_TRACING_OTHER_PYTHON")
    if path and Path(path).exists():
        return path
    if os.environ.get("CI"):
        pytest.fail("CI must set MCP_TRACING_OTHER_PYTHON to the other mcp major version's interpreter")
    pytest.skip("MCP_TRACING_OTHER_PYTHON is not set (scripts/test sets it)")

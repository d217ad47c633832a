"""README.md's Recipes run as written: each block's lines are in the file its first line names, and that file
runs in a test (the framework recipes in their own venvs: tests/test_fastmcp.py, tests/test_frameworks*.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from helpers import free_port, read_until

from mcp_tracing._core.registry import IS_V2
from mcp_tracing.store import TraceStore

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "servers" / "runner_server.py"


def recipes() -> list[tuple[str, list[str]]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Recipes\n", 1)[1].split("\n## ", 1)[0]
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        first, *lines = block.splitlines()
        path = first.removeprefix("# recipe: ")
        if path != first:  # the others are fragments (tests/test_readme.py holds every block to one of these)
            found.append((path, [line.strip() for line in lines if line.strip()]))
    return found


def test_every_recipe_is_in_the_file_that_runs_it() -> None:
    found = recipes()
    assert len(found) == 6
    for path, lines in found:
        text = [line.strip() for line in (ROOT / path).read_text().splitlines()]
        at = 0
        for line in lines:
            assert line in text[at:], f"{path}: {line!r} (in this order)"
            at = text.index(line, at) + 1


@pytest.mark.subprocess
@pytest.mark.anyio
@pytest.mark.skipif(not IS_V2, reason="mcp.Client exists only in mcp 2.x")
async def test_the_sdk_client_recipe_gives_one_trace_across_three_processes(tmp_path: Path) -> None:
    """``examples/recipes/sdk_client.py`` spawns the runner over stdio and calls it over HTTP: every span of the
    three processes in one trace, in the agent's store, server spans under the client spans."""
    store = tmp_path / "traces.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    env["MCP_TRACING_STORE"] = str(store)
    port = free_port()
    server = await anyio.open_process([sys.executable, str(RUNNER), "streamable-http", str(port)], env=env)
    try:
        assert server.stderr is not None
        await read_until(server.stderr, b"Uvicorn running on")
        agent = [sys.executable, str(ROOT / "examples" / "recipes" / "sdk_client.py"), str(RUNNER)]
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [*agent, f"http://127.0.0.1:{port}/mcp"], env=env, capture_output=True, timeout=60, check=False
            )
        )
        assert done.returncode == 0, done.stderr.decode()
    finally:
        server.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            await server.wait()
        await server.aclose()
    reader = TraceStore(store)
    (summary,) = [t for t in reader.traces() if "agent" in t.services]
    spans = reader.spans(summary.trace_id)
    reader.close()
    assert summary.services == ("agent", "runner-server")
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.name == "agent.request"
    sent = sorted((s for s in spans if s.name == "tools/call work" and s.kind == "CLIENT"), key=lambda s: s.start_ns)
    served = sorted((s for s in spans if s.name == "tools/call work" and s.kind == "SERVER"), key=lambda s: s.start_ns)
    assert [s.parent_id for s in served] == [s.span_id for s in sent]
    assert [s.attributes["network.transport"] for s in sent] == ["pipe", "tcp"]
    works = [s for s in spans if s.name == "runner.work"]
    assert sorted(w.parent_id or "" for w in works) == sorted(s.span_id for s in served)
    posts = [s for s in spans if s.name == "POST /mcp"]
    assert posts and {p.parent_id for p in posts} <= {s.span_id for s in spans}

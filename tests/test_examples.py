"""Every example runs, and prints what README.md says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED_STDIO_TREE = """\
agent.session [N ms] (agent)
├── initialize [N ms] {server: files} (agent)
│   └── initialize [N ms] {server: files} (files-server)
├── agent.turn [N ms] (agent)
│   ├── tools/call search [N ms] {server: files, status: ok, result_size: N} (agent)
│   │   └── tools/call search [N ms] {server: files, status: ok, result_size: N} (files-server)
│   │       └── fs.scan [N ms] (files-server)
│   └── tools/list [N ms] {server: files} (agent)
│       └── tools/list [N ms] {server: files} (files-server)
└── agent.turn [N ms] (agent)
    ├── tools/call read_file [N ms] {server: files, status: ok, result_size: N} (agent)
    │   └── tools/call read_file [N ms] {server: files, status: ok, result_size: N} (files-server)
    │       └── fs.read [N ms] (files-server)
    └── tools/call read_file [N ms] {server: files, status: ok, result_size: N} (agent)
        └── tools/call read_file [N ms] {server: files, status: ok, result_size: N} (files-server)
            └── fs.read [N ms] (files-server)"""


def run_example(script: str, spans: int) -> list[str]:
    """Runs an example agent; checks its header line; returns its tree with durations and sizes as N."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    header, _, tree = done.stdout.partition("\n")
    assert re.fullmatch(rf"trace [0-9a-f]{{32}}: {spans} spans from 2 processes", header), header
    return re.sub(r"\d+ ms", "N ms", re.sub(r"result_size: \d+", "result_size: N", tree)).rstrip("\n").splitlines()


def test_stdio_agent_prints_one_trace_across_two_processes() -> None:
    lines = run_example("stdio_agent.py", 17)
    # The server's session span starts when the child is ready, a moment the agent does not order:
    # it is a child of agent.session with nothing under it, since every message carried _meta.
    assert lines.count("├── mcp.server.session [N ms] (files-server)") == 1
    lines.remove("├── mcp.server.session [N ms] (files-server)")
    assert "\n".join(lines) == EXPECTED_STDIO_TREE


EXPECTED_HTTP_TREE = """\
agent.session [N ms] (agent)
├── initialize [N ms] {server: sql} (agent)
│   ├── POST /mcp [N ms] (sql-server)
│   └── initialize [N ms] {server: sql} (sql-server)
├── agent.turn [N ms] (agent)
│   ├── tools/call query [N ms] {server: sql, status: ok, result_size: N} (agent)
│   │   ├── POST /mcp [N ms] (sql-server)
│   │   └── tools/call query [N ms] {server: sql, status: ok, result_size: N} (sql-server)
│   │       └── db.query [N ms] (sql-server)
│   ├── tools/list [N ms] {server: sql} (agent)
│   │   ├── POST /mcp [N ms] (sql-server)
│   │   └── tools/list [N ms] {server: sql} (sql-server)
│   └── tools/call query [N ms] {server: sql, status: ok, result_size: N} (agent)
│       ├── POST /mcp [N ms] (sql-server)
│       └── tools/call query [N ms] {server: sql, status: ok, result_size: N} (sql-server)
│           └── db.query [N ms] (sql-server)"""


def test_http_agent_prints_one_trace_with_the_servers_http_and_mcp_spans() -> None:
    lines = run_example("http_agent.py", 19)
    # The standalone GET stream, the DELETE and the POST of notifications/initialized (which has no span of
    # its own by default, so its header carries the session's context) are children of agent.session, at
    # moments the SDK chooses. The last line drawn closes the tree, whichever it is.
    session_lines = [line for line in lines if line[:4] in ("├── ", "└── ") and "/mcp [" in line]
    assert sorted(line[4:] for line in session_lines) == [
        "DELETE /mcp [N ms] (sql-server)",
        "GET /mcp [N ms] (sql-server)",
        "POST /mcp [N ms] (sql-server)",
    ]
    kept = [line for line in lines if line not in session_lines]
    assert "\n".join(kept) == EXPECTED_HTTP_TREE

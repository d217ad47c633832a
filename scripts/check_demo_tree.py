"""Checks the tree `mcp-tracing demo` printed (stdin): one trace, invoke_agent -> agent.turn -> execute_tool ->
server spans from at least two other processes (the lesson's names, agent.session -> agent.turn -> tool.call,
under MCP_TRACING_SPAN_NAMES=lesson). Exits non-zero with the reason otherwise."""

from __future__ import annotations

import re
import sys

lines = sys.stdin.read().splitlines()
header = re.fullmatch(r"trace ([0-9a-f]{32}): (\d+) spans from (\d+) processes", lines[0] if lines else "")
if header is None:
    sys.exit(f"no trace header in the demo's output: {lines[:1]}")
stack: list[str] = []
servers: set[str] = set()
agent_service = None
for line in lines[1:]:
    # tree, name, duration, attributes, (service), ERROR; then (cut to align) the time bar and any findings
    line = re.sub(r"\s+\|[ █]*\|(  ⚑ .*)?$", "", line)
    match = re.match(r"^((?:[│ ]   )*)(?:[├└]── )?(\S+)(?: (\S+))? \[\d+ ms\].*?(?:\((\S+?)\)|…)( ERROR)?$", line)
    if match is None:
        sys.exit(f"not a tree line: {line!r}")
    depth = len(match.group(1)) // 4 + (1 if match.group(0)[len(match.group(1)) :].startswith(("├", "└")) else 0)
    name, service = match.group(2), match.group(4)
    del stack[depth:]
    stack.append(name)
    if depth == 0:
        agent_service = service
    under = stack[:3] in (["invoke_agent", "agent.turn", "execute_tool"], ["agent.session", "agent.turn", "tool.call"])
    if name == "tools/call" and service != agent_service and under:
        servers.add(service)
if len(servers) < 2:
    expected = "server tools/call spans under invoke_agent > agent.turn > execute_tool, from 2+ processes"
    sys.exit(f"expected {expected}: {servers}")
print(f"demo tree ok: trace {header.group(1)}, {header.group(2)} spans, servers {sorted(servers)}")

"""``python -m mcp_tracing.cli``: the ``mcp-tracing`` command."""

from mcp_tracing.cli.commands import console

console()

"""The ``mcp-tracing`` command (``commands``) and what it draws with: the text tree (``tree``), the HTML
waterfall (``waterfall``), the scripted demo (``demo``)."""

from mcp_tracing.cli.commands import console, main

__all__ = ["console", "main"]

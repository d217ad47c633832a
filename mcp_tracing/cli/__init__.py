"""The ``mcp-tracing`` command (``commands``) and what it draws with: the text tree (``tree``), the scripted demo
(``demo``). The HTML trace view (``show --html``, ``ui``) is ``mcp_tracing.ui``."""

from mcp_tracing.cli.commands import console, main

__all__ = ["console", "main"]

"""``mcp-tracing ui``: the local store in a browser (``app``), and the one trace view it shares with
``show --html`` (``view``: the data, ``page``: the documents, ``assets/``: the stylesheet and scripts)."""

from mcp_tracing.ui.app import DEFAULT_PORT, UiApp, serve
from mcp_tracing.ui.page import trace_page
from mcp_tracing.ui.view import trace_view

__all__ = ["DEFAULT_PORT", "UiApp", "serve", "trace_page", "trace_view"]

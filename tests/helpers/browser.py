"""Headless Chromium for the browser tests (``show --html``, ``mcp-tracing ui``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
"""As root, without a sandbox; with no background connections (this machine's network refuses them)."""


def chromium() -> str:
    """Debian's Chromium (``scripts/test`` installs it where it can; ``.ci/run`` always does)."""
    path = os.environ.get("MCP_TRACING_CHROMIUM")
    if not path or not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium (.ci/run) and set MCP_TRACING_CHROMIUM (scripts/test)")
        pytest.skip("no Chromium: MCP_TRACING_CHROMIUM is not set (scripts/test sets it when chromium is installed)")
    try:
        import playwright  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError:
        pytest.skip("playwright is installed in the mcp 2.x venv only (scripts/test)")
    return path

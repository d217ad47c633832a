"""Where mcp_tracing keeps its files by default: its folder in the user's data directory.

``$XDG_DATA_HOME/mcp-tracing`` when ``XDG_DATA_HOME`` is an absolute path (the XDG Base Directory
specification says to ignore a relative one), else ``~/.local/share/mcp-tracing``. Each process resolves it
from its own environment, so a process spawned with another ``HOME`` or ``XDG_DATA_HOME`` would look
elsewhere: ``mcp_tracing._core.environment`` hands children the resolved files instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["data_dir", "absolute"]


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """mcp_tracing's folder in the user's data directory, as ``environ`` (``os.environ``) resolves it."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".local", "share")
    return Path(base) / "mcp-tracing"


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` expanded, made absolute against the current directory (never resolving links)."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))

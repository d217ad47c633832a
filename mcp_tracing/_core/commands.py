"""A name for the server a command starts, when it gives none (the proxy's service, a spawned server's stderr
logger)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["command_name"]

_LAUNCHERS: Final = frozenset(
    {"python", "python3", "node", "npx", "uv", "uvx", "bun", "bunx", "deno", "pipx", "sh", "bash"}
)

"""Commands that run another program: the server is named after what they run, not after them."""


def command_name(argv: Sequence[str]) -> str:
    """A name for the server a command starts, when it gives none: the program, or for a launcher (``python``,
    ``npx``, ``uvx``, ...) the first argument that is not an option (``weather_server``, ``server-everything``)."""
    words = [os.path.basename(word.rstrip("/")) for word in argv if word]
    program = words[0] if words else "server"
    if re.sub(r"[\d.]+$", "", program) in _LAUNCHERS:
        for word in words[1:]:
            if not word.startswith("-") and word not in ("run", "exec", "x"):
                program = word
                break
    return re.sub(r"\.(py|js|mjs|ts)$", "", program) or "server"

"""Reading a stdio stream as MCP messages without changing it: newline framing with a size bound."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Final, cast

__all__ = ["Framer", "MAX_OBSERVED_MESSAGE", "messages"]

MAX_OBSERVED_MESSAGE: Final = 64 * 1024 * 1024
"""A message longer than this is forwarded as ever but not read for tracing (bounds the proxy's memory)."""


class Framer:
    """Splits a byte stream into newline-delimited messages, for reading only (the bytes go on unchanged)."""

    def __init__(self, on_message: Callable[[bytes, int], None], limit: int = MAX_OBSERVED_MESSAGE) -> None:
        self._on_message = on_message
        self._limit = limit
        self._buffer = bytearray()
        self._skipping = False  # inside a message over the limit: dropped up to its newline

    def feed(self, chunk: bytes, at: int = 0) -> None:
        """Takes the next bytes, whatever their boundaries; calls ``on_message(line, at)`` for each complete
        line (``at``: when the chunk that completed it was read, in ``time_ns``)."""
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline
            if not self._skipping:
                if len(self._buffer) + end - start > self._limit:
                    self._buffer.clear()
                    self._skipping = True
                else:
                    self._buffer += chunk[start:end]
            if newline < 0:
                return
            if self._skipping:
                self._skipping = False
            else:
                line = bytes(self._buffer)
                self._buffer.clear()
                if line.strip():
                    self._on_message(line, at)
            start = newline + 1


def messages(line: bytes) -> Iterator[dict[str, Any]]:
    """The JSON-RPC messages in one line (one object, or a batch); nothing for anything else."""
    try:
        data: object = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep to parse
        return
    items: list[object] = cast(list[object], data) if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict):
            yield cast(dict[str, Any], item)

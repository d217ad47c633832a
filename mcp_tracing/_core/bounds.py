"""Bounds on what a peer gives before it becomes a span name or attribute.

A client or server on the other end chooses method names, tool and prompt names, resource URIs, request ids,
its own name and protocol version; unbounded, one ``tools/call`` whose name is 2 MB became a 4 MB span (name and
``gen_ai.tool.name``). Every such string is cut to a documented length, ending in ``…`` when cut. Attribute
values are also subject to the SDK's own ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` where it is set; span names are
not, so this is their only bound.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CUT_MARK", "NAME_LIMIT", "SHAPE_LIMIT", "URI_LIMIT", "bounded"]

NAME_LIMIT: Final = 256
"""Characters kept of a method, tool, prompt or server name, a protocol version or a request id."""
URI_LIMIT: Final = 2048
"""Characters kept of a resource URI."""
SHAPE_LIMIT: Final = 1024
"""Characters kept of a tool call's argument names (``mcp_tracing.tool.args_shape``)."""
CUT_MARK: Final = "…"
"""The last character of a value that was cut."""


def bounded(value: str, limit: int = NAME_LIMIT) -> str:
    """``value``, or its first ``limit - 1`` characters and ``CUT_MARK``."""
    return value if len(value) <= limit else value[: limit - 1] + CUT_MARK

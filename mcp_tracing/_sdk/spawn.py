"""Every stdio server the SDK spawns in this process gets the trace context and this process's telemetry
settings, not only those spawned through ``mcp_tracing.stdio_client``.

The SDK's ``stdio_client`` (both lines; also behind mcp 2.x's ``Client(StdioServerParameters(...))`` and
fastmcp's stdio transports) builds a child's environment as ``get_default_environment()`` (``HOME LOGNAME PATH
SHELL TERM USER``) with ``StdioServerParameters.env`` over it, at each spawn, in the spawning task. While
``carry_into_spawns`` is on, ``get_default_environment`` also returns ``child_environment()`` (the span current
at spawn, ``OTEL_*``/``MCP_TRACING_*``, the resolved store and hash key), so the caller's ``env`` still wins.

``configure()`` turns it on unless ``MCP_TRACING_SPAWN_ENVIRONMENT`` is ``0``/``false``/``off``; the
instrumentor turns it on while instrumented.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, Final

import wrapt
from opentelemetry.instrumentation.utils import unwrap

from mcp_tracing._core import settings
from mcp_tracing._core.shared_patch import SharedPatch

__all__ = ["SPAWN_ENV", "carry_into_spawns", "spawns_carry_telemetry"]

_logger = logging.getLogger(__name__)

SPAWN_ENV: Final = "MCP_TRACING_SPAWN_ENVIRONMENT"
"""``0``, ``false`` or ``off``: ``configure()`` leaves the SDK's spawns as they are."""


def spawns_carry_telemetry() -> bool:
    """Whether ``configure()`` should turn ``carry_into_spawns`` on (``$MCP_TRACING_SPAWN_ENVIRONMENT``)."""
    return settings.flag(SPAWN_ENV, default=True)


def carry_into_spawns() -> Callable[[], None]:
    """Turns it on (each call counts); returns the call that turns this use off again."""
    global _patch
    module = importlib.import_module("mcp.client.stdio")
    if not callable(getattr(module, "get_default_environment", None)):
        _logger.debug("mcp_tracing: this SDK has no get_default_environment; its spawns are not traced")
        return lambda: None
    if _patch is None:
        _patch = SharedPatch(
            lambda: wrapt.wrap_function_wrapper(module, "get_default_environment", _with_telemetry),
            lambda: unwrap(module, "get_default_environment"),
        )
    return _patch.acquire()


_patch: SharedPatch | None = None


def _with_telemetry(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    environment = wrapped(*args, **kwargs)
    try:
        from mcp_tracing.stdio import child_environment

        return {**environment, **child_environment()}
    except Exception:  # never break a spawn over telemetry
        _logger.warning("mcp_tracing could not add trace context to a spawned server's environment", exc_info=True)
        return environment

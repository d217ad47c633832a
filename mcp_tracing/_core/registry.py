"""Where the core meets the SDK adapter: the SDK line installed, the transports open now, the SDK functions
the instrumentor replaced, and the adapter that installs tracing on SDK objects.

The core and the public API (``client``, ``server``, ``http``, ``stdio``) import this module and never an
adapter; the adapter (``_sdk/adapter.py``, with ``_sdk/v1.py`` and ``_sdk/v2.py``, the only modules that know
an SDK line's internals) imports them and registers itself here when the package is imported. So
dependencies point one way: adapter -> core (``scripts/import_graph.py`` checks it).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mcp_tracing._core.transport import TransportInfo

if TYPE_CHECKING:
    from mcp_tracing._core.client_tracer import ClientTracer
    from mcp_tracing._core.server_tracer import ServerTracer

__all__ = [
    "IS_V2",
    "MCP_MAJOR",
    "MCP_VERSION",
    "ORIGINALS",
    "Adapter",
    "adapter",
    "register_adapter",
    "registered_transport",
    "sdk_original",
    "transport_of",
]

MCP_VERSION = importlib.metadata.version("mcp")
MCP_MAJOR = int(MCP_VERSION.split(".", 1)[0])
IS_V2 = MCP_MAJOR >= 2

# Transport facts learnt where a transport is opened (``stdio_client``, ``streamable_http_client``), found
# again by the session built on its streams. Keyed by id while the transport is open (mcp 2.x's context
# streams cannot be weakly referenced); the entry holds the stream, so an id is never reused meanwhile.
_TRANSPORTS: dict[int, tuple[object, TransportInfo]] = {}


@contextmanager
def registered_transport(streams: object, info: TransportInfo) -> Generator[None, None, None]:
    """Remembers, while open, what is known of the connection behind these transport streams."""
    members: tuple[object, ...] = cast(tuple[object, ...], streams)[:2] if isinstance(streams, tuple) else ()
    for stream in members:
        _TRANSPORTS[id(stream)] = (stream, info)
    try:
        yield
    finally:
        for stream in members:
            _TRANSPORTS.pop(id(stream), None)


def transport_of(*streams: object) -> TransportInfo | None:
    """What ``registered_transport`` remembers of the connection behind one of these streams, if any."""
    for stream in streams:
        entry = _TRANSPORTS.get(id(stream))
        if entry is not None and entry[0] is stream:
            return entry[1]
    return None


ORIGINALS: dict[tuple[str, str], Any] = {}
"""SDK functions ``McpInstrumentor`` replaced by mcp_tracing's drop-ins, by ``(module, name)``."""


def sdk_original(module: str, name: str) -> Any:
    """The SDK's own ``module.name``, even while the instrumentor has put a drop-in in its place."""
    found = ORIGINALS.get((module, name))
    return found if found is not None else getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Adapter:
    """What the core asks of the SDK adapter."""

    install_client: Callable[[object, ClientTracer], None]
    """Makes a client tracer see every message of an SDK client session (``trace_session``)."""
    install_server: Callable[[object, ServerTracer], None]
    """Makes a server tracer see every message an SDK server handles (``instrument_server``)."""
    httpx_instrumentor: Callable[[], Any]
    """OpenTelemetry's instrumentor of the HTTP client library the SDK uses (``httpx2`` for 2.x, ``httpx``)."""
    http_reads_body: bool
    """Whether the HTTP transport reads each POST's JSON body for the message's context (1.x sends no header)."""


_adapter: list[Adapter] = []


def register_adapter(installed: Adapter) -> None:
    """Called once by the adapter module as it is imported."""
    _adapter[:] = [installed]


def adapter() -> Adapter:
    """The registered adapter (the package's ``__init__`` imports it, so it is there once anything is)."""
    if not _adapter:  # pragma: no cover - only if mcp_tracing's own __init__ was bypassed
        raise RuntimeError("mcp_tracing's SDK adapter is not loaded: import mcp_tracing first")
    return _adapter[0]

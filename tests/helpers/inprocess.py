"""In-process servers and sessions over memory streams (the quick tier's building blocks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import ClientSession
from mcp.server.lowlevel import Server
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2

if IS_V2:
    from mcp.server.mcpserver import MCPServer as _HighLevel
else:
    from mcp.server.fastmcp import FastMCP as _HighLevel  # pyright: ignore[reportAttributeAccessIssue]  # mcp 1.x
McpServer: Any = _HighLevel
"""The SDK's high-level server: ``MCPServer`` (mcp 2.x) or ``FastMCP`` (mcp 1.x)."""

__all__ = ["McpServer", "connected", "lowlevel", "make_server", "names", "traced"]


def make_server() -> Any:
    server = McpServer("inproc")

    @server.tool()
    def echo(text: str) -> str:
        with trace.get_tracer("tests").start_as_current_span("echo.inner"):
            return text

    @server.tool()
    def save(record: dict[str, object]) -> dict[str, object]:
        return {"saved": True, "echo": record}

    @server.tool()
    def baggage_report() -> dict[str, str]:
        from opentelemetry import baggage

        return {k: str(v) for k, v in baggage.get_all().items()}

    @server.tool()
    async def slow() -> str:
        """Never answers: only a timeout or a cancellation ends it."""
        await anyio.sleep_forever()
        return "never"

    @server.resource("notes://today")
    def today() -> str:
        return "nothing planned"

    @server.prompt()
    def broken_prompt() -> str:
        raise RuntimeError("prompt failed with s3cr3t")

    return server


def lowlevel(server: Any) -> Any:
    return server if isinstance(server, Server) else getattr(server, "_lowlevel_server" if IS_V2 else "_mcp_server")


@asynccontextmanager
async def connected(server: Any, **session_options: Any) -> AsyncIterator[ClientSession]:
    """A ClientSession talking to ``server.run`` over memory streams (the same JSON-RPC path as stdio)."""
    inner = lowlevel(server)
    client_write, server_read = anyio.create_memory_object_stream[Any](16)
    server_write, client_read = anyio.create_memory_object_stream[Any](16)
    async with anyio.create_task_group() as tg:
        tg.start_soon(inner.run, server_read, server_write, inner.create_initialization_options())
        async with ClientSession(client_read, client_write, **session_options) as session:
            with anyio.fail_after(10):
                yield session
        tg.cancel_scope.cancel()


@asynccontextmanager
async def traced(
    provider: TracerProvider, server: Any = None, session_options: dict[str, Any] | None = None, **server_options: Any
) -> AsyncIterator[ClientSession]:
    """An instrumented in-process server (``make_server()`` by default) and an initialized traced session on
    it, both on ``provider``."""
    server = mcp_tracing.instrument_server(server or make_server(), tracer_provider=provider, **server_options)
    async with connected(server, **(session_options or {})) as session:
        mcp_tracing.trace_session(session, tracer_provider=provider)
        await session.initialize()
        yield session


def names(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> list[tuple[str, str]]:
    return sorted((s.name, s.kind.name) for s in spans if s.instrumentation_scope.name == attr.INSTRUMENTATION_NAME)

"""An MCP server with no tracing code at all, for ``opentelemetry-instrument`` (runs on mcp 1.x and 2.x).

    opentelemetry-instrument --service_name weather python examples/plain_server.py          # stdio
    opentelemetry-instrument --service_name weather python examples/plain_server.py --http   # prints URL ...

With mcp_tracing installed, OpenTelemetry's auto-instrumentation loads ``McpInstrumentor``: every request
gets a SERVER span under the client's span, and ``summarize`` asks the client's model
(``sampling/createMessage``), which the client traces under this server's ``tools/call`` span.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

from mcp.types import SamplingMessage, TextContent

try:
    from mcp.server.mcpserver import Context, MCPServer  # mcp 2.x

    server: Any = MCPServer("weather")
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, FastMCP  # type: ignore[no-redef]

    server = FastMCP("weather")

FORECASTS = {"paris": "rain, 12C", "lisbon": "sun, 21C", "oslo": "snow, -3C"}


@server.tool()
def forecast(city: str) -> str:
    """Tomorrow's weather in a city."""
    return FORECASTS.get(city.lower(), "unknown city")


@server.tool()
async def summarize(city: str, ctx: Context) -> str:  # type: ignore[type-arg]
    """Asks the client's model for a one-line summary of the forecast."""
    result = await ctx.session.create_message(  # type: ignore[call-overload]
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=forecast(city)))],
        max_tokens=32,
        related_request_id=ctx.request_id,
    )
    return str(getattr(result.content, "text", result.content))


async def serve_http() -> None:
    import uvicorn

    make_app = server.streamable_http_app
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"URL http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    await uvicorn.Server(uvicorn.Config(make_app(), log_level="warning")).serve(sockets=[sock])


if __name__ == "__main__":
    if "--http" in sys.argv:
        asyncio.run(serve_http())
    else:
        server.run()

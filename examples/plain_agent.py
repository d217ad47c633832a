"""An MCP client with no tracing code at all, for ``opentelemetry-instrument`` (runs on mcp 1.x and 2.x).

    opentelemetry-instrument python examples/plain_agent.py stdio -- SERVER COMMAND ...
    opentelemetry-instrument python examples/plain_agent.py http URL

Asks for a forecast, then for a summary, which makes the server ask this client's "model" (a canned
sampling callback) in turn. With mcp_tracing installed, all of it is one trace: an ``mcp.client.session``
span, the client's request spans, the server's spans under them, and the sampling request back.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CreateMessageResult


async def answer(context: Any, params: Any) -> CreateMessageResult:
    """The 'model': a canned one-line summary."""
    return CreateMessageResult.model_validate(
        {"role": "assistant", "content": {"type": "text", "text": "pack an umbrella"}, "model": "canned"}
    )


async def ask(read: Any, write: Any) -> None:
    async with ClientSession(read, write, sampling_callback=answer) as session:
        await session.initialize()
        for tool in ("forecast", "summarize"):
            result = await session.call_tool(tool, {"city": "Paris"})
            print(tool, "->", result.content[0].text)  # type: ignore[union-attr]


async def main(argv: list[str]) -> None:
    if argv[0] == "stdio":
        command = argv[argv.index("--") + 1 :]
        async with stdio_client(StdioServerParameters(command=command[0], args=command[1:])) as (read, write):
            await ask(read, write)
    else:
        async with streamable_http_client(argv[1]) as (read, write, *_):
            await ask(read, write)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])

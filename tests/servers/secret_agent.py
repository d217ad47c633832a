"""An agent that hands secrets to MCP servers every way it can, exporting OTLP like everything it starts.

    python secret_agent.py SECRET_ARG SECRET_ENV SECRET_HEADER SECRET_RESULT

It spawns the stdio probe (the secret in its env, in tool arguments, in an exception message) and starts
the HTTP probe (the secret in auth headers, in arguments and in a result), with default mcp_tracing
settings. The test then scans every byte exported over OTLP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.shared._httpx_utils import create_mcp_http_client

import mcp_tracing
from mcp_tracing import agent

HERE = Path(__file__).resolve().parent
SECRET_ARG, SECRET_ENV, SECRET_HEADER, SECRET_RESULT = sys.argv[1:5]


async def main(url: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=[str(HERE / "probe_server.py")], env={"CALLER_TOKEN": SECRET_ENV}
    )
    headers = {"Authorization": f"Bearer {SECRET_HEADER}", "X-Api-Key": SECRET_HEADER, "Cookie": f"s={SECRET_HEADER}"}
    async with agent.session(user_id="u"):
        async with mcp_tracing.stdio_client(params) as (read, write), ClientSession(read, write) as stdio:
            mcp_tracing.trace_session(stdio)
            await stdio.initialize()
            async with agent.tool_call("boom"):
                await stdio.call_tool("boom", {"secret": SECRET_ARG})  # raises with the secret in its message
            await stdio.call_tool("env_report", {})  # its result holds the env secret
            await stdio.call_tool("work", {"n": 1}, meta={"note": SECRET_ARG})
        async with create_mcp_http_client(headers=headers) as client:
            async with mcp_tracing.streamable_http_client(url, http_client=client) as (read, write, *_):
                async with ClientSession(read, write) as http:
                    mcp_tracing.trace_session(http)
                    await http.initialize()
                    await http.call_tool("echo", {"text": SECRET_RESULT, "password": SECRET_ARG})
                    try:
                        await http.call_tool("no_such_tool", {"api_key": SECRET_ARG})
                    except Exception:
                        pass


if __name__ == "__main__":
    mcp_tracing.configure("secret-agent")
    server = subprocess.Popen(
        [sys.executable, str(HERE / "http_probe_server.py")], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().split()[1]
        anyio.run(main, f"http://127.0.0.1:{port}/mcp")
    finally:
        server.terminate()
        server.wait(timeout=30)

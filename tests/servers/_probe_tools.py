"""The tools both probe servers (stdio and HTTP) offer."""

from __future__ import annotations

from typing import Any

from mcp.types import SamplingMessage, TextContent
from opentelemetry import baggage, trace
from pydantic import BaseModel

try:
    from mcp.server.mcpserver import Context  # mcp 2.x
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context  # type: ignore[no-redef,attr-defined]


class Answer(BaseModel):
    answer: str


def add_probe_tools(server: Any) -> None:
    """Registers the probe tools: spans of their own, context reports, and requests back to the client."""
    tracer = trace.get_tracer("tests.probe")

    @server.tool()
    def work(n: int) -> str:
        """Opens a span of its own, so tests can see the tool's work nest under the server span."""
        with tracer.start_as_current_span("probe.work", attributes={"n": n}):
            return f"done {n}"

    @server.tool()
    def echo(text: str, password: str = "") -> str:
        """Returns the text: a result that carries whatever it was given."""
        return text

    @server.tool()
    def context_report() -> dict[str, object]:
        """The span and baggage current inside the tool."""
        ctx = trace.get_current_span().get_span_context()
        return {
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "baggage": {k: str(v) for k, v in baggage.get_all().items()},
        }

    @server.tool()
    async def ask_model(question: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """Asks the client's model (``sampling/createMessage``) and returns its answer."""
        result = await ctx.session.create_message(  # type: ignore[call-overload]
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))],
            max_tokens=16,
            related_request_id=ctx.request_id,
        )
        return str(getattr(result.content, "text", result.content))

    @server.tool()
    async def ask_user(question: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """Asks the user through the client (``elicitation/create``)."""
        result = await ctx.elicit(question, Answer)
        return result.data.answer if result.action == "accept" and result.data else result.action

    @server.tool()
    async def client_roots(ctx: Context) -> list[str]:  # type: ignore[type-arg]
        """The client's roots (``roots/list``)."""
        listed = await ctx.session.list_roots()
        return [str(root.uri) for root in listed.roots]

    @server.tool()
    async def steps(n: int, ctx: Context) -> str:  # type: ignore[type-arg]
        """Reports ``n`` progress steps, then logs a line, then answers."""
        for step in range(1, n + 1):
            await ctx.report_progress(step, n)
        await ctx.info("steps done")
        return f"{n} steps"

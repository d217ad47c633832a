"""The tools both probe servers (stdio and HTTP) offer."""

from __future__ import annotations

from typing import Any

from opentelemetry import baggage, trace


def add_probe_tools(server: Any) -> None:
    """Registers ``work`` (opens a span of its own) and ``context_report`` (the span and baggage it runs in)."""
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

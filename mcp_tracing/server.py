"""Server side: one SERVER span per inbound MCP request and notification, under the caller's span.

Usage::

    from mcp.server.mcpserver import MCPServer        # mcp 2.x (FastMCP on mcp 1.x)
    import mcp_tracing

    server = MCPServer("files")
    mcp_tracing.instrument_server(server)

    @server.tool()
    def read_file(path: str) -> str: ...             # spans opened here nest under "tools/call read_file"

The parent of each server span is chosen in this order:

1. the context in the message's ``params._meta`` (SEP-414), attached whole so its baggage is visible;
2. otherwise the process's session span (``mcp.server.session``), itself a child of the spawner's
   ``TRACEPARENT`` for a stdio server;
3. otherwise the ambient context, which for a fresh process means a new root.

Malformed carriers count as absent and never raise. On mcp 2.x the SDK's ``OpenTelemetryMiddleware`` is
replaced in place (never two SERVER spans); on mcp 1.x, which has no tracing, requests are wrapped
where the SDK dispatches them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from mcp_tracing._core.client_tracer import ClientTracer, tracing_parts
from mcp_tracing._core.policy import Policy, check_policy
from mcp_tracing._core.registry import adapter
from mcp_tracing._core.server_tracer import ServerTracer, TracingServerMiddleware
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing.privacy import Privacy

__all__ = ["TracingServerMiddleware", "build_server_tracer", "instrument_server"]

_S = TypeVar("_S")


def instrument_server(
    server: _S,
    *,
    policy: Policy = "default",
    exclude_methods: Iterable[str] | None = None,
    drop_list_calls: bool | None = None,
    privacy: Privacy | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> _S:
    """Traces every message a server receives and every request it sends, and returns the same server.

    The HTTP apps the server builds afterwards (``streamable_http_app()``, ``sse_app()``, fastmcp's ``http_app()``,
    and so the SDK's ``run("streamable-http")`` and ``run("sse")``) serve through ``TraceContextMiddleware``: an
    HTTP SERVER span per request (or the one another HTTP instrumentation opened, adopted), flushed at SIGTERM.

    Requests the server sends its client from a handler (``sampling/createMessage``, ``elicitation/create``,
    ``roots/list``) and notifications (progress, logging) get a CLIENT span under the handler's span, and
    carry its context in ``_meta``: the client's answer nests under this server's ``tools/call``.

    Args:
        server: a low-level ``mcp.server.lowlevel.Server`` (mcp 1.x or 2.x), an mcp 1.x ``FastMCP`` or an
            mcp 2.x ``MCPServer``. Instrumenting it twice logs a warning and changes nothing.
        policy: how inbound context is trusted: ``default``, ``gateway`` or ``untrusted`` (see
            ``mcp_tracing.asgi.Policy``). Where ``TraceContextMiddleware`` was given one too, the stricter of the
            two holds for the requests it saw (``untrusted`` > ``gateway`` > ``default``).
        exclude_methods: methods (``fnmatch`` patterns) handled without a span; by default
            ``$MCP_TRACING_EXCLUDE_METHODS`` or ``sampling.HOUSEKEEPING``.
        drop_list_calls: no spans for ``*/list`` calls either (default ``$MCP_TRACING_DROP_LIST_CALLS``).
        privacy: what may be recorded beyond the keyed arguments hash (``mcp_tracing.privacy.Privacy``);
            nothing by default.
        tracer_provider: where spans go; the global provider when omitted.
        meter_provider: where ``mcp.server.operation.duration`` and ``mcp.server.session.duration`` go;
            the global provider when omitted.

    Returns:
        ``server`` itself.

    Raises:
        TypeError: ``server`` is not an MCP server this version of mcp_tracing knows.
        ValueError: an unknown ``policy``.
    """
    tracer = build_server_tracer(
        policy=policy,
        exclude_methods=exclude_methods,
        drop_list_calls=drop_list_calls,
        privacy=privacy,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    adapter().install_server(server, tracer)
    return server


def build_server_tracer(
    *,
    policy: Policy = "default",
    exclude_methods: Iterable[str] | None = None,
    drop_list_calls: bool | None = None,
    privacy: Privacy | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    switch: Switch = ALWAYS_ON,
) -> ServerTracer:
    """The tracer of one server, both directions (see ``instrument_server`` for the arguments)."""
    otel_tracer, method_filter, privacy, metrics = tracing_parts(
        exclude_methods, drop_list_calls, privacy, tracer_provider, meter_provider
    )
    outbound = ClientTracer(otel_tracer, filter=method_filter, privacy=privacy, metrics=metrics, switch=switch)
    return ServerTracer(
        otel_tracer,
        tracer_provider,
        policy=check_policy(policy),
        filter=method_filter,
        privacy=privacy,
        metrics=metrics,
        switch=switch,
        outbound=outbound,
    )

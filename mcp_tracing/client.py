"""Client side: one CLIENT span per MCP request and notification, its context in ``params._meta``.

Usage::

    from mcp import ClientSession
    import mcp_tracing

    async with mcp_tracing.stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            mcp_tracing.trace_session(session)
            await session.initialize()
            await session.call_tool("read_file", {"path": "a.txt"})   # span "tools/call read_file"

``trace_session`` works on mcp 1.x ``ClientSession`` and on mcp 2.x ``ClientSession`` and ``Client``
(entered or not). It patches the one object it is given, never a class: other sessions are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, TracerProvider

from mcp_tracing._core.client_tracer import ClientTracer, tracing_parts
from mcp_tracing._core.policy import Policy, check_policy
from mcp_tracing._core.registry import adapter
from mcp_tracing._core.server_tracer import ServerTracer
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing.privacy import Privacy

__all__ = ["build_client_tracer", "trace_session"]

_T = TypeVar("_T")


def build_client_tracer(
    *,
    server_name: str | None = None,
    exclude_methods: Iterable[str] | None = None,
    drop_list_calls: bool | None = None,
    privacy: Privacy | None = None,
    baggage: bool | Iterable[str] = True,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    parent_span: Callable[[], Span | None] | None = None,
    policy: Policy = "default",
    switch: Switch = ALWAYS_ON,
) -> ClientTracer:
    """The tracer of one client session, both directions (see ``trace_session`` for the arguments)."""
    inbound_policy = check_policy(policy)

    tracer, method_filter, privacy, metrics = tracing_parts(
        exclude_methods, drop_list_calls, privacy, tracer_provider, meter_provider
    )
    client_tracer = ClientTracer(
        tracer,
        server_name=server_name,
        filter=method_filter,
        privacy=privacy,
        baggage=baggage if isinstance(baggage, bool) else frozenset(baggage),
        metrics=metrics,
        switch=switch,
        parent_span=parent_span,
        _explicit_server_name=server_name is not None,
    )
    client_tracer.inbound = ServerTracer(
        tracer,
        tracer_provider,
        policy=inbound_policy,
        filter=method_filter,
        privacy=privacy,
        metrics=metrics,
        switch=switch,
        connection=client_tracer.connection_attributes,
    )
    return client_tracer


def trace_session(
    session: _T,
    *,
    server_name: str | None = None,
    exclude_methods: Iterable[str] | None = None,
    drop_list_calls: bool | None = None,
    privacy: Privacy | None = None,
    baggage: bool | Iterable[str] = True,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    parent_span: Callable[[], Span | None] | None = None,
    policy: Policy = "default",
) -> _T:
    """Traces every request and notification a client session sends, and returns the same session.

    Each message gets exactly one CLIENT span named ``{mcp.method.name} {target}`` (target: the tool or
    prompt name), and that span's context travels in ``params._meta`` (SEP-414) through the globally
    configured propagators. On mcp 2.x the SDK's own ``MCP send ...`` span is replaced, not nested.

    The other direction too: each request the server sends this client (``sampling/createMessage``,
    ``elicitation/create``, ``roots/list``) and each notification it sends gets a SERVER span, parented
    to the context in its ``_meta``, so the callback that answers it (an LLM call, say) nests under the
    server's ``tools/call`` span. Progress reports become ``mcp.progress`` events on the span of the
    request they report on.

    Args:
        session: an mcp 1.x ``ClientSession``, an mcp 2.x ``ClientSession`` or ``Client``, or a fastmcp
            ``Client`` (before or after it is entered). A ``Client`` given server parameters or a URL spawns or
            connects carrying the trace context (the child's environment, a ``traceparent`` header per HTTP
            request); a fastmcp ``Client`` entered with no span current opens an ``mcp.client.session`` span
            for the connection. Tracing the same object twice logs a warning and changes nothing.
        server_name: the ``mcp_tracing.server.name`` attribute; by default the ``serverInfo.name`` the
            server gives in its ``initialize`` result.
        exclude_methods: methods (``fnmatch`` patterns) sent without a span of their own; by default
            ``$MCP_TRACING_EXCLUDE_METHODS`` or ``sampling.HOUSEKEEPING`` (``ping``, ``notifications/initialized``,
            ...). Their context still travels.
        drop_list_calls: no spans for ``*/list`` calls either (default ``$MCP_TRACING_DROP_LIST_CALLS``).
        privacy: what may be recorded beyond the keyed arguments hash (``mcp_tracing.privacy.Privacy``);
            nothing by default.
        baggage: which W3C baggage entries this server receives (in ``_meta`` and HTTP headers): all
            (``True``, the default), none (``False``), or only the keys listed.
        tracer_provider: where spans go; the global provider when omitted.
        meter_provider: where ``mcp.client.operation.duration`` goes; the global provider when omitted.
        parent_span: for a framework that keeps its spans out of the OpenTelemetry context (OpenInference's
            LangChain instrumentation): called at each message, and when it returns a valid span, that span is
            the parent of the message's CLIENT span instead of the current one (e.g.
            ``openinference.instrumentation.langchain.get_current_span``, the span of the LangChain tool run
            the call is made from). A failing call is logged and the current context used.
        policy: how this client trusts the context a server sends with its own requests and notifications
            (``sampling/createMessage``, ``elicitation/create``, progress, logs), as ``instrument_server``'s
            ``policy``: ``default`` (the callback's span is a child of the server's), ``gateway`` (the same),
            ``untrusted`` (a new trace with links to what arrived, and the server's baggage dropped, so it is
            never forwarded to another server).

    Returns:
        ``session`` itself, so ``session = trace_session(ClientSession(...))`` reads naturally.

    Raises:
        TypeError: ``session`` is not a client session this version of mcp_tracing knows.
        ValueError: an unknown ``policy``.
    """
    client_tracer = build_client_tracer(
        server_name=server_name,
        exclude_methods=exclude_methods,
        drop_list_calls=drop_list_calls,
        privacy=privacy,
        baggage=baggage,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        parent_span=parent_span,
        policy=policy,
    )
    adapter().install_client(session, client_tracer)
    return session

"""Zero-code instrumentation: ``opentelemetry-instrument python agent.py`` traces MCP with no code change.

``McpInstrumentor`` is registered under the ``opentelemetry_instrumentor`` entry point as ``mcp_tracing``,
so OpenTelemetry's auto-instrumentation loads it; it can also be called by hand::

    from mcp_tracing.instrumentor import McpInstrumentor

    McpInstrumentor().instrument(tracer_provider=provider)   # before the app builds sessions and servers

While instrumented:

* every ``ClientSession`` (mcp 1.x and 2.x, including the one inside a 2.x ``Client``) is traced as by
  ``trace_session``, and every low-level ``Server`` (so every ``FastMCP``/``MCPServer``) as by
  ``instrument_server``: client and server spans both ways, ``_meta`` injected and extracted;
* a spawned stdio server gets ``TRACEPARENT``/``TRACESTATE``/``BAGGAGE`` and this process's ``OTEL_*``
  settings (the SDK's ``get_default_environment`` is extended), and an instrumented stdio server opens its
  session span under the ``TRACEPARENT`` it was started with;
* the SDK's default streamable-HTTP client carries a ``traceparent`` header per message;
* SIGTERM flushes spans and metrics before the process ends as it would have (a server under uvicorn,
  which re-raises SIGTERM after shutting down, would otherwise lose its last spans);
* ``stdio_client`` and ``streamable_http_client`` imported from the SDK *after* ``instrument()`` are
  mcp_tracing's drop-ins, which also record ``network.transport``, ``server.address`` and ``server.port``.
  Entered with no span current (an application with no tracing code of its own), they open an
  ``mcp.client.session`` span for as long as the transport is open, so the session's messages and the
  server's spans form one trace instead of one trace per message.

fastmcp's own spans would double mcp_tracing's: its telemetry is switched off (``telemetry_mode='off'``)
when a fastmcp server or client is traced, unless the application set a mode itself.

``uninstrument()`` restores every function and method it replaced. Sessions and servers created while it
was on keep their wrappers but pass everything through untouched (a 2.x server gets the SDK's own
middleware back), so the process behaves as if it had never been instrumented; ``instrument()`` again
turns them back on. Both calls are idempotent (``BaseInstrumentor``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import AsyncGenerator, Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import wrapt
from opentelemetry import context as otel_context, trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Span, StatusCode, TracerProvider

from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.client_tracer import chosen_parent
from mcp_tracing._core.registry import IS_V2, ORIGINALS
from mcp_tracing._core.switch import Switch
from mcp_tracing._version import __version__

__all__ = ["McpInstrumentor"]

_logger = logging.getLogger(__name__)

_INSTRUMENTS: Final = ("mcp >= 1.24, < 3",)

_SWITCH: Final = Switch(on=False)
"""Shared by everything the instrumentor set up; off while uninstrumented."""


class McpInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """OpenTelemetry instrumentor for the MCP Python SDK (mcp 1.x and 2.x), client and server side.

    ``instrument()`` keyword arguments (all optional):

    * ``tracer_provider``, ``meter_provider``: where spans and metrics go; the global providers by default.
    * ``exclude_methods``, ``drop_list_calls``, ``privacy``: as for ``trace_session``/``instrument_server``
      (by default from ``$MCP_TRACING_EXCLUDE_METHODS``, ``$MCP_TRACING_DROP_LIST_CALLS`` and the
      ``$MCP_TRACING_CAPTURE_*`` variables).
    * ``baggage``: which baggage entries servers receive (``trace_session``); all by default.
    * ``policy``: how servers trust inbound context (``instrument_server``); ``"default"``.
    * ``http_spans``: also an HTTP CLIENT span per streamable-HTTP request (``instrument_http_client``).
    * ``parent_span``: as for ``trace_session``: a callable giving the span MCP calls nest under where a
      framework keeps its spans out of the context (OpenInference's LangChain: its ``get_current_span``).
    """

    def __init__(self) -> None:
        super().__init__()
        self._restore: list[Callable[[], None]] = []
        self._generation = 0

    def instrumentation_dependencies(self) -> Collection[str]:
        """The SDK versions this instrumentation supports."""
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        self._generation += 1
        generation = self._generation

        def patch(_module: object) -> None:
            if generation != self._generation:  # uninstrumented (or instrumented again) before mcp was imported
                return
            try:
                self._patch(kwargs, generation)
            except Exception:
                # An SDK this version does not know must never stop the application from starting.
                _logger.exception("mcp_tracing could not instrument this version of mcp; it runs untraced")
                self._undo()
                _SWITCH.on = False

        _SWITCH.on = True
        # Patched when the application imports mcp (at once if it already has), not here: importing mcp
        # imports Starlette, and an instrumentor of Starlette that `opentelemetry-instrument` loads after this
        # one would then find the SDK already bound to the class it replaces, and trace nothing.
        wrapt.register_post_import_hook(patch, "mcp")

    def _uninstrument(self, **kwargs: Any) -> None:
        from mcp_tracing._sdk.fastmcp import restore_fastmcp

        self._generation += 1
        _SWITCH.on = False
        self._undo()
        restore_fastmcp()

    def _undo(self) -> None:
        while self._restore:
            self._restore.pop()()

    # ------------------------------------------------------------------------------------- patches

    def _patch(self, options: dict[str, Any], generation: int) -> None:
        from mcp.client import streamable_http as sdk_streamable_http
        from mcp.client.session import ClientSession
        from mcp.server.lowlevel import Server

        from mcp_tracing._core.shutdown import flush_at_sigterm
        from mcp_tracing._sdk import adapter
        from mcp_tracing._sdk.spawn import carry_into_spawns
        from mcp_tracing.client import build_client_tracer
        from mcp_tracing.http import instrument_http_client, streamable_http_client
        from mcp_tracing.server import build_server_tracer
        from mcp_tracing.stdio import stdio_client

        tracer_provider = options.get("tracer_provider")
        meter_provider = options.get("meter_provider")
        common: dict[str, Any] = {
            "exclude_methods": options.get("exclude_methods"),
            "drop_list_calls": options.get("drop_list_calls"),
            "privacy": options.get("privacy"),
            "tracer_provider": tracer_provider,
            "meter_provider": meter_provider,
            "switch": _SWITCH,
        }
        parent_span: Any = options.get("parent_span")
        client_options = {**common, "baggage": options.get("baggage", True), "parent_span": parent_span}
        server_options = {**common, "policy": options.get("policy", "default")}
        http_spans = bool(options.get("http_spans", False))

        def traced_session(session: Any) -> None:
            adapter.install_client(session, build_client_tracer(**client_options))

        def traced_server(server: Any) -> None:
            adapter.install_server(server, build_server_tracer(**server_options))

        if IS_V2:  # the SDK's own CLIENT span gives way to ours for traced sessions, until uninstrument()
            from mcp_tracing._sdk.v2 import hold_sdk_client_span_gate

            self._restore.append(hold_sdk_client_span_gate())
        self._after_init(ClientSession, traced_session)
        self._after_init(Server, traced_server)

        def fastmcp_loaded(module: Any) -> None:
            # fastmcp's Client (its own transports, its session in a task of its own), when it is imported.
            if generation != self._generation:
                return
            from mcp_tracing._sdk.fastmcp import wrap_fastmcp_client_class

            try:
                self._restore.append(wrap_fastmcp_client_class())
                self._after_init(module.Client, traced_session)
            except Exception:
                _logger.exception("mcp_tracing could not instrument fastmcp's Client")

        wrapt.register_post_import_hook(fastmcp_loaded, "fastmcp.client.client")

        # The SDK's stdio_client calls get_default_environment at each spawn, in the spawning task: the current
        # span is the child's parent. ``server.env`` is merged over it by the SDK, so the caller's values win.
        self._restore.append(carry_into_spawns())

        def create_mcp_http_client(
            wrapped: Callable[..., Any], _instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            client = wrapped(*args, **kwargs)
            try:
                return instrument_http_client(
                    client, http_spans=http_spans, tracer_provider=tracer_provider, _switch=_SWITCH
                )
            except Exception:
                _logger.exception("mcp_tracing could not instrument the SDK's HTTP client")
                return client

        self._wrap(sdk_streamable_http, "create_mcp_http_client", create_mcp_http_client)

        traced_http_client = functools.partial(
            streamable_http_client, http_spans=http_spans, tracer_provider=tracer_provider, _switch=_SWITCH
        )
        # Spans of a server stopped by SIGTERM (uvicorn re-raises it after its shutdown) are flushed first.
        self._restore.append(flush_at_sigterm(tracer_provider))
        self._replace_everywhere(
            "mcp.client.stdio", "stdio_client", _rooted(stdio_client, tracer_provider, parent_span)
        )
        self._replace_everywhere(
            "mcp.client.streamable_http",
            "streamable_http_client",
            _rooted(traced_http_client, tracer_provider, parent_span),
        )

    def _after_init(self, cls: type[Any], install: Callable[[Any], None]) -> None:
        """Runs ``install(self)`` after every ``cls.__init__`` (never failing the construction)."""

        def __init__(
            wrapped: Callable[..., None], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> None:
            wrapped(*args, **kwargs)
            try:  # a subclass reaches here through super().__init__(); tracing an object twice is a no-op
                install(instance)
            except Exception:
                _logger.exception("mcp_tracing could not instrument %s", type(instance).__name__)

        self._wrap(cls, "__init__", __init__)

    def _wrap(self, owner: object, name: str, wrapper: Callable[..., Any]) -> None:
        """``wrapt``'s wrapper on ``owner.name``, taken off again (``unwrap``) by ``uninstrument()``."""
        wrapt.wrap_function_wrapper(owner, name, wrapper)
        self._restore.append(lambda: unwrap(owner, name))

    def _replace_everywhere(self, home: str, name: str, replacement: Callable[..., Any]) -> None:
        """Calls ``replacement`` instead of the SDK's ``home.name`` wherever that is bound in an imported ``mcp``
        module (its re-exports too), and remembers the original for mcp_tracing's own drop-ins."""
        original = getattr(importlib.import_module(home), name)
        ORIGINALS[(home, name)] = original
        self._restore.append(lambda: ORIGINALS.pop((home, name), None))

        def instead(_wrapped: object, _instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            return replacement(*args, **kwargs)

        for module in _sdk_modules():
            if getattr(module, name, None) is original:
                self._wrap(module, name, instead)


def _rooted(
    open_transport: Callable[..., AbstractAsyncContextManager[Any]],
    tracer_provider: TracerProvider | None,
    parent_span: Callable[[], Span | None] | None = None,
) -> Callable[..., AbstractAsyncContextManager[Any]]:
    """``open_transport``, inside an ``mcp.client.session`` span when it is entered with no span current (under
    the ``parent_span`` option's span when it gives one: a spawned server's own spans then join it too)."""

    @asynccontextmanager
    async def transport(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        chosen = chosen_parent(parent_span) if _SWITCH.active() else None
        if chosen is not None:
            token = otel_context.attach(chosen)
            try:
                async with open_transport(*args, **kwargs) as streams:
                    yield streams
            finally:
                otel_context.detach(token)
            return
        if not _SWITCH.active() or trace.get_current_span().get_span_context().is_valid:
            async with open_transport(*args, **kwargs) as streams:
                yield streams
            return
        tracer = trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, tracer_provider)
        with tracer.start_as_current_span(
            attr.CLIENT_SESSION_SPAN, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                async with open_transport(*args, **kwargs) as streams:
                    yield streams
            except Exception as exc:  # never the exception's text: it may carry arguments or secrets
                span.set_attribute(attr.ERROR_TYPE, _spans.error_type(exc))
                span.set_status(StatusCode.ERROR, type(exc).__qualname__)
                raise

    return transport


def _sdk_modules() -> Iterable[Any]:
    # sys.modules may hold None for a module whose import was blocked.
    modules: list[object] = [m for n, m in list(sys.modules.items()) if n == "mcp" or n.startswith("mcp.")]
    return [m for m in modules if m is not None]

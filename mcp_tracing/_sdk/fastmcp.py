"""fastmcp's ``Client``, traced as the SDK's: ``trace_session(fastmcp.Client(...))`` and zero code.

fastmcp's ``Client`` builds an SDK ``ClientSession`` per connection, inside its transport's ``connect_session``,
which it runs in a task of its own. Traced, a client gets:

* its sessions traced by the ``ClientTracer`` (one CLIENT span per message, ``_meta`` injected);
* while connected, every stdio server it spawns carries the trace context and this process's telemetry
  settings (``_spawn.carry_into_spawns``), and every HTTP request a ``traceparent`` header (its HTTP client,
  made by the transport, goes through ``instrument_http_client``);
* entered with no span current, an ``mcp.client.session`` span from ``async with client`` to its end: the parent
  of the session's messages sent with no span current, and of the spawned server's own session, so they form
  one trace (not one per message). The application's own spans (an agent framework's) are never put under it.

``async with`` looks ``__aenter__`` up on the class, so those two are wrapped on fastmcp's ``Client`` class
(refcounted, undone by the last user) and act only for clients marked as traced.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import wrapt
from opentelemetry import context as otel_context, trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Span, StatusCode

from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.client_tracer import ClientTracer
from mcp_tracing._core.shared_patch import SharedPatch
from mcp_tracing._core.switch import Switch
from mcp_tracing._core.transport import TransportInfo

__all__ = [
    "is_fastmcp_client",
    "quiet_fastmcp",
    "restore_fastmcp",
    "trace_fastmcp_client",
    "wrap_fastmcp_client_class",
]

_logger = logging.getLogger(__name__)

_STATE: Final = "_mcp_tracing_fastmcp_"
_MODULE: Final = "fastmcp.client.client"


@dataclass
class _Traced:
    tracer: ClientTracer
    install_session: Callable[[Any, ClientTracer], None]
    switch: Switch
    depth: int = 0
    root: Span | None = None


def is_fastmcp_client(obj: object) -> bool:
    """Whether ``obj`` is a fastmcp ``Client`` (fastmcp is never imported here)."""
    cls = getattr(sys.modules.get(_MODULE), "Client", None)
    return isinstance(cls, type) and isinstance(obj, cls)


def trace_fastmcp_client(
    client: Any,
    tracer: ClientTracer,
    install_session: Callable[[Any, ClientTracer], None],
    *,
    switch: Switch,
    hold: bool = True,
) -> None:
    """Traces every connection of ``client`` (see the module docstring); a second call changes nothing.

    ``hold``: keep the class wrap for the process's life (a client traced by hand); the instrumentor holds its
    own use instead, released by ``uninstrument()``.
    """
    if getattr(client, _STATE, None) is not None:
        return
    if hold:
        _hold_for_traced_clients()
    state = _Traced(tracer, install_session, switch)
    tracer.fallback_parent = lambda: state.root
    transport = client.transport
    info = _transport_info(transport)
    tracer.use_transport(info)
    if info.transport == attr.TRANSPORT_TCP:
        _instrument_http_factory(transport, info, switch)
    connect = transport.connect_session
    transport.connect_session = _traced_connect(connect, state)
    setattr(client, _STATE, state)
    session = getattr(getattr(client, "_session_state", None), "session", None)
    if session is not None:  # already connected: this session too
        install_session(session, tracer)


def _transport_info(transport: Any) -> TransportInfo:
    url = getattr(transport, "url", None)
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return TransportInfo.for_url(url)
    return TransportInfo(attr.TRANSPORT_PIPE)


def _instrument_http_factory(transport: Any, info: TransportInfo, switch: Switch) -> None:
    """The transport's HTTP client (made at each connection) carries ``traceparent`` on every request."""
    if not hasattr(transport, "httpx_client_factory"):
        return
    from mcp_tracing.http import instrument_http_client

    given: Callable[..., Any] | None = transport.httpx_client_factory
    make_verify: Any = getattr(transport, "_make_verify_factory", None)

    def factory(**kwargs: Any) -> Any:
        client: Any
        if given is not None:
            client = given(**kwargs)
        else:  # as the transport would without a factory: its verify settings, else the SDK's defaults
            kwargs.pop("follow_redirects", None)  # the SDK's client follows redirects already
            verify: Any = make_verify() if callable(make_verify) else None
            client = (verify or _sdk_http_client())(**kwargs)
        try:
            return instrument_http_client(client, _state=info, _switch=switch)
        except Exception:
            _logger.exception("mcp_tracing could not instrument fastmcp's HTTP client")
            return client

    transport.httpx_client_factory = factory


def _sdk_http_client() -> Callable[..., Any]:
    from mcp_tracing._core.registry import sdk_original

    return sdk_original("mcp.shared._httpx_utils", "create_mcp_http_client")


def _traced_connect(
    connect: Callable[..., AbstractAsyncContextManager[Any]], state: _Traced
) -> Callable[..., AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def connect_session(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        if not state.switch.active():
            async with connect(*args, **kwargs) as session:
                yield session
            return
        from mcp_tracing._sdk.spawn import carry_into_spawns

        stop = carry_into_spawns()  # the SDK's stdio spawn, wherever fastmcp imported it from
        try:
            async with connect(*args, **kwargs) as session:
                try:
                    state.install_session(session, state.tracer)
                except Exception:
                    _logger.exception("mcp_tracing could not trace fastmcp's session")
                yield session
        finally:
            stop()

    return connect_session


# ----------------------------------------------------------------------------------------- class wrap

_held = False
_patch: SharedPatch | None = None


def _hold_for_traced_clients() -> None:
    """One use, held for the process's life: a client traced by hand may be entered at any time."""
    global _held
    if not _held:
        wrap_fastmcp_client_class()
        _held = True


def wrap_fastmcp_client_class() -> Callable[[], None]:
    """Wraps ``Client.__aenter__``/``__aexit__`` (each call counts); returns the call that releases this use."""
    global _patch
    module = importlib.import_module(_MODULE)

    def install() -> None:
        wrapt.wrap_function_wrapper(module, "Client.__aenter__", _enter)
        wrapt.wrap_function_wrapper(module, "Client.__aexit__", _exit)

    def uninstall() -> None:
        unwrap(module.Client, "__aenter__")
        unwrap(module.Client, "__aexit__")

    if _patch is None:
        _patch = SharedPatch(install, uninstall)
    return _patch.acquire()


def users() -> int:
    """How many uses hold the class wrap (for tests)."""
    return _patch.users if _patch is not None else 0


async def _enter(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    state: _Traced | None = getattr(instance, _STATE, None)
    if state is None:
        return await wrapped(*args, **kwargs)
    state.depth += 1
    token = None
    if state.depth == 1 and state.switch.active() and not trace.get_current_span().get_span_context().is_valid:
        try:
            state.root = state.tracer.tracer.start_span(attr.CLIENT_SESSION_SPAN)
            # Current only while fastmcp starts its session task (which copies the context: the spawned
            # server's TRACEPARENT, initialize): the application's own spans after it are left alone.
            token = otel_context.attach(trace.set_span_in_context(state.root))
        except Exception:
            _logger.exception("mcp_tracing could not open fastmcp's session span")
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as exc:
        _leave(state, exc)
        raise
    finally:
        if token is not None:
            otel_context.detach(token)


async def _exit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    state: _Traced | None = getattr(instance, _STATE, None)
    if state is None:
        return await wrapped(*args, **kwargs)
    try:
        return await wrapped(*args, **kwargs)
    finally:
        _leave(state, args[1] if len(args) > 1 and isinstance(args[1], BaseException) else None)


def _leave(state: _Traced, exc: BaseException | None) -> None:
    state.depth = max(0, state.depth - 1)
    root = state.root
    if state.depth or root is None:
        return
    state.root = None
    if isinstance(exc, Exception):  # never the exception's text: it may carry arguments or secrets
        root.set_attribute(attr.ERROR_TYPE, _spans.error_type(exc))
        root.set_status(StatusCode.ERROR, type(exc).__qualname__)
    root.end()


_fastmcp_quieted = False


def quiet_fastmcp() -> None:
    """Switches fastmcp's own telemetry off when fastmcp is in use, unless the application chose its mode.

    fastmcp (3/4) opens a CLIENT and a SERVER span of its own per request: beside mcp_tracing's, every
    request would have two of each. Its ``off`` mode also leaves ``_meta`` alone, so mcp_tracing alone
    injects and extracts (``propagation_only`` would re-attach the caller's context inside the server span,
    taking the tool's spans out from under it). A mode set explicitly (``FASTMCP_TELEMETRY_MODE``,
    ``fastmcp.settings.telemetry_mode``) is left as it is, with a warning when it doubles the spans.
    """
    global _fastmcp_quieted
    settings = getattr(sys.modules.get("fastmcp"), "settings", None)
    if settings is None or getattr(settings, "telemetry_mode", None) != "native":
        return
    if "telemetry_mode" in getattr(settings, "model_fields_set", ()):
        if not _fastmcp_quieted:
            _logger.warning(
                "mcp_tracing: fastmcp's own telemetry is on (telemetry_mode='native' was set): each MCP request "
                "gets its spans and mcp_tracing's; set FASTMCP_TELEMETRY_MODE=off to keep one of each"
            )
            _fastmcp_quieted = True
        return
    try:
        settings.telemetry_mode = "off"
        _fastmcp_quieted = True
        _logger.info("mcp_tracing switched fastmcp's own telemetry off (FASTMCP_TELEMETRY_MODE=off)")
    except Exception:
        _logger.exception("mcp_tracing could not switch fastmcp's own telemetry off")


def restore_fastmcp() -> None:
    """Undoes ``quiet_fastmcp`` (``McpInstrumentor().uninstrument()``)."""
    global _fastmcp_quieted
    settings = getattr(sys.modules.get("fastmcp"), "settings", None)
    if _fastmcp_quieted and settings is not None and getattr(settings, "telemetry_mode", None) == "off":
        settings.telemetry_mode = "native"
    _fastmcp_quieted = False

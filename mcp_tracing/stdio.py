"""stdio: trace context and telemetry settings into a spawned server, and the server's session span.

Spawn side. The SDK's ``stdio_client`` gives the child only ``HOME LOGNAME PATH SHELL TERM USER`` plus
``StdioServerParameters.env``. ``mcp_tracing.stdio_client`` (same arguments) adds to a copy of the
parameters:

* ``TRACEPARENT``/``TRACESTATE``/``BAGGAGE`` for the span current at spawn (through the global
  propagators), unless the caller put a ``TRACEPARENT`` in ``env`` explicitly;
* every ``OTEL_*`` variable of this process except ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
  (the child exports where the agent does, under its own name), and every ``MCP_TRACING_*`` variable. A
  ``console`` exporter is left out of ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``: the child's stdout is the
  protocol, and spans printed there would break it (``none`` when nothing else is left).

Whatever the caller put in ``env`` wins over forwarded values.

Child side. An instrumented server (``instrument_server``) opens an ``mcp.server.session`` span when it
starts serving, as a child of the ``TRACEPARENT`` it was spawned with; messages that carry no ``_meta``
context are parented to it. The span ends when serving ends (stdin EOF) and spans are flushed then, at
normal exit (the SDK's own shutdown) and on SIGTERM.

Usage::

    params = StdioServerParameters(command="python", args=["server.py"])
    async with mcp_tracing.stdio_client(params) as (read, write):
        ...
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, Final, TextIO, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, TracerProvider

from . import _attributes as attr
from ._transport import TransportInfo
from .propagation import extract_env, inject_env

__all__ = [
    "EXPORTER_VARIABLES",
    "FORWARD_PREFIXES",
    "NOT_FORWARDED",
    "child_environment",
    "stdio_client",
    "traced_parameters",
]

_logger = logging.getLogger(__name__)

FORWARD_PREFIXES: Final = ("OTEL_", "MCP_TRACING_")
"""Variables of this process whose names start with these are copied into a spawned server's env."""

NOT_FORWARDED: Final = frozenset({"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"})
"""Never copied: the child names itself. Pass them in ``StdioServerParameters.env`` to set them."""

EXPORTER_VARIABLES: Final = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")
"""Forwarded without ``console``: a stdio server's stdout is the protocol, and console exporters write there."""

_P = TypeVar("_P")


def child_environment(
    env: Mapping[str, str] | None = None,
    *,
    parent_env: Mapping[str, str] | None = None,
    context: Context | None = None,
) -> dict[str, str]:
    """The ``env`` to give a spawned stdio server.

    Args:
        env: what the caller asked for (``StdioServerParameters.env``); it wins over forwarded values.
        parent_env: the variables to forward from; ``os.environ`` when omitted.
        context: the trace context to carry; the current one when omitted.

    Returns:
        A new dict: forwarded ``OTEL_*``/``MCP_TRACING_*`` variables, then ``env``, then the trace context
        (kept as given when ``env`` already has a ``TRACEPARENT``).
    """
    source = os.environ if parent_env is None else parent_env
    propagated = {"TRACEPARENT", "TRACESTATE", "BAGGAGE"}
    out = {
        key: value
        for key, value in source.items()
        if key.startswith(FORWARD_PREFIXES) and key not in NOT_FORWARDED and key not in propagated
    }
    for key in EXPORTER_VARIABLES:
        if key in out:
            kept = [name.strip() for name in out[key].split(",") if name.strip() and name.strip() != "console"]
            out[key] = ",".join(kept) or "none"
    out.update(env or {})
    try:
        inject_env(out, context=context, keep_existing=True)
        from .sampling import KEEP_TRACE_ENV, is_kept

        trace_id = trace.get_current_span(context).get_span_context().trace_id
        if trace_id and is_kept(trace_id):
            out[KEEP_TRACE_ENV] = format(trace_id, "032x")
        elif KEEP_TRACE_ENV not in (env or {}):
            out.pop(KEEP_TRACE_ENV, None)  # forwarded from our own spawner, but about another trace
    except Exception:
        _logger.exception("mcp_tracing could not put trace context into the child's environment")
    return out


def traced_parameters(server: _P, *, context: Context | None = None) -> _P:
    """A copy of ``StdioServerParameters`` whose ``env`` is ``child_environment(server.env)``."""
    env: Mapping[str, str] | None = getattr(server, "env", None)
    return server.model_copy(update={"env": child_environment(env, context=context)})  # type: ignore[attr-defined]


@asynccontextmanager
async def stdio_client(
    server: Any, errlog: TextIO = sys.stderr, *, server_name: str | None = None
) -> AsyncGenerator[Any, None]:
    """Drop-in for the SDK's ``stdio_client``: spawns the server with trace context and OTel settings.

    Args:
        server: ``StdioServerParameters``; not modified (a copy is spawned).
        errlog: where the child's stderr goes, as in the SDK.
        server_name: the ``mcp_tracing.server.name`` of sessions on this transport (by default the name the
            server gives in ``initialize``); ``trace_session(server_name=)`` wins over it.

    Yields:
        Exactly what the SDK's ``stdio_client`` yields (``(read, write)``). Sessions built on these
        streams and passed to ``trace_session`` record ``network.transport=pipe``.
    """
    from ._compat import registered_transport, sdk_original
    from .metrics import measured_session

    sdk_stdio_client = sdk_original("mcp.client.stdio", "stdio_client")
    info = TransportInfo(attr.TRANSPORT_PIPE, server_name=server_name)
    with measured_session(info):
        async with sdk_stdio_client(traced_parameters(server), errlog) as streams:
            with registered_transport(streams, info):
                yield streams


# ------------------------------------------------------------------------------------- child side


_open_sessions: list[tuple[Span, TracerProvider | None]] = []
_lock = threading.Lock()
_previous_sigterm: Any = None


def start_session_span(tracer: trace.Tracer, tracer_provider: TracerProvider | None) -> Span:
    """Opens the process's ``mcp.server.session`` span under the spawner's ``TRACEPARENT`` (or ambient)."""
    span = tracer.start_span(attr.SERVER_SESSION_SPAN, context=extract_env(), kind=SpanKind.INTERNAL)
    with _lock:
        _open_sessions.append((span, tracer_provider))
    _install_sigterm_handler()
    return span


def end_session_span(span: Span, tracer_provider: TracerProvider | None) -> None:
    """Ends a session span and flushes, so the spans of a finished server are exported before it exits."""
    with _lock:
        if (span, tracer_provider) not in _open_sessions:
            return
        _open_sessions.remove((span, tracer_provider))
    span.end()
    flush(tracer_provider)


def flush(tracer_provider: TracerProvider | None, timeout_millis: int = 5000) -> None:
    """Flushes the provider's span processors (the global provider when ``None``); never raises."""
    provider = tracer_provider or trace.get_tracer_provider()
    force_flush: Callable[[int], object] | None = getattr(provider, "force_flush", None)
    if force_flush is None:
        return
    try:
        force_flush(timeout_millis)
    except Exception:
        _logger.exception("mcp_tracing could not flush spans")


_flushed_at_sigterm: list[TracerProvider | None] = []


def flush_at_sigterm(tracer_provider: TracerProvider | None) -> Callable[[], None]:
    """Flushes ``tracer_provider`` (the global one when ``None``) and the global meter provider when SIGTERM
    ends the process, then lets SIGTERM do what it did before. Returns the call that stops it.

    A server under uvicorn needs it: uvicorn shuts down on SIGTERM and then raises SIGTERM again, so the
    process dies of the signal and OpenTelemetry's exit-time flush never runs.
    """
    with _lock:
        _flushed_at_sigterm.append(tracer_provider)
    _install_sigterm_handler()

    def stop() -> None:
        with _lock:
            if tracer_provider in _flushed_at_sigterm:
                _flushed_at_sigterm.remove(tracer_provider)

    return stop


def flush_meters() -> None:
    """Flushes the global meter provider (if it can be flushed); never raises."""
    from opentelemetry import metrics

    force_flush: Callable[..., object] | None = getattr(metrics.get_meter_provider(), "force_flush", None)
    if force_flush is None:
        return
    try:
        force_flush(5000)
    except Exception:
        _logger.exception("mcp_tracing could not flush metrics")


def _install_sigterm_handler() -> None:
    global _previous_sigterm
    if _previous_sigterm is not None or threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        # An application that ignores SIGTERM keeps doing so; one with its own handler gets it called after
        # ours (chained), and a default SIGTERM still kills the process, after the flush.
        if current is signal.SIG_IGN or current is None:
            return
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - no signals on this platform/thread
        _logger.debug("cannot install a SIGTERM handler", exc_info=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # End and flush what is open, then do what SIGTERM did before: the previous handler, or dying of it
    # (same exit status as untraced).
    with _lock:
        pending = list(_open_sessions)
        providers = list(_flushed_at_sigterm)
    for span, provider in pending:
        end_session_span(span, provider)
    for provider in providers:
        flush(provider)
    if providers:
        flush_meters()
    previous = _previous_sigterm
    signal.signal(signal.SIGTERM, previous if callable(previous) else signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    else:
        os.kill(os.getpid(), signal.SIGTERM)

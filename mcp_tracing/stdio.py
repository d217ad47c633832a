"""stdio: trace context and telemetry settings into a spawned server, and the server's session span.

Spawn side. The SDK's ``stdio_client`` gives the child only ``HOME LOGNAME PATH SHELL TERM USER`` plus
``StdioServerParameters.env``. ``mcp_tracing.stdio_client`` (same arguments) adds to a copy of the
parameters:

* ``TRACEPARENT``/``TRACESTATE``/``BAGGAGE`` for the span current at spawn (through the global
  propagators), unless the caller put a ``TRACEPARENT`` in ``env`` explicitly;
* every ``OTEL_*`` variable of this process except ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``
  (the child exports where the agent does, under its own name), and every ``MCP_TRACING_*`` variable. A
  ``console`` exporter is left out of ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``: the child's stdout is the
  protocol, and spans printed there would break it (``none`` when nothing else is left);
* what this process resolved rather than what it resolved it from: the absolute path of its store
  (``MCP_TRACING_STORE``) and of its arguments-hash key (``MCP_TRACING_HASH_KEY_FILE``), so a child with
  another ``HOME``, ``XDG_DATA_HOME`` or working directory still writes into the same store.

Whatever the caller put in ``env`` wins over forwarded values.

At close the SDK closes the server's stdin, waits 2 s, then sends SIGTERM (then SIGKILL 2 s later).
``stdio_client`` waits up to ``exit_grace`` seconds in all (default ``DEFAULT_GRACE_S``, or
``$MCP_TRACING_STDIO_GRACE``) before that SIGTERM, so a server whose exporter is slow still delivers its
last spans; a server that exits at once is not waited for.

Child side. An instrumented server (``instrument_server``) opens an ``mcp.server.session`` span when it
starts serving, as a child of the ``TRACEPARENT`` it was spawned with; messages that carry no ``_meta``
context are parented to it. The span ends when serving ends (stdin EOF) and spans are flushed first thing
then, at exit and on SIGTERM, each wait bounded by ``MCP_TRACING_SHUTDOWN_TIMEOUT`` (``mcp_tracing._core.shutdown``).

Usage::

    params = StdioServerParameters(command="python", args=["server.py"])
    async with mcp_tracing.stdio_client(params) as (read, write):
        ...
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Final, TextIO, TypeVar

import anyio
import wrapt
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import unwrap

from mcp_tracing._core import attributes as attr, settings
from mcp_tracing._core.commands import command_name
from mcp_tracing._core.environment import EXPORTER_VARIABLES, FORWARD_PREFIXES, NOT_FORWARDED, telemetry_environment
from mcp_tracing._core.registry import registered_transport, sdk_original
from mcp_tracing._core.stderr_logs import stderr_lines
from mcp_tracing._core.transport import TransportInfo
from mcp_tracing.metrics import measured_session
from mcp_tracing.propagation import inject_env

__all__ = [
    "DEFAULT_GRACE_S",
    "EXPORTER_VARIABLES",
    "FORWARD_PREFIXES",
    "GRACE_ENV",
    "NOT_FORWARDED",
    "child_environment",
    "exit_grace_s",
    "stdio_client",
    "traced_parameters",
]

_logger = logging.getLogger(__name__)

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
        A new dict: the telemetry settings (``OTEL_*``/``MCP_TRACING_*``, the absolute store and hash-key
        paths; ``mcp_tracing._core.environment``), then ``env``, then the trace context (kept as given when ``env``
        already has a ``TRACEPARENT``).
    """
    out = telemetry_environment(parent_env)
    out.update(env or {})
    try:
        inject_env(out, context=context, keep_existing=True)
        from mcp_tracing.sampling import KEEP_TRACE_ENV, is_kept

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
    server: Any, errlog: TextIO = sys.stderr, *, server_name: str | None = None, exit_grace: float | None = None
) -> AsyncGenerator[Any, None]:
    """Drop-in for the SDK's ``stdio_client``: spawns the server with trace context and OTel settings.

    Args:
        server: ``StdioServerParameters``; not modified (a copy is spawned).
        errlog: where the child's stderr goes, as in the SDK. With ``MCP_TRACING_STDERR_LOGS=on`` and logs
            recorded (``configure()``), each line is also a log record under the span current here
            (``mcp_tracing._core.stderr_logs``).
        server_name: the ``mcp_tracing.server.name`` of sessions on this transport (by default the name the
            server gives in ``initialize``); ``trace_session(server_name=)`` wins over it.
        exit_grace: seconds the server may take to exit after its stdin closes, before the SDK's SIGTERM
            (at least the SDK's own 2 s); ``$MCP_TRACING_STDIO_GRACE``, else ``DEFAULT_GRACE_S``.

    Yields:
        Exactly what the SDK's ``stdio_client`` yields (``(read, write)``). Sessions built on these
        streams and passed to ``trace_session`` record ``network.transport=pipe``.

    Raises:
        ValueError: a negative or non-finite ``exit_grace``; otherwise what the SDK raises.
    """
    grace = exit_grace_s(exit_grace)
    sdk_stdio_client = sdk_original("mcp.client.stdio", "stdio_client")
    info = TransportInfo(attr.TRANSPORT_PIPE, server_name=server_name)
    name = server_name or command_name([str(server.command), *map(str, server.args or [])])
    lines = stderr_lines(errlog, name)
    try:
        with measured_session(info), _patient_termination(grace):
            async with sdk_stdio_client(traced_parameters(server), lines.child_end if lines else errlog) as streams:
                if lines is not None:
                    lines.spawned()
                with registered_transport(streams, info):
                    yield streams
    finally:
        if lines is not None:
            lines.spawned()  # (again, harmless) a spawn that failed never took it
            await anyio.to_thread.run_sync(lines.wait, 1.0)  # the last lines, written as the server exited


# ------------------------------------------------------------------------------------------ exit grace

GRACE_ENV: Final = "MCP_TRACING_STDIO_GRACE"
DEFAULT_GRACE_S: Final = 5.0
"""Seconds a spawned server may take to exit on its own after its stdin closes, before the SDK's SIGTERM (the
SDK alone allows 2). Measured with a server exporting to an endpoint that answers after 1.5 s, under CPU load:
see README."""

_grace: ContextVar[float | None] = ContextVar("mcp_tracing_stdio_grace", default=None)
_grace_users = 0
_grace_lock = threading.Lock()


def exit_grace_s(value: float | None = None) -> float:
    """``value``, else ``$MCP_TRACING_STDIO_GRACE``, else ``DEFAULT_GRACE_S`` (seconds).

    Raises:
        ValueError: a ``value`` that is negative or not finite (a bad variable is logged and ignored).
    """
    if value is not None:
        if not 0 <= value < float("inf"):
            raise ValueError(f"exit_grace must be a number of seconds from 0 up; got {value!r}")
        return float(value)
    return settings.number(
        GRACE_ENV, DEFAULT_GRACE_S, parse=float, valid=lambda s: s >= 0, expected="a number of seconds from 0 up"
    )


@contextmanager
def _patient_termination(grace: float) -> Generator[None, None, None]:
    """While open, the SDK's stdio transport gives a server spawned in this context ``grace`` seconds in all to
    exit after its stdin closes, before it terminates it.

    The SDK closes stdin, waits ``PROCESS_TERMINATION_TIMEOUT`` (2 s), then calls its private
    ``_terminate_process_tree`` (SIGTERM, then SIGKILL). While any of our transports is open that function is
    wrapped: for a server spawned by one of them (the context variable says so) it first waits out the rest of
    the grace, and does nothing more if the server exits in it (as if the SDK had waited that long). Other
    spawns are not touched, and the wrapper is removed when the last of our transports closes. An SDK without
    that function keeps its own timing.
    """
    global _grace_users
    module = sys.modules.get("mcp.client.stdio")
    if module is None or not callable(getattr(module, "_terminate_process_tree", None)):
        _logger.debug("mcp_tracing: this SDK has no _terminate_process_tree; its own exit timing applies")
        yield
        return
    with _grace_lock:
        if _grace_users == 0:
            wrapt.wrap_function_wrapper(module, "_terminate_process_tree", _wait_then_terminate)
        _grace_users += 1
    token = _grace.set(grace)
    try:
        yield
    finally:
        _grace.reset(token)
        with _grace_lock:
            _grace_users -= 1
            if _grace_users == 0:
                unwrap(module, "_terminate_process_tree")


async def _wait_then_terminate(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    grace = _grace.get()
    process = args[0] if args else kwargs.get("process")
    waited = float(getattr(sys.modules.get("mcp.client.stdio"), "PROCESS_TERMINATION_TIMEOUT", 2.0))
    if grace is not None and process is not None and grace > waited:
        with anyio.move_on_after(grace - waited):
            # Polled as the SDK polls: process.wait() would also wait for a grandchild holding the pipes.
            while getattr(process, "returncode", 0) is None:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        if getattr(process, "returncode", None) is not None:
            return None
    return await wrapped(*args, **kwargs)

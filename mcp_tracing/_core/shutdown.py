"""Flushing and shutting down without stalling the process: every wait on an exporter is bounded.

The OpenTelemetry SDK's ``force_flush`` exports in the calling thread and does not honour its timeout (SDK
1.45), and its providers' exit handlers wait up to 30 s per processor, so an unreachable OTLP endpoint could
hold a process for a minute at exit. mcp_tracing runs each flush or shutdown in a daemon thread and waits for
it at most ``MCP_TRACING_SHUTDOWN_TIMEOUT`` seconds (default ``DEFAULT_SHUTDOWN_TIMEOUT_S``): what is not
exported by then is given up, with one warning, and the process goes on (or exits) as it would untraced.

Where mcp_tracing flushes:

* when a stdio server's input ends (its ``mcp.server.session`` span ends): before the spawner's grace runs out;
* on SIGTERM, for every process that called ``configure()``, ``instrument_server()``, built a
  ``TraceContextMiddleware`` or runs under the instrumentor: SIGTERM then does what it did before (the
  application's handler, or the default: the process dies of it, with the same status);
* when an ASGI app's lifespan shuts down (``TraceContextMiddleware``);
* at exit, for the providers ``configure()`` installed.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Final

from opentelemetry import _logs, metrics, trace
from opentelemetry.trace import TracerProvider

from mcp_tracing._core import settings

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "SHUTDOWN_TIMEOUT_ENV",
    "flush",
    "flush_at_sigterm",
    "before_sigterm",
    "run_bounded",
    "serving_http",
    "shutdown_at_exit",
    "shutdown_timeout",
]

_logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_ENV: Final = "MCP_TRACING_SHUTDOWN_TIMEOUT"
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0
"""Seconds: long enough for a slow endpoint (1.5 s a request) under CPU load, measured; see README."""


def shutdown_timeout() -> float:
    """``$MCP_TRACING_SHUTDOWN_TIMEOUT`` in seconds (a positive number), else the default."""
    return settings.number(
        SHUTDOWN_TIMEOUT_ENV, DEFAULT_SHUTDOWN_TIMEOUT_S, parse=float, expected="a positive number of seconds"
    )


class _Helpers:
    """Daemon threads that run flushes for callers that will not wait for them for ever.

    Threads are started ahead of need and kept idle (``prepare``), because Python 3.12 and later refuse to
    start a thread from an exit handler; when every helper is busy (a flush stuck on a dead endpoint) another
    is started, or, when none can be, the job runs in the caller's thread. The lock is re-entrant: a SIGTERM
    handler may run on the main thread while it is inside ``submit``.
    """

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child (gunicorn's workers) has none of the threads
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.RLock()
        self._idle = 0
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def prepare(self, count: int = 1) -> None:
        with self._lock:
            while self._idle < count:
                if not self._start():
                    return

    def _start(self) -> bool:
        try:
            threading.Thread(target=self._serve, name="mcp_tracing-flush", daemon=True).start()
        except RuntimeError:  # interpreter shutdown (3.12+)
            return False
        self._idle += 1
        return True

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and not self._start():
                job()
                return
            self._idle -= 1
            self._jobs.put(job)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                with self._lock:
                    self._idle += 1


_helpers = _Helpers()


def run_bounded(jobs: Sequence[tuple[str, Callable[[], object]]], timeout: float | None = None) -> list[str]:
    """Runs the jobs at once, each in a helper thread, and waits for them together at most ``timeout`` seconds
    (``shutdown_timeout()`` when omitted). A job that raises is logged.

    Returns:
        The names of the jobs still running when the wait ended (they go on in the background).
    """
    limit = shutdown_timeout() if timeout is None else timeout
    pending: list[tuple[str, threading.Event]] = []
    for name, call in jobs:
        done = threading.Event()
        pending.append((name, done))

        def job(name: str = name, done: threading.Event = done, call: Callable[[], object] = call) -> None:
            try:
                call()
            except Exception:
                _logger.warning("mcp_tracing: %s failed", name, exc_info=True)
            finally:
                done.set()

        _helpers.submit(job)
    deadline = time.monotonic() + limit
    late: list[str] = []
    for name, done in pending:
        if not done.wait(max(0.0, deadline - time.monotonic())):
            late.append(name)
    return late


def flush(*tracer_providers: TracerProvider | None, timeout: float | None = None) -> bool:
    """Exports what the tracer providers (the global one when none is given, or for ``None``) and the global
    meter and logger providers hold, all at once, waiting at most ``timeout`` seconds (``shutdown_timeout()``);
    never raises.

    Returns:
        Whether everything was flushed in time.
    """
    seen: list[object] = []
    for provider in tracer_providers or (None,):
        resolved = provider or trace.get_tracer_provider()
        if all(resolved is not other for other in seen):
            seen.append(resolved)
    jobs: list[tuple[str, Callable[[], object]]] = []
    others = [("metrics", metrics.get_meter_provider()), ("logs", _logs.get_logger_provider())]
    for what, provider in [*(("spans", p) for p in seen), *others]:
        force_flush: Callable[[], object] | None = getattr(provider, "force_flush", None)
        if force_flush is not None:
            jobs.append((f"flushing {what}", force_flush))
    limit = shutdown_timeout() if timeout is None else timeout
    late = run_bounded(jobs, limit)
    for name in late:
        settings.warn_once(
            _logger,
            f"late:{name}",
            "mcp_tracing: %s took longer than %.1f s (a slow or unreachable endpoint?); not waiting for it",
            name,
            limit,
        )
    return not late


# ------------------------------------------------------------------------------------------------ exit


def shutdown_at_exit(
    tracer_provider: Any, meter_provider: Any | None = None, logger_provider: Any | None = None
) -> None:
    """Shuts the providers down at exit, waiting at most ``shutdown_timeout()`` (they must have been made with
    ``shutdown_on_exit=False``, whose unbounded exit handlers this replaces)."""
    _helpers.prepare(3)

    def shutdown() -> None:
        jobs: list[tuple[str, Callable[[], object]]] = [("exporting spans at exit", tracer_provider.shutdown)]
        if meter_provider is not None:
            jobs.append(("exporting metrics at exit", meter_provider.shutdown))
        if logger_provider is not None:
            # The store's log exporter writes through the span exporter's connection: a write after the spans'
            # shutdown closed it opens it again, so the two may end in either order.
            jobs.append(("exporting logs at exit", logger_provider.shutdown))
        late = run_bounded(jobs)
        for name in late:
            _logger.warning(
                "mcp_tracing: %s took longer than %.1f s (a slow or unreachable endpoint?); exiting without it "
                "(%s sets the wait)",
                name,
                shutdown_timeout(),
                SHUTDOWN_TIMEOUT_ENV,
            )

    atexit.register(shutdown)


# --------------------------------------------------------------------------------------------- SIGTERM


_lock = threading.RLock()
_at_sigterm: list[Callable[[], None]] = []
_flushed_at_sigterm: Counter[TracerProvider | None] = Counter()
"""The providers to flush at SIGTERM, each with how many users asked (every server, middleware, configure())."""
_previous_sigterm: Any = None


def flush_at_sigterm(tracer_provider: TracerProvider | None = None) -> Callable[[], None]:
    """Flushes ``tracer_provider`` (the global one when ``None``) and the global meter provider when SIGTERM
    ends the process, then lets SIGTERM do what it did before. Returns the call that stops it.

    A server under uvicorn needs it: uvicorn shuts down on SIGTERM and then raises SIGTERM again, so the
    process dies of the signal and exit handlers never run. Installed from the main thread only (Python
    delivers signals there); an application that ignores SIGTERM keeps ignoring it.
    """
    with _lock:
        _flushed_at_sigterm[tracer_provider] += 1
    _helpers.prepare(2)
    _install_sigterm_handler()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        with _lock:
            if not stopped and _flushed_at_sigterm[tracer_provider] > 0:
                stopped = True
                _flushed_at_sigterm[tracer_provider] -= 1
                if _flushed_at_sigterm[tracer_provider] == 0:
                    del _flushed_at_sigterm[tracer_provider]
            idle = not _flushed_at_sigterm and not _at_sigterm
        if idle:
            _remove_sigterm_handler()

    return stop


def before_sigterm(action: Callable[[], None]) -> None:
    """Runs ``action`` first when SIGTERM arrives (once, however often it is given): a stdio server's open
    session spans end there, before the flush.

    Called when a stdio server starts serving, after the application has set up its signal handling: a
    handler the application installed since mcp_tracing's is chained to (it runs after the flush).
    """
    with _lock:
        if action not in _at_sigterm:
            _at_sigterm.append(action)
    _helpers.prepare(2)
    _install_sigterm_handler(chain_to_current=True)


def _install_sigterm_handler(*, chain_to_current: bool = False) -> None:
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm or (_previous_sigterm is not None and not chain_to_current):
            return
        if _is_serving(current):
            return  # uvicorn's handler while it serves: it puts back the one it replaced (ours) afterwards
        # An application that ignores SIGTERM keeps doing so; one with its own handler gets it called after
        # ours (chained), and a default SIGTERM still kills the process, after the flush.
        if current is signal.SIG_IGN or current is None:
            return
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - no signals on this platform/thread
        _logger.debug("cannot install a SIGTERM handler", exc_info=True)


def _remove_sigterm_handler() -> None:
    """Puts back the handler ours replaced, when ours is still the one installed and nothing needs it (the last
    ``flush_at_sigterm`` stopped: ``McpInstrumentor().uninstrument()`` leaves SIGTERM as it found it)."""
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread() or _previous_sigterm is None:
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, _previous_sigterm)
            _previous_sigterm = None
    except (ValueError, OSError):  # pragma: no cover - no signals on this platform/thread
        _logger.debug("cannot restore the SIGTERM handler", exc_info=True)


def serving_http() -> bool:
    """Whether uvicorn is serving in this process (its SIGTERM handler is in place while it does)."""
    try:
        return _is_serving(signal.getsignal(signal.SIGTERM))
    except (ValueError, OSError):  # pragma: no cover - no signals on this platform
        return False


def _is_serving(handler: object) -> bool:
    """A server's handler for the time it serves (uvicorn's ``Server.handle_exit``): it restores the handler it
    replaced when it stops, then raises the signal again. Chaining to it would call it a second time then."""
    return hasattr(getattr(handler, "__self__", None), "should_exit")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # End what is open and flush, then do what SIGTERM did before: the previous handler, or dying of it (same
    # exit status as untraced).
    with _lock:
        actions = list(_at_sigterm)
        providers = list(_flushed_at_sigterm)  # each once, however many asked
    for action in actions:
        try:
            action()
        except Exception:
            _logger.warning("mcp_tracing: could not end the open spans at SIGTERM", exc_info=True)
    flush(*providers)
    previous = _previous_sigterm
    signal.signal(signal.SIGTERM, previous if callable(previous) else signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    else:
        os.kill(os.getpid(), signal.SIGTERM)

"""A spawned server's stderr, line by line, as log records, still passed through unchanged.

``stdio_client`` and ``mcp-tracing wrap`` give the child a pipe for its stderr instead of their own. A thread
copies every chunk to where stderr went before (the caller's ``errlog``), as it arrives and byte for byte, and
makes each complete line a log record under a context (the span current at the spawn, or the proxy's session
span), with the server's name as the logger and ``mcp_tracing.log.source=stderr``. A line longer than
``LINE_LIMIT`` bytes is recorded in pieces of that size; text is decoded as UTF-8 with replacements.

Only where asked (``MCP_TRACING_STDERR_LOGS=on``) and an SDK ``LoggerProvider`` is installed (``configure()``
installs one unless ``MCP_TRACING_LOGS=off``): otherwise the child gets the stderr it always had. Off by default
because a server's stderr carries what its SDK prints of a failing call, argument values and exception text
included, which the privacy defaults keep out of every span and log record. The thread
ends when the last holder of the pipe (the child, and any process it started with the same stderr) exits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import IO, Any, Final

from opentelemetry import _logs, context as otel_context, trace
from opentelemetry._logs import LogRecord
from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider

from mcp_tracing._core import settings

__all__ = ["LINE_LIMIT", "STDERR_LOGS_ENV", "StderrLines", "stderr_lines"]

STDERR_LOGS_ENV: Final = "MCP_TRACING_STDERR_LOGS"
LINE_LIMIT: Final = 8192
_logger = logging.getLogger(__name__)


def stderr_lines(errlog: Any, name: str, context: Context | None = None) -> StderrLines | None:
    """A ``StderrLines`` for a child about to be spawned, or ``None`` where its stderr is left as it was (not asked
    for with ``MCP_TRACING_STDERR_LOGS=on``, no SDK logger provider, or no sampled span in ``context``)."""
    provider = _logs.get_logger_provider()
    if not settings.flag(STDERR_LOGS_ENV) or not isinstance(provider, LoggerProvider):
        return None
    span_context = trace.get_current_span(context).get_span_context()
    if not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    try:
        return StderrLines(errlog, provider, name, context)
    except OSError:
        _logger.debug("mcp_tracing: no pipe for a child's stderr; it goes where it did", exc_info=True)
        return None


class StderrLines:
    """The pipe a child writes its stderr into, and the thread that passes it on and records its lines.

    Args:
        errlog: where the bytes go on (a binary or text stream; ``None``: nowhere).
        provider: the logger provider the records go through.
        name: the server's name, the records' logger.
        context: the context the records are written in (the current one when ``None``).
    """

    def __init__(self, errlog: Any, provider: LoggerProvider, name: str, context: Context | None) -> None:
        read_fd, write_fd = os.pipe()
        self.child_end: IO[bytes] = os.fdopen(write_fd, "wb", buffering=0)
        """Give this to the spawner as the child's stderr; call ``spawned()`` once the child has it."""
        self._read_fd = read_fd
        self._errlog = errlog
        self._logger = provider.get_logger(name)
        self._name = name
        self._context = context if context is not None else otel_context.get_current()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="mcp_tracing-stderr", daemon=True)
        self._thread.start()

    def spawned(self) -> None:
        """Closes this process's copy of the child's end, so the pipe ends when the child's copies do."""
        try:
            self.child_end.close()
        except OSError:
            pass

    def wait(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for every line to be passed on and recorded; whether they were."""
        return self._done.wait(timeout)

    def _pump(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self._read_fd, 65536):
                self._pass_on(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._record(line)
                if len(pending) >= LINE_LIMIT:  # a line still growing: its whole pieces now, the rest later
                    whole = len(pending) - len(pending) % LINE_LIMIT
                    self._record(pending[:whole])
                    pending = pending[whole:]
            if pending:
                self._record(pending)
        except OSError:
            _logger.debug("mcp_tracing: a child's stderr could not be read", exc_info=True)
        finally:
            os.close(self._read_fd)
            self._done.set()

    def _pass_on(self, chunk: bytes) -> None:
        errlog = self._errlog
        if errlog is None:
            return
        try:
            binary = getattr(errlog, "buffer", None)
            if binary is not None:
                errlog.flush()  # what the caller wrote as text first stays first
                binary.write(chunk)
                binary.flush()
            elif "b" in getattr(errlog, "mode", ""):
                errlog.write(chunk)
                errlog.flush()
            else:
                errlog.write(chunk.decode("utf-8", errors="replace"))
                errlog.flush()
        except (OSError, ValueError):  # a closed errlog: the lines are still recorded
            pass

    def _record(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        for at in range(0, len(line), LINE_LIMIT):
            self._emit(line[at : at + LINE_LIMIT].decode("utf-8", errors="replace"))

    def _emit(self, text: str) -> None:
        try:
            self._logger.emit(
                LogRecord(
                    timestamp=time.time_ns(),
                    context=self._context,
                    body=text,
                    attributes={"mcp_tracing.log.source": "stderr", "mcp_tracing.server.name": self._name},
                )
            )
        except Exception:
            _logger.debug("mcp_tracing: a stderr line could not be recorded", exc_info=True)

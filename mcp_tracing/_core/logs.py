"""Python ``logging`` on the trace.

A record written while a sampled span is current becomes an OpenTelemetry log record under that span (in the
local store, or over OTLP logs, as ``configure()`` chose), and every record carries the current ids as fields,
``otelTraceID``, ``otelSpanID`` and ``otelTraceSampled`` (the names OpenTelemetry's logging instrumentation
uses, so formats written for it work), for the application's own handlers and formats.

Nothing about what the application prints changes, with one deliberate exception. A handler on the root logger
stops Python's "last resort" (WARNING and above printed bare to stderr when a record finds no handler at all).
So where ours is the only handler a record finds, it prints the record as the last resort would, with
``[trace_id=... span_id=...]`` appended when a span is current: the default format, where the application has
not set one, carries the ids.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

from opentelemetry import context as otel_context, trace
from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber

__all__ = ["TraceLogHandler", "install", "installed", "uninstall"]

_NEVER: Final = ("opentelemetry", "mcp_tracing.store", "mcp.", "fastmcp.")
"""Loggers whose records are never exported: OpenTelemetry's and the store's (an exporter's warning could feed
itself), and the MCP SDK's own, whose messages echo what a peer sent (tool errors with their text, request
dumps): the spans keep such text out, and so do the logs. fastmcp's too, for the same reason."""

_SEVERITY: Final = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
)


def _never(name: str) -> bool:
    return name.startswith(_NEVER) or name in ("mcp", "fastmcp")


def _severity(levelno: int) -> SeverityNumber:
    for floor, number in _SEVERITY:
        if levelno >= floor:
            return number
    return SeverityNumber.TRACE


class TraceLogHandler(logging.Handler):
    """Exports the records written under a sampled span, through ``provider``; see the module docstring.

    Args:
        provider: the OpenTelemetry ``LoggerProvider`` whose processors export the records.
    """

    def __init__(self, provider: LoggerProvider) -> None:
        super().__init__(logging.NOTSET)
        self.provider = provider

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._stand_in_for_last_resort(record)
            span_context = trace.get_current_span().get_span_context()
            if not (span_context.is_valid and span_context.trace_flags.sampled) or _never(record.name):
                return
            attributes: dict[str, Any] = {
                "code.file.path": record.pathname,
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
            }
            if record.exc_info and record.exc_info[0] is not None:
                attributes["exception.type"] = record.exc_info[0].__name__
            self.provider.get_logger(record.name).emit(
                LogRecord(
                    timestamp=int(record.created * 1e9),
                    observed_timestamp=time.time_ns(),
                    context=otel_context.get_current(),
                    severity_text=record.levelname,
                    severity_number=_severity(record.levelno),
                    body=record.getMessage(),
                    attributes=attributes,
                )
            )
        except Exception:  # a log call must never fail, and logging the failure could recurse
            pass

    def _stand_in_for_last_resort(self, record: logging.LogRecord) -> None:
        last = logging.lastResort
        if last is None or record.levelno < last.level or _other_handlers(record.name, self):
            return
        text = last.format(record)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            text += f" [trace_id={span_context.trace_id:032x} span_id={span_context.span_id:016x}]"
        stream = sys.stderr
        if stream is not None:
            stream.write(text + "\n")
            stream.flush()


def _other_handlers(name: str, ours: logging.Handler) -> bool:
    """Whether a record of logger ``name`` finds a handler besides ``ours`` (as ``Logger.callHandlers`` walks)."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        if any(handler is not ours for handler in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


_state: dict[str, Any] = {}


def _with_ids(factory: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = factory(*args, **kwargs)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.otelTraceID = f"{span_context.trace_id:032x}"
            record.otelSpanID = f"{span_context.span_id:016x}"
            record.otelTraceSampled = span_context.trace_flags.sampled
        else:
            record.otelTraceID = record.otelSpanID = "0"
            record.otelTraceSampled = False
        return record

    make.mcp_tracing_wraps = factory  # type: ignore[attr-defined]
    return make


def install(provider: LoggerProvider) -> TraceLogHandler:
    """Puts a ``TraceLogHandler`` for ``provider`` on the root logger and the ids on every record; once."""
    handler: TraceLogHandler | None = _state.get("handler")
    if handler is not None:
        return handler
    handler = TraceLogHandler(provider)
    _state["handler"] = handler
    _state["factory"] = logging.getLogRecordFactory()
    logging.setLogRecordFactory(_with_ids(_state["factory"]))
    logging.getLogger().addHandler(handler)
    return handler


def installed() -> TraceLogHandler | None:
    """The handler ``install`` put on the root logger, if any."""
    return _state.get("handler")


def uninstall() -> None:
    """Takes the handler and the record factory off again (tests; a process that turns logs off)."""
    handler = _state.pop("handler", None)
    if handler is not None:
        logging.getLogger().removeHandler(handler)
    factory = _state.pop("factory", None)
    if factory is not None and getattr(logging.getLogRecordFactory(), "mcp_tracing_wraps", None) is factory:
        logging.setLogRecordFactory(factory)

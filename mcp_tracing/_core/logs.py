"""Python ``logging``, and the MCP log notifications a server sends, on the trace.

A record written while a sampled span is current becomes an OpenTelemetry log record under that span (in the
local store, or over OTLP logs, as ``configure()`` chose), and every record carries the current ids as fields,
``otelTraceID``, ``otelSpanID`` and ``otelTraceSampled`` (the names OpenTelemetry's logging instrumentation
uses, so formats written for it work), for the application's own handlers and formats.

A server's ``notifications/message`` (level, logger, data), received by a traced client, becomes a log record
under the span the server sent it from (its ``_meta``), else under the client's session: level, logger and the
data's size always, the data itself only where ``Privacy.capture_content`` opts in (redacted and capped as
captured arguments are), since a server's log text can echo anything it was sent.

The handler stays out of the application's own logging set-up: ``logging.basicConfig`` (which does nothing
when the root logger has a handler), ``logging.config.dictConfig`` and ``fileConfig`` (which take the root's
handlers off) run with it set aside and put it back after, as OpenTelemetry's logging instrumentation does.

Nothing about what the application prints changes, with one deliberate exception. A handler on the root logger
stops Python's "last resort" (WARNING and above printed bare to stderr when a record finds no handler at all).
So where ours is the only handler a record finds, it prints the record as the last resort would, with
``[trace_id=... span_id=...]`` appended when a span is current: the default format, where the application has
not set one, carries the ids.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import wrapt
from opentelemetry import _logs, context as otel_context, trace
from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider

if TYPE_CHECKING:
    from mcp_tracing.privacy import Privacy

__all__ = ["MCP_LOG", "TraceLogHandler", "install", "installed", "record_notification", "uninstall"]

MCP_LOG: Final = "notifications/message"
_MCP_SEVERITY: Final = {
    "debug": SeverityNumber.DEBUG,
    "info": SeverityNumber.INFO,
    "notice": SeverityNumber.INFO2,
    "warning": SeverityNumber.WARN,
    "error": SeverityNumber.ERROR,
    "critical": SeverityNumber.FATAL,
    "alert": SeverityNumber.FATAL2,
    "emergency": SeverityNumber.FATAL3,
}
"""The MCP (syslog) levels as OpenTelemetry severities."""
_TEXT_LIMIT: Final = 256
_logger = logging.getLogger(__name__)

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


_CONFIGURERS: Final = ((logging, "basicConfig"), (logging.config, "dictConfig"), (logging.config, "fileConfig"))


def _set_aside(wrapped: Any, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Runs one of the application's logging set-up functions as if our handler were not on the root logger."""
    del instance
    handler: logging.Handler | None = _state.get("handler")
    root = logging.getLogger()
    if handler is None or handler not in root.handlers:
        return wrapped(*args, **kwargs)
    root.removeHandler(handler)
    try:
        return wrapped(*args, **kwargs)
    finally:
        if handler not in root.handlers:
            root.addHandler(handler)


def install(provider: LoggerProvider) -> TraceLogHandler:
    """Puts a ``TraceLogHandler`` for ``provider`` on the root logger and the ids on every record; once."""
    handler: TraceLogHandler | None = _state.get("handler")
    if handler is not None:
        return handler
    handler = TraceLogHandler(provider)
    _state["handler"] = handler
    _state["factory"] = logging.getLogRecordFactory()
    logging.setLogRecordFactory(_with_ids(_state["factory"]))
    for module, name in _CONFIGURERS:
        wrapt.wrap_function_wrapper(module, name, _set_aside)
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
        for module, name in _CONFIGURERS:
            unwrap(module, name)
    factory = _state.pop("factory", None)
    if factory is not None and getattr(logging.getLogRecordFactory(), "mcp_tracing_wraps", None) is factory:
        logging.setLogRecordFactory(factory)


def record_notification(params: Mapping[str, Any] | None, context: Context | None, privacy: Privacy) -> None:
    """A server's ``notifications/message`` as a log record under ``context`` (the current context when
    ``None``); see the module docstring. Never raises; does nothing without an SDK ``LoggerProvider``."""
    provider = _logs.get_logger_provider()
    if not isinstance(provider, SdkLoggerProvider) or not isinstance(params, Mapping):
        return
    try:
        level = str(params.get("level") or "")[:_TEXT_LIMIT]
        name = params.get("logger")
        logger = str(name)[:_TEXT_LIMIT] if name is not None else None
        data = params.get("data")
        size = len(json.dumps(data, ensure_ascii=False, default=str).encode())
        attributes: dict[str, Any] = {
            "mcp.log.level": level,
            "mcp_tracing.log.size": size,
            "mcp_tracing.log.source": MCP_LOG,
        }
        if logger is not None:
            attributes["mcp.log.logger"] = logger
        body = ""
        if privacy.capture_content:
            redacted = privacy.redact(data)
            body = redacted[: privacy.max_length] if isinstance(redacted, str) else privacy.render(data)
        provider.get_logger(logger or "mcp").emit(
            LogRecord(
                timestamp=time.time_ns(),
                context=context if context is not None else otel_context.get_current(),
                severity_text=level.upper() or None,
                severity_number=_MCP_SEVERITY.get(level.lower(), SeverityNumber.UNSPECIFIED),
                body=body,
                attributes=attributes,
            )
        )
    except Exception:
        _logger.debug("mcp_tracing could not record a log notification", exc_info=True)

"""Which exporters ``configure()`` starts, from the standard OpenTelemetry variables.

Traces, ``OTEL_TRACES_EXPORTER`` (a comma-separated list):

* ``mcp_tracing``: the local store (``mcp_tracing.store``);
* ``otlp``: OTLP over HTTP/protobuf, or gRPC when ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``/``OTEL_EXPORTER_OTLP_PROTOCOL``
  says ``grpc`` and ``opentelemetry-exporter-otlp-proto-grpc`` is installed; ``otlp_proto_http`` and
  ``otlp_proto_grpc`` name one of them;
* ``console``, ``none``, or any other installed ``opentelemetry_traces_exporter`` entry point;
* unset: ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, else
  ``mcp_tracing``.

Metrics, ``OTEL_METRICS_EXPORTER``, the same names but ``mcp_tracing`` (the store keeps traces only); unset:
``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` is set, else none. A
traces-only endpoint means a traces-only backend (MLflow documents exactly that), so no metrics go anywhere.

Logs, ``OTEL_LOGS_EXPORTER``, the same names as for traces (the records written under a sampled span: see
``_core/logs``); unset: ``otlp`` when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` is
set, else ``mcp_tracing`` when spans go to the store (logs beside their spans), else none.

A backend that answers 404 or 405 to OTLP metrics or logs (Phoenix, MLflow: they take traces only) is not
asked again: one warning, then this process stops exporting that signal. The OTLP exporters' own messages are let
through once per five minutes each, so a dead endpoint gives one line, not one per batch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Final

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import SpanExporter

from mcp_tracing._core import settings

__all__ = ["log_exporters", "metric_exporters", "span_exporters", "traces_destination"]

_logger = logging.getLogger(__name__)

TRACES_ENDPOINTS: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
METRICS_ENDPOINTS: Final = ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
LOGS_ENDPOINTS: Final = ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
STORE: Final = "mcp_tracing"
OTLP_NAMES: Final = frozenset({"otlp", "otlp_proto_http", "otlp_proto_grpc"})
REFUSED: Final = frozenset({404, 405})
"""Answers that mean "this endpoint takes no metrics": asking again cannot help."""

_OTLP_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)


def _names(variable: str, default: str | None) -> list[str]:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return [default] if default else []
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    return [] if names == ["none"] else [name for name in names if name != "none"]


def _set(variables: Sequence[str]) -> bool:
    return any(os.environ.get(name, "").strip() for name in variables)


def traces_destination() -> list[str]:
    """The exporter names ``configure()`` uses for spans (see the module docstring)."""
    return _names("OTEL_TRACES_EXPORTER", "otlp" if _set(TRACES_ENDPOINTS) else STORE)


def _grpc(signal: str) -> bool:
    protocol = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    return (protocol or "").strip().lower() == "grpc"


def span_exporters(store_path: str | os.PathLike[str] | None) -> list[SpanExporter]:
    """The span exporters for ``OTEL_TRACES_EXPORTER`` (or the default); unknown names are logged and skipped."""
    exporters: list[SpanExporter] = []
    for name in traces_destination():
        exporter = _span_exporter(name, store_path)
        if exporter is not None:
            exporters.append(exporter)
    return exporters


def _span_exporter(name: str, store_path: str | os.PathLike[str] | None) -> SpanExporter | None:
    if name == STORE:
        from mcp_tracing.store import SqliteSpanExporter

        return SqliteSpanExporter(store_path)
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name in OTLP_NAMES:
        return _otlp(name, "TRACES", "opentelemetry_traces_exporter", _otlp_http_span_exporter)
    return _from_entry_point("opentelemetry_traces_exporter", name)


def metric_exporters() -> list[MetricExporter]:
    """The metric exporters for ``OTEL_METRICS_EXPORTER`` (or the default: see the module docstring)."""
    if not os.environ.get("OTEL_METRICS_EXPORTER", "").strip() and not _set(METRICS_ENDPOINTS):
        if _set(TRACES_ENDPOINTS):
            _logger.debug("mcp_tracing: only a traces endpoint is set (a traces-only backend); no metrics exporter")
        return []
    exporters: list[MetricExporter] = []
    for name in _names("OTEL_METRICS_EXPORTER", "otlp"):
        exporter = _metric_exporter(name)
        if exporter is not None:
            exporters.append(exporter)
    return exporters


def _metric_exporter(name: str) -> MetricExporter | None:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name in OTLP_NAMES:
        return _otlp(name, "METRICS", "opentelemetry_metrics_exporter", _otlp_http_metric_exporter)
    if name == STORE:
        settings.warn_once(
            _logger, "store-metrics", "mcp_tracing: the local store keeps traces only; no metrics exporter started"
        )
        return None
    return _from_entry_point("opentelemetry_metrics_exporter", name)


def log_exporters(spans: Sequence[SpanExporter], store_path: str | os.PathLike[str] | None) -> list[LogRecordExporter]:
    """The log exporters for ``OTEL_LOGS_EXPORTER`` (or the default: see the module docstring). The store's
    writes through the span exporter among ``spans`` that writes the store, when there is one."""
    from mcp_tracing.store import SqliteSpanExporter
    from mcp_tracing.store.exporter import SqliteLogExporter

    store = next((e for e in spans if isinstance(e, SqliteSpanExporter)), None)
    default = "otlp" if _set(LOGS_ENDPOINTS) else STORE if store is not None else None
    exporters: list[LogRecordExporter] = []
    for name in _names("OTEL_LOGS_EXPORTER", default):
        if name == STORE:
            exporters.append(SqliteLogExporter(store or SqliteSpanExporter(store_path)))
        elif name == "console":
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

            exporters.append(ConsoleLogRecordExporter())
        else:
            exporter = (
                _otlp(name, "LOGS", "opentelemetry_logs_exporter", _otlp_http_log_exporter)
                if name in OTLP_NAMES
                else _from_entry_point("opentelemetry_logs_exporter", name)
            )
            if exporter is not None:
                exporters.append(exporter)
    return exporters


def _otlp_http_log_exporter() -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    class RefusalAwareLogExporter(OTLPLogExporter):
        """OTLP/HTTP logs that stop, with one warning, when the endpoint answers that it takes none (Phoenix and
        MLflow take traces only)."""

        def __init__(self) -> None:
            self._refusals = _Refusals("logs", "OTEL_LOGS_EXPORTER")
            super().__init__(session=self._refusals.session)

        def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
            if self._refusals.refused:
                return LogRecordExportResult.FAILURE
            self._refusals.before()
            result = super().export(batch)
            self._refusals.after(result is LogRecordExportResult.FAILURE, getattr(self, "_endpoint", "the endpoint"))
            return result

    return RefusalAwareLogExporter()


def _otlp(name: str, signal: str, group: str, over_http: Callable[[], Any]) -> Any:
    """The OTLP exporter ``name`` asks for: gRPC for ``otlp_proto_grpc``, or for ``otlp`` when the signal's
    protocol variable says ``grpc`` (HTTP/protobuf, with a warning, when that exporter is not installed);
    HTTP/protobuf otherwise."""
    _quiet_otlp_loggers()
    if name == "otlp_proto_grpc" or name == "otlp" and _grpc(signal):
        exporter = _from_entry_point(group, "otlp_proto_grpc", quiet=name == "otlp")
        if exporter is not None:
            return exporter
        settings.warn_once(
            _logger, "grpc", "mcp_tracing: the gRPC OTLP exporter is not installed; exporting over HTTP/protobuf"
        )
    return over_http()


def _otlp_http_span_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _from_entry_point(group: str, name: str, *, quiet: bool = False) -> Any:
    for entry in entry_points(group=group, name=name):
        try:
            return entry.load()()
        except Exception:
            _logger.warning("mcp_tracing: the %s exporter %r could not be started", group, name, exc_info=True)
            return None
    if not quiet:
        settings.warn_once(_logger, f"{group}:{name}", "mcp_tracing: no %s named %r is installed; ignored", group, name)
    return None


# ------------------------------------------------------------------------------------ OTLP metrics


class _Refusals:
    """Sees every HTTP answer an OTLP exporter gets (the exporters report a failure, not its status) and decides,
    with one warning, that the endpoint takes no ``signal`` when it answers 404 or 405: asking again cannot help."""

    def __init__(self, signal: str, variable: str) -> None:
        import requests

        self.signal, self.variable = signal, variable
        self.refused = False
        self._answers: list[int] = []
        self.session = requests.Session()
        self.session.hooks["response"].append(self._answered)

    def _answered(self, response: Any, *args: Any, **kwargs: Any) -> None:
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            self._answers.append(status)
            del self._answers[:-1]

    def before(self) -> None:
        self._answers.clear()

    def after(self, failed: bool, endpoint: object) -> None:
        status = self._answers[-1] if self._answers else None
        if failed and status in REFUSED:
            self.refused = True
            _logger.warning(
                "mcp_tracing: %s does not take OTLP %s (HTTP %s); this process stops sending them (%s=none skips them)",
                endpoint,
                self.signal,
                status,
                self.variable,
            )


def _otlp_http_metric_exporter() -> MetricExporter:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    class RefusalAwareMetricExporter(OTLPMetricExporter):
        """OTLP/HTTP metrics that stop, with one warning, when the endpoint answers that it takes none."""

        def __init__(self) -> None:
            self._refusals = _Refusals("metrics", "OTEL_METRICS_EXPORTER")
            super().__init__(session=self._refusals.session)

        def export(
            self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            if self._refusals.refused:
                return MetricExportResult.FAILURE
            self._refusals.before()
            result: MetricExportResult = super().export(metrics_data, timeout_millis, **kwargs)  # pyright: ignore[reportUnknownMemberType]
            self._refusals.after(result is MetricExportResult.FAILURE, getattr(self, "_endpoint", "the endpoint"))
            return result

    return RefusalAwareMetricExporter()


class _OncePerWindow(logging.Filter):
    """Lets each message of the OTLP exporters through once per ``window`` seconds: a dead or refusing endpoint
    would otherwise log one line per batch. A metrics or logs refusal (404/405) is reported by mcp_tracing
    instead."""

    def __init__(self, window: float = 300.0) -> None:
        super().__init__()
        self._window = window
        self._seen: dict[tuple[object, ...], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        simple = tuple(a for a in args if isinstance(a, (str, int)) and not isinstance(a, bool))
        refused = any(a in REFUSED for a in simple if isinstance(a, int))
        if refused and ("metrics" in simple or record.name.endswith("._log_exporter")):
            return False
        key = (record.name, record.levelno, record.msg, simple)
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < self._window:
                return False
            self._seen[key] = now
        return True


_filter = _OncePerWindow()


def _quiet_otlp_loggers() -> None:
    for name in _OTLP_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)

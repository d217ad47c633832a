"""``configure()``: one call sets up tracing for an agent or a server.

    import mcp_tracing

    mcp_tracing.configure("my-agent")

Where spans go (``mcp_tracing._core.exporters`` reads the standard variables as the OpenTelemetry SDK documents them):

* ``OTEL_TRACES_EXPORTER`` when set: ``mcp_tracing`` (the local store), ``otlp``, ``console``, ``none``, or any
  installed exporter entry point;
* otherwise an OTLP backend over HTTP/protobuf when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (the other ``OTEL_EXPORTER_OTLP_*`` variables apply);
* otherwise the local trace store (``mcp_tracing.store``), which ``mcp-tracing traces``/``show`` read.

Metrics (the MCP duration histograms) follow ``OTEL_METRICS_EXPORTER``, else go over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` is set, else nowhere.

Logs: a Python ``logging`` record written while a sampled span is current becomes a log record under that
span (``mcp_tracing._core.logs``), exported per ``OTEL_LOGS_EXPORTER``, else over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` is set, else into the store beside the
spans. ``MCP_TRACING_LOGS=off`` leaves logging alone.

Processes started with ``mcp_tracing.stdio_client`` receive these variables and the absolute path of this
process's store (``mcp_tracing.stdio.child_environment``), so a server that calls ``configure()`` exports to
the same place under its own name, whatever its ``HOME``, ``XDG_DATA_HOME`` or working directory. After
``configure()`` so do servers spawned by the SDK's own ``stdio_client`` (``mcp_tracing._sdk.spawn``; set
``MCP_TRACING_SPAWN_ENVIRONMENT=off`` to leave those alone).

Spans are exported every ``SCHEDULE_DELAY_MS`` (``OTEL_BSP_SCHEDULE_DELAY`` when set) and flushed, each wait
bounded by ``MCP_TRACING_SHUTDOWN_TIMEOUT`` (``mcp_tracing._core.shutdown``), at exit and on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Final

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from mcp_tracing._core import exporters as _exporters, logs as _logs_bridge, settings, shutdown as _shutdown
from mcp_tracing._sdk import spawn as _spawn

__all__ = ["LOGS_ENV", "SCHEDULE_DELAY_MS", "TAIL_SAMPLING_ENV", "configure", "uses_otlp"]

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_configured: trace.TracerProvider | None = None

TAIL_SAMPLING_ENV: Final = "MCP_TRACING_TAIL_SAMPLING"
LOGS_ENV: Final = "MCP_TRACING_LOGS"
SCHEDULE_DELAY_MS: Final = 500
"""How often batched spans are exported (the SDK's default is 5 s): a server's spans reach the store or the
backend while it runs, and a process killed without warning loses at most this much. Measured: see README."""


def uses_otlp() -> bool:
    """Whether ``configure()`` exports spans over OTLP rather than only to the local store."""
    return any(name.startswith("otlp") for name in _exporters.traces_destination())


def configure(
    service_name: str | None = None,
    *,
    store_path: str | os.PathLike[str] | None = None,
    sample_ratio: float | None = None,
    tail_sampling: bool | None = None,
) -> trace.TracerProvider:
    """Sets up the global TracerProvider (and MeterProvider) once, and returns the TracerProvider.

    Args:
        service_name: ``service.name`` of this process. ``OTEL_SERVICE_NAME`` (or ``service.name`` in
            ``OTEL_RESOURCE_ATTRIBUTES``) wins when set, so a spawner can name its children; without any, the
            script's file name.
        store_path: the local store file, when spans go there; ``$MCP_TRACING_STORE`` or the user's data
            directory by default.
        sample_ratio: head sampling: the share of new traces recorded, from 0 to 1 (``ParentBased``, so a
            trace that arrives with a decision keeps it: every process of a trace decides alike). Default:
            ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, else every trace. An unsampled trace still
            propagates its context.
        tail_sampling: buffer each trace and export it only if it had an error, a slow root, or falls in
            the 5% (``mcp_tracing.sampling.TailSamplingProcessor`` with the lesson's preset). Default:
            ``$MCP_TRACING_TAIL_SAMPLING`` is ``1``/``true``/``yes``.

    Returns:
        The global TracerProvider. Calling again returns it unchanged; so does calling when the application
        already installed an SDK TracerProvider (whose exporters are left as they are), or when
        ``OTEL_SDK_DISABLED`` is ``true`` (then nothing is recorded; context still propagates).

    Raises:
        ValueError: ``sample_ratio`` outside [0, 1].

    Exporters follow ``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER`` and the OTLP endpoint variables (see the
    module docstring). Servers the SDK's ``stdio_client`` spawns from then on get the trace context and these
    settings, unless ``$MCP_TRACING_SPAWN_ENVIRONMENT`` is ``off``. Spans are batched (``BatchSpanProcessor``,
    ``OTEL_BSP_*``; every 500 ms unless ``OTEL_BSP_SCHEDULE_DELAY`` says otherwise). At exit and on SIGTERM
    (then SIGTERM does what it did before) spans and metrics are flushed, waiting at most
    ``$MCP_TRACING_SHUTDOWN_TIMEOUT`` seconds (default 5) whatever the backend does.
    """
    global _configured
    if sample_ratio is not None and not 0.0 <= sample_ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within [0, 1]; got {sample_ratio}")
    with _lock:
        if _configured is not None:
            return _configured
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _logger.info("mcp_tracing.configure(): a TracerProvider is already installed; using it as it is")
            _configured = current
            _shutdown.flush_at_sigterm(None)
            return current
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            _configured = current
            return current
        resource = _resource(service_name)
        sampler = ParentBased(TraceIdRatioBased(sample_ratio)) if sample_ratio is not None else None
        provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
        span_exporters = _exporters.span_exporters(store_path)
        processor = _processor(span_exporters, tail_sampling)
        if processor is not None:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        meter_provider = _configure_metrics(resource)
        logger_provider = _configure_logs(resource, span_exporters, store_path)
        _shutdown.shutdown_at_exit(provider, meter_provider, logger_provider)
        _shutdown.flush_at_sigterm(None)
        if _spawn.spawns_carry_telemetry():
            _spawn.carry_into_spawns()  # any SDK spawn in this process: the server half never goes elsewhere
        _configured = provider
        return provider


def _resource(given: str | None) -> Resource:
    """The SDK's resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME`` and the detectors, looked up once),
    named ``given`` (else after the script) unless the environment names the service."""
    resource = Resource.create()
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if named:
        return resource
    return resource.merge(Resource({SERVICE_NAME: given or Path(sys.argv[0] or "python").stem or "python"}))


def _processor(exporters: list[SpanExporter], tail_sampling: bool | None) -> SpanProcessor | None:
    # OTEL_BSP_SCHEDULE_DELAY wins when set; the SDK reads it when the argument is None.
    delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "").strip() else SCHEDULE_DELAY_MS
    batches = [BatchSpanProcessor(e, schedule_delay_millis=delay) for e in exporters]
    if tail_sampling is None:
        tail_sampling = settings.flag(TAIL_SAMPLING_ENV)
    if not batches:
        return None
    processor: SpanProcessor = batches[0]
    if len(batches) > 1:
        multi = SynchronousMultiSpanProcessor()
        for batch in batches:
            multi.add_span_processor(batch)
        processor = multi
    if tail_sampling:
        from mcp_tracing.sampling import TailSamplingProcessor

        processor = TailSamplingProcessor(processor)
    return processor


def _configure_metrics(resource: Resource) -> MeterProvider | None:
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        return None  # the application's own
    exporters = _exporters.metric_exporters()
    if not exporters:
        return None
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    readers = [PeriodicExportingMetricReader(exporter) for exporter in exporters]
    provider = MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False)
    metrics.set_meter_provider(provider)
    return provider


def _configure_logs(
    resource: Resource, span_exporters: list[SpanExporter], store_path: str | os.PathLike[str] | None
) -> LoggerProvider | None:
    if not settings.flag(LOGS_ENV, default=True) or isinstance(_logs.get_logger_provider(), LoggerProvider):
        return None  # turned off, or the application's own
    exporters = _exporters.log_exporters(span_exporters, store_path)
    if not exporters:
        return None
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    # The same cadence as spans (OTEL_BLRP_SCHEDULE_DELAY wins when set), so a record reaches the store with
    # the span it was written under.
    delay = None if os.environ.get("OTEL_BLRP_SCHEDULE_DELAY", "").strip() else SCHEDULE_DELAY_MS
    for exporter in exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=delay))
    _logs.set_logger_provider(provider)
    _logs_bridge.install(provider)
    return provider

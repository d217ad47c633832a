"""``configure()``: one call sets up tracing for an agent or a server.

    import mcp_tracing

    mcp_tracing.configure("my-agent")

Where spans go:

* to an OTLP backend over HTTP/protobuf when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (the exporter reads the other standard ``OTEL_EXPORTER_OTLP_*``
  variables: headers, timeout, compression);
* otherwise to the local trace store (``mcp_tracing.store``), which ``mcp-tracing traces``/``show`` read.

stdio servers spawned with ``mcp_tracing.stdio_client`` receive the ``OTEL_*`` and ``MCP_TRACING_*``
variables, so a server that calls ``configure()`` exports to the same place under its own name.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

__all__ = ["configure", "uses_otlp"]

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_configured: TracerProvider | None = None

TAIL_SAMPLING_ENV = "MCP_TRACING_TAIL_SAMPLING"
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def uses_otlp() -> bool:
    """Whether ``configure()`` exports over OTLP (an OTLP endpoint variable is set) rather than to the store."""
    return any(os.environ.get(name) for name in OTLP_ENDPOINT_VARIABLES)


def _exporter(store_path: str | os.PathLike[str] | None) -> SpanExporter:
    if uses_otlp():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from .store import SqliteSpanExporter

    return SqliteSpanExporter(store_path)


def _configure_metrics(resource: Resource) -> None:
    # Metrics go over OTLP with the traces; the local store keeps traces only (README says so).
    if not uses_otlp() or isinstance(metrics.get_meter_provider(), MeterProvider):
        return
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], resource=resource))


def configure(
    service_name: str | None = None,
    *,
    store_path: str | os.PathLike[str] | None = None,
    sample_ratio: float | None = None,
    tail_sampling: bool | None = None,
) -> trace.TracerProvider:
    """Sets up the global TracerProvider once, and returns it.

    Args:
        service_name: ``service.name`` of this process. ``OTEL_SERVICE_NAME`` wins when set (so a spawner can
            name its children); without either, the script's file name.
        store_path: the local store file, when not exporting over OTLP; ``$MCP_TRACING_STORE`` or the user's
            data directory by default.
        sample_ratio: head sampling: the share of new traces recorded, from 0 to 1 (``ParentBased``, so a
            trace that arrives with a decision keeps it: every process of a trace decides alike). Default:
            ``OTEL_TRACES_SAMPLER``/``OTEL_TRACES_SAMPLER_ARG``, else every trace. An unsampled trace still
            propagates its context.
        tail_sampling: buffer each trace and export it only if it had an error, a slow root, or falls in
            the 5% (``mcp_tracing.sampling.TailSamplingProcessor`` with the lesson's preset). Default:
            ``$MCP_TRACING_TAIL_SAMPLING`` is ``1``/``true``/``yes``.

    Returns:
        The global TracerProvider. Calling again returns it unchanged; so does calling when the application
        already installed an SDK TracerProvider (whose exporters are left as they are).

    With an OTLP endpoint it also installs a MeterProvider exporting the MCP duration histograms
    (``mcp_tracing.metrics``) there; the local store keeps traces only.

    The provider batches spans (``BatchSpanProcessor``, tuned by ``OTEL_BSP_*``), samples as
    ``OTEL_TRACES_SAMPLER`` says (parent-based by default) and is flushed and shut down at exit.
    """
    global _configured
    with _lock:
        if _configured is not None:
            return _configured
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _logger.info("mcp_tracing.configure(): a TracerProvider is already installed; using it as it is")
            _configured = current
            return current
        name = os.environ.get("OTEL_SERVICE_NAME") or service_name or Path(sys.argv[0] or "python").stem or "python"
        sampler = None
        if sample_ratio is not None:
            if not 0.0 <= sample_ratio <= 1.0:
                raise ValueError(f"sample_ratio must be within [0, 1]; got {sample_ratio}")
            sampler = ParentBased(TraceIdRatioBased(sample_ratio))
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}), sampler=sampler)
        if tail_sampling is None:
            tail_sampling = os.environ.get(TAIL_SAMPLING_ENV, "").strip().lower() in ("1", "true", "yes")
        processor: SpanProcessor = BatchSpanProcessor(_exporter(store_path))
        if tail_sampling:
            from .sampling import TailSamplingProcessor

            processor = TailSamplingProcessor(processor)
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _configure_metrics(provider.resource)
        _configured = provider
        return provider

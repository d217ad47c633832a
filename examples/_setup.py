"""OpenTelemetry set-up shared by the examples: spans go to one JSON-lines file for every process.

The agent names the file in ``MCP_TRACING_EXAMPLE_SPANS``; ``mcp_tracing.stdio_client`` forwards
``MCP_TRACING_*`` variables to the servers it spawns, so they write to the same file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import mcp_tracing
from mcp_tracing.cli.tree import render_tree
from mcp_tracing.testing import JsonLinesSpanExporter, read_spans

SPANS_FILE_ENV = "MCP_TRACING_EXAMPLE_SPANS"


def print_trace(spans_file: Path, trace_id: str) -> None:
    """Prints one trace from the shared spans file as a tree, with a header line."""
    spans = [s for s in read_spans(spans_file) if s.trace_id == trace_id]
    print(f"trace {trace_id}: {len(spans)} spans from {len({s.pid for s in spans})} processes")
    print(render_tree(spans))


def setup_tracing(default_service_name: str) -> TracerProvider:
    """Installs the global TracerProvider: ``mcp_tracing.configure()`` (local store, or OTLP when configured),
    or, when ``$MCP_TRACING_EXAMPLE_SPANS`` names a file (the tests), a JSON-lines exporter to that file."""
    if os.environ.get(SPANS_FILE_ENV) is None:
        # The SDK provider configure() installs: the examples install no provider of their own before it.
        return cast(TracerProvider, mcp_tracing.configure(default_service_name))
    # OTEL_SERVICE_NAME, when the spawner set it for this process, wins over the default.
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": default_service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    path = os.environ.get(SPANS_FILE_ENV)
    if path:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(path)))
    trace.set_tracer_provider(provider)
    return provider

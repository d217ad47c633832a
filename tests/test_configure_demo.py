"""configure(), the demo end to end into the local store, and the same demo exported over OTLP/HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.processes import assert_lesson_shape, run_python

from mcp_tracing._core import attributes as attr
from mcp_tracing.store import TraceStore
from mcp_tracing.store.patterns import analyze
from mcp_tracing.testing import SpanRecord

CONFIGURE_TWICE = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
import mcp_tracing
if sys.argv[1] == "existing":
    mine = TracerProvider()
    trace.set_tracer_provider(mine)
    assert mcp_tracing.configure("x") is mine
first = mcp_tracing.configure("svc")
assert mcp_tracing.configure("other") is first is trace.get_tracer_provider()
with trace.get_tracer("t").start_as_current_span("configured.span"):
    pass
print(first.resource.attributes["service.name"])
"""


@pytest.mark.parametrize("case", ["fresh", "existing"])
def test_configure_is_idempotent_and_respects_an_installed_provider(tmp_path: Path, case: str) -> None:
    store = tmp_path / "traces.db"
    done = run_python(["-c", CONFIGURE_TWICE, case], MCP_TRACING_STORE=str(store))
    assert done.returncode == 0, done.stderr
    if case == "fresh":  # the span reached the store, flushed at exit, under the configured name
        assert done.stdout.strip() == "svc"
        reader = TraceStore(store)
        (summary,) = reader.traces()
        assert (summary.root, summary.services) == ("configured.span", ("svc",))
    else:  # the application's own provider (no exporter) was kept: nothing was written
        assert done.stdout.strip() != "svc" and not store.exists()


def test_otel_service_name_wins(tmp_path: Path) -> None:
    done = run_python(
        ["-c", CONFIGURE_TWICE, "fresh"], MCP_TRACING_STORE=str(tmp_path / "t.db"), OTEL_SERVICE_NAME="from-env"
    )
    assert done.stdout.strip() == "from-env", done.stderr


def test_the_demo_writes_one_trace_of_three_processes_to_the_store(tmp_path: Path) -> None:
    store = tmp_path / "demo.db"
    done = run_python(["-m", "mcp_tracing.cli", "--store", str(store), "demo", "--width", "120"])
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0]
    assert header.endswith("spans from 3 processes"), header
    assert max(len(line) for line in done.stdout.splitlines()) == 120  # --width holds for the demo's tree too
    assert done.stdout.splitlines()[1].startswith("invoke_agent shop-assistant [")
    reader = TraceStore(store)
    (summary,) = reader.traces()
    assert summary.services == ("demo-agent", "files-server", "sql-server") and summary.errors == 0
    spans = reader.spans(summary.trace_id)
    assert_lesson_shape([s.__dict__ for s in spans])
    assert_the_planted_mistakes_are_found(spans, reader)
    # ... and drawn inline, on the lines of their spans.
    assert sum(line.endswith("|  ⚑ N+1") for line in done.stdout.splitlines()) == 3
    assert sum(line.endswith("|  ⚑ sequential") for line in done.stdout.splitlines()) == 2


def assert_the_planted_mistakes_are_found(spans: list[SpanRecord], store: TraceStore) -> None:
    """The demo's agent reads three files one by one (N+1) and runs a query and a search one after the other:
    ``analyze`` reports exactly those two, with the savings the spans give."""
    calls = [s for s in spans if s.name.startswith("execute_tool ")]
    reads = [s for s in calls if s.attributes[attr.GEN_AI_TOOL_NAME] == "read_file"]
    last_turn = max((s for s in spans if s.name == "agent.turn"), key=lambda s: s.start_ns)
    pair = [s for s in calls if s.parent_id == last_turn.span_id and s.attributes[attr.GEN_AI_TOOL_NAME] != "read_file"]

    def saving_ms(run: list[SpanRecord]) -> float:
        return (max(s.end_ns for s in run) - min(s.start_ns for s in run)) / 1e6 - max(s.duration_ms for s in run)

    findings = {f.kind: f for f in analyze(spans, neighbours=store.roots_between)}
    assert sorted(findings) == ["n_plus_one", "sequential"], [f.summary for f in findings.values()]
    assert findings["n_plus_one"].span_ids == tuple(s.span_id for s in reads) and len(reads) == 3
    assert findings["n_plus_one"].time_ms == pytest.approx(saving_ms(reads), abs=0.001)
    assert [s.attributes[attr.GEN_AI_TOOL_NAME] for s in pair] == ["query", "search"]
    assert findings["sequential"].span_ids == tuple(s.span_id for s in pair)
    assert findings["sequential"].time_ms == pytest.approx(saving_ms(pair), abs=0.001)


def test_with_an_otlp_endpoint_every_process_exports_there(
    tmp_path: Path, otlp_receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT set: the agent and both servers export OTLP/HTTP protobuf, no store."""
    endpoint, received = otlp_receiver
    store = tmp_path / "unused.db"
    done = run_python(["-m", "mcp_tracing.cli", "--store", str(store), "demo"], OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    assert done.returncode == 0, done.stderr
    assert "exported over OTLP" in done.stdout
    assert not store.exists()
    assert {s["path"] for s in received} == {"/v1/traces"}
    assert_lesson_shape(received)


SAMPLED = """
import mcp_tracing
from opentelemetry import trace
mcp_tracing.configure("s", sample_ratio=0.0)
with trace.get_tracer("t").start_as_current_span("dropped") as span:
    print(span.get_span_context().trace_flags.sampled, span.get_span_context().is_valid)
"""


def test_configure_head_sampling_keeps_the_context_of_unsampled_traces(tmp_path: Path) -> None:
    done = run_python(["-c", SAMPLED], MCP_TRACING_STORE=str(tmp_path / "t.db"))
    assert (done.returncode, done.stdout.split()) == (0, ["False", "True"]), done.stderr


SECRETS = ["arg-s3cr3t-7731", "env-s3cr3t-1429", "hdr-s3cr3t-5550", "res-s3cr3t-9082"]


def test_seeded_secrets_appear_nowhere_in_the_exported_data(
    otlp_receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    """Secrets in arguments, results, error messages, env and headers, default settings, three processes:
    every exported OTLP byte (attributes, events, links, resource, status) is scanned for them. The OTLP auth
    header reaches the backend from every process (the stdio child gets ``OTEL_EXPORTER_OTLP_HEADERS``, as it
    must to export) and is in no span."""
    from helpers.otlp import OtlpReceiver

    endpoint, received = otlp_receiver
    script = Path(__file__).resolve().parent / "servers" / "secret_agent.py"
    otlp_auth = "otlp-s3cr3t-6604"
    done = run_python(
        [str(script), *SECRETS],
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_HEADERS=f"x-otlp-auth={otlp_auth}",
    )
    assert done.returncode == 0, done.stderr
    services = {s["service"] for s in received}
    assert services == {"secret-agent", "probe-server", "http-probe"}, services
    names = {s["name"] for s in received}
    assert {"execute_tool boom", "tools/call boom", "tools/call env_report", "tools/call echo", "POST /mcp"} <= names
    assert {header for header, _ in OtlpReceiver.auth} == {otlp_auth}
    assert frozenset().union(*(services for _, services in OtlpReceiver.auth)) == services
    exported = b"".join([*OtlpReceiver.bodies, *OtlpReceiver.log_bodies])
    for secret in [*SECRETS, otlp_auth]:
        assert secret.encode() not in exported, secret


TAILED = """
import mcp_tracing
from opentelemetry import trace
from opentelemetry.trace import StatusCode
mcp_tracing.configure("tail", tail_sampling=True)
tracer = trace.get_tracer("t")
for n in range(40):
    with tracer.start_as_current_span(f"quiet {n}"):
        pass
with tracer.start_as_current_span("failed") as span:
    span.set_status(StatusCode.ERROR)
"""


def test_configure_with_tail_sampling_keeps_the_error_trace_and_a_share_of_the_rest(tmp_path: Path) -> None:
    store = tmp_path / "t.db"
    done = run_python(["-c", TAILED], MCP_TRACING_STORE=str(store))
    assert done.returncode == 0, done.stderr
    roots = {row.root for row in TraceStore(store).traces(limit=100)}
    # 5% of 40 quiet traces (2 expected; 9 or more has odds under 1 in 50,000); all 41 if the ratio were ignored
    assert "failed" in roots and len(roots) - 1 <= 8, roots

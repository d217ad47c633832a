"""Tail sampling: errors and slow roots always kept, a trace-id share of the rest, bounded memory."""

from __future__ import annotations

import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import StatusCode

from mcp_tracing.sampling import TailSamplingProcessor

pytestmark = pytest.mark.sdk_independent  # the same on either SDK line: scripts/test runs it on mcp 2.x only


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SeededIds(RandomIdGenerator):
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64)


def setup(**options: object) -> tuple[trace.Tracer, TailSamplingProcessor, InMemorySpanExporter, Clock]:
    clock = Clock()
    exporter = InMemorySpanExporter()
    sampler = TailSamplingProcessor(SimpleSpanProcessor(exporter), clock=clock, background=False, **options)  # type: ignore[arg-type]
    provider = TracerProvider(id_generator=SeededIds(7))
    provider.add_span_processor(sampler)
    return provider.get_tracer("t"), sampler, exporter, clock


def one_trace(tracer: trace.Tracer, *, error_in_child: bool = False, root_ms: int = 10) -> trace.Span:
    root = tracer.start_span("root", start_time=0)
    child = tracer.start_span("child", context=trace.set_span_in_context(root), start_time=1_000_000)
    if error_in_child:
        child.set_status(StatusCode.ERROR)
    child.end(end_time=2_000_000)
    root.end(end_time=root_ms * 1_000_000)
    return root


def test_errors_and_slow_roots_are_always_kept_and_decided_after_the_grace_period() -> None:
    tracer, sampler, exporter, clock = setup(ratio=0.0, slow_s=1.0, grace_s=2.0)
    one_trace(tracer, error_in_child=True)
    one_trace(tracer, root_ms=1500)
    one_trace(tracer)  # neither: with ratio 0, dropped
    assert exporter.get_finished_spans() == ()  # still within the grace period
    clock.now += 2.0
    tracer.start_span("tick").end()  # any activity lets due traces be decided
    kept = exporter.get_finished_spans()
    assert sorted(s.name for s in kept) == ["child", "child", "root", "root"]
    stats = sampler.stats()
    assert (stats.kept_traces, stats.dropped_traces, stats.kept_spans, stats.dropped_spans) == (2, 1, 4, 2)


def test_the_rest_is_kept_by_ratio_within_tolerance_on_a_seeded_run() -> None:
    tracer, sampler, exporter, _ = setup(ratio=0.05, slow_s=10.0)
    for _ in range(4000):
        one_trace(tracer)
    sampler.force_flush()
    kept = sampler.stats().kept_traces
    # Binomial(4000, 0.05): mean 200, sd ~13.8; 4 sd either side.
    assert 145 <= kept <= 255, kept
    assert len(exporter.get_finished_spans()) == 2 * kept


def test_the_ratio_share_is_the_same_traces_in_every_process() -> None:
    """Chosen from the trace id: two processes (same ids here, by seed) with the same ratio keep the same."""
    first, first_sampler, first_out, _ = setup(ratio=0.3, slow_s=10.0)
    second, second_sampler, second_out, _ = setup(ratio=0.3, slow_s=10.0)
    for tracer in (first, second):
        for _ in range(300):
            one_trace(tracer)
    first_sampler.force_flush()
    second_sampler.force_flush()
    ids = [{s.context.trace_id for s in out.get_finished_spans() if s.context} for out in (first_out, second_out)]
    assert 50 <= len(ids[0]) <= 130 and ids[0] == ids[1]


def test_late_children_follow_the_decision_of_their_trace() -> None:
    tracer, _, exporter, clock = setup(ratio=0.0, grace_s=1.0)
    kept_root = tracer.start_span("root", start_time=0)
    late_kept = tracer.start_span("late", context=trace.set_span_in_context(kept_root))
    error = tracer.start_span("boom", context=trace.set_span_in_context(kept_root))
    error.set_status(StatusCode.ERROR)
    error.end()
    kept_root.end()
    dropped_root = tracer.start_span("quiet-root")
    late_dropped = tracer.start_span("quiet-late", context=trace.set_span_in_context(dropped_root))
    dropped_root.end()
    clock.now += 1.0
    tracer.start_span("tick").end()
    late_kept.end()
    late_dropped.end()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["boom", "late", "root"]


def test_a_flood_never_grows_the_buffer_past_its_limit_and_open_traces_expire() -> None:
    tracer, sampler, exporter, clock = setup(ratio=0.0, max_spans=500, max_traces=50, max_age_s=30.0)
    peak = 0
    for n in range(20_000):  # children of roots that never end: nothing would ever be decided
        root = tracer.start_span(f"open-{n}")
        tracer.start_span("child", context=trace.set_span_in_context(root)).end()
        stats = sampler.stats()
        peak = max(peak, stats.buffered_spans, stats.buffered_traces)
    assert peak <= 500 and sampler.stats().buffered_traces <= 50
    assert sampler.stats().decided_early >= 19_950
    tracer.start_span("old-open-trace", context=trace.set_span_in_context(tracer.start_span("never-ends"))).end()
    clock.now += 30.0
    tracer.start_span("tick").end()
    assert sampler.stats().buffered_traces <= 1  # only the tick's own trace, too young to decide
    assert exporter.get_finished_spans() == ()


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="ratio"):
        TailSamplingProcessor(SimpleSpanProcessor(InMemorySpanExporter()), ratio=1.5, background=False)
    with pytest.raises(ValueError, match="positive"):
        TailSamplingProcessor(SimpleSpanProcessor(InMemorySpanExporter()), max_spans=0, background=False)


def test_a_trace_kept_by_decision_is_kept_here_and_in_stdio_children_spawned_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp_tracing.sampling import KEEP_TRACE_ENV, keep_trace
    from mcp_tracing.stdio import child_environment

    tracer, sampler, exporter, _ = setup(ratio=0.0)
    root = tracer.start_span("root")
    with trace.use_span(root):
        assert KEEP_TRACE_ENV not in child_environment(parent_env={KEEP_TRACE_ENV: "ab" * 16})
        keep_trace()
        env = child_environment(parent_env={})
    root.end()
    sampler.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["root"]
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert env[KEEP_TRACE_ENV] == trace_id
    # The child: its sampler keeps the trace its spawner kept, and only that one.
    monkeypatch.setenv(KEEP_TRACE_ENV, trace_id)
    child_tracer, child_sampler, child_out, _ = setup(ratio=0.0)
    parent = trace.set_span_in_context(trace.NonRecordingSpan(root.get_span_context()))
    child_tracer.start_span("served", context=parent).end()
    child_tracer.start_span("other").end()
    child_sampler.force_flush()
    assert [s.name for s in child_out.get_finished_spans()] == ["served"]

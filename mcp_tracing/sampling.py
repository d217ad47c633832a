"""Tail sampling in the process: keep every interesting trace, a share of the rest.

    from mcp_tracing.sampling import TailSamplingProcessor

    provider.add_span_processor(TailSamplingProcessor(OTLPSpanExporter()))   # the lesson's preset

``TailSamplingProcessor`` buffers the finished spans of each trace until the trace's local root (the span
of this process with no parent here) has ended, plus ``grace_s`` for children that end late, then decides:

* keep if any span of the trace had status ERROR (``always keep errors``);
* keep if the local root lasted at least ``slow_s``;
* otherwise keep ``ratio`` of the traces, chosen from a hash of the whole trace id (the same traces in every
  process that uses the same ratio, so the random share of a multi-process trace is never split; a hash,
  unlike the head sampler's low 64 bits, so a caller choosing ids with zero low bits is not always kept).

Kept spans go to the wrapped processor or exporter; children that end after the decision follow it for
``remember_s``. Memory is bounded: at most ``max_spans`` buffered spans and ``max_traces`` open traces.
When either is reached, the oldest open trace is decided at once on what is known so far (errors seen,
else the ratio); a trace whose root never ends is decided ``max_age_s`` after its first span. The counts
are in ``stats()``.

Per process decisions can split a trace that spans processes: a server may keep its half (an error
there) while the agent drops its half. For whole-trace decisions across processes and hosts, export
everything to an OpenTelemetry Collector and tail-sample there by trace id (``deploy/``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import StatusCode

from mcp_tracing._core import settings

__all__ = [
    "DROP_LIST_CALLS_ENV",
    "EXCLUDE_METHODS_ENV",
    "HOUSEKEEPING",
    "KEEP_TRACE_ENV",
    "LESSON_PRESET",
    "LIST_CALLS",
    "MethodFilter",
    "TailPreset",
    "TailSamplingProcessor",
    "TailStats",
    "is_kept",
    "keep_trace",
]

_logger = logging.getLogger(__name__)


def _share(trace_id: int) -> int:
    """Where a trace falls in ``[0, 2**64)``: from all 128 bits of its id, so that ids a caller chose (all
    zero low bits) fall like any other; the same in every process."""
    digest = hashlib.blake2b(trace_id.to_bytes(16, "big"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


HOUSEKEEPING: Final = ("ping", "notifications/initialized", "notifications/message", "notifications/*/list_changed")
"""Methods with no span by default: keep-alives and housekeeping notifications (which still carry context)."""

LIST_CALLS: Final = ("*/list",)
"""``tools/list``, ``prompts/list``, ``resources/list``, ``resources/templates/list``, ``roots/list``."""

KEEP_TRACE_ENV: Final = "MCP_TRACING_KEEP_TRACE"
"""Set by ``stdio_client`` for a child spawned inside a trace this process decided to keep (``keep_trace``)."""

_kept: OrderedDict[int, None] = OrderedDict()
_kept_lock = threading.Lock()


def keep_trace(trace_id: int | None = None) -> None:
    """Decides now that a trace (the current one by default) is kept, whatever happens next.

    Every ``TailSamplingProcessor`` of this process keeps it, and so do those of the stdio servers spawned
    in that trace from now on: ``stdio_client`` tells them in ``MCP_TRACING_KEEP_TRACE``.
    """
    if trace_id is None:
        trace_id = trace.get_current_span().get_span_context().trace_id
    if not trace_id:
        return
    with _kept_lock:
        _kept[trace_id] = None
        while len(_kept) > 10_000:
            _kept.popitem(last=False)


def is_kept(trace_id: int) -> bool:
    """Whether ``keep_trace`` marked this trace here, or the spawning process did (``MCP_TRACING_KEEP_TRACE``)."""
    return trace_id in _kept or trace_id == _spawner_kept()


def _spawner_kept() -> int | None:
    raw = os.environ.get(KEEP_TRACE_ENV, "")
    try:
        return int(raw, 16) if raw else None
    except ValueError:
        return None


EXCLUDE_METHODS_ENV: Final = "MCP_TRACING_EXCLUDE_METHODS"
DROP_LIST_CALLS_ENV: Final = "MCP_TRACING_DROP_LIST_CALLS"


@dataclass(frozen=True)
class MethodFilter:
    """Which MCP methods get spans. Patterns are ``fnmatch`` style (``notifications/*``), case-sensitive.

    A message whose method is excluded gets no span, on either side; its trace context still travels
    (the current context goes into its ``_meta`` and headers), so nothing after it loses its parent.
    """

    excluded: tuple[str, ...] = HOUSEKEEPING
    _decided: dict[str, bool] = field(default_factory=lambda: {}, init=False, compare=False, repr=False, hash=False)

    def traces(self, method: str) -> bool:
        """Whether ``method`` gets a span."""
        decided = self._decided.get(method)
        if decided is None:
            decided = not any(fnmatchcase(method, pattern) for pattern in self.excluded)
            if len(self._decided) < 1024:  # methods are a small set; a flood of made-up ones is not cached
                self._decided[method] = decided
        return decided

    @classmethod
    def resolve(cls, exclude_methods: Iterable[str] | None = None, drop_list_calls: bool | None = None) -> MethodFilter:
        """The filter from arguments, else the environment, else the default.

        Args:
            exclude_methods: patterns of methods with no span; replaces the default ``HOUSEKEEPING`` list
                (pass ``()`` to trace every method). Default: ``$MCP_TRACING_EXCLUDE_METHODS`` (comma
                separated) when set, else ``HOUSEKEEPING``.
            drop_list_calls: also exclude ``LIST_CALLS``. Default: ``$MCP_TRACING_DROP_LIST_CALLS`` is
                ``1``/``true``/``yes``.
        """
        if exclude_methods is None:
            configured = os.environ.get(EXCLUDE_METHODS_ENV)
            patterns = (
                tuple(p.strip() for p in configured.split(",") if p.strip()) if configured is not None else HOUSEKEEPING
            )
        else:
            if isinstance(exclude_methods, str):
                raise TypeError("exclude_methods takes a list of patterns, not one string")
            patterns = tuple(exclude_methods)
        if drop_list_calls is None:
            drop_list_calls = settings.flag(DROP_LIST_CALLS_ENV)
        return cls(patterns + LIST_CALLS if drop_list_calls else patterns)


@dataclass(frozen=True)
class TailPreset:
    """The decision rule: errors always, slow roots always, ``ratio`` of the rest."""

    slow_s: float = 2.0
    ratio: float = 0.05


LESSON_PRESET: Final = TailPreset()
"""The lesson's production policy: 100% of error traces, 100% of slow traces (root >= 2 s), 5% of the rest."""


@dataclass
class TailStats:
    """What the sampler decided so far, and what it holds now."""

    kept_traces: int = 0
    dropped_traces: int = 0
    kept_spans: int = 0
    dropped_spans: int = 0
    decided_early: int = 0
    buffered_spans: int = 0
    buffered_traces: int = 0


@dataclass
class _Trace:
    first_seen: float
    spans: list[ReadableSpan] = field(default_factory=lambda: [])
    error: bool = False
    root_duration_s: float = 0.0


class TailSamplingProcessor(SpanProcessor):
    """Buffers spans per trace and forwards the traces worth keeping (see the module docstring).

    Args:
        delegate: where kept spans go: a ``SpanProcessor``, or a ``SpanExporter`` (wrapped in a
            ``BatchSpanProcessor``).
        slow_s: a local root at least this long keeps its trace.
        ratio: the share of other traces kept, from 0 to 1.
        grace_s: how long after the local root ends late children are still awaited.
        max_spans: the most spans buffered at once.
        max_traces: the most traces buffered at once.
        max_age_s: a trace is decided at the latest this long after its first span ended.
        remember_s: how long a decision still applies to spans of that trace that end later.
        clock: seconds, monotonic (tests pass their own).

    Raises:
        ValueError: a ratio outside [0, 1], or a non-positive limit.
    """

    def __init__(
        self,
        delegate: SpanProcessor | SpanExporter,
        *,
        slow_s: float = LESSON_PRESET.slow_s,
        ratio: float = LESSON_PRESET.ratio,
        grace_s: float = 2.0,
        max_spans: int = 100_000,
        max_traces: int = 10_000,
        max_age_s: float = 300.0,
        remember_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be within [0, 1]; got {ratio}")
        if max_spans < 1 or max_traces < 1 or grace_s < 0 or max_age_s <= 0:
            raise ValueError("max_spans and max_traces must be positive; grace_s >= 0; max_age_s > 0")
        self._delegate = delegate if isinstance(delegate, SpanProcessor) else BatchSpanProcessor(delegate)
        self._slow_s, self._grace_s, self._max_age_s, self._remember_s = slow_s, grace_s, max_age_s, remember_s
        self._max_spans, self._max_traces = max_spans, max_traces
        self._bound = TraceIdRatioBased.get_bound_for_rate(ratio)  # of _share's [0, 2**64), as the SDK's own
        self._clock = clock
        self._lock = threading.Lock()
        self._traces: OrderedDict[int, _Trace] = OrderedDict()  # in order of first span
        self._ended: OrderedDict[int, float] = OrderedDict()  # traces whose local root ended, in that order
        self._decided: OrderedDict[int, tuple[bool, float]] = OrderedDict()
        self._stats = TailStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="mcp_tracing-tail-sampler", daemon=True)
            self._thread.start()

    # -- SpanProcessor -------------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._delegate.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None or not ctx.trace_flags.sampled:
            return
        forward: list[ReadableSpan] = []
        with self._lock:
            now = self._clock()
            decided = self._decided.get(ctx.trace_id)
            if decided is not None:  # a late child of a decided trace follows the decision
                self._count(decided[0], 1)
                if decided[0]:
                    forward.append(span)
            else:
                entry = self._traces.get(ctx.trace_id)
                if entry is None:
                    entry = self._traces[ctx.trace_id] = _Trace(first_seen=now)
                entry.spans.append(span)
                self._stats.buffered_spans += 1
                if span.status.status_code is StatusCode.ERROR:
                    entry.error = True
                if span.parent is None or span.parent.is_remote:
                    entry.root_duration_s = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
                    self._ended[ctx.trace_id] = now
                    self._ended.move_to_end(ctx.trace_id)
                forward.extend(self._enforce_limits())
            forward.extend(self._decide_due(now))
        self._forward(forward)

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.force_flush()
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Decides every buffered trace now (as if its grace period were over) and flushes the delegate."""
        with self._lock:
            forward = [s for trace_id in list(self._traces) for s in self._decide(trace_id)]
        self._forward(forward)
        return self._delegate.force_flush(timeout_millis)

    def stats(self) -> TailStats:
        """A snapshot of the counters."""
        with self._lock:
            self._stats.buffered_traces = len(self._traces)
            return TailStats(**self._stats.__dict__)

    # -- decisions -----------------------------------------------------------------------------------
    def _keep(self, trace_id: int, entry: _Trace) -> bool:
        if entry.error or entry.root_duration_s >= self._slow_s or is_kept(trace_id):
            return True
        return _share(trace_id) < self._bound

    def _decide(self, trace_id: int, *, early: bool = False) -> list[ReadableSpan]:
        entry = self._traces.pop(trace_id)
        self._ended.pop(trace_id, None)
        keep = self._keep(trace_id, entry)
        self._decided[trace_id] = (keep, self._clock())
        while len(self._decided) > self._max_traces * 10:
            self._decided.popitem(last=False)
        self._stats.buffered_spans -= len(entry.spans)
        self._stats.kept_traces += keep
        self._stats.dropped_traces += not keep
        self._stats.decided_early += early
        self._count(keep, len(entry.spans))
        return entry.spans if keep else []

    def _count(self, keep: bool, spans: int) -> None:
        if keep:
            self._stats.kept_spans += spans
        else:
            self._stats.dropped_spans += spans

    def _enforce_limits(self) -> list[ReadableSpan]:
        # Full: the oldest open trace is decided now, on what is known of it (errors seen, else the ratio).
        out: list[ReadableSpan] = []
        while self._traces and (self._stats.buffered_spans > self._max_spans or len(self._traces) > self._max_traces):
            out.extend(self._decide(next(iter(self._traces)), early=True))
        return out

    def _decide_due(self, now: float) -> list[ReadableSpan]:
        # Both queues are in time order: stop at the first trace that is not due yet.
        out: list[ReadableSpan] = []
        while self._ended and now - next(iter(self._ended.values())) >= self._grace_s:
            out.extend(self._decide(next(iter(self._ended))))
        while self._traces and now - next(iter(self._traces.values())).first_seen >= self._max_age_s:
            out.extend(self._decide(next(iter(self._traces))))
        while self._decided and now - next(iter(self._decided.values()))[1] > self._remember_s:
            self._decided.popitem(last=False)
        return out

    def _forward(self, spans: list[ReadableSpan]) -> None:
        for span in spans:
            try:
                self._delegate.on_end(span)
            except Exception:
                _logger.exception("mcp_tracing tail sampler: the delegate failed on a span")

    def _run(self) -> None:
        interval = max(min(self._grace_s / 2, 1.0), 0.05)
        while not self._stop.wait(interval):
            with self._lock:
                forward = self._decide_due(self._clock())
            self._forward(forward)

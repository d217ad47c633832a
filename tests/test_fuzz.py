"""Property-based fuzzing (hypothesis) of every carrier and of the proxy's framing, sized to run in CI.

Carriers come from the peer or the spawner and are arbitrary: reading them never raises and yields either
nothing or a valid context; writing keeps what the caller put there; a written context reads back the same.
The proxy's framing sees the same messages however the byte stream is cut.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mcp_tracing.propagation import extract_env, extract_headers, extract_meta, inject_env, inject_headers, inject_meta
from mcp_tracing.proxy import Framer, messages

FUZZ = settings(max_examples=300, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
traceparent_like = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"\A[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z"),
    st.builds(lambda n: "00-" + "0" * 32 + "-" + "0" * 16 + f"-{n:02x}", st.integers(0, 255)),
)
carrier_keys = st.sampled_from(["traceparent", "tracestate", "baggage", "TRACEPARENT", "Traceparent", "other"])


def valid_or_none(ctx: object) -> bool:
    return ctx is None or trace.get_current_span(ctx).get_span_context().is_valid  # type: ignore[arg-type]


@FUZZ
@given(st.dictionaries(carrier_keys | st.text(max_size=10), json_values | traceparent_like, max_size=6))
def test_meta_of_any_shape_reads_as_nothing_or_a_valid_context(meta: dict[str, Any]) -> None:
    assert valid_or_none(extract_meta(meta))


@FUZZ
@given(json_values)
def test_meta_that_is_not_a_mapping_reads_as_nothing(meta: Any) -> None:
    if not isinstance(meta, dict):
        assert extract_meta(meta) is None


@FUZZ
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=40) | traceparent_like, max_size=6))
def test_env_and_headers_of_any_shape_read_as_nothing_or_a_valid_context(carrier: dict[str, str]) -> None:
    assert valid_or_none(extract_env({k.upper(): v for k, v in carrier.items()}))
    assert valid_or_none(extract_headers(carrier))


span_contexts = st.builds(
    lambda trace_id, span_id, sampled: SpanContext(
        trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0)
    ),
    st.integers(1, 2**128 - 1),
    st.integers(1, 2**64 - 1),
    st.booleans(),
)


@FUZZ
@given(span_contexts, st.dictionaries(st.text(max_size=10), json_values, max_size=4))
def test_a_written_context_reads_back_the_same_from_every_carrier(span: SpanContext, user_meta: dict[str, Any]) -> None:
    ctx = trace.set_span_in_context(NonRecordingSpan(span))
    meta = inject_meta(user_meta, context=ctx)
    for key, value in user_meta.items():  # the caller's own keys are kept (but the propagator's)
        if key not in ("traceparent", "tracestate", "baggage"):
            assert meta[key] == value
    env = inject_env({}, context=ctx, keep_existing=False)
    headers: dict[str, str] = {}
    inject_headers(headers, context=ctx)
    for read in (extract_meta(meta), extract_env(env), extract_headers(headers)):
        assert read is not None
        got = trace.get_current_span(read).get_span_context()
        assert (got.trace_id, got.span_id, got.trace_flags.sampled) == (
            span.trace_id,
            span.span_id,
            span.trace_flags.sampled,
        )


messages_strategy = st.lists(
    st.dictionaries(st.sampled_from(["jsonrpc", "id", "method", "params", "result"]), json_values, min_size=1),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(messages_strategy, st.lists(st.integers(1, 64), min_size=1, max_size=20), st.booleans())
def test_the_proxy_sees_the_same_messages_however_the_stream_is_cut(
    sent: list[dict[str, Any]], cuts: list[int], ascii_only: bool
) -> None:
    stream = b"".join(json.dumps(m, ensure_ascii=ascii_only).encode() + b"\n" for m in sent)
    seen: list[bytes] = []
    framer = Framer(lambda line, _at: seen.append(line))
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        framer.feed(stream[position : position + size], 0)
        position += size
        index += 1
    assert [json.loads(line) for line in seen] == sent
    assert [m for line in seen for m in messages(line)] == sent


@FUZZ
@given(st.binary(max_size=300))
def test_the_proxy_reads_any_bytes_without_raising(data: bytes) -> None:
    framer = Framer(lambda line, _at: list(messages(line)))
    framer.feed(data, 0)
    framer.feed(b"\n", 0)

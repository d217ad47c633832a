"""Property-based fuzzing (hypothesis) of every carrier and of the proxy's framing, sized to run in CI.

Carriers come from the peer or the spawner and are arbitrary: reading them never raises and yields either
nothing or a valid context; writing keeps what the caller put there; a written context reads back the same.
The proxy's framing sees the same messages however the byte stream is cut.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mcp_tracing._core.bounds import NAME_LIMIT, URI_LIMIT
from mcp_tracing.privacy import Privacy
from mcp_tracing.propagation import extract_env, extract_headers, extract_meta, inject_env, inject_headers, inject_meta
from mcp_tracing.proxy import Framer, Proxy, messages

FUZZ = settings(max_examples=300, deadline=None)
pytestmark = [
    pytest.mark.sdk_independent,
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),  # a 300 kB value's repr
]

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
@given(json_values.filter(lambda value: not isinstance(value, dict)))
def test_meta_that_is_not_a_mapping_reads_as_nothing(meta: Any) -> None:
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
    def read(line: bytes, _at: int) -> None:
        list(messages(line))

    framer = Framer(read)
    framer.feed(data, 0)
    framer.feed(b"\n", 0)


# ----------------------------------------------------------------------------------- hostile peers
# The shapes of the hostile-input report: huge values, terminal escapes, bidi overrides, NUL, deep nesting
# (just under and far over what the parser takes), ids and codes of every JSON type, from either side.

HOSTILE_TEXT = st.sampled_from(
    ["n" * 300_000, "x\x1b]0;PWNED\x07\x1b[2J", "\u202egnp.exe", "\x00\x9b31m", "", "tools/call"]
) | st.text(max_size=16)
DEEP_FRAGMENTS = ["[" * depth + "]" * depth for depth in (100, 900, 5_000)] + ['{"a":' * 900 + "1" + "}" * 900]
fragments = st.one_of(
    json_values.map(json.dumps),
    HOSTILE_TEXT.map(json.dumps),
    st.sampled_from(DEEP_FRAGMENTS),
    st.integers().map(str),
)
methods = st.sampled_from(
    [
        "initialize",
        "server/discover",
        "tools/call",
        "prompts/get",
        "resources/read",
        "notifications/progress",
        "notifications/cancelled",
        "sampling/createMessage",
    ]
).map(json.dumps)


def _object(parts: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in parts.items()) + "}"


params = st.dictionaries(
    st.sampled_from(["name", "uri", "arguments", "_meta", "progressToken", "requestId", "progress", "total"]),
    fragments,
    max_size=5,
).map(_object)
meta_params = st.fixed_dictionaries(
    {"name": HOSTILE_TEXT.map(json.dumps), "_meta": st.dictionaries(carrier_keys, fragments, max_size=3).map(_object)}
).map(_object)
hostile_messages = st.fixed_dictionaries(
    {"jsonrpc": st.just('"2.0"')},
    optional={
        "id": fragments,
        "method": methods | fragments,
        "params": params | meta_params | fragments,
        "result": fragments,
        "error": st.fixed_dictionaries({"code": fragments, "message": fragments}).map(_object) | fragments,
    },
).map(_object)
hostile_lines = st.lists(hostile_messages, min_size=1, max_size=3).map(
    lambda batch: batch[0] if len(batch) == 1 else "[" + ",".join(batch) + "]"
)


class _Complaints(logging.Handler):
    """Every warning or error mcp_tracing logs while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _assert_bounded(spans: Sequence[ReadableSpan], privacy: Privacy) -> None:
    longest_value = max(URI_LIMIT, privacy.max_length + len("...[truncated]"))
    for span in spans:
        assert span.end_time is not None, span.name
        assert len(span.name) <= 2 * NAME_LIMIT + 1, len(span.name)
        for key, value in (span.attributes or {}).items():
            values = value if isinstance(value, tuple) else (value,)
            assert all(len(str(v)) <= longest_value for v in values), (key, len(str(value)))


@FUZZ
@given(st.lists(st.tuples(st.booleans(), hostile_lines), min_size=1, max_size=8), st.booleans())
def test_the_proxy_takes_any_hostile_exchange_quietly_and_keeps_its_spans_small(
    exchange: list[tuple[bool, str]], capture_content: bool
) -> None:
    """Never raises, never logs a complaint, ends every span it starts, and every name and value is bounded."""
    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    privacy = Privacy(capture_content=capture_content, capture_exception_text=capture_content)
    proxy = Proxy(tracer_provider=provider, privacy=privacy)
    complaints = _Complaints()
    logging.getLogger("mcp_tracing").addHandler(complaints)
    try:
        for from_client, text in exchange:
            observe = proxy.from_client if from_client else proxy.from_server
            observe(text.encode("utf-8", "surrogatepass"), 1_000)
        proxy.close(exited=True)
    finally:
        logging.getLogger("mcp_tracing").removeHandler(complaints)
    assert not complaints.records, [r.getMessage() for r in complaints.records]
    _assert_bounded(exporter.get_finished_spans(), privacy)


header_names = st.sampled_from(
    [b"traceparent", b"tracestate", b"baggage", b"user-agent", b"mcp-session-id", b"content-type", b"x-other"]
)
header_values = st.binary(max_size=64) | HOSTILE_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass"))
http_scopes = st.fixed_dictionaries(
    {
        "type": st.just("http"),
        "method": st.sampled_from(["GET", "POST", "DELETE"]) | HOSTILE_TEXT,
        "path": st.just("/mcp") | HOSTILE_TEXT,
        "headers": st.lists(st.tuples(header_names, header_values), max_size=8),
        "root_path": st.just("") | HOSTILE_TEXT,
        "client": st.tuples(HOSTILE_TEXT, st.integers(0, 65535)) | st.none(),
        "http_version": st.sampled_from(["1.1", "2"]),
        "scheme": st.sampled_from(["http", "https"]),
    }
)


@FUZZ
@given(http_scopes, st.sampled_from(["default", "untrusted"]), st.integers(100, 599))
def test_the_http_middleware_passes_any_hostile_request_through_unchanged(
    scope: dict[str, Any], policy: str, status: int
) -> None:
    """The app sees the request as sent and the client gets the app's answer as sent; one span, bounded."""
    import anyio

    from mcp_tracing.asgi import TraceContextMiddleware

    provider, exporter = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    answer = [
        {"type": "http.response.start", "status": status, "headers": [(b"x-app", b"\x00\xff")]},
        {"type": "http.response.body", "body": b"\x1b]0;app\x07", "more_body": False},
    ]
    seen: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    async def app(inner: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append({k: v for k, v in inner.items() if k in scope})
        assert (await receive())["body"] == b"request"
        for message in answer:
            await send(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"request", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = TraceContextMiddleware(app, policy=policy, tracer_provider=provider)  # type: ignore[arg-type]
    complaints = _Complaints()
    logging.getLogger("mcp_tracing").addHandler(complaints)
    try:
        anyio.run(middleware, dict(scope), receive, send)  # type: ignore[arg-type]
    finally:
        logging.getLogger("mcp_tracing").removeHandler(complaints)
    assert seen == [scope] and sent == answer
    assert not complaints.records, [r.getMessage() for r in complaints.records]
    (span,) = exporter.get_finished_spans()
    _assert_bounded([span], Privacy())
    method = (span.attributes or {})["http.request.method"]
    assert span.name == (scope["method"] if method != "_OTHER" else "HTTP")

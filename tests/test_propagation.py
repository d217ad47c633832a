"""The three carriers: _meta (SEP-414), environment (OTel env-carrier spec), HTTP headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import CarrierT, Getter, Setter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from mcp_tracing import propagation
from mcp_tracing.stdio import child_environment

pytestmark = pytest.mark.sdk_independent  # the same on either SDK line: scripts/test runs it on mcp 2.x only

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def ctx_with_span(tracestate: str | None = None) -> Context:
    from opentelemetry.trace.span import TraceState

    state = TraceState.from_header([tracestate]) if tracestate else TraceState()
    span = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, True, TraceFlags(1), state))
    return trace.set_span_in_context(span, baggage.set_baggage("user.id", "42"))


def ids(ctx: Context | None) -> tuple[int, int] | None:
    if ctx is None:
        return None
    sc = trace.get_current_span(ctx).get_span_context()
    return sc.trace_id, sc.span_id


class TestMeta:
    def test_inject_writes_unprefixed_sep414_keys_and_keeps_other_keys(self) -> None:
        meta = propagation.inject_meta({"custom": 1, "progressToken": 7}, context=ctx_with_span("vendor=x"))
        assert meta == {
            "custom": 1,
            "progressToken": 7,
            "traceparent": TRACEPARENT,
            "tracestate": "vendor=x",
            "baggage": "user.id=42",
        }

    def test_inject_drops_stale_propagator_keys_first(self) -> None:
        """A re-sent _meta never keeps an old tracestate next to a new traceparent (TextMapPropagator.fields)."""
        span = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, True, TraceFlags(1)))
        meta = propagation.inject_meta(
            {"traceparent": "00-old", "tracestate": "stale=1", "baggage": "old=1"},
            context=trace.set_span_in_context(span, Context()),
        )
        assert meta == {"traceparent": TRACEPARENT}

    def test_extract_round_trips_context_and_baggage(self) -> None:
        ctx = propagation.extract_meta(propagation.inject_meta(context=ctx_with_span()))
        assert ids(ctx) == (TRACE_ID, SPAN_ID)
        assert ctx is not None and baggage.get_baggage("user.id", ctx) == "42"
        assert trace.get_current_span(ctx).get_span_context().is_remote

    def test_extract_reads_pydantic_extra_fields(self) -> None:
        """mcp 1.x hands servers RequestParams.Meta, whose SEP-414 keys are pydantic extra fields."""
        from pydantic import BaseModel, ConfigDict

        class Meta(BaseModel):
            model_config = ConfigDict(extra="allow")

        assert ids(propagation.extract_meta(Meta(traceparent=TRACEPARENT))) == (TRACE_ID, SPAN_ID)  # type: ignore[call-arg]

    @pytest.mark.parametrize(
        "meta",
        [
            None,
            {},
            "a string",
            42,
            {"traceparent": 12345},
            {"traceparent": None},
            {"traceparent": ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]},
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01"},
            {"traceparent": "00-00000000000000000000000000000000-b7ad6b7169203331-01"},
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"},
            {"traceparent": TRACEPARENT + "x" * 10_240},
            {"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\u00e9"},
            {1: TRACEPARENT},
        ],
    )
    def test_malformed_or_wrong_typed_meta_means_no_context(self, meta: object) -> None:
        assert propagation.extract_meta(meta) is None

    def test_oversized_tracestate_is_ignored_but_the_traceparent_kept(self) -> None:
        ctx = propagation.extract_meta({"traceparent": TRACEPARENT, "tracestate": "a=" + "b" * 10_240})
        assert ids(ctx) == (TRACE_ID, SPAN_ID)
        assert ctx is not None and len(trace.get_current_span(ctx).get_span_context().trace_state) == 0


class TestEnv:
    def test_inject_writes_normalised_upper_case_variables(self) -> None:
        env = propagation.inject_env({"PATH": "/bin"}, context=ctx_with_span("vendor=x"))
        assert env == {"PATH": "/bin", "TRACEPARENT": TRACEPARENT, "TRACESTATE": "vendor=x", "BAGGAGE": "user.id=42"}

    def test_explicit_traceparent_is_kept(self) -> None:
        env = propagation.inject_env({"TRACEPARENT": "caller-chose-this"}, context=ctx_with_span())
        assert env == {"TRACEPARENT": "caller-chose-this"}

    def test_extract_reads_only_normalised_names(self) -> None:
        """The spec: Get normalises the key, so a literal lower-case ``traceparent`` variable is never read."""
        assert ids(propagation.extract_env({"TRACEPARENT": TRACEPARENT})) == (TRACE_ID, SPAN_ID)
        assert propagation.extract_env({"traceparent": TRACEPARENT}) is None

    @pytest.mark.parametrize(
        "value",
        ["", "garbage", "00-" + "a" * 10_240, "00-00000000000000000000000000000000-b7ad6b7169203331-01"],
    )
    def test_malformed_env_means_no_context(self, value: str) -> None:
        assert propagation.extract_env({"TRACEPARENT": value}) is None

    def test_extract_defaults_to_os_environ(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TRACEPARENT", TRACEPARENT)
        assert ids(propagation.extract_env()) == (TRACE_ID, SPAN_ID)

    @pytest.mark.parametrize("implementation", ["opentelemetry", "fallback"])
    def test_env_keys_follow_the_spec_normalisation(self, implementation: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """OpenTelemetry's env carrier where importable, the built-in one otherwise: the same behaviour."""
        if implementation == "fallback":
            monkeypatch.setattr(propagation, "_otel_env", None)
        setter, getter = propagation.EnvSetter(), propagation.EnvGetter()
        assert (setter._otel is None, getter._otel is None) == ((implementation == "fallback",) * 2)
        env: dict[str, str] = {}
        for key in ("x-b3-traceid", "", "1abc", "ot-tracer.spanid"):
            setter.set(env, key, "v")
        assert sorted(env) == ["OT_TRACER_SPANID", "X_B3_TRACEID", "_", "_1ABC"]
        assert getter.keys({"X_B3_TRACEID": "v", "lower": "v", "1X": "v"}) == ["X_B3_TRACEID"]
        assert getter.get({"X_B3_TRACEID": "v"}, "x-b3-traceid") == ["v"]
        assert getter.get({"TRACEPARENT": "x" * 9000}, "traceparent") is None
        assert getter.get({"traceparent": "v"}, "traceparent") is None


class TestHeaders:
    def test_inject_replaces_old_values_case_insensitively(self) -> None:
        headers = {"Traceparent": "old", "Content-Type": "application/json"}
        propagation.inject_headers(headers, context=ctx_with_span())
        assert headers == {"Content-Type": "application/json", "traceparent": TRACEPARENT, "baggage": "user.id=42"}

    def test_extract_is_case_insensitive_and_forgiving(self) -> None:
        assert ids(propagation.extract_headers({"TraceParent": TRACEPARENT})) == (TRACE_ID, SPAN_ID)
        assert propagation.extract_headers({"traceparent": f"{TRACEPARENT},{TRACEPARENT}"}) is None
        assert propagation.extract_headers({"traceparent": "\udcff"}) is None


class _BraveLike(TextMapPropagator):
    """A non-W3C propagator, to prove the carriers use whatever the application configured."""

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] | None = None
    ) -> Context:
        assert getter is not None
        values = getter.get(carrier, "x-test-trace")
        if not values:
            return context or Context()
        trace_id, span_id = (int(v, 16) for v in values[0].split(":"))
        return trace.set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, True)), context)

    def inject(self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] | None = None) -> None:
        assert setter is not None
        sc = trace.get_current_span(context).get_span_context()
        setter.set(carrier, "x-test-trace", f"{sc.trace_id:032x}:{sc.span_id:016x}")

    @property
    def fields(self) -> set[str]:
        return {"x-test-trace"}


@pytest.fixture
def custom_propagator() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([_BraveLike(), W3CBaggagePropagator()]))
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


@pytest.mark.usefixtures("custom_propagator")
def test_every_carrier_goes_through_the_globally_configured_propagators() -> None:
    ctx = ctx_with_span()
    meta = propagation.inject_meta(context=ctx)
    assert set(meta) == {"x-test-trace", "baggage"}
    assert ids(propagation.extract_meta(meta)) == (TRACE_ID, SPAN_ID)
    env = propagation.inject_env({}, context=ctx)
    assert set(env) == {"X_TEST_TRACE", "BAGGAGE"}
    assert ids(propagation.extract_env(env)) == (TRACE_ID, SPAN_ID)
    headers: dict[str, str] = {}
    propagation.inject_headers(headers, context=ctx)
    assert ids(propagation.extract_headers(headers)) == (TRACE_ID, SPAN_ID)


class _Exploding(TraceContextTextMapPropagator):
    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        raise RuntimeError("broken third-party propagator")


def test_a_failing_propagator_means_no_context_not_an_exception() -> None:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(_Exploding())
    try:
        assert propagation.extract_meta({"traceparent": TRACEPARENT}) is None
    finally:
        propagate.set_global_textmap(previous)


class TestChildEnvironment:
    PARENT = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_SERVICE_NAME": "agent",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=agent",
        "MCP_TRACING_HASH_KEY": "k",
        "TRACEPARENT": "00-11111111111111111111111111111111-2222222222222222-01",
        "HOME": "/root",
        "SECRET_TOKEN": "never-forwarded",
    }

    def test_forwards_exporter_and_sampler_settings_and_injects_the_current_context(self) -> None:
        env = child_environment({"CALLER": "1"}, parent_env=self.PARENT, context=ctx_with_span())
        assert env == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "MCP_TRACING_HASH_KEY": "k",
            "MCP_TRACING_STORE": "/root/.local/share/mcp-tracing/traces.db",  # resolved, not HOME or XDG_*
            "CALLER": "1",
            "TRACEPARENT": TRACEPARENT,
            "BAGGAGE": "user.id=42",
        }

    def test_the_callers_values_win(self) -> None:
        env = child_environment(
            {"OTEL_SERVICE_NAME": "files", "OTEL_TRACES_SAMPLER": "always_on", "TRACEPARENT": "chosen"},
            parent_env=self.PARENT,
            context=ctx_with_span(),
        )
        assert env["OTEL_SERVICE_NAME"] == "files"
        assert env["OTEL_TRACES_SAMPLER"] == "always_on"
        assert env["TRACEPARENT"] == "chosen" and "BAGGAGE" not in env

    def test_console_exporters_are_not_forwarded_into_the_protocol_channel(self) -> None:
        """Seen under opentelemetry-instrument: a child told to print spans prints them into its stdout."""
        parent = {
            "OTEL_TRACES_EXPORTER": "console, otlp_proto_http",
            "OTEL_METRICS_EXPORTER": "console",
            "OTEL_LOGS_EXPORTER": "otlp",
            "MCP_TRACING_HASH_KEY": "k",
            "MCP_TRACING_STORE": "/s.db",
        }
        env = child_environment(None, parent_env=parent, context=Context())
        assert env == {
            "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "otlp",
            "MCP_TRACING_HASH_KEY": "k",
            "MCP_TRACING_STORE": "/s.db",
        }
        # Asked for explicitly in StdioServerParameters.env, it is the caller's choice.
        assert (
            child_environment({"OTEL_TRACES_EXPORTER": "console"}, parent_env=parent)["OTEL_TRACES_EXPORTER"]
            == "console"
        )

    def test_no_current_span_means_no_traceparent(self) -> None:
        assert "TRACEPARENT" not in child_environment(None, parent_env={}, context=Context())

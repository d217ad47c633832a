"""The lesson's agent span taxonomy, as context managers usable with ``with`` and ``async with``.

    from mcp_tracing import agent

    async with agent.session(user_id="u1", agent_type="support", request_id="req-42"):
        async with agent.turn(1, state_at_start="PLANNING"):
            with agent.model_call("gpt-x") as call:
                reply = ...
                call.set_attribute(agent.TOKENS_IN, 1200)
            async with agent.tool_call("read_file", server_name="filesystem"):
                await session.call_tool("read_file", {...})   # enriches this span: no second CLIENT span

Span names follow the OpenTelemetry GenAI semantic conventions where they name the operation, which is what
backends key their views on: ``invoke_agent {agent}`` for a session, ``chat {model}`` for a model call,
``execute_tool {tool}`` for a tool call, each with ``gen_ai.operation.name``. The others have no convention
and keep the lesson's names (``agent.turn``, ``state.checkpoint``, ``validator.run``, ``human.approval``).
``MCP_TRACING_SPAN_NAMES=lesson`` gives every span the lesson's name (``agent.session``, ``model.call``,
``tool.call``); the attributes are the same either way. The spans with no GenAI operation carry
OpenInference's ``openinference.span.kind`` instead (CHAIN, GUARDRAIL), so Phoenix shows a kind for every one.
Attributes use the OpenTelemetry semantic convention keys where one exists (``gen_ai.*``, ``user.id``) and
``mcp_tracing.*`` otherwise. README.md has the table. Extra keyword arguments become attributes as given
(e.g. ``request_id="req-42"``).

A ``tool_call`` span that wraps exactly one MCP ``tools/call`` of a traced session *is* that call's
client span: the client instrumentation adds the MCP attributes to it and sends its context in
``_meta``, instead of nesting a second span (the OpenTelemetry MCP conventions recommend this).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import Token
from types import TracebackType

from opentelemetry import context as otel_context, trace
from opentelemetry.trace import Span, SpanKind, TracerProvider
from opentelemetry.util.types import AttributeValue

from mcp_tracing._core import attributes as attr, settings, spans as _spans
from mcp_tracing._core.attributes import (  # the taxonomy's attribute names, defined with the others
    AGENT_TYPE as AGENT_TYPE,
    BYTES_WRITTEN as BYTES_WRITTEN,
    ISSUES_COUNT as ISSUES_COUNT,
    MODEL_NAME as MODEL_NAME,
    PASSED as PASSED,
    REQUEST_SOURCE as REQUEST_SOURCE,
    STATE_AT_START as STATE_AT_START,
    STORE_TYPE as STORE_TYPE,
    TEMPERATURE as TEMPERATURE,
    TOKENS_IN as TOKENS_IN,
    TOKENS_OUT as TOKENS_OUT,
    TOTAL_COST_ESTIMATE as TOTAL_COST_ESTIMATE,
    TURN_NUMBER as TURN_NUMBER,
    USED_TOOLS as USED_TOOLS,
    USER_ID as USER_ID,
    VALIDATOR_NAME as VALIDATOR_NAME,
)
from mcp_tracing._core.tool_spans import PENDING_TOOL_CALL, PendingToolCall
from mcp_tracing._version import __version__

__all__ = [
    "AGENT_TYPE",
    "BYTES_WRITTEN",
    "ISSUES_COUNT",
    "MODEL_NAME",
    "PASSED",
    "REQUEST_SOURCE",
    "STATE_AT_START",
    "STORE_TYPE",
    "TEMPERATURE",
    "TOKENS_IN",
    "TOKENS_OUT",
    "TOTAL_COST_ESTIMATE",
    "TURN_NUMBER",
    "USED_TOOLS",
    "USER_ID",
    "VALIDATOR_NAME",
    "SPAN_NAMES",
    "AgentSpan",
    "approval",
    "checkpoint",
    "model_call",
    "session",
    "tool_call",
    "turn",
    "validator",
]


SPAN_NAMES = "MCP_TRACING_SPAN_NAMES"
"""The variable choosing span names: ``genai`` (the default, the GenAI conventions') or ``lesson``."""


def _named(convention: str, lesson: str) -> str:
    """The span's name under ``$MCP_TRACING_SPAN_NAMES``, read at each span so a test or a child can set it."""
    return lesson if settings.choice(SPAN_NAMES, ("genai", "lesson")) == "lesson" else convention


def _with_subject(operation: str, subject: str | None) -> str:
    """``{operation} {subject}``, the conventions' span name, or the operation alone without a subject."""
    return f"{operation} {subject}" if subject else operation


class AgentSpan:
    """One span of the taxonomy: a context manager for ``with`` and ``async with``, yielding the span."""

    def __init__(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue | None],
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        tool_name: str | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._name = name
        self._attributes = {k: v for k, v in attributes.items() if v is not None}
        self._kind = kind
        self._tool_name = tool_name
        self._provider = tracer_provider
        self._span: Span | None = None
        self._token: object = None
        self._pending: Token[PendingToolCall | None] | None = None

    def __enter__(self) -> Span:
        tracer = trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, self._provider)
        span = tracer.start_span(self._name, kind=self._kind, attributes=self._attributes)
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))
        if self._tool_name is not None:
            self._pending = PENDING_TOOL_CALL.set(PendingToolCall(span, self._tool_name))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        assert span is not None, "exit without enter"
        if self._pending is not None:
            PENDING_TOOL_CALL.reset(self._pending)
        otel_context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None and span.is_recording():
            _spans.record_exception(span, "", exc)
        span.end()

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def session(
    *,
    user_id: str | None = None,
    agent_type: str | None = None,
    request_source: str | None = None,
    total_cost_estimate: float | None = None,
    tracer_provider: TracerProvider | None = None,
    **attributes: AttributeValue,
) -> AgentSpan:
    """``invoke_agent {agent_type}`` (lesson: ``agent.session``): the root span of one user request."""
    return AgentSpan(
        _named(_with_subject(attr.OPERATION_INVOKE_AGENT, agent_type), "agent.session"),
        {
            attr.GEN_AI_OPERATION_NAME: attr.OPERATION_INVOKE_AGENT,
            USER_ID: user_id,
            AGENT_TYPE: agent_type,
            REQUEST_SOURCE: request_source,
            TOTAL_COST_ESTIMATE: total_cost_estimate,
            **attributes,
        },
        tracer_provider=tracer_provider,
    )


def turn(
    turn_number: int | None = None,
    *,
    state_at_start: str | None = None,
    tracer_provider: TracerProvider | None = None,
    **attributes: AttributeValue,
) -> AgentSpan:
    """``agent.turn``: one iteration of the orchestration loop."""
    return AgentSpan(
        "agent.turn",
        {
            attr.OPENINFERENCE_SPAN_KIND: "CHAIN",
            TURN_NUMBER: turn_number,
            STATE_AT_START: state_at_start,
            **attributes,
        },
        tracer_provider=tracer_provider,
    )


def model_call(
    model_name: str,
    *,
    temperature: float | None = None,
    tracer_provider: TracerProvider | None = None,
    **attributes: AttributeValue,
) -> AgentSpan:
    """``chat {model_name}`` (lesson: ``model.call``): one LLM request. Record ``TOKENS_IN``/``TOKENS_OUT``/
    ``USED_TOOLS`` on the span."""
    return AgentSpan(
        _named(_with_subject(attr.OPERATION_CHAT, model_name), "model.call"),
        {
            attr.GEN_AI_OPERATION_NAME: attr.OPERATION_CHAT,
            MODEL_NAME: model_name,
            TEMPERATURE: temperature,
            **attributes,
        },
        kind=SpanKind.CLIENT,
        tracer_provider=tracer_provider,
    )


def tool_call(
    tool_name: str,
    *,
    server_name: str | None = None,
    tracer_provider: TracerProvider | None = None,
    **attributes: AttributeValue,
) -> AgentSpan:
    """``execute_tool {tool_name}`` (lesson: ``tool.call``): one tool invocation. Around one MCP ``tools/call``
    it becomes that call's span."""
    return AgentSpan(
        _named(_with_subject(attr.OPERATION_EXECUTE_TOOL, tool_name), "tool.call"),
        {
            attr.GEN_AI_OPERATION_NAME: attr.OPERATION_EXECUTE_TOOL,
            attr.GEN_AI_TOOL_NAME: tool_name,
            attr.SERVER_NAME: server_name,
            **attributes,
        },
        tool_name=tool_name,
        tracer_provider=tracer_provider,
    )


def checkpoint(
    store_type: str,
    *,
    bytes_written: int | None = None,
    tracer_provider: TracerProvider | None = None,
    **attributes: AttributeValue,
) -> AgentSpan:
    """``state.checkpoint``: one persistence write."""
    return AgentSpan(
        "state.checkpoint",
        {attr.OPENINFERENCE_SPAN_KIND: "CHAIN", STORE_TYPE: store_type, BYTES_WRITTEN: bytes_written, **attributes},
        tracer_provider=tracer_provider,
    )


def validator(
    validator_name: str,
    *,
    tracer_provider: TracerProvider | None = None,
    **attributes: AttributeValue,
) -> AgentSpan:
    """``validator.run``: one validation pass. Record ``PASSED`` and ``ISSUES_COUNT`` on the span."""
    return AgentSpan(
        "validator.run",
        {attr.OPENINFERENCE_SPAN_KIND: "GUARDRAIL", VALIDATOR_NAME: validator_name, **attributes},
        tracer_provider=tracer_provider,
    )


def approval(*, tracer_provider: TracerProvider | None = None, **attributes: AttributeValue) -> AgentSpan:
    """``human.approval``: waiting for a person to approve."""
    return AgentSpan(
        "human.approval", {attr.OPENINFERENCE_SPAN_KIND: "CHAIN", **attributes}, tracer_provider=tracer_provider
    )

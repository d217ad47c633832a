"""The lesson's taxonomy helpers, and a tool.call span standing for the one MCP call it wraps."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.inprocess import traced
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mcp_tracing import agent
from mcp_tracing._core import attributes as attr

pytestmark = pytest.mark.anyio


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


GENAI_NAMES = {
    "session": "invoke_agent support",
    "model": "chat gpt-x",
    "tool": "execute_tool read_file",
}
LESSON_NAMES = {"session": "agent.session", "model": "model.call", "tool": "tool.call"}


@pytest.mark.parametrize(
    ("setting", "names"),
    [(None, GENAI_NAMES), ("genai", GENAI_NAMES), ("LESSON", LESSON_NAMES)],
    ids=["default", "genai", "lesson"],
)
async def test_the_taxonomy_nests_with_the_conventions_names_or_the_lessons_and_the_same_attributes(
    capture: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    names: dict[str, str],
) -> None:
    """The GenAI conventions' span names by default (what backends key on), the lesson's under
    ``MCP_TRACING_SPAN_NAMES=lesson``; the same attributes either way: ``gen_ai.operation.name`` where the
    conventions have an operation, OpenInference's kind where they have none."""
    if setting is None:
        monkeypatch.delenv(agent.SPAN_NAMES, raising=False)
    else:
        monkeypatch.setenv(agent.SPAN_NAMES, setting)
    provider, exporter = capture
    p: dict[str, Any] = {"tracer_provider": provider}
    async with agent.session(user_id="u1", agent_type="support", request_source="chat", request_id="r-1", **p) as s:
        s.set_attribute(agent.TOTAL_COST_ESTIMATE, 1.5)
        with agent.turn(1, state_at_start="PLANNING", **p):
            with agent.model_call("gpt-x", temperature=0.2, **p) as call:
                call.set_attributes({agent.TOKENS_IN: 1200, agent.TOKENS_OUT: 80, agent.USED_TOOLS: True})
            with agent.tool_call("read_file", server_name="filesystem", **p):
                pass
            async with agent.checkpoint("sqlite", bytes_written=512, **p):
                pass
            with agent.validator("schema", **p) as check:
                check.set_attributes({agent.PASSED: False, agent.ISSUES_COUNT: 2})
            with agent.approval(approver="ops", **p):
                pass
    spans = by_name(exporter)
    assert sorted(spans) == sorted(
        [*names.values(), "agent.turn", "state.checkpoint", "validator.run", "human.approval"]
    )
    (session,) = spans[names["session"]]
    (turn,) = spans["agent.turn"]
    assert dict(session.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "user.id": "u1",
        "gen_ai.agent.name": "support",
        "mcp_tracing.session.request_source": "chat",
        "request_id": "r-1",
        "mcp_tracing.session.total_cost_estimate": 1.5,
    }
    assert dict(turn.attributes or {}) == {
        "openinference.span.kind": "CHAIN",
        "mcp_tracing.turn.number": 1,
        "mcp_tracing.turn.state_at_start": "PLANNING",
    }
    (model,) = spans[names["model"]]
    assert model.kind is SpanKind.CLIENT
    assert dict(model.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-x",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 80,
        "mcp_tracing.model.used_tools": True,
    }
    (tool,) = spans[names["tool"]]
    assert tool.kind is SpanKind.INTERNAL
    assert dict(tool.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "read_file",
        "mcp_tracing.server.name": "filesystem",
    }
    assert dict(spans["state.checkpoint"][0].attributes or {}) == {
        "openinference.span.kind": "CHAIN",
        "mcp_tracing.checkpoint.store_type": "sqlite",
        "mcp_tracing.checkpoint.bytes_written": 512,
    }
    assert dict(spans["validator.run"][0].attributes or {}) == {
        "openinference.span.kind": "GUARDRAIL",
        "mcp_tracing.validator.name": "schema",
        "mcp_tracing.validator.passed": False,
        "mcp_tracing.validator.issues_count": 2,
    }
    assert dict(spans["human.approval"][0].attributes or {}) == {"openinference.span.kind": "CHAIN", "approver": "ops"}
    assert parent_of(turn) == session.context.span_id
    for name in (names["model"], names["tool"], "state.checkpoint", "validator.run", "human.approval"):
        assert parent_of(spans[name][0]) == turn.context.span_id, name


def test_a_session_without_an_agent_name_is_named_by_its_operation_and_a_bad_setting_is_warned_about_once(
    capture: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, exporter = capture
    monkeypatch.setenv(agent.SPAN_NAMES, "opentelemetry")
    for _ in range(2):
        with agent.session(tracer_provider=provider):
            pass
    assert [s.name for s in exporter.get_finished_spans()] == ["invoke_agent", "invoke_agent"]
    warned = [r.getMessage() for r in caplog.records if agent.SPAN_NAMES in r.getMessage()]
    assert warned == ["ignoring MCP_TRACING_SPAN_NAMES='opentelemetry': not one of genai/lesson"]


def test_an_exception_marks_the_span_and_propagates_unchanged(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    error = KeyError("secret-value")
    with pytest.raises(KeyError) as raised, agent.turn(2, tracer_provider=provider):
        raise error
    assert raised.value is error
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[attr.ERROR_TYPE] == "KeyError"
    assert "secret-value" not in span.to_json()


async def test_a_tool_call_span_around_one_mcp_call_is_that_calls_client_span(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    async with traced(provider) as session:
        async with agent.tool_call("echo", server_name="inproc", tracer_provider=provider):
            await session.call_tool("echo", {"text": "a"})
        async with agent.tool_call("echo", tracer_provider=provider):  # two calls: only the first merges
            await session.call_tool("echo", {"text": "b"})
            await session.call_tool("echo", {"text": "c"})
        async with agent.tool_call("other", tracer_provider=provider):  # another tool: never merges
            await session.call_tool("echo", {"text": "d"})
    spans = by_name(exporter)
    tool_spans = sorted([*spans["execute_tool echo"], *spans["execute_tool other"]], key=lambda s: s.start_time or 0)
    servers = {parent_of(s): s for s in spans["tools/call echo"] if s.kind is SpanKind.SERVER}
    clients = [s for s in spans["tools/call echo"] if s.kind is SpanKind.CLIENT]
    first, second, third = tool_spans
    assert first.kind is SpanKind.INTERNAL
    assert (first.attributes or {})[attr.MCP_METHOD_NAME] == "tools/call"
    assert (first.attributes or {})[attr.JSONRPC_REQUEST_ID]
    assert (first.attributes or {})[attr.TOOL_STATUS] == "ok"
    assert first.context.span_id in servers and second.context.span_id in servers
    # The second helper's second call, and the call under "other", got CLIENT spans of their own.
    assert sorted(parent_of(c) or 0 for c in clients) == sorted([second.context.span_id, third.context.span_id])
    assert all(c.context.span_id in servers for c in clients)
    assert attr.MCP_METHOD_NAME not in (third.attributes or {})


async def test_a_server_name_given_to_tool_call_wins_over_the_servers_own(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """The precedence README documents: the caller's ``server_name`` names the call's span; a call with none gets
    the name the server gave in ``initialize`` (``inproc``), and so does the server's own span."""
    provider, exporter = capture
    async with traced(provider) as session:
        async with agent.tool_call("echo", server_name="filesystem", tracer_provider=provider):
            await session.call_tool("echo", {"text": "a"})
        await session.call_tool("echo", {"text": "b"})
    (given,) = by_name(exporter)["execute_tool echo"]
    calls = by_name(exporter)["tools/call echo"]
    (own,) = [s for s in calls if s.kind is SpanKind.CLIENT]
    assert (given.attributes or {})[attr.SERVER_NAME] == "filesystem"
    assert (own.attributes or {})[attr.SERVER_NAME] == "inproc"
    assert {str((s.attributes or {})[attr.SERVER_NAME]) for s in calls if s.kind is SpanKind.SERVER} == {"inproc"}

"""Which span a ``tools/call`` enriches instead of opening a CLIENT span of its own: the ``agent.tool_call`` span
waiting for it, or a framework's GenAI ``execute_tool`` span (the OpenTelemetry MCP conventions recommend one
span per tool call, not two)."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span

from mcp_tracing._core import attributes as attr, spans as _spans

__all__ = ["PENDING_TOOL_CALL", "PendingToolCall", "claim_tool_span"]


@dataclass
class PendingToolCall:
    """A ``tool.call`` span waiting for the one MCP ``tools/call`` it may stand for."""

    span: Span
    tool_name: str
    claimed: bool = False


PENDING_TOOL_CALL: ContextVar[PendingToolCall | None] = ContextVar("mcp_tracing_pending_tool_call", default=None)


def claim_tool_span(method: str, params: Mapping[str, Any] | None) -> Span | None:
    """The ``tool.call`` span a ``tools/call`` should enrich instead of opening its own, if any.

    Only the first ``tools/call`` of the same tool, sent while that span is current, claims it.
    """
    if method != attr.TOOLS_CALL:
        return None
    tool = _spans.target_of(method, params)
    current = trace.get_current_span()
    pending = PENDING_TOOL_CALL.get()
    if pending is not None and not pending.claimed and tool == pending.tool_name and current is pending.span:
        pending.claimed = True
        return pending.span
    return _genai_tool_span(current, tool)


def _genai_tool_span(current: Span, tool: str | None) -> Span | None:
    """``current`` if it is a framework's GenAI ``execute_tool`` span for ``tool`` (pydantic-ai, OpenAI Agents,
    any framework following the GenAI conventions) that no MCP call has enriched yet.

    The tool's name is matched whole or as the end of the framework's (which may prefix it: ``files_search``
    for the MCP tool ``search``). The MCP attributes an enriched span gets mark it as taken: a second
    ``tools/call`` under it (a retry inside the tool) opens a CLIENT span of its own.
    """
    if tool is None or not current.is_recording():
        return None
    known = _spans.recorded_attributes(current)
    framework_name = known.get(attr.GEN_AI_TOOL_NAME)
    if (
        known.get(attr.GEN_AI_OPERATION_NAME) != attr.OPERATION_EXECUTE_TOOL
        or attr.MCP_METHOD_NAME in known
        or not isinstance(framework_name, str)
        or not (framework_name == tool or framework_name.endswith(("_" + tool, "." + tool, "-" + tool)))
    ):
        return None
    return current

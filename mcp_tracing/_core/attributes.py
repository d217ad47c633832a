"""Every attribute key, span name and fixed value mcp_tracing writes, in one place.

The MCP keys follow the OpenTelemetry MCP semantic conventions (status: Development). They are copied
here rather than imported from ``opentelemetry.semconv._incubating``, whose MCP constants are private and
marked deprecated. The ``mcp_tracing.*`` keys carry the lesson's tool attributes that have no
convention key; README.md has the table.
"""

from __future__ import annotations

from typing import Final

# --- OpenTelemetry MCP semantic conventions -------------------------------------------------------
MCP_METHOD_NAME: Final = "mcp.method.name"
MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
MCP_SESSION_ID: Final = "mcp.session.id"
MCP_RESOURCE_URI: Final = "mcp.resource.uri"
JSONRPC_REQUEST_ID: Final = "jsonrpc.request.id"
RPC_RESPONSE_STATUS_CODE: Final = "rpc.response.status_code"
ERROR_TYPE: Final = "error.type"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
# OpenInference's kind, for the agent spans the GenAI conventions have no operation for (a turn, a checkpoint, a
# validator): Phoenix derives AGENT/LLM/TOOL from gen_ai.operation.name and shows the rest as "unknown".
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
NETWORK_TRANSPORT: Final = "network.transport"
NETWORK_PROTOCOL_NAME: Final = "network.protocol.name"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
CLIENT_ADDRESS: Final = "client.address"
CLIENT_PORT: Final = "client.port"

EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"

# --- mcp_tracing's own keys for the lesson's tool.call attributes -----------------------------------
SERVER_NAME: Final = "mcp_tracing.server.name"
TOOL_ARGS_HASH: Final = "mcp_tracing.tool.args_hash"
TOOL_ARGS_SHAPE: Final = "mcp_tracing.tool.args_shape"
TOOL_STATUS: Final = "mcp_tracing.tool.status"
DISCOVER_REFUSED: Final = "mcp_tracing.discover.refused"
"""True on a ``server/discover`` a server refused (a server older than 2026-07-28): the probe a client in auto
mode sends before falling back to ``initialize``, so not an error."""
TOOL_RESULT_SIZE: Final = "mcp_tracing.tool.result_size"

# --- progress: an event on the span of the request it reports on -------------------------------------
PROGRESS_EVENT: Final = "mcp.progress"
PROGRESS_VALUE: Final = "mcp_tracing.progress"
PROGRESS_TOTAL: Final = "mcp_tracing.progress.total"

# --- values -------------------------------------------------------------------------------------------
OPERATION_EXECUTE_TOOL: Final = "execute_tool"
OPERATION_INVOKE_AGENT: Final = "invoke_agent"
OPERATION_CHAT: Final = "chat"
TRANSPORT_PIPE: Final = "pipe"
TRANSPORT_TCP: Final = "tcp"
ERROR_TOOL: Final = "tool_error"
STATUS_OK: Final = "ok"
STATUS_TOOL_ERROR: Final = "tool_error"
STATUS_ERROR: Final = "error"

TOOLS_CALL: Final = "tools/call"
PROMPTS_GET: Final = "prompts/get"
INITIALIZE: Final = "initialize"
SERVER_DISCOVER: Final = "server/discover"
PROGRESS_NOTIFICATION: Final = "notifications/progress"
CANCELLED_NOTIFICATION: Final = "notifications/cancelled"

# --- span names ------------------------------------------------------------------------------------
SERVER_SESSION_SPAN: Final = "mcp.server.session"
"""The stdio child's process-level span: child of the spawner's ``TRACEPARENT``, parent of every server
span whose message carried no ``_meta`` context."""

CLIENT_SESSION_SPAN: Final = "mcp.client.session"
"""Opened only by ``McpInstrumentor``, around a client transport entered with no span current: with no
tracing code in the application, it is what ties one session's messages (and the server it spawned) into
one trace."""

INSTRUMENTATION_NAME: Final = "mcp_tracing"

# The lesson's agent span taxonomy (``mcp_tracing.agent`` exports these; the store's ``--where`` keys use them).
USER_ID: Final = "user.id"
AGENT_TYPE: Final = "gen_ai.agent.name"
REQUEST_SOURCE: Final = "mcp_tracing.session.request_source"
TOTAL_COST_ESTIMATE: Final = "mcp_tracing.session.total_cost_estimate"
TURN_NUMBER: Final = "mcp_tracing.turn.number"
STATE_AT_START: Final = "mcp_tracing.turn.state_at_start"
MODEL_NAME: Final = "gen_ai.request.model"
TOKENS_IN: Final = "gen_ai.usage.input_tokens"
TOKENS_OUT: Final = "gen_ai.usage.output_tokens"
TEMPERATURE: Final = "gen_ai.request.temperature"
USED_TOOLS: Final = "mcp_tracing.model.used_tools"
BYTES_WRITTEN: Final = "mcp_tracing.checkpoint.bytes_written"
STORE_TYPE: Final = "mcp_tracing.checkpoint.store_type"
VALIDATOR_NAME: Final = "mcp_tracing.validator.name"
PASSED: Final = "mcp_tracing.validator.passed"
ISSUES_COUNT: Final = "mcp_tracing.validator.issues_count"

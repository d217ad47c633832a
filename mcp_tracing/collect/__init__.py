"""``mcp-tracing collect``: OTLP/HTTP from any process, in any language, into the local store."""

from mcp_tracing.collect.app import DEFAULT_PORT, MAX_BODY, receiver, serve

__all__ = ["DEFAULT_PORT", "MAX_BODY", "receiver", "serve"]

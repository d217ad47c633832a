"""What arrived with one HTTP request, as the MCP server spans of the messages it carried need it.

``TraceContextMiddleware`` (``mcp_tracing.asgi``) reads it once per request and leaves it in the ASGI scope;
the server tracer reads it from there, or from the scope's headers when the middleware is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from opentelemetry.context import Context
from opentelemetry.trace import Span
from starlette.types import Scope

from mcp_tracing._core.bounds import bounded
from mcp_tracing._core.policy import Policy
from mcp_tracing.propagation import extract_headers

__all__ = ["SCOPE_KEY", "HttpRequestInfo", "headers_of", "read_info", "request_info"]

SCOPE_KEY: Final = "mcp_tracing.http"
"""Where ``TraceContextMiddleware`` leaves ``HttpRequestInfo`` in the ASGI scope."""


@dataclass
class HttpRequestInfo:
    """What arrived with one HTTP request, for the MCP server spans of the messages it carried."""

    header_context: Context | None
    span: Span | None = None
    policy: Policy = "default"
    client_address: str | None = None
    client_port: int | None = None
    session_id: str | None = None


def headers_of(scope: Scope) -> dict[str, str]:
    """The request's headers, names in lower case.

    A repeated header is joined with "," (RFC 9110): a repeated traceparent then fails to parse and counts as
    absent, as W3C Trace Context requires. Bytes that are not ASCII decode as latin-1.
    """
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or ():
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def request_info(scope: Scope) -> HttpRequestInfo:
    """The ``HttpRequestInfo`` of a request: the middleware's, or one read from the scope's headers."""
    found = scope.get(SCOPE_KEY)
    if isinstance(found, HttpRequestInfo):
        return found
    return read_info(scope, headers_of(scope))


def read_info(scope: Scope, headers: Mapping[str, str]) -> HttpRequestInfo:
    # ``headers`` come from ``headers_of``: lower-case names.
    client = scope.get("client") or (None, None)
    return HttpRequestInfo(
        header_context=extract_headers(headers, lowercase=True),
        # Behind a trusted proxy the server takes the address from X-Forwarded-For: the peer's text too.
        client_address=bounded(str(client[0])) if client[0] is not None else None,
        client_port=client[1],
        session_id=bounded(headers["mcp-session-id"]) if "mcp-session-id" in headers else None,
    )

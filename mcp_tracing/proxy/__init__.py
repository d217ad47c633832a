"""``mcp-tracing wrap -- CMD ...``: traces a stdio MCP server that cannot be changed, in any language.

The client spawns ``mcp-tracing wrap -- <real server command>`` instead of the server. The proxy starts the
real server with its own environment, copies stdin to it and its stdout back byte for byte (it never
re-frames, re-encodes or holds back a byte: it reads what is there and writes it on at once), lets stderr
through untouched, forwards SIGTERM, SIGINT and SIGHUP, and ends with the real server's exit status (or dies
of the same signal).

Beside the copy it reads the newline-delimited JSON-RPC going each way (batches too) and records:

* a SERVER span per client request, from the request passing through to its response, named and attributed
  per the conventions (``tools/call read_file``, ``mcp.method.name``, ``jsonrpc.request.id``, the arguments
  hash, ``error.type`` for error responses and ``isError`` results), parented to the request's ``_meta``
  context, else to the proxy's ``mcp.server.session`` span (a child of the spawner's ``TRACEPARENT``);
* a CLIENT span per request the server sends its client (``sampling/createMessage`` ...), parented to its
  ``_meta``, else to the one client request then in flight (a server asks while serving it), else to the
  session span;
* notifications both ways as instant spans, except the housekeeping ones (the same noise settings as
  everywhere: ``MCP_TRACING_EXCLUDE_METHODS``, ``MCP_TRACING_DROP_LIST_CALLS``); progress also as an
  ``mcp.progress`` event on the request it reports on; a ``notifications/cancelled`` ends its request's span.

If the real server exits with requests pending, their spans end with ``error.type=server_exited``; the client
sees EOF as it would have. What the proxy keeps is bounded whatever a peer sends: at most ``MAX_PENDING``
unanswered requests each way (past it the oldest one's span ends with ``error.type=unanswered``), at most
``MAX_EARLY`` answers read before their request, each kept as the little its span needs, never the message.

Spans go where ``configure()`` sends them (the local store, or OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set), and are flushed before the proxy exits.
"""

from mcp_tracing.proxy.framing import MAX_OBSERVED_MESSAGE, Framer, messages
from mcp_tracing.proxy.observer import MAX_EARLY, MAX_PENDING, SERVER_EXITED, UNANSWERED, Proxy
from mcp_tracing.proxy.process import command_name, main, run

__all__ = [
    "MAX_EARLY",
    "MAX_OBSERVED_MESSAGE",
    "MAX_PENDING",
    "SERVER_EXITED",
    "UNANSWERED",
    "Framer",
    "Proxy",
    "command_name",
    "main",
    "messages",
    "run",
]

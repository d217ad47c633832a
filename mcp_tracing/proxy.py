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

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider

from . import _attributes as attr
from . import _spans
from ._bounds import bounded
from ._client_tracer import server_identity
from ._version import __version__
from .metrics import McpMetrics
from .privacy import Privacy
from .propagation import extract_env, extract_meta
from .sampling import MethodFilter

__all__ = [
    "Framer",
    "MAX_EARLY",
    "MAX_OBSERVED_MESSAGE",
    "MAX_PENDING",
    "Proxy",
    "SERVER_EXITED",
    "UNANSWERED",
    "command_name",
    "main",
    "messages",
    "run",
]

_logger = logging.getLogger(__name__)

MAX_OBSERVED_MESSAGE: Final = 64 * 1024 * 1024
"""A message longer than this is forwarded as ever but not read for tracing (bounds the proxy's memory)."""

SERVER_EXITED: Final = "server_exited"
"""``error.type`` of the requests still pending when the real server exits."""

MAX_EARLY: Final = 1024
"""Answers kept while waiting for the request they answer to be read (see ``Proxy._early``); an answer to an id
never requested waits here until newer ones push it out."""

MAX_PENDING: Final = 4096
"""Unanswered requests kept each way; past it the oldest one's span ends with ``error.type=unanswered``."""

UNANSWERED: Final = "unanswered"
"""``error.type`` of a request pushed out by ``MAX_PENDING`` newer ones still unanswered."""

_ID_LIMIT: Final = 256

_CHUNK: Final = 64 * 1024
_FORWARDED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Framer:
    """Splits a byte stream into newline-delimited messages, for reading only (the bytes go on unchanged)."""

    def __init__(self, on_message: Callable[[bytes, int], None], limit: int = MAX_OBSERVED_MESSAGE) -> None:
        self._on_message = on_message
        self._limit = limit
        self._buffer = bytearray()
        self._skipping = False  # inside a message over the limit: dropped up to its newline

    def feed(self, chunk: bytes, at: int = 0) -> None:
        """Takes the next bytes, whatever their boundaries; calls ``on_message(line, at)`` for each complete
        line (``at``: when the chunk that completed it was read, in ``time_ns``)."""
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline
            if not self._skipping:
                if len(self._buffer) + end - start > self._limit:
                    self._buffer.clear()
                    self._skipping = True
                else:
                    self._buffer += chunk[start:end]
            if newline < 0:
                return
            if self._skipping:
                self._skipping = False
            else:
                line = bytes(self._buffer)
                self._buffer.clear()
                if line.strip():
                    self._on_message(line, at)
            start = newline + 1


def messages(line: bytes) -> Iterator[dict[str, Any]]:
    """The JSON-RPC messages in one line (one object, or a batch); nothing for anything else."""
    try:
        data: object = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep to parse
        return
    items: list[object] = cast(list[object], data) if isinstance(data, list) else [data]
    for item in items:
        if isinstance(item, dict):
            yield cast(dict[str, Any], item)


def _key(request_id: object) -> str:
    """A small key for a request id or progress token, whatever the peer sent."""
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | float | None):
        return "?"  # not a JSON-RPC id (an array, an object): such messages share one key
    text = json.dumps(request_id)
    # A long id is kept by its digest: held by the thousand, ids as long as the peer likes would not be small.
    return text if len(text) <= _ID_LIMIT else "#" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass
class _Pending:
    """A request waiting for its answer: its span and what its answer's span and metric need, not its params."""

    span: Span
    method: str
    target: str | None
    measured: Mapping[str, Any]  # the attributes of its duration metric
    started: int
    kind: SpanKind
    progress_token: str | None = None


@dataclass(frozen=True)
class _Answer:
    """What a request's span needs of its answer. Answers can arrive before their request is read (or for ids
    never requested), and are then held: this keeps them small whatever the peer sent."""

    at: int
    error: tuple[object, str | None] | None  # (code, message) of an error response
    outcome: _spans.Outcome | None  # of a result, for tools/call
    identity: tuple[str | None, str | None]  # (server name, protocol version) an initialize result gives


class Proxy:
    """The tracing side of the proxy: spans for the messages it sees going each way (thread-safe)."""

    def __init__(
        self,
        *,
        server_name: str | None = None,
        fallback_name: str | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        method_filter: MethodFilter | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, tracer_provider)
        self.tracer_provider = tracer_provider
        self.metrics = McpMetrics(meter_provider)
        self.filter = method_filter or MethodFilter.resolve(None, None)
        self.privacy = privacy or Privacy.from_env()
        self.server_name = server_name or fallback_name  # until initialize or server/discover names it
        self._explicit_name = server_name is not None
        self.protocol_version: str | None = None
        self._lock = threading.Lock()
        self._from_client: dict[str, _Pending] = {}  # requests the client sent, by id
        self._from_server: dict[str, _Pending] = {}  # requests the server sent, by id
        self._progress: dict[str, Span] = {}  # progress token -> the span of the request it reports on
        # Answers read before their request: each direction is read by its own thread after the bytes are
        # passed on, so a quick peer can answer before the request's own thread has read it.
        self._early: dict[tuple[int, str], _Answer] = {}
        self.session = self.tracer.start_span(attr.SERVER_SESSION_SPAN, context=extract_env(), kind=SpanKind.INTERNAL)
        self._session_started = time.time_ns()

    # ----------------------------------------------------------------------------------- observing

    def from_client(self, line: bytes, at: int | None = None) -> None:
        """One line the client sent the server (already forwarded), read at ``at`` (``time_ns``; now if None)."""
        self._observe(line, self._client_message, at or time.time_ns())

    def from_server(self, line: bytes, at: int | None = None) -> None:
        """One line the server sent the client (already forwarded), read at ``at`` (``time_ns``; now if None)."""
        self._observe(line, self._server_message, at or time.time_ns())

    def _observe(self, line: bytes, handle: Callable[[dict[str, Any], int], None], at: int) -> None:
        try:
            for message in messages(line):
                handle(message, at)
        except Exception:  # a message mcp_tracing cannot read must never disturb the copy
            _logger.exception("mcp_tracing wrap could not read a message")

    def _client_message(self, message: dict[str, Any], at: int) -> None:
        method = message.get("method")
        params = _params(message)
        if isinstance(method, str) and "id" in message:
            self._start(self._from_client, message["id"], method, params, SpanKind.SERVER, self._parent(params), at)
        elif isinstance(method, str):
            if method == attr.CANCELLED_NOTIFICATION:
                self._cancelled(params, at)
            self._instant(method, params, SpanKind.SERVER, self._parent(params), at)
        elif "id" in message:
            self._finish(self._from_server, message, at)

    def _server_message(self, message: dict[str, Any], at: int) -> None:
        method = message.get("method")
        params = _params(message)
        if isinstance(method, str) and "id" in message:
            self._start(self._from_server, message["id"], method, params, SpanKind.CLIENT, self._asking(params), at)
        elif isinstance(method, str):
            if method == attr.PROGRESS_NOTIFICATION:
                self._progressed(params)
            self._instant(method, params, SpanKind.CLIENT, self._asking(params), at)
        elif "id" in message:
            self._finish(self._from_client, message, at)

    # --------------------------------------------------------------------------------------- spans

    def _parent(self, params: Mapping[str, Any] | None) -> Context:
        ctx = extract_meta(params.get("_meta") if params else None)
        return ctx if ctx is not None else trace.set_span_in_context(self.session)

    def _asking(self, params: Mapping[str, Any] | None) -> Context:
        """A server's own message: its ``_meta``, else the one client request in flight, else the session."""
        ctx = extract_meta(params.get("_meta") if params else None)
        if ctx is not None:
            return ctx
        with self._lock:
            pending = list(self._from_client.values())
        if len(pending) == 1:
            return trace.set_span_in_context(pending[0].span)
        return trace.set_span_in_context(self.session)

    def _attributes(self, method: str, params: Mapping[str, Any] | None, request_id: object) -> dict[str, Any]:
        return _spans.message_attributes(
            method,
            params,
            request_id=request_id,
            protocol_version=self.protocol_version,
            transport=attr.TRANSPORT_PIPE,
            server_name=self.server_name,
        )

    def _start(
        self,
        pending: dict[str, _Pending],
        request_id: object,
        method: str,
        params: Mapping[str, Any] | None,
        kind: SpanKind,
        parent: Context,
        at: int,
    ) -> None:
        attributes = self._attributes(method, params, request_id)
        span = (
            self.tracer.start_span(
                _spans.span_name(method, params), context=parent, kind=kind, attributes=attributes, start_time=at
            )
            if self.filter.traces(method)
            else trace.INVALID_SPAN  # an excluded method: no span, but still measured
        )
        _spans.record_arguments(span, method, params, self.privacy)
        token = _progress_token(params)
        key = _key(request_id)
        measured = {k: v for k, v in attributes.items() if k != attr.JSONRPC_REQUEST_ID}  # the metric's: no id
        waiting = _Pending(span, method, _spans.target_of(method, params), measured, at, kind, token)
        with self._lock:
            pending.pop(key, None)  # a reused id: the newest request is the one its answer will answer
            pending[key] = waiting
            if token is not None:
                self._progress[token] = span
            pushed_out = pending.pop(next(iter(pending))) if len(pending) > MAX_PENDING else None
            if pushed_out is not None:
                self._progress.pop(pushed_out.progress_token or "", None)
            early = self._early.pop((id(pending), key), None)
        if pushed_out is not None:
            _fail(pushed_out.span, UNANSWERED, at)
        if early is not None:
            self._settle(waiting, early)

    def _finish(self, pending: dict[str, _Pending], message: Mapping[str, Any], at: int) -> None:
        key = _key(message.get("id"))
        with self._lock:
            found = pending.pop(key, None)
            if found is not None:
                self._progress.pop(found.progress_token or "", None)
        if found is not None:
            self._settle(found, self._answer(message, at, found.method, found.target))
            return
        answer = self._answer(message, at, None, None)  # outside the lock: it reads the whole result
        with self._lock:
            if len(self._early) >= MAX_EARLY:  # answers to requests never seen: keep the newest only
                self._early.pop(next(iter(self._early)))
            self._early[(id(pending), key)] = answer

    def _answer(self, message: Mapping[str, Any], at: int, method: str | None, tool: str | None) -> _Answer:
        """The ``_Answer`` of a response to ``method`` on ``tool`` (None, None: to a request not yet read, so
        whatever any request would need)."""
        error = message.get("error")
        if isinstance(error, Mapping):
            fields = cast(Mapping[str, Any], error)
            code, text = fields.get("code"), fields.get("message")
            code = code if isinstance(code, str | int | float | None) else type(code).__name__
            return _Answer(
                at, (code, text[: self.privacy.max_length] if isinstance(text, str) else None), None, (None, None)
            )
        result = message.get("result")
        outcome = None
        if method in (None, attr.TOOLS_CALL):
            capture = self.privacy.captures(tool) if method is not None else self.privacy.capture_content
            outcome = _spans.outcome_of(result, self.privacy, capture)
        name, version = (None, None)
        if method in (None, attr.INITIALIZE, attr.SERVER_DISCOVER):
            name, version = server_identity(result)
        return _Answer(at, None, outcome, (name and bounded(name), version and bounded(version)))

    def _settle(self, found: _Pending, answer: _Answer) -> None:
        """Ends ``found``'s span with what its answer said, and measures it."""
        span, method = found.span, found.method
        if answer.error is not None:
            code, text = answer.error
            _spans.record_error_code(span, method, code, text, self.privacy)
        else:
            if method in (attr.INITIALIZE, attr.SERVER_DISCOVER):
                self._learn(answer.identity)
                if self.server_name:
                    span.set_attribute(attr.SERVER_NAME, bounded(self.server_name))
                if self.protocol_version:
                    span.set_attribute(attr.MCP_PROTOCOL_VERSION, bounded(self.protocol_version))
            if answer.outcome is not None:
                captured = answer.outcome.content is not None and self.privacy.captures(found.target)
                _spans.record_outcome(
                    span, method, answer.outcome if captured else replace(answer.outcome, content=None)
                )
        span.end(end_time=answer.at)
        # The receiver of a request records mcp.server.operation.duration, the sender the client one.
        attributes = _spans.operation_attributes(span, found.measured, None)
        record = self.metrics.server_operation if found.kind is SpanKind.SERVER else self.metrics.client_operation
        record(max(answer.at - found.started, 0) / 1e9, attributes)

    def _instant(self, method: str, params: Mapping[str, Any] | None, kind: SpanKind, parent: Context, at: int) -> None:
        if not self.filter.traces(method):
            return
        span = self.tracer.start_span(
            _spans.span_name(method, params),
            context=parent,
            kind=kind,
            attributes=self._attributes(method, params, None),
            start_time=at,
        )
        span.end(end_time=at)

    def _cancelled(self, params: Mapping[str, Any] | None, at: int) -> None:
        request_id = params.get("requestId") if params else None
        with self._lock:
            found = self._from_client.pop(_key(request_id), None)
            if found is not None:
                self._progress.pop(found.progress_token or "", None)
        if found is not None:
            _fail(found.span, "CancelledError", at)

    def _progressed(self, params: Mapping[str, Any] | None) -> None:
        token = params.get("progressToken") if params else None
        with self._lock:
            span = self._progress.get(_key(token)) if token is not None else None
        progress = params.get("progress") if params else None
        if span is None or not isinstance(progress, int | float):
            return
        total = params.get("total") if params else None
        _spans.record_progress(span, progress, total if isinstance(total, int | float) else None)

    def _learn(self, identity: tuple[str | None, str | None]) -> None:
        name, version = identity
        if name and not self._explicit_name:
            self.server_name = name
        if version:
            self.protocol_version = version

    # ---------------------------------------------------------------------------------------- end

    def close(self, *, exited: bool) -> None:
        """Ends what is open (pending requests with ``error.type=server_exited`` if the server exited)."""
        with self._lock:
            pending = [*self._from_client.values(), *self._from_server.values()]
            self._from_client.clear()
            self._from_server.clear()
            self._progress.clear()
            self._early.clear()
        for found in pending:
            if exited:
                _fail(found.span, SERVER_EXITED)
            else:
                found.span.end()
        self.session.end()
        self.metrics.server_session(
            (time.time_ns() - self._session_started) / 1e9, {attr.NETWORK_TRANSPORT: attr.TRANSPORT_PIPE}
        )


def _fail(span: Span, error_type: str, at: int | None = None) -> None:
    """Ends a request's span that got no answer: ``error.type`` and an ERROR status."""
    span.set_attribute(attr.ERROR_TYPE, error_type)
    span.set_status(StatusCode.ERROR, error_type)
    span.end(end_time=at)


def _params(message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    params = message.get("params")
    return cast(Mapping[str, Any], params) if isinstance(params, Mapping) else None


def _progress_token(params: Mapping[str, Any] | None) -> str | None:
    meta = params.get("_meta") if params else None
    token = cast(Mapping[str, Any], meta).get("progressToken") if isinstance(meta, Mapping) else None
    return _key(token) if isinstance(token, str | int) and not isinstance(token, bool) else None


# --------------------------------------------------------------------------------------------- copying


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pump(source: int, target: int, observe: Callable[[bytes, int], None], on_end: Callable[[], None]) -> None:
    """Copies ``source`` to ``target`` as bytes arrive, then lets ``observe`` read them; ``on_end`` at EOF.

    Messages are timed when read, before they are passed on: a request's span starts no earlier than the
    client sent it and a response's ends no later than the client got it.
    """
    framer = Framer(observe)
    try:
        while True:
            chunk = os.read(source, _CHUNK)
            if not chunk:
                break
            read_at = time.time_ns()
            try:
                _write_all(target, chunk)
            except OSError:  # the reader is gone (the server died, or the client closed): stop copying
                break
            framer.feed(chunk, read_at)
    except OSError:
        _logger.debug("mcp_tracing wrap: read failed", exc_info=True)
    finally:
        on_end()


def run(command: Sequence[str], proxy: Proxy, *, stdin: int = 0, stdout: int = 1) -> int:
    """Runs ``command`` behind ``stdin``/``stdout``; returns its exit status (negative: the signal it died of)."""
    try:
        child = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    except OSError as exc:
        proxy.close(exited=False)
        print(f"mcp-tracing wrap: cannot start {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    assert child.stdin is not None and child.stdout is not None
    to_server, from_server = child.stdin, child.stdout
    previous = _forward_signals(child)

    def close_server_stdin() -> None:
        try:
            to_server.close()
        except OSError:
            pass

    up = threading.Thread(
        target=_pump, args=(stdin, to_server.fileno(), proxy.from_client, close_server_stdin), daemon=True
    )

    def close_server_stdout() -> None:
        # A client that stopped reading: the server's next write fails as it would unwrapped (SIGPIPE, EPIPE),
        # instead of blocking on a pipe nobody reads.
        try:
            from_server.close()
        except OSError:
            pass

    up.start()
    try:
        _pump(from_server.fileno(), stdout, proxy.from_server, close_server_stdout)
        status = child.wait()
    finally:
        _restore_signals(previous)
    proxy.close(exited=True)
    return status


def _forward_signals(child: subprocess.Popen[bytes]) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    def forward(signum: int, _frame: object) -> None:
        try:
            child.send_signal(signum)
        except OSError:
            pass

    for signum in _FORWARDED_SIGNALS:
        try:
            previous[signum] = signal.signal(signum, forward)
        except (OSError, ValueError):  # pragma: no cover - a signal this platform does not have
            continue
    return previous


def _restore_signals(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


_LAUNCHERS: Final = frozenset(
    {"python", "python3", "node", "npx", "uv", "uvx", "bun", "bunx", "deno", "pipx", "sh", "bash"}
)
"""Commands that run another program: the server is named after what they run, not after them."""


def command_name(argv: Sequence[str]) -> str:
    """A name for the server a command starts, when it gives none: the program, or for a launcher (``python``,
    ``npx``, ``uvx``, ...) the first argument that is not an option (``weather_server``, ``server-everything``)."""
    words = [os.path.basename(word.rstrip("/")) for word in argv if word]
    program = words[0] if words else "server"
    if re.sub(r"[\d.]+$", "", program) in _LAUNCHERS:
        for word in words[1:]:
            if not word.startswith("-") and word not in ("run", "exec", "x"):
                program = word
                break
    return re.sub(r"\.(py|js|mjs|ts)$", "", program) or "server"


def main(argv: Sequence[str], *, server_name: str | None = None, service_name: str | None = None) -> int:
    """``mcp-tracing wrap``: configures tracing, runs the real server behind this process, exits as it did."""
    from ._shutdown import flush
    from .config import configure

    if not argv:
        print("mcp-tracing wrap: no server command (mcp-tracing wrap -- COMMAND ...)", file=sys.stderr)
        return 2
    name = command_name(argv)
    provider = configure(service_name or os.environ.get("OTEL_SERVICE_NAME") or name)
    proxy = Proxy(server_name=server_name, fallback_name=name)
    status = run(argv, proxy)
    flush(provider)
    if status < 0:  # died of a signal: so does the proxy, after the flush
        try:
            sys.stdout.flush()
        except OSError:  # the client is gone too
            pass
        try:
            signal.signal(-status, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP cannot be handled: they need no reset
            pass
        os.kill(os.getpid(), -status)
    return status

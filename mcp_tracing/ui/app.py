"""``mcp-tracing ui``: the local store in a browser, served on 127.0.0.1.

Read only by construction: the store is opened with SQLite's ``query_only`` (an older store is refused, not
migrated), every route is ``GET``, and nothing a request carries is ever written. Live: the list polls
``api/version`` (SQLite's ``data_version``, which moves when ``collect`` or any traced process commits) and
reads itself again. Safe to leave running: the pages' own Content-Security-Policy (``ui.page``), every value
shown as text, and requests whose ``Host`` is not this machine refused, so a web page the user visits cannot
reach the store by pointing a name of its own at 127.0.0.1 (DNS rebinding).

Routes: ``/`` (the list), ``/traces/{id}`` (a trace; a unique id prefix is enough), ``/traces/{id}.json`` (its
spans and log records, as ``show --json`` and ``logs --json`` print them), ``/api/traces`` (the list's data;
the ``traces`` filters as query parameters), ``/api/version``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mcp_tracing._serve import is_loopback, listen, serve_until_stopped, url
from mcp_tracing.store import StoreError, TraceStore, Where, default_store_path, parse_duration
from mcp_tracing.store.patterns import Thresholds, analyze, lost_halves
from mcp_tracing.ui.page import Page, list_page, trace_page
from mcp_tracing.ui.view import shown_json, trace_view

__all__ = ["DEFAULT_PORT", "LIST_LIMIT", "UiApp", "serve"]

DEFAULT_PORT: Final = 8318
LIST_LIMIT: Final = 50
"""Traces the list shows unless asked for another number (at most ``_MAX_LIMIT``)."""
_MAX_LIMIT: Final = 1000
_CACHED: Final = 4096
"""Traces whose finding counts are remembered (the list counts findings for each row it shows)."""
_LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_NO_CONTENT_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_App = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class _Reader:
    """One read-only connection to the store, opened when first needed (the store may not exist yet when the ui
    starts) and used by one request at a time (SQLite connections are not for concurrent use)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._store: TraceStore | None = None
        self._lock = threading.Lock()

    @contextmanager
    def store(self) -> Generator[TraceStore, None, None]:
        with self._lock:
            if self._store is None:
                self._store = TraceStore(self._path, read_only=True)
            yield self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class _FindingCounts:
    """How many findings each trace has, remembered while its span count and end stay the same."""

    def __init__(self, thresholds: Thresholds | None) -> None:
        self._thresholds = thresholds
        self._known: OrderedDict[tuple[str, int, float], tuple[int, list[str]]] = OrderedDict()

    def of(self, store: TraceStore, trace_id: str, spans: int, duration_ms: float) -> tuple[int, list[str]]:
        key = (trace_id, spans, duration_ms)
        if key in self._known:
            self._known.move_to_end(key)
            return self._known[key]
        records = store.spans(trace_id)
        found = (
            len(analyze(records, self._thresholds, neighbours=store.roots_between)),
            [half.server for half in lost_halves(records)],
        )
        self._known[key] = found
        if len(self._known) > _CACHED:
            self._known.popitem(last=False)
        return found


def _json(value: object, status: int = 200) -> Response:
    """JSON whose strings read as the pages show text (``shown_json``): a filter echoed back in an error, or a
    root span's name, cannot reorder the page with a bidi character."""
    return Response(shown_json(value), status_code=status, media_type="application/json")


def _error(status: int, text: str) -> Response:
    return _json({"error": text}, status)


def _page(page: Page, status: int = 200) -> HTMLResponse:
    return HTMLResponse(page.html, status_code=status, headers={"Content-Security-Policy": page.csp})


def _text_page(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8")


def _filters(request: Request) -> dict[str, Any]:
    """The ``traces`` filters from the query string; ``ValueError`` with the reason for a bad one."""
    query = request.query_params
    limit_text = query.get("limit", "").strip() or str(LIST_LIMIT)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= _MAX_LIMIT:
        raise ValueError(f"limit: not a whole number from 1 to {_MAX_LIMIT}: {limit_text!r}")
    slower = query.get("slower_than", "").strip()
    since = query.get("since", "").strip()
    return {
        "errors_only": query.get("errors", "") in ("1", "true", "on"),
        "slower_than_s": parse_duration(slower) if slower else None,
        "since_s": parse_duration(since) if since else None,
        "where": [Where.parse(text) for text in query.getlist("where") if text.strip()],
        "search": query.get("search", "").strip() or None,
        "limit": int(limit_text),
    }


def _guard(app: _App, *, allow_remote: bool) -> _App:
    """Refuses requests for a host name other than this machine's (unless serving beyond loopback was asked for)
    and adds the security headers to every answer."""

    async def guarded(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def secured(message: _Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in _HEADERS.items():
                    headers.append((name.lower().encode(), value.encode()))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", _NO_CONTENT_POLICY.encode()))
                message["headers"] = headers
            await send(message)

        if not allow_remote:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.strip("[]").lower() not in _LOOPBACK_NAMES:
                refusal = _text_page(403, "mcp-tracing ui answers requests for 127.0.0.1 and localhost only")
                await refusal(scope, receive, secured)
                return
        await app(scope, receive, secured)

    return guarded


class UiApp:
    """The ui's ASGI app over the store at ``path`` (default: ``$MCP_TRACING_STORE``, or the user's store).

    Args:
        path: the store file; it may not exist yet (the list says so, and shows traces once they arrive).
        allow_remote: answer requests for any host name (when serving beyond loopback was asked for).
        thresholds: ``analyze``'s thresholds for the findings shown.
    """

    def __init__(
        self, path: str | Path | None = None, *, allow_remote: bool = False, thresholds: Thresholds | None = None
    ) -> None:
        self._reader = _Reader(Path(path) if path is not None else None)
        self._app = _guard(_routes(self._reader, thresholds, path), allow_remote=allow_remote)

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        await self._app(scope, receive, send)

    def close(self) -> None:
        """Closes the store's connection (a later request opens it again)."""
        self._reader.close()


def _routes(reader: _Reader, thresholds: Thresholds | None, path: str | Path | None) -> Starlette:
    counts = _FindingCounts(thresholds)
    shown_path = str(path) if path is not None else str(default_store_path())

    def home(request: Request) -> Response:
        del request
        try:
            with reader.store() as store:
                where = str(store.path)
        except StoreError:
            where = shown_path
        return _page(list_page(where))

    def traces(request: Request) -> Response:
        try:
            filters = _filters(request)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            with reader.store() as store:
                rows = store.traces(**filters)
                notes = [
                    f"where {condition.key}: not in the attribute index, every span was read"
                    for condition in store.unindexed(filters["where"])
                ]
                listed: list[dict[str, Any]] = []
                for row in rows:
                    findings, lost = counts.of(store, row.trace_id, row.spans, row.duration_ms)
                    listed.append(
                        {
                            "trace_id": row.trace_id,
                            "root": row.root,
                            "services": list(row.services),
                            "start_unix_ms": row.start_ns // 1_000_000,
                            "duration_ms": row.duration_ms,
                            "spans": row.spans,
                            "errors": row.errors,
                            "findings": findings,
                            "lost_servers": lost,
                        }
                    )
                version = store.version()
        except StoreError as exc:
            return _json({"version": -1, "traces": [], "notes": [str(exc)]})
        return _json({"version": version, "traces": listed, "notes": notes})

    def version(request: Request) -> Response:
        del request
        try:
            with reader.store() as store:
                return _json({"version": store.version()})
        except StoreError:
            return _json({"version": -1})

    def trace(request: Request) -> Response:
        prefix = request.path_params["trace_id"]
        try:
            with reader.store() as store:
                trace_id = store.resolve(prefix)
                spans = store.spans(trace_id)
                findings = analyze(spans, thresholds, neighbours=store.roots_between)
                logs = store.logs(trace_id)
                version = store.version()
        except StoreError as exc:
            return _text_page(404, str(exc))
        links = {
            "list": "../",
            "json": f"{trace_id}.json",
            "version": "../api/version",
            "summary": f"../api/traces?search={trace_id}&limit=1",
        }
        return _page(trace_page(trace_view(spans, findings, logs, links=links, version=version)))

    def trace_json(request: Request) -> Response:
        prefix = request.path_params["trace_id"]
        try:
            with reader.store() as store:
                trace_id = store.resolve(prefix)
                spans = [span.__dict__ for span in store.spans(trace_id)]
                logs = [record.__dict__ for record in store.logs(trace_id)]
        except StoreError as exc:
            return _error(404, str(exc))
        body = json.dumps({"trace_id": trace_id, "spans": spans, "logs": logs}, indent=2, default=str)
        return Response(body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/api/traces", traces, methods=["GET"]),
            Route("/api/version", version, methods=["GET"]),
            Route("/traces/{trace_id:str}.json", trace_json, methods=["GET"]),
            Route("/traces/{trace_id:str}", trace, methods=["GET"]),
        ]
    )


def serve(
    path: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    allow_remote: bool = False,
    thresholds: Thresholds | None = None,
) -> int:
    """Serves the ui until SIGTERM or SIGINT; returns the exit status (1 when it cannot listen).

    The address is printed on stderr once the socket listens (port 0 picks a free one).

    Raises:
        ValueError: ``host`` is not loopback and ``allow_remote`` is not set.
    """
    if not is_loopback(host) and not allow_remote:
        raise ValueError(f"{host} is not loopback: serving the store there needs allow_remote=True")
    listener = listen(host, port, "ui")
    if listener is None:
        return 1
    app = UiApp(path, allow_remote=allow_remote, thresholds=thresholds)
    where = Path(path) if path is not None else default_store_path()

    def stopped() -> None:
        app.close()
        print("mcp-tracing ui: stopped", file=sys.stderr)

    announce = f"mcp-tracing ui: serving {url(listener)}/ (the store at {where}, read only; Ctrl-C stops it)"
    return serve_until_stopped(app, listener, announce, on_stop=stopped)

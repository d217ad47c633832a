"""The HTML documents: the trace view (served, or written whole by ``show --html``) and the trace list.

Each page carries its stylesheet and script inline and a Content-Security-Policy that allows exactly those
(by their SHA-256) and nothing else: no other script, no inline event handler, no frame, no form posting
elsewhere, no network but the page's own server. A file written by ``show --html`` carries the policy in a
``<meta>`` element (it has no server to send a header); the server sends the same policy as a header too. The
trace's data goes into an ``application/json`` script element that is never run, with ``<``, ``>`` and ``&``
escaped so no value can end the element; the script reads it and puts every value in as text.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from mcp_tracing.ui.view import shown_json

__all__ = ["Page", "list_page", "trace_page"]


@dataclass(frozen=True)
class Page:
    """An HTML document and the Content-Security-Policy header it is to be served with (the document carries the
    same policy in a ``<meta>`` element, less ``frame-ancestors``)."""

    html: str
    csp: str


@cache
def _asset(name: str) -> str:
    return files("mcp_tracing.ui").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _policy(script: str, style: str, *, connect: bool) -> str:
    """The policy for the ``<meta>`` element; the header adds ``frame-ancestors``, which a ``<meta>`` cannot carry."""
    reach = "'self'" if connect else "'none'"
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {_digest(script)}",
            f"style-src {_digest(style)}",
            f"connect-src {reach}",
            "img-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def _document(title: str, body_class: str, body: str, script: str, *, connect: bool) -> Page:
    style = _asset("ui.css")
    policy = _policy(script, style, connect=connect)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{html.escape(policy, quote=False)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{style}</style>
</head>
<body class="{body_class}">
{body}
<script>{script}</script>
</body>
</html>
"""
    return Page(page, f"{policy}; frame-ancestors 'none'")


def trace_page(view: dict[str, Any]) -> Page:
    """The trace view for ``view`` (``ui.view.trace_view``): a self-contained document, the same whether served or
    written to a file."""
    body = f"""<header>
<nav id="nav"></nav>
<h1 id="title">trace {html.escape(str(view.get("trace_id", "")))}</h1>
<div id="meta" class="meta"></div>
<ul id="legend"></ul>
<ul id="findings"></ul>
<div id="lost"></div>
<div id="arrived" hidden><span></span> <button type="button" id="show-arrived">show them</button></div>
<div id="orphan-logs"></div>
<div id="controls">
<label><input type="checkbox" id="critical-toggle" checked> critical path</label>
<button type="button" id="expand-all">expand all</button>
<span id="zoom"></span>
<button type="button" id="reset" hidden>whole trace</button>
</div>
</header>
<main>
<section id="chart">
<div id="axis-row"><div class="head">span</div><div id="axis"></div><div class="dur">duration</div></div>
<div id="viewport"><div id="spacer"><div id="rows"></div></div></div>
<div id="brush"></div>
</section>
<aside id="details" hidden></aside>
</main>
<script id="trace-data" type="application/json">{shown_json(view)}</script>"""
    script = _asset("common.js") + _asset("trace.js")
    # Served, the page asks its server whether more of the trace arrived; a file has no server to ask.
    served = bool(view.get("links", {}).get("version"))
    return _document(f"trace {view.get('trace_id', '')}", "trace-page", body, script, connect=served)


def list_page(store: str) -> Page:
    """The trace list: the filters, and the traces they keep (read from the server's ``api/traces``)."""
    body = f"""<header>
<h1>traces</h1>
<div class="meta">the store at <span id="store">{html.escape(store)}</span> (read only)</div>
<form id="filters">
<label>search <input type="text" id="search" placeholder="trace id or request id"></label>
<label><input type="checkbox" id="errors"> errors only</label>
<label>slower than <input type="text" id="slower_than" placeholder="500ms"></label>
<label>since <input type="text" id="since" placeholder="1h"></label>
<label>where <input type="text" id="where" placeholder="tokens_in>1000; user_id=u-1"></label>
<label>limit <input type="text" id="limit" placeholder="50"></label>
<button type="submit">apply</button>
</form>
</header>
<div id="status"></div>
<table class="list">
<thead><tr><th>start</th><th>root</th><th>services</th><th>duration</th><th>spans</th><th>errors</th><th>findings</th>
<th>trace</th></tr></thead>
<tbody id="rows"></tbody>
</table>"""
    return _document("traces", "list-page", body, _asset("common.js") + _asset("list.js"), connect=True)

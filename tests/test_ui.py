"""``mcp-tracing ui`` in process: the critical path, the view's data, the app's routes, filters, security headers,
host check, read-only store, and the command's refusal of a non-loopback address. The browser tier is
``test_ui_browser.py``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import anyio
import pytest
from helpers.traces import MS, T0, Trace, planted_store, write
from hypothesis import given, settings, strategies as st

from mcp_tracing.cli import main
from mcp_tracing.store import SqliteSpanExporter
from mcp_tracing.store.critical import Section, critical_path
from mcp_tracing.store.records import LogRecord, SpanRecord
from mcp_tracing.ui import UiApp, trace_page, trace_view
from mcp_tracing.ui.view import shown_json

pytestmark = pytest.mark.sdk_independent


# ------------------------------------------------------------------------------------------------ critical path


def test_the_critical_path_goes_through_the_last_child_to_finish_and_back_through_sequential_ones() -> None:
    t = Trace()
    root = t.span("root", 0, 100)
    a = t.span("a", 10, 40, root)  # then b, which starts when a ends
    b = t.span("b", 40, 90, root)
    t.span("b.inner", 50, 60, b)
    late = t.span("c", 45, 70, root)  # overlaps b, ends before it: not on the path
    path = [(s.span_id, (s.start_ns - T0) / MS, (s.end_ns - T0) / MS) for s in critical_path(t.spans)]
    by_id = {s.span_id: s.name for s in t.spans}
    assert [(by_id[i], start, end) for i, start, end in path] == [
        ("root", 90, 100),
        ("b", 60, 90),
        ("b.inner", 50, 60),
        ("b", 40, 50),
        ("a", 10, 40),
        ("root", 0, 10),
    ]
    assert late.span_id not in {section.span_id for section in critical_path(t.spans)}
    assert a.span_id in {section.span_id for section in critical_path(t.spans)}


def test_the_critical_path_clips_children_to_their_parent_and_survives_depth_cycles_and_emptiness() -> None:
    t = Trace()
    root = t.span("root", 0, 100)
    child = t.span("skewed", 90, 130, root)  # another process's clock: runs past its parent's end
    t.span("outside", 200, 300, root)  # wholly outside: left out
    sections = critical_path(t.spans)
    assert sections[0] == Section(child.span_id, T0 + 90 * MS, T0 + 100 * MS)
    assert {s.span_id for s in sections} == {root.span_id, child.span_id}

    deep = Trace("d" * 32)
    parent = deep.span("level 0", 0, 20_000)
    for level in range(1, 20_000):  # a hostile peer's nesting: no recursion limit is reached
        parent = deep.span(f"level {level}", level, 20_000, parent)
    assert len({s.span_id for s in critical_path(deep.spans)}) == 20_000

    cycle = [
        SpanRecord("x", "c" * 32, "1" * 16, "2" * 16, "INTERNAL", 0, 1, "UNSET", None, None),
        SpanRecord("y", "c" * 32, "2" * 16, "1" * 16, "INTERNAL", 0, 1, "UNSET", None, None),
    ]
    assert critical_path(cycle) == []
    assert critical_path([]) == []


# ------------------------------------------------------------------------------------------------ the view's data


def test_the_view_orders_the_tree_colours_services_in_order_and_puts_logs_with_their_spans() -> None:
    t = Trace()
    root = t.span("root", 0, 100, service="agent")
    call = t.span("call", 10, 50, root, service="agent")
    served = t.span("served", 20, 40, call, service="server", pid=2)
    t.span("second", 60, 90, root, service="other", pid=3)
    record = LogRecord(t.trace_id, served.span_id, T0 + 25 * MS, 9, "INFO", "tool", "hello", "server", 2)
    stray = LogRecord(t.trace_id, "f" * 16, T0 + 30 * MS, 13, "WARN", "x", "lost", "server", 2)
    view = trace_view(t.spans, (), [record, stray])
    assert [(s["name"], s["depth"], s["service"]) for s in view["spans"]] == [
        ("root", 0, 0),
        ("call", 1, 0),
        ("served", 2, 1),
        ("second", 1, 2),
    ]
    assert view["services"] == [
        {"name": "agent", "colour": 0},
        {"name": "server", "colour": 1},
        {"name": "other", "colour": 2},
    ]
    assert view["spans"][2]["logs"] == [
        {"time": 25 * MS, "level": "INFO", "logger": "tool", "body": "hello", "service": "server", "attributes": {}}
    ]
    assert [r["body"] for r in view["orphan_logs"]] == ["lost"]
    assert (view["spans"][0]["start"], view["spans"][0]["end"], view["duration"]) == (0, 100 * MS, 100 * MS)


def test_spans_in_a_parent_cycle_are_drawn_once_each_in_the_tree_and_the_view() -> None:
    """Before: the terminal tree left out spans whose parents form a cycle (no root reaches them), and the view
    added them back by a pass of its own; now the one walk both use draws each span once."""
    from mcp_tracing.cli.tree import render_tree, tree_order

    t = Trace()
    root = t.span("root", 0, 10)
    t.span("child", 1, 2, root)
    a = SpanRecord("a", t.trace_id, "a" * 16, "b" * 16, "INTERNAL", T0 + 3 * MS, T0 + 4 * MS, "UNSET", "agent", 1)
    b = SpanRecord("b", t.trace_id, "b" * 16, "a" * 16, "INTERNAL", T0 + 5 * MS, T0 + 6 * MS, "UNSET", "agent", 1)
    itself = SpanRecord("self", t.trace_id, "c" * 16, "c" * 16, "INTERNAL", T0 + 7 * MS, T0 + 8 * MS, "UNSET", None, 1)
    spans = [*t.spans, b, itself, a]
    assert [(s.name, depth) for s, depth in tree_order(spans)] == [
        ("root", 0),
        ("child", 1),
        ("a", 0),  # the earliest of the cycle, as a root
        ("b", 1),
        ("self", 0),
    ]
    assert [line.split(" [")[0] for line in render_tree(spans).splitlines()] == [
        "root",
        "└── child",
        "a",
        "└── b",
        "self",
    ]
    assert [s["name"] for s in trace_view(spans)["spans"]] == ["root", "child", "a", "b", "self"]


# ------------------------------------------------------------------------------------------------ the app


async def _request(
    app: Any, path: str, *, method: str = "GET", host: str = "127.0.0.1:8318"
) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app, as uvicorn would make it."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8318),
    }
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"]


def get(app: Any, path: str, **options: Any) -> tuple[int, dict[str, str], bytes]:
    return anyio.run(lambda: _request(app, path, **options))


def listed(app: Any, query: str = "") -> list[str]:
    status, _, body = get(app, f"/api/traces{query}")
    assert status == 200, body
    return [row["root"] for row in json.loads(body)["traces"]]


def test_the_list_answers_every_traces_filter_and_the_search(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    planted_store(store)
    app = UiApp(store)
    assert sorted(listed(app)) == ["failing", "old", "quick", "slow"]
    assert listed(app, "?errors=1") == ["failing"]
    assert listed(app, "?slower_than=1s") == ["slow"]
    assert sorted(listed(app, "?since=1d")) == ["failing", "quick", "slow"]
    assert listed(app, "?where=total_cost_estimate>1") == ["slow"]
    assert listed(app, "?where=total_cost_estimate>1&where=request_id=req-42") == []
    assert listed(app, "?search=req-42") == ["quick"]  # a request id
    assert listed(app, "?search=7") == ["failing"]  # a JSON-RPC id, numeric
    assert listed(app, "?search=2222") == ["slow"]  # a trace id prefix
    assert listed(app, "?search=nothing-like-it") == []
    assert len(listed(app, "?limit=2")) == 2
    for bad, reason in (
        ("?slower_than=soon", "not a duration"),
        ("?where=tokens", "bad --where"),
        ("?limit=0", "limit"),
        ("?limit=many", "limit"),
        ("?since=99999999999999999999d", "longer than 100 years"),
        ("?slower_than=99999999999999999999d", "longer than 100 years"),
    ):
        status, _, body = get(app, f"/api/traces{bad}")
        assert status == 400 and reason in json.loads(body)["error"], (bad, body)
    for hostile in ("%00", "x" * 100_000, "%ff%fe", "%e2%80%ae", "1e400", "-0", "'%20OR%201=1--"):
        for name in ("search", "where", "since", "slower_than", "limit", "errors"):
            status, headers, body = get(app, f"/api/traces?{name}={hostile}")
            assert status in (200, 400) and headers["content-type"] == "application/json", (name, hostile, body[:200])
    status, _, body = get(app, "/api/traces")
    row = next(r for r in json.loads(body)["traces"] if r["root"] == "failing")
    assert row == {
        "trace_id": "3" * 32,
        "root": "failing",
        "services": ["agent"],
        "start_unix_ms": T0 // 1_000_000,
        "duration_ms": 50.0,
        "spans": 1,
        "errors": 1,
        "findings": 0,
        "lost_servers": [],
    }


def test_the_version_moves_when_another_process_writes_and_a_missing_store_is_waited_for(tmp_path: Path) -> None:
    store = tmp_path / "later.db"
    app = UiApp(store)
    status, _, body = get(app, "/api/traces")
    assert status == 200 and json.loads(body)["traces"] == []
    assert "no trace store" in json.loads(body)["notes"][0]
    assert json.loads(get(app, "/api/version")[2]) == {"version": -1}
    first = Trace("5" * 32)
    first.span("first", 0, 10)
    write(store, first)
    assert listed(app) == ["first"]
    before = json.loads(get(app, "/api/version")[2])["version"]
    assert json.loads(get(app, "/api/version")[2])["version"] == before  # nothing written: the same
    second = Trace("6" * 32)
    second.span("second", 100, 110)
    write(store, second)
    assert json.loads(get(app, "/api/version")[2])["version"] != before
    assert listed(app) == ["second", "first"]


def test_pages_carry_a_strict_policy_that_allows_exactly_their_own_script_and_style(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    planted_store(store)
    app = UiApp(store)
    for path in ("/", "/traces/1111"):
        status, headers, body = get(app, path)
        assert status == 200, body
        page = body.decode()
        (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
        (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)

        def digest(text: str) -> str:
            return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

        connect = "'self'"  # the list reads api/traces; a served trace asks whether more of it arrived
        policy = (
            f"default-src 'none'; script-src {digest(script)}; style-src {digest(style)}; connect-src {connect}; "
            "img-src 'none'; base-uri 'none'; form-action 'none'"
        )
        assert headers["content-security-policy"] == policy + "; frame-ancestors 'none'"
        assert f'<meta http-equiv="Content-Security-Policy" content="{policy}">' in page
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    status, headers, body = get(app, "/api/traces")
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_trace_routes_resolve_prefixes_and_answer_404_with_the_reason(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    traces = planted_store(store)
    app = UiApp(store)
    status, headers, body = get(app, "/traces/3333.json")
    assert status == 200 and headers["content-type"] == "application/json"
    data = json.loads(body)
    assert data["trace_id"] == "3" * 32 and [s["span_id"] for s in data["spans"]] == [
        s.span_id for s in traces["failing"].spans
    ]
    assert data["logs"] == []
    assert get(app, "/traces/9999")[0] == 404 and b"no trace 9999" in get(app, "/traces/9999")[2]
    assert get(app, "/traces/not-hex")[0] == 404
    assert get(app, "/traces/zzzz.json")[0] == 404
    assert get(app, "/nowhere")[0] == 404


def test_nothing_can_write_the_host_must_be_this_machine_and_the_store_is_never_changed(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    planted_store(store)
    before = store.read_bytes()
    app = UiApp(store)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/", "/api/traces", "/traces/1111"):
            assert get(app, path, method=method)[0] == 405, (method, path)
    for host in ("evil.example", "evil.example:8318", "127.0.0.1.nip.io:8318", "", "[::2]:8318"):
        status, headers, body = get(app, "/api/traces", host=host)
        assert status == 403 and b"127.0.0.1 and localhost only" in body, host
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    for host in ("127.0.0.1:8318", "localhost:8318", "LOCALHOST", "[::1]:8318", "[::1]"):
        assert get(app, "/api/traces", host=host)[0] == 200, host
    assert get(UiApp(store, allow_remote=True), "/api/traces", host="ui.example:8318")[0] == 200
    for path in ("/", "/api/traces?where=request_id=req-42", "/traces/2222", "/traces/2222.json", "/api/version"):
        assert get(app, path)[0] == 200
    # The connection cannot write even if asked to (SQLite's query_only), and the file is byte for byte the same.
    with app._reader.store() as reader:  # pyright: ignore[reportPrivateUsage]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._connection.execute("DELETE FROM spans")  # pyright: ignore[reportPrivateUsage]
    app.close()
    assert store.read_bytes() == before


def test_an_older_store_is_refused_not_migrated(tmp_path: Path) -> None:
    store = tmp_path / "old.db"
    t = Trace()
    t.span("root", 0, 10)
    write(store, t)
    with sqlite3.connect(store) as db:  # marked as written before format 2
        db.execute("UPDATE meta SET value = 'mcp-tracing/1' WHERE key = 'format'")
    db.close()
    before = store.read_bytes()
    status, _, body = get(UiApp(store), "/api/traces")
    assert status == 200 and "older format" in json.loads(body)["notes"][0]
    assert store.read_bytes() == before


def test_the_command_refuses_another_interface_unless_told_and_then_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "traces.db"
    for host in ("0.0.0.0", "192.0.2.1", "::"):
        assert main(["ui", "--store", str(store), "--host", host]) == 2
        assert f"--host {host} is not loopback; add --allow-remote to listen there" in capsys.readouterr().err
    # Told: it warns, then (192.0.2.1 is not this machine's: TEST-NET-1) cannot listen there, and says so.
    assert main(["ui", "--store", str(store), "--host", "192.0.2.1", "--allow-remote"]) == 1
    err = capsys.readouterr().err
    assert "warning: listening on 192.0.2.1: anyone who reaches it can read every stored trace" in err
    assert "mcp-tracing ui: error: cannot listen on 192.0.2.1:8318" in err
    assert main(["ui", "--store", str(store), "--threshold", "nonsense=1"]) == 2
    from mcp_tracing.ui import serve

    with pytest.raises(ValueError, match="0.0.0.0 is not loopback"):  # the API refuses too, before binding
        serve(store, host="0.0.0.0", port=0)


def test_traces_search_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "traces.db"
    planted_store(store)
    assert main(["traces", "--store", str(store), "--search", "req-42", "--json"]) == 0
    assert [row["root"] for row in json.loads(capsys.readouterr().out)] == ["quick"]
    with pytest.raises(SystemExit) as exited:  # once a traceback (SQLite cannot hold the time): bad usage now
        main(["traces", "--store", str(store), "--since", "99999999999999999999d"])
    assert exited.value.code == 2 and "longer than 100 years" in capsys.readouterr().err


def test_the_page_embeds_values_so_no_value_can_end_its_script_element() -> None:
    t = Trace()
    t.span("</script><script>alert(1)</script>", 0, 10, note="<!-- & -->")
    page = trace_page(trace_view(t.spans)).html
    assert page.count("<script") == 2 and "alert(1)</script>" not in page
    (payload,) = re.findall(r'<script id="trace-data" type="application/json">(.*?)</script>', page, re.S)
    assert json.loads(payload)["spans"][0]["name"] == "</script><script>alert(1)</script>"


def test_exporting_logs_reach_the_view_through_the_app(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    t = Trace("7" * 32)
    root = t.span("root", 0, 10)
    write(store, t)
    exporter = SqliteSpanExporter(store)
    exporter.write_logs([LogRecord(t.trace_id, root.span_id, T0 + MS, 9, "INFO", "tool", "written", "agent", 1)])
    exporter.shutdown()
    status, _, body = get(UiApp(store), "/traces/7777")
    (payload,) = re.findall(r'<script id="trace-data" type="application/json">(.*?)</script>', body.decode(), re.S)
    assert [r["body"] for r in json.loads(payload)["spans"][0]["logs"]] == ["written"]


_NESTED: st.SearchStrategy[object] = st.deferred(
    lambda: st.text() | st.lists(_NESTED, max_size=3) | st.dictionaries(st.text(), _NESTED, max_size=3)
)
"""Strings, and lists and objects of them nested (what a span's attributes and a finding's data hold)."""


@settings(max_examples=500, deadline=None)
@given(_NESTED)
def test_shown_json_reads_back_as_the_terminal_shows_it_bar_tabs_and_newlines(value: object) -> None:
    """Whatever a peer sends: the page reads every string (keys too) with its controls and bidi characters as
    escapes, exactly as ``terminal_safe`` writes them (tab and newline left as they are); nothing can close the
    script element it sits in."""
    from mcp_tracing.cli.text import _ESCAPES  # pyright: ignore[reportPrivateUsage]

    table = {code: escape for code, escape in _ESCAPES.items() if code not in (0x09, 0x0A)}

    def expected(item: object) -> object:
        if isinstance(item, str):
            return item.translate(table)
        if isinstance(item, list):
            return [expected(x) for x in item]  # pyright: ignore[reportUnknownVariableType]
        assert isinstance(item, dict)
        return {expected(k): expected(v) for k, v in item.items()}  # pyright: ignore[reportUnknownVariableType]

    text = shown_json(value)
    assert json.loads(text) == expected(value)
    assert "<" not in text and ">" not in text and "&" not in text


def test_the_app_mounts_under_a_prefix_with_its_relative_links(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    store = tmp_path / "traces.db"
    planted_store(store)
    outer = Starlette(routes=[Mount("/ui", app=UiApp(store))])
    assert get(outer, "/ui/")[0] == 200
    assert sorted(json.loads(get(outer, "/ui/api/traces")[2])["traces"][0]) == [
        "duration_ms",
        "errors",
        "findings",
        "lost_servers",
        "root",
        "services",
        "spans",
        "start_unix_ms",
        "trace_id",
    ]
    status, _, body = get(outer, "/ui/traces/1111")
    (payload,) = re.findall(r'<script id="trace-data" type="application/json">(.*?)</script>', body.decode(), re.S)
    links: dict[str, str] = json.loads(payload)["links"]
    assert sorted(links) == ["json", "list", "summary", "version"]
    for link in links.values():  # each resolved as the browser resolves it, from the page's own address
        assert get(outer, urljoin("/ui/traces/1111", link))[0] == 200, link
    summary = json.loads(get(outer, urljoin("/ui/traces/1111", links["summary"]))[2])
    assert [row["trace_id"] for row in summary["traces"]] == ["1" * 32]

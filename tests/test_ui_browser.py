"""``mcp-tracing ui`` in headless Chromium: the server as users start it (a subprocess on 127.0.0.1, port 0), the
pages driven as a person would (filters typed, rows clicked, a range dragged), and what the page shows read back
from the DOM: the list and its filters, new traces appearing, the trace view's zoom, collapse, colours, findings,
details and critical path, a 5,000-span trace, and hostile values under the Content-Security-Policy."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port
from helpers.browser import LAUNCH_ARGS, chromium
from helpers.processes import clean_env
from helpers.traces import MS, T0, Trace, planted, planted_store, write

from mcp_tracing._core import attributes as attr
from mcp_tracing.cli import main
from mcp_tracing.cli.text import terminal_safe
from mcp_tracing.store import SqliteSpanExporter, TraceStore
from mcp_tracing.store.patterns import analyze
from mcp_tracing.store.records import LogRecord

pytestmark = [pytest.mark.sdk_independent, pytest.mark.subprocess]

WAIT_MS = 15_000  # the longest any page is waited for (bounded: a broken page fails, never hangs)


class Ui:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process, self.url = process, url

    def stop(self) -> str:
        self.process.terminate()
        assert self.process.wait(timeout=30) == 0, "the ui ended badly"
        rest = self.process.stderr.read() if self.process.stderr else ""
        assert "Traceback" not in rest, rest
        return rest


def _first_line(stream: Any, timeout: float) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert got, f"no line in {timeout}s"
    return got[0]


def start_ui(store: Path) -> Ui:
    command = [sys.executable, "-m", "mcp_tracing.cli", "ui", "--store", str(store), "--port", "0"]
    process = subprocess.Popen(command, env=clean_env(), stderr=subprocess.PIPE, text=True)
    line = _first_line(process.stderr, 60)
    match = re.fullmatch(
        rf"mcp-tracing ui: serving (http://127\.0\.0\.1:\d+)/ \(the store at {re.escape(str(store))}, read only; "
        r"Ctrl-C stops it\)\n",
        line,
    )
    assert match, line
    return Ui(process, match.group(1))


@pytest.fixture
def ui_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Ui] = []

    def start(store: Path) -> Ui:
        started.append(start_ui(store))
        return started[-1]

    yield start
    for ui in started:
        if ui.process.poll() is None:
            assert ui.stop().strip().endswith("mcp-tracing ui: stopped")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=LAUNCH_ARGS,
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page whose console errors, page errors and CSP violations are collected (``page.problems``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    opened.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    opened.add_init_script(
        "window.__violations = []; document.addEventListener('securitypolicyviolation',"
        " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    opened.problems = problems
    opened.set_default_timeout(WAIT_MS)
    try:
        yield opened
    finally:
        context.close()


def roots(page: Any) -> list[str]:
    return page.eval_on_selector_all("#rows tr.trace td.root", "cells => cells.map(c => c.textContent)")


def wait_for_roots(page: Any, expected: list[str]) -> None:
    """Waits (bounded) until the list shows exactly ``expected``, in order."""
    page.wait_for_function(
        "expected => JSON.stringify([...document.querySelectorAll('#rows tr.trace td.root')]"
        ".map(c => c.textContent)) === JSON.stringify(expected)",
        arg=expected,
    )


def test_the_list_filters_search_and_shows_new_traces_without_a_reload(tmp_path: Path, ui_for: Any, page: Any) -> None:
    store = tmp_path / "traces.db"
    planted_store(store)
    ui = ui_for(store)
    page.goto(ui.url + "/")
    wait_for_roots(page, ["failing", "slow", "quick", "old"])
    row = page.eval_on_selector(
        "#rows tr.trace[data-trace-id='" + "3" * 32 + "']",
        "tr => [...tr.cells].map(c => c.textContent)",
    )
    assert row[1:] == ["failing", "agent", "50 ms", "1", "1", "0", "333333333333"]

    page.check("#errors")  # applies at once
    wait_for_roots(page, ["failing"])
    assert "errors=1" in page.url
    page.uncheck("#errors")
    wait_for_roots(page, ["failing", "slow", "quick", "old"])
    for field, value, expected in (
        ("#slower_than", "1s", ["slow"]),
        ("#since", "1d", ["failing", "slow", "quick"]),
        ("#where", "total_cost_estimate>1; user_id!=nobody", []),  # a user id no span has: != keeps none
        ("#where", "total_cost_estimate>1", ["slow"]),
        ("#search", "req-42", ["quick"]),
        ("#search", "2222", ["slow"]),
    ):
        for other in ("#slower_than", "#since", "#where", "#search"):
            page.fill(other, "")
        page.fill(field, value)
        page.press(field, "Enter")
        wait_for_roots(page, expected)
    page.fill("#search", "")
    page.fill("#slower_than", "soon")
    page.press("#slower_than", "Enter")
    page.wait_for_selector("#status.bad")
    assert "not a duration: 'soon'" in page.inner_text("#status")
    assert page.problems == [
        "console: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.problems.clear()

    # The filters live in the address: a reload (or a bookmark) shows the same list.
    page.fill("#slower_than", "")
    page.fill("#where", "total_cost_estimate>1")
    page.press("#where", "Enter")
    wait_for_roots(page, ["slow"])
    page.reload()
    wait_for_roots(page, ["slow"])
    assert page.input_value("#where") == "total_cost_estimate>1"

    # A trace written by another process shows up by itself, marked as new, and the filter still applies.
    page.fill("#where", "")
    page.press("#where", "Enter")
    wait_for_roots(page, ["failing", "slow", "quick", "old"])
    fresh = Trace("8" * 32, t0=T0 + 10 * MS)
    fresh.span("arrived later", 0, 5)
    write(store, fresh)
    wait_for_roots(page, ["arrived later", "failing", "slow", "quick", "old"])
    assert page.eval_on_selector(f"tr[data-trace-id='{'8' * 32}']", "tr => tr.classList.contains('new')")
    page.click(f"tr[data-trace-id='{'8' * 32}'] td.spans")  # a click anywhere on the row opens the trace
    page.wait_for_selector(".row .name")
    assert page.url == f"{ui.url}/traces/{'8' * 32}"
    assert page.inner_text(".row .name") == "arrived later"
    assert page.problems == [] and page.evaluate("window.__violations") == []


def test_traces_sent_to_collect_appear_in_the_ui_live(tmp_path: Path, ui_for: Any, page: Any) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    store, port = tmp_path / "collected.db", free_port()
    command = [sys.executable, "-m", "mcp_tracing.cli", "--store", str(store), "collect", "--port", str(port)]
    collect = subprocess.Popen(command, env=clean_env(), stderr=subprocess.PIPE, text=True)
    try:
        assert "receiving OTLP/HTTP" in _first_line(collect.stderr, 60)
        ui = ui_for(store)  # before anything arrived: the store does not even exist yet
        page.goto(ui.url + "/")
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('no trace store')")
        provider = TracerProvider(resource=Resource.create({"service.name": "remote-server"}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
        )
        with provider.get_tracer("t").start_as_current_span("tools/call from afar"):
            pass
        provider.shutdown()
        wait_for_roots(page, ["tools/call from afar"])
    finally:
        collect.terminate()
        assert collect.wait(timeout=30) == 0


def bars(page: Any) -> dict[str, dict[str, Any]]:
    """Every drawn row: its name, classes, its bar's box relative to its lane, the bar's colour."""
    rows: list[dict[str, Any]] = page.evaluate(
        """() => [...document.querySelectorAll('#rows .row')].map(row => {
            const lane = row.querySelector('.lane').getBoundingClientRect();
            const bar = row.querySelector('.bar');
            const box = bar.getBoundingClientRect();
            return {id: row.dataset.spanId, name: row.querySelector('.name').textContent,
                    classes: [...row.classList], shown: getComputedStyle(bar).display !== 'none',
                    left: box.left - lane.left, width: box.width, lane: lane.width,
                    colour: getComputedStyle(bar).backgroundColor,
                    flag: row.querySelector('.flag')?.textContent, title: row.querySelector('.flag')?.title,
                    hidden: row.querySelector('.hidden')?.textContent};
        })"""
    )
    return {row["id"]: row for row in rows}


def annotated(store: Path) -> Trace:
    """The waterfall's planted trace, plus a span off the critical path, an error, events, links and logs."""
    t = planted()
    served = next(s for s in t.spans if s.kind == "SERVER")
    t.span("fs.stat", 445, 500, served, service="files-server", pid=2)  # overlapped by fs.scan: off the path
    scan = next(i for i, s in enumerate(t.spans) if s.name == "fs.scan")
    t.spans[scan] = dataclasses.replace(
        t.spans[scan],
        status="ERROR",
        events=("exception", "retry"),
        links=(t.spans[2].span_id, "f" * 16),
        attributes={"fs.path": "/srv/data", "fs.entries": 12},
    )
    write(store, t)
    exporter = SqliteSpanExporter(store)
    exporter.write_logs(
        [
            LogRecord(
                t.trace_id, t.spans[scan].span_id, t.t0 + 450 * MS, 13, "WARNING", "fs", "slow disk", "files-server", 2
            )
        ]
    )
    exporter.shutdown()
    return t


def test_the_trace_view_zooms_collapses_colours_marks_findings_and_shows_details(
    tmp_path: Path, ui_for: Any, page: Any
) -> None:
    store = tmp_path / "traces.db"
    t = annotated(store)
    by_name = {s.name: s for s in t.spans}
    ui = ui_for(store)
    page.goto(ui.url + "/")
    page.click("#rows tr.trace td.root a")
    page.wait_for_selector("#rows .row")
    assert page.url == f"{ui.url}/traces/{t.trace_id}"
    drawn = bars(page)
    assert len(drawn) == len(t.spans)
    total = max(s.end_ns for s in t.spans) - min(s.start_ns for s in t.spans)
    start = min(s.start_ns for s in t.spans)

    def check_scale(view: tuple[float, float]) -> None:
        rows = bars(page)
        for span in t.spans:
            row = rows[span.span_id]
            visible = span.end_ns - start >= view[0] and span.start_ns - start <= view[1]
            assert row["shown"] == visible, span.name
            if visible:  # the bar is cut to the window
                begin, end = max(span.start_ns - start, view[0]), min(span.end_ns - start, view[1])
                scale = row["lane"] / (view[1] - view[0])
                assert row["left"] == pytest.approx((begin - view[0]) * scale, abs=1.5), span.name
                assert row["width"] == pytest.approx(max((end - begin) * scale, 1), abs=1.5), span.name

    check_scale((0, total))

    # A colour per service: the same for a service's spans, different between services, as in the legend.
    colours: dict[str, set[str]] = {}
    for span in t.spans:
        colours.setdefault(span.service or "", set()).add(drawn[span.span_id]["colour"])
    assert all(len(c) == 1 for c in colours.values()) and len({next(iter(c)) for c in colours.values()}) == 2
    legend = page.evaluate(
        "() => [...document.querySelectorAll('#legend li')].map(li => [li.textContent,"
        " getComputedStyle(li.querySelector('.swatch')).backgroundColor])"
    )
    assert legend == [["agent", next(iter(colours["agent"]))], ["files-server", next(iter(colours["files-server"]))]]

    # Findings: listed with their cost and suggestion, marked on their spans (the mark's tooltip says both).
    findings = analyze(TraceStore(store).spans(t.trace_id))
    items = page.eval_on_selector_all("#findings li", "items => items.map(li => li.textContent)")
    assert items == [
        f"⚑ {f.kind.replace('n_plus_one', 'N+1')}{f.summary}costs {f.time_ms:.1f} ms{f.suggestion}" for f in findings
    ]
    reads = [s.span_id for s in t.spans if s.attributes.get(attr.GEN_AI_TOOL_NAME) == "read_file"]
    for span_id in reads:
        assert drawn[span_id]["flag"] == "⚑ N+1" and "batch them" in drawn[span_id]["title"]
        assert "(costs " in drawn[span_id]["title"]
    page.click("#findings li >> nth=0")
    marked = {i for i, row in bars(page).items() if "marked" in row["classes"]}
    assert marked == set(findings[0].span_ids)

    # The critical path, worked out by hand: session -> turn -> search -> served -> fs.scan, then back through
    # query, the second model call, the three reads and the first model call; fs.stat overlaps fs.scan.
    critical = {row["name"] for row in bars(page).values() if "critical" in row["classes"]}
    assert critical == {
        "agent.session",
        "agent.turn",
        "model.call",
        "tool.call",
        by_name["tools/call search <script>alert(1)</script>"].name,
        "fs.scan",
    }
    assert "critical" not in bars(page)[by_name["fs.stat"].span_id]["classes"]
    on_path = page.eval_on_selector_all(f"[data-span-id='{by_name['fs.stat'].span_id}'] .crit", "c => c.length")
    assert on_path == 0
    page.uncheck("#critical-toggle")
    assert page.eval_on_selector(".crit", "c => getComputedStyle(c).display") == "none"

    # Zoom: drag across 0-12% of the axis, read the window back, check every bar's place on the new scale.
    axis = page.query_selector("#axis").bounding_box()
    y = axis["y"] + 120
    page.mouse.move(axis["x"] + 1, y)
    page.mouse.down()
    page.mouse.move(axis["x"] + axis["width"] * 0.06, y, steps=4)
    page.mouse.move(axis["x"] + axis["width"] * 0.12, y, steps=4)
    page.mouse.up()
    view = page.evaluate("window.mcpTracing.view()")
    assert view[0] == pytest.approx(total * 1 / axis["width"], abs=total / axis["width"])
    assert view[1] == pytest.approx(total * 0.12, abs=total / axis["width"])
    check_scale((view[0], view[1]))
    assert "showing" in page.inner_text("#zoom") and page.is_visible("#reset")
    ticks = page.eval_on_selector_all("#axis .tick", "ticks => ticks.map(t => t.textContent)")
    assert ticks and all(tick.endswith("ms") for tick in ticks[1:])
    # Pan: a sideways wheel (a trackpad's swipe, or shift+wheel) moves the window, the same width.
    page.mouse.move(axis["x"] + axis["width"] / 2, y)
    page.mouse.wheel(axis["width"] / 10, 0)
    page.wait_for_function("before => window.mcpTracing.view()[0] > before", arg=view[0])
    panned = page.evaluate("window.mcpTracing.view()")
    width = view[1] - view[0]
    assert panned[1] - panned[0] == pytest.approx(width, rel=1e-6)
    assert panned[0] - view[0] == pytest.approx(width / 10, rel=0.05)
    check_scale((panned[0], panned[1]))
    # The narrowest zoom (1 µs, inside the session only): the session's bar fills the lane, exactly.
    page.evaluate("window.mcpTracing.zoom(2500e6, 2500e6)")
    assert page.evaluate("window.mcpTracing.view()") == [2500e6 - 500, 2500e6 + 500]
    check_scale((2500e6 - 500, 2500e6 + 500))
    session = bars(page)[by_name["agent.session"].span_id]
    assert (session["left"], session["width"]) == (0, pytest.approx(session["lane"], abs=0.5))
    page.dblclick("#viewport")
    assert page.evaluate("window.mcpTracing.view()") == [0, total]
    check_scale((0, total))

    # Collapse the turn: everything under it goes, "+N" says how many; expand brings them back.
    turn = by_name["agent.turn"]
    page.click(f"[data-span-id='{turn.span_id}'] .toggle")
    after = bars(page)
    assert set(after) == {by_name["agent.session"].span_id, turn.span_id}
    assert after[turn.span_id]["hidden"] == f"+{len(t.spans) - 2}"
    page.click(f"[data-span-id='{turn.span_id}'] .toggle")
    assert len(bars(page)) == len(t.spans)

    # Details: facts, attributes, events, links (one in the trace, clickable), logs, and the error.
    scan = by_name["fs.scan"]
    page.click(f"[data-span-id='{scan.span_id}'] .name")
    details = page.inner_text("#details")
    for expected in (
        "fs.scan",
        "service\tfiles-server",
        "status\tERROR",
        f"span id\t{scan.span_id}",
        "fs.entries\t12",
        "fs.path\t/srv/data",
        "EVENTS (2)",
        "exception",
        "retry",
        "LINKS (2)",
        f"{t.spans[2].span_id} (in this trace)",
        "f" * 16,
        "LOGS (1)",
        "WARNING",
        "fs: slow disk",
    ):
        assert expected in details, (expected, details)
    assert "error" in bars(page)[scan.span_id]["classes"]
    results = Path(__file__).resolve().parents[1] / ".test-results"
    results.mkdir(exist_ok=True)
    page.screenshot(path=str(results / "ui-trace.png"))
    page.click("#details .link")
    assert page.inner_text("#details h2") == t.spans[2].name

    # The same trace's JSON, from the page's own link.
    href = page.get_attribute("#json-link", "href")
    with urllib.request.urlopen(f"{ui.url}/traces/{href}", timeout=30) as answer:
        data = json.loads(answer.read())
    assert {s["span_id"] for s in data["spans"]} == {s.span_id for s in t.spans}
    assert [r["body"] for r in data["logs"]] == ["slow disk"]
    assert page.problems == [] and page.evaluate("window.__violations") == []


def test_a_trace_of_5000_spans_opens_scrolls_and_draws_only_what_shows(tmp_path: Path, ui_for: Any, page: Any) -> None:
    store = tmp_path / "traces.db"
    t = Trace("9" * 32)
    root = t.span("agent.session", 0, 51_000)
    for turn_number in range(51):
        turn = t.span("agent.turn", turn_number * 1000, turn_number * 1000 + 900, root)
        for call in range(49):
            begin = turn_number * 1000 + call * 18
            served = t.call("read_file", begin, begin + 15, turn)
            t.span("fs.read", begin + 2, begin + 12, served, service="files-server", pid=2)
    t.spans = t.spans[:5000]  # parents come before their children: the cut leaves no orphan
    write(store, t)
    ui = ui_for(store)
    page.goto(f"{ui.url}/traces/{t.trace_id}")
    page.wait_for_selector("#rows .row")
    assert page.evaluate("window.mcpTracing.visible()") == 5000
    drawn = page.eval_on_selector_all("#rows .row", "rows => rows.length")
    assert 30 <= drawn <= 120, drawn  # the viewport's rows and a margin, not 5,000
    page.eval_on_selector("#viewport", "v => { v.scrollTop = v.scrollHeight; }")
    page.wait_for_selector(f"[data-span-id='{t.spans[-1].span_id}']")
    assert page.eval_on_selector_all("#rows .row", "rows => rows.length") <= 120
    page.eval_on_selector("#viewport", "v => { v.scrollTop = 0; }")
    page.wait_for_selector(f"[data-span-id='{root.span_id}'] .toggle")
    page.click(f"[data-span-id='{root.span_id}'] .toggle")
    assert page.evaluate("window.mcpTracing.visible()") == 1
    assert page.problems == []


HOSTILE_NAMES = (
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned = 2">',
    "x\u202egnp.exe",
    "</script><script>window.__pwned = 3</script>",
    "tab\there\x1b]0;PWNED\x07",
)


def test_hostile_names_and_attributes_render_as_text_under_the_policy(tmp_path: Path, ui_for: Any, page: Any) -> None:
    store = tmp_path / "traces.db"
    t = Trace("a" * 32)
    root = t.span(HOSTILE_NAMES[0], 0, 100, service='svc"><style>*{display:none}</style>')
    for i, name in enumerate(HOSTILE_NAMES[1:]):
        t.span(
            name,
            10 + i * 10,
            20 + i * 10,
            root,
            attributes={'<b onmouseover="window.__pwned=4">': HOSTILE_NAMES[3], "bidi": "\u202eevil", "n": i},
        )
    write(store, t)
    ui = ui_for(store)
    page.goto(ui.url + "/")
    page.wait_for_selector("#rows tr.trace")
    assert roots(page) == [terminal_safe(HOSTILE_NAMES[0])]
    page.goto(f"{ui.url}/traces/{t.trace_id}")
    page.wait_for_selector("#rows .row")
    names = page.eval_on_selector_all("#rows .row .name", "n => n.map(x => x.textContent)")
    assert names == [terminal_safe(name).replace("\\x09", "\t") for name in HOSTILE_NAMES]  # a tab is harmless
    legend = page.eval_on_selector_all("#legend li", "items => items.map(li => li.textContent)")
    assert legend == ['svc"><style>*{display:none}</style>', "agent"]
    page.click("#rows .row >> nth=2")
    details = page.inner_text("#details")
    assert '<b onmouseover="window.__pwned=4">' in details and "\\u202eevil" in details
    assert "\u202e" not in page.evaluate("document.body.innerText")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, b, style:not(head style)').length") == 0
    assert page.problems == [] and page.evaluate("window.__violations") == []
    # The same renderer from a file (show --html), under the policy in its <meta>: the same text, nothing run.
    page_file = tmp_path / "hostile.html"
    assert main(["show", "--store", str(store), t.trace_id, "--html", str(page_file)]) == 0
    page.goto(page_file.as_uri())
    page.wait_for_selector("#rows .row")
    assert page.eval_on_selector_all("#rows .row .name", "n => n.map(x => x.textContent)") == names
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, b, style:not(head style)').length") == 0
    assert page.problems == [] and page.evaluate("window.__violations") == []
    # The policy is in force: a script added to the page is refused.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 5';"
        " document.body.appendChild(s); }"
    )
    assert page.evaluate("typeof window.__pwned") == "undefined"
    refused = page.evaluate("window.__violations")
    assert refused and all(v.startswith("script-src") for v in refused), refused  # by the header's and the meta's


def open_planted(store: Path, ui_for: Any, page: Any) -> Trace:
    """The waterfall's planted trace, written to ``store``, open in ``page`` from a ui serving it."""
    t = planted()
    write(store, t)
    ui = ui_for(store)
    page.goto(f"{ui.url}/traces/{t.trace_id}")
    page.wait_for_selector("#rows .row")
    return t


def test_a_trace_still_arriving_offers_its_new_spans_and_keeps_the_view(tmp_path: Path, ui_for: Any, page: Any) -> None:
    store = tmp_path / "traces.db"
    t = open_planted(store, ui_for, page)
    turn = next(s for s in t.spans if s.name == "agent.turn")
    scan = next(s for s in t.spans if s.name == "fs.scan")
    page.evaluate("window.mcpTracing.zoom(100e6, 700e6)")
    page.click(f"[data-span-id='{scan.span_id}'] .name")
    page.click(f"[data-span-id='{turn.span_id}'] .toggle")
    page.uncheck("#critical-toggle")
    assert page.is_hidden("#arrived")

    before = len(t.spans)
    root = t.spans[0]
    for i in range(3):  # the agent goes on: a second turn's spans reach the store
        t.span("model.call", 700 + i * 10, 705 + i * 10, root)
    arrived = Trace(t.trace_id)
    arrived.spans = t.spans[before:]
    write(store, arrived)
    page.wait_for_selector("#arrived:not([hidden])")
    assert page.inner_text("#arrived span") == "3 more spans of this trace arrived"
    page.click("#show-arrived")
    under_turn = before - 2  # all but the session and the turn itself
    page.wait_for_function(f"() => window.mcpTracing && window.mcpTracing.visible() === {before + 3 - under_turn}")
    assert page.evaluate("window.mcpTracing.view()") == [100e6, 700e6]  # the same zoom
    assert page.eval_on_selector(f"[data-span-id='{turn.span_id}'] .hidden", "n => n.textContent") == f"+{under_turn}"
    assert page.inner_text("#details h2") == "fs.scan"  # the same selection (its row is inside the collapsed turn)
    assert not page.is_checked("#critical-toggle")
    assert page.is_hidden("#arrived")
    assert page.problems == [] and page.evaluate("window.__violations") == []


def test_the_keyboard_moves_the_selection_and_folds_subtrees(tmp_path: Path, ui_for: Any, page: Any) -> None:
    store = tmp_path / "traces.db"
    t = open_planted(store, ui_for, page)

    def selected() -> str:
        return page.inner_text("#details h2")

    page.keyboard.press("ArrowDown")
    assert selected() == "agent.session"
    page.keyboard.press("ArrowDown")
    assert selected() == "agent.turn"
    page.keyboard.press("ArrowLeft")  # folds the turn
    assert page.evaluate("window.mcpTracing.visible()") == 2
    page.keyboard.press("ArrowRight")  # unfolds it
    assert page.evaluate("window.mcpTracing.visible()") == len(t.spans)
    page.keyboard.press("ArrowDown")
    assert selected() == "model.call"
    page.keyboard.press("ArrowLeft")  # a leaf: to its parent
    assert selected() == "agent.turn"
    assert page.eval_on_selector_all("#rows .row.selected .name", "n => n.map(x => x.textContent)") == ["agent.turn"]
    page.keyboard.press("ArrowUp")
    assert selected() == "agent.session"
    page.evaluate("window.mcpTracing.zoom(100e6, 200e6)")
    page.keyboard.press("Escape")
    assert page.evaluate("window.mcpTracing.view()") == [0, page.evaluate("window.mcpTracing.total")]
    assert page.problems == []

"""``show --html``: the trace view written to one file (the ui's own renderer), rendered by headless Chromium from
``file://`` under the policy in its ``<meta>``: one bar per span, in order and to scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.browser import LAUNCH_ARGS, chromium
from helpers.traces import planted, write

from mcp_tracing._core import attributes as attr
from mcp_tracing.cli import main
from mcp_tracing.cli.tree import tree_rows
from mcp_tracing.ui import trace_page, trace_view

pytestmark = pytest.mark.sdk_independent  # the same on either SDK line: scripts/test runs it on mcp 2.x only

ROOT = Path(__file__).resolve().parents[1]


def test_the_page_is_self_contained_and_escapes_span_text() -> None:
    t = planted()
    page = trace_page(trace_view(t.spans)).html
    assert "<script>alert(1)</script>" not in page
    assert "http://" not in page and "https://" not in page  # nothing fetched
    assert page.count("<script") == 2  # the data (JSON) and the page's own script
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'sha256-" in page
    assert "connect-src 'none'" in page  # a file has no server to ask anything


def test_chromium_renders_one_bar_per_span_in_order_and_to_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    t = planted()
    store = tmp_path / "traces.db"
    write(store, t)
    monkeypatch.setenv("MCP_TRACING_STORE", str(store))
    page_file = tmp_path / "trace.html"
    assert main(["show", "eeee", "--html", str(page_file)]) == 0
    assert capsys.readouterr().out.strip() == f"trace {'e' * 32}: {len(t.spans)} spans, 2 findings -> {page_file}"

    expected_order = [
        "agent.session",
        "agent.turn",
        "model.call",
        "tool.call",
        "tool.call",
        "tool.call",
        "model.call",
        "tool.call",
        "tool.call",
        "tools/call search <script>alert(1)</script>",
        "fs.scan",
    ]
    start, end = min(s.start_ns for s in t.spans), max(s.end_ns for s in t.spans)
    by_id = {s.span_id: s for s in t.spans}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=LAUNCH_ARGS,
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(page_file.as_uri())
            page.wait_for_selector("#rows .row")
            rows: list[dict[str, Any]] = page.evaluate(
                """() => [...document.querySelectorAll('#rows .row')].map(row => {
                    const lane = row.querySelector('.lane').getBoundingClientRect();
                    const bar = row.querySelector('.bar').getBoundingClientRect();
                    return {id: row.dataset.spanId, name: row.querySelector('.name').textContent,
                            flagged: row.classList.contains('flagged'), flag: row.querySelector('.flag')?.textContent,
                            lane: [lane.left, lane.width], bar: [bar.left, bar.width]};
                })"""
            )
            page.screenshot(path=str(tmp_path / "waterfall.png"), full_page=True)
            results = ROOT / ".test-results"
            results.mkdir(exist_ok=True)
            page.screenshot(path=str(results / "waterfall.png"), full_page=True)
            page.click(f"[data-span-id='{t.spans[4].span_id}']")
            details = page.inner_text("#details")
            findings = page.inner_text("#findings")
        finally:
            browser.close()

    assert [r["name"] for r in rows] == expected_order
    assert [r["id"] for r in rows] == [s.span_id for _, s in tree_rows(t.spans)]
    for row in rows:
        span = by_id[row["id"]]
        lane_left, lane_width = row["lane"]
        bar_left, bar_width = row["bar"]
        assert bar_left - lane_left == pytest.approx((span.start_ns - start) / (end - start) * lane_width, abs=1.0)
        assert bar_width == pytest.approx(max((span.end_ns - span.start_ns) / (end - start) * lane_width, 1), abs=1.0)
    flags = {r["id"]: r["flag"] for r in rows if r["flagged"]}
    reads = [s.span_id for s in t.spans if s.attributes.get(attr.GEN_AI_TOOL_NAME) == "read_file"]
    pair = [s.span_id for s in t.spans if s.attributes.get(attr.GEN_AI_TOOL_NAME) in ("query", "search")]
    assert flags == {**{i: "⚑ N+1" for i in reads}, **{i: "⚑ sequential" for i in pair}}
    assert "mcp_tracing.tool.args_shape\tpath" in details and "duration\t50 ms" in details
    assert problems == []  # the page's script ran under its own policy, nothing refused
    assert "N+1" in findings and "sequential" in findings and "batch them" in findings
    assert (tmp_path / "waterfall.png").stat().st_size > 10_000

"""The trace view in headless Chromium: ``python benchmarks/ui.py [--rounds N] [--chromium PATH]``.

Serves a store holding traces of 50, 500 and 5,000 spans with ``mcp-tracing ui`` (a subprocess on 127.0.0.1),
then, in interleaved rounds (every round opens each size once, in a shuffled order, in a fresh page), measures:

* the server's answer for the trace page (the request's time to last byte, as the browser's Resource Timing
  reports it);
* first contentful paint (the browser's own ``paint`` entry) and the time until the first rows are drawn
  (a ``MutationObserver`` from navigation start);
* scrolling the waterfall from top to bottom in 120 animation frames: the frame interval's median and 95th
  percentile, and the share of frames over 33 ms (what a person sees as a stutter), with the rows in the DOM
  at the end (virtualised: the viewport's rows, not the trace's).

Medians over rounds, and the ratio of each size's median to the 50-span trace's. Results print as a table and
go to ``benchmarks/ui_results.json``. Nothing here is asserted: the browser tests check behaviour, this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.traces import Trace, write  # noqa: E402

SIZES = (50, 500, 5000)
FIRST_ROWS = """
window.__firstRows = null;
new MutationObserver((changes, observer) => {
  if (document.querySelector('#rows .row')) { window.__firstRows = performance.now(); observer.disconnect(); }
}).observe(document, {childList: true, subtree: true});
"""
SCROLL = """async () => {
  const viewport = document.getElementById('viewport');
  const frames = [];
  const steps = 120;
  const step = (viewport.scrollHeight - viewport.clientHeight) / steps;
  let last = await new Promise(requestAnimationFrame);
  for (let i = 1; i <= steps; i++) {
    viewport.scrollTop = step * i;
    const now = await new Promise(requestAnimationFrame);
    frames.push(now - last);
    last = now;
  }
  return {frames, rows: document.querySelectorAll('#rows .row').length};
}"""


def trace_of(size: int, number: int) -> Trace:
    """A session of turns of tool calls with their server spans (the lesson's shape), ``size`` spans."""
    t = Trace(f"{number:032x}")
    root = t.span("agent.session", 0, 100_000)
    turn_number = 0
    while len(t.spans) < size:
        turn = t.span("agent.turn", turn_number * 1000, turn_number * 1000 + 900, root)
        for call in range(49):
            begin = turn_number * 1000 + call * 18
            served = t.call("read_file", begin, begin + 15, turn)
            t.span("fs.read", begin + 2, begin + 12, served, service="files-server", pid=2)
        turn_number += 1
    t.spans = t.spans[:size]
    return t


def measure(browser: Any, url: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.add_init_script(FIRST_ROWS)
    page.goto(url)
    page.wait_for_selector("#rows .row", timeout=60_000)
    page.wait_for_function("() => window.__firstRows !== null")
    timing = page.evaluate(
        """() => ({
            paint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
            rows: window.__firstRows,
            server: (() => { const n = performance.getEntriesByType('navigation')[0];
                             return n.responseEnd - n.requestStart; })(),
        })"""
    )
    scrolled = page.evaluate(SCROLL)
    context.close()
    frames = sorted(scrolled["frames"])
    return {
        "server_ms": timing["server"],
        "first_paint_ms": timing["paint"],
        "first_rows_ms": timing["rows"],
        "frame_median_ms": statistics.median(frames),
        "frame_p95_ms": frames[int(len(frames) * 0.95) - 1],
        "long_frames": sum(f > 33.4 for f in frames) / len(frames),
        "rows_in_dom": scrolled["rows"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--chromium", default=os.environ.get("MCP_TRACING_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="mcp-tracing-ui-bench-"))
    store = work / "traces.db"
    traces = {size: trace_of(size, number + 1) for number, size in enumerate(SIZES)}
    write(store, *traces.values())
    command = [sys.executable, "-m", "mcp_tracing.cli", "ui", "--store", str(store), "--port", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        match = re.search(r"serving (http://\S+)/ ", server.stderr.readline())
        assert match, "the ui did not start"
        base = match.group(1)
        results: dict[int, list[dict[str, float]]] = {size: [] for size in SIZES}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            order = list(SIZES)
            for _ in range(args.rounds):
                random.shuffle(order)
                for size in order:
                    results[size].append(measure(browser, f"{base}/traces/{traces[size].trace_id}"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    machine = platform.processor() or platform.machine()
    summary: dict[str, Any] = {
        "machine": f"{machine} ({os.cpu_count()} cores), Python {platform.python_version()}",
        "rounds": args.rounds,
        "date": time.strftime("%Y-%m-%d"),
        "sizes": {},
    }
    keys = list(results[SIZES[0]][0])
    for size in SIZES:
        summary["sizes"][size] = {key: statistics.median(r[key] for r in results[size]) for key in keys}
    base_row = summary["sizes"][SIZES[0]]
    print(f"{summary['machine']}; {args.rounds} interleaved rounds; medians (ratio to the {SIZES[0]}-span trace)")
    print(f"{'spans':>6} " + " ".join(f"{key:>22}" for key in keys))
    for size in SIZES:
        row = summary["sizes"][size]
        cells = []
        for key in keys:
            ratio = row[key] / base_row[key] if base_row[key] else float("nan")
            cells.append(f"{row[key]:>12.2f} ({ratio:>5.2f}x)" if key != "rows_in_dom" else f"{row[key]:>22.0f}")
        print(f"{size:>6} " + " ".join(f"{cell:>22}" for cell in cells))
    (ROOT / "benchmarks" / "ui_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``mcp-tracing show --html FILE``: one self-contained HTML page with the trace as a waterfall.

One row per span in tree order: the name (indented by depth) and service on the left, a bar on the trace's
time scale on the right. A click on a row shows the span's attributes; ``analyze``'s findings are listed at
the top and their spans highlighted (a click on a finding selects its spans). No network access: styles,
script and data are all in the page. Span data is embedded as JSON and only ever put into the page as text
(``textContent``), so a span name or attribute can never inject markup; control and bidi characters in them
are shown as escapes (``\\u202e``), as on the terminal, so a peer's name cannot reorder what the page shows.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any, cast

from mcp_tracing._core import attributes as attr
from mcp_tracing.cli.text import counted, terminal_safe
from mcp_tracing.cli.tree import tree_rows
from mcp_tracing.store.patterns import LABELS, Finding, flagged
from mcp_tracing.store.records import SpanRecord

__all__ = ["render_html"]

_STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #1d232a; }
h1 { font-size: 16px; margin: 0 0 4px; }
.meta { color: #5b6570; margin-bottom: 12px; }
#findings { margin: 0 0 12px; padding: 0; list-style: none; }
#findings li { padding: 4px 8px; margin: 2px 0; background: #fff4e5; border-left: 4px solid #e8870e; cursor: pointer; }
#findings li .kind { font-weight: 600; margin-right: 6px; }
#findings li .time { color: #8a4b00; margin-left: 6px; }
#findings li .suggestion { color: #5b6570; display: block; }
#waterfall { border-top: 1px solid #d5dbe1; }
.row { display: flex; align-items: center; height: 22px; border-bottom: 1px solid #eef1f4; cursor: pointer; }
.row:hover { background: #f4f7fa; }
.row.selected { background: #e3efff; }
.row.flagged .label { color: #a34f00; font-weight: 600; }
.row.error .bar { background: #d64545; }
.label { width: 40%; min-width: 40%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.label .service { color: #7a858f; margin-left: 6px; }
.label .hint { margin-left: 6px; font-family: ui-monospace, monospace; }
.label .flag { color: #e8870e; margin-left: 6px; }
.lane { position: relative; flex: 1; height: 12px; margin-right: 8px; }
.bar { position: absolute; top: 0; height: 12px; min-width: 1px; background: #3b7dd8; border-radius: 2px; }
.row.flagged .bar { background: #e8870e; }
.duration { width: 80px; text-align: right; color: #5b6570; padding-right: 6px; }
#details { margin-top: 12px; border: 1px solid #d5dbe1; padding: 8px; display: none; }
#details table { border-collapse: collapse; }
#details td { padding: 1px 8px 1px 0; vertical-align: top; font-family: ui-monospace, monospace; }
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById("trace-data").textContent);
const waterfall = document.getElementById("waterfall");
const details = document.getElementById("details");
const total = Math.max(data.end - data.start, 1);
const rows = new Map();
function text(tag, cls, value) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  el.textContent = value;
  return el;
}
for (const span of data.spans) {
  const row = document.createElement("div");
  row.className = "row" + (span.flags.length ? " flagged" : "") + (span.status === "ERROR" ? " error" : "");
  row.dataset.spanId = span.span_id;
  const label = text("div", "label", span.name);
  label.style.paddingLeft = (span.depth * 14) + "px";
  if (span.hint) label.appendChild(text("span", "hint", span.hint));
  label.appendChild(text("span", "service", span.service || ""));
  if (span.flags.length) label.appendChild(text("span", "flag", "\\u2691 " + span.flags.join(", ")));
  const lane = document.createElement("div");
  lane.className = "lane";
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.style.left = ((span.start - data.start) / total * 100) + "%";
  bar.style.width = ((span.end - span.start) / total * 100) + "%";
  lane.appendChild(bar);
  row.append(label, lane, text("div", "duration", span.duration_ms.toFixed(1) + " ms"));
  row.addEventListener("click", () => select([span.span_id], span));
  waterfall.appendChild(row);
  rows.set(span.span_id, row);
}
function select(ids, span) {
  for (const row of rows.values()) row.classList.toggle("selected", ids.includes(row.dataset.spanId));
  details.replaceChildren();
  if (!span) { details.style.display = "none"; return; }
  details.style.display = "block";
  details.appendChild(text("h2", "", span.name));
  const table = document.createElement("table");
  const facts = {kind: span.kind, status: span.status, service: span.service, span_id: span.span_id,
    parent_id: span.parent_id, start_ms: ((span.start - data.start) / 1e6).toFixed(3),
    duration_ms: span.duration_ms.toFixed(3), ...span.attributes};
  for (const [key, value] of Object.entries(facts)) {
    const tr = document.createElement("tr");
    tr.append(text("td", "", key), text("td", "", typeof value === "string" ? value : JSON.stringify(value)));
    table.appendChild(tr);
  }
  details.appendChild(table);
}
document.querySelectorAll("#findings li").forEach((li, i) => {
  li.addEventListener("click", () => select(data.findings[i].span_ids, null));
});
"""


def _hint(span: SpanRecord) -> str:
    """The tool or server a span is about, when its name does not say it (``tool.call`` -> ``read_file@files``)."""
    tool = span.attributes.get(attr.GEN_AI_TOOL_NAME)
    if not tool or str(tool) in span.name:
        return ""
    server = span.attributes.get(attr.SERVER_NAME)
    return f"{tool}@{server}" if server else str(tool)


def _visible(value: object) -> object:
    """``value`` with every string in it (keys too) ``terminal_safe``: a right-to-left override in a tool name
    would otherwise reverse what follows it on the page (``exe.png`` shown for ``\\u202egnp.exe``)."""
    if isinstance(value, str):
        return terminal_safe(value)
    if isinstance(value, dict):
        return {terminal_safe(str(k)): _visible(v) for k, v in cast(dict[object, object], value).items()}
    if isinstance(value, list | tuple):
        return [_visible(item) for item in cast(Sequence[object], value)]
    return value


def render_html(spans: Sequence[SpanRecord], findings: Sequence[Finding] = ()) -> str:
    """The page for one trace: waterfall rows in tree order, findings on top, attributes on click."""
    flags = flagged(findings)
    rows = tree_rows(spans)
    depth: dict[str, int] = {}
    for _, span in rows:
        depth[span.span_id] = depth.get(span.parent_id or "", -1) + 1 if span.parent_id in depth else 0
    start = min((s.start_ns for s in spans), default=0)
    end = max((s.end_ns for s in spans), default=0)
    trace_id = spans[0].trace_id if spans else ""
    data: dict[str, Any] = {
        "trace_id": trace_id,
        "start": start,
        "end": end,
        "spans": [
            {
                "span_id": s.span_id,
                "parent_id": s.parent_id,
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                "service": s.service,
                "start": s.start_ns,
                "end": s.end_ns,
                "duration_ms": s.duration_ms,
                "depth": depth[s.span_id],
                "hint": _hint(s),
                "attributes": s.attributes,
                "flags": flags.get(s.span_id, []),
            }
            for _, s in rows
        ],
        "findings": [f.as_dict() for f in findings],
    }
    # No "<", ">" or "&" inside the script element (nothing in the data can end it or open a comment there);
    # JSON reads the escaped forms back as the same characters.
    payload = (
        json.dumps(_visible(data), default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )
    processes = len({(s.service, s.pid) for s in spans})
    items = "".join(
        f'<li><span class="kind">{html.escape(LABELS[f.kind])}</span>{html.escape(terminal_safe(f.summary))}'
        f'<span class="time">{f.time_ms:.1f} ms</span>'
        f'<span class="suggestion">{html.escape(terminal_safe(f.suggestion))}</span></li>'
        for f in findings
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>trace {html.escape(trace_id)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>trace {html.escape(trace_id)}</h1>
<div class="meta">{counted(len(spans), "span")} from {counted(processes, "process")}, {(end - start) / 1e6:.1f} ms;
{counted(len(findings), "finding")}</div>
<ul id="findings">{items}</ul>
<div id="waterfall"></div>
<div id="details"></div>
<script id="trace-data" type="application/json">{payload}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""

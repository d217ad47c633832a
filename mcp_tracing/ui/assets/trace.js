// mcp-tracing: the trace view. One renderer for `mcp-tracing ui` and `show --html`: it reads the trace from the
// page's JSON (never fetched), and puts every value into the page as text (common.js's `el`, never markup).
(function () {
  const data = JSON.parse(document.getElementById("trace-data").textContent);
  const spans = data.spans;
  const ROW = 22;           // px, as --row in the stylesheet
  const OVERSCAN = 12;      // rows drawn above and below what shows, so a fast scroll rarely shows a gap
  const MIN_WINDOW = 1000;  // ns: the narrowest zoom
  const MAX_INDENT = 40;    // levels drawn as indentation; deeper rows say their depth
  const $ = (id) => document.getElementById(id);
  const viewport = $("viewport"), spacer = $("spacer"), rowsEl = $("rows"), axis = $("axis");
  const details = $("details"), brush = $("brush"), chart = $("chart");

  function shown(value) { return typeof value === "string" ? value : JSON.stringify(value); }

  // Tree facts, from the spans' tree order and depths: where each subtree ends, and each span's index.
  const index = new Map();
  spans.forEach((s, i) => index.set(s.id, i));
  const subtreeEnd = new Array(spans.length);
  {
    const open = [];
    spans.forEach((s, i) => {
      while (open.length && spans[open[open.length - 1]].depth >= s.depth) subtreeEnd[open.pop()] = i;
      open.push(i);
    });
    while (open.length) subtreeEnd[open.pop()] = spans.length;
  }
  const critical = new Map();
  for (const [id, start, end] of data.critical) {
    if (!critical.has(id)) critical.set(id, []);
    critical.get(id).push([start, end]);
  }
  const findingsOf = new Map();
  data.findings.forEach((f) => f.span_ids.forEach((id) => {
    if (!findingsOf.has(id)) findingsOf.set(id, []);
    findingsOf.get(id).push(f);
  }));

  const total = Math.max(data.duration, 1);
  let view = [0, total];
  const collapsed = new Set();
  let visible = [];
  let selected = null;
  let marked = new Set();
  const drawn = new Map();

  // ---- the header: title, links, counts, services, findings, lost halves
  document.title = "trace " + data.trace_id;
  $("title").textContent = "trace " + data.trace_id;
  const nav = $("nav");
  if (data.links.list) { const a = el("a", "", "← traces"); a.href = data.links.list; nav.appendChild(a); }
  if (data.links.json) { const a = el("a", "", "JSON"); a.href = data.links.json; a.id = "json-link"; nav.appendChild(a); }
  const errors = spans.filter((s) => s.status === "ERROR").length;
  const started = new Date(Number(BigInt(data.start_unix_ns) / 1000000n));
  $("meta").textContent = spans.length.toLocaleString() + (spans.length === 1 ? " span" : " spans") + " from " +
    data.processes + (data.processes === 1 ? " process" : " processes") + ", " + duration(data.duration) +
    ", started " + started.toLocaleString() + "; " + errors + (errors === 1 ? " error" : " errors") + ", " +
    data.findings.length + (data.findings.length === 1 ? " finding" : " findings");
  const legend = $("legend");
  data.services.forEach((service) => {
    const item = el("li", "service");
    item.dataset.colour = service.colour;
    item.append(el("span", "swatch c" + service.colour), el("span", "", service.name || "(no service)"));
    legend.appendChild(item);
  });
  const findingsList = $("findings");
  data.findings.forEach((f, i) => {
    const item = el("li");
    item.dataset.index = i;
    item.append(el("span", "kind", "⚑ " + f.label), el("span", "summary", f.summary),
      el("span", "cost", "costs " + f.time_ms.toFixed(1) + " ms"), el("span", "suggestion", f.suggestion));
    item.addEventListener("click", () => mark(f.span_ids));
    findingsList.appendChild(item);
  });
  data.lost.forEach((text) => $("lost").appendChild(el("div", "", "⚠ " + text)));

  // ---- rows: the visible list (collapsed subtrees left out), drawn in the viewport only
  function recompute() {
    visible = [];
    for (let i = 0; i < spans.length; i++) {
      visible.push(i);
      if (collapsed.has(i)) i = subtreeEnd[i] - 1;
    }
    spacer.style.height = visible.length * ROW + "px";
    redraw();
  }
  function redraw() {
    for (const node of drawn.values()) node.remove();
    drawn.clear();
    draw();
  }
  function draw() {
    const first = Math.max(Math.floor(viewport.scrollTop / ROW) - OVERSCAN, 0);
    const last = Math.min(Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW) + OVERSCAN, visible.length);
    for (const [position, node] of drawn) {
      if (position < first || position >= last) { node.remove(); drawn.delete(position); }
    }
    for (let position = first; position < last; position++) {
      if (drawn.has(position)) continue;
      const node = row(visible[position]);
      node.style.top = position * ROW + "px";
      drawn.set(position, node);
      rowsEl.appendChild(node);
    }
  }
  function place(node, start, end) {
    const width = view[1] - view[0];
    if (end < view[0] || start > view[1]) { node.style.display = "none"; return; }
    // Cut to the window first: zoomed in far, a long span's full bar would be millions of pixels wide, past what
    // a browser lays out exactly.
    const from = Math.max(start, view[0]), to = Math.min(end, view[1]);
    node.style.display = "";
    node.style.left = ((from - view[0]) / width * 100) + "%";
    node.style.width = (Math.max(to - from, 0) / width * 100) + "%";
  }
  function row(i) {
    const s = spans[i];
    const node = el("div", "row");
    node.dataset.spanId = s.id;
    node.dataset.index = i;
    node.dataset.service = s.service;
    if (s.status === "ERROR") node.classList.add("error");
    if (s.flags.length) node.classList.add("flagged");
    if (critical.has(s.id)) node.classList.add("critical");
    if (selected === i) node.classList.add("selected");
    if (marked.has(s.id)) node.classList.add("marked");
    const label = el("div", "label");
    label.style.paddingLeft = Math.min(s.depth, MAX_INDENT) * 14 + 4 + "px";
    const parent = subtreeEnd[i] > i + 1;
    const toggle = el("span", parent ? "toggle" : "toggle leaf", parent ? (collapsed.has(i) ? "▸" : "▾") : "");
    if (parent) {
      toggle.addEventListener("click", (event) => { event.stopPropagation(); setCollapsed(i, !collapsed.has(i)); });
    }
    label.appendChild(toggle);
    if (s.depth > MAX_INDENT) label.appendChild(el("span", "deep", "[depth " + s.depth + "]"));
    label.appendChild(el("span", "name", s.name));
    if (s.hint) label.appendChild(el("span", "hint", s.hint));
    if (collapsed.has(i)) label.appendChild(el("span", "hidden", "+" + (subtreeEnd[i] - i - 1)));
    if (s.status === "ERROR") label.appendChild(el("span", "err", "✕ error"));
    if (s.flags.length) {  // before the service: a long name cuts the service, never the mark
      const flag = el("span", "flag", "⚑ " + s.flags.join(", "));
      flag.title = (findingsOf.get(s.id) || []).map((f) => f.label + ": " + f.suggestion +
        " (costs " + f.time_ms.toFixed(1) + " ms)").join("\n");
      label.appendChild(flag);
    }
    label.appendChild(el("span", "service", data.services[s.service].name));
    const lane = el("div", "lane");
    const bar = el("div", "bar c" + data.services[s.service].colour);
    place(bar, s.start, s.end);
    lane.appendChild(bar);
    for (const [start, end] of critical.get(s.id) || []) {
      const piece = el("div", "crit");
      place(piece, start, end);
      lane.appendChild(piece);
    }
    node.append(label, lane, el("div", "duration", duration(s.end - s.start)));
    return node;
  }
  function setCollapsed(i, value) {
    if (value) collapsed.add(i); else collapsed.delete(i);
    recompute();
  }
  viewport.addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
  window.addEventListener("resize", () => { gutter(); axisTicks(); draw(); });

  // ---- the time axis, and zoom: drag across the chart for a range, double-click (or Escape) for the whole trace
  function gutter() {  // the axis lines up with the lanes whatever the scrollbar takes
    $("axis-row").style.paddingRight = (viewport.offsetWidth - viewport.clientWidth) + "px";
  }
  function nice(step) {
    const power = Math.pow(10, Math.floor(Math.log10(step)));
    for (const m of [1, 2, 5, 10]) if (m * power >= step) return m * power;
    return 10 * power;
  }
  function axisTicks() {
    axis.replaceChildren();
    const width = view[1] - view[0];
    const pixels = Math.max(axis.clientWidth, 1);
    const step = nice(width / Math.max(Math.floor(pixels / 90), 1));
    for (let t = Math.ceil(view[0] / step) * step; t <= view[1]; t += step) {
      const tick = el("div", "tick", t === 0 ? "0" : duration(t));
      tick.style.left = ((t - view[0]) / width * 100) + "%";
      axis.appendChild(tick);
    }
    const zoomed = view[0] > 0 || view[1] < total;
    $("zoom").textContent = zoomed
      ? "showing " + duration(view[0]) + " – " + duration(view[1]) + " of " + duration(total)
      : "drag across the chart to zoom; double-click for the whole trace";
    $("reset").hidden = !zoomed;
  }
  function zoom(start, end) {
    start = Math.max(0, start); end = Math.min(total, end);
    if (end - start < MIN_WINDOW) {
      const middle = (start + end) / 2;
      start = Math.max(0, middle - MIN_WINDOW / 2); end = Math.min(total, start + MIN_WINDOW);
    }
    view = [start, end];
    axisTicks();
    redraw();
  }
  function timeAt(x) {
    const box = axis.getBoundingClientRect();
    const share = Math.min(Math.max((x - box.left) / Math.max(box.width, 1), 0), 1);
    return view[0] + share * (view[1] - view[0]);
  }
  let dragFrom = null, suppressClick = false;
  chart.addEventListener("mousedown", (event) => {
    const box = axis.getBoundingClientRect();
    if (event.button !== 0 || event.clientX < box.left || event.clientX > box.right) return;
    suppressClick = false;
    if (event.target.closest(".toggle")) return;
    dragFrom = event.clientX;
  });
  window.addEventListener("mousemove", (event) => {
    if (dragFrom === null) return;
    const box = axis.getBoundingClientRect(), host = chart.getBoundingClientRect();
    const a = Math.min(Math.max(Math.min(dragFrom, event.clientX), box.left), box.right);
    const b = Math.min(Math.max(Math.max(dragFrom, event.clientX), box.left), box.right);
    if (b - a < 4) { brush.style.display = "none"; return; }
    brush.style.display = "block";
    brush.style.left = (a - host.left) + "px";
    brush.style.width = (b - a) + "px";
  });
  window.addEventListener("mouseup", (event) => {
    if (dragFrom === null) return;
    const from = dragFrom;
    dragFrom = null;
    brush.style.display = "none";
    if (Math.abs(event.clientX - from) >= 4) {
      const a = timeAt(Math.min(from, event.clientX)), b = timeAt(Math.max(from, event.clientX));
      suppressClick = true;
      zoom(a, b);
    }
  });
  chart.addEventListener("click", (event) => {
    if (suppressClick) { suppressClick = false; return; }
    const node = event.target.closest(".row");
    if (node) select(Number(node.dataset.index));
  });
  chart.addEventListener("dblclick", () => zoom(0, total));
  $("reset").addEventListener("click", () => zoom(0, total));
  chart.addEventListener("wheel", (event) => {  // pan a zoomed chart sideways: shift+wheel, or a trackpad's swipe
    const sideways = event.shiftKey ? event.deltaY : event.deltaX;
    if (!sideways || (view[0] === 0 && view[1] === total)) return;
    event.preventDefault();
    const width = view[1] - view[0];
    const shift = sideways / Math.max(axis.clientWidth, 1) * width;
    const start = Math.min(Math.max(view[0] + shift, 0), total - width);
    view = [start, start + width];
    axisTicks();
    redraw();
  }, { passive: false });
  // Keys: Escape shows the whole trace; ↑/↓ select the row above/below; ← collapses the selected span (or goes
  // to its parent), → expands it.
  document.addEventListener("keydown", (event) => {
    if (event.target.closest && event.target.closest("input, button, a")) return;
    if (event.key === "Escape") { zoom(0, total); return; }
    if (!["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].includes(event.key) || !visible.length) return;
    event.preventDefault();
    const position = selected === null ? -1 : visible.indexOf(selected);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const next = Math.min(Math.max(position + (event.key === "ArrowDown" ? 1 : -1), 0), visible.length - 1);
      reveal(visible[next]);
      select(visible[next]);
    } else if (selected !== null && subtreeEnd[selected] > selected + 1 &&
               collapsed.has(selected) === (event.key === "ArrowRight")) {
      setCollapsed(selected, event.key === "ArrowLeft");
    } else if (selected !== null && event.key === "ArrowLeft" && index.has(spans[selected].parent)) {
      const parent = index.get(spans[selected].parent);
      reveal(parent);
      select(parent);
    }
  });
  $("critical-toggle").addEventListener("change", (event) => {
    document.body.classList.toggle("hide-critical", !event.target.checked);
  });
  $("expand-all").addEventListener("click", () => { collapsed.clear(); recompute(); });

  // ---- selection and details
  function reveal(i) {  // expand the collapsed spans above i, then scroll it into view
    let changed = false;
    for (const c of [...collapsed]) if (c < i && subtreeEnd[c] > i) { collapsed.delete(c); changed = true; }
    if (changed) recompute();
    const position = visible.indexOf(i);
    const top = position * ROW;
    if (top < viewport.scrollTop || top + ROW > viewport.scrollTop + viewport.clientHeight) {
      viewport.scrollTop = Math.max(top - viewport.clientHeight / 3, 0);
    }
    draw();
  }
  function mark(ids) {
    marked = new Set(ids);
    const first = ids.reduce((low, id) => (index.has(id) ? Math.min(low, index.get(id)) : low), Infinity);
    if (Number.isFinite(first)) { reveal(first); select(first); }
    redraw();
  }
  function table(entries) {
    const t = el("table");
    for (const [key, value] of entries) {
      const tr = el("tr");
      tr.append(el("td", "", key), el("td", "", shown(value)));
      t.appendChild(tr);
    }
    return t;
  }
  function select(i) {
    selected = i;
    for (const node of drawn.values()) node.classList.toggle("selected", Number(node.dataset.index) === i);
    const s = spans[i];
    details.hidden = false;
    details.replaceChildren(el("h2", "", s.name));
    details.appendChild(table([
      ["service", data.services[s.service].name], ["kind", s.kind], ["status", s.status],
      ["span id", s.id], ["parent id", s.parent || "(root)"], ["pid", s.pid === null ? "" : s.pid],
      ["start", "+" + duration(s.start)], ["duration", duration(s.end - s.start)],
    ]));
    const costs = findingsOf.get(s.id) || [];
    if (costs.length) {
      details.appendChild(el("h3", "", "findings"));
      for (const f of costs) {
        const box = el("div", "finding");
        box.append(el("div", "", "⚑ " + f.label + ": " + f.summary + " (costs " + f.time_ms.toFixed(1) + " ms)"),
          el("div", "suggestion", f.suggestion));
        details.appendChild(box);
      }
    }
    const attributes = Object.entries(s.attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    details.appendChild(el("h3", "", "attributes (" + attributes.length + ")"));
    details.appendChild(attributes.length ? table(attributes) : el("div", "meta", "none"));
    details.appendChild(el("h3", "", "events (" + s.events.length + ")"));
    if (s.events.length) {
      const list = el("ul", "events");
      s.events.forEach((name) => list.appendChild(el("li", "", name)));
      details.appendChild(list);
    } else details.appendChild(el("div", "meta", "none"));
    details.appendChild(el("h3", "", "links (" + s.links.length + ")"));
    if (s.links.length) {
      const list = el("ul", "links");
      s.links.forEach((id) => {
        const item = el("li", index.has(id) ? "link" : "", id + (index.has(id) ? " (in this trace)" : ""));
        if (index.has(id)) item.addEventListener("click", () => { reveal(index.get(id)); select(index.get(id)); });
        list.appendChild(item);
      });
      details.appendChild(list);
    } else details.appendChild(el("div", "meta", "none"));
    details.appendChild(el("h3", "", "logs (" + s.logs.length + ")"));
    if (s.logs.length) s.logs.forEach((record) => details.appendChild(logLine(record)));
    else details.appendChild(el("div", "meta", "none"));
  }
  function logLine(record) {
    const line = el("div", "log");
    line.append(el("span", "time", "+" + duration(record.time) + " "), el("span", "level", record.level || "-"),
      el("span", "logger", record.logger ? record.logger + ": " : ""), el("span", "body", record.body));
    const keys = Object.keys(record.attributes);
    if (keys.length) line.appendChild(el("div", "attributes", keys.map((k) => k + "=" + shown(record.attributes[k])).join("  ")));
    return line;
  }
  if (data.orphan_logs.length) {
    const box = $("orphan-logs");
    box.appendChild(el("div", "meta", data.orphan_logs.length + " log records of spans not in the store:"));
    data.orphan_logs.forEach((record) => box.appendChild(logLine(record)));
  }

  if (!spans.length) rowsEl.appendChild(el("div", "empty", "no spans"));
  // ---- a trace still arriving (served pages only): say when the store holds more of its spans, and show them on
  // request, by a reload that keeps the zoom, the collapsed spans, the selection and the scroll (a page never
  // changes under the person reading it).
  const KEPT = "mcp-tracing:" + data.trace_id;
  function keep() {
    sessionStorage.setItem(KEPT, JSON.stringify({
      view, collapsed: [...collapsed].map((i) => spans[i].id), selected: selected === null ? null : spans[selected].id,
      scroll: viewport.scrollTop, critical: $("critical-toggle").checked,
    }));
    location.reload();
  }
  function restore() {
    const saved = JSON.parse(sessionStorage.getItem(KEPT) || "null");
    sessionStorage.removeItem(KEPT);
    if (!saved) return;
    view = [Math.max(0, saved.view[0]), Math.min(total, saved.view[1])];
    if (!(view[1] > view[0])) view = [0, total];
    saved.collapsed.forEach((id) => { if (index.has(id)) collapsed.add(index.get(id)); });
    $("critical-toggle").checked = saved.critical;
    document.body.classList.toggle("hide-critical", !saved.critical);
    recompute();
    viewport.scrollTop = saved.scroll;
    if (saved.selected !== null && index.has(saved.selected)) select(index.get(saved.selected));
  }
  function watch() {
    const banner = $("arrived");
    let version = data.version;
    async function poll() {
      try {
        const now = (await (await fetch(data.links.version)).json()).version;
        if (now !== version) {
          version = now;
          const listed = await (await fetch(data.links.summary)).json();
          const count = listed.traces.length ? listed.traces[0].spans : spans.length;
          if (count > spans.length) {
            const more = count - spans.length;
            banner.querySelector("span").textContent = more + (more === 1 ? " more span" : " more spans") +
              " of this trace arrived";
            banner.hidden = false;
          }
        }
      } catch (error) {  // the server stopped: the page still works, and tries again
      }
      setTimeout(poll, 2000);
    }
    $("show-arrived").addEventListener("click", keep);
    setTimeout(poll, 2000);
  }

  gutter();
  axisTicks();
  recompute();
  restore();
  if (data.links.version) watch();
  window.mcpTracing = { zoom, view: () => view.slice(), total, visible: () => visible.length };
})();

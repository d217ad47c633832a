// mcp-tracing ui: what both pages use, put before each page's own script (ui/page.py). Values only ever go in
// as text: `el` sets textContent, never innerHTML.
"use strict";
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function duration(ns) {
  const a = Math.abs(ns);
  if (a < 1e3) return ns.toFixed(0) + " ns";
  if (a < 1e6) return +(ns / 1e3).toPrecision(3) + " µs";
  if (a < 1e9) return +(ns / 1e6).toPrecision(4) + " ms";
  return +(ns / 1e9).toPrecision(4) + " s";
}

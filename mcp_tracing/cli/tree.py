"""Draws spans as the lesson's tree: name, duration, key attributes, service, ERROR marks.

Spans from several processes are placed under their parents in start-time order; a span whose parent
is not among them is drawn as a root. With ``width``, each line also gets a time bar (a terminal waterfall:
where the span starts and how long it runs, on the trace's own time scale), so sequential and parallel
calls are told apart at a glance; ``marks`` adds ``analyze``'s findings inline (``⚑ N+1``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence

from mcp_tracing._core import attributes as attr
from mcp_tracing.cli.terminal import cell_len, fit
from mcp_tracing.cli.text import terminal_safe
from mcp_tracing.store.records import SpanRecord

__all__ = ["KEY_ATTRIBUTES", "MAX_DEPTH", "MAX_LABEL", "render_tree", "tree_lines", "tree_order", "tree_rows"]

KEY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    (attr.MODEL_NAME, "model"),
    (attr.TOKENS_IN, "tokens_in"),
    (attr.TOKENS_OUT, "tokens_out"),
    (attr.GEN_AI_TOOL_NAME, "tool"),
    (attr.SERVER_NAME, "server"),
    (attr.TOOL_STATUS, "status"),
    (attr.TOOL_RESULT_SIZE, "result_size"),
    (attr.ERROR_TYPE, "error.type"),
)


_NAMED_SUBJECTS = frozenset({attr.GEN_AI_TOOL_NAME, attr.MODEL_NAME})


def _label(span: SpanRecord) -> str:
    return terminal_safe(_raw_label(span))


def _raw_label(span: SpanRecord) -> str:
    shown = [
        f"{label}: {span.attributes[key]}"
        for key, label in KEY_ATTRIBUTES
        # The tool's or model's name is already in "tools/call <tool>", "execute_tool <tool>", "chat <model>".
        if key in span.attributes and not (key in _NAMED_SUBJECTS and span.name.endswith(f" {span.attributes[key]}"))
    ]
    parts = [f"{span.name} [{span.duration_ms:.0f} ms]"]
    if shown:
        parts.append("{" + ", ".join(shown) + "}")
    if span.service:
        parts.append(f"({span.service})")
    if span.status == "ERROR":
        parts.append("ERROR")
    return " ".join(parts)


MAX_LABEL: int = 160
"""Longer tree labels are cut (with ``…``) when bars are drawn, so the bars line up."""


def render_tree(
    spans: Sequence[SpanRecord], *, width: int = 0, marks: Mapping[str, Sequence[str]] | None = None
) -> str:
    """Returns the tree of ``spans`` as text, one line per span.

    Args:
        spans: the spans to draw (usually one trace).
        width: characters of time bar per line; 0 draws none.
        marks: span id -> labels to show after the span (``analyze.flagged``).
    """
    return "\n".join(line for line, _ in tree_lines(spans, bars=width, marks=marks))


def tree_lines(
    spans: Sequence[SpanRecord],
    *,
    bars: int = 0,
    marks: Mapping[str, Sequence[str]] | None = None,
    label_width: int = MAX_LABEL,
) -> list[tuple[str, SpanRecord]]:
    """The tree's lines with their spans: label (cut to ``label_width`` cells with ``…`` when bars are drawn,
    so they line up), the time bar of ``bars`` characters, the findings' marks."""
    rows = tree_rows(spans)
    flags = marks or {}
    notes = [f"  ⚑ {', '.join(flags[s.span_id])}" if flags.get(s.span_id) else "" for _, s in rows]
    if bars <= 0 or not rows:
        return [(text + note, span) for (text, span), note in zip(rows, notes, strict=True)]
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    label = max(min(max(cell_len(text) for text, _ in rows), MAX_LABEL, label_width), 1)
    lines: list[tuple[str, SpanRecord]] = []
    for (text, span), note in zip(rows, notes, strict=True):
        offset = min(int((span.start_ns - start) / total * bars), bars - 1)
        length = min(max(1, round((span.end_ns - span.start_ns) / total * bars)), bars - offset)
        bar = " " * offset + "█" * length + " " * (bars - offset - length)
        shown = fit(text, label)
        lines.append((f"{shown}{' ' * (label - cell_len(shown))}  |{bar}|{note}", span))
    return lines


def tree_order(spans: Sequence[SpanRecord]) -> list[tuple[SpanRecord, int]]:
    """Every span once, in drawing order, with its depth (what the browser view draws from)."""
    return [(span, depth) for span, depth, _, _ in _walk(spans)]


def tree_rows(spans: Sequence[SpanRecord]) -> list[tuple[str, SpanRecord]]:
    """The tree's lines (prefix and label) with their spans, in drawing order."""
    lines: list[tuple[str, SpanRecord]] = []
    for span, depth, prefix, last in _walk(spans):
        label = _label(span) if depth <= MAX_DEPTH else f"[depth {depth}] {_label(span)}"
        lines.append((label if depth == 0 else f"{prefix}{'└── ' if last else '├── '}{label}", span))
    return lines


def _walk(spans: Sequence[SpanRecord]) -> Iterator[tuple[SpanRecord, int, str, bool]]:
    """Each span once, parents before children and siblings in start order: ``(span, depth, prefix, last)``,
    ``prefix`` being the indentation drawn before it and ``last`` whether it is its parent's last child.

    A span whose parent is not among ``spans`` is a root. Spans in a parent cycle (``a`` under ``b`` under ``a``:
    a peer can send that), which no root reaches, are drawn too, from the earliest of them as a root: nothing
    given is left out, and nothing is drawn twice.
    """
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: s.start_ns)
    drawn: set[int] = set()  # by identity: a cycle brings the same span round again
    unreached = iter(sorted(spans, key=lambda s: s.start_ns))
    # Iterative (a peer can make a trace thousands of spans deep) and with the indentation capped at
    # MAX_DEPTH levels, so a line never grows with the depth; deeper lines say their depth instead.
    stack: list[tuple[SpanRecord, str, bool, int]] = [(root, "", True, 0) for root in reversed(children.get(None, []))]
    while True:
        while stack:
            span, prefix, last, depth = stack.pop()
            if id(span) in drawn:
                continue
            drawn.add(id(span))
            yield span, depth, prefix, last
            below = [child for child in children.get(span.span_id, []) if id(child) not in drawn]
            if depth == 0:
                deeper = ""
            elif depth < MAX_DEPTH:
                deeper = prefix + ("    " if last else "│   ")
            else:
                deeper = prefix
            for i, child in reversed(list(enumerate(below))):
                stack.append((child, deeper, i == len(below) - 1, depth + 1))
        cycle = next((span for span in unreached if id(span) not in drawn), None)
        if cycle is None:
            return
        stack.append((cycle, "", True, 0))


MAX_DEPTH: int = 64
"""Levels of indentation drawn; deeper spans are drawn at this indentation, labelled with their depth."""

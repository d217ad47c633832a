"""Draws spans as the lesson's tree: name, duration, key attributes, service, ERROR marks.

Spans from several processes are placed under their parents in start-time order; a span whose parent
is not among them is drawn as a root.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from . import _attributes as attr
from ._records import SpanRecord

__all__ = ["KEY_ATTRIBUTES", "render_tree"]

KEY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("gen_ai.request.model", "model"),
    ("gen_ai.usage.input_tokens", "tokens_in"),
    ("gen_ai.usage.output_tokens", "tokens_out"),
    (attr.GEN_AI_TOOL_NAME, "tool"),
    (attr.SERVER_NAME, "server"),
    (attr.TOOL_STATUS, "status"),
    (attr.TOOL_RESULT_SIZE, "result_size"),
    (attr.ERROR_TYPE, "error.type"),
)


def _label(span: SpanRecord) -> str:
    shown = [
        f"{label}: {span.attributes[key]}"
        for key, label in KEY_ATTRIBUTES
        # The tool's name is already in "tools/call <tool>" span names.
        if key in span.attributes
        and not (key == attr.GEN_AI_TOOL_NAME and span.name.endswith(f" {span.attributes[key]}"))
    ]
    parts = [f"{span.name} [{span.duration_ms:.0f} ms]"]
    if shown:
        parts.append("{" + ", ".join(shown) + "}")
    if span.service:
        parts.append(f"({span.service})")
    if span.status == "ERROR":
        parts.append("ERROR")
    return " ".join(parts)


def render_tree(spans: Sequence[SpanRecord]) -> str:
    """Returns the tree of ``spans`` as text, one line per span."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        children[span.parent_id if span.parent_id in ids else None].append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: s.start_ns)
    lines: list[str] = []

    def walk(span: SpanRecord, prefix: str, last: bool, root: bool) -> None:
        lines.append(_label(span) if root else f"{prefix}{'└── ' if last else '├── '}{_label(span)}")
        below = children.get(span.span_id, [])
        deeper = "" if root else prefix + ("    " if last else "│   ")
        for i, child in enumerate(below):
            walk(child, deeper, i == len(below) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)

"""The critical path of a trace: the chain of work that decided when the trace ended.

Walked backwards from the root's end, as Jaeger's UI walks it: at each span the child that finished last
(before the point reached so far) was what the span waited for, so the path goes into that child; the time
between that child's end and the point reached is the span's own work on the path. With no child left, the
rest of the span back to its start is its own, and the walk returns to the parent at the span's start.
Children are first clipped to their parent's time (clocks of different processes disagree a little), and a
child wholly outside its parent is left out. The walk is a loop, not recursion: a trace nested thousands
deep (a hostile peer can send one) costs time linear in its spans, never the stack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from mcp_tracing.store.records import SpanRecord

__all__ = ["Section", "critical_path"]


@dataclass(frozen=True)
class Section:
    """A stretch of one span's own time on the critical path."""

    span_id: str
    start_ns: int
    end_ns: int


def _root(spans: Sequence[SpanRecord], ids: set[str]) -> SpanRecord | None:
    """The root the path starts from: of the spans whose parent is not in the trace, the longest."""
    roots = [s for s in spans if s.parent_id not in ids]
    return max(roots, key=lambda s: (s.end_ns - s.start_ns, -s.start_ns), default=None)


def critical_path(spans: Sequence[SpanRecord]) -> list[Section]:
    """The sections of the critical path, latest first (empty for no spans).

    Args:
        spans: the spans of one trace, any order.
    """
    ids = {s.span_id for s in spans}
    root = _root(spans, ids)
    if root is None:
        return []
    children: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        if span.parent_id in ids and span.parent_id != span.span_id:
            children[span.parent_id].append(span)
    # Clipped bounds, top down from the root (breadth first); a span not reached from the root is not on it.
    bounds: dict[str, tuple[int, int]] = {root.span_id: (root.start_ns, max(root.end_ns, root.start_ns))}
    parent_of: dict[str, str] = {}
    queue = [root.span_id]
    for span_id in queue:
        low, high = bounds[span_id]
        for child in children.get(span_id, ()):
            start, end = max(child.start_ns, low), min(child.end_ns, high)
            if child.span_id in bounds or start > end or child.start_ns > high or child.end_ns < low:
                continue
            bounds[child.span_id] = (start, end)
            parent_of[child.span_id] = span_id
            queue.append(child.span_id)
    # Each parent's reached children, the last to end first; a cursor per parent only moves forward, so every
    # child is taken at most once and the walk ends.
    ordered = {
        span_id: sorted((c.span_id for c in kids if parent_of.get(c.span_id) == span_id), key=lambda c: -bounds[c][1])
        for span_id, kids in children.items()
    }
    cursor: dict[str, int] = defaultdict(int)
    sections: list[Section] = []
    current, point = root.span_id, bounds[root.span_id][1]
    while True:
        kids = ordered.get(current, [])
        position = cursor[current]
        while position < len(kids) and bounds[kids[position]][1] > point:
            position += 1  # ended after the point: overlapped by what the path already went through
        if position < len(kids):
            child = kids[position]
            cursor[current] = position + 1
            child_end = bounds[child][1]
            if child_end < point:
                sections.append(Section(current, child_end, point))
            current, point = child, child_end
            continue
        cursor[current] = position
        start = bounds[current][0]
        if start < point or not sections:
            sections.append(Section(current, start, point))
        if current == root.span_id:
            return sections
        current, point = parent_of[current], start

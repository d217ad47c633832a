"""Trace-driven debugging: the lesson's bad patterns, found in stored traces.

Each analyzer reads one trace's spans and returns ``Finding``s: what was found, the spans involved, the time
it costs (what fixing it would save, estimated from the spans), and a one-line suggestion.

* ``n_plus_one``: within one parent (a turn), ``n_plus_one_min_calls`` or more calls in a row to the same
  tool (or method) on the same server with the same argument names, none overlapping, each shorter than
  ``n_plus_one_max_call_ms``, not all with the same arguments (that is a loop). Saving: the run's wall time
  less its longest call (one batched call).
* ``sequential``: adjacent sibling calls to different tools or servers that do not overlap, with no other
  span between them (a model call in between is a visible dependency) and at most ``sequential_max_gap_ms``
  from one's end to the next's start. Saving: the run's wall time less its longest call (run together).
* ``fanout``: a parent with at least ``fanout_min_calls`` calls and ``fanout_factor`` times the median count
  of the trace's other call-making parents. Cost: the calls' total time.
* ``loop``: the same tool called ``loop_min_repeats`` or more times under one parent with the same arguments
  hash. Cost: every repeat after the first.
* ``plateau``: a span of at least ``plateau_min_ms`` with children that cover less than
  ``plateau_max_coverage`` of it: the uncovered time was spent waiting on something uninstrumented. Named by
  its longest gap and, where known, what the span waits on (its server or model). Session spans
  (``*.session``), whose idle time is normal, and handshakes (``initialize``, ``server/discover``), whose
  wait is the server starting, are not considered.
* ``overlong_setup``: a span whose first child in its own process starts after at least ``setup_min_ms``
  and ``setup_min_share`` of its duration (a session-init bug). Children in another process are not counted:
  the wait before them is transport, and shows as a plateau if large.
* ``deep_cascade``: a chain of nested spans deeper than ``cascade_max_depth``.
* ``orphan``, ``multiple_roots``: spans whose parent is not in the store, or a trace with more than one root.
* ``lost_context``: a client call with no server span in its trace while the server started a new trace for
  the same method and tool during the call: the context did not reach the server (the "flat" pattern).

Apart from the findings, ``lost_halves`` tells when a trace has client requests to a server but none (or,
for the calls that do work, not all) of that server's spans: half a trace looks like broken propagation, and
is usually a server that is not traced, exports elsewhere, or was killed before it flushed.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mcp_tracing._core import attributes as attr
from mcp_tracing.store.records import SpanRecord

__all__ = [
    "Finding",
    "KINDS",
    "LABELS",
    "LostHalf",
    "Neighbours",
    "Thresholds",
    "analyze",
    "flagged",
    "lost_halves",
    "rank",
]

KINDS: Final = (
    "n_plus_one",
    "sequential",
    "fanout",
    "loop",
    "plateau",
    "overlong_setup",
    "deep_cascade",
    "orphan",
    "multiple_roots",
    "lost_context",
)

LABELS: Final = {
    "n_plus_one": "N+1",
    "sequential": "sequential",
    "fanout": "fanout",
    "loop": "loop",
    "plateau": "plateau",
    "overlong_setup": "setup",
    "deep_cascade": "cascade",
    "orphan": "orphan",
    "multiple_roots": "roots",
    "lost_context": "lost context",
}

_CALL_METHODS: Final = frozenset({attr.TOOLS_CALL, "resources/read", attr.PROMPTS_GET})
"""The requests an agent makes to get work done (not lists, pings or the handshake)."""

_HANDSHAKE: Final = frozenset({attr.INITIALIZE, attr.SERVER_DISCOVER})

_SERVER_REQUESTS: Final = frozenset({"sampling/createMessage", "elicitation/create", "roots/list"})
"""Requests a server sends its client: their receiving side is the agent, not a server."""


@dataclass(frozen=True)
class Thresholds:
    """When a pattern counts as a finding; every field can be set with ``--threshold NAME=VALUE``."""

    n_plus_one_min_calls: int = 3
    n_plus_one_max_call_ms: float = 250.0
    sequential_max_gap_ms: float = 100.0
    fanout_min_calls: int = 10
    fanout_factor: float = 3.0
    loop_min_repeats: int = 3
    plateau_min_ms: float = 500.0
    plateau_max_coverage: float = 0.5
    setup_min_ms: float = 200.0
    setup_min_share: float = 0.6
    cascade_max_depth: int = 10

    def replace(self, assignments: Iterable[str]) -> Thresholds:
        """A copy with ``NAME=VALUE`` assignments applied; ``ValueError`` names a bad one."""
        changes: dict[str, Any] = {}
        fields = {f.name: f for f in dataclasses.fields(self)}
        for assignment in assignments:
            name, sep, value = assignment.partition("=")
            name = name.strip()
            if not sep or name not in fields:
                raise ValueError(f"unknown threshold {name!r}; known: {', '.join(fields)}")
            kind = int if fields[name].type in (int, "int") else float
            try:
                number = kind(value.strip())
            except ValueError:
                raise ValueError(f"threshold {name} takes a number, not {value!r}") from None
            if number < 0:
                raise ValueError(f"threshold {name} cannot be negative")
            changes[name] = number
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Finding:
    """One bad pattern in one trace."""

    kind: str
    trace_id: str
    span_ids: tuple[str, ...]
    time_ms: float
    """What it costs: the time fixing it would save (an estimate from the spans' own timings)."""
    summary: str
    suggestion: str
    key: str = ""
    """What makes two findings in different traces the same problem (kind plus tool, server or span name)."""
    data: dict[str, Any] = field(default_factory=lambda: {})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Neighbours = Callable[[int, int, str], Sequence[SpanRecord]]
"""``(start_ns, end_ns, trace_id)`` -> root SERVER spans of *other* traces that started in that window."""


def analyze(
    spans: Sequence[SpanRecord], thresholds: Thresholds | None = None, *, neighbours: Neighbours | None = None
) -> list[Finding]:
    """Every finding in one trace, the costliest first.

    Args:
        spans: the spans of one trace (any order).
        thresholds: the defaults when omitted.
        neighbours: where to look for the server spans a lost context sent into other traces (the store);
            without it, ``lost_context`` is not looked for.
    """
    if not spans:
        return []
    limits = thresholds or Thresholds()
    trace = _Trace(spans)
    findings: list[Finding] = []
    for analyzer in (_n_plus_one, _sequential, _fanout, _loop, _plateau, _setup, _cascade, _propagation):
        findings.extend(analyzer(trace, limits))
    if neighbours is not None:
        findings.extend(_lost_context(trace, neighbours))
    # A span that spends most of its time in setup is also thinly covered: the setup finding says why.
    setups = {f.span_ids[0] for f in findings if f.kind == "overlong_setup"}
    findings = [f for f in findings if not (f.kind == "plateau" and f.span_ids[0] in setups)]
    return sorted(findings, key=lambda f: (-f.time_ms, KINDS.index(f.kind), f.span_ids))


def rank(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Findings from many traces grouped by problem (``Finding.key``), by total time lost, most first."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[finding.key].append(finding)
    ranked = [
        {
            "key": key,
            "kind": group[0].kind,
            "summary": group[0].summary,
            "suggestion": group[0].suggestion,
            "findings": len(group),
            "traces": len({f.trace_id for f in group}),
            "total_ms": round(sum(f.time_ms for f in group), 3),
            "example_trace": max(group, key=lambda f: f.time_ms).trace_id,
        }
        for key, group in groups.items()
    ]
    return sorted(ranked, key=lambda r: (-r["total_ms"], r["key"]))


# ------------------------------------------------------------------------------------------ the trace


class _Trace:
    def __init__(self, spans: Sequence[SpanRecord]) -> None:
        self.spans = sorted(spans, key=lambda s: (s.start_ns, s.span_id))
        self.trace_id = self.spans[0].trace_id
        self.by_id = {s.span_id: s for s in self.spans}
        self.children: dict[str, list[SpanRecord]] = defaultdict(list)
        for span in self.spans:
            if span.parent_id is not None and span.parent_id in self.by_id:
                self.children[span.parent_id].append(span)

    def calls(self) -> dict[str | None, list[SpanRecord]]:
        """The agent's MCP calls (sender spans of ``_CALL_METHODS``), grouped by parent, in start order."""
        groups: dict[str | None, list[SpanRecord]] = defaultdict(list)
        for span in self.spans:
            if _sends(span) and span.attributes.get(attr.MCP_METHOD_NAME) in _CALL_METHODS:
                groups[span.parent_id].append(span)
        return groups


def _sends(span: SpanRecord) -> bool:
    """A span that sends an MCP message: a CLIENT span, or the agent's ``tool.call`` (INTERNAL) standing for one."""
    return span.kind != "SERVER" and attr.MCP_METHOD_NAME in span.attributes


def _ms(ns: int) -> float:
    return ns / 1e6


def _tool(span: SpanRecord) -> str:
    method = str(span.attributes.get(attr.MCP_METHOD_NAME, span.name))
    target = span.attributes.get(attr.GEN_AI_TOOL_NAME) or span.attributes.get(attr.GEN_AI_PROMPT_NAME)
    return f"{method} {target}" if target else method


def _server(span: SpanRecord) -> str:
    name = span.attributes.get(attr.SERVER_NAME) or span.attributes.get(attr.SERVER_ADDRESS)
    return str(name) if name else "?"


def _wall_ms(run: Sequence[SpanRecord]) -> float:
    return _ms(max(s.end_ns for s in run) - min(s.start_ns for s in run))


def _batched_saving_ms(run: Sequence[SpanRecord]) -> float:
    """What one call (or all at once) would save: the run's wall time less its longest call."""
    return round(max(_wall_ms(run) - max(s.duration_ms for s in run), 0.0), 3)


def _runs(calls: Sequence[SpanRecord], same: Callable[[SpanRecord, SpanRecord], bool]) -> list[list[SpanRecord]]:
    """Maximal runs of consecutive, non-overlapping calls for which ``same(previous, next)`` holds."""
    runs: list[list[SpanRecord]] = []
    for span in calls:
        if runs and runs[-1][-1].end_ns <= span.start_ns and same(runs[-1][-1], span):
            runs[-1].append(span)
        else:
            runs.append([span])
    return runs


# ------------------------------------------------------------------------------------------ analyzers


def _n_plus_one(trace: _Trace, limits: Thresholds) -> list[Finding]:
    def same(a: SpanRecord, b: SpanRecord) -> bool:
        return (_tool(a), _server(a), a.attributes.get(attr.TOOL_ARGS_SHAPE)) == (
            _tool(b),
            _server(b),
            b.attributes.get(attr.TOOL_ARGS_SHAPE),
        )

    findings: list[Finding] = []
    for calls in trace.calls().values():
        for run in _runs(calls, same):
            if len(run) < limits.n_plus_one_min_calls:
                continue
            if any(s.duration_ms > limits.n_plus_one_max_call_ms for s in run):
                continue
            if (
                len({s.attributes.get(attr.TOOL_ARGS_HASH) for s in run}) == 1
                and attr.TOOL_ARGS_HASH in run[0].attributes
            ):
                continue  # one item asked for again and again: a loop (below), not N items one by one
            tool, server = _tool(run[0]), _server(run[0])
            shape = run[0].attributes.get(attr.TOOL_ARGS_SHAPE)
            findings.append(
                Finding(
                    "n_plus_one",
                    trace.trace_id,
                    tuple(s.span_id for s in run),
                    _batched_saving_ms(run),
                    f"{len(run)} calls in a row to {tool} on {server}"
                    + (f" with the same argument names ({shape})" if shape else "")
                    + f", {_wall_ms(run):.0f} ms in all",
                    "batch them: one call that takes the list (or run them concurrently)",
                    key=f"n_plus_one:{tool}@{server}",
                    data={"calls": len(run), "wall_ms": round(_wall_ms(run), 3)},
                )
            )
    return findings


def _sequential(trace: _Trace, limits: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    for parent_id, calls in trace.calls().items():
        siblings = trace.children.get(parent_id, []) if parent_id is not None else []
        order = {s.span_id: i for i, s in enumerate(siblings)}
        for run in _runs(calls, lambda a, b, order=order: _independent(a, b, order, limits)):
            if len(run) < 2:
                continue
            names = " then ".join(f"{_tool(s)} ({_server(s)})" for s in run)
            findings.append(
                Finding(
                    "sequential",
                    trace.trace_id,
                    tuple(s.span_id for s in run),
                    _batched_saving_ms(run),
                    f"{len(run)} independent calls one after the other: {names}",
                    "run them concurrently (anyio task group / asyncio.gather)",
                    key="sequential:" + "+".join(sorted({_tool(s) for s in run})),
                    data={"calls": len(run), "wall_ms": round(_wall_ms(run), 3)},
                )
            )
    return findings


def _independent(a: SpanRecord, b: SpanRecord, order: dict[str, int], limits: Thresholds) -> bool:
    """Calls to different tools or servers, with no sibling span between them and little time apart."""
    different = (_tool(a), _server(a)) != (_tool(b), _server(b))
    adjacent = a.span_id in order and b.span_id in order and order[b.span_id] == order[a.span_id] + 1
    return different and adjacent and _ms(b.start_ns - a.end_ns) <= limits.sequential_max_gap_ms


def _fanout(trace: _Trace, limits: Thresholds) -> list[Finding]:
    groups = {parent: calls for parent, calls in trace.calls().items() if parent is not None}
    findings: list[Finding] = []
    for parent_id, calls in groups.items():
        others = [len(c) for p, c in groups.items() if p != parent_id]
        usual = statistics.median(others) if others else 1.0
        if len(calls) < limits.fanout_min_calls or len(calls) < limits.fanout_factor * max(usual, 1.0):
            continue
        parent = trace.by_id[parent_id]
        findings.append(
            Finding(
                "fanout",
                trace.trace_id,
                (parent_id, *(s.span_id for s in calls)),
                round(sum(s.duration_ms for s in calls), 3),
                f"{parent.name} made {len(calls)} calls (usual here: {usual:g})",
                "check for a runaway loop; cap the calls a turn may make",
                key=f"fanout:{parent.name}",
                data={"calls": len(calls), "usual": usual},
            )
        )
    return findings


def _loop(trace: _Trace, limits: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    for calls in trace.calls().values():
        same_call: dict[tuple[str, str, object], list[SpanRecord]] = defaultdict(list)
        for span in calls:
            digest = span.attributes.get(attr.TOOL_ARGS_HASH)
            if digest is not None:
                same_call[(_tool(span), _server(span), digest)].append(span)
        for (tool, server, _), repeats in same_call.items():
            if len(repeats) < limits.loop_min_repeats:
                continue
            findings.append(
                Finding(
                    "loop",
                    trace.trace_id,
                    tuple(s.span_id for s in repeats),
                    round(sum(s.duration_ms for s in repeats[1:]), 3),
                    f"{tool} on {server} called {len(repeats)} times with the same arguments",
                    "reuse the first result, or stop the loop that repeats it",
                    key=f"loop:{tool}@{server}",
                    data={"calls": len(repeats)},
                )
            )
    return findings


def _covered_ns(span: SpanRecord, children: Sequence[SpanRecord]) -> tuple[int, tuple[int, int, str, str]]:
    """How much of ``span`` its children cover, and its longest uncovered gap ``(start, end, before, after)``."""
    covered = 0
    cursor = span.start_ns
    previous = "its start"
    gap = (0, 0, "", "")
    for child in sorted(children, key=lambda c: c.start_ns):
        start, end = max(child.start_ns, cursor), min(child.end_ns, span.end_ns)
        if start - cursor > gap[1] - gap[0]:
            gap = (cursor, start, previous, child.name)
        if end > start:
            covered += end - start
        if end > cursor:
            cursor, previous = end, child.name
    if span.end_ns - cursor > gap[1] - gap[0]:
        gap = (cursor, span.end_ns, previous, "its end")
    return covered, gap


def _plateau(trace: _Trace, limits: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    for span in trace.spans:
        children = trace.children.get(span.span_id, [])
        duration = span.end_ns - span.start_ns
        if not children or span.duration_ms < limits.plateau_min_ms or duration <= 0:
            continue
        if span.name.endswith(".session") or span.attributes.get(attr.MCP_METHOD_NAME) in _HANDSHAKE:
            continue
        covered, (gap_start, gap_end, before, after) = _covered_ns(span, children)
        if covered / duration >= limits.plateau_max_coverage:
            continue
        waits_on = ""
        if _sends(span) and _server(span) != "?":
            waits_on = f", waiting on server {_server(span)}"
        elif span.attributes.get("gen_ai.request.model"):
            waits_on = f", waiting on model {span.attributes['gen_ai.request.model']}"
        findings.append(
            Finding(
                "plateau",
                trace.trace_id,
                (span.span_id,),
                round(_ms(duration - covered), 3),
                f"{span.name} [{span.duration_ms:.0f} ms]: children cover {covered / duration:.0%}{waits_on}; "
                f"longest gap {_ms(gap_end - gap_start):.0f} ms, after {before}, before {after}",
                "instrument what it waits on (the gap), or stop waiting for it",
                key=f"plateau:{span.name}",
                data={"coverage": round(covered / duration, 4), "gap_ms": round(_ms(gap_end - gap_start), 3)},
            )
        )
    return findings


def _same_process(a: SpanRecord, b: SpanRecord) -> bool:
    return (a.service, a.pid) == (b.service, b.pid)


def _setup(trace: _Trace, limits: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    for span in trace.spans:
        local = [c for c in trace.children.get(span.span_id, []) if _same_process(span, c)]
        duration = span.end_ns - span.start_ns
        if not local or duration <= 0:
            continue
        setup = min(c.start_ns for c in local) - span.start_ns
        if _ms(setup) < limits.setup_min_ms or setup / duration < limits.setup_min_share:
            continue
        first = min(local, key=lambda c: c.start_ns)
        findings.append(
            Finding(
                "overlong_setup",
                trace.trace_id,
                (span.span_id, first.span_id),
                round(_ms(setup), 3),
                f"{span.name} [{span.duration_ms:.0f} ms] spent {_ms(setup):.0f} ms ({setup / duration:.0%}) "
                f"before its first step ({first.name})",
                "do the setup once (at start-up, or cached), not in every call",
                key=f"overlong_setup:{span.name}",
                data={"share": round(setup / duration, 4)},
            )
        )
    return findings


def _cascade(trace: _Trace, limits: Thresholds) -> list[Finding]:
    depth: dict[str, int] = {}
    deepest: list[SpanRecord] = []
    for root in (s for s in trace.spans if s.parent_id not in trace.by_id):
        stack: list[tuple[SpanRecord, list[SpanRecord]]] = [(root, [root])]
        while stack:
            span, path = stack.pop()
            depth[span.span_id] = len(path)
            if len(path) > len(deepest):
                deepest = path
            stack.extend((child, [*path, child]) for child in trace.children.get(span.span_id, []))
    if len(deepest) <= limits.cascade_max_depth:
        return []
    beyond = deepest[limits.cascade_max_depth]
    return [
        Finding(
            "deep_cascade",
            trace.trace_id,
            tuple(s.span_id for s in deepest),
            round(beyond.duration_ms, 3),
            f"{len(deepest)} levels of nested spans, from {deepest[0].name} to {deepest[-1].name}",
            "flatten the planning: fewer layers of delegation per request",
            key=f"deep_cascade:{deepest[0].name}",
            data={"depth": len(deepest)},
        )
    ]


def _propagation(trace: _Trace, limits: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    orphans = [s for s in trace.spans if s.parent_id is not None and s.parent_id not in trace.by_id]
    for span in orphans:
        findings.append(
            Finding(
                "orphan",
                trace.trace_id,
                (span.span_id,),
                round(span.duration_ms, 3),
                f"{span.name} ({span.service or '?'}) names a parent {span.parent_id} that is not in the store",
                "check that the parent's process exports to the same place (and flushes before it exits)",
                key=f"orphan:{span.service}:{span.name}",
            )
        )
    roots = [s for s in trace.spans if s.parent_id is None]
    if len(roots) > 1:
        findings.append(
            Finding(
                "multiple_roots",
                trace.trace_id,
                tuple(s.span_id for s in roots),
                round(sum(s.duration_ms for s in roots[1:]), 3),
                f"{len(roots)} root spans in one trace: " + ", ".join(f"{s.name} ({s.service})" for s in roots[:4]),
                "one request, one root: open the agent's span first and start everything under it",
                key="multiple_roots:" + "+".join(sorted({str(s.service) for s in roots})),
            )
        )
    return findings


def _lost_context(trace: _Trace, neighbours: Neighbours) -> list[Finding]:
    findings: list[Finding] = []
    for span in trace.spans:
        method = span.attributes.get(attr.MCP_METHOD_NAME)
        if not _sends(span) or method is None:
            continue
        if any(c.kind == "SERVER" for c in trace.children.get(span.span_id, [])):
            continue
        tool = span.attributes.get(attr.GEN_AI_TOOL_NAME)
        strays = [
            s
            for s in neighbours(span.start_ns, span.end_ns, trace.trace_id)
            if s.attributes.get(attr.MCP_METHOD_NAME) == method and s.attributes.get(attr.GEN_AI_TOOL_NAME) == tool
        ]
        if not strays:
            continue
        stray = strays[0]
        findings.append(
            Finding(
                "lost_context",
                trace.trace_id,
                (span.span_id, stray.span_id),
                round(stray.duration_ms, 3),
                f"{_tool(span)}: the server ({stray.service or '?'}) started a new trace {stray.trace_id} "
                "for it instead of continuing this one",
                "the context did not reach the server: trace the client session (trace_session) and instrument "
                "the server (instrument_server), or forward _meta/traceparent through the proxy",
                key=f"lost_context:{stray.service}:{_tool(span)}",
                data={"server_trace": stray.trace_id},
            )
        )
    return findings


@dataclass(frozen=True)
class LostHalf:
    """Requests to one server whose server side left no span in the trace."""

    server: str
    """The server as the client knows it (``mcp_tracing.server.name``, else its address)."""
    missing: tuple[str, ...]
    """The client spans with no server span under them."""
    calls: int
    """The client's requests to that server in the trace."""

    @property
    def whole(self) -> bool:
        """Whether none of the server's spans is in the trace."""
        return len(self.missing) == self.calls

    def describe(self) -> str:
        """One line for a person: which server, how much is missing, the likely causes."""
        name = json.dumps(self.server)  # a peer-chosen name: quoted, control characters escaped
        if self.whole:
            plural = "s" if self.calls != 1 else ""
            return (
                f"no spans from server {name} ({self.calls} call{plural}): it is not traced, exports to another "
                "store or endpoint, or was killed before it flushed"
            )
        return (
            f"{len(self.missing)} of {self.calls} calls to server {name} have no server span: it was killed "
            "before it flushed, or lost the context of those calls"
        )


def lost_halves(spans: Sequence[SpanRecord]) -> list[LostHalf]:
    """The servers this trace called whose spans are missing from it, in the order first called.

    A client request counts as answered by the server's side when a SERVER span (the server's MCP span, or its
    HTTP span) is its child. A server none of whose requests is answered is reported; a server with only some
    unanswered is reported for the calls that do work (``_CALL_METHODS``), which servers never filter out, so a
    server that excludes list calls or pings is not taken for a lost one.
    """
    if not spans:
        return []
    trace = _Trace(spans)
    calls: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in trace.spans:
        method = span.attributes.get(attr.MCP_METHOD_NAME)
        if not _sends(span) or not isinstance(method, str):
            continue
        if method.startswith("notifications/") or method in _SERVER_REQUESTS or method == "ping":
            continue
        calls[_server(span)].append(span)
    lost: list[LostHalf] = []
    for server, sent in calls.items():
        missing = [s for s in sent if not any(c.kind == "SERVER" for c in trace.children.get(s.span_id, []))]
        if missing and len(missing) < len(sent):
            missing = [s for s in missing if s.attributes.get(attr.MCP_METHOD_NAME) in _CALL_METHODS]
        if missing:
            lost.append(LostHalf(server, tuple(s.span_id for s in missing), len(sent)))
    return lost


def flagged(findings: Iterable[Finding]) -> dict[str, list[str]]:
    """Span id -> the labels of the findings that name it (for drawing them inline)."""
    marks: dict[str, list[str]] = defaultdict(list)
    for finding in findings:
        for span_id in finding.span_ids:
            if LABELS[finding.kind] not in marks[span_id]:
                marks[span_id].append(LABELS[finding.kind])
    return marks

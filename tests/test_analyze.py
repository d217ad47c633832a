"""``mcp_tracing.store.patterns`` over traces built span by span: each pattern found, and what must not be flagged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.traces import MS, T0, Trace, write

from mcp_tracing._core import attributes as attr
from mcp_tracing.cli import main
from mcp_tracing.cli.tree import render_tree
from mcp_tracing.store.patterns import Finding, Thresholds, analyze, flagged, rank
from mcp_tracing.testing import SpanRecord

pytestmark = pytest.mark.sdk_independent  # the same on either SDK line: scripts/test runs it on mcp 2.x only


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def ids(*spans: SpanRecord) -> tuple[str, ...]:
    return tuple(s.span_id for s in spans)


# ---------------------------------------------------------------------------------------- each pattern


def test_n_plus_one_is_a_run_of_short_calls_to_one_tool_with_one_shape() -> None:
    t = Trace()
    turn = t.turn()
    t.span("model.call", 0, 50, turn)
    reads = [t.call("read_file", 60 + 12 * i, 70 + 12 * i, turn) for i in range(4)]
    (finding,) = analyze(t.spans)
    assert finding.kind == "n_plus_one"
    assert finding.span_ids == ids(*reads)
    assert finding.time_ms == pytest.approx((106 - 60) - 10)  # wall time less one call: what a batch saves
    assert "4 calls in a row to tools/call read_file on files" in finding.summary
    assert finding.key == "n_plus_one:tools/call read_file@files"


def test_sequential_independent_calls_to_different_servers() -> None:
    t = Trace()
    turn = t.turn()
    query = t.call("query", 100, 130, turn, server="sql", shape="sql")
    search = t.call("search", 135, 155, turn, shape="word")
    (finding,) = analyze(t.spans)
    assert (finding.kind, finding.span_ids) == ("sequential", ids(query, search))
    assert finding.time_ms == pytest.approx(55 - 30)  # together they would take the longer one
    assert "query (sql) then tools/call search (files)" in finding.summary


def test_runaway_fanout_against_the_usual_turn() -> None:
    t = Trace()
    for i in range(3):  # usual turns: one call each
        t.call("search", 1000 * i, 1000 * i + 10, t.turn(1000 * i, 1000 * i + 12), shape="word")
    big = t.turn(3000, 3070)
    calls = [t.call(f"tool{i}", 3000 + i, 3050 + i, big, shape=f"a{i}") for i in range(12)]  # overlapping
    (finding,) = analyze(t.spans)
    assert (finding.kind, finding.span_ids) == ("fanout", ids(big, *calls))
    assert finding.time_ms == pytest.approx(12 * 50)
    assert finding.data == {"calls": 12, "usual": 1}


def test_loop_is_the_same_call_again_and_again_not_an_n_plus_one() -> None:
    t = Trace()
    turn = t.turn()
    same = [t.call("get_status", 10 + 20 * i, 20 + 20 * i, turn, shape="job", digest="f" * 32) for i in range(3)]
    (finding,) = analyze(t.spans)
    assert (finding.kind, finding.span_ids) == ("loop", ids(*same))
    assert finding.time_ms == pytest.approx(20)  # the two repeats


def test_plateau_names_its_gap_and_what_it_waits_on() -> None:
    t = Trace()
    turn = t.turn(0, 1010)
    call = t.call("slow_report", 0, 1000, turn)
    served = t.span("tools/call slow_report", 900, 990, call, kind="SERVER", service="reports", pid=2)
    (finding,) = analyze(t.spans)
    assert (finding.kind, finding.span_ids) == ("plateau", ids(call))
    assert finding.time_ms == pytest.approx(910)
    assert "children cover 9%, waiting on server files" in finding.summary
    assert f"longest gap 900 ms, after its start, before {served.name}" in finding.summary


def test_overlong_setup_before_the_first_local_step() -> None:
    t = Trace()
    served = t.span("tools/call build", 0, 1000, kind="SERVER", service="builder")
    step = t.span("compile", 800, 990, served, service="builder")
    (finding,) = analyze(t.spans)
    assert (finding.kind, finding.span_ids, finding.time_ms) == ("overlong_setup", ids(served, step), 800)


def test_deep_cascade() -> None:
    t = Trace()
    parent = t.span("level0", 0, 1000)
    chain = [parent]
    for depth in range(1, 12):
        parent = t.span(f"level{depth}", depth, 1000 - depth, parent)
        chain.append(parent)
    (finding,) = analyze(t.spans)
    assert (finding.kind, finding.span_ids) == ("deep_cascade", ids(*chain))
    assert finding.data == {"depth": 12}
    assert finding.time_ms == pytest.approx(chain[10].duration_ms)


def test_orphans_and_several_roots() -> None:
    t = Trace()
    root = t.span("agent.session", 0, 100)
    other_root = t.span("notifications/initialized", 5, 6, kind="SERVER", service="files")
    orphan = t.span("tools/call read_file", 10, 20, "0123456789abcdef", kind="SERVER", service="files")
    findings = analyze(t.spans)
    assert sorted(kinds(findings)) == ["multiple_roots", "orphan"]
    by_kind = {f.kind: f for f in findings}
    assert by_kind["orphan"].span_ids == ids(orphan)
    assert by_kind["multiple_roots"].span_ids == ids(root, other_root)
    assert "names a parent 0123456789abcdef that is not in the store" in by_kind["orphan"].summary


def test_lost_context_finds_the_servers_new_trace() -> None:
    t = Trace()
    call = t.call("read_file", 100, 200, t.turn())
    stray_trace = Trace("b" * 32)
    stray = stray_trace.span(
        "tools/call read_file",
        150,
        160,
        kind="SERVER",
        service="files",
        attributes={attr.MCP_METHOD_NAME: attr.TOOLS_CALL, attr.GEN_AI_TOOL_NAME: "read_file"},
    )
    asked: list[tuple[int, int, str]] = []

    def neighbours(start: int, end: int, trace_id: str) -> list[SpanRecord]:
        asked.append((start, end, trace_id))
        return [stray]

    (finding,) = analyze(t.spans, neighbours=neighbours)
    assert (finding.kind, finding.span_ids) == ("lost_context", ids(call, stray))
    assert asked == [(call.start_ns, call.end_ns, t.trace_id)]
    assert finding.data == {"server_trace": "b" * 32}


# ----------------------------------------------------------------------------- what must not be flagged


def test_a_correct_parallel_fanout_is_not_flagged() -> None:
    t = Trace()
    turn = t.turn()
    t.span("model.call", 0, 50, turn)
    for i in range(5):  # five reads at once: overlapping, so neither N+1 nor sequential
        t.call("read_file", 60 + i, 90 + i, turn)
    assert analyze(t.spans) == []


def test_a_batch_call_is_not_flagged() -> None:
    t = Trace()
    turn = t.turn()
    t.call("read_files", 60, 90, turn, shape="paths")
    t.call("summarize", 200, 300, turn, shape="text")  # after a pause (the agent worked on the result)
    assert analyze(t.spans) == []


def test_calls_with_a_model_call_between_them_are_dependent() -> None:
    t = Trace()
    turn = t.turn()
    t.call("query", 100, 130, turn, server="sql", shape="sql")
    t.span("model.call", 131, 140, turn)
    t.call("search", 141, 160, turn, shape="word")
    assert analyze(t.spans) == []


def test_a_long_span_covered_by_its_children_and_the_handshake_are_not_plateaus() -> None:
    t = Trace()
    turn = t.turn(0, 1000)
    t.span("model.call", 0, 600, turn)
    t.span("checkpoint", 610, 990, turn)
    init = t.span("initialize", 1000, 1900, turn, kind="CLIENT", attributes={attr.MCP_METHOD_NAME: attr.INITIALIZE})
    t.span("initialize", 1890, 1895, init, kind="SERVER", service="files", pid=2)  # the server took 900 ms to start
    # The session (0-5000 ms, covered 38%) waits between turns: never a plateau.
    assert analyze(t.spans) == []


def test_a_late_child_in_another_process_is_not_setup_but_a_plateau() -> None:
    """The wait before a server span is transport (or the server's queue), not this span's setup."""
    t = Trace()
    call = t.span("tools/call x", 0, 1000, kind="CLIENT", attributes={attr.MCP_METHOD_NAME: "tools/call"})
    t.span("tools/call x", 850, 990, call, kind="SERVER", service="srv", pid=2)
    assert kinds(analyze(t.spans)) == ["plateau"]


def test_short_runs_slow_calls_and_far_apart_calls_are_not_flagged() -> None:
    t = Trace()
    turn = t.turn(0, 1700)
    t.call("read_file", 0, 10, turn)
    t.call("read_file", 20, 30, turn)  # two: below n_plus_one_min_calls
    t.span("model.call", 31, 40, turn)
    for i in range(3):  # three, but each slower than n_plus_one_max_call_ms
        t.call("fetch_page", 100 + 400 * i, 400 + 400 * i, turn, shape="url")
    t.span("render", 1200, 1290, turn)
    t.span("model.call", 1300, 1310, turn)
    t.call("query", 1400, 1410, turn, server="sql", shape="sql")
    t.call("search", 1600, 1610, turn, shape="word")  # 190 ms later: not adjacent in time
    assert analyze(t.spans) == []


# ------------------------------------------------------------------------------------ thresholds, ranking


def test_thresholds_change_what_counts() -> None:
    t = Trace()
    turn = t.turn()
    for i in range(3):
        t.call("read_file", 10 * i, 10 * i + 5, turn)
    assert kinds(analyze(t.spans)) == ["n_plus_one"]
    assert analyze(t.spans, Thresholds().replace(["n_plus_one_min_calls=4"])) == []
    assert Thresholds().replace([" plateau_max_coverage = 0.25 "]).plateau_max_coverage == 0.25
    for bad, message in (
        ("nope=1", "unknown threshold 'nope'"),
        ("n_plus_one_min_calls", "unknown threshold"),
        ("n_plus_one_min_calls=many", "takes a number"),
        ("n_plus_one_min_calls=1.5", "takes a number"),
        ("plateau_min_ms=-1", "cannot be negative"),
    ):
        with pytest.raises(ValueError, match=message):
            Thresholds().replace([bad])


def test_rank_groups_the_same_problem_across_traces_by_time_lost() -> None:
    def finding(kind: str, trace_id: str, time_ms: float, key: str) -> Finding:
        return Finding(kind, trace_id, ("s",), time_ms, f"{kind} summary", "fix it", key=key)

    ranked = rank(
        [
            finding("n_plus_one", "t1", 5, "n_plus_one:read@files"),
            finding("n_plus_one", "t2", 7, "n_plus_one:read@files"),
            finding("plateau", "t1", 9, "plateau:x"),
        ]
    )
    assert [(r["key"], r["total_ms"], r["traces"], r["findings"], r["example_trace"]) for r in ranked] == [
        ("n_plus_one:read@files", 12, 2, 2, "t2"),
        ("plateau:x", 9, 1, 1, "t1"),
    ]


def test_flagged_spans_are_marked_in_the_tree_with_time_bars() -> None:
    t = Trace()
    turn = t.turn(0, 100)
    reads = [t.call("read_file", 10 * i, 10 * i + 5, turn) for i in range(3)]
    text = render_tree(t.spans, width=20, marks=flagged(analyze(t.spans)))
    lines = text.splitlines()
    assert [line.endswith("|  ⚑ N+1") for line in lines] == [False, False, True, True, True]
    bars = [line.split("|")[1] for line in lines]
    assert all(len(bar) == 20 for bar in bars)
    assert bars[0] == "█" * 20  # the session spans the whole trace (0..5000 ms)
    assert bars[2].index("█") <= bars[3].index("█") <= bars[4].index("█")
    flagged_lines = [line for line in lines if line.endswith("⚑ N+1")]
    assert [line.count("read_file") for line in flagged_lines] == [1] * len(reads)  # the three reads, no other


# ---------------------------------------------------------------------------------------------- the CLI


def n_plus_one_trace(trace_id: str, offset_ms: int = 0) -> Trace:
    t = Trace(trace_id, t0=T0 + offset_ms * MS)
    turn = t.turn()
    for i in range(3):
        t.call("read_file", 10 * i, 10 * i + 5, turn)
    return t


def test_analyze_command_one_trace_and_ranked_across_traces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "traces.db"
    write(store, n_plus_one_trace("c" * 32), n_plus_one_trace("d" * 32, 1000))
    monkeypatch.setenv("MCP_TRACING_STORE", str(store))
    assert main(["analyze", "cccc"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"trace {'c' * 32}: 1 finding"
    assert "- N+1: 3 calls in a row to tools/call read_file on files" in out
    assert main(["analyze", "cccc", "--json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)
    assert found["kind"] == "n_plus_one" and found["time_ms"] == pytest.approx(20)
    assert main(["analyze", "cccc", "--threshold", "n_plus_one_min_calls=4"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"trace {'c' * 32}: 0 findings"]
    assert main(["analyze", "--since", "1h", "--json"]) == 0
    (ranked,) = json.loads(capsys.readouterr().out)
    assert (ranked["traces"], ranked["total_ms"]) == (2, pytest.approx(40))
    assert main(["analyze", "--since", "1h"]) == 0
    assert "40.0 ms in 2 traces (2 findings): N+1" in capsys.readouterr().out
    assert main(["analyze", "cccc", "--threshold", "bogus=1"]) == 2  # bad usage, as argparse's own errors
    assert "mcp-tracing: error: unknown threshold 'bogus'" in capsys.readouterr().err
    assert main(["show", "cccc", "--bars", "0"]) == 0
    assert "⚑ N+1" in capsys.readouterr().out
    assert main(["show", "cccc", "--html", str(tmp_path / "missing" / "page.html")]) == 1
    assert capsys.readouterr().err.startswith(f"mcp-tracing: error: cannot write {tmp_path / 'missing' / 'page.html'}")
    with pytest.raises(SystemExit):
        main(["show", "cccc", "--bars", "401"])
    assert "not a width from 0 to 400" in capsys.readouterr().err

"""CI's smoke run of the benchmarks: every benchmark runs a little and its results are checked for
correctness (the right calls returned, spans made where they should be and only there). No timing claims."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_tracing._core.registry import IS_V2

ROOT = Path(__file__).resolve().parents[1]


def call_variants(v2: bool) -> list[str]:
    """The call benchmarks' variants, in order, on an SDK line (the SDK's own tracing and the floor: 2.x only)."""
    return [
        "untraced",
        "_meta by hand",
        *(["mcp 2.x built-in"] if v2 else []),
        "mcp_tracing",
        "propagation only",
        *(["floor"] if v2 else []),
    ]


@pytest.mark.subprocess
def test_the_benchmarks_run_and_report_every_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    variants = call_variants(IS_V2)
    for bench in ("stdio", "http"):
        assert [row["variant"] for row in results[bench]] == variants
        assert all(row["calls"] == results["rounds"] and row["median_ms"] > 0 for row in results[bench])
        assert results[bench][0]["ratio"] == 1.0
        targets = {row["variant"]: row["target"] for row in results[bench] if row["target"]}
        assert {name: (t["vs"], t["at_most"]) for name, t in targets.items()} == {
            "propagation only": ("untraced", 1.03),
            **({"mcp_tracing": ("mcp 2.x built-in", 1.02)} if IS_V2 else {}),
        }
    if IS_V2:  # the per-piece budget: every piece measured on both sides, the floor beside it
        budget = results["budget"]["rows"]
        assert {(row["side"], row["piece"]) for row in budget} >= {("client", "metrics"), ("server", "span start/end")}
        assert all(row["mcp_tracing"] > 0 for row in budget) and results["spans_made"]["floor"] > 0
    assert [row["variant"] for row in results["proxy"]] == ["direct", "mcp-tracing wrap"]
    assert results["tail_memory"]["spans"] == 5_000 and results["tail_memory"]["peak_buffered_spans"] > 0
    stored = results["store"]  # every command of the workflow timed; ingest lost nothing, held the cap
    assert stored["spans"] == 5_000 and stored["traces"] == 218 and len(stored["commands"]) == 9
    assert all(row["median_ms"] > 0 for row in stored["commands"].values())
    assert [(row["processes"], row["lost"], row["cap"]) for row in stored["ingest"].values()] == [
        (1, 0, None),
        (1, 0, 5_000),
        (4, 0, None),
        (4, 0, 5_000),
    ]
    assert results["spans_made"]["mcp_tracing"] > 0
    table = (tmp_path / "results.md").read_text()
    assert table.count("| stdio tool call |") == len(variants)
    assert (
        done.stdout.count("| `traces --where ") == 4 and "| 4 processes, a store at its cap of 5,000 |" in done.stdout
    )


@pytest.mark.subprocess
def test_the_soak_keeps_every_span_of_both_processes() -> None:
    """A short soak (CI): an agent and its stdio server, both configure()d, at a steady rate; the store holds
    one client span, one server span and one tool span per call made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--seconds", "4", "--rate", "40", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout, done.stderr[-3000:])
    result = json.loads(done.stdout)
    calls = result["calls"]
    assert calls > 0 and result["missing"] == {}
    assert {k: v for k, v in result["counts"].items() if "search" in k or "fs.scan" in k} == {
        "tools/call search CLIENT": calls,
        "tools/call search SERVER": calls,
        "fs.scan INTERNAL": calls,
    }
    assert result["stderr"] == ""


def _benchmarks() -> tuple[Any, Any, Any]:
    """benchmarks/run.py, instructions.py and budget.py as modules (they live beside each other, not in a
    package)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import budget
        import instructions
        import run
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return run, instructions, budget


@pytest.mark.subprocess
def test_instructions_are_counted_for_every_variant_of_the_line() -> None:
    """What run.py puts in README's instruction table: a count per call for each variant this line has."""
    _, instructions, _ = _benchmarks()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    line = instructions.mcp_version(sys.executable)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "instructions.py"), "--calls", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(counted) == instructions.variants_for(line)
    assert set(counted) >= {"untraced", "meta_by_hand", "mcp_tracing", "propagation"}
    assert ("floor" in counted) is IS_V2 and ("sdk" in counted) is IS_V2
    # Whole calls counted, and tracing counted on top of the untraced call.
    assert 500_000 < counted["untraced"] < counted["mcp_tracing"]


@pytest.mark.subprocess
def test_the_mcp1_rows_come_from_the_other_interpreter() -> None:
    """``run.py --mcp1-python``: the other line's stdio and HTTP rows, measured by that interpreter."""
    from helpers.processes import other_python

    python = other_python()
    run, instructions, _ = _benchmarks()
    other = run.other_line(python, argparse.Namespace(rounds=3))
    assert other["mcp"] == instructions.mcp_version(python)
    other_v2 = other["mcp"].startswith("2.")
    expected = call_variants(other_v2)
    for bench in ("stdio", "http"):
        assert [row["variant"] for row in other[bench]] == expected
        assert all(row["calls"] == 3 and row["median_ms"] > 0 for row in other[bench])


def test_the_tables_land_between_their_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's two tables are rewritten in place by run.py, each between its own markers."""
    run, _, budget = _benchmarks()
    readme = (ROOT / "README.md").read_text()
    for markers in (run.MARKERS, run.BUDGET_MARKERS, run.STORE_MARKERS):
        assert readme.count(markers[0]) == 1 and readme.count(markers[1]) == 1
        assert readme.index(markers[0]) < readme.index(markers[1])
    copy = tmp_path / "README.md"
    copy.write_text(readme)
    monkeypatch.setattr(run, "README", copy)
    rows = [
        {"side": side, "piece": piece, "mcp_tracing": 2.0, "sdk": None, "floor": 1.0}
        for side in budget.SIDES
        for piece in budget.PIECES
    ]
    table = budget.table({"rows": rows, "totals": {"mcp_tracing": 64.0, "sdk": 0.0, "floor": 32.0}})
    run.update_readme(table, run.BUDGET_MARKERS)
    run.update_readme("the bench table\n")
    written = copy.read_text()
    start, end = written.index(run.BUDGET_MARKERS[0]), written.index(run.BUDGET_MARKERS[1])
    assert written[start + len(run.BUDGET_MARKERS[0]) : end] == "\n" + table
    assert (
        "| server | metrics | 2.0 | - | 1.0 |" in table
        and "| **both** | **total** | **64.0** | **0.0** | **32.0** |" in table
    )
    start, end = written.index(run.MARKERS[0]), written.index(run.MARKERS[1])
    assert written[start + len(run.MARKERS[0]) : end] == "\nthe bench table\n"
    assert written[: written.index(run.MARKERS[0])] == readme[: readme.index(run.MARKERS[0])]

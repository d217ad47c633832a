"""CI's smoke run of the benchmarks: every benchmark runs a little and its results are checked for
correctness (the right calls returned, spans made where they should be and only there). No timing claims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_tracing._core.registry import IS_V2

ROOT = Path(__file__).resolve().parents[1]


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
    variants = [
        "untraced",
        "_meta by hand",
        *(["mcp 2.x built-in"] if IS_V2 else []),
        "mcp_tracing",
        "propagation only",
        *(["floor"] if IS_V2 else []),
    ]
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
    assert results["show"]["spans"] == 20_000
    assert results["spans_made"]["mcp_tracing"] > 0
    table = (tmp_path / "results.md").read_text()
    assert table.count("| stdio tool call |") == len(variants) and "| `mcp-tracing show` |" in table


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

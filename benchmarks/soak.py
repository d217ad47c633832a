"""Soak: an agent calls a stdio server at a steady rate for a while; every span of both must reach the store.

    python benchmarks/soak.py --seconds 600 --rate 100       # the 10-minute soak (issue: 100 calls/s)
    python benchmarks/soak.py --seconds 5 --rate 50 --json   # the smoke run CI does (tests/test_benchmarks.py)

Both processes use ``configure()`` as a user's would (the local store, the 500 ms export schedule, bounded
flushes); the server is ``examples/stdio_server.py`` (its ``search`` tool, with a span of its own). At the end
the store is counted: one CLIENT and one SERVER ``tools/call search`` span and one ``fs.scan`` per call made,
nothing more, nothing less. Prints the counts (and the store's size); exits 1 if a span is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

AGENT = """
import sys, time, anyio
from mcp import ClientSession, StdioServerParameters
import mcp_tracing

mcp_tracing.configure("soak-agent")
seconds, rate, files = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]

async def main():
    params = StdioServerParameters(
        command=sys.executable, args=[sys.argv[4]], env={"FILES_ROOT": files, "OTEL_SERVICE_NAME": "soak-server"}
    )
    async with mcp_tracing.stdio_client(params) as (read, write), ClientSession(read, write) as session:
        mcp_tracing.trace_session(session)
        await session.initialize()
        start = time.monotonic()
        calls = 0
        while time.monotonic() - start < seconds:
            await session.call_tool("search", {"word": "soak"})
            calls += 1
            await anyio.sleep(max(0.0, start + calls / rate - time.monotonic()))  # the pace, not a wait
    print(calls)

anyio.run(main)
"""


def soak(seconds: float, rate: float) -> dict[str, object]:
    from mcp_tracing.store import TraceStore

    with tempfile.TemporaryDirectory(prefix="mcp-tracing-soak-") as tmp:
        store = Path(tmp) / "soak.db"
        files = Path(tmp) / "files"
        files.mkdir()
        (files / "a.txt").write_text("soak")
        keep = ("OTEL_BSP_SCHEDULE_DELAY",)  # to compare export schedules
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_")) or k in keep}
        env["MCP_TRACING_STORE"] = str(store)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                AGENT,
                str(seconds),
                str(rate),
                str(files),
                str(ROOT / "examples" / "stdio_server.py"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
        )
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the agent, and the server it waited for
        cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"soak agent failed: {done.stderr[-2000:]}")
        calls = int(done.stdout.split()[-1])
        reader = TraceStore(store)
        counts = {
            name: n
            for name, n in reader._query(  # a count per (name, kind), not a public query
                "SELECT name || ' ' || kind, count(*) FROM spans GROUP BY name, kind"
            )
        }
        size = store.stat().st_size
        reader.close()
    expected = {"tools/call search CLIENT": calls, "tools/call search SERVER": calls, "fs.scan INTERNAL": calls}
    return {
        "seconds": seconds,
        "rate": rate,
        "calls": calls,
        "achieved_rate": round(calls / seconds, 1),
        "elapsed_s": round(elapsed, 1),
        "counts": counts,
        "missing": {k: v - counts.get(k, 0) for k, v in expected.items() if counts.get(k, 0) != v},
        "store_bytes": size,
        "cpu_s": round(cpu_s, 2),
        "stderr": done.stderr.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = soak(args.seconds, args.rate)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['calls']} calls in {result['seconds']} s ({result['achieved_rate']}/s); store: "
            f"{result['counts']}; missing: {result['missing'] or 'none'}"
        )
    return 1 if result["missing"] else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``mcp-tracing`` command as a person meets it: ``--version``, ``--store`` on either side of the command,
``show`` with no id, plurals, usage errors with status 2, and output cut short by its reader ending quietly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.traces import Trace, write

from mcp_tracing._version import __version__
from mcp_tracing.cli import main
from mcp_tracing.cli.terminal import cell_len

pytestmark = pytest.mark.sdk_independent


def one_span_trace(path: Path, trace_id: str, start_ms: float = 0) -> None:
    t = Trace(trace_id)
    t.span("agent.session", start_ms, start_ms + 5)
    write(path, t)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"mcp-tracing {__version__}\n"


def test_store_goes_before_or_after_the_command_and_after_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCP_TRACING_STORE", raising=False)
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    one_span_trace(first, "1" * 32)
    one_span_trace(second, "2" * 32)
    for argv, expected in (
        (["--store", str(first), "traces", "--json"], "1" * 32),
        (["traces", "--json", "--store", str(second)], "2" * 32),
        (["--store", str(first), "traces", "--store", str(second), "--json"], "2" * 32),
    ):
        assert main(argv) == 0
        assert [row["trace_id"] for row in json.loads(capsys.readouterr().out)] == [expected], argv


def test_show_with_no_id_shows_the_latest_trace_and_counts_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.db"
    one_span_trace(path, "a" * 32, start_ms=0)
    one_span_trace(path, "b" * 32, start_ms=1000)  # the latest
    assert main(["show", "--store", str(path), "--bars", "0"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"trace {'b' * 32}: 1 span from 1 process",
        "agent.session [5 ms] (agent)",
    ]
    assert main(["analyze", "b" * 32, "--store", str(path)]) == 0
    assert capsys.readouterr().out == f"trace {'b' * 32}: 0 findings\n"
    empty = tmp_path / "empty.db"
    write(empty)
    assert main(["show", "--store", str(empty)]) == 1
    assert capsys.readouterr().err == f"mcp-tracing: error: the store at {empty} holds no traces yet\n"


def test_a_bad_threshold_is_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traces.db"
    one_span_trace(path, "a" * 32)
    assert main(["--store", str(path), "show", "--threshold", "nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: mcp-tracing") and err[-1].startswith("mcp-tracing: error: ")


@pytest.mark.subprocess
def test_output_cut_short_by_its_reader_ends_quietly_with_status_0(tmp_path: Path) -> None:
    """``mcp-tracing show --json | head -1``: more output than a pipe holds, the reader gone after one line."""
    path = tmp_path / "traces.db"
    t = Trace("c" * 32)
    root = t.span("agent.session", 0, 5000)
    for i in range(2000):
        t.span(f"step {i}", i, i + 1, root, note="x" * 40)
    write(path, t)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for command in (["show", "--json"], ["analyze", "--since", "7d", "--json"], ["show", "--bars", "10"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_tracing.cli", "--store", str(path), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline()
        process.stdout.close()  # as `head -1` does
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0 and err == "", (command, err)


def busy_store(path: Path) -> str:
    """A trace that makes long lines: long and wide-character names, five services, an N+1 finding, a server
    that sent nothing, an error."""
    t = Trace("d" * 32)
    root = t.span("agent.session " + "x" * 90, 0, 900, service="agent-with-a-rather-long-service-name")
    turn = t.span("agent.turn", 10, 800, root)
    for i in range(4):
        t.call("read_file", 100 + 12 * i, 110 + 12 * i, turn)
    for n, service in enumerate(("search-server", "db-server", "檔案伺服器", "mail-server")):
        t.span(f"tools/call {'長い名前' * 5} {n}", 200 + n, 260 + n, turn, service=service, pid=10 + n)
    write(path, t)
    return t.trace_id


COMMANDS = (["traces"], ["show"], ["show", "--bars", "0"], ["analyze", "d" * 8], ["analyze", "--since", "7d"])


@pytest.mark.parametrize("width", [80, 120, 200])
def test_every_line_fits_the_width(tmp_path: Path, capsys: pytest.CaptureFixture[str], width: int) -> None:
    path = tmp_path / "traces.db"
    busy_store(path)
    for command in COMMANDS:
        assert main(["--store", str(path), "--width", str(width), *command]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) >= 2 and max(cell_len(line) for line in lines) <= width, (command, lines)
        if width < 150 and command != ["show", "--bars", "0"]:
            assert any("…" in line for line in lines), command  # what was cut says so
    assert main(["--store", str(path), "--width", str(width), "show"]) == 0
    bars = [line for line in capsys.readouterr().out.splitlines() if "|" in line]
    assert len({cell_len(line[: line.index("|")]) for line in bars}) == 1  # the bars line up, in cells
    assert main(["--store", str(path), "traces"]) == 0  # a pipe, no --width: the table at full size, note inline
    (row,) = capsys.readouterr().out.splitlines()[1:]
    assert cell_len(row) > 150 and row.endswith('⚠ no spans from "files"')


def run_on_a_terminal(args: list[str], **env: str) -> str:
    """The command's output on a pseudo-terminal of 100 columns."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM")}
    environ.update({"TERM": "xterm-256color", "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env})
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_tracing.cli", *args], stdout=follower, stderr=follower, env=environ
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@pytest.mark.subprocess
def test_colour_on_a_terminal_only_and_never_with_no_color(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "traces.db"
    busy_store(path)
    for command in (["traces"], ["show"]):
        coloured = run_on_a_terminal(["--store", str(path), *command])
        assert "\x1b[" in coloured, command
        lines = [line for line in coloured.replace("\r", "").splitlines() if line]
        assert max(cell_len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in lines) <= 100  # the terminal's width
        plain = run_on_a_terminal(["--store", str(path), *command], NO_COLOR="1")
        assert "\x1b[" not in plain and "d" * 12 in plain, command
        assert main(["--store", str(path), *command]) == 0  # a pipe: no colour
        assert "\x1b[" not in capsys.readouterr().out


@pytest.mark.subprocess
def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    """``analyze --since`` over many traces shows a bar on a terminal's stderr; piped, stderr stays empty."""
    path = tmp_path / "traces.db"
    for n in range(60):
        one_span_trace(path, f"{n:032x}", start_ms=n)
    shown = run_on_a_terminal(["--store", str(path), "analyze", "--since", "7d"])
    assert "analyzing 60 traces" in shown and "60 traces in the last 7d: 0 problems" in shown
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_tracing.cli", "--store", str(path), "analyze", "--since", "7d"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "") and "analyzing" not in done.stdout

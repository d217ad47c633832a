"""Every Python and shell block in README.md runs as written, or says why it does not.

A ```python or ```bash block is exactly one of:

* the first block: the two commands ``.ci/run`` runs (the demo in a clean venv, and this suite);
* ``<!-- readme: run -->`` on the line before it: run here, in README order, in one working directory that is
  also ``HOME`` (so the store is a fresh one under it), with this venv's ``bin`` first on ``PATH``; a shell
  block under ``bash -e``, a Python block written to the file its first line names and run with this
  interpreter. So they run on both SDK lines, as the suite does;
* ``<!-- readme: file -->``: a Python file (its first line names it, ``# agent.py: ...``) written into that
  directory for the blocks that run after it;
* ``<!-- readme: tested PATH -->``: run verbatim by the test in ``PATH`` (one that reads README.md);
* a first line ``# recipe: PATH``: its lines are in ``PATH``, which a test runs (``tests/test_recipes.py``);
* a first line ``# fragment: why``: not complete on its own, and saying why, to the reader too.

TOML and JSON blocks must parse.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.processes import clean_env

from mcp_tracing.store import TraceStore

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"(?:<!-- readme: (?P<marker>[^>]*?) -->\n)?```(?P<language>[a-z]*)\n(?P<body>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    language: str
    marker: str
    body: str
    line: int

    @property
    def first_line(self) -> str:
        return self.body.splitlines()[0] if self.body else ""

    @property
    def file_name(self) -> str:
        """The file a ``# name.py: what it is`` first line names."""
        match = re.fullmatch(r"# ([\w.-]+\.py): .+", self.first_line)
        assert match is not None, f"README.md:{self.line}: a file block's first line names it (# name.py: ...)"
        return match.group(1)


def blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    found = []
    for match in _BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("body"))
        found.append(Block(match["language"], match["marker"] or "", match["body"], line))
    return found


def classify(block: Block, index: int) -> str:
    """What makes ``block`` trustworthy: one of run, file, tested, recipe, fragment, ci (or unclassified)."""
    if block.marker in ("run", "file"):
        return block.marker
    if block.marker.startswith("tested "):
        return "tested"
    if block.marker:
        return f"unknown marker {block.marker!r}"
    if index == 0:
        return "ci"
    if re.fullmatch(r"# recipe: \S+", block.first_line):
        return "recipe"
    if re.fullmatch(r"# fragment: \S.*", block.first_line):
        return "fragment"
    return "unclassified"


def test_every_code_block_runs_or_says_why_not() -> None:
    found = [b for b in blocks() if b.language in ("python", "bash", "sh")]
    kinds = {index: classify(b, index) for index, b in enumerate(found)}
    wrong = [f"README.md:{found[i].line}: {kind}" for i, kind in kinds.items() if kind.startswith(("un", "unknown"))]
    assert wrong == [], "every python/bash block is run, a file, tested elsewhere, a recipe or a fragment"
    assert found[0].body.splitlines() == [
        "python3 -m venv .venv-demo && .venv-demo/bin/pip install -q -e . && .venv-demo/bin/mcp-tracing demo",
        "bash scripts/test",
    ]
    assert "README" in (ROOT / ".ci" / "run").read_text()
    counts = {kind: sorted(kinds.values()).count(kind) for kind in set(kinds.values())}
    assert counts["run"] >= 2 and counts["file"] >= 2 and counts["ci"] == 1, counts
    for block in found:
        if block.marker.startswith("tested "):
            path = ROOT / block.marker.removeprefix("tested ")
            assert path.is_file() and "README.md" in path.read_text(), block.marker
        if block.marker in ("run", "file") and block.language == "python":
            assert block.file_name  # named, so a later block can run or import it
    for block in blocks():
        if block.language == "toml" and sys.version_info >= (3, 11):
            import tomllib  # 3.11 and later; the suite also runs on 3.10

            tomllib.loads(block.body)
        elif block.language == "json":
            json.loads(block.body)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_within_the_readme_has_its_heading_and_no_link_leaves_the_repository() -> None:
    text = README.read_text()
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", outside, re.M)}
    linked = set(re.findall(r"\]\(#([^)]+)\)", outside))
    assert linked and linked <= anchors, sorted(linked - anchors)
    for target in re.findall(r"\]\((?!#|https?://)([^)]+)\)", outside):
        assert (ROOT / target).exists() and (ROOT / target).resolve().is_relative_to(ROOT), target
    assert _slug("## configure() and the local store".lstrip("# ")) == "configure-and-the-local-store"


def test_a_block_with_no_marker_and_no_reason_is_caught() -> None:
    """The check above can fail: a bare block, an unknown marker and a nameless file are each reported."""
    text = "```bash\nfirst\n```\n```python\nprint(1)\n```\n<!-- readme: runs -->\n```bash\nls\n```\n"
    assert [classify(b, i) for i, b in enumerate(blocks(text))] == ["ci", "unclassified", "unknown marker 'runs'"]
    with pytest.raises(AssertionError, match="names it"):
        _ = blocks("<!-- readme: file -->\n```python\nprint(1)\n```\n")[0].file_name


@pytest.mark.subprocess
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    """The agent and server pair, then the incident commands: one trace of both processes in a fresh store, the
    tool's own span under the server's, under the agent's tool call, turn and session; no block fails or prints
    a traceback."""
    env = clean_env(HOME=str(tmp_path), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("XDG_DATA_HOME", None)
    outputs: list[str] = []
    for index, block in enumerate(b for b in blocks() if b.language in ("python", "bash")):
        if classify(block, index) == "file":
            (tmp_path / block.file_name).write_text(block.body)
        elif classify(block, index) == "run":
            if block.language == "python":
                (tmp_path / block.file_name).write_text(block.body)
                command = [sys.executable, block.file_name]
            else:
                command = ["bash", "-e", "-o", "pipefail", "-c", block.body]
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (block.line, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr, (block.line, done.stderr)
            outputs.append(done.stdout)
    assert len(outputs) >= 2
    assert outputs[0].startswith("the note called todo\ntrace ")
    store = TraceStore(tmp_path / ".local" / "share" / "mcp-tracing" / "traces.db")
    try:
        (summary,) = store.traces()
        spans = store.spans(summary.trace_id)
    finally:
        store.close()
    assert summary.services == ("notes-agent", "notes-server") and summary.errors == 0
    assert summary.trace_id in outputs[0] and summary.trace_id in outputs[1]
    by_id = {s.span_id: s for s in spans}
    (tool_span,) = [s for s in spans if s.name == "notes.read"]
    chain: list[tuple[str, str | None]] = []
    span = tool_span
    while span.parent_id is not None:
        span = by_id[span.parent_id]
        chain.append((span.name, span.service))
    assert chain == [
        ("tools/call read_note", "notes-server"),
        ("execute_tool read_note", "notes-agent"),
        ("agent.turn", "notes-agent"),
        ("invoke_agent notes-agent", "notes-agent"),
    ]

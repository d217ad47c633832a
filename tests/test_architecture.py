"""The package's shape: no import cycle (lazy imports included), checked by ``scripts/import_graph.py``,
which CI runs too; the core reaches the SDK only through the adapter registered with it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sdk_independent

ROOT = Path(__file__).resolve().parents[1]
GRAPH = [sys.executable, str(ROOT / "scripts" / "import_graph.py")]


def graph(package: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GRAPH, str(package)], capture_output=True, text=True, timeout=60, check=False)


def test_the_package_has_no_import_cycle_and_no_import_against_the_layers() -> None:
    done = graph(ROOT / "mcp_tracing")
    assert done.returncode == 0 and done.stdout.endswith(", 0 cycles, 0 upward\n"), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "added", "cycle", "against"),
    [
        # spans imports bounds: a cycle inside the core, at module level
        ("_core/bounds.py", "from mcp_tracing._core import spans\n", True, False),
        # a lazy import is a dependency too (and client is a layer above the core)
        ("_core/bounds.py", "def late() -> None:\n    from mcp_tracing.client import trace_session\n", True, True),
        # the core reaching up to a tool, without a cycle (cli.text imports nothing of the package)
        ("_core/paths.py", "from mcp_tracing.cli.text import terminal_safe\n", False, True),
        # never runs
        (
            "_core/bounds.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mcp_tracing import client\n",
            False,
            False,
        ),
    ],
    ids=["cycle", "lazy, upward and cycle", "upward", "type checking only"],
)
def test_a_cycle_or_an_upward_import_added_on_purpose_fails_the_check(
    tmp_path: Path, module: str, added: str, cycle: bool, against: bool
) -> None:
    package = tmp_path / "mcp_tracing"
    shutil.copytree(ROOT / "mcp_tracing", package, ignore=shutil.ignore_patterns("__pycache__"))
    target = package / module
    target.write_text(target.read_text() + "\n" + added)
    done = graph(package)
    assert done.returncode == (1 if cycle or against else 0), done.stdout + done.stderr
    assert ("import cycle among: " in done.stderr) == cycle, done.stderr
    assert ("import against the layers: " in done.stderr) == against, done.stderr
    name = "mcp_tracing." + module.removesuffix(".py").replace("/", ".")
    if cycle:
        assert name in done.stderr.split("import cycle among: ")[1], done.stderr
    if against:
        assert f"import against the layers: {name} (core) imports" in done.stderr, done.stderr


def test_the_core_reaches_the_sdk_only_through_the_registered_adapter() -> None:
    """No module of the core or the API imports an adapter (``_sdk``); the package registers it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from import_graph import imports, layer_of  # pyright: ignore[reportMissingImports]
    finally:
        sys.path.pop(0)
    edges = imports(ROOT / "mcp_tracing")  # pyright: ignore[reportUnknownVariableType]
    below = [module for module in edges if layer_of(module) <= 1]  # pyright: ignore[reportUnknownVariableType]
    assert {"mcp_tracing.client", "mcp_tracing._core.registry", "mcp_tracing.store"} <= set(below)
    for module in below:  # pyright: ignore[reportUnknownVariableType]
        assert not any(target.startswith("mcp_tracing._sdk") for target in edges[module]), module  # pyright: ignore[reportUnknownVariableType,reportUnknownMemberType]
    from mcp_tracing._core import registry
    from mcp_tracing._sdk import adapter

    assert registry.adapter().install_client is adapter.install_client
    assert registry.adapter().install_server is adapter.install_server


def _public_modules() -> list[str]:
    """Every module of the package with no ``_``-prefixed part in its name: the package's public surface."""
    found: list[str] = []
    for path in sorted((ROOT / "mcp_tracing").rglob("*.py")):
        parts = path.relative_to(ROOT / "mcp_tracing").with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not any(part.startswith("_") for part in parts):
            found.append(".".join(parts))
    return found


PUBLIC_MODULES = _public_modules()


def test_the_public_surface_is_the_documented_one() -> None:
    """The public modules: a new one is a decision (README.md's "Architecture" lists them), not an accident."""
    assert PUBLIC_MODULES == [
        "agent",
        "asgi",
        "cli",
        "cli.commands",
        "cli.demo",
        "cli.logs",
        "cli.terminal",
        "cli.text",
        "cli.tree",
        "client",
        "collect",
        "collect.app",
        "collect.decode",
        "config",
        "http",
        "instrumentor",
        "metrics",
        "privacy",
        "propagation",
        "proxy",
        "proxy.framing",
        "proxy.observer",
        "proxy.process",
        "sampling",
        "server",
        "stdio",
        "store",
        "store.critical",
        "store.exporter",
        "store.patterns",
        "store.reader",
        "store.records",
        "testing",
        "ui",
        "ui.app",
        "ui.page",
        "ui.view",
    ]


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_module_exports_exactly_what_it_defines_without_a_prefix(module: str) -> None:
    """What a public module defines is either in its ``__all__`` or named with a leading ``_``; everything in
    ``__all__`` exists (anyio's rule)."""
    import ast
    import importlib

    loaded = importlib.import_module(f"mcp_tracing.{module}")
    exported: list[str] = list(loaded.__all__)
    assert all(hasattr(loaded, name) for name in exported), [n for n in exported if not hasattr(loaded, n)]
    tree = ast.parse(Path(str(loaded.__file__)).read_text())
    defined: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.append(node.name)
        elif isinstance(node, ast.Assign):
            defined += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.append(node.target.id)
    loose = [name for name in defined if not name.startswith("_") and name not in exported]
    assert not loose, f"mcp_tracing.{module} defines {loose} outside __all__: export them or prefix them with _"


@pytest.mark.parametrize("line", ["v1", "v2"])
def test_each_sdk_line_adapter_imports_its_sdk_statically(line: str) -> None:
    """``_sdk/v1.py`` and ``_sdk/v2.py`` name the SDK's modules in ``import`` statements, never through
    ``importlib`` (an import by name is ``Any`` to the type checker, which then checks nothing); pyright checks
    each against its own line (``pyproject.toml``, ``pyright/mcp1.json``)."""
    import ast

    tree = ast.parse((ROOT / "mcp_tracing" / "_sdk" / f"{line}.py").read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mcp"
    }
    assert imported, f"_sdk/{line}.py imports nothing of the SDK"
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "importlib" not in names | modules and "__import__" not in names
    import json
    import re

    # The configuration that checks the other line leaves this file out, and only this one of the two.
    pyright_table = (ROOT / "pyproject.toml").read_text().split("[tool.pyright]", 1)[1]
    pyproject = re.search(r"^exclude = (\[.*\])$", pyright_table, re.M)
    assert pyproject is not None
    excluded = {
        "v1": json.loads(pyproject.group(1)),  # pyproject.toml: strict against mcp 2.x
        "v2": json.loads((ROOT / "pyright" / "mcp1.json").read_text())["exclude"],  # against mcp 1.30
    }
    other = "v2" if line == "v1" else "v1"
    assert any(path.endswith(f"mcp_tracing/_sdk/{line}.py") for path in excluded[line]), excluded[line]
    assert not any(path.endswith(f"_sdk/{other}.py") for path in excluded[line]), excluded[line]


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in ``tests/helpers/``; a test module (or conftest) is never imported."""
    import ast

    tests = ROOT / "tests"
    modules = {path.stem for path in tests.glob("*.py")}
    found: list[str] = []
    for path in sorted([*tests.glob("*.py"), *(tests / "servers").glob("*.py"), *(tests / "helpers").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            named = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.relative_to(tests)}: {name}" for name in named if name.split(".")[0] in modules]
    assert modules >= {"conftest", "test_inprocess"}
    assert not found, found


def test_every_module_logs_under_its_own_name() -> None:
    """One logger-naming rule: ``logging.getLogger(__name__)`` (all under ``mcp_tracing``, so configuring that
    logger configures all); no module names a logger by hand. ``_core/logs.py`` looks up the application's
    loggers (the root, and the one a record was written to) to bridge them: it names none of its own."""
    import ast

    for path in sorted((ROOT / "mcp_tracing").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger":
                if path.relative_to(ROOT) == Path("mcp_tracing/_core/logs.py"):
                    continue
                (argument,) = node.args
                assert isinstance(argument, ast.Name), f"{path.relative_to(ROOT)}:{node.lineno}"
                assert argument.id == "__name__" or path.name == "exporters.py", f"{path.relative_to(ROOT)}"


def test_the_server_side_moved_to_asgi_and_is_still_importable_from_http() -> None:
    from mcp_tracing import asgi, http

    for name in asgi.__all__:
        assert getattr(http, name) is getattr(asgi, name), name
    assert not set(asgi.__all__) & set(http.__all__)  # one public home each


def test_no_dependency_changes_the_sdks_own_behaviour() -> None:
    """The MCP SDK logs through rich's handler whenever rich is importable (a 2 MB logged value then costs seconds
    per call, and every traced server's stderr changes): mcp_tracing never brings it in."""
    import importlib.metadata
    import re

    required = importlib.metadata.requires("mcp-tracing") or []
    runtime = [r for r in required if "extra ==" not in r]
    assert runtime and not any(re.match(r"rich\b", r) for r in runtime), runtime

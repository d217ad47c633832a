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


def test_the_package_has_no_import_cycle() -> None:
    done = graph(ROOT / "mcp_tracing")
    assert done.returncode == 0 and done.stdout.endswith(", 0 cycles\n"), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("added", "cycle"),
    [
        ("from . import client\n", True),  # client imports _attributes: a cycle at module level
        ("def late() -> None:\n    from .client import trace_session\n", True),  # a lazy import is one too
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import client\n", False),  # never runs
    ],
    ids=["module level", "lazy", "type checking only"],
)
def test_a_cycle_added_on_purpose_fails_the_check(tmp_path: Path, added: str, cycle: bool) -> None:
    package = tmp_path / "mcp_tracing"
    shutil.copytree(ROOT / "mcp_tracing", package, ignore=shutil.ignore_patterns("__pycache__"))
    attributes = package / "_attributes.py"
    attributes.write_text(attributes.read_text() + "\n" + added)
    done = graph(package)
    if cycle:
        assert done.returncode == 1, done.stdout
        assert "import cycle among: " in done.stderr and "mcp_tracing._attributes" in done.stderr
        assert "mcp_tracing.client" in done.stderr
    else:
        assert done.returncode == 0, done.stderr


def test_the_core_reaches_the_sdk_only_through_the_registered_adapter() -> None:
    """No core module imports the adapter (``_compat``); the package registers it."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from import_graph import imports  # pyright: ignore[reportMissingImports]
    finally:
        sys.path.pop(0)
    edges = imports(ROOT / "mcp_tracing")  # pyright: ignore[reportUnknownVariableType]
    core = ["client", "server", "http", "stdio", "_client_tracer", "_server_tracer", "_registry", "_policy"]
    for module in core:
        assert "mcp_tracing._compat" not in edges[f"mcp_tracing.{module}"], module
    from mcp_tracing import _compat, _registry

    assert _registry.adapter().install_client is _compat.install_client
    assert _registry.adapter().install_server is _compat.install_server


PUBLIC_MODULES = [
    "agent",
    "analyze",
    "cli",
    "client",
    "config",
    "demo",
    "http",
    "instrumentor",
    "metrics",
    "privacy",
    "propagation",
    "proxy",
    "sampling",
    "server",
    "stdio",
    "store",
    "testing",
    "view",
    "waterfall",
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
    tree = ast.parse((ROOT / "mcp_tracing" / f"{module}.py").read_text())
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

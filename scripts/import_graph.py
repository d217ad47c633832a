"""The import graph of the ``mcp_tracing`` package: fails (exit 1) on any cycle, lazy imports included.

    python scripts/import_graph.py [PACKAGE_DIR]      # default: mcp_tracing/ next to this script's folder
    python scripts/import_graph.py --dot              # the graph, for Graphviz

Every ``import`` and ``from ... import`` of a package module counts, at module level or inside a function
(a lazy import is a dependency all the same, only deferred); imports under ``if TYPE_CHECKING:`` do not
(they never run). ``from . import name`` counts as an import of the submodule ``name`` when there is one.
The package's ``__init__`` is left out as a target: importing any submodule runs it first, so an edge to it
says nothing, and it is where the SDK adapter is registered with the core (see ``_core/registry.py``).

It also fails on an import that points up the layers (``LAYERS``, lowest first): a module may import its own
layer and the layers below, never one above. README.md's "Architecture" explains the layers.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # The core: spans, attributes, tracers, lifecycle, and the public modules that are its vocabulary (what
    # to propagate, hide, sample and count) and its exporter (the local store). Nothing here knows an SDK.
    ("core", ("_core", "_version", "propagation", "privacy", "sampling", "metrics", "store")),
    # The public integration API, built on the core: sessions, servers, transports, the agent taxonomy.
    ("api", ("client", "server", "stdio", "http", "asgi", "agent", "testing")),
    # The SDK adapters: the only code that knows an SDK's internals; registered with the core's registry.
    ("adapters", ("_sdk",)),
    # What turns it all on: the package itself (it registers the adapter), configure(), the instrumentor.
    ("entry", ("", "config", "instrumentor")),
    # The tools: the CLI (tree, search, patterns, demo), the browser view, the proxy for unmodified servers, the OTLP
    # receiver.
    ("tools", ("cli", "proxy", "collect", "ui", "_serve")),
)


def layer_of(module: str, package: str = "mcp_tracing") -> int:
    """The index in ``LAYERS`` of a package module (the longest matching prefix wins)."""
    relative = module.removeprefix(package).removeprefix(".")
    best, best_length = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = relative == prefix or relative.startswith(prefix + ".") or prefix == ""
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    return best


def upward(graph: dict[str, set[str]], package: str = "mcp_tracing") -> list[tuple[str, str]]:
    """The imports that point from a layer to one above it."""
    return sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer_of(target, package) > layer_of(module, package)
    )


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """The ids of every node under an ``if TYPE_CHECKING:`` block."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    hidden.update(id(n) for n in ast.walk(child))
    return hidden


def _module_name(package: Path, path: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (see the module docstring for what counts)."""
    files = {_module_name(package, path): path for path in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        hidden = _type_checking_nodes(tree)
        base = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            for target in _targets(node, base, package.name):
                if target in files and target != package.name and target != name:
                    graph[name].add(target)
    return graph


def _targets(node: ast.AST, base: str, package: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == package or alias.name.startswith(package + "."):
                yield alias.name
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            anchor = base.rsplit(".", node.level - 1)[0] if node.level > 1 else base
            module = f"{anchor}.{node.module}" if node.module else anchor
        elif node.module and (node.module == package or node.module.startswith(package + ".")):
            module = node.module
        else:
            return
        yield module
        for alias in node.names:  # from . import client: the submodule, when there is one
            yield f"{module}.{alias.name}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:  # iterative, so a long chain cannot exhaust the recursion limit
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main(argv: list[str]) -> int:
    dot = "--dot" in argv
    paths = [arg for arg in argv if not arg.startswith("--")]
    package = Path(paths[0]).resolve() if paths else ROOT / "mcp_tracing"
    graph = imports(package)
    if dot:
        print("digraph imports {")
        for module, targets in sorted(graph.items()):
            for target in sorted(targets):
                print(f'  "{module}" -> "{target}";')
        print("}")
        return 0
    found = cycles(graph)
    for component in found:
        print(f"import cycle among: {', '.join(component)}", file=sys.stderr)
    against = upward(graph, package.name)
    for module, target in against:
        print(
            f"import against the layers: {module} ({LAYERS[layer_of(module, package.name)][0]}) imports "
            f"{target} ({LAYERS[layer_of(target, package.name)][0]})",
            file=sys.stderr,
        )
    edges = sum(len(targets) for targets in graph.values())
    print(f"{package.name}: {len(graph)} modules, {edges} imports, {len(found)} cycles, {len(against)} upward")
    return 1 if found or against else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The house plan holds: no import circle anywhere in the Python code, and no layer imports a
layer above it (verifier/__init__.py and docs/ARCHITECTURE.md give the order).

Every import counts, at module level or inside a function; only imports under
`if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("verifier", "onnx_models", "solvers", "challengers")

#: lowest first; a module belongs to the longest prefix that names it
LAYERS = (
    "verifier.core",
    "verifier.commit",
    "verifier.engine",
    "onnx_models",
    "verifier.court",
    "verifier.market",
    "verifier.daemon",
    "solvers",
    "challengers",
    "verifier.app",
    "cli",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, tuple[str, bool]]:
    """Module name -> (source, is a package) for every module of the project."""
    found = {"cli": ((ROOT / "cli.py").read_text(), False)}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            found[module_name(path)] = (path.read_text(), path.name == "__init__.py")
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[int, str | None, list[str]]]:
    """(level, module, names) of every import that can run."""
    out: list[tuple[int, str | None, list[str]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((0, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module, [alias.name for alias in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph(modules: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the project's modules it imports."""
    graph: dict[str, set[str]] = {}
    for name, (source, is_package) in modules.items():
        edges: set[str] = set()
        for level, module, names in _imports(ast.parse(source)):
            if level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (level - 1)]
                module = ".".join(base + ([module] if module else []))
            assert module is not None
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def layer_of(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    if best is None:
        return -1  # the top package's own docstring module: nothing of ours below it
    return LAYERS.index(best)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} ({LAYERS[layer_of(a)]}) imports {b} ({LAYERS[layer_of(b)]})"
        for a, targets in graph.items()
        for b in targets
        if layer_of(b) > layer_of(a)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def test_project__has_no_import_circle() -> None:
    assert circles(import_graph(sources())) == []


def test_project__no_layer_imports_a_higher_one() -> None:
    assert upward_imports(import_graph(sources())) == []


def test_every_module__belongs_to_a_layer() -> None:
    unplaced = [m for m in sources() if layer_of(m) < 0 and m != "verifier"]
    assert unplaced == []


def test_checker__finds_a_circle_through_a_lazy_import() -> None:
    modules = {
        "verifier.engine.a": ("from verifier.engine import b\n", False),
        "verifier.engine.b": ("def f():\n    from . import c\n", False),
        "verifier.engine.c": ("from .a import x\n", False),
    }
    assert circles(import_graph(modules)) == [["verifier.engine.a", "verifier.engine.b", "verifier.engine.c"]]


def test_checker__finds_an_upward_import_and_ignores_type_checking() -> None:
    modules = {
        "verifier.engine.program": ("def f():\n    import verifier.court.chain\n", False),
        "verifier.engine.trace": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from verifier.court import chain\n",
            False,
        ),
        "verifier.court.chain": ("", False),
    }
    assert upward_imports(import_graph(modules)) == [
        "verifier.engine.program (verifier.engine) imports verifier.court.chain (verifier.court)"
    ]


def test_architecture_page__names_only_paths_that_exist() -> None:
    """docs/ARCHITECTURE.md is the newcomer's map: every path it names must exist (a table
    row's bare file names are looked up under that row's folders)."""
    import glob
    import re

    missing = []
    for line in (ROOT / "docs" / "ARCHITECTURE.md").read_text().splitlines():
        tokens = re.findall(r"`([^`\s]+)`", line)
        folders = [t for t in tokens if t.endswith("/")]
        for token in tokens:
            pattern = re.sub(r"<[^>]+>", "*", token)
            if "/" in token and not token.startswith("python"):
                bases = [".", *(f for f in folders if f != token)]
                if not any(glob.glob(str(ROOT / b / pattern)) for b in bases):
                    missing.append(token)
            elif re.fullmatch(r"[\w*<>]+\.(py|vy)", token) and folders:
                if not any(glob.glob(str(ROOT / f / pattern)) for f in [*folders, "."]):
                    missing.append(f"{token} under {folders}")
    assert missing == []

"""The package's import graph: no cycle between modules, no import from a lower layer into a higher one.

Every ``import unmasked...`` / ``from unmasked... import`` in the package is read with ``ast``,
at module level and inside functions alike (a function-local import is still an arrow, it only
fails later). The layers, lowest first, in the terms of DESIGN.md's house plan:

    conventions, version, metrics (the per-image scores) < layers < models (registry, baselines) < checkpoint
    < losses, masks, faces, data < hub < pipelines < api < evaluation, training
    < server, cli < the package itself (unmasked/__init__.py)

A module may import from its own layer or a lower one. Inside a layer, two packages must not
import each other (that is a cycle between packages, e.g. masks <-> faces); training and
evaluation import neither each other. :data:`KNOWN` once listed the arrows that broke these rules;
it is empty, and a new such arrow fails.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import defaultdict
from pathlib import Path

import unmasked

PACKAGE = Path(unmasked.__file__).parent

LAYERS = [
    {"conventions", "version", "metrics"},
    {"layers"},
    {"models", "baselines"},
    {"checkpoint"},
    {"losses", "masks", "faces", "data"},
    {"hub"},
    {"pipelines"},
    {"api"},
    {"evaluation", "training"},
    {"server", "cli"},
    {"unmasked"},
]

#: (importing module, imported module) arrows that break a rule; none are left, and a new one fails
KNOWN: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (``from a.b import c`` counts as ``a.b.c`` if that is a module)."""
    modules = package_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("unmasked"):
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("unmasked")]
            else:
                continue
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != name:
                    graph[name].add(resolved)
    return graph


#: modules that belong to a package's group: the registry is the models' (models register in it, it
#: knows their base class)
GROUPS = {"registry": "models"}


def package_of(module: str) -> str:
    parts = module.split(".")
    return GROUPS.get(parts[1], parts[1]) if len(parts) > 1 else "unmasked"


def layer_of(module: str) -> int:
    package = package_of(module)
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"{module}: package {package!r} is in no layer of LAYERS; add it")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
            visit(v)
    return found


def rule_breaking_arrows(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Arrows into a higher layer, and arrows between two packages of one layer that import each other."""
    between = defaultdict(set)
    for a, targets in graph.items():
        for b in targets:
            if package_of(a) != package_of(b):
                between[package_of(a)].add(package_of(b))
    bad = set()
    for a, targets in graph.items():
        for b in targets:
            pa, pb = package_of(a), package_of(b)
            if layer_of(b) > layer_of(a):
                bad.add((a, b))
            elif pa != pb and layer_of(a) == layer_of(b) and pa in between[pb]:
                bad.add((a, b))
    return bad


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    # classical imports PatchMatch (numba) only when it is used
    assert "unmasked.baselines.patchmatch" in graph["unmasked.baselines.classical"]
    assert "unmasked.pipelines.fill" in graph["unmasked.pipelines.inpaint"]


def test_the_checks_catch_a_cycle_and_an_upward_arrow():
    graph = {"unmasked.pipelines.a": {"unmasked.pipelines.b"}, "unmasked.pipelines.b": {"unmasked.pipelines.a"},
             "unmasked.faces.x": {"unmasked.server.app"}, "unmasked.masks.m": {"unmasked.faces.x"},
             "unmasked.faces.y": {"unmasked.masks.m"}}
    assert cycles(graph) == [["unmasked.pipelines.a", "unmasked.pipelines.b"]]
    assert rule_breaking_arrows(graph) == {("unmasked.faces.x", "unmasked.server.app"),
                                           ("unmasked.masks.m", "unmasked.faces.x"),
                                           ("unmasked.faces.y", "unmasked.masks.m")}


def test_no_import_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_no_new_import_against_the_layers_and_the_known_ones_are_still_there():
    bad = rule_breaking_arrows(import_graph())
    assert not bad - KNOWN, f"imports against the layer order (see this file's docstring): {sorted(bad - KNOWN)}"
    assert not KNOWN - bad, f"fixed, so take them off KNOWN: {sorted(KNOWN - bad)}"


def test_every_package_has_a_layer():
    for module in package_modules():
        layer_of(module)


def function_local_imports() -> list[tuple[str, int, str]]:
    """(file, line, the comment on that line or the line above) of each import of the package's
    own modules inside a function."""
    found = []
    for name, path in package_modules().items():
        source = path.read_text()
        comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                    if tok.type == tokenize.COMMENT}
        for fn in ast.walk(ast.parse(source)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                own = (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("unmasked")) or (
                    isinstance(node, ast.Import) and any(a.name.startswith("unmasked") for a in node.names))
                if own:
                    found.append((name, node.lineno, comments.get(node.lineno) or comments.get(node.lineno - 1, "")))
    return found


def test_few_function_local_imports_and_each_says_why():
    local = function_local_imports()
    assert len(local) < 20, local
    unexplained = [(m, line) for m, line, why in local if len(why.strip("# ")) < 10]
    assert not unexplained, f"a function-local import needs a one-line reason in a comment: {unexplained}"


def test_tests_mirror_the_package():
    """Each folder of tests/ is named after a subpackage of unmasked/ (tests of top-level modules
    such as hub.py or api.py sit in tests/ itself)."""
    tests = Path(__file__).resolve().parent
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= packages, f"test folders with no package of that name: {sorted(folders - packages)}"
    assert len(folders) >= 10


def test_training_and_evaluation_import_neither_each_other():
    arrows = {(package_of(a), package_of(b)) for a, targets in import_graph().items() for b in targets}
    assert ("training", "evaluation") not in arrows and ("evaluation", "training") not in arrows

"""The layout of flows/: subpackages in layers, no import cycles, no import from a lower layer up to a higher one.

Imports are read with ``ast`` (nothing is imported), including the ones inside functions and ``TYPE_CHECKING``
blocks: a lazy import up the layers is still a dependency up the layers.
"""
import ast
from pathlib import Path

import pytest

FLOWS = Path(__file__).resolve().parents[1] / "flows"
# core lowest, then runtime, then the two journeys (which do not import each other), then the report, then the
# front ends at the top level of flows/.
LAYERS = {"core": 0, "runtime": 1, "build": 2, "evaluate": 2, "report": 3}
FRONT = 4
MAX_TOP_LEVEL = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(FLOWS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(FLOWS.rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The flows modules that ``path`` (module ``name``) imports, each resolved to its module (a name imported
    from a package is that package's submodule when there is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(path, name, set(found)) for name, path in found.items()}


def layer(module: str) -> tuple[int, str]:
    """(layer, subpackage) of a module; the front ends are flows itself and the modules at its top level."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS[parts[1]], parts[1]
    return FRONT, "flows"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself): Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a lower layer up to a higher one, and between the two journeys (build and evaluate)."""
    bad = []
    for src, targets in sorted(graph.items()):
        (src_layer, src_pkg) = layer(src)
        for dst in sorted(targets):
            dst_layer, dst_pkg = layer(dst)
            if dst_layer > src_layer or (dst_layer == src_layer and dst_pkg != src_pkg):
                bad.append(f"{src} -> {dst}")
    return bad


def test_the_subpackages_are_the_layers_and_the_top_level_is_small():
    subpackages = {p.parent.name for p in FLOWS.glob("*/__init__.py")}
    assert subpackages == set(LAYERS)
    top = sorted(p.stem for p in FLOWS.glob("*.py") if p.stem != "__init__")
    assert {"cli", "config", "errors"} <= set(top) and len(top) <= MAX_TOP_LEVEL, top
    assert all(len(list((FLOWS / pkg).glob("*.py"))) >= 4 for pkg in LAYERS)  # rooms, not closets


def test_no_import_cycles_in_flows():
    graph = import_graph()
    assert sum(len(t) for t in graph.values()) > 100  # the walk sees the real imports
    assert "flows.core.specs" in graph["flows.build.flow"] and "flows.runtime.banks" in graph["flows.evaluate.flow"]
    assert cycles(graph) == []


def test_no_import_goes_up_the_layers():
    graph = import_graph()
    assert upward(graph) == []


def test_errors_catches_the_base_and_imports_none_of_the_flows():
    graph = import_graph()
    assert graph["flows.errors"] == {"flows.core.errors"}
    assert graph["flows.core.errors"] == set()


def test_the_specs_live_in_one_core_module():
    tree = ast.parse((FLOWS / "core" / "specs.py").read_text())
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    assert {"BuildSpec", "Selection", "Rounds", "EvalSpec", "BuildError", "EvalError", "ShotCountError"} <= classes
    elsewhere = [f"{name}: {node.name}" for name, path in modules().items() if name != "flows.core.specs"
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ClassDef) and node.name in ("BuildSpec", "Selection", "Rounds", "EvalSpec")]
    assert elsewhere == []


def test_the_checks_catch_a_cycle_and_an_upward_import():
    graph = {"flows.core.a": {"flows.runtime.b"}, "flows.runtime.b": {"flows.core.a"},
             "flows.build.c": {"flows.evaluate.d"}, "flows.evaluate.d": set(), "flows.cli": {"flows.build.c"}}
    assert cycles(graph) == [["flows.core.a", "flows.runtime.b"]]
    assert upward(graph) == ["flows.build.c -> flows.evaluate.d", "flows.core.a -> flows.runtime.b"]


def test_the_public_names_keep_the_paths_users_import_them_from():
    import flows.build
    import flows.evaluate
    from flows.build import BuildSpec, build_bank, sharded
    from flows.build.flow import build_bank as flow_build_bank, sharded as flow_sharded
    from flows.core.specs import BuildSpec as CoreBuildSpec, EvalSpec as CoreEvalSpec
    from flows.evaluate import EvalSpec, evaluate
    from flows.evaluate.flow import evaluate as flow_evaluate

    assert (build_bank, sharded, BuildSpec) == (flow_build_bank, flow_sharded, CoreBuildSpec)
    assert (evaluate, EvalSpec) == (flow_evaluate, CoreEvalSpec)
    assert all(getattr(flows.build, name) is not None for name in flows.build.__all__)
    assert all(getattr(flows.evaluate, name) is not None for name in flows.evaluate.__all__)
    with pytest.raises(AttributeError, match="flows.build.*has no attribute 'bogus'"):
        flows.build.bogus


def test_the_tests_have_one_conftest():
    """Test modules import helpers with ``from conftest import ...``; a second ``conftest.py`` in a test folder
    is imported under the same module name and shadows the root one for every module collected after it."""
    tests = Path(__file__).resolve().parent
    assert sorted(p.relative_to(tests).as_posix() for p in tests.rglob("conftest.py")) == ["conftest.py"]

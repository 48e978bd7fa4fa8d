"""No import circle inside the model package: every module's imports (function-level ones too) form a graph
without cycles, so each layer can be read, imported and tested without the ones above it."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``) for every ``.py`` file under ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imported_names(name: str, path: Path, is_package: bool) -> set[str]:
    """The dotted names ``name`` imports anywhere in its file; ``from a import b`` names ``a.b`` as well as ``a``
    (``b`` may be a submodule), relative imports resolved."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (a name resolves to its longest known module)."""
    known = modules(package)
    graph = {}
    for name, (path, is_package) in known.items():
        targets = set()
        for imported in imported_names(name, path, is_package):
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(sorted(graph[target]))))
            elif target in on_stack:
                low[node] = min(low[node], index[target])
    return found


def test_the_model_package_has_no_import_circle():
    graph = import_graph(ROOT / "model")
    assert len(graph) > 50 and "model.networks.sslmodel" in graph["model.localize"]  # the graph is the real one
    found = circles(graph)
    explained = ["\n".join(f"  {a} -> {', '.join(sorted(graph[a] & set(c)))}" for a in c) for c in found]
    assert not found, "import circles in model/:\n" + "\n\n".join(explained)


@pytest.mark.parametrize("second", [
    "from pkg import first\n",  # a submodule named by `from package import module`
    "from . import first\n",  # the same, relative
    "def late():\n    from pkg.first import VALUE\n    return VALUE\n",  # a function-level import
    "import pkg.sub.third\n",  # through a third module in a subpackage
])
def test_a_circle_is_found_however_it_is_imported(tmp_path, second):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "first.py").write_text("from pkg.second import something\nVALUE = 1\n")
    (package / "second.py").write_text(second)
    (package / "sub" / "third.py").write_text("from ..first import VALUE\n")
    found = circles(import_graph(package))
    assert found and {"pkg.first", "pkg.second"} <= set(found[0])
    (package / "first.py").write_text("VALUE = 1\n")  # the arrow back removed: no circle
    assert circles(import_graph(package)) == []

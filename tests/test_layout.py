"""The package's architecture, checked: layers point down, no import cycle, no sibling import
hidden in a function, modules of a readable size, every public name documented, light imports,
and the notebook builders in ``tools/nbsrc`` equal to the committed notebooks.
"""
from __future__ import annotations

import ast
import importlib
import json
import runpy
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "helpers"

#: Layers, bottom (0) to top. A module may import modules of its own layer or below, never above.
LAYERS = {
    0: ["helpers.run", "helpers.targets", "helpers.tflite_io", "helpers.spaces", "helpers.data",
        "helpers.stats", "helpers.params", "helpers.arithmetic"],
    1: ["helpers.resources"],
    2: ["helpers.engine"],
    3: ["helpers.deploy", "helpers.train", "helpers.prune", "helpers.spvd",
        "helpers.inherit"],
    4: ["helpers.search"],
    5: ["helpers.methods"],
    6: ["helpers.compare", "helpers.plots", "helpers.runner", "helpers.profile", "helpers.protocol", "helpers.protocol_methods"],
}
#: Modules that import keras-tuner / TensorFlow at their top: others may import them lazily.
HEAVY = {"helpers.search.oracles", "helpers.search.tuner", "helpers.search.workers"}
MAX_LINES = 750


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _layer(mod: str) -> int | None:
    for n, prefixes in LAYERS.items():
        if any(mod == p or mod.startswith(p + ".") for p in prefixes):
            return n
    return None


def _resolve(name: str) -> str:
    """The module a dotted import target names (``helpers.deploy.measure_deployed`` -> its module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path: Path):
    """(target module, line, inside a function?) for every import of a helpers module."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, in_func):
        for child in ast.iter_child_nodes(node):
            f = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("helpers"):
                for a in child.names:
                    found.append((_resolve(f"{child.module}.{a.name}"), child.lineno, in_func))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("helpers"):
                        found.append((_resolve(a.name), child.lineno, in_func))
            visit(child, f)

    visit(tree, False)
    return found


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != "helpers" and _layer(m) is None]
    assert not missing, f"modules outside the layer map (add them to LAYERS): {missing}"


def test_layers_point_down():
    bad = []
    for mod, path in MODULES.items():
        lm = _layer(mod)
        for target, line, _ in _imports(path):
            lt = _layer(target)
            if lm is not None and lt is not None and lt > lm:
                bad.append(f"{mod} (layer {lm}) imports {target} (layer {lt}) at line {line}")
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = {m: {t for t, _, f in _imports(p) if not f and t != m and not m.startswith(t + ".")}
             for m, p in MODULES.items()}
    # a package's __init__ re-exporting its submodules is not a cycle of the submodules
    state, stack, cycles = {}, [], []

    def dfs(u):
        state[u] = 1
        stack.append(u)
        for v in graph.get(u, ()):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                dfs(v)
        stack.pop()
        state[u] = 2

    for m in graph:
        if m not in state:
            dfs(m)
    cycles = [c for c in cycles if not all(x.startswith(c[0].rpartition(".")[0]) for x in c)
              or len({x for x in c}) > 1 and not _is_package_reexport(c)]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _is_package_reexport(cycle) -> bool:
    """``pkg -> pkg.sub -> pkg``: a submodule importing a sibling through its package."""
    pkgs = [m for m in cycle if MODULES.get(m, Path()).name == "__init__.py"]
    return bool(pkgs) and all(any(x.startswith(p + ".") or x == p for p in pkgs) for x in cycle)


def test_no_sibling_import_inside_a_function():
    bad = [f"{m}:{line} imports {t} inside a function"
           for m, p in MODULES.items() for t, line, in_func in _imports(p)
           if in_func and t not in HEAVY]
    assert not bad, "\n".join(bad)


def test_each_module_imports_alone_without_tensorflow():
    code = ("import importlib, json, sys\n"
            "out = {}\n"
            f"for m in {sorted(set(MODULES) - HEAVY)!r}:\n"
            "    for k in [k for k in sys.modules if k == 'helpers' or k.startswith('helpers.')]:\n"
            "        del sys.modules[k]\n"
            "    try:\n"
            "        importlib.import_module(m)\n"
            "        out[m] = None\n"
            "    except Exception as e:\n"
            "        out[m] = f'{type(e).__name__}: {e}'\n"
            "heavy = [k for k in ('tensorflow', 'keras', 'keras_tuner', 'unicorn') if k in sys.modules]\n"
            "print(json.dumps({'errors': {k: v for k, v in out.items() if v}, 'heavy': heavy}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert not res["errors"], res["errors"]
    assert not res["heavy"], f"importing the light modules pulled in {res['heavy']}"


def test_modules_are_of_readable_size():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_module_docstrings_say_what_they_may_import():
    bad = []
    for m, p in MODULES.items():
        doc = ast.get_docstring(ast.parse(p.read_text())) or ""
        if not doc:
            bad.append(f"{m}: no module docstring")
        elif m != "helpers" and not any(w in doc for w in ("May import", "may import", "Imports no",
                                                           "imports no", "Imports nothing")):
            bad.append(f"{m}: docstring does not say what it may import")
    assert not bad, "\n".join(bad)


def test_public_names_are_documented_with_where_taught():
    bad = []
    for m, p in MODULES.items():
        tree = ast.parse(p.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                if not doc:
                    bad.append(f"{m}.{node.name}: no docstring")
                elif "Taught in" not in doc and "taught in" not in doc and isinstance(node, ast.FunctionDef):
                    bad.append(f"{m}.{node.name}: docstring does not say where it is taught")
    assert not bad, f"{len(bad)} public names:\n" + "\n".join(bad)


# ------------------------------------------------------------------ builders == notebooks
BUILDERS = sorted((ROOT / "tools" / "nbsrc").glob("nb[0-9][0-9].py"))


def _built_cells(builder: Path):
    captured = {}
    fake = types.ModuleType("build")
    fake.NOTEBOOKS = str(ROOT / "notebooks")

    def build(path, cells):
        captured["path"], captured["cells"] = path, cells

    fake.build = build
    saved = sys.modules.get("build")
    sys.modules["build"] = fake
    try:
        runpy.run_path(str(builder), run_name="__main__")
    finally:
        if saved is None:
            sys.modules.pop("build", None)
        else:
            sys.modules["build"] = saved
    return Path(captured["path"]), [(k, s.strip("\n"), list(t)) for k, s, *t in captured["cells"]]


@pytest.mark.parametrize("builder", BUILDERS, ids=[b.stem for b in BUILDERS])
def test_builder_produces_the_committed_notebook(builder):
    path, cells = _built_cells(builder)
    nb = nbformat.read(path, as_version=4)
    committed = [("md" if c.cell_type == "markdown" else "code", c.source,
                  list(c.get("metadata", {}).get("tags", []))) for c in nb.cells]
    assert len(committed) == len(cells), (
        f"{path.name}: builder has {len(cells)} cells, committed notebook {len(committed)}; "
        f"rebuild with `.venv/bin/python tools/nbsrc/{builder.name}` and republish")
    for i, (a, b) in enumerate(zip(cells, committed)):
        assert a == b, (f"{path.name} cell {i} differs from tools/nbsrc/{builder.name}:\n"
                        f"builder:   {a[1][:300]!r}\ncommitted: {b[1][:300]!r}")

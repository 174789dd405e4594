"""Every notebook in notebooks/ runs with the `smoke` preset, records its figures, and
re-runs deterministically under nbval (cells marked `# NBVAL_CHECK_OUTPUT`).

A notebook added to notebooks/ is picked up here without editing this file.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import runner
from helpers.run import load_figures

NOTEBOOKS = runner.notebooks()
SMOKE = runner.resolve("smoke")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """One run folder shared by all notebooks, executed in order as `make run` does,
    so 07-comparison reads the smoke results of the notebooks before it."""
    return tmp_path_factory.mktemp("smoke-run")


@pytest.mark.notebook
@pytest.mark.parametrize("path,params,expect", SMOKE, ids=[p.stem for p, _, _ in SMOKE])
def test_notebook_smoke(path, params, expect, run_folder, tmp_path):
    executed, seconds = runner.execute(path, run_folder, params)
    figures = load_figures(run_folder)
    assert path.stem in figures, f"{path.stem} did not call helpers.record()"
    assert "wall_seconds" in figures[path.stem] or seconds > 0
    problems = runner.check_expectations(figures[path.stem], expect)
    assert not problems, f"{path.stem} figures out of range: {problems}"
    text = executed.read_text()
    assert "/work/" not in text and str(runner.ROOT) not in text, "absolute paths left in executed notebook"

    # nbval re-executes the parameterised copy and compares the deterministic cells.
    # nbval's run folder starts as a copy of the shared one, so notebooks that read earlier
    # results (07) see the same inputs and must print the same checked outputs.
    shutil.copytree(run_folder, tmp_path / "nbval", ignore=shutil.ignore_patterns("*.ipynb"))
    env = dict(os.environ, TINYNAS_RUN_DIR=str(tmp_path / "nbval"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", str(executed)],
                          cwd=path.parent, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    rerun = json.loads((tmp_path / "nbval" / f"{path.stem}.json").read_text())["figures"]
    assert not runner.check_expectations(rerun, expect)


def test_every_notebook_has_a_smoke_preset_entry():
    spec = runner.load_preset("smoke")
    missing = [p.stem for p in NOTEBOOKS if p.stem not in spec]
    assert not missing, f"add smoke parameters for {missing} to notebooks/presets/smoke.yaml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_papermill_reads_every_parameter(path):
    """papermill's own parser must see the same parameters as the runner (no '=' or quotes in comments)."""
    import nbformat
    from papermill.translators import PythonTranslator

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    seen = {p.name for p in PythonTranslator.inspect(cell)}
    assert seen == set(runner.notebook_parameters(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_conventions(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in cells) == 1
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("application/json" in o.get("data", {}) for o in outputs), "committed without recorded figures"
    assert any("image/png" in o.get("data", {}) for o in outputs), "committed without plots"
    assert str(runner.ROOT) not in path.read_text()
    assert cells[0]["cell_type"] == "markdown" and "Runs in about" in "".join(cells[0]["source"])

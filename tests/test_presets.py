"""Honest ranges: the default preset's `expect` ranges hold for the committed notebooks' figures,
and no range is one that cannot fail (accuracy at chance, a hypervolume in [0, 1]).

Reads the figures each committed notebook recorded (its last `helpers.record` output, an
``application/json`` output ``{"notebook": ..., "figures": {...}}``); no notebook is executed.
A figure listed in the default preset must be recorded by the committed notebook: new figures
whose notebooks were not re-executed yet simply have no expect range in default.yaml.
"""
import json

import pytest

from helpers import runner

NOTEBOOKS = runner.notebooks()
DEFAULT = runner.load_preset("default")
SMOKE = runner.load_preset("smoke")

#: Chance accuracy of each task the presets train on (1 / classes).
CHANCE = {"mnist": 1 / 10, "fashion_mnist": 1 / 10, "kws": 1 / 12}


def committed_figures(path) -> dict:
    """The figures of the last ``helpers.record`` output of a committed notebook ({} if none)."""
    nb = json.loads(path.read_text())
    found = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            data = out.get("data", {}).get("application/json")
            if isinstance(data, dict) and data.get("notebook") == path.stem and "figures" in data:
                found = data["figures"]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_default_expectations_hold_for_the_committed_notebook(path):
    expect = DEFAULT.get(path.stem, {}).get("expect", {})
    if not expect:
        pytest.skip(f"no default expectations for {path.stem}")
    figures = committed_figures(path)
    assert figures, f"{path.name} has no recorded figures in its outputs"
    missing = sorted(k for k in expect if k not in figures)
    assert not missing, (f"{path.stem}: default.yaml expects {missing}, which the committed notebook does not "
                         "record (re-execute and publish it, or drop the range)")
    problems = runner.check_expectations(figures, expect)
    assert not problems, f"{path.stem}: committed figures outside the default ranges: {problems}"


def test_committed_figures_are_read():
    figs = committed_figures(next(p for p in NOTEBOOKS if p.stem.startswith("00-")))
    assert "test_accuracy_int8" in figs


def _task(nb: str, spec: dict) -> str | None:
    params = spec.get("parameters", {})
    if nb.startswith("04-"):
        return params.get("TASK", "kws")
    if nb.startswith("06-"):
        return params.get("DATASET", "kws")
    return params.get("DATASET", "mnist")


@pytest.mark.parametrize("preset", ["smoke", "default", "full"])
def test_accuracy_ranges_start_above_chance(preset):
    spec = runner.load_preset(preset)
    bad = []
    for nb, entry in spec.items():
        chance = CHANCE.get(_task(nb, entry))
        for key, (low, _high) in entry["expect"].items():
            if "accuracy" in key and not isinstance(low, bool) and chance and low <= chance:
                bad.append(f"{nb}: {key} lower bound {low} is at or below chance ({chance:.3f})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("preset", ["smoke", "default", "full"])
def test_no_range_that_cannot_fail(preset):
    spec = runner.load_preset(preset)
    bad = [f"{nb}: {key}: {rng}" for nb, entry in spec.items() for key, rng in entry["expect"].items()
           if "hypervolume" in key and not isinstance(rng[0], bool) and rng[0] <= 0.0 and rng[1] >= 1.0]
    assert not bad, "hypervolume ranges covering all of [0, 1] cannot fail:\n" + "\n".join(bad)

"""helpers.compare: where the models come from, and the search-cost table (07-comparison)."""
import json

import pytest

from helpers import compare
from helpers.run import HandOff, load_handoffs


def _write(run, nb, figures, model=True):
    """A run folder entry: figures, and with a model its hand-off record (from the figures)."""
    run.mkdir(parents=True, exist_ok=True)
    payload = {"notebook": nb, "figures": figures}
    if model:
        (run / f"{nb}.best.tflite").write_bytes(b"TFL3")
        payload["handoff"] = HandOff(
            method=nb, dataset=figures.get("dataset", figures.get("task", "mnist")), target="t",
            trials=int(figures.get("trials", 0)), search_cpu_minutes=float(figures.get("search_cpu_minutes", 0)),
            hypervolume=figures.get("hypervolume")).to_dict()
    (run / f"{nb}.json").write_text(json.dumps(payload))


def test_resolve_run_takes_each_methods_latest_run(tmp_path):
    runs = tmp_path / "runs"
    _write(runs / "20260101-000000-publish-02-aging-evolution", "02-aging-evolution", {"trials": 1})
    _write(runs / "20260102-000000-publish-02-aging-evolution", "02-aging-evolution", {"trials": 2})
    _write(runs / "20260101-000000-publish-03-sparse-pruning", "03-sparse-pruning", {"trials": 3})
    _write(runs / "20260103-000000-default", "03-sparse-pruning", {"trials": 4}, model=False)  # no model: skipped
    got = compare.resolve_run("", tmp_path / "here", runs=runs)
    assert {k: v.name for k, v in got.items()} == {
        "02-aging-evolution": "20260102-000000-publish-02-aging-evolution",
        "03-sparse-pruning": "20260101-000000-publish-03-sparse-pruning"}
    here = tmp_path / "here"
    _write(here, "05-once-for-all", {})
    assert set(compare.resolve_run("", here, runs=runs).values()) == {here}  # this run first
    with pytest.raises(FileNotFoundError, match="RUN_DIR"):
        compare.resolve_run(tmp_path / "nope", here, runs=runs)


def test_search_costs_lists_random_search_from_02(tmp_path):
    run = tmp_path / "run"
    _write(run, "02-aging-evolution", {"trials": 60, "search_cpu_minutes": 3.3, "hypervolume": 0.38,
                                       "trials_random": 60, "search_cpu_minutes_random": 3.6,
                                       "hypervolume_random": 0.29, "best_proxy_error_random": 0.11})
    _write(run, "03-sparse-pruning", {"trials": 14, "search_cpu_minutes": 2.3, "hypervolume": 0.5})
    t = compare.search_costs({"02-aging-evolution": run, "03-sparse-pruning": run, "05-once-for-all": run})
    assert list(t.method) == ["Aging evolution", "Random search (baseline of μNAS at the same budget and bounds)",
                              "Bayesian optimisation + pruning"]                # 05 recorded nothing: no row
    assert t.set_index("notebook").loc["03-sparse-pruning", "trials"] == 14
    r = t[t.method.str.startswith("Random")].iloc[0]
    assert (r.trials, r.search_cpu_minutes, r.hypervolume, r.best_proxy_error) == (60, 3.6, 0.29, 0.11)


def test_compare_runs_separates_timing_figures():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "compare_runs.py"
    spec = importlib.util.spec_from_file_location("compare_runs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a = {"02-x": {"acc": 0.9667, "flash_bytes": 3484, "wall_seconds": 300.0, "search_cpu_minutes": 3.2, "ok": True}}
    b = {"02-x": {"acc": 0.9667, "flash_bytes": 3485, "wall_seconds": 310.0, "search_cpu_minutes": 3.4, "ok": True,
                  "new": 1}}
    r = mod.compare(a, b)["02-x"]
    assert r["equal"] == 2 and sorted(r["timing"]) == ["search_cpu_minutes", "wall_seconds"]
    assert r["differ"] == [("flash_bytes", 3484, 3485)] and r["only_one"] == ["new"]


def test_search_costs_skips_notebooks_without_a_search(tmp_path):
    run = tmp_path / "run"
    _write(run, "06-deployment", {"test_accuracy_int8": 0.7})
    assert compare.search_costs({"06-deployment": run}).empty


def test_other_task_methods_finds_reruns(tmp_path):
    run = tmp_path / "run"
    _write(run, "04-micronets-dnas", {"task": "kws"})            # 04 has a TASK parameter: rerun on MNIST
    _write(run, "06-deployment", {"dataset": "kws"})             # 06 has none: flagged only
    _write(run, "02-aging-evolution", {"dataset": "mnist"})
    src = {nb: run for nb in ("04-micronets-dnas", "06-deployment", "02-aging-evolution")}
    assert compare.other_task_methods(src, "mnist") == {"04-micronets-dnas": run}
    assert compare.other_task_methods(src, "kws") == {}        # 02 is on another task but has no TASK parameter


def test_handoff_is_validated_and_required_for_saved_models(tmp_path, monkeypatch):
    from helpers import run as hrun

    monkeypatch.setenv(hrun.RUN_DIR_ENV, str(tmp_path))
    good = HandOff(method="m", dataset="mnist", target="t", trials=3, search_cpu_minutes=1.5)
    hrun.save_model("02-aging-evolution", b"TFL3" * 4)
    with pytest.raises(ValueError, match="records no handoff"):
        hrun.record("02-aging-evolution", {"x": 1}, display=False)
    with pytest.raises(ValueError, match="labels of the models"):
        hrun.record("02-aging-evolution", {"x": 1}, display=False,
                    handoff=HandOff(**{**good.to_dict(), "models": ("s", "m")}))
    for bad, field in [({"trials": -1}, "trials"), ({"dataset": ""}, "dataset"),
                       ({"search_cpu_minutes": float("nan")}, "search_cpu_minutes"),
                       ({"hypervolume": -0.1}, "hypervolume")]:
        with pytest.raises(ValueError, match=f"HandOff.{field}"):
            hrun.record("02-aging-evolution", {"x": 1}, display=False,
                        handoff=HandOff(**{**good.to_dict(), "models": ("best",), **bad}))
    hrun.record("02-aging-evolution", {"x": 1}, display=False, handoff=good)
    assert load_handoffs(tmp_path) == {"02-aging-evolution": good}


def test_collect_refuses_a_model_without_handoff(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "02-aging-evolution.best.tflite").write_bytes(b"TFL3")
    (run / "02-aging-evolution.json").write_text(json.dumps({"notebook": "02-aging-evolution",
                                                             "figures": {"trials": 3}}))
    with pytest.raises(ValueError, match="no hand-off record"):
        compare.collect({"02-aging-evolution": run}, None, "stm32f746zg", progress=False)

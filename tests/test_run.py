"""helpers.run (record/load_figures) and helpers.runner (presets, validation)."""
import json

import numpy as np
import pytest

from helpers import run, runner


def test_record_writes_json_and_load_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv(run.RUN_DIR_ENV, str(tmp_path))
    path = run.record("03-sparse-pruning", {"test_accuracy_int8": np.float32(0.5), "peak_sram_bytes": np.int64(1234),
                                            "note": "x", "ok": True}, display=False)
    data = json.loads(path.read_text())
    assert data["figures"] == {"test_accuracy_int8": 0.5, "peak_sram_bytes": 1234, "note": "x", "ok": True}
    assert isinstance(data["figures"]["peak_sram_bytes"], int)
    assert run.load_figures(tmp_path) == {"03-sparse-pruning": data["figures"]}


@pytest.mark.parametrize("name,figs,match", [
    ("overview", {"a": 1}, "notebook"),
    ("00-overview", {}, "non-empty"),
    ("00-overview", {"Bad Name": 1}, "snake_case"),
    ("00-overview", {"a": [1, 2]}, "must be a number"),
])
def test_record_rejects_bad_input(tmp_path, monkeypatch, name, figs, match):
    monkeypatch.setenv(run.RUN_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=match):
        run.record(name, figs, display=False)


def _write_nb(path, source):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(EPOCHS)")]
    nbformat.write(nb, path)


def test_presets_validate_before_work(tmp_path):
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1\nSEED = 0")
    (presets / "good.yaml").write_text("00-demo:\n  parameters: {EPOCHS: 2}\n  expect: {acc: [0.5, 1]}\n")
    plan = runner.resolve("good", nb_dir=nbs, presets_dir=presets)
    assert plan[0][1] == {"EPOCHS": 2} and plan[0][2] == {"acc": [0.5, 1]}
    assert runner.resolve("good", overrides={"SEED": 3}, nb_dir=nbs, presets_dir=presets)[0][1] == {"EPOCHS": 2, "SEED": 3}
    (presets / "typo.yaml").write_text("00-demo:\n  parameters: {EPOHCS: 2}\n")
    with pytest.raises(runner.PresetError, match="EPOHCS"):
        runner.resolve("typo", nb_dir=nbs, presets_dir=presets)
    (presets / "badnb.yaml").write_text("99-nothing: {}\n")
    with pytest.raises(runner.PresetError, match="99-nothing"):
        runner.resolve("badnb", nb_dir=nbs, presets_dir=presets)
    (presets / "broken.yaml").write_text("00-demo: [1, 2\n")
    with pytest.raises(runner.PresetError, match="YAML"):
        runner.resolve("broken", nb_dir=nbs, presets_dir=presets)
    with pytest.raises(runner.PresetError, match="unknown preset"):
        runner.resolve("nope", nb_dir=nbs, presets_dir=presets)
    with pytest.raises(runner.PresetError, match="NB="):
        runner.resolve("good", selector="05", nb_dir=nbs, presets_dir=presets)


def test_expectations():
    assert runner.check_expectations({"a": 0.7}, {"a": [0.5, 1.0]}) == []
    assert runner.check_expectations({"a": 0.2}, {"a": [0.5, 1.0]})
    assert runner.check_expectations({}, {"a": [0.5, 1.0]}) == ["a: not recorded"]


def test_project_presets_are_valid():
    for preset in ("smoke", "default", "full"):
        runner.resolve(preset)


def test_save_and_load_models(tmp_path, monkeypatch):
    monkeypatch.setenv(run.RUN_DIR_ENV, str(tmp_path))
    run.save_model("02-aging-evolution", b"TFL3-fake-model")
    run.save_model("04-micronets-dnas", b"TFL3-small-model", label="s")
    models = run.load_models(tmp_path)
    assert models == {"02-aging-evolution": {"best": b"TFL3-fake-model"}, "04-micronets-dnas": {"s": b"TFL3-small-model"}}
    with pytest.raises(ValueError, match="label"):
        run.save_model("02-aging-evolution", b"TFL3-x", label="Best Model")


def test_publish_from_a_default_run(tmp_path):
    import nbformat

    nbs, run_dir = tmp_path / "nb", tmp_path / "run"
    nbs.mkdir(), run_dir.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1")
    executed = nbformat.read(nbs / "00-demo.ipynb", as_version=4)
    executed.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(executed, run_dir / "00-demo.ipynb")
    meta = {"preset": "default", "notebooks": {"00-demo": {}}, "wall_seconds": {"00-demo": 1.0}}
    (run_dir / "run.json").write_text(json.dumps(meta))
    runner.publish("00", from_run=run_dir, nb_dir=nbs)
    assert nbformat.read(nbs / "00-demo.ipynb", as_version=4).cells[1].outputs[0]["text"] == "1\n"
    meta["notebooks"]["00-demo"] = {"EPOCHS": 2}                     # not its defaults
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(runner.PresetError, match="not its defaults"):
        runner.publish("00", from_run=run_dir, nb_dir=nbs)
    meta["notebooks"]["00-demo"] = {}
    (run_dir / "run.json").write_text(json.dumps(meta))
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 3")                     # source edited since the run
    with pytest.raises(runner.PresetError, match="changed since"):
        runner.publish("00", from_run=run_dir, nb_dir=nbs)
    with pytest.raises(FileNotFoundError, match="run.json"):
        runner.publish("00", from_run=tmp_path, nb_dir=nbs)


def test_resume_runs_only_the_unfinished_notebooks(tmp_path):
    nbs, presets, run_dir = tmp_path / "nb", tmp_path / "presets", tmp_path / "run"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1")
    _write_nb(nbs / "01-search.ipynb", "ROUNDS = 1")
    (presets / "big.yaml").write_text("01-search:\n  parameters: {ROUNDS: 50}\n  expect: {acc: [0.9, 1.0]}\n")
    calls = []

    def fake_execute(path, out_dir, params, log=False):
        calls.append((path.stem, dict(params)))
        if path.stem == "01-search" and len(calls) == 2:
            raise RuntimeError("killed mid-search")
        (out_dir / path.name).write_text("{}")
        if path.stem == "01-search":  # what the notebook records
            (out_dir / "01-search.json").write_text(json.dumps({"notebook": "01-search", "figures": {"acc": 0.5}}))
        return out_dir / path.name, 2.0

    with pytest.raises(SystemExit, match="--resume"):
        runner.run("big", out=run_dir, log=False, nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["wall_seconds"] == {"00-demo": 2.0}                    # written as each notebook finishes
    with pytest.raises(FileExistsError, match="--resume"):             # a new run never reuses the folder
        runner.run("big", out=run_dir, log=False, nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    calls.clear()
    runner.run(resume=run_dir, log=False, nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert calls == [("01-search", {"ROUNDS": 50})]                    # recorded parameters, finished one kept
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["expectations_missed"] == {"01-search": ["acc = 0.5, expected within [0.9, 1.0]"]}
    assert set(meta["wall_seconds"]) == {"00-demo", "01-search"} and len(meta["resumed"]) == 1
    with pytest.raises(runner.PresetError, match="--resume"):
        runner.run(selector="00", resume=run_dir, nb_dir=nbs, execute_fn=fake_execute)
    with pytest.raises(FileNotFoundError, match="run.json"):
        runner.run(resume=tmp_path / "nb", nb_dir=nbs, execute_fn=fake_execute)

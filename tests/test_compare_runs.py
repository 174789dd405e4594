"""scripts/compare_runs.py: same / different figures, and a comparison of nothing is an error."""
import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "compare_runs", Path(__file__).resolve().parent.parent / "scripts" / "compare_runs.py")
compare_runs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(compare_runs)


def _run(folder: Path, figures: dict) -> Path:
    folder.mkdir(parents=True)
    for nb, figs in figures.items():
        (folder / f"{nb}.json").write_text(json.dumps({"notebook": nb, "figures": figs}))
    return folder


def test_same_and_different_figures(tmp_path, capsys):
    a = _run(tmp_path / "a", {"00-demo": {"acc": 0.5, "wall_seconds": 3.0}})
    b = _run(tmp_path / "b", {"00-demo": {"acc": 0.5, "wall_seconds": 9.0}})
    c = _run(tmp_path / "c", {"00-demo": {"acc": 0.25}})
    assert compare_runs.main([str(a), str(b)]) == 0 and "same figures" in capsys.readouterr().out
    assert compare_runs.main([str(a), str(c)]) == 1 and "DIFFERS acc" in capsys.readouterr().out


@pytest.mark.parametrize("b_figs", [{}, {"01-other": {"acc": 0.5}}, {"00-demo": {"wall_seconds": 1.0}}])
def test_nothing_compared_is_an_error(tmp_path, capsys, b_figs):
    a = _run(tmp_path / "a", {"00-demo": {"acc": 0.5, "wall_seconds": 3.0}})
    b = _run(tmp_path / "b", b_figs)
    assert compare_runs.main([str(a), str(b)]) == 2
    out = capsys.readouterr()
    assert "same figures" not in out.out and "compared no figures" in out.err


def test_published_with_no_publish_runs_is_an_error(tmp_path, capsys):
    a = _run(tmp_path / "a", {"00-demo": {"acc": 0.5}})
    runs = tmp_path / "runs"
    runs.mkdir()
    assert compare_runs.main([str(a), "--published"], runs_dir=runs) == 2
    out = capsys.readouterr()
    assert "same figures" not in out.out and "publish" in out.err
    _run(runs / "20240101-000000-publish-00-demo", {"00-demo": {"acc": 0.5}})
    assert compare_runs.main([str(a), "--published"], runs_dir=runs) == 0


def test_verdicts_compare_claims_not_figures(tmp_path, capsys):
    claim = {"gain": 0.3, "gain_ci_low": 0.1, "gain_ci_high": 0.5, "gain_verdict": "held"}
    a = _run(tmp_path / "a", {"01-demo": claim})
    moved = _run(tmp_path / "b", {"01-demo": {**claim, "gain": 0.35, "gain_ci_low": 0.12}})
    flipped = _run(tmp_path / "c", {"01-demo": {**claim, "gain_ci_low": -0.1,
                                                 "gain_verdict": "undecided at this budget"}})
    out_json = tmp_path / "v.json"
    # the figures moved, the verdict did not: same
    assert compare_runs.main([str(a), str(moved), "--verdicts", "--json", str(out_json)]) == 0
    assert "1 of 1 verdicts the same" in capsys.readouterr().out
    assert json.loads(out_json.read_text())["verdicts_differ"] == 0
    assert compare_runs.main([str(a), str(flipped), "--verdicts"]) == 1
    assert "DIFFERS gain: held [+0.1, +0.5] vs undecided" in capsys.readouterr().out
    none = _run(tmp_path / "d", {"01-demo": {"gain": 0.3}})
    assert compare_runs.main([str(a), str(none), "--verdicts"]) == 2
    assert "compared no verdicts" in capsys.readouterr().err


def test_verdicts_show_both_machines(tmp_path, capsys):
    from helpers import runner

    claim = {"gain": 0.3, "gain_ci_low": 0.1, "gain_ci_high": 0.5, "gain_verdict": "held"}
    a = _run(tmp_path / "a", {"01-demo": claim})
    b = _run(tmp_path / "b", {"01-demo": claim})
    facts = runner.machine_facts()
    assert facts["logical_cores"] >= 1 and isinstance(facts["simd"], list) and isinstance(facts["env"], dict)
    (a / "run.json").write_text(json.dumps({"machine": facts}))
    out_json = tmp_path / "v.json"
    assert compare_runs.main([str(a), str(b), "--verdicts", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert f"machine a ({a}): {facts}" in out and f"machine b ({b}): not recorded" in out
    assert json.loads(out_json.read_text())["machines"] == {"a": facts, "b": None}

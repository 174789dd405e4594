"""helpers.params and every notebook's parameter check: the rule types, each committed
notebook's defaults and presets pass its rules, every parameter has a rule, a table of bad
values fails at once naming the parameter (the check cell run directly, no notebook
executed), the feasibility minimums are lower bounds, and one real papermill run with a bad
value fails within seconds naming it.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import params as P
from helpers import runner

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
NB = {p.name[:2]: p for p in NOTEBOOKS}


# ------------------------------------------------------------------ rule types
@pytest.mark.parametrize("rule, good, bad", [
    (P.Int(min=1), [1, 5, 10**12], [0, -1, True, False, 2.0, "3", None, [1]]),
    (P.Int(min=0, max=3), [0, 3], [-1, 4]),
    (P.Seed(), [0, 2**32 - 1], [-1, 2**32, 1.0, True]),
    (P.Float(min=0, max=1, min_open=True), [1, 0.5, 1e-9], [0, 0.0, 1.01, math.nan, math.inf, True, "0.5", None]),
    (P.Float(min=0, max=1, max_open=True), [0, 0.99], [1, 1.0, -0.1]),
    (P.Float(), [-1e300, 0, 7], [math.nan, -math.inf, False]),
    (P.Bool(), [True, False], [0, 1, "True", None]),
    (P.Str(), ["", "x"], [None, 1, b"x"]),
    (P.Str(empty=False), ["x"], [""]),
    (P.Choice([4, 8]), [4, 8], [6, "4", 4.0, True]),
    (P.Choice([True, "a"]), [True, "a"], [1, "A"]),
    (P.Dataset(), ["mnist", "MNIST", "kws"], ["imagenet", "", None, 3]),
    (P.Target(), ["stm32f746", "STM32F746"], ["esp32", "", None, 746]),
    (P.ListOf(P.Int(min=1), min_len=1), [[1], (2, 3), [1, 1]], [[], [0], 1, "12", [1, True], None]),
    (P.ListOf(P.Int(), min_len=2, max_len=2, unique=True), [[1, 2]], [[1], [1, 2, 3], [1, 1]]),
    (P.DictOf(P.Float(min=0)), [{}, {"S": 1.0}], [{"S": -1}, {1: 1.0}, {"": 1.0}, [("S", 1)], None]),
    (P.DictOf(P.Int(), keys=["a", "b"]), [{"a": 1, "b": 2}], [{"a": 1}, {"a": 1, "b": 2, "c": 3}]),
    (P.Satisfies(lambda v: int(v) > 0, "a positive int-like"), [1, "2"], [0, "x", None]),
])
def test_rule_types(rule, good, bad):
    for v in good:
        assert rule.problem(v) is None, (rule, v)
    for v in bad:
        p = rule.problem(v)
        assert p and p.startswith(("must be", "item", "[")), (rule, v, p)


def test_parameter_error_is_one_line_naming_parameter_value_and_rule():
    with pytest.raises(P.ParameterError) as e:
        P.check({"EPOCHS": 0}, {"EPOCHS": P.Int(min=1)})
    assert str(e.value) == "EPOCHS = 0: must be an int >= 1"
    assert isinstance(e.value, ValueError) and e.value.name == "EPOCHS" and e.value.value == 0
    with pytest.raises(P.ParameterError, match=r"^WIDTHS = \[0\.5, -1\]: item 1 \(-1\) must be a number in \(0, 4\]"):
        P.check({"WIDTHS": [0.5, -1]}, {"WIDTHS": P.ListOf(P.Float(min=0, max=4, min_open=True))})
    with pytest.raises(P.ParameterError, match=r"^LR = nan: must be a number > 0$"):
        P.check({"LR": math.nan}, {"LR": P.Float(min=0, min_open=True)})
    with pytest.raises(P.ParameterError) as e:
        P.check({"X": "y" * 500}, {"X": P.Int()})
    assert "\n" not in str(e.value) and len(str(e.value)) < 250


def test_check_compares_parameter_and_rule_names():
    with pytest.raises(P.ParameterError, match=r"^NEW = 3: no rule for this parameter"):
        P.check({"A": 1, "NEW": 3}, {"A": P.Int()})
    with pytest.raises(P.ParameterError, match=r"^GONE: not defined"):
        P.check({"A": 1}, {"A": P.Int(), "GONE": P.Int()})
    ns = {"__builtins__": __builtins__, "__name__": "__main__", "A": 1, "INPUT": (28, 28, 1)}
    P.check(ns, {"A": P.Int()})            # a namespace: other names are not parameters
    with pytest.raises(P.ParameterError, match="^B: not defined"):
        P.check(ns, {"A": P.Int(), "B": P.Int()})
    with pytest.raises(TypeError):
        P.check({"A": 1}, {"A": int})
    P.require(True, "A", 1, "never")
    with pytest.raises(P.ParameterError, match="^A = 1: must be even$"):
        P.require(False, "A", 1, "must be even")


# ------------------------------------------------------------------ the notebooks' checks
def _cells(path):
    import nbformat
    nb = nbformat.read(path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    check = next(c for c in nb.cells[i + 1:] if c.cell_type == "code")
    return nb.cells[i].source, check.source


def _validate(nb: str, **overrides):
    """Run notebook ``nb``'s parameters cell, then ``overrides``, then its check cell."""
    params_src, check_src = _cells(NB[nb])
    ns = {"__name__": "__main__"}
    exec(params_src, ns)
    ns.update(overrides)
    exec(check_src, ns)
    return ns


def test_every_notebook_has_a_check_cell_right_after_its_parameters():
    assert sorted(NB) == [f"0{i}" for i in range(8)]
    for nb, path in NB.items():
        src = _cells(path)[1]
        assert "P.check(globals()," in src, nb
        assert "tensorflow" not in src and "data.load" not in src, nb


@pytest.mark.parametrize("nb", sorted(NB))
def test_defaults_pass_and_every_parameter_has_a_rule(nb, monkeypatch):
    seen = {}
    real = P.check
    monkeypatch.setattr(P, "check", lambda values, rules: seen.update(rules=rules) or real(values, rules))
    t0 = time.time()
    _validate(nb)
    assert time.time() - t0 < 5
    defaults = runner.notebook_parameters(NB[nb])
    assert list(seen["rules"]) == list(defaults), "rules in the parameters cell's order, one per parameter"
    real(defaults, seen["rules"])  # strict: exactly the notebook's parameters


@pytest.mark.parametrize("preset", sorted(p.stem for p in runner.PRESETS.glob("*.yaml")))
def test_every_preset_passes_the_checks(preset):
    for nb, spec in runner.load_preset(preset).items():
        _validate(nb[:2], **spec["parameters"])


BAD = [
    ("00", {"EPOCHS": 0}, "EPOCHS = 0: must be an int >= 1"),
    ("00", {"N_TRAIN": -5}, "N_TRAIN = -5: must be an int >= 0"),
    ("00", {"DATASET": "imagenet"}, "DATASET = 'imagenet': must be one of helpers.data.names()"),
    ("00", {"TARGET": "esp32"}, "TARGET = 'esp32': must be one of helpers.targets.names()"),
    ("00", {"EPOCHS": True}, "EPOCHS = True"),
    ("00", {"EPOCHS": 2.0}, "EPOCHS = 2.0"),
    ("00", {"LEARNING_RATE": math.nan}, "LEARNING_RATE = nan"),
    ("00", {"SEED": -1}, "SEED = -1"),
    ("01", {"EPOCHS": 0}, "EPOCHS = 0"),
    ("01", {"N_TRAIN": -5}, "N_TRAIN = -5"),
    ("01", {"DATASET": "imagenet"}, "DATASET = 'imagenet'"),
    ("01", {"WIDTHS": []}, "WIDTHS = []"),
    ("01", {"BOARDS": ["stm32f746", "nope"]}, "BOARDS = ['stm32f746', 'nope']: item 1"),
    ("01", {"MIN_FIT_RATE": 1.0}, "MIN_FIT_RATE = 1.0"),
    ("01", {"DEPLOY": ["layer", "tiles"]}, "DEPLOY = ['layer', 'tiles']: item 1"),
    ("01", {"PATCH_MAX_OVERHEAD": -0.1}, "PATCH_MAX_OVERHEAD = -0.1"),
    ("01", {"PATCH_M": 500}, "PATCH_M = 500: must be <= M = 200"),
    ("01", {"PATCH_BOARD": "esp32"}, "PATCH_BOARD = 'esp32'"),
    ("01", {"PATCH_RESOLUTION": 4}, "PATCH_RESOLUTION = 4"),
    ("02", {"PEAK_SRAM_BOUND": 10}, "PEAK_SRAM_BOUND = 10: must be >= 224: the smallest architecture"),
    ("02", {"FLASH_BOUND": 10}, "FLASH_BOUND = 10: must be >= "),
    ("02", {"MACS_BOUND": 10}, "MACS_BOUND = 10: must be >= "),
    ("02", {"ROUNDS": 0}, "ROUNDS = 0: must be an int >= 1"),
    ("02", {"EPOCHS_PER_TRIAL": 0}, "EPOCHS_PER_TRIAL = 0"),
    ("02", {"FINAL_EPOCHS": 0}, "FINAL_EPOCHS = 0"),
    ("02", {"N_TRAIN_TRIAL": -5}, "N_TRAIN_TRIAL = -5"),
    ("02", {"DATASET": "imagenet"}, "DATASET = 'imagenet'"),
    ("02", {"PRUNING": 1}, "PRUNING = 1: must be True or False"),
    ("02", {"MAX_SPARSITY": 1}, "MAX_SPARSITY = 1"),
    ("03", {"MAX_WORKING_MEMORY": 10}, "MAX_WORKING_MEMORY = 10: must be >= 980: the smallest candidate"),
    ("03", {"MAX_MODEL_SIZE": 5}, "MAX_MODEL_SIZE = 5: must be >= "),
    ("03", {"TRIALS": 0}, "TRIALS = 0"),
    ("03", {"EPOCHS_PER_TRIAL": 0}, "EPOCHS_PER_TRIAL = 0"),
    ("03", {"EPOCHS_INHERITED": 3}, "EPOCHS_INHERITED = 3: must be at most EPOCHS_PER_TRIAL"),
    ("03", {"MORPHISM": 1}, "MORPHISM = 1"),
    ("03", {"N_TRAIN": -5}, "N_TRAIN = -5"),
    ("03", {"DATASET": "imagenet"}, "DATASET = 'imagenet'"),
    ("03", {"SPVD_EPOCHS": 0}, "SPVD_EPOCHS = 0"),
    ("03", {"SPVD_KL_WEIGHT": -1.0}, "SPVD_KL_WEIGHT = -1.0"),
    ("03", {"DEPLOY_MIN_SPARSITY": 1.0}, "DEPLOY_MIN_SPARSITY = 1.0"),
    ("03", {"CURVE_SPARSITIES": [0.5, 1.0]}, "CURVE_SPARSITIES = [0.5, 1.0]: item 1"),
    ("03", {"CURVE_EPOCHS": 0}, "CURVE_EPOCHS = 0"),
    ("03", {"ENGINE_TARGET": "esp32"}, "ENGINE_TARGET = 'esp32'"),
    ("04", {"TARGETS": {"S": "nope"}}, "TARGETS = {'S': 'nope'}: ['S']"),
    ("04", {"TARGETS": {"S": "stm32f412"}, "LATENCY_MS": {"S": 40.0}}, "TARGETS = {'S': 'stm32f412'}: boards ['stm32f412']"),
    ("04", {"TARGETS": {"X": "stm32f746zg"}}, "LATENCY_MS = {"),
    ("04", {"RETRAIN_SEEDS": []}, "RETRAIN_SEEDS = []"),
    ("04", {"TARGETS": []}, "TARGETS = []"),
    ("04", {"EPOCHS_SEARCH": 0}, "EPOCHS_SEARCH = 0"),
    ("04", {"N_TRAIN": -5}, "N_TRAIN = -5"),
    ("04", {"TASK": "imagenet"}, "TASK = 'imagenet'"),
    ("04", {"WIDTH_STEP": 6}, "WIDTH_STEP = 6: must be one of [4, 8]"),
    ("04", {"MAX_WIDTH": 60}, "MAX_WIDTH = 60: must be a multiple of WIDTH_STEP = 8"),
    ("04", {"LATENCY_BACKBONES": ["mobilenetv2"]}, "LATENCY_BACKBONES = ['mobilenetv2']: must include 'dscnn'"),
    ("05", {"ITERATIONS": 0}, "ITERATIONS = 0"),
    ("05", {"PS_EPOCHS": [1, 1]}, "PS_EPOCHS = [1, 1]"),
    ("05", {"N_TRAIN": -5}, "N_TRAIN = -5"),
    ("05", {"DATASET": "imagenet"}, "DATASET = 'imagenet'"),
    ("05", {"PLAN": "best"}, "PLAN = 'best': must be one of ['tflm', 'reordered', 'inplace']"),
    ("05", {"N_MUTATION": 0, "N_CROSSOVER": 0}, "N_MUTATION = 0: N_MUTATION + N_CROSSOVER must be >= 1"),
    ("05", {"EVALUATOR": "oracle"}, "EVALUATOR = 'oracle'"),
    ("05", {"N_COMPARE": 30}, "N_COMPARE = 30: <= N_PS_COMPARE"),
    ("06", {"EPOCHS": 0}, "EPOCHS = 0"),
    ("06", {"MODEL": "resnet"}, "MODEL = 'resnet': must be a built-in model"),
    ("06", {"N_TEST": -5}, "N_TEST = -5"),
    ("06", {"DATASET": "imagenet"}, "DATASET = 'imagenet'"),
    ("06", {"PATCH_RESOLUTION": 4}, "PATCH_RESOLUTION = 4"),
    ("06", {"PATCH_MAX_OVERHEAD": -0.1}, "PATCH_MAX_OVERHEAD = -0.1"),
    ("06", {"PATCH_VWW": "yes"}, "PATCH_VWW = 'yes'"),
    ("06", {"MLPERF_BENCHMARKS": ["speech"]}, "MLPERF_BENCHMARKS = ['speech']"),
    ("07", {"TASKS": ["imagenet"]}, "TASKS = ['imagenet']"),
    ("07", {"METHODS": ["grid"]}, "METHODS = ['grid']"),
    ("07", {"SEEDS": [0, 0]}, "SEEDS = [0, 0]"),
    ("07", {"BUDGET_CPU_S": 0}, "BUDGET_CPU_S = 0"),
    ("07", {"OVERRIDES": {"epochs_final": "three"}}, "OVERRIDES = {'epochs_final': 'three'}"),
]


@pytest.mark.parametrize("nb, overrides, message", BAD,
                         ids=[f"{nb}-{'-'.join(o)}" for nb, o, _ in BAD])
def test_bad_values_fail_at_once_naming_the_parameter(nb, overrides, message):
    t0 = time.time()
    with pytest.raises(P.ParameterError) as e:
        _validate(nb, **overrides)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)
    assert time.time() - t0 < 5


# ------------------------------------------------------------------ feasibility minimums
def test_minimum_resources_are_lower_bounds():
    from helpers import data, spaces
    from helpers.methods import munas
    from helpers.methods import sparse as SP

    rng = np.random.default_rng(0)
    g = spaces.GranularSpace(max_blocks=3, max_filters=8, max_units=16)
    for shape in [(28, 28, 1), (32, 32, 3)]:
        need = munas.minimum_resources(shape, 10, g)
        for _ in range(60):
            got = munas.arch_resources(spaces.GranularArch.random(rng, g), shape, 10)
            assert all(got[k] >= need[k] for k in need), (got, need)
    space = SP.SparseSpace(granular=g, sparsity=(0.0, 0.8))
    need = SP.minimum_objectives((28, 28, 1), 10, space)
    for _ in range(60):
        r = SP.candidate_resources(space.random(rng), (28, 28, 1), 10, exact=False)
        assert r["working_memory"] >= need["working_memory"]
        assert r.get("model_size", need["model_size"]) >= need["model_size"]
    assert need == {"working_memory": 980, "model_size": 15}
    assert munas.check_bounds({"B": ("macs", 30_000_000)}, (28, 28, 1), 10, g)["macs"] == 59
    assert data.input_spec("digits") == ((8, 8, 1), 10) and data.input_spec("KWS") == ((49, 10, 1), 12)
    d = data.load("digits")
    assert data.input_spec("digits") == (d.input_shape, d.num_classes)
    assert all(data.input_spec(n) for n in data.names())


# ------------------------------------------------------------------ one real notebook run
def test_papermill_run_with_a_bad_value_fails_within_seconds_naming_it(tmp_path):
    import papermill as pm

    t0 = time.time()
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(str(NB["00"]), str(tmp_path / "00.ipynb"), parameters={"EPOCHS": 0},
                            kernel_name="python3", cwd=str(NB["00"].parent), progress_bar=False)
    took = time.time() - t0
    assert e.value.ename == "ParameterError"
    assert "EPOCHS = 0: must be an int >= 1" in e.value.evalue
    line = runner.describe_failure(e.value, "00-overview")
    assert "ParameterError: EPOCHS = 0: must be an int >= 1" in line and "\n" not in line
    assert took < 30, f"took {took:.1f} s"

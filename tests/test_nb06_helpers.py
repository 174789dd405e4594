"""Helpers added for notebook 06-deployment: reference models, recorded-model lookup,
input quantisation (helpers.deploy) and the engine / emulator plots (helpers.plots)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from helpers import deploy, plots, resources, spaces
from helpers import deploy
from helpers.engine import interpreter


# ----------------------------------------------------------------------------- reference archs

def test_ds_cnn_arch_shape_and_macs_by_hand():
    arch = deploy.reference_arch("ds-cnn", (49, 10, 1))
    assert isinstance(arch, spaces.GranularArch)
    assert len(arch.blocks) == 5
    first = arch.blocks[0].layers[0]
    assert (first.type, first.filters, first.kernel, first.stride) == ("conv", 64, 3, 2)
    for b in arch.blocks[1:]:
        assert [l.type for l in b.layers] == ["dwconv", "conv1x1"]
        assert b.layers[1].filters == 64
    prof = resources.profile(arch, (49, 10, 1), 12)
    # 49x10 -> 25x5 (stride 2, same): conv 25*5*64*9, 4 x (dw 25*5*64*9 + pw 25*5*64*64), fc 64*12
    hand = 25 * 5 * 64 * 9 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12
    assert prof.macs == hand == 2_408_768


def test_ds_cnn_width_scales_filters():
    arch = deploy.reference_arch("ds-cnn", (49, 10, 1), width=0.25)
    assert arch.blocks[0].layers[0].filters == 16
    assert all(b.layers[1].filters == 16 for b in arch.blocks[1:])


def test_mobilenetv2_arch_matches_the_documented_bench_model():
    arch = deploy.reference_arch("MobileNetV2-0.35", (48, 48, 3))
    assert isinstance(arch, spaces.BlockArch)
    assert (arch.resolution, arch.width) == (48, 0.35)
    assert arch.stages == [[(6, 3), (6, 3)]] * 4
    # docs/emulator.md: 1,423,904 MACs, TFLM arena head 34,560 B for this model
    prof = resources.profile(arch, (48, 48, 3), 10)
    assert prof.macs == 1_423_904
    assert prof.peak_sram_bytes == 34_560
    assert deploy.reference_arch("mobilenetv2-0.35", (32, 32, 3), width=2.0).width == 0.7


def test_reference_arch_rejects_bad_input():
    with pytest.raises(ValueError, match="allowed.*ds-cnn.*mobilenetv2"):
        deploy.reference_arch("resnet", (49, 10, 1))
    with pytest.raises(ValueError, match="square input"):
        deploy.reference_arch("mobilenetv2-0.35", (49, 10, 1))
    with pytest.raises(ValueError, match="width"):
        deploy.reference_arch("ds-cnn", (49, 10, 1), width=0)
    with pytest.raises(ValueError, match="width"):
        deploy.reference_arch("ds-cnn", (49, 10, 1), width="1")
    with pytest.raises(ValueError, match="input_shape"):
        deploy.reference_arch("ds-cnn", (49, 10))


# ----------------------------------------------------------------------------- MODEL specs

def test_parse_model_spec():
    assert deploy.parse_model_spec("ds-cnn") == ("reference", "ds-cnn")
    assert deploy.parse_model_spec(" MobileNetV2-0.35 ") == ("reference", "mobilenetv2-0.35")
    assert deploy.parse_model_spec("run:02-aging-evolution") == ("run", "02-aging-evolution", "best")
    assert deploy.parse_model_spec("run:04-micronets-dnas.s") == ("run", "04-micronets-dnas", "s")
    for bad in ("", "run:", "run:aging", "mobilenet", 3, None):
        with pytest.raises(ValueError, match="MODEL"):
            deploy.parse_model_spec(bad)


def test_recorded_model_found_and_missing(tmp_path, monkeypatch):
    from helpers import run as hrun

    monkeypatch.setenv(hrun.RUN_DIR_ENV, str(tmp_path))
    payload = b"TFL3-not-really-a-model"
    hrun.save_model("02-aging-evolution", payload)
    hrun.save_model("04-micronets-dnas", payload + b"s", label="s")
    b, folder = deploy.recorded_model("run:02-aging-evolution")
    assert b == payload and folder == tmp_path
    b, _ = deploy.recorded_model("run:04-micronets-dnas.s", runs=tmp_path)
    assert b == payload + b"s"
    with pytest.raises(deploy.RecordedModelError) as e:
        deploy.recorded_model("run:03-sparse-pruning", runs=[tmp_path])
    msg = str(e.value)
    assert "03-sparse-pruning.best.tflite" in msg and "02-aging-evolution.best" in msg
    assert isinstance(e.value, ValueError)
    with pytest.raises(ValueError, match="run:NN-name"):
        deploy.recorded_model("ds-cnn")


# ----------------------------------------------------------------------------- with TensorFlow

@pytest.fixture(scope="module")
def tiny_ds_cnn():
    arch, model = deploy.reference_model("ds-cnn", (49, 10, 1), 12, width=0.125, seed=0)
    deploy.randomize_weights(model, 0)
    rng = np.random.default_rng(0)
    rep = rng.normal(0, 1, (8, 49, 10, 1)).astype(np.float32)
    return arch, model, deploy.to_tflite_int8(model, rep), rep


def test_reference_model_converts_and_plans_match_tflm(tiny_ds_cnn):
    from helpers.engine import kernels

    arch, model, tfl, rep = tiny_ds_cnn
    assert tuple(model.outputs[0].shape[1:]) == (12,)
    arena = deploy.measure_arena(tfl, isolate=False)
    assert resources.plan_tflite(tfl, "tflm").peak_sram_bytes == arena.head
    assert resources.profile(arch, (49, 10, 1), 12).peak_sram_bytes == arena.head
    xq = deploy.quantize_input(tfl, rep[:2])
    ref = deploy.reference_outputs(tfl, xq[0], engine="tflm").ravel()
    for p in resources.PLANS:
        assert np.array_equal(interpreter.run(tfl, xq[0], plan=p).output.ravel(), ref), p


def test_quantize_input_matches_tflm_predict(tiny_ds_cnn):
    _, _, tfl, rep = tiny_ds_cnn
    xq = deploy.quantize_input(tfl, rep[:3])
    assert xq.dtype == np.int8 and xq.shape == (3, 49, 10, 1)
    a = deploy.tflm_predict(tfl, rep[:3], dequantize=False)
    b = deploy.tflm_predict(tfl, xq, dequantize=False)
    assert np.array_equal(a, b)


# ----------------------------------------------------------------------------- plots

def test_memory_bars_labels_ratios():
    ax = plots.memory_bars({"TFLM total": 59_536, "plan inplace": 32_256, "bigger": 70_000},
                           reference="TFLM total")
    assert len(ax.patches) == 3
    texts = [t.get_text() for t in ax.texts]
    assert any("1.85x less" in t for t in texts)
    assert any("more" in t for t in texts)
    top_down = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    assert [lab for _, lab in top_down] == ["TFLM total", "plan inplace", "bigger"]   # given order


def test_live_memory_timeline_one_line_per_plan():
    arch = deploy.reference_arch("mobilenetv2-0.35", (32, 32, 3))
    g = resources.graph_from_layers(arch.layers((32, 32, 3), 10))
    ps = {p: resources.plan(g, p) for p in resources.PLANS}
    ax = plots.live_memory_timeline(ps)
    assert len(ax.get_lines()) == 2 * len(ps)          # step line + dashed peak each
    peaks = sorted(float(l.get_ydata()[0]) for l in ax.get_lines() if l.get_linestyle() == "--")
    assert peaks == sorted(p.peak_sram_bytes / 1024 for p in ps.values())
    assert ps["inplace"].peak_sram_bytes < ps["tflm"].peak_sram_bytes


def _fake_table(scale):
    return pd.DataFrame({"pos": [0, 1, 2], "kind": ["CONV_2D", "DEPTHWISE_CONV_2D", "MEAN"],
                         "instructions": np.array([100, 50, 5]) * scale,
                         "cycles": np.array([120.0, 60.0, 6.0]) * scale})


def test_op_cost_bars_grouped():
    ax = plots.op_cost_bars({"plain": _fake_table(3), "dsp": _fake_table(1)}, log=True)
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0:CONV", "1:DW", "2:MEAN"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["plain (total 465)", "dsp (total 155)"]


def test_engine_comparison_skips_missing_and_hatches_published():
    measured = {"TFLM arena": {"memory_kb": 58.1, "latency_ms": None},
                "ours": {"memory_kb": 31.9, "latency_ms": 189.0}}
    published = {"TinyEngine (published)": {"memory_kb": 59, "latency_ms": 27}}
    ax = plots.engine_comparison(measured, published)
    assert len(ax) == 2
    assert len(ax[0].patches) == 3 and len(ax[1].patches) == 2
    assert [p.get_hatch() for p in ax[1].patches] == [None, "//"]

"""Patch-based inference (issue #21): the planner (receptive fields, verified layouts, the
choice under a MAC-overhead limit), the Python engine and the emulated C, each bit-exact with
TFLite-Micro for several split points and patch grids of a small MobileNetV2-style model.
"""
import numpy as np
import pytest

from helpers import deploy
from helpers.engine import emulator as E
from helpers.engine import patch
from helpers.resources import patch_plan as P
from helpers.resources import graph_from_tflite, plan_tflite

M4 = dict(name="m4-test", core="cortex-m4", clock_hz=100_000_000, sram_bytes=256 * 1024,
          flash_bytes=1024 * 1024)


@pytest.fixture(scope="module")
def mbv2():
    """MobileNetV2-0.35-style at 32x32 (stride-2 stem, residual blocks), random weights."""
    arch, model = deploy.reference_model("mobilenetv2-0.35", (32, 32, 3), 10, seed=0)
    deploy.randomize_weights(model, 0)
    rng = np.random.default_rng(0)
    b = deploy.to_tflite_int8(model, rng.normal(0, 1, (8, 32, 32, 3)).astype(np.float32))
    x = rng.integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    return b, x, deploy.reference_outputs(b, x, engine="tflm")


def test_valid_splits_stop_at_the_first_global_op(mbv2):
    b, _, _ = mbv2
    s = P.valid_splits(b)
    # residual blocks: the expand conv (op 4) and the add (op 3) end stages, the dw of a
    # residual block (op 8) does not (its block input is still needed by the add)
    assert 0 in s and 3 in s and 4 in s and 6 in s
    assert 1 not in s and 8 not in s
    assert max(s) == 32           # the last ADD before the MEAN


def test_regions_cover_the_split_output_and_grow_backwards(mbv2):
    b, _, _ = mbv2
    regs = P.stage_regions(b, P.PatchSchedule(6, 3))
    assert len(regs) == 9
    g = graph_from_tflite(b)
    y = g.ops[6].outputs[0]
    cover = np.zeros(g.tensors[y].shape[1:3], int)
    for r in regs:
        a, bb, c, d = r[y]
        cover[a:bb, c:d] += 1
    assert (cover == 1).all()                     # the patches tile the split output exactly
    x0 = g.inputs[0]
    # the first patch of the 8x8 split output (rows 0..2) needs input rows 0..(2*2+1)*2+1+..
    assert regs[0][x0][0] == 0 and regs[0][x0][1] > 3 * 4
    # halo: neighbouring patches overlap on the input
    assert regs[0][x0][1] > regs[1 * 3][x0][0]


def test_plan_is_verified_and_the_grid_trades_memory_for_macs(mbv2):
    b, _, _ = mbv2
    head = plan_tflite(b, "tflm").peak_sram_bytes
    p1 = P.patch_plan(b, P.PatchSchedule(6, 1))
    p3 = P.patch_plan(b, P.PatchSchedule(6, 3))
    for p in (p1, p3):
        p.verify()
        assert p.peak_sram_bytes == max(r["offset"] + r["size"] for r in p.buffers)
        assert max(p.live_bytes) <= p.peak_sram_bytes
    assert p1.macs == p1.base_macs and p1.overhead == 0
    assert 0.05 < p3.overhead < 0.25                 # measured +13.4 %
    assert p3.peak_sram_bytes < 0.5 * head           # measured 6,656 vs 15,360 B
    # a deliberately broken layout is caught
    p3.buffers[0]["offset"] = p3.buffers[1]["offset"]
    with pytest.raises(AssertionError):
        p3.verify()


def test_choose_schedule_respects_the_overhead_limit(mbv2):
    b, _, _ = mbv2
    c = P.choose_schedule(b, max_overhead=0.2)
    assert c.best.overhead <= 0.2
    assert all(r["peak_sram_bytes"] >= c.best.peak_sram_bytes for r in c.candidates if r["feasible"])
    c0 = P.choose_schedule(b, max_overhead=0.0)
    assert c0.best.overhead == 0 and c0.best.peak_sram_bytes >= c.best.peak_sram_bytes
    with pytest.raises(ValueError, match="max_overhead"):
        P.choose_schedule(b, max_overhead=-1)


def test_bad_schedules_raise_one_clear_error(mbv2):
    b, x, _ = mbv2
    with pytest.raises(ValueError, match="split"):
        P.patch_plan(b, P.PatchSchedule(1, 2))     # a dw inside a residual block
    with pytest.raises(ValueError, match="grid"):
        P.patch_plan(b, P.PatchSchedule(32, 3))    # 2x2 split output
    with pytest.raises(ValueError, match="grid"):
        P.PatchSchedule(3, 0)
    with pytest.raises(ValueError, match="schedule"):
        patch.run(b, x, "3x3")
    with pytest.raises(ValueError, match="int8"):
        patch.run(b, x.astype(np.float32), (3, 2))


@pytest.mark.parametrize("split,grid", [(0, 2), (3, 3), (5, 5), (6, 3), (10, 2), (13, 4), (24, 2)])
def test_python_patch_run_is_bit_exact_with_tflm(mbv2, split, grid):
    b, x, ref = mbv2
    r = patch.run(b, x, P.PatchSchedule(split, grid))
    assert np.array_equal(r.output.ravel(), ref.ravel())
    assert r.arena_bytes == P.patch_plan(b, P.PatchSchedule(split, grid)).peak_sram_bytes
    assert r.macs >= r.base_macs


@pytest.mark.parametrize("split,grid,kernels", [
    (6, 3, "dsp"), (5, 4, "dsp"), pytest.param(10, 2, "plain", marks=pytest.mark.slow)])
def test_emulated_patch_build_is_bit_exact_and_uses_the_plan_arena(mbv2, split, grid, kernels):
    b, x, ref = mbv2
    r = E.run(b, x, M4, kernels=kernels, schedule=(split, grid))
    assert np.array_equal(r.output.ravel(), ref.ravel())
    pp = P.patch_plan(b, P.PatchSchedule(split, grid))
    assert r.arena_bytes == pp.peak_sram_bytes
    assert sum(o["macs"] for o in r.per_op) == pp.macs
    assert len(r.per_op) == grid * grid * len(pp.stage_ops) + len(pp.rest_ops)


def test_study_puts_every_strategy_side_by_side(mbv2):
    from helpers.deploy import patch_study
    b, x, _ = mbv2
    st = patch_study.study(b, x, "mbv2 r32")
    assert st.bit_exact_python
    assert st.patch < st.inplace <= st.layer_by_layer == st.tflm_head
    assert st.tflm_head < st.tflm_total_mcu32 < st.tflm_total_host
    t = st.table()
    assert list(t["peak_sram_bytes"]) == [st.tflm_head, st.tflm_total_mcu32, st.layer_by_layer,
                                          st.inplace, st.patch]
    with pytest.raises(ValueError, match="builds"):
        patch_study.study(b, x, builds=("fast",))


@pytest.fixture(scope="module")
def pools():
    """conv -> max pool -> average pool (SAME, stride 1) -> VALID stride-2 depthwise -> 1x1."""
    import tensorflow as tf
    tf.keras.utils.set_random_seed(0)
    L = tf.keras.layers
    i = L.Input((20, 20, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    h = L.MaxPool2D(2)(h)
    h = L.AveragePooling2D(3, strides=1, padding="same")(h)
    h = L.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu")(h)
    h = L.Conv2D(12, 1, activation="relu")(h)
    h = L.GlobalAveragePooling2D()(h)
    m = tf.keras.Model(i, L.Dense(4)(h))
    rng = np.random.default_rng(0)
    b = deploy.to_tflite_int8(m, rng.normal(0, 1, (8, 20, 20, 3)).astype(np.float32))
    x = rng.integers(-128, 128, (1, 20, 20, 3)).astype(np.int8)
    return b, x, deploy.reference_outputs(b, x, engine="tflm")


def test_pools_and_valid_padding_at_patch_borders_are_bit_exact(pools):
    b, x, ref = pools
    assert P.valid_splits(b) == [0, 1, 2, 3, 4]
    for split in range(5):
        r = patch.run(b, x, (split, 3))
        assert np.array_equal(r.output.ravel(), ref.ravel()), split
    e = E.run(b, x, M4, schedule=(4, 3))
    assert np.array_equal(e.output.ravel(), ref.ravel())


def test_search_side_patch_resources_match_the_file_and_fit_a_larger_resolution(mbv2):
    from helpers import resources
    b, _, _ = mbv2
    arch = deploy.reference_arch("mobilenetv2-0.35", (32, 32, 3))
    pr = P.patch_resources(arch, (32, 32, 3), 10)
    assert pr["peak_sram_bytes"] == P.choose_schedule(b).best.peak_sram_bytes   # no TF needed
    # co-design: at r224 only the patch schedule fits a 256 KB board (measured 216,448 B vs
    # 702,464 B in-place layer by layer)
    big = deploy.reference_arch("mobilenetv2-0.35", (224, 224, 3))
    p224 = P.patch_resources(big, (224, 224, 3), 10)
    inplace = resources.profile(big, (224, 224, 3), 10, plan="inplace", table=False).peak_sram_bytes
    assert p224["peak_sram_bytes"] < 256 * 1024 < inplace

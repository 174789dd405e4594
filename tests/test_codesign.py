"""Co-design of the space selection with patch-based inference (helpers.methods.codesign)."""
import numpy as np
import pytest

from helpers import data, spaces
from helpers.methods import codesign, tinynas

BOARD_SRAM = 258048          # stm32f412 model budget after TFLite-Micro's reserve


def _arch(w, r, seed=0):
    return spaces.BlockArch.random(np.random.default_rng(seed), width=w, resolution=r)


def test_patch_peak_below_layer_peak_at_high_resolution():
    a = _arch(1.0, 48)
    layer = tinynas.fast_profile(a, (48, 48, 1), 10).peak_sram_bytes
    p = codesign.patch_peak(a, 1, 10, max_overhead=0.2)
    assert p is not None and p["grid"] >= 2
    assert p["peak_sram_bytes"] < 0.7 * layer          # measured 24,192 vs 46,080 B
    assert 0 <= p["overhead"] <= 0.2 + 1e-12
    assert p["macs"] >= tinynas.fast_profile(a, (48, 48, 1), 10).macs
    # a tighter overhead limit cannot give a lower peak
    p0 = codesign.patch_peak(a, 1, 10, max_overhead=0.0)
    assert p0 is None or p0["peak_sram_bytes"] >= p["peak_sram_bytes"]


def test_patch_peak_rejects_bad_overhead():
    with pytest.raises(ValueError, match="max_overhead"):
        codesign.patch_peak(_arch(0.5, 32), 1, 10, max_overhead=-0.1)


@pytest.fixture(scope="module")
def samples():
    return tinynas.sample_spaces([0.5, 1.0], [32, 48], 6, (28, 28, 1), 10, seed=0, progress=False)


def test_rank_deploys_patch_fits_more(samples):
    dr = codesign.rank_deploys(samples, 32 * 1024, 1024 * 1024, ["layer", "patch"], m=6,
                               progress=False)
    lay, pat = dr.rankings["layer"].table(), dr.rankings["patch"].table()
    assert pat["n_fit"].sum() > lay["n_fit"].sum()
    assert pat["n_fit"].sum() - lay["n_fit"].sum() == dr.patch_helped
    assert dr.patch_checks >= dr.patch_helped > 0
    t = dr.table()
    assert list(t.index) == ["layer", "patch"] and t.loc["patch", "models"] == 24
    # the chosen space moves to more FLOPs (or stays) when patches are allowed
    assert t.loc["patch", "best_mean_mflops"] >= t.loc["layer", "best_mean_mflops"] - 1e-9
    assert "patch" in dr.summary()


def test_rank_deploys_bad_input(samples):
    with pytest.raises(ValueError, match="deploy"):
        codesign.rank_deploys(samples, 32 * 1024, 1024 * 1024, ["layer", "tiles"], m=2)
    with pytest.raises(ValueError, match="m must be"):
        codesign.rank_deploys(samples, 32 * 1024, 1024 * 1024, "patch", m=7)


def test_patch_only_arch_picks_and_refuses():
    a, p = codesign.patch_only_arch(0.2, 144, 1, 10, BOARD_SRAM, 1 << 20, n=10, seed=0)
    assert p["layer_peak_sram_bytes"] > BOARD_SRAM >= p["peak_sram_bytes"]
    assert a.resolution == 144 and a.width == 0.2
    with pytest.raises(ValueError, match="only with patch-based inference"):
        codesign.patch_only_arch(0.3, 32, 1, 10, BOARD_SRAM, 1 << 20, n=5, seed=0)


def test_deploy_patch_only_measures_a_small_model():
    """Tiny end-to-end: 48 px model, 32 KB budget, 128 training images (accuracy not judged)."""
    ds = data.load("mnist", seed=0).subset(n_train=128, n_val=32, n_test=32, seed=0)
    a, p = codesign.patch_only_arch(1.0, 48, 1, 10, 32 * 1024, 1 << 20, n=10, seed=0)
    res = codesign.deploy_patch_only(a, codesign.resize_dataset(ds, 48), 32 * 1024, 1, seed=0)
    assert res.bit_exact
    assert res.tflm_arena_head_bytes > 32 * 1024 >= res.patch_peak_sram_bytes
    assert res.fits_only_with_patch
    assert 0 <= res.test_accuracy_int8 <= 1 and res.n_test == 32
    f = res.figures()
    assert f["patch_only_model_bit_exact"] is True and f["patch_only_model_mac_overhead"] <= 0.2
    with pytest.raises(ValueError, match="resolution"):
        codesign.deploy_patch_only(a, ds, 32 * 1024)

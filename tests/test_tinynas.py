"""TinyNAS stage 1: fast profiler == exact profiler, FLOPs-CDF ranking on hand-made cases."""
import numpy as np
import pandas as pd
import pytest

from helpers import resources, spaces
from helpers.methods import tinynas


@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32, 3)])
def test_fast_profile_matches_exact_profile(input_shape):
    rng = np.random.default_rng(3)
    for _ in range(25):
        a = spaces.BlockArch.random(rng)
        f = tinynas.fast_profile(a, input_shape, 10)
        e = resources.profile(a, input_shape, 10, plan="inplace", table=False)
        assert (f.peak_sram_bytes, f.macs, f.params) == (e.peak_sram_bytes, e.macs, e.params), a.to_json()


def test_flash_estimate_error_is_small():
    fm = tinynas.calibrate_flash((28, 28, 1), 10, n=30, seed=1)
    rng = np.random.default_rng(11)
    errs = []
    for _ in range(20):
        a = spaces.BlockArch.random(rng)
        f = tinynas.fast_profile(a, (28, 28, 1), 10, fm)
        errs.append(f.flash_bytes - resources.profile(a, (28, 28, 1), 10, plan="inplace",
                                                      table=False).flash_bytes)
    # files are 50 KB - 1 MB; the graph-table model is good to about a KB
    assert np.abs(errs).max() < 2000, errs


def test_rank_by_mean_flops_hand_made():
    order = tinynas.rank_by_mean_flops({"a": [1, 2, 3], "b": [10], "c": [], "d": [4, 4]})
    assert order == ["b", "d", "a", "c"]


def _samples(rows, m):
    df = pd.DataFrame(rows, columns=["width", "resolution", "macs", "peak_sram_bytes", "flash_bytes"])
    df["arch"] = ""
    df["params"] = 0
    df["flash_exact"] = True  # nothing to re-profile
    fm = tinynas.FlashModel(coef=(0.0,) * 6, max_error=0.0, rmse=0.0, n=0)
    return tinynas.SpaceSamples(df, (28, 28, 1), 10, m, fm, 0.0, 0)


def test_rank_spaces_known_answer():
    # space (1.0, 48): large FLOPs but only the small model fits SRAM;
    # space (0.5, 32): both fit, mean 5; space (0.2, 16): both fit, mean 1.5
    rows = [(1.0, 48, 100, 9000, 10), (1.0, 48, 3, 100, 10),
            (0.5, 32, 4, 500, 10), (0.5, 32, 6, 500, 10),
            (0.2, 16, 1, 50, 10), (0.2, 16, 2, 50, 10)]
    s = _samples(rows, m=2)
    rk = tinynas.rank_spaces(s, sram_budget=1000, flash_budget=100)
    assert rk.best == (0.5, 32)
    t = rk.table()
    assert list(zip(t.width, t.resolution)) == [(0.5, 32), (1.0, 48), (0.2, 16)]
    assert list(t.n_fit) == [2, 1, 2]
    assert rk.best_mean_flops == pytest.approx(5.0)
    # with more SRAM the big space wins (mean 51.5)
    assert tinynas.rank_spaces(s, 10_000, 100).best == (1.0, 48)
    # flash budget excluding everything of (0.5, 32)? all share flash 10 -> budget 9 fits none
    rk0 = tinynas.rank_spaces(s, 10_000, 9)
    assert rk0.table().n_fit.sum() == 0 and not rk0.table().eligible.any()
    # min_fit_rate: the big space (1 of 2 fit at SRAM 1000) drops below the 0.2-space
    rk2 = tinynas.rank_spaces(s, 1000, 100, min_fit_rate=0.75)
    assert list(zip(rk2.table().width, rk2.table().resolution))[:2] == [(0.5, 32), (0.2, 16)]
    sw = tinynas.choice_sweep(s, [1000, 10_000], [100], progress=False)
    assert list(sw.best_width) == [0.5, 1.0]


def test_rank_spaces_bad_input():
    s = _samples([(0.5, 32, 4, 500, 10)], m=1)
    with pytest.raises(ValueError, match="sram_budget"):
        tinynas.rank_spaces(s, -1, 100)
    with pytest.raises(ValueError, match="min_fit_rate"):
        tinynas.rank_spaces(s, 10, 100, min_fit_rate=2)
    with pytest.raises(ValueError, match="fast_profile"):
        tinynas.fast_profile(spaces.GranularArch.random(np.random.default_rng(0)), (28, 28, 1), 10)


def test_sample_spaces_fixes_width_resolution_and_is_seeded():
    fm = tinynas.FlashModel(coef=(0.0,) * 6, max_error=1e9, rmse=0.0, n=0)
    a = tinynas.sample_spaces([0.3, 0.5], [16, 24], 5, (28, 28, 1), 10, seed=4, flash_model=fm,
                              progress=False)
    b = tinynas.sample_spaces([0.5], [24], 5, (28, 28, 1), 10, seed=4, flash_model=fm,
                              progress=False)
    assert len(a.profiles) == 20 and a.spaces == [(0.3, 16), (0.3, 24), (0.5, 16), (0.5, 24)]
    sub = a.profiles[(a.profiles.width == 0.5) & (a.profiles.resolution == 24)]
    assert list(sub.arch) == list(b.profiles.arch)  # a space's samples do not depend on the grid
    for js, w, r in zip(a.profiles.arch, a.profiles.width, a.profiles.resolution):
        arch = spaces.from_json(js)
        assert (arch.width, arch.resolution) == (w, r)


def test_fitting_archs_fit():
    fm = tinynas.calibrate_flash((28, 28, 1), 10, n=10, seed=0)
    s = tinynas.sample_spaces([0.5], [32], 20, (28, 28, 1), 10, seed=0, flash_model=fm,
                              progress=False)
    budget_sram = int(np.median(s.profiles.peak_sram_bytes))
    archs = tinynas.fitting_archs(s, 0.5, 32, 3, budget_sram, 10 ** 7)
    assert 1 <= len(archs) <= 3
    for a in archs:
        assert resources.profile(a, (28, 28, 1), 10, plan="inplace",
                                 table=False).peak_sram_bytes <= budget_sram
    with pytest.raises(ValueError, match="fits"):
        tinynas.fitting_archs(s, 0.5, 32, 3, 10, 10)

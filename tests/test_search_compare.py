"""search.compare_by_seed: the verdicts of notebooks 02 and 03 over search seeds."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from helpers import search

BOUNDS = {"error": 0.5, "peak_sram_bytes": 1000.0, "weights_bytes": None}


def _result(rng, n, quality):
    """A finished search stand-in: ``quality`` in [0, 1) shifts its trials towards the ideal."""
    err = rng.uniform(0.05, 0.7, n) * (1 - quality)
    sram = rng.uniform(100, 1500, n) * (1 - quality)
    df = pd.DataFrame({"trial_id": [f"{i:03d}" for i in rng.permutation(n)], "error": err,
                       "peak_sram_bytes": sram, "weights_bytes": rng.uniform(0, 1e6, n)})
    df["feasible"] = ((df.error <= BOUNDS["error"]) & (df.peak_sram_bytes <= BOUNDS["peak_sram_bytes"])).astype(float)
    hv = search.hypervolume(df.sort_values("trial_id")[["error", "peak_sram_bytes"]].to_numpy()
                            / np.array([0.5, 1000.0]), np.ones(2))
    return SimpleNamespace(completed=df, hypervolume=hv)


def test_better_search_wins_both_claims_over_seeds():
    rng = np.random.default_rng(0)
    runs = {s: (_result(rng, 20, 0.5), _result(rng, 20, 0.0)) for s in range(10)}
    v, per_seed = search.compare_by_seed(runs, BOUNDS, error_bound=0.5, names=("good", "bad"), short=("G", "B"))
    assert v["hypervolume_gain"].word == "held"
    assert v["best_feasible_error_diff"].word == "held"
    assert v["hypervolume_gain"].claim == "good covers more hypervolume than bad"
    assert list(per_seed.index) == list(range(10))
    assert (per_seed["hypervolume G"] > per_seed["hypervolume B"]).all()
    assert v["hypervolume_gain"].n == 10


def test_swapped_searches_do_not_hold():
    rng = np.random.default_rng(1)
    runs = {s: (_result(rng, 20, 0.0), _result(rng, 20, 0.5)) for s in range(10)}
    v, _ = search.compare_by_seed(runs, BOUNDS, error_bound=0.5)
    assert v["hypervolume_gain"].word == "did not hold"


def test_one_seed_is_undecided():
    rng = np.random.default_rng(2)
    v, per_seed = search.compare_by_seed({0: (_result(rng, 20, 0.5), _result(rng, 20, 0.0))}, BOUNDS, error_bound=0.5)
    assert all(x.word.startswith("undecided") for x in v.values())
    assert np.isnan(v["hypervolume_gain"].low) and len(per_seed) == 1


def test_no_feasible_trial_counts_as_the_error_bound():
    rng = np.random.default_rng(3)
    a, b = _result(rng, 10, 0.0), _result(rng, 10, 0.0)
    b.completed["feasible"] = 0.0
    b.hypervolume = 0.0
    b.completed["error"] = 0.9
    b.completed["peak_sram_bytes"] = 5000.0
    _, per_seed = search.compare_by_seed({0: (a, b)}, BOUNDS, error_bound=0.25)
    assert per_seed.loc[0, "best feasible error B"] == 0.25


def test_bad_input_is_named():
    rng = np.random.default_rng(4)
    a, b = _result(rng, 10, 0.0), _result(rng, 10, 0.0)
    with pytest.raises(ValueError, match="empty"):
        search.compare_by_seed({}, BOUNDS, error_bound=0.5)
    with pytest.raises(ValueError, match="pair"):
        search.compare_by_seed({0: (a, None)}, BOUNDS, error_bound=0.5)
    b.hypervolume += 0.1
    with pytest.raises(ValueError, match="seed 7: hypervolume"):
        search.compare_by_seed({7: (a, b)}, BOUNDS, error_bound=0.5)

"""Search quality on the training-free benchmark (helpers.methods.benchmark).

Every search algorithm of helpers.search runs on the real search spaces with a
surrogate error, so these tests check *what the searches find*, not only that they
run: each beats random search at equal budget (median over seeds), aging evolution
mutates the fitness argmax of its sample, BO takes the acquisition optimum of its
pool, MCUNet evolution lowers its population's error - and the notebook-05 call
does not (a known bug, see test_mcunet_nb05_call_lowers_population_error).

Searches are cached per module (``runs`` fixture); budgets are small so the whole
file runs in about a minute on two cores.
"""
import copy
import math
import pickle
import time

import numpy as np
import pytest

from helpers import search as S
from helpers.methods import benchmark as SB
from helpers.methods import munas
from helpers.search import oracles as O

SEEDS = range(5)

#: (algorithm, benchmark, driver settings); random search gets the same budget
DUELS = {
    "aging_evolution": ("granular", {"budget": 40, "population_size": 8, "sample_size": 4}),
    "bayesian_optimization": ("sparse", {"budget": 24, "num_initial_points": 8, "pool_size": 24}),
    "mcunet_evolution": ("subnet", {"population_size": 12, "n_mutation": 6, "n_crossover": 6,
                                    "iterations": 3}),
}

#: notebook 05's MCUNet-evolution bounds (tools/nbsrc/nb05.py: SRAM_KB = 32, FLASH_KB = 256)
NB05_BOUNDS = {"error": None, "peak_sram_bytes": 32 * 1024, "flash_bytes": 256 * 1024, "macs": None}
NB05_EVOLUTION = {"population_size": 16, "n_mutation": 8, "n_crossover": 8, "iterations": 4}


def _budget(algorithm, kw):
    if algorithm == "mcunet_evolution":
        return kw["population_size"] + kw["iterations"] * (kw["n_mutation"] + kw["n_crossover"])
    return kw["budget"]


@pytest.fixture(scope="module")
def fast_trials():
    """(Kept as a fixture name: release_graphs now collects only when a graph was freed.)"""
    yield


@pytest.fixture(scope="module")
def benches():
    return {name: make() for name, make in SB.BENCHMARKS.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, benches, fast_trials):
    """``runs(algorithm, seed)`` -> SearchResult of the DUELS setting, cached;
    ``runs("random_search", seed, against=algorithm)`` is random search at the same budget."""
    root = tmp_path_factory.mktemp("quality")
    cache = {}

    def get(algorithm, seed, against=None):
        name, kw = DUELS[against or algorithm]
        if algorithm == "random_search":
            kw = {"budget": _budget(against, kw)}
        key = (algorithm, name, seed)
        if key not in cache:
            cache[key] = benches[name].run(algorithm, directory=root / f"{algorithm}-{name}-{seed}",
                                           seed=seed, **kw)
        return cache[key]

    return get


# ---------------------------------------------------------------------------
# the benchmark itself
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SB.BENCHMARKS))
def test_benchmark_is_deterministic_cheap_and_uses_the_notebook_resources(name, benches):
    b = benches[name]
    rng = np.random.default_rng(7)
    archs = [b.random(rng) for _ in range(40)]
    fresh = SB.BENCHMARKS[name]()
    t0 = time.perf_counter()
    outs = [fresh.evaluate(a, 0) for a in archs]
    per_arch = (time.perf_counter() - t0) / len(archs)
    assert per_arch < 0.05  # milliseconds (about 2-7 ms even on a loaded machine)
    clone = pickle.loads(pickle.dumps(b))
    for a, o in zip(archs, outs):
        assert b.evaluate(a, 123) == o == clone.evaluate(a, 5)  # deterministic, seed ignored
        assert set(b.objectives) <= set(o) and 0 < o["error"] <= b.model.e_max
        r = b.resources(a)
        if name == "granular":   # nb02: search.ArchResources(plan="reordered")
            ref = munas.ArchResources(b.input_shape, b.num_classes, plan="reordered")(a)
        elif name == "sparse":   # nb03: sparse.candidate_resources(exact=False)
            ref = SB.candidate_resources(a, b.input_shape, b.num_classes, exact=False)
        else:                    # nb05: res_fn = resources.profile(plan="tflm")
            p = SB.profile(a, b.input_shape, b.num_classes, plan="tflm", table=False)
            ref = {"peak_sram_bytes": p.peak_sram_bytes, "flash_bytes": p.flash_bytes, "macs": p.macs}
        assert r == ref
        assert all(o[k] == r[k] for k in ("peak_sram_bytes", "flash_bytes", "macs", "working_memory")
                   if k in r and k in o and not (name == "sparse" and a.structured))
    errs = np.array([o["error"] for o in outs])
    assert errs.std() > 0.01  # a landscape, not a constant
    # bigger is better, on average: error falls with capacity
    caps = [SB.layer_features(getattr(a, "arch", a).layers(b.input_shape, b.num_classes))["params"]
            for a in archs]
    assert np.corrcoef(np.log(caps), errs)[0, 1] < -0.3


@pytest.mark.parametrize("name", list(SB.BENCHMARKS))
def test_reference_optimum_is_current_and_not_beaten_by_a_cheap_estimate(name, benches):
    b = benches[name]
    ref = SB.REFERENCE_OPTIMA[name]
    assert ref["bounds"] == b.bounds
    arch = b.space.from_json(ref["arch"])
    o = b.evaluate(arch)
    assert o["error"] == pytest.approx(ref["value"], rel=1e-12) and b.feasible(o)
    cheap = SB.estimate_optimum(b, n_random=150, n_starts=2, n_climb=40, seed=1)
    assert math.isfinite(cheap.value) and cheap.n_evaluated > 0
    assert ref["value"] <= cheap.value + 1e-12


# ---------------------------------------------------------------------------
# each algorithm beats random search at equal budget
# ---------------------------------------------------------------------------
def _duel(runs, algorithm):
    mine = [runs(algorithm, s) for s in SEEDS]
    rand = [runs("random_search", s, against=algorithm) for s in SEEDS]
    budget = _budget(algorithm, DUELS[algorithm][1])
    assert all(len(r.completed) == budget for r in mine + rand)
    return mine, rand


#: Hypervolume duels: only the multi-objective searches. MCUNet's evolution maximises accuracy
#: under SRAM / flash constraints, not a Pareto front (its hypervolume ties random search's,
#: median 0.00957 vs 0.00958 over 5 seeds), so it is judged by best feasible error below.
#: Aging evolution's front needs more trials than the CI duel's 40 (there its median 0.219 is
#: below random's 0.231): it runs at 150 trials, population 20, in the slow test.
AE_HV_SLOW = {"budget": 150, "population_size": 20, "sample_size": 5}


def test_bo_beats_random_search_in_hypervolume(runs):
    mine, rand = _duel(runs, "bayesian_optimization")
    hv = np.median([r.hypervolume for r in mine]), np.median([r.hypervolume for r in rand])
    assert hv[0] > hv[1], f"BO hypervolume median {hv[0]:.4f} vs random {hv[1]:.4f}"


@pytest.mark.slow
def test_aging_evolution_beats_random_search_in_hypervolume_at_150_trials(benches, tmp_path):
    """Measured: median 0.356 vs 0.296 over 5 seeds (about 3 minutes on 2 cores)."""
    b = benches["granular"]
    hv = {}
    for algorithm, kw in (("aging_evolution", AE_HV_SLOW), ("random_search", {"budget": 150})):
        hv[algorithm] = np.median([b.run(algorithm, directory=tmp_path / f"{algorithm}-{s}", seed=s,
                                         **kw).hypervolume for s in SEEDS])
    assert hv["aging_evolution"] > hv["random_search"], hv


@pytest.mark.parametrize("algorithm", list(DUELS))
def test_beats_random_search_in_best_feasible_error(algorithm, runs):
    mine, rand = _duel(runs, algorithm)
    best = (np.median([SB.best_feasible(r) for r in mine]),
            np.median([SB.best_feasible(r) for r in rand]))
    assert best[0] < best[1], (f"{algorithm} best feasible error median {best[0]:.4f} "
                               f"vs random {best[1]:.4f}")
    # no search beats the recorded optimum (an estimate: this checks it); regret is positive
    opt = SB.reference_optimum(DUELS[algorithm][0])
    regrets = [SB.regret(r, opt) for r in mine + rand]
    assert min(regrets) >= -1e-12


# ---------------------------------------------------------------------------
# inside the algorithms
# ---------------------------------------------------------------------------
def test_aging_evolution_parent_is_the_fitness_argmax_of_its_sample(tmp_path, monkeypatch,
                                                                   benches, fast_trials):
    """Replays each selection from the oracle's RNG state: sample with replacement from the
    population (the last P completed trials), fresh λ ~ U(0,1)^k, μNAS Chebyshev fitness."""
    Oracle = O.AgingEvolutionOracle
    orig = Oracle.propose
    log = []

    def propose(self):
        k = len(self.start_order)
        state = copy.deepcopy(self.rng.bit_generator.state)
        pop = list(self.population())
        arch, origin, parent = orig(self)
        if origin == "mutation":
            r = np.random.default_rng()
            r.bit_generator.state = state
            pick = r.integers(0, len(pop), size=self.sample_size)
            lam = r.uniform(0.0, 1.0, size=len(self.bounded_names))
            norm = [S.normalise([pop[i][1]["objectives"][n] for n in self.bounded_names],
                                self.bound_values, self.cap) for i in pick]
            fit = S.chebyshev_fitness(np.array(norm), lam)
            log.append({"k": k, "parent": parent, "fit": fit, "pick": pick,
                        "expected": pop[int(pick[int(np.argmax(fit))])][0].trial_id,
                        "pop": [t.trial_id for t, _ in pop],
                        "done_before": [t for t in self.start_order[:k]]})
        return arch, origin, parent

    monkeypatch.setattr(Oracle, "propose", propose)
    name, kw = DUELS["aging_evolution"]
    res = benches[name].run("aging_evolution", directory=tmp_path / "ae", seed=11, **kw)
    assert len(log) >= kw["budget"] - kw["population_size"]
    for e in log:
        assert e["parent"] == e["expected"]
        assert e["pop"] == e["done_before"][-kw["population_size"]:]  # lag 1: the last P
    # not a trivial rule (e.g. the first sampled): the argmax moves around the sample
    assert sum(int(np.argmax(e["fit"])) != 0 for e in log) >= len(log) // 4
    # the trial store records that parent for every mutation child
    accepted = {e["k"]: e["parent"] for e in log}  # the last selection for slot k is the child's
    c = res.completed
    kids = c[c.origin == "mutation"]
    assert len(kids) == kw["budget"] - kw["population_size"]
    for _, row in kids.iterrows():
        assert row.parent == accepted[int(row.started)]


def test_bayesian_optimization_picks_the_acquisition_argmin_of_its_pool(tmp_path, monkeypatch,
                                                                         benches, fast_trials):
    Oracle = O.BayesianOracle
    orig_inner, orig_pool = Oracle._inner_oracle, Oracle._pool_argmin
    seen = []

    def inner_oracle(self):
        inner = orig_inner(self)
        gp_predict = inner.gpr.predict

        def predict(X, return_std=False):
            out = gp_predict(X, return_std=return_std)
            inner._captured = (np.array(X), *[np.ravel(o) for o in out])
            return out

        inner.gpr.predict = predict
        return inner

    def pool_argmin(self, inner, scored, lam):
        cand, parent, info = orig_pool(self, inner, scored, lam)
        X, mu, sd = inner._captured
        ucb = mu - self.beta * sd
        seen.append({"x": np.array(self._vector(inner, self.space.to_values(cand))), "X": X,
                     "ucb": ucb, "info": info, "arch": cand.to_json()})
        return cand, parent, info

    monkeypatch.setattr(Oracle, "_inner_oracle", inner_oracle)
    monkeypatch.setattr(Oracle, "_pool_argmin", pool_argmin)
    name, kw = DUELS["bayesian_optimization"]
    res = benches[name].run("bayesian_optimization", directory=tmp_path / "bo", seed=3, **kw)
    assert len(seen) == kw["budget"] - kw["num_initial_points"]
    for e in seen:
        j = int(np.argmin(e["ucb"]))
        assert len(e["X"]) > 1 and e["info"]["pool"] == len(e["X"])
        np.testing.assert_allclose(e["x"], e["X"][j])
        assert e["info"]["ucb"] == pytest.approx(float(e["ucb"].min()))
    assert sum(np.ptp(e["ucb"]) > 0 for e in seen) >= len(seen) // 2  # the GP discriminates
    assert sum(int(np.argmin(e["ucb"])) != 0 for e in seen) >= len(seen) // 2
    bo = res.completed[res.completed.origin == "bo"]
    assert bo.arch.tolist() == [e["arch"] for e in seen]


def _generation_errors(res, kw):
    """Mean error of each generation's candidates, in proposal order."""
    c = res.completed.sort_values("started")
    sizes = [kw["population_size"]] + [kw["n_mutation"] + kw["n_crossover"]] * kw["iterations"]
    out, i = [], 0
    for n in sizes:
        out.append(float(c.error.iloc[i:i + n].mean()))
        i += n
    assert i == len(c)
    return out


def _mcunet(benches, directory, bounds, seed):
    return benches["subnet"].run("mcunet_evolution", directory=directory, seed=seed,
                                 bounds=bounds, **NB05_EVOLUTION)


def _assert_population_error_falls(gens):
    assert gens[-1] < 0.9 * gens[0], f"generation mean errors {np.round(gens, 4)}"
    assert np.mean(gens[-2:]) < np.mean(gens[:2])


@pytest.mark.parametrize("seed", [0, 1])
def test_mcunet_evolution_lowers_population_error_when_error_is_bounded(tmp_path, benches,
                                                                        fast_trials, seed):
    b = benches["subnet"]
    res = _mcunet(benches, tmp_path / "m", b.bounds, seed)  # error bounded: 0.09
    _assert_population_error_falls(_generation_errors(res, NB05_EVOLUTION))


def test_mcunet_nb05_call_lowers_population_error(tmp_path, benches, fast_trials):
    """notebook 05 passes ``error: None`` (constraints on SRAM and flash only): the evolution
    must still rank parents by error among the feasible (it once ranked by resources only and
    bred ever smaller, less accurate subnets)."""
    res = _mcunet(benches, tmp_path / "m", NB05_BOUNDS, 0)
    _assert_population_error_falls(_generation_errors(res, NB05_EVOLUTION))
    assert res.best is not None and res.best["error"] == res.completed.error.min()

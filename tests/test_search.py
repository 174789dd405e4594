"""Tests for helpers.search: scalarisation, Pareto, hypervolume, trial store, resume, workers.

The search tests use a toy space (3 integer widths) and an arithmetic
"evaluate" (no training) so they run in seconds; the costly part is starting
Python + TensorFlow in the subprocesses (kill/resume, 2 workers).
"""
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import search as S
from helpers.search import oracles

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------------------
# toy space (module level so worker processes can import it)
# ---------------------------------------------------------------------------
class ToyArch:
    def __init__(self, widths):
        self.widths = tuple(int(w) for w in widths)

    def to_json(self):
        return json.dumps({"w": list(self.widths)})

    @classmethod
    def from_json(cls, s):
        return cls(json.loads(s)["w"])

    def key(self):
        return "-".join(map(str, self.widths))

    def mutate(self, rng, prob=None):
        w = list(self.widths)
        if prob is None:
            i = int(rng.integers(len(w)))
            w[i] = int(np.clip(w[i] + rng.choice([-2, -1, 1, 2]), 1, 16))
        else:
            for i in range(len(w)):
                if rng.random() < prob:
                    w[i] = int(rng.integers(1, 17))
        return ToyArch(w)

    def crossover(self, other, rng):
        m = rng.random(len(self.widths)) < 0.5
        return ToyArch(np.where(m, self.widths, other.widths))


class ToySpace:
    def random(self, rng):
        return ToyArch(rng.integers(1, 17, size=3))

    def from_json(self, s):
        return ToyArch.from_json(s)


def toy_resources(arch):
    w = np.array(arch.widths)
    return {"flash": int(np.sum(w * w) * 10), "sram": int(w.max() * 100)}


def toy_evaluate(arch, seed):
    if os.environ.get("TOY_DIE") == os.environ.get("KERASTUNER_TUNER_ID", "tuner0"):
        os._exit(3)  # a worker killed mid-trial (e.g. by the OOM killer)
    delay = float(os.environ.get("TOY_DELAY", "0"))
    log = os.environ.get("TOY_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{seed} {arch.key()} {os.getpid()}\n")
    if delay:
        time.sleep(delay)
    jitter = float(os.environ.get("TOY_JITTER", "0"))
    if jitter:  # timing that differs run to run (not seeded on purpose)
        time.sleep(jitter * int.from_bytes(os.urandom(2), "little") / 65535)
    w = np.array(arch.widths, dtype=float)
    noise = np.random.default_rng(seed).normal(0, 0.002)
    err = 0.05 + 1.0 / (1.0 + w.sum()) + noise
    r = toy_resources(arch)
    return {"error": err, **r, "curve": [err + 0.1, err]}


BOUNDS = {"error": 0.2, "flash": 3000, "sram": 1500}


def _run(directory, budget=30, seed=3, workers=1, algo="aging_evolution", **kw):
    common = dict(bounds=BOUNDS, budget=budget, seed=seed, directory=directory,
                  workers=workers, progress=False)
    if algo == "aging_evolution":
        kw.setdefault("population_size", 8)
        kw.setdefault("sample_size", 4)
        return S.aging_evolution(ToySpace(), toy_evaluate, toy_resources, **common, **kw)
    return S.random_search(ToySpace(), toy_evaluate, toy_resources, **common, **kw)


# ---------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------
def test_normalise_and_chebyshev_match_unas():
    n = S.normalise([0.09, 150_000, 10, 30e6], [0.18, 75_000, 75_000, 30e6])
    np.testing.assert_allclose(n, [0.5, 2.0, 10 / 75_000, 1.0])
    assert S.normalise([1.0], [0.01])[0] == 10.0  # capped at 10
    lam = np.array([0.5, 0.25, 1.0, 0.8])
    f = S.chebyshev_fitness(n, lam)
    assert f == pytest.approx(-max(0.5 / 0.5, 2.0 / 0.25, (10 / 75_000) / 1.0, 1.0 / 0.8))
    rng = np.random.default_rng(0)
    lams = S.random_lambdas(rng, 4)
    assert lams.shape == (4,) and np.all((lams >= 0) & (lams < 1))
    with pytest.raises(ValueError, match="bounds"):
        S.normalise([1], [0])


def test_pareto_front_minimisation():
    p = np.array([[1, 5], [2, 2], [3, 1], [3, 3], [2, 2], [0.5, 9], [np.nan, 0]])
    m = S.pareto_mask(p)
    assert m.tolist() == [True, True, True, False, True, True, False]
    assert S.pareto_front(p).tolist() == [5, 0, 1, 4, 2]
    # 3 objectives: brute force check on random points
    rng = np.random.default_rng(1)
    q = rng.random((60, 3))
    brute = [not any(np.all(q[j] <= q[i]) and np.any(q[j] < q[i]) for j in range(60)) for i in range(60)]
    assert S.pareto_mask(q).tolist() == brute


def _hv_inclusion_exclusion(p, ref):
    total = 0.0
    for r in range(1, len(p) + 1):
        for sub in itertools.combinations(range(len(p)), r):
            corner = np.max(p[list(sub)], axis=0)
            total += (-1) ** (r + 1) * np.prod(np.clip(ref - corner, 0, None))
    return total


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_exact(d):
    # known cases
    assert S.hypervolume([[0.5] * d], np.ones(d)) == pytest.approx(0.5 ** d)
    assert S.hypervolume([[2.0] * d], np.ones(d)) == 0.0
    if d == 2:
        assert S.hypervolume([[0, 0.5], [0.5, 0]], [1, 1]) == pytest.approx(0.75)
    rng = np.random.default_rng(d)
    for n in (1, 5, 9):
        p = rng.random((n, d)) * 1.1  # some points outside the reference box
        exact = _hv_inclusion_exclusion(np.minimum(p, 1.0), np.ones(d))
        assert S.hypervolume(p, np.ones(d)) == pytest.approx(exact, rel=1e-12, abs=1e-12)
    # larger set vs Monte Carlo (±3 sigma)
    p = rng.random((80, d))
    p = p / np.linalg.norm(p, axis=1, keepdims=True)  # points on a sphere: big front
    hv = S.hypervolume(p, np.ones(d))
    x = rng.random((100_000, d))
    dom = np.zeros(len(x), bool)
    for q in p:
        dom |= np.all(x >= q, axis=1)
    mc, se = dom.mean(), np.sqrt(dom.mean() * (1 - dom.mean()) / len(x))
    assert abs(hv - mc) < 4 * se
    hist = S.hypervolume_history(p, np.ones(d))
    assert np.all(np.diff(hist) >= -1e-12) and hist[-1] == pytest.approx(hv)


def test_trial_seed_is_stable():
    assert S.trial_seed(3, "07") == S.trial_seed(3, 7) != S.trial_seed(4, 7)


# ---------------------------------------------------------------------------
# searches
# ---------------------------------------------------------------------------
def test_aging_evolution_store_and_determinism(tmp_path):
    r1 = _run(tmp_path / "a", budget=30)
    r2 = _run(tmp_path / "b", budget=30)
    c1, c2 = r1.completed, r2.completed
    assert len(c1) == 30 and c1.trial_id.is_unique
    assert c1.arch.tolist() == c2.arch.tolist()  # same seed -> same proposals
    np.testing.assert_allclose(c1.error.to_numpy(float), c2.error.to_numpy(float))
    assert (c1.origin.iloc[:8] == "random").all() and (c1.origin.iloc[8:] == "mutation").all()
    # children are one mutation away from their parent
    by_id = dict(zip(c1.trial_id, c1.arch))
    for _, row in c1.iloc[8:].iterrows():
        a = np.array(json.loads(row.arch)["w"])
        b = np.array(json.loads(by_id[row.parent])["w"])
        assert np.sum(a != b) <= 1
    # rejected candidates were over a resource bound and never trained
    rej = r1.rejected
    assert len(rej) > 0
    assert ((rej.flash > BOUNDS["flash"]) | (rej.sram > BOUNDS["sram"])).all()
    assert (c1.flash <= BOUNDS["flash"]).all()
    # front / hypervolume / best
    assert set(r1.front.trial_id) <= set(c1[c1.feasible].trial_id)
    assert r1.best["error"] == pytest.approx(c1[c1.feasible].error.min())
    assert 0 < r1.hypervolume < 1 and len(r1.hv_history) == 30
    d = r1.to_dict()
    json.dumps(d)
    assert d["n_completed"] == 30 and "hypervolume" in r1.summary()
    assert c1["extra"].iloc[0]["curve"][1] == pytest.approx(c1.error.iloc[0])
    # resuming a finished search does nothing; a larger budget extends it
    r3 = _run(tmp_path / "a", budget=30)
    assert len(r3.completed) == 30
    with pytest.raises(ValueError, match="different settings"):
        _run(tmp_path / "a", budget=30, seed=4)
    r4 = _run(tmp_path / "a", budget=36)
    assert len(r4.completed) == 36 and r4.completed.arch.tolist()[:30] == c1.arch.tolist()


def test_random_search_same_store(tmp_path):
    r = _run(tmp_path / "r", budget=12, algo="random")
    assert len(r.completed) == 12 and (r.completed.origin == "random").all()
    assert r.algorithm == "random_search"
    assert S.load_search(tmp_path / "r").completed.arch.tolist() == r.completed.arch.tolist()


def test_mcunet_evolution_generations(tmp_path):
    r = S.mcunet_evolution(ToySpace(), toy_evaluate, toy_resources, bounds=BOUNDS,
                           population_size=6, n_mutation=3, n_crossover=3, iterations=2,
                           seed=1, directory=tmp_path / "m", progress=False)
    c = r.completed
    assert len(c) == 18
    assert c.origin.tolist() == ["random"] * 6 + (["mutation"] * 3 + ["crossover"] * 3) * 2


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="bounds"):
        S.aging_evolution(ToySpace(), toy_evaluate, bounds={}, directory=tmp_path, budget=3)
    with pytest.raises(ValueError, match="workers"):
        _run(tmp_path / "x", workers=0)
    with pytest.raises(ValueError, match="algorithm"):
        S.run_search("nope", ToySpace(), toy_evaluate, bounds=BOUNDS, budget=3, directory=tmp_path / "y")


def _completed_on_disk(d):
    n = 0
    for name in os.listdir(d) if os.path.isdir(d) else []:
        p = os.path.join(d, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(p):
            try:
                with open(p) as f:
                    n += json.load(f)["status"] == "COMPLETED"
            except (json.JSONDecodeError, OSError):
                pass
    return n


def _kill_midway(directory, log, kill_after, budget=30, delay=0.12, seed=3):
    code = (f"import sys; sys.path[:0] = [{ROOT!r}, {HERE!r}]; import test_search as T; "
            f"T._run({str(directory)!r}, budget={budget}, seed={seed})")
    env = dict(os.environ, TOY_DELAY=str(delay), TOY_LOG=str(log), TF_CPP_MIN_LOG_LEVEL="3")
    p = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    t0 = time.monotonic()
    while _completed_on_disk(directory) < kill_after:
        assert p.poll() is None, p.stderr.read().decode()[-2000:]
        assert time.monotonic() - t0 < 120, "search subprocess too slow"
        time.sleep(0.02)
    time.sleep(delay * 0.37)  # land inside a trial
    p.send_signal(signal.SIGKILL)
    p.wait()
    return _completed_on_disk(directory)


def _check_resumed(directory, log, ref, budget, kills):
    res = S.load_search(directory)
    c = res.completed
    assert len(c) == budget and c.trial_id.is_unique
    assert (res.trials.status == "COMPLETED").sum() == budget
    # identical to the uninterrupted run: same proposals, same results, same rejects
    assert c.arch.tolist() == ref.completed.arch.tolist()
    np.testing.assert_allclose(c.error.to_numpy(float), ref.completed.error.to_numpy(float))
    assert res.rejected.arch.tolist() == ref.rejected.arch.tolist()
    # every completed trial was evaluated once, except at most one trial per kill
    seeds = [int(line.split()[0]) for line in open(log)]
    assert sorted(set(seeds)) == sorted(int(s) for s in c.seed)
    assert len(seeds) - len(set(seeds)) <= kills


def test_kill_and_resume(tmp_path, monkeypatch):
    ref = _run(tmp_path / "ref", budget=30)
    d, log = tmp_path / "killed", tmp_path / "evals.log"
    done = _kill_midway(d, log, kill_after=10)
    assert 10 <= done < 30
    monkeypatch.setenv("TOY_LOG", str(log))
    _run(d, budget=30)
    _check_resumed(d, log, ref, 30, kills=1)


class _SimulatedKill(BaseException):
    pass


@pytest.mark.parametrize("window", ["RUNNING", "COMPLETED"])
def test_kill_between_trial_file_and_oracle_file(tmp_path, monkeypatch, window):
    """The two gaps in keras-tuner's own saving, hit deterministically.

    RUNNING: create_trial() wrote trial_<id>/trial.json but not oracle.json
    (so not the advanced RNG state).  COMPLETED: end_trial() wrote the
    COMPLETED trial.json but oracle.json still lists the trial as ongoing,
    which plain keras-tuner would re-run.
    """
    ref = _run(tmp_path / "ref", budget=20)
    Oracle = oracles.AgingEvolutionOracle
    state = {"armed": False}
    orig_save_trial, orig_save = Oracle._save_trial, Oracle.save

    def save_trial(self, trial):
        orig_save_trial(self, trial)
        if trial.trial_id == "13" and trial.status == window:
            state["armed"] = True

    def save(self):
        if state["armed"]:
            raise _SimulatedKill()
        orig_save(self)

    monkeypatch.setattr(Oracle, "_save_trial", save_trial)
    monkeypatch.setattr(Oracle, "save", save)
    log = tmp_path / "evals.log"
    monkeypatch.setenv("TOY_LOG", str(log))
    d = tmp_path / "k"
    with pytest.raises(_SimulatedKill):
        _run(d, budget=20)
    monkeypatch.setattr(Oracle, "_save_trial", orig_save_trial)
    monkeypatch.setattr(Oracle, "save", orig_save)
    _run(d, budget=20)
    _check_resumed(d, log, ref, 20, kills=0)


@pytest.mark.slow
def test_kill_and_resume_many_times(tmp_path, monkeypatch):
    ref = _run(tmp_path / "ref", budget=40)
    d, log = tmp_path / "killed", tmp_path / "evals.log"
    for k in (3, 9, 17, 26, 33):
        _kill_midway(d, log, kill_after=k, budget=40, delay=0.05)
    monkeypatch.setenv("TOY_LOG", str(log))
    _run(d, budget=40)
    _check_resumed(d, log, ref, 40, kills=5)


def test_two_workers_loopback(tmp_path, monkeypatch):
    log = tmp_path / "evals.log"
    monkeypatch.setenv("TOY_LOG", str(log))
    monkeypatch.setenv("TOY_DELAY", "0.15")
    r = _run(tmp_path / "w", budget=20, workers=2)
    c = r.completed
    assert len(c) == 20 and c.trial_id.is_unique and len(r.trials[r.trials.status != "REJECTED"]) == 20
    seeds = [int(line.split()[0]) for line in open(log)]
    assert len(seeds) == 20 and sorted(seeds) == sorted(int(s) for s in c.seed)  # each once
    assert set(c.worker) == {"worker0", "worker1"}
    assert len({line.split()[2] for line in open(log)}) == 2  # two processes evaluated


def _proposals(r):
    c = r.trials[r.trials.status != "REJECTED"].sort_values("trial_id")
    return list(zip(c.trial_id, c.arch, c.origin, c.parent))


def test_two_workers_deterministic_with_lag(tmp_path, monkeypatch):
    # the same seed and lag propose the same candidates whatever the workers' timing:
    # a 2-worker run with random per-trial delays equals a sequential run with lag 2
    monkeypatch.setenv("TOY_JITTER", "0.3")
    par = _run(tmp_path / "par", budget=20, workers=2)              # lag defaults to workers
    seq = _run(tmp_path / "seq", budget=20, workers=1, lag=2)
    assert _proposals(par) == _proposals(seq)
    assert sum(o == "mutation" for _, _, o, _ in _proposals(par)) == 12
    lag1 = _run(tmp_path / "lag1", budget=20, workers=1)            # plain sequential AE differs
    assert _proposals(lag1) != _proposals(seq)
    with open(tmp_path / "par" / "search_config.json") as f:
        assert json.load(f)["algo_kwargs"]["lag"] == 2
    # resuming with another worker count keeps the stored lag
    more = _run(tmp_path / "par", budget=22, workers=1)
    assert _proposals(more)[:20] == _proposals(par) and len(more.completed) == 22


def test_a_dead_worker_stops_the_search_with_its_log(tmp_path, monkeypatch):
    # one worker dies while the other is alive: the chief must not wait for its trial forever
    monkeypatch.setenv("TOY_DIE", "worker1")
    monkeypatch.setenv("TOY_DELAY", "0.2")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"search workers failed \(\[\(1, 3\)\]\).*resumed"):
        S.run_search("aging_evolution", ToySpace(), toy_evaluate, toy_resources, bounds=BOUNDS,
                     budget=40, seed=3, directory=tmp_path / "w", workers=2, progress=False,
                     worker_timeout_s=120, population_size=8, sample_size=4,
                     max_rejections=10000)
    assert time.monotonic() - t0 < 60
    monkeypatch.delenv("TOY_DIE")
    r = _run(tmp_path / "w", budget=40, workers=2)       # and it resumes to the end
    assert len(r.completed) == 40

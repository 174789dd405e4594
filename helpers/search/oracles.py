"""keras-tuner oracles that propose architectures: the search algorithms themselves.

Taught in 02-aging-evolution (:class:`ArchOracle`, :class:`AgingEvolutionOracle`,
:class:`RandomSearchOracle`), 03-sparse-pruning (:class:`BayesianOracle`, SpArSe's
multi-objective Bayesian optimisation with random scalarisations) and 05-once-for-all
(:class:`MCUNetEvolutionOracle`).  Each is a ``keras_tuner.Oracle``: keras-tuner keeps
the trial bookkeeping and the gRPC chief/worker protocol, these classes decide what to
try next (``propose``) and reject over-bound candidates before training.

Heavy: importing this module imports keras-tuner (and so TensorFlow); the drivers in
:mod:`helpers.search.drivers` import it only when a search starts.
May import: :mod:`helpers.search.objectives`, :mod:`helpers.search.store`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from typing import Any, Sequence

import keras_tuner as kt
import numpy as np
from keras_tuner.engine.hyperparameters import Fixed
from keras_tuner.engine.trial import Trial, TrialStatus as TS

from helpers.search.objectives import DEFAULT_CAP, chebyshev_fitness, normalise, random_lambdas
from helpers.search.store import (_HP_NAMES, _arch_key, _atomic_write_json, _bounded,
                                  _check_objectives, _encode_arch, _feasible, _json_default,
                                  _violations)


def gp_embedding(hyperparameters, values: dict) -> list[float]:
    """The [0, 1] vector keras-tuner's Gaussian process sees for one candidate.

    One entry per non-fixed hyperparameter (``value_to_prob``), inactive conditional slots at
    their default, exactly as keras-tuner's ``BayesianOptimizationOracle`` vectorises trials.
    Taught in 03-sparse-pruning (one proposal redone by hand).
    """
    return [hp.value_to_prob(values[hp.name] if hp.name in values else hp.default)
            for hp in hyperparameters.space if not isinstance(hp, Fixed)]


class ArchOracle(kt.Oracle):
    """keras-tuner Oracle proposing architectures; subclass and implement :meth:`propose`.

    Every trial carries fixed hyperparameters ``arch`` (architecture JSON),
    ``arch_kind``, ``origin`` (random / mutation / crossover / ...),
    ``parent`` (trial id(s)), ``resources`` (pre-training resource dict,
    JSON) and, once finished, ``result`` (JSON: exact objectives, extra
    info, seed, wall time, worker).  keras-tuner's ``max_trials`` is the
    budget of *trained* candidates; candidates whose pre-training
    resources exceed a bound are rejected inside :meth:`populate_space`,
    kept in ``oracle.json`` (``rejected``) and cost neither training nor
    budget.

    Subclass contract: implement ``propose(self) -> (arch, origin, parent)``
    using only ``self.rng`` for randomness; helpers available:
    :meth:`completed` (finished trials in completion order, with parsed
    results), :meth:`fitness` (μNAS Chebyshev fitness with fresh λ),
    ``self.space``, ``self.decode(text)``.  Extra persistent state: override
    ``extra_state()`` / ``set_extra_state(d)`` (JSON-able).  To wrap another
    keras-tuner oracle (e.g. ``BayesianOptimizationOracle`` for SpArSe),
    subclass both and call its ``populate_space`` from ``propose``.
    Taught in 02-aging-evolution.
    """

    algorithm = "base"

    def __init__(self, space=None, *, objectives, bounds, resources=None, budget=100, seed=0,
                 cap=DEFAULT_CAP, arch_from_json=None, max_rejections=10000,
                 max_consecutive_failed_trials=3, **kwargs):
        hps = kt.HyperParameters()
        for n in _HP_NAMES:
            hps.Fixed(n, "")
        if not isinstance(budget, (int, np.integer)) or budget < 1:
            raise ValueError(f"budget must be an integer >= 1; got {budget!r}")
        super().__init__(objective=kt.Objective("score", "min"), max_trials=int(budget),
                         hyperparameters=hps, tune_new_entries=False, allow_new_entries=True,
                         seed=int(seed) + 1, max_retries_per_trial=0,
                         max_consecutive_failed_trials=max_consecutive_failed_trials, **kwargs)
        self.space = space
        self.objectives, self.bounds = _check_objectives(objectives, bounds)
        self.bounded_names, self.bound_values = _bounded(self.objectives, self.bounds)
        self.resources_fn = resources
        self.search_seed = int(seed)
        self.cap = float(cap)
        self.arch_from_json = arch_from_json
        self.max_rejections = int(max_rejections)
        self.rng = np.random.default_rng(int(seed))
        self.rejected: list[dict] = []
        self.stop_reason: str | None = None
        #: set when ``max_consecutive_failed_trials`` trials in a row failed (not persisted:
        #: a resumed search tries again, and stops again if the cause is still there)
        self.failure: dict | None = None
        self.verbose = 0  # keras-tuner's printed Display off; we use tqdm
        self.progress_callback = None  # set by the driver (not persisted)
        self.stop_when = None  # set by the driver (not persisted): () -> reason to stop, or None
        self.halted: str | None = None
        self._parsed: dict[str, dict] = {}

    # ---- architecture coding
    def decode(self, text, kind="str"):
        obj = json.loads(text) if kind == "dict" else text
        if self.arch_from_json is not None:
            return self.arch_from_json(obj)
        if self.space is not None and hasattr(self.space, "from_json"):
            return self.space.from_json(obj)
        raise ValueError("cannot decode architectures: pass arch_from_json=MyArch.from_json "
                         "or give the space a from_json method")

    def trial_arch(self, trial):
        v = trial.hyperparameters.values
        return self.decode(v["arch"], v.get("arch_kind") or "str")

    # ---- the proposal hook
    def propose(self):
        """Return ``(arch, origin, parent)``; ``parent`` a trial id string or ""."""
        raise NotImplementedError

    def extra_state(self) -> dict:
        return {}

    def set_extra_state(self, state: dict) -> None:
        pass

    # ---- results
    def result_of(self, trial) -> dict | None:
        tid = trial.trial_id
        if tid in self._parsed:
            return self._parsed[tid]
        txt = trial.hyperparameters.values.get("result") or ""
        if not txt:
            return None
        r = json.loads(txt)
        if trial.status in (TS.COMPLETED, TS.FAILED):
            self._parsed[tid] = r
        return r

    lag: int | None = None  # set by the searches that wait for their predecessors (see _eligible)
    wait_from: int = 0      # trials before this one are proposed without waiting (initial design)

    def _eligible(self, k):
        """Trials the proposal of trial number ``k`` may see: those started ``lag`` or more before it
        (every started one when ``lag`` is None)."""
        if self.lag is None:
            return list(self.start_order)
        return self.start_order[:max(0, k - self.lag + 1)]

    def _waiting(self, k):
        finished = (TS.COMPLETED, TS.FAILED)
        return any(tid not in self.trials or self.trials[tid].status not in finished
                   for tid in self._eligible(k))

    def visible(self):
        """Completed trials visible to the next proposal, in start order, as (trial, result) pairs.

        With ``lag`` L the proposal of trial k sees exactly the trials 0 .. k-L (the oracle
        answers IDLE until they have finished), so a search with L workers proposes the same
        candidates on every run whatever the workers' timing.
        """
        out = []
        for tid in self._eligible(len(self.start_order)):
            t = self.trials.get(tid)
            if t is not None and t.status == TS.COMPLETED:
                r = self.result_of(t)
                if r is not None:
                    out.append((t, r))
        return out

    @staticmethod
    def _check_lag(lag):
        if lag is not None and (not isinstance(lag, (int, np.integer)) or lag < 1):
            raise ValueError(f"lag must be an integer >= 1; got {lag!r}")
        return None if lag is None else int(lag)

    def completed(self) -> list[tuple[Any, dict]]:
        """Finished (COMPLETED) trials in completion order, as (trial, result) pairs."""
        out = []
        for tid in self.end_order:
            t = self.trials.get(tid)
            if t is None or t.status != TS.COMPLETED:
                continue
            r = self.result_of(t)
            if r is not None:
                out.append((t, r))
        return out

    def normalised(self, result: dict) -> np.ndarray:
        o = result["objectives"]
        return normalise([o[n] for n in self.bounded_names], self.bound_values, self.cap)

    def fitness(self, results: Sequence[dict], lambdas=None) -> np.ndarray:
        """μNAS fitness (maximise) of results with fresh λ from ``self.rng`` unless given."""
        if lambdas is None:
            lambdas = random_lambdas(self.rng, len(self.bounded_names))
        n = np.array([self.normalised(r) for r in results]).reshape(len(results), -1)
        return chebyshev_fitness(n, lambdas)

    # ---- keras-tuner hooks
    def populate_space(self, trial_id):
        if self.stop_reason or self.failure or self.halted:
            return {"status": TS.STOPPED}
        if self.stop_when is not None:
            why = self.stop_when()
            if why:
                self.halted = str(why)
                return {"status": TS.STOPPED}
        k = len(self.start_order)
        if self.lag is not None and k >= self.wait_from and self._waiting(k):
            time.sleep(0.02)  # keras-tuner re-asks at once on IDLE
            return {"status": TS.IDLE}
        for _ in range(self.max_rejections + 1):
            arch, origin, parent = self.propose()
            text, kind = _encode_arch(arch)
            res = {}
            if self.resources_fn is not None:
                res = json.loads(json.dumps(dict(self.resources_fn(arch)), default=_json_default))
            viol = _violations({k: v for k, v in res.items() if k in self.bounds}, self.bounds)
            if not viol:
                return {"status": TS.RUNNING,
                        "values": {"arch": text, "arch_kind": kind, "origin": origin,
                                   "parent": str(parent or ""),
                                   "resources": json.dumps(res, default=_json_default),
                                   "result": ""}}
            self.rejected.append({"arch": text, "arch_kind": kind, "key": _arch_key(arch, text),
                                  "origin": origin, "parent": str(parent or ""),
                                  "resources": res, "violations": viol,
                                  "after_trials": len(self.start_order)})
        self.stop_reason = (f"{self.max_rejections} candidates in a row exceeded a resource "
                            f"bound (last: {', '.join(viol)}); loosen the bounds or the space")
        warnings.warn(self.stop_reason)
        self.save()
        return {"status": TS.STOPPED}

    def _check_consecutive_failures(self):
        # keras-tuner raises here while it holds the oracle lock, and its `synchronized` has no
        # try/finally: with several workers every later call then waits for the lock forever.
        # Instead the search stops (no new trial) and the driver raises the real error.
        n = 0
        for tid in reversed(self.end_order):
            if self.trials[tid].status != TS.FAILED:
                break
            n += 1
        if n >= self.max_consecutive_failed_trials:
            last = self.trials[self.end_order[-1]]
            res = self.result_of(last) or {}
            self.failure = {"count": n, "trial_id": last.trial_id,
                            "message": res.get("traceback") or last.message or res.get("error", "")}

    @kt.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        # keras-tuner saves oracle.json *before* dropping the trial from
        # `ongoing_trials`; save again so a restart never re-runs it.
        self.save()
        if self.progress_callback is not None:
            try:
                self.progress_callback(self)
            except Exception as e:  # progress display must never kill a search
                warnings.warn(f"progress display failed: {e}")

    def get_state(self):
        s = super().get_state()
        s["tinynas"] = {"algorithm": self.algorithm, "rng": self.rng.bit_generator.state,
                        "rejected": self.rejected, "stop_reason": self.stop_reason,
                        "extra": self.extra_state()}
        return s

    def set_state(self, state):
        super().set_state(state)
        t = state.get("tinynas", {})
        if "rng" in t:
            self.rng.bit_generator.state = t["rng"]
        self.rejected = list(t.get("rejected", []))
        self.stop_reason = t.get("stop_reason")
        self.set_extra_state(t.get("extra", {}))

    def save(self):
        _atomic_write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        _atomic_write_json(path, trial.get_state())

    def reload(self):
        super().reload()
        # 1. A trial file written by create_trial() just before a kill, whose
        #    oracle.json (and RNG state) was not saved yet: drop it; the
        #    restored RNG proposes the same architecture again.
        for tid in [t for t in self.trials if t not in self.start_order]:
            shutil.rmtree(self._get_trial_dir(tid), ignore_errors=True)
            del self.trials[tid]
        # 2. keras-tuner sends every trial listed as ongoing back for retry;
        #    a trial whose own file already says COMPLETED/FAILED finished
        #    (killed between its trial.json and oracle.json writes): keep it.
        keep = []
        for tid in self._retry_queue:
            st = self.trials[tid].status
            if st in (TS.COMPLETED, TS.FAILED):
                if tid not in self.end_order:
                    self.end_order.append(tid)
            elif tid not in keep:
                keep.append(tid)
        # 3. anything started, unfinished and not queued is queued (re-run).
        for tid in self.start_order:
            if tid in self.trials and self.trials[tid].status not in (TS.COMPLETED, TS.FAILED) and tid not in keep:
                keep.append(tid)
        # keras-tuner pops from the end: reverse so the oldest is re-run first
        self._retry_queue = list(reversed(keep))
        self._parsed = {}

class AgingEvolutionOracle(ArchOracle):
    """μNAS / Real et al. aging evolution with random Chebyshev scalarisation.

    The first ``population_size`` trained candidates are random; then each
    proposal samples ``sample_size`` members of the population (the last
    ``population_size`` completed trials, oldest dropped first) uniformly
    *with replacement* (``np.random.choice`` in μNAS), picks the one with
    the best fitness under fresh λ, and mutates it.  A rejected (over a
    resource bound) child triggers a new selection.  Taught in
    02-aging-evolution.
    """

    algorithm = "aging_evolution"

    def __init__(self, space=None, *, population_size=100, sample_size=25, lag=1, **kw):
        super().__init__(space, **kw)
        if population_size < 1 or sample_size < 1:
            raise ValueError(f"population_size and sample_size must be >= 1; got "
                             f"{population_size}, {sample_size}")
        if lag is None:
            raise ValueError("lag must be an integer >= 1; got None")
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.lag = self._check_lag(lag)
        self.wait_from = self.population_size  # the random initial population never waits

    def population(self):
        """The last ``population_size`` completed trials visible to the next proposal
        (:meth:`visible`: trials 0 .. k-lag for trial k), in start order."""
        return self.visible()[-self.population_size:]

    def propose(self):
        if len(self.start_order) < self.population_size:
            return self.space.random(self.rng), "random", ""
        pop = self.population()
        if not pop:  # nothing visible has completed (e.g. all failed): keep exploring
            return self.space.random(self.rng), "random", ""
        pick = self.rng.integers(0, len(pop), size=self.sample_size)
        fit = self.fitness([pop[i][1] for i in pick])
        parent_trial = pop[int(pick[int(np.argmax(fit))])][0]
        parent_arch = self.trial_arch(parent_trial)
        if hasattr(self.space, "mutate"):  # e.g. ArchSpace: mutate within its bounds
            child = self.space.mutate(parent_arch, self.rng)
        else:
            child = parent_arch.mutate(self.rng)
        return child, "mutation", parent_trial.trial_id

class RandomSearchOracle(ArchOracle):
    """Random search baseline: every candidate is ``space.random(rng)``.
    Taught in 02-aging-evolution.
    """

    algorithm = "random_search"

    def propose(self):
        return self.space.random(self.rng), "random", ""

class MCUNetEvolutionOracle(ArchOracle):
    """MCUNet / TinyNAS stage-2 evolution (generational, elitist).

    Generation 0: ``population_size`` random candidates.  Each later
    generation: the best ``parent_ratio`` of everything evaluated so far
    (feasible first, then the lowest first objective: MCUNet maximises accuracy under
    the SRAM and flash constraints, so the error ranks even when it has no bound; ties by
    the max normalised bounded objective, :meth:`rank_key`) are parents; ``n_mutation`` children by
    ``parent.mutate(rng, prob)`` and ``n_crossover`` children by
    ``a.crossover(b, rng)``.  A generation is proposed only once the
    previous one has finished (workers get IDLE meanwhile), so the
    iteration count is ``budget / (n_mutation + n_crossover)`` after
    generation 0.  Taught in 05-once-for-all.
    """

    algorithm = "mcunet_evolution"

    def __init__(self, space=None, *, population_size=100, n_mutation=50, n_crossover=50,
                 mutate_prob=0.1, parent_ratio=0.25, **kw):
        super().__init__(space, **kw)
        self.population_size = int(population_size)
        self.n_mutation = int(n_mutation)
        self.n_crossover = int(n_crossover)
        self.mutate_prob = float(mutate_prob)
        self.parent_ratio = float(parent_ratio)
        if self.population_size < 1 or self.n_mutation + self.n_crossover < 1:
            raise ValueError("population_size and n_mutation + n_crossover must be >= 1")

    def _generation_size(self, g):
        return self.population_size if g == 0 else self.n_mutation + self.n_crossover

    def _generation_of(self, n):
        g, start = 0, 0
        while n >= start + self._generation_size(g):
            start += self._generation_size(g)
            g += 1
        return g, start

    def rank_key(self, result):
        """Parent ranking, lower is better: feasible first, then the first objective (the
        error), then the largest normalised bounded objective."""
        o = result["objectives"]
        nv = self.normalised(result)
        return (not _feasible(o, self.bounds), float(o[self.objectives[0]]),
                float(np.max(nv)) if len(nv) else 0.0)

    def propose(self):
        n = len(self.start_order)
        g, start = self._generation_of(n)
        if g == 0:
            return self.space.random(self.rng), "random", ""
        done = self.completed()
        finished = {t.trial_id for t in self.trials.values() if t.status in (TS.COMPLETED, TS.FAILED)}
        if any(tid not in finished for tid in self.start_order[:start]):
            return None  # previous generation still running -> IDLE
        ranked = sorted(done, key=lambda tr: self.rank_key(tr[1]))
        parents = ranked[:max(1, int(round(self.parent_ratio * self.population_size)))]
        k = n - start
        if k < self.n_mutation:
            t = parents[int(self.rng.integers(len(parents)))][0]
            return self.trial_arch(t).mutate(self.rng, self.mutate_prob), "mutation", t.trial_id
        i, j = self.rng.choice(len(parents), size=2, replace=len(parents) < 2)
        a, b = parents[int(i)][0], parents[int(j)][0]
        child = self.trial_arch(a).crossover(self.trial_arch(b), self.rng)
        return child, "crossover", f"{a.trial_id},{b.trial_id}"

    def populate_space(self, trial_id):
        if self.stop_reason or self.failure:
            return {"status": TS.STOPPED}
        n = len(self.start_order)
        g, start = self._generation_of(n)
        if g > 0:
            finished = {t.trial_id for t in self.trials.values()
                        if t.status in (TS.COMPLETED, TS.FAILED)}
            if any(tid not in finished for tid in self.start_order[:start]):
                time.sleep(0.02)  # keras-tuner re-asks at once on IDLE
                return {"status": TS.IDLE}
        return super().populate_space(trial_id)



class BayesianOracle(ArchOracle):
    """SpArSe multi-objective Bayesian optimisation with random scalarisations.

    The space must give the fixed-length encoding: ``space.hyperparameters()``
    (keras-tuner ``HyperParameters``, conditional slots allowed),
    ``space.to_values(arch)`` and ``space.from_values(values)``
    (:class:`helpers.methods.sparse.SparseSpace` does).

    * The first ``num_initial_points`` trained candidates are
      ``space.random(rng)`` (the same initial design as aging evolution's
      population).
    * Each later proposal draws fresh weights λ uniform on the simplex
      (Paria et al. 2019, as SpArSe) and scalarises every completed
      trial: ``score = max_i λ_i · min(f_i / bound_i, cap)``.  A keras-tuner
      ``BayesianOptimizationOracle`` is filled with those trials
      (``trial.score``) and fits its Gaussian process (Matérn 5/2,
      normalised y) on its [0, 1] embedding of the hyperparameters.
    * ``acquisition="pool"`` (default): keras-tuner's UCB ``μ − β σ`` is
      minimised over a pool of ``pool_size`` candidates - a share
      ``pool_morphisms`` (default half) 1-2 morphisms of the best completed
      candidates under this λ, the rest random (SpArSe morphs only: 1.0) -
      that are new and pass the pre-training resource bounds, so no
      proposal is wasted on a rejected candidate.  A pick that is a morphism
      names its elite as the trial's ``parent`` (network morphism: an
      evaluator may start it from that trial's weights).  ``"lbfgs"``:
      keras-tuner's own ``populate_space`` (L-BFGS-B from 50 random
      starts in the relaxed box, rounded back); rejected candidates then
      enter the GP with the error at the cap so it learns the infeasible
      region.
    * ``lag`` L (the driver's default: the number of workers): the proposal
      of trial k sees exactly the trials 0 .. k-L, waiting for them, so
      several workers give the same search on every run; ``None`` (stores
      made before it existed): whatever has completed.
    * The λ of every proposal is kept (``lambda_history``, persisted in
      ``oracle.json``).  The GP is refitted from the trials at every
      proposal, so only the RNG needs persisting: resume is exact.

    Taught in 03-sparse-pruning.
    """

    algorithm = "bayesian_optimization"

    def __init__(self, space=None, *, num_initial_points=10, beta=2.6, alpha=1e-4,
                 acquisition="pool", pool_size=256, lag=None, pool_morphisms=0.5, **kw):
        super().__init__(space, **kw)
        self.lag = self._check_lag(lag)
        if acquisition not in ("pool", "lbfgs"):
            raise ValueError(f"acquisition must be 'pool' or 'lbfgs'; got {acquisition!r}")
        if int(num_initial_points) < 1 or int(pool_size) < 1:
            raise ValueError(f"num_initial_points and pool_size must be >= 1; got "
                             f"{num_initial_points}, {pool_size}")
        if space is not None and not all(hasattr(space, m) for m in
                                          ("hyperparameters", "to_values", "from_values")):
            raise ValueError("bayesian_optimization needs a space with hyperparameters(), "
                             "to_values(arch) and from_values(values) (e.g. helpers.methods.sparse.SparseSpace)")
        self.num_initial_points = int(num_initial_points)
        self.wait_from = self.num_initial_points  # the random initial design never waits
        self.beta = float(beta)
        self.alpha = float(alpha)
        self.acquisition = acquisition
        self.pool_size = int(pool_size)
        if not 0.0 <= float(pool_morphisms) <= 1.0:
            raise ValueError(f"pool_morphisms must be in [0, 1]; got {pool_morphisms!r}")
        self.pool_morphisms = float(pool_morphisms)
        self.lambda_history: list[dict] = []
        self._hps = None

    def extra_state(self):
        return {"lambda_history": self.lambda_history}

    def set_extra_state(self, state):
        self.lambda_history = list(state.get("lambda_history", []))

    # ---- helpers
    def scalarise(self, result, lambdas) -> float:
        return float(np.max(self.normalised(result) * np.asarray(lambdas)))

    def _inner_oracle(self):
        if self._hps is None:
            self._hps = self.space.hyperparameters()
        inner = kt.oracles.BayesianOptimizationOracle(
            objective=kt.Objective("score", "min"), max_trials=10 ** 9, num_initial_points=1,
            alpha=self.alpha, beta=self.beta, seed=int(self.rng.integers(2 ** 31 - 1)),
            hyperparameters=self._hps.copy(), tune_new_entries=False, allow_new_entries=False)
        inner._random_state = np.random.RandomState(int(self.rng.integers(2 ** 31 - 1)))
        return inner

    def _vector(self, inner, values):
        # space.to_values gives exactly the active values; inactive -> default,
        # as keras-tuner's _vectorize_trials does
        return gp_embedding(inner.hyperparameters, values)

    def _add(self, inner, tid, values, score):
        import copy

        hps = copy.copy(inner.hyperparameters)  # HyperParameters.copy() re-deserialises (slow)
        hps.values = dict(values)
        t = Trial(hps, trial_id=str(tid), status=TS.COMPLETED)
        t.score = float(score)
        inner.trials[str(tid)] = t

    def _tried_keys(self):
        keys = set()
        for t in self.trials.values():
            keys.add(_arch_key(self.trial_arch(t), t.hyperparameters.values["arch"]))
        keys.update(r["key"] for r in self.rejected)
        return keys

    # ---- proposal
    def propose(self):
        # one BLAS thread: the GP's matrices are a few hundred rows, where more threads only
        # spin (measured: 2.5 s vs 14 s per proposal at 250 trials on a busy 2-core machine)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return self._propose()

    def _propose(self):
        done = self.completed() if self.lag is None else self.visible()
        if len(self.start_order) < self.num_initial_points or len(done) < 2:
            return self.space.random(self.rng), "random", ""
        lam = self.rng.dirichlet(np.ones(len(self.bounded_names)))
        inner = self._inner_oracle()
        scored = []
        for t, r in done:
            a = self.trial_arch(t)
            s = self.scalarise(r, lam)
            scored.append((s, t, a))
            self._add(inner, t.trial_id, self.space.to_values(a), s)
        if self.acquisition == "lbfgs":
            for i, rej in enumerate(self.rejected[-200:]):
                res = rej["resources"]
                n = np.array([self.cap if k == self.bounded_names[0] else
                              min(res.get(k, self.cap * b) / b, self.cap)
                              for k, b in zip(self.bounded_names, self.bound_values)])
                a = self.decode(rej["arch"], rej.get("arch_kind") or "str")
                self._add(inner, f"rej{i}", self.space.to_values(a), float(np.max(n * lam)))
            values = inner.populate_space(f"bo{len(self.start_order)}")["values"]
            cand, parent = self.space.from_values(values), ""
            info = {"ucb": None, "pool": 0}
        else:
            cand, parent, info = self._pool_argmin(inner, scored, lam)
        self.lambda_history.append({"after_trials": len(self.start_order),
                                    "lambdas": [float(x) for x in lam],
                                    "objectives": list(self.bounded_names), **info})
        return cand, "bo", parent

    def _pool_argmin(self, inner, scored, lam):
        x, y = inner._vectorize_trials()
        x = np.nan_to_num(x, posinf=0, neginf=0)
        y = np.nan_to_num(y, posinf=0, neginf=0)
        with warnings.catch_warnings():  # sklearn's length-scale ConvergenceWarning on few points
            warnings.simplefilter("ignore")
            inner.gpr.fit(x, y)
        tried = self._tried_keys()
        scored.sort(key=lambda z: z[0])
        elite = [(a, t.trial_id) for _, t, a in scored[:5]]
        pool, keys, parents = [], set(), []
        n_local = int(self.pool_size * self.pool_morphisms)
        for i in range(self.pool_size * 4):
            if len(pool) >= self.pool_size:
                break
            if i < n_local * 2 and elite:
                mut = (lambda a: self.space.mutate(a, self.rng)) if hasattr(self.space, "mutate") \
                    else (lambda a: a.mutate(self.rng))
                base, parent = elite[int(self.rng.integers(len(elite)))]
                c = mut(base)
                if self.rng.random() < 0.5:
                    c = mut(c)
            else:
                c, parent = self.space.random(self.rng), ""
            text, _ = _encode_arch(c)
            k = _arch_key(c, text)
            if k in tried or k in keys:
                continue
            if self.resources_fn is not None:
                res = json.loads(json.dumps(dict(self.resources_fn(c)), default=_json_default))
                if _violations({kk: v for kk, v in res.items() if kk in self.bounds}, self.bounds):
                    continue
            keys.add(k)
            pool.append(c)
            parents.append(parent)
        if not pool:
            return self.space.random(self.rng), "", {"ucb": None, "pool": 0}
        X = np.array([self._vector(inner, self.space.to_values(c)) for c in pool])
        mu, sd = inner.gpr.predict(X, return_std=True)
        ucb = np.asarray(mu).ravel() - self.beta * np.asarray(sd).ravel()
        j = int(np.argmin(ucb))
        return pool[j], parents[j], {"ucb": float(ucb[j]), "mu": float(np.ravel(mu)[j]),
                         "sigma": float(np.ravel(sd)[j]), "pool": len(pool)}



ORACLES = {"aging_evolution": AgingEvolutionOracle, "random_search": RandomSearchOracle,
           "mcunet_evolution": MCUNetEvolutionOracle, "bayesian_optimization": BayesianOracle}


def make_oracle(algorithm, space, objectives, bounds, resources, budget, seed, cap,
                arch_from_json, algo_kwargs):
    """The oracle of ``algorithm`` (a key of :data:`ORACLES`). Taught in 02-aging-evolution."""
    if algorithm not in ORACLES:
        raise ValueError(f"algorithm must be one of {sorted(ORACLES)}; got {algorithm!r}")
    return ORACLES[algorithm](space, objectives=objectives, bounds=bounds, resources=resources,
                              budget=budget, seed=seed, cap=cap, arch_from_json=arch_from_json,
                              **algo_kwargs)

"""The search drivers: one call runs (or resumes) a whole search on the trial store.

Taught in 02-aging-evolution (:func:`aging_evolution`, :func:`random_search`,
:func:`run_search`), 03-sparse-pruning (:func:`bayesian_optimization`) and 05-once-for-all
(:func:`mcunet_evolution`).  Importing this module is light; keras-tuner (TensorFlow) is
imported when a search starts.  May import: :mod:`helpers.search.objectives`,
:mod:`helpers.search.store`; lazily the heavy :mod:`~helpers.search.oracles`,
:mod:`~helpers.search.tuner`, :mod:`~helpers.search.workers`.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Callable, Mapping, Sequence

import numpy as np

from helpers.search.objectives import DEFAULT_CAP
from helpers.search.store import (SearchFailedError, SearchResult, _atomic_write_json,
                                  _check_objectives, _fmt, _json_default, _project_dir, load_search)

def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = str(listen).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"listen must be 'HOST:PORT' (port 0: a free one), e.g. '0.0.0.0:50051'; "
                         f"got {listen!r}")
    return host, int(port)


ALGORITHMS = ("aging_evolution", "random_search", "mcunet_evolution", "bayesian_optimization")


# ---------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------
class _Progress:
    """tqdm bar updated by the oracle at every finished trial, with the best feasible so far."""

    def __init__(self, total, enabled, desc, objectives, bounds):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, disable=not enabled, desc=desc, unit="trial")
        self.objectives, self.bounds = objectives, bounds
        self.n = 0

    def __call__(self, oracle):
        done = oracle.completed()
        n_fin = sum(1 for t in oracle.trials.values() if t.status in ("COMPLETED", "FAILED"))
        if n_fin > self.n:
            self.bar.update(n_fin - self.n)
            self.n = n_fin
        feas = [(r["objectives"], t.trial_id) for t, r in done if r["feasible"]]
        if feas:
            o, tid = min(feas, key=lambda x: x[0][self.objectives[0]])
            self.bar.set_postfix_str("best feasible: " + " ".join(
                f"{k}={_fmt(o[k])}" for k in self.objectives) + f" (#{tid})", refresh=False)
        else:
            self.bar.set_postfix_str("no feasible candidate yet", refresh=False)

    def close(self):
        self.bar.close()



def run_search(algorithm: str, space, evaluate: Callable, resources: Callable | None = None, *,
               bounds: Mapping[str, float | None], objectives: Sequence[str] | None = None,
               budget: int, seed: int = 0, directory, workers: int = 1, progress: bool = True,
               overwrite: bool = False, cap: float = DEFAULT_CAP, arch_from_json=None,
               worker_timeout_s: float | None = None, listen: str | None = None,
               stop_when: Callable[[], str | None] | None = None,
               **algo_kwargs) -> SearchResult:
    """Run (or resume) a search whose every trial is stored in ``directory``.

    ``algorithm``: one of ``"aging_evolution"``, ``"random_search"``,
    ``"mcunet_evolution"`` (``algo_kwargs`` go to its oracle).
    ``evaluate(arch, trial_seed) -> dict`` trains/measures one candidate;
    ``resources(arch) -> dict`` is the cheap pre-training measurement:
    candidates with any resource over its bound are rejected without training
    and do not use budget.  ``bounds`` maps objective -> bound (None: recorded,
    not scalarised nor constrained); ``objectives`` (default: the keys of
    ``bounds``) are all minimised and the first one ranks "best feasible".
    ``budget``: trained candidates (μNAS "rounds", including the initial
    population).  Re-running with the same ``directory`` resumes; a larger
    ``budget`` extends a finished search; other settings must match.

    ``workers > 1``: this process becomes keras-tuner's chief (gRPC on
    127.0.0.1, a free port) and starts ``workers`` worker processes
    (``python -m helpers.search.workers worker``) that evaluate candidates in
    parallel; the space and functions are sent to them with cloudpickle. Workers die
    with the chief (parent-death signal, and a watchdog on the chief's address).
    ``listen="HOST:PORT"`` (port 0: a free one) serves on that address instead, also with
    ``workers=0`` or 1: more workers, started by hand in another shell or on another machine
    that sees the same folder (shared or synced), join the running search with
    ``python -m helpers.search.workers join DIRECTORY`` (the address is in
    ``DIRECTORY/workers/address.json``); the result is the same as with spawned workers.
    If ``KERASTUNER_ORACLE_IP`` is already set (keras-tuner's "same script on
    every machine" mode) the process acts as chief or worker according to
    ``KERASTUNER_TUNER_ID`` and starts nobody.

    Every search ends: ``max_consecutive_failed_trials`` (3) trials failing in a row stop it
    with :class:`SearchFailedError` (``resumable=False``) showing the real error; a worker
    that dies stops it at once with its log tail (``resumable=True``); ``worker_timeout_s``
    bounds the whole multi-worker search.

    ``stop_when() -> str | None`` (not stored with the search): asked before every new trial;
    a non-empty string stops the search there (the running trials finish) and is kept as
    ``oracle.halted``. :mod:`helpers.protocol` stops searches at a CPU-time budget with it.
    Taught in 02-aging-evolution.
    """
    d, parent, name = _project_dir(directory)
    if stop_when is not None and not callable(stop_when):
        raise ValueError(f"stop_when must be callable (stop_when() -> reason or None); got {stop_when!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < (0 if listen else 1):
        raise ValueError(f"workers must be an integer >= 1 (>= 0 with listen=); got {workers!r}")
    host, port = _parse_listen(listen) if listen else ("127.0.0.1", 0)
    objectives, bounds = _check_objectives(objectives, bounds)
    if not callable(evaluate):
        raise ValueError("evaluate must be callable: evaluate(arch, trial_seed) -> dict")
    if resources is not None and not callable(resources):
        raise ValueError("resources must be callable (resources(arch) -> dict) or None")
    if space is None or not hasattr(space, "random"):
        raise ValueError("space must provide random(rng) -> architecture")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}; got {algorithm!r}")
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be an integer >= 1; got {budget!r}")
    if overwrite and os.path.exists(d):
        if os.listdir(d) and not os.path.exists(os.path.join(d, "search_config.json")):
            raise ValueError(f"overwrite=True would delete {d!r}, which is not a search folder")
        shutil.rmtree(d)
    os.makedirs(d, exist_ok=True)
    cfg_path = os.path.join(d, "search_config.json")
    old = None
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            old = json.load(f)
    if algorithm in ("aging_evolution", "bayesian_optimization") and algo_kwargs.get("lag") is None:
        # default: the stored lag, else the number of workers (a BO store made before lag existed keeps none)
        stored = (old or {}).get("algo_kwargs", {}).get("lag")
        if stored is not None:
            algo_kwargs["lag"] = int(stored)
        elif old is not None and algorithm == "bayesian_optimization":
            algo_kwargs.pop("lag", None)
        else:
            algo_kwargs["lag"] = int(workers)
    cfg = {"algorithm": algorithm, "objectives": objectives, "bounds": bounds, "budget": int(budget),
           "seed": int(seed), "cap": float(cap),
           "algo_kwargs": json.loads(json.dumps(algo_kwargs, default=_json_default))}
    if old is not None:
        diff = [k for k in cfg if k != "budget" and old.get(k) != cfg[k]]
        if diff:
            raise ValueError(f"directory {d!r} holds a search with different settings {diff} "
                             f"(stored: {[old.get(k) for k in diff]}); use another directory or overwrite=True")
        if int(budget) < int(old["budget"]):
            raise ValueError(f"budget {budget} is below the stored budget {old['budget']} of {d!r}")
    _atomic_write_json(cfg_path, cfg)

    # keras-tuner has no public name for its distribution utilities
    from keras_tuner.src.distribute import utils as dist_utils

    from helpers.search.oracles import make_oracle  # heavy: keras-tuner, TensorFlow
    from helpers.search.tuner import ArchTuner
    from helpers.search.workers import _free_port, _run_worker, _serve, _start_workers, _write_spec

    oracle = make_oracle(algorithm, space, objectives, bounds, resources, budget, seed, cap,
                          arch_from_json, algo_kwargs)
    env_mode = dist_utils.has_chief_oracle()
    if env_mode and not dist_utils.is_chief_oracle():
        _run_worker(oracle, evaluate, parent, name)
        return load_search(d)
    prog = _Progress(int(budget), progress, algorithm, objectives, bounds)
    oracle.progress_callback = prog
    oracle.stop_when = stop_when
    try:
        if workers == 1 and not env_mode and not listen:
            tuner = ArchTuner(oracle, evaluate, directory=parent, project_name=name)
            prog(oracle)
            tuner.search()
        else:
            oracle._set_project_dir(parent, name)
            if os.path.exists(os.path.join(d, "oracle.json")):
                oracle.reload()
            prog(oracle)
            if env_mode:
                ip, port, procs = os.environ["KERASTUNER_ORACLE_IP"], int(os.environ["KERASTUNER_ORACLE_PORT"]), []
            else:
                ip, port = host, (port or _free_port(host))
                spec_path = _write_spec(d, ip, port, dict(
                    algorithm=algorithm, space=space, evaluate=evaluate, objectives=objectives,
                    bounds=bounds, budget=int(budget), seed=int(seed), cap=cap,
                    arch_from_json=arch_from_json, parent=parent, name=name, sys_path=list(sys.path),
                    cwd=os.getcwd()))
                procs = _start_workers(d, spec_path, workers, ip, port)
            _serve(oracle, ip, port, procs, d, worker_timeout_s)
    finally:
        prog.close()
    if oracle.failure:
        f = oracle.failure
        lines = [ln for ln in f["message"].strip().splitlines() if ln.strip()]
        raise SearchFailedError(
            f"the search stopped: {f['count']} trials in a row failed (last: trial {f['trial_id']}) "
            f"with\n  {lines[-1] if lines else '(no message)'}\nResuming with the same settings "
            f"fails the same way: fix the cause (a parameter, the data or evaluate) first. The "
            f"finished trials are kept in {d}.\n--- traceback of the last failed trial ---\n"
            + "\n".join(lines[-25:]), resumable=False)
    return load_search(d)



def aging_evolution(space, evaluate, resources=None, *, bounds, objectives=None, budget=2000,
                    population_size=100, sample_size=25, seed=0, directory, workers=1,
                    progress=True, overwrite=False, cap=DEFAULT_CAP, arch_from_json=None,
                    max_rejections=10000, lag=None, stop_when=None) -> SearchResult:
    """μNAS aging evolution (population 100, sample 25, 2000 rounds by default).

    See :func:`run_search` for the arguments and :class:`AgingEvolutionOracle`
    for the algorithm. ``lag`` (default: ``workers`` for a new search, the stored
    value when resuming): the proposal of trial k sees the trials 0 .. k-lag only,
    waiting for them if needed, so the same seed and lag give the same search
    whatever the workers' timing (lag 1 = plain sequential aging evolution).
    Taught in 02-aging-evolution.
    """
    return run_search("aging_evolution", space, evaluate, resources, bounds=bounds,
                      objectives=objectives, budget=budget, seed=seed, directory=directory,
                      workers=workers, progress=progress, overwrite=overwrite, cap=cap,
                      arch_from_json=arch_from_json, population_size=population_size,
                      sample_size=sample_size, max_rejections=max_rejections, lag=lag,
                      stop_when=stop_when)


def random_search(space, evaluate, resources=None, *, bounds, objectives=None, budget=100, seed=0,
                  directory, workers=1, progress=True, overwrite=False, cap=DEFAULT_CAP,
                  arch_from_json=None, max_rejections=10000, stop_when=None) -> SearchResult:
    """Random-search baseline with the same budget semantics and trial store.

    Taught in 02-aging-evolution.
    """
    return run_search("random_search", space, evaluate, resources, bounds=bounds,
                      objectives=objectives, budget=budget, seed=seed, directory=directory,
                      workers=workers, progress=progress, overwrite=overwrite, cap=cap,
                      arch_from_json=arch_from_json, max_rejections=max_rejections, stop_when=stop_when)


def mcunet_evolution(space, evaluate, resources=None, *, bounds, objectives=None,
                     population_size=100, n_mutation=50, n_crossover=50, mutate_prob=0.1,
                     parent_ratio=0.25, iterations=30, seed=0, directory, workers=1, progress=True,
                     overwrite=False, cap=DEFAULT_CAP, arch_from_json=None,
                     max_rejections=10000, stop_when=None) -> SearchResult:
    """MCUNet evolution: population 100, 50 mutation (p=0.1) + 50 crossover children, 30 iterations.

    Budget = ``population_size + iterations * (n_mutation + n_crossover)``.
    Needs ``arch.mutate(rng, prob)`` and ``arch.crossover(other, rng)``.
    Taught in 05-once-for-all.
    """
    budget = int(population_size) + int(iterations) * (int(n_mutation) + int(n_crossover))
    return run_search("mcunet_evolution", space, evaluate, resources, bounds=bounds,
                      objectives=objectives, budget=budget, seed=seed, directory=directory,
                      workers=workers, progress=progress, overwrite=overwrite, cap=cap,
                      arch_from_json=arch_from_json, population_size=population_size,
                      n_mutation=n_mutation, n_crossover=n_crossover, mutate_prob=mutate_prob,
                      parent_ratio=parent_ratio, max_rejections=max_rejections,
                      stop_when=stop_when)



def bayesian_optimization(space, evaluate, resources=None, *, bounds, objectives=None, budget=100,
                          num_initial_points=10, beta=2.6, alpha=1e-4, acquisition="pool",
                          pool_size=256, seed=0, directory, workers=1, progress=True,
                          overwrite=False, cap=DEFAULT_CAP, arch_from_json=None,
                          max_rejections=10000, lag=None, stop_when=None,
                          pool_morphisms=0.5) -> SearchResult:
    """SpArSe multi-objective Bayesian optimisation on the shared trial store.

    See :class:`BayesianOracle` for the algorithm and :func:`run_search` for
    the arguments (resume, workers, rejection of over-bound candidates).
    ``lag`` (default: ``workers`` for a new search, the stored value when
    resuming) makes a multi-worker search independent of the workers' timing.
    ``pool_morphisms``: the share of the acquisition pool that are morphisms of the best
    trials (the rest random); stored with the search only when it is not the default 0.5.
    Taught in 03-sparse-pruning.
    """
    extra = {} if float(pool_morphisms) == 0.5 else {"pool_morphisms": float(pool_morphisms)}
    return run_search("bayesian_optimization", space, evaluate, resources, bounds=bounds,
                      objectives=objectives, budget=budget, seed=seed, directory=directory,
                      workers=workers, progress=progress, overwrite=overwrite, cap=cap,
                      arch_from_json=arch_from_json, num_initial_points=num_initial_points,
                      beta=beta, alpha=alpha, acquisition=acquisition, pool_size=pool_size,
                      max_rejections=max_rejections, lag=lag, stop_when=stop_when, **extra)


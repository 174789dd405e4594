"""Search machinery shared by every search in the series.

Taught in 02-aging-evolution (aging evolution, Chebyshev scalarisation, Pareto
front, hypervolume, trial store); reused by 03-sparse-pruning (Bayesian
optimisation plugs in as an :class:`ArchOracle` subclass), 05-once-for-all
(MCUNet evolution) and 07-comparison (:func:`load_search`).

What lives here
---------------
* Pure multi-objective helpers (no TensorFlow): :func:`normalise`,
  :func:`random_lambdas`, :func:`chebyshev_fitness`, :func:`pareto_mask`,
  :func:`pareto_front`, :func:`hypervolume`, :func:`hypervolume_history`.
* A trial store and search engine built on keras-tuner 1.4.8: an
  :class:`ArchOracle` (a ``keras_tuner.Oracle``) proposes architectures, an
  :class:`ArchTuner` (a ``keras_tuner.engine.base_tuner.BaseTuner``) evaluates
  them.  Every trial is a keras-tuner trial folder (``trial_<id>/trial.json``)
  written as soon as it finishes; the oracle state (``oracle.json``: start and
  end order, RNG state, rejected candidates) makes a killed search resume with
  no finished trial lost or repeated.  Several workers use keras-tuner's gRPC
  chief/worker mode (``KERASTUNER_TUNER_ID`` / ``KERASTUNER_ORACLE_IP`` /
  ``KERASTUNER_ORACLE_PORT``).  See docs/search.md for what keras-tuner does
  and what this module adds on top of it.
* Search drivers: :func:`aging_evolution` (μNAS), :func:`random_search`
  (baseline), :func:`mcunet_evolution` (MCUNet / TinyNAS stage 2),
  :func:`bayesian_optimization` (SpArSe multi-objective BO, :class:`BayesianOracle`), the generic
  :func:`run_search`, and :func:`load_search` to read a finished (or running)
  search back as a :class:`SearchResult`.

Architecture protocol (what a search space provides)
----------------------------------------------------
``space.random(rng) -> arch`` and an architecture object with
``arch.to_json() -> str | dict``, ``arch.mutate(rng) -> arch``, optionally
``arch.key() -> str`` or a ``hash`` string property (stable hash) and, for MCUNet evolution,
``arch.crossover(other, rng) -> arch`` and ``arch.mutate(rng, prob)``.
Decoding uses ``space.from_json(s)`` if the space has it, else the
``arch_from_json`` argument (e.g. ``MyArch.from_json``).  All randomness must
come from the ``rng`` (a ``numpy.random.Generator``) passed in.

Importing this module does not import TensorFlow; the keras-tuner classes
(:class:`ArchOracle` and its subclasses, :class:`ArchTuner`) are created on
first access.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import warnings
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = [
    "Architecture", "SearchSpace", "normalise", "random_lambdas", "chebyshev_fitness",
    "pareto_mask", "pareto_front", "hypervolume", "hypervolume_history", "trial_seed",
    "SearchResult", "load_search", "run_search", "aging_evolution", "random_search",
    "mcunet_evolution", "ALGORITHMS", "Candidate", "ArchSpace", "arch_resources", "ArchResources",
    # created lazily (import keras-tuner / TensorFlow):
    "ArchOracle", "AgingEvolutionOracle", "RandomSearchOracle", "MCUNetEvolutionOracle",
    "ArchTuner",
    # Bayesian optimisation (03-sparse-pruning):
    "BayesianOracle", "bayesian_optimization",
]

DEFAULT_CAP = 10.0  # μNAS caps normalised objectives at 10 (search_algorithms/aging_evolution.py)
_HP_NAMES = ("arch", "arch_kind", "origin", "parent", "resources", "result")


# ---------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------
@runtime_checkable
class Architecture(Protocol):
    """What an architecture object must provide (see module docstring)."""

    def to_json(self) -> "str | dict": ...

    def mutate(self, rng: np.random.Generator) -> "Architecture": ...


@runtime_checkable
class SearchSpace(Protocol):
    """What a search space must provide: ``random(rng)`` (and ideally ``from_json``)."""

    def random(self, rng: np.random.Generator) -> Architecture: ...


# ---------------------------------------------------------------------------
# Multi-objective helpers (pure numpy)
# ---------------------------------------------------------------------------
def _as_2d(points) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n_points, n_objectives); got shape {p.shape}")
    return p


def normalise(values, bounds, cap: float = DEFAULT_CAP) -> np.ndarray:
    """Objectives divided by their bounds and capped: ``min(x / bound, cap)``.

    μNAS form (lower end 0): a value at its bound maps to 1, anything over the
    bound to more than 1, at most ``cap`` (10 in μNAS).  ``values`` is an array
    ``(..., k)`` or a mapping name -> value (then ``bounds`` is a mapping too
    and the result follows ``bounds``' key order).  Taught in 02-aging-evolution.
    """
    if isinstance(bounds, Mapping):
        names = list(bounds)
        if isinstance(values, Mapping):
            missing = [n for n in names if n not in values]
            if missing:
                raise KeyError(f"values lacks objectives {missing}; bounds name {names}")
            values = [values[n] for n in names]
        bounds = [bounds[n] for n in names]
    b = np.asarray(bounds, dtype=float)
    if np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"bounds must be finite and > 0; got {list(b)}")
    if not (cap > 0):
        raise ValueError(f"cap must be > 0; got {cap}")
    v = np.asarray(values, dtype=float)
    return np.minimum(v / b, cap)


def random_lambdas(rng: np.random.Generator, k: int) -> np.ndarray:
    """Fresh Chebyshev weights λ ~ U(0, 1)^k, not normalised (as in μNAS).

    Taught in 02-aging-evolution.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (np.random.default_rng(seed))")
    return rng.uniform(0.0, 1.0, size=int(k))


def chebyshev_fitness(normalised, lambdas) -> np.ndarray:
    """μNAS random Chebyshev scalarisation, to be MAXIMISED: ``-max_i(n_i / λ_i)``.

    ``normalised`` is ``(k,)`` or ``(n, k)`` (see :func:`normalise`); returns a
    scalar or ``(n,)``.  This is exactly ``get_mo_fitness_fn`` in
    eliberis/uNAS ``search_algorithms/aging_evolution.py``: λ drawn from
    U(0,1) per objective at every parent selection, not renormalised.
    Taught in 02-aging-evolution.
    """
    n = np.asarray(normalised, dtype=float)
    lam = np.asarray(lambdas, dtype=float)
    if lam.shape[-1] != n.shape[-1]:
        raise ValueError(f"lambdas has {lam.shape[-1]} weights for {n.shape[-1]} objectives")
    lam = np.maximum(lam, 1e-12)  # U[0,1) can return exactly 0
    return -np.max(n / lam, axis=-1)


def pareto_mask(points) -> np.ndarray:
    """Boolean mask of the non-dominated rows (minimisation, any number of objectives).

    A row is dominated when another row is <= in every objective and < in at
    least one; identical rows do not dominate each other (both are kept).
    Rows containing NaN are never on the front.  Taught in 02-aging-evolution.
    """
    p = _as_2d(points)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=bool)
    ok = ~np.any(np.isnan(p), axis=1)
    mask = ok.copy()
    q = p[ok]
    idx = np.flatnonzero(ok)
    for j, i in enumerate(idx):
        le = np.all(q <= q[j], axis=1)
        lt = np.any(q < q[j], axis=1)
        if np.any(le & lt):
            mask[i] = False
    return mask


def pareto_front(points) -> np.ndarray:
    """Indices of the non-dominated rows, sorted by the first objective (minimisation)."""
    p = _as_2d(points)
    idx = np.flatnonzero(pareto_mask(p))
    if len(idx) == 0:
        return idx
    order = np.lexsort(p[idx].T[::-1])
    return idx[order]


def _hv2d(p: np.ndarray, ref: np.ndarray) -> float:
    # p already strictly inside ref; sweep over the first objective
    o = np.argsort(p[:, 0], kind="stable")
    x = p[o, 0]
    y = np.minimum.accumulate(p[o, 1])
    x_next = np.append(x[1:], ref[0])
    return float(np.sum((x_next - x) * (ref[1] - y)))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    d = p.shape[1]
    if len(p) == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - p[:, 0].min())
    if d == 2:
        return _hv2d(p, ref)
    # slicing along the last objective (HSO): sweep z upwards, each slab's
    # (d-1)-dimensional cross-section is the HV of the points below it
    p = p[pareto_mask(p)]
    o = np.argsort(p[:, -1], kind="stable")
    p = p[o]
    z = np.append(p[:, -1], ref[-1])
    total = 0.0
    for i in range(len(p)):
        thick = z[i + 1] - z[i]
        if thick <= 0:
            continue
        total += thick * _hv(p[: i + 1, :-1], ref[:-1])
    return float(total)


def hypervolume(points, ref) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``ref`` (minimisation).

    Points not strictly better than ``ref`` in every objective contribute
    nothing.  Exact by slicing objectives (HSO; While et al. 2006) down to a
    2-D sweep: fine for 2-4 objectives and up to a few hundred front points.
    With objectives normalised by their bounds (:func:`normalise`) and
    ``ref = ones`` it is the volume of the feasible region the search has
    covered, one number to compare searches.  Taught in 02-aging-evolution.
    """
    p = _as_2d(points)
    r = np.asarray(ref, dtype=float).ravel()
    if p.shape[0] and p.shape[1] != r.size:
        raise ValueError(f"ref has {r.size} coordinates for {p.shape[1]} objectives")
    if r.size > 6:
        raise ValueError(f"hypervolume supports up to 6 objectives exactly; got {r.size}")
    if p.shape[0] == 0:
        return 0.0
    p = p[np.all(p < r, axis=1) & ~np.any(np.isnan(p), axis=1)]
    return _hv(p, r)


def hypervolume_history(points, ref) -> np.ndarray:
    """Hypervolume of the first ``n`` rows, for n = 1..len(points) (rows in the order found).

    Incremental and exact: adding point x adds ``HV({x}) - HV({max(a, x) : a in front})``
    (the part of x's box not already covered), so only x's neighbourhood is
    recomputed.  Taught in 02-aging-evolution (hypervolume over rounds).
    """
    p = _as_2d(points)
    r = np.asarray(ref, dtype=float).ravel()
    out = np.zeros(len(p))
    front = np.zeros((0, r.size))
    hv = 0.0
    for i, x in enumerate(p):
        if np.all(x < r) and not np.any(np.isnan(x)):
            if not (len(front) and np.any(np.all(front <= x, axis=1))):
                if len(front):
                    clipped = np.maximum(front, x)
                    covered = _hv(clipped[pareto_mask(clipped)], r)
                else:
                    covered = 0.0
                hv += float(np.prod(r - x)) - covered
                front = np.vstack([front[~np.all(x <= front, axis=1)], x[None]])
        out[i] = hv
    return out


def trial_seed(seed: int, trial_id) -> int:
    """The seed handed to ``evaluate`` for a trial: a function of (search seed, trial id) only."""
    ss = np.random.SeedSequence([int(seed), int(str(trial_id))])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------
def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _atomic_write_json(path: str, obj) -> None:
    """Write JSON so that a SIGKILL at any moment leaves either the old or the new file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, default=_json_default))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _encode_arch(arch) -> tuple[str, str]:
    if not hasattr(arch, "to_json"):
        raise ValueError(f"architecture {type(arch).__name__} has no to_json(); see helpers.search.Architecture")
    j = arch.to_json()
    if isinstance(j, Mapping):
        return json.dumps(j, sort_keys=True, default=_json_default), "dict"
    if isinstance(j, str):
        return j, "str"
    raise ValueError(f"{type(arch).__name__}.to_json() must return str or dict; got {type(j).__name__}")


def _arch_key(arch, text: str) -> str:
    k = getattr(arch, "key", None)
    if callable(k):
        return str(k())
    h = getattr(arch, "hash", None)  # helpers.spaces archs: a stable ``hash`` property
    if isinstance(h, str):
        return h
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _check_objectives(objectives, bounds):
    if not isinstance(bounds, Mapping) or not bounds:
        raise ValueError("bounds must be a non-empty dict objective -> bound, e.g. "
                         "{'error': 0.18, 'peak_sram_bytes': 75000, 'flash_bytes': 75000, 'macs': 30e6}")
    objectives = list(bounds) if objectives is None else list(objectives)
    if not objectives:
        raise ValueError("objectives must name at least one objective")
    unknown = [b for b in bounds if b not in objectives]
    if unknown:
        raise ValueError(f"bounds name {unknown}, which are not in objectives {objectives}")
    for k, v in bounds.items():
        if v is not None and not (isinstance(v, (int, float, np.number)) and math.isfinite(v) and v > 0):
            raise ValueError(f"bounds[{k!r}] must be a finite number > 0 or None; got {v!r}")
    return objectives, {k: (None if v is None else float(v)) for k, v in bounds.items()}


def _bounded(objectives, bounds):
    names = [o for o in objectives if bounds.get(o) is not None]
    return names, np.array([bounds[o] for o in names], dtype=float)


def _feasible(objs: Mapping, bounds: Mapping) -> bool:
    for k, b in bounds.items():
        if b is None:
            continue
        v = objs.get(k)
        if v is None or not (float(v) <= b):
            return False
    return True


def _violations(res: Mapping, bounds: Mapping) -> list[str]:
    out = []
    for k, v in res.items():
        b = bounds.get(k)
        if b is not None and not (float(v) <= b):
            out.append(f"{k}={float(v):.6g} > {b:.6g}")
    return out


# ---------------------------------------------------------------------------
# keras-tuner classes (built on first access: importing keras-tuner imports TF)
# ---------------------------------------------------------------------------
_LAZY: dict[str, Any] = {}


def __getattr__(name):  # PEP 562
    if name in ("ArchOracle", "AgingEvolutionOracle", "RandomSearchOracle",
                "MCUNetEvolutionOracle", "ArchTuner", "BayesianOracle"):
        if not _LAZY:
            _build_kt_classes()
        if name == "BayesianOracle" and name not in _LAZY:
            _build_bo_class()
        return _LAZY[name]
    raise AttributeError(f"module 'helpers.search' has no attribute {name!r}")


def _build_kt_classes():  # noqa: C901 - one place for all keras-tuner glue
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module
    from keras_tuner.src.engine.base_tuner import BaseTuner

    TS = trial_module.TrialStatus

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
            self.verbose = 0  # keras-tuner's printed Display off; we use tqdm
            self.progress_callback = None  # set by the driver (not persisted)
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
            """Return ``(arch, origin, parent)``; ``parent`` a trial id string or ''."""
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
            if self.stop_reason:
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
        """Random search baseline: every candidate is ``space.random(rng)``."""

        algorithm = "random_search"

        def propose(self):
            return self.space.random(self.rng), "random", ""

    class MCUNetEvolutionOracle(ArchOracle):
        """MCUNet / TinyNAS stage-2 evolution (generational, elitist).

        Generation 0: ``population_size`` random candidates.  Each later
        generation: the best ``parent_ratio`` of everything evaluated so far
        (scalarised fitness with fixed λ = 1, i.e. the max normalised
        objective, feasible first) are parents; ``n_mutation`` children by
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

        def propose(self):
            n = len(self.start_order)
            g, start = self._generation_of(n)
            if g == 0:
                return self.space.random(self.rng), "random", ""
            done = self.completed()
            finished = {t.trial_id for t in self.trials.values() if t.status in (TS.COMPLETED, TS.FAILED)}
            if any(tid not in finished for tid in self.start_order[:start]):
                return None  # previous generation still running -> IDLE
            ranked = sorted(done, key=lambda tr: (not _feasible(tr[1]["objectives"], self.bounds),
                                                  float(np.max(self.normalised(tr[1])))))
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
            if self.stop_reason:
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

    class ArchTuner(BaseTuner):
        """keras-tuner BaseTuner whose trial = ``evaluate(arch, trial_seed)``.

        ``evaluate`` returns a dict with every objective (resource objectives
        may come from the pre-training ``resources`` dict instead) plus any
        JSON-able extra information (training curve summary, pruned
        architecture, ...), stored under ``info``.  The exact record goes to
        the trial's ``result`` hyperparameter (strings cross keras-tuner's gRPC
        exactly; its metrics are float32).
        """

        def __init__(self, oracle, evaluate, *, directory, project_name, overwrite=False):
            self._evaluate = evaluate
            self._objectives = list(oracle.objectives)
            self._bounds = dict(oracle.bounds)
            self._bounded_names = list(oracle.bounded_names)
            self._bound_values = np.array(oracle.bound_values)
            self._cap = oracle.cap
            self._seed = oracle.search_seed
            self._decode = oracle.decode
            proj = os.path.join(str(directory), project_name)
            tuner_file = os.path.join(proj, f"{os.environ.get('KERASTUNER_TUNER_ID', 'tuner0')}.json")
            if (not overwrite and os.path.exists(os.path.join(proj, "oracle.json"))
                    and not os.path.exists(tuner_file)):
                # killed before keras-tuner wrote its tuner file: still resume
                _atomic_write_json(tuner_file, {})
            super().__init__(oracle, directory=directory, project_name=project_name, overwrite=overwrite)

        def run_trial(self, trial, *args, **kwargs):
            v = trial.hyperparameters.values
            arch = self._decode(v["arch"], v.get("arch_kind") or "str")
            seed = trial_seed(self._seed, trial.trial_id)
            t0 = time.perf_counter()
            from helpers.train import release_graphs  # each trial's TF graphs are freed
            with release_graphs():
                out = self._evaluate(arch, seed)
            wall = time.perf_counter() - t0
            if not isinstance(out, Mapping):
                raise kt.errors.FatalError(
                    f"evaluate must return a dict of objectives; got {type(out).__name__}")
            res = json.loads(v.get("resources") or "{}")
            objs, info = {}, {}
            for k, val in out.items():
                (objs if k in self._objectives else info)[k] = val
            for k in self._objectives:
                if k not in objs and k in res:
                    objs[k] = res[k]
            missing = [k for k in self._objectives if k not in objs]
            if missing:
                raise kt.errors.FatalError(
                    f"evaluate() result lacks objectives {missing}; it returned keys {list(out)} "
                    f"and resources() gave {list(res)}; objectives are {self._objectives}")
            objs = {k: float(objs[k]) for k in self._objectives}
            feas = _feasible(objs, self._bounds)
            record = {"objectives": objs, "feasible": feas, "info": info, "seed": seed,
                      "key": _arch_key(arch, v["arch"]),
                      "wall_time_s": wall, "worker": self.tuner_id, "finished_at": time.time()}
            trial.hyperparameters.values["result"] = json.dumps(record, default=_json_default)
            n = normalise([objs[k] for k in self._bounded_names], self._bound_values, self._cap)
            metrics = {"score": float(np.max(n)) if len(n) else float(objs[self._objectives[0]]),
                       "feasible": float(feas)}
            metrics.update(objs)
            return metrics

        def save(self):
            if not self._is_worker():
                self.oracle.save()
            _atomic_write_json(self._get_tuner_fname(), self.get_state())

    _LAZY.update(ArchOracle=ArchOracle, AgingEvolutionOracle=AgingEvolutionOracle,
                 RandomSearchOracle=RandomSearchOracle, MCUNetEvolutionOracle=MCUNetEvolutionOracle,
                 ArchTuner=ArchTuner)


ALGORITHMS = {"aging_evolution": "AgingEvolutionOracle", "random_search": "RandomSearchOracle",
              "mcunet_evolution": "MCUNetEvolutionOracle"}
ALGORITHMS["bayesian_optimization"] = "BayesianOracle"  # SpArSe (03-sparse-pruning), see _build_bo_class


# ---------------------------------------------------------------------------
# Result object and store reader (no keras-tuner needed)
# ---------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    v = float(v)
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.4g}"


@dataclasses.dataclass
class SearchResult:
    """Everything a search recorded, read back from its folder.

    ``trials`` has one row per trained candidate (``status`` COMPLETED /
    FAILED / RUNNING) and one per rejected candidate (``status`` REJECTED:
    over a resource bound before training), with columns ``trial_id``,
    ``order`` (completion order, 0-based; NaN if unfinished), ``started``, ``status``,
    ``feasible``, ``origin``, ``parent``, ``arch`` (JSON), ``key``, one column
    per objective, ``seed``, ``wall_time_s``, ``worker`` and ``extra`` (dict of
    whatever else ``evaluate`` returned).  ``front`` is the Pareto front of
    the feasible completed trials; ``hv_history[n]`` the hypervolume (in
    bound-normalised objective space, reference point = the bounds) after
    ``n + 1`` completed trials.  Taught in 02-aging-evolution.
    """

    algorithm: str
    directory: str
    objectives: list
    bounds: dict
    budget: int
    seed: int
    config: dict
    trials: Any  # pandas.DataFrame
    front: Any  # pandas.DataFrame
    hv_history: np.ndarray
    best: dict | None
    stop_reason: str | None = None

    @property
    def hypervolume(self) -> float:
        return float(self.hv_history[-1]) if len(self.hv_history) else 0.0

    @property
    def completed(self):
        t = self.trials
        return t[t.status == "COMPLETED"].sort_values("order")

    @property
    def rejected(self):
        return self.trials[self.trials.status == "REJECTED"]

    def table(self):
        """All trials as a DataFrame (same as ``trials``)."""
        return self.trials

    def pareto(self, feasible_only: bool = True):
        """Pareto front (minimisation over ``objectives``) of completed trials."""
        c = self.completed
        if feasible_only:
            c = c[c.feasible.astype(bool)]
        if c.empty:
            return c
        idx = pareto_front(c[self.objectives].to_numpy(float))
        return c.iloc[idx]

    def summary(self) -> str:
        c = self.completed
        nf = int(c.feasible.astype(bool).sum()) if len(c) else 0
        lines = [f"{self.algorithm} search in {self.directory}",
                 f"  trained {len(c)}/{self.budget} (failed {int((self.trials.status == 'FAILED').sum())}, "
                 f"running {int((self.trials.status == 'RUNNING').sum())}), rejected before training "
                 f"{len(self.rejected)}, feasible {nf}",
                 "  bounds: " + ", ".join(f"{k}<={_fmt(v)}" for k, v in self.bounds.items() if v is not None),
                 f"  Pareto front (feasible): {len(self.front)} candidates; hypervolume {self.hypervolume:.4f}"]
        if self.best is not None:
            lines.append(f"  best feasible (lowest {self.objectives[0]}): trial {self.best['trial_id']}: "
                         + ", ".join(f"{o}={_fmt(self.best[o])}" for o in self.objectives))
        else:
            lines.append("  best feasible: none yet")
        if self.stop_reason:
            lines.append(f"  stopped early: {self.stop_reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        cols = ["trial_id", *self.objectives, "feasible", "key", "arch"]
        c = self.completed
        return {
            "algorithm": self.algorithm, "directory": self.directory,
            "objectives": list(self.objectives), "bounds": dict(self.bounds),
            "budget": self.budget, "seed": self.seed,
            "n_completed": int(len(c)), "n_failed": int((self.trials.status == "FAILED").sum()),
            "n_rejected": int(len(self.rejected)),
            "n_feasible": int(c.feasible.astype(bool).sum()) if len(c) else 0,
            "hypervolume": self.hypervolume, "hv_history": [float(x) for x in self.hv_history],
            "best": None if self.best is None else {k: _py(self.best[k]) for k in cols},
            "front": [{k: _py(r[k]) for k in cols} for _, r in self.front.iterrows()],
            "total_wall_time_s": float(c.wall_time_s.sum()) if len(c) else 0.0,
            "stop_reason": self.stop_reason, "config": self.config,
        }


def _py(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _project_dir(directory) -> tuple[str, str, str]:
    d = os.path.abspath(os.fspath(directory))
    return d, os.path.dirname(d), os.path.basename(d)


def load_search(directory) -> SearchResult:
    """Read a search folder (finished, interrupted or running) into a :class:`SearchResult`.

    Reads keras-tuner's ``trial_*/trial.json`` and ``oracle.json`` directly (no
    TensorFlow import).  Taught in 02-aging-evolution; used by 07-comparison.
    """
    import pandas as pd

    d, _, _ = _project_dir(directory)
    cfg_path = os.path.join(d, "search_config.json")
    if not os.path.exists(cfg_path):
        raise FileNotFoundError(f"directory {d!r} holds no search (no search_config.json)")
    with open(cfg_path) as f:
        cfg = json.load(f)
    objectives, bounds = cfg["objectives"], cfg["bounds"]
    state = {}
    if os.path.exists(os.path.join(d, "oracle.json")):
        with open(os.path.join(d, "oracle.json")) as f:
            state = json.load(f)
    start_order = state.get("start_order", [])
    end_order = list(state.get("end_order", []))
    rows = []
    trials = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name, "trial.json")
        if name.startswith("trial_") and os.path.exists(p):
            with open(p) as f:
                t = json.load(f)
            trials[t["trial_id"]] = t
    for tid, t in trials.items():  # finished but not yet in oracle.json's end order
        if t["status"] in ("COMPLETED", "FAILED") and tid not in end_order:
            end_order.append(tid)
    order = {tid: i for i, tid in enumerate(end_order)}
    started = {tid: i for i, tid in enumerate(start_order)}
    for tid, t in trials.items():
        if tid not in started:
            continue  # orphan of a kill (see ArchOracle.reload)
        v = t["hyperparameters"]["values"]
        res = json.loads(v.get("result") or "null") if v.get("result") else None
        status = t["status"]
        if status not in ("COMPLETED", "FAILED"):
            status = "RUNNING"
        resources = json.loads(v.get("resources") or "{}")
        row = {"trial_id": tid, "order": order.get(tid, np.nan), "started": started[tid],
               "status": status, "origin": v.get("origin", ""), "parent": v.get("parent", ""),
               "arch": v.get("arch", ""), "key": None}
        objs = (res or {}).get("objectives", {})
        for o in objectives:
            row[o] = objs.get(o, resources.get(o, np.nan))
        row["feasible"] = bool(res["feasible"]) if res else False
        row["seed"] = res.get("seed") if res else None
        row["wall_time_s"] = res.get("wall_time_s") if res else np.nan
        row["worker"] = res.get("worker") if res else None
        row["message"] = t.get("message")
        row["extra"] = res.get("info", {}) if res else {}
        row["key"] = (res or {}).get("key") or hashlib.sha1(row["arch"].encode()).hexdigest()[:16]
        rows.append(row)
    for i, r in enumerate(state.get("tinynas", {}).get("rejected", [])):
        row = {"trial_id": f"rejected_{i}", "order": np.nan, "started": np.nan, "status": "REJECTED",
               "origin": r.get("origin", ""), "parent": r.get("parent", ""), "arch": r["arch"],
               "key": r.get("key"), "feasible": False, "seed": None, "wall_time_s": 0.0,
               "worker": None, "message": None, "extra": {"violations": r.get("violations", []),
                                        "after_trials": r.get("after_trials")}}
        for o in objectives:
            row[o] = r.get("resources", {}).get(o, np.nan)
        rows.append(row)
    cols = ["trial_id", "order", "started", "status", "feasible", "origin", "parent", *objectives,
            "seed", "wall_time_s", "worker", "key", "arch", "extra", "message"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.sort_values(["order", "started"], na_position="last", kind="stable").reset_index(drop=True)
    comp = df[df.status == "COMPLETED"].sort_values("order")
    bnames, bvals = _bounded(objectives, bounds)
    if len(comp) and bnames:
        pts = comp[bnames].to_numpy(float) / bvals
        hv = hypervolume_history(pts, np.ones(len(bnames)))
    else:
        hv = np.zeros(len(comp))
    feas = comp[comp.feasible.astype(bool)]
    front = feas.iloc[pareto_front(feas[objectives].to_numpy(float))] if len(feas) else feas
    best = None
    if len(feas):
        best = feas.sort_values([objectives[0], "order"], kind="stable").iloc[0].to_dict()
    return SearchResult(algorithm=cfg["algorithm"], directory=d, objectives=list(objectives),
                        bounds=dict(bounds), budget=int(cfg["budget"]), seed=int(cfg["seed"]),
                        config=cfg, trials=df, front=front, hv_history=hv, best=best,
                        stop_reason=state.get("tinynas", {}).get("stop_reason"))


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dump_spec(spec: dict, path: str) -> None:
    try:
        import cloudpickle as pk  # pickles notebook-defined functions by value
    except ImportError:  # pragma: no cover
        pk = pickle
    try:
        data = pk.dumps(spec)
    except Exception as e:
        raise ValueError("with workers > 1 the space, evaluate, resources and arch_from_json "
                         f"must be picklable to start worker processes: {e}") from e
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def _make_oracle(algorithm, space, objectives, bounds, resources, budget, seed, cap,
                 arch_from_json, algo_kwargs):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}; got {algorithm!r}")
    cls = __getattr__(ALGORITHMS[algorithm])
    return cls(space, objectives=objectives, bounds=bounds, resources=resources, budget=budget,
               seed=seed, cap=cap, arch_from_json=arch_from_json, **algo_kwargs)


def run_search(algorithm: str, space, evaluate: Callable, resources: Callable | None = None, *,
               bounds: Mapping[str, float | None], objectives: Sequence[str] | None = None,
               budget: int, seed: int = 0, directory, workers: int = 1, progress: bool = True,
               overwrite: bool = False, cap: float = DEFAULT_CAP, arch_from_json=None,
               worker_timeout_s: float | None = None, **algo_kwargs) -> SearchResult:
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
    (``python -m helpers.search worker``) that evaluate candidates in
    parallel; the space and functions are sent to them with cloudpickle.
    If ``KERASTUNER_ORACLE_IP`` is already set (keras-tuner's "same script on
    every machine" mode) the process acts as chief or worker according to
    ``KERASTUNER_TUNER_ID`` and starts nobody.  Taught in 02-aging-evolution.
    """
    d, parent, name = _project_dir(directory)
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
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

    from keras_tuner.src.distribute import utils as dist_utils

    oracle = _make_oracle(algorithm, space, objectives, bounds, resources, budget, seed, cap,
                          arch_from_json, algo_kwargs)
    env_mode = dist_utils.has_chief_oracle()
    if env_mode and not dist_utils.is_chief_oracle():
        _run_worker(oracle, evaluate, parent, name)
        return load_search(d)
    prog = _Progress(int(budget), progress, algorithm, objectives, bounds)
    oracle.progress_callback = prog
    try:
        if workers == 1 and not env_mode:
            tuner = __getattr__("ArchTuner")(oracle, evaluate, directory=parent, project_name=name)
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
                ip, port = "127.0.0.1", _free_port()
                procs = _start_workers(d, workers, ip, port, dict(
                    algorithm=algorithm, space=space, evaluate=evaluate, objectives=objectives,
                    bounds=bounds, budget=int(budget), seed=int(seed), cap=cap,
                    arch_from_json=arch_from_json, parent=parent, name=name, sys_path=list(sys.path),
                    cwd=os.getcwd()))
            _serve(oracle, ip, port, procs, d, worker_timeout_s)
    finally:
        prog.close()
    return load_search(d)


def _start_workers(d, workers, ip, port, spec):
    wdir = os.path.join(d, "workers")
    os.makedirs(wdir, exist_ok=True)
    spec_path = os.path.join(wdir, "spec.pkl")
    _atomic_write_json(spec_path + ".json", {"sys_path": spec["sys_path"], "cwd": spec["cwd"]})
    _dump_spec(spec, spec_path)
    procs = []
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for i in range(workers):
        env = dict(os.environ, KERASTUNER_TUNER_ID=f"worker{i}", KERASTUNER_ORACLE_IP=ip,
                   KERASTUNER_ORACLE_PORT=str(port),
                   PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log = open(os.path.join(wdir, f"worker{i}.log"), "ab")
        p = subprocess.Popen([sys.executable, "-m", "helpers.search", "worker", spec_path],
                             env=env, stdout=log, stderr=subprocess.STDOUT, cwd=spec["cwd"])
        p._tinynas_log = log  # closed by _serve
        procs.append(p)
    return procs


def _serve(oracle, ip, port, procs, d, timeout_s):
    """keras-tuner's chief (OracleServicer over gRPC) with a fast, watchful main loop."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{ip}:{port}")
    server.start()
    t0 = time.monotonic()
    err = None
    try:
        while True:
            time.sleep(0.05)
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                if not procs:
                    break
            states = [p.poll() for p in procs]
            dead = [(i, rc) for i, rc in enumerate(states) if rc not in (None, 0)]
            if dead:  # the trial it held would stay RUNNING: the others could wait for it forever
                err = dead
                break
            if procs and all(rc is not None for rc in states):
                break
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                err = "timeout"
                break
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=10 if err is None else 0.1)
                except subprocess.TimeoutExpired:
                    p.terminate()
                    p.wait(timeout=10)
            p._tinynas_log.close()
        server.stop(grace=None)
        oracle.save()
    if err:
        tails = []
        for i in range(len(procs)):
            with open(os.path.join(d, "workers", f"worker{i}.log"), "rb") as f:
                tails.append(f"--- worker{i} ---\n" + f.read()[-3000:].decode(errors="replace"))
        raise RuntimeError(f"search workers failed ({err}); the search can be resumed.\n" + "\n".join(tails))


def _run_worker(oracle, evaluate, parent, name):
    tuner = __getattr__("ArchTuner")(oracle, evaluate, directory=parent, project_name=name)
    tuner.search()


def _worker_main(spec_path: str) -> None:
    with open(spec_path + ".json") as f:  # sys.path first: unpickling imports modules
        for p in reversed(json.load(f)["sys_path"]):
            if p not in sys.path:
                sys.path.insert(0, p)
    with open(spec_path, "rb") as f:
        spec = pickle.load(f)
    oracle = _make_oracle(spec["algorithm"], spec["space"], spec["objectives"], spec["bounds"], None,
                          spec["budget"], spec["seed"], spec["cap"], spec["arch_from_json"], {})
    _run_worker(oracle, spec["evaluate"], spec["parent"], spec["name"])


def aging_evolution(space, evaluate, resources=None, *, bounds, objectives=None, budget=2000,
                    population_size=100, sample_size=25, seed=0, directory, workers=1,
                    progress=True, overwrite=False, cap=DEFAULT_CAP, arch_from_json=None,
                    max_rejections=10000, lag=None) -> SearchResult:
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
                      sample_size=sample_size, max_rejections=max_rejections, lag=lag)


def random_search(space, evaluate, resources=None, *, bounds, objectives=None, budget=100, seed=0,
                  directory, workers=1, progress=True, overwrite=False, cap=DEFAULT_CAP,
                  arch_from_json=None, max_rejections=10000) -> SearchResult:
    """Random-search baseline with the same budget semantics and trial store.

    Taught in 02-aging-evolution.
    """
    return run_search("random_search", space, evaluate, resources, bounds=bounds,
                      objectives=objectives, budget=budget, seed=seed, directory=directory,
                      workers=workers, progress=progress, overwrite=overwrite, cap=cap,
                      arch_from_json=arch_from_json, max_rejections=max_rejections)


def mcunet_evolution(space, evaluate, resources=None, *, bounds, objectives=None,
                     population_size=100, n_mutation=50, n_crossover=50, mutate_prob=0.1,
                     parent_ratio=0.25, iterations=30, seed=0, directory, workers=1, progress=True,
                     overwrite=False, cap=DEFAULT_CAP, arch_from_json=None,
                     max_rejections=10000) -> SearchResult:
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
                      parent_ratio=parent_ratio, max_rejections=max_rejections)


# ---------------------------------------------------------------------------
# Adapters for the helpers.spaces architectures (taught in 02-aging-evolution)
# ---------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class Candidate:
    """A searched candidate: an architecture plus its structured-pruning ``sparsity``.

    μNAS searches the pruning sparsity together with the network; with pruning
    off every candidate has ``sparsity == 0``.  ``to_json()`` is a dict
    ``{"arch": ..., "sparsity": ...}`` (the trial store keeps it as sorted
    JSON text); ``hash`` is stable across runs.  Taught in 02-aging-evolution.
    """

    arch: Any
    sparsity: float = 0.0

    def to_json(self) -> dict:
        a = self.arch.to_json()
        return {"arch": json.loads(a) if isinstance(a, str) else dict(a),
                "sparsity": round(float(self.sparsity), 4)}

    @property
    def hash(self) -> str:
        return hashlib.sha1(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Candidate(arch={getattr(self.arch, 'hash', '?')}, sparsity={self.sparsity:.2f})"


class ArchSpace:
    """A search space over :mod:`helpers.spaces` architectures, for the search drivers.

    ``arch_cls`` (default ``spaces.GranularArch``) and its bounds ``space``
    (e.g. ``spaces.GranularSpace(max_blocks=4, max_filters=32)``):
    ``random(rng)`` samples within the bounds and ``mutate(cand, rng)`` applies
    one morphism that stays within them (``arch.mutate(rng)`` alone would use
    the paper's default bounds).  ``sparsity=(lo, hi)`` makes structured-pruning
    sparsity a searched variable (μNAS): sampled on a grid of ``sparsity_step``
    and, with probability ``p_sparsity``, mutated by one step instead of the
    architecture; ``None`` = no pruning.  Candidates are :class:`Candidate`.
    Picklable (workers).  Taught in 02-aging-evolution.
    """

    def __init__(self, arch_cls=None, space=None, *, sparsity=None, sparsity_step: float = 0.05,
                 p_sparsity: float = 0.1):
        if arch_cls is None:
            from helpers import spaces as _spaces
            arch_cls = _spaces.GranularArch
        if not hasattr(arch_cls, "random") or not hasattr(arch_cls, "from_dict"):
            raise ValueError(f"arch_cls must be an architecture class of helpers.spaces "
                             f"(GranularArch); got {arch_cls!r}")
        self.arch_cls, self.space = arch_cls, space
        if sparsity is not None:
            lo, hi = (float(x) for x in sparsity)
            if not (0.0 <= lo <= hi < 1.0):
                raise ValueError(f"sparsity must be None or (lo, hi) with 0 <= lo <= hi < 1; got {sparsity!r}")
            if not (0 < sparsity_step < 1):
                raise ValueError(f"sparsity_step must be in (0, 1); got {sparsity_step}")
            sparsity = (lo, hi)
        if not 0.0 <= p_sparsity <= 1.0:
            raise ValueError(f"p_sparsity must be in [0, 1]; got {p_sparsity}")
        self.sparsity, self.sparsity_step, self.p_sparsity = sparsity, float(sparsity_step), float(p_sparsity)

    def _grid(self):
        lo, hi = self.sparsity
        n = int(math.floor((hi - lo) / self.sparsity_step + 1e-9))
        return [round(lo + i * self.sparsity_step, 4) for i in range(n + 1)]

    def random(self, rng) -> Candidate:
        arch = self.arch_cls.random(rng, self.space)
        s = float(rng.choice(self._grid())) if self.sparsity else 0.0
        return Candidate(arch, s)

    def mutate(self, cand, rng) -> Candidate:
        if not isinstance(cand, Candidate):
            cand = Candidate(cand, 0.0)
        if self.sparsity and len(self._grid()) > 1 and rng.random() < self.p_sparsity:
            g = self._grid()
            i = int(np.argmin([abs(x - cand.sparsity) for x in g]))
            j = int(np.clip(i + rng.choice([-1, 1]), 0, len(g) - 1))
            if j == i:
                j = 1 if i == 0 else i - 1
            return Candidate(cand.arch, g[j])
        return Candidate(cand.arch.mutate(rng, self.space), cand.sparsity)

    def from_json(self, obj) -> Candidate:
        d = json.loads(obj) if isinstance(obj, str) else obj
        if not isinstance(d, Mapping) or "arch" not in d:
            raise ValueError(f"candidate JSON must be {{'arch': ..., 'sparsity': ...}}; got {obj!r:.200}")
        return Candidate(self.arch_cls.from_dict(d["arch"]), float(d.get("sparsity", 0.0)))

    def __repr__(self) -> str:
        return f"ArchSpace({self.arch_cls.__name__}, {self.space}, sparsity={self.sparsity})"


def arch_resources(arch, input_shape, num_classes, *, plan: str = "reordered",
                   include_input: bool = False) -> dict:
    """Resource objectives of an architecture (or :class:`Candidate`) for MCU searches.

    From :mod:`helpers.resources`' exact graph model (no TensorFlow, ~ms):

    * ``peak_sram_bytes``: peak live activation bytes under ``plan`` ("reordered":
      the best operator order, as μNAS), kernel scratch included, tensors
      rounded up to 16 B as in TFLite-Micro.  μNAS's definition excludes the
      network input (and the weights), so ``include_input=False`` (default)
      leaves the input tensor out; TFLite-Micro's arena head includes it.
    * ``flash_bytes``: int8 weights + int32 biases (μNAS "model size"), and
      ``tflite_bytes``: the whole ``.tflite`` file (graph, quantisation, header).
    * ``macs``, ``params``.

    Taught in 02-aging-evolution.
    """
    from helpers import resources as _res

    a = getattr(arch, "arch", arch)
    g = _res.graph_from_layers(a.layers(input_shape, num_classes))
    fl = _res.flash_bytes(g)
    macs, params = g.macs, g.params
    if not include_input:
        for t in g.inputs:
            g.tensors[t].const = True  # not planned: outside the activation arena
    mp = _res.plan(g, plan)
    return {"peak_sram_bytes": int(mp.peak_bytes), "flash_bytes": int(fl["weights"] + fl["biases"]),
            "macs": int(macs), "params": int(params), "tflite_bytes": int(fl["total"])}


class ArchResources:
    """``resources(candidate)`` for the searches: :func:`arch_resources` before training.

    For a pruned candidate (``sparsity`` s > 0) the dense network's peak SRAM,
    flash and MACs are scaled by (1 − s) for the pre-training screen (removing
    a fraction s of channels shrinks activations about linearly and weights
    and MACs about quadratically, so this keeps borderline candidates; it is a
    screen, not a bound); the dense values are kept as ``dense_*``.  The
    objectives recorded for a trained candidate are re-measured by
    ``evaluate`` on the pruned architecture.  Picklable.  Taught in 02-aging-evolution.
    """

    KEYS = ("peak_sram_bytes", "flash_bytes", "macs")

    def __init__(self, input_shape, num_classes, *, plan: str = "reordered",
                 include_input: bool = False):
        self.input_shape, self.num_classes = tuple(int(x) for x in input_shape), int(num_classes)
        self.plan, self.include_input = plan, bool(include_input)

    def __call__(self, cand) -> dict:
        r = arch_resources(cand, self.input_shape, self.num_classes, plan=self.plan,
                           include_input=self.include_input)
        s = float(getattr(cand, "sparsity", 0.0) or 0.0)
        if s > 0:
            for k in self.KEYS:
                r["dense_" + k] = r[k]
                r[k] = int(round(r[k] * (1.0 - s)))
        return r


# ---------------------------------------------------------------------------
# Bayesian optimisation with random scalarisations (SpArSe; 03-sparse-pruning)
# ---------------------------------------------------------------------------
def _build_bo_class():
    """Create :class:`BayesianOracle` (needs keras-tuner, scikit-learn, scipy)."""
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module

    TS = trial_module.TrialStatus
    ArchOracle = _LAZY["ArchOracle"]

    class BayesianOracle(ArchOracle):
        """SpArSe multi-objective Bayesian optimisation with random scalarisations.

        The space must give the fixed-length encoding: ``space.hyperparameters()``
        (keras-tuner ``HyperParameters``, conditional slots allowed),
        ``space.to_values(arch)`` and ``space.from_values(values)``
        (:class:`helpers.sparse.SparseSpace` does).

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
          minimised over a pool of ``pool_size`` candidates - half random,
          half 1-2 morphisms of the best completed candidates under this λ -
          that are new and pass the pre-training resource bounds, so no
          proposal is wasted on a rejected candidate.  ``"lbfgs"``:
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
                     acquisition="pool", pool_size=256, lag=None, **kw):
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
                                 "to_values(arch) and from_values(values) (e.g. helpers.sparse.SparseSpace)")
            self.num_initial_points = int(num_initial_points)
            self.wait_from = self.num_initial_points  # the random initial design never waits
            self.beta = float(beta)
            self.alpha = float(alpha)
            self.acquisition = acquisition
            self.pool_size = int(pool_size)
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
            return [hp.value_to_prob(values[hp.name] if hp.name in values else hp.default)
                    for hp in inner._nonfixed_space()]

        def _add(self, inner, tid, values, score):
            import copy

            hps = copy.copy(inner.hyperparameters)  # HyperParameters.copy() re-deserialises (slow)
            hps.values = dict(values)
            t = trial_module.Trial(hps, trial_id=str(tid), status=trial_module.TrialStatus.COMPLETED)
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
                cand = self.space.from_values(values)
                info = {"ucb": None, "pool": 0}
            else:
                cand, info = self._pool_argmin(inner, scored, lam)
            self.lambda_history.append({"after_trials": len(self.start_order),
                                        "lambdas": [float(x) for x in lam],
                                        "objectives": list(self.bounded_names), **info})
            return cand, "bo", ""

        def _pool_argmin(self, inner, scored, lam):
            x, y = inner._vectorize_trials()
            x = np.nan_to_num(x, posinf=0, neginf=0)
            y = np.nan_to_num(y, posinf=0, neginf=0)
            with warnings.catch_warnings():  # sklearn's length-scale ConvergenceWarning on few points
                warnings.simplefilter("ignore")
                inner.gpr.fit(x, y)
            tried = self._tried_keys()
            scored.sort(key=lambda z: z[0])
            elite = [a for _, _, a in scored[:5]]
            pool, keys = [], set()
            n_local = self.pool_size // 2
            for i in range(self.pool_size * 4):
                if len(pool) >= self.pool_size:
                    break
                if i < n_local * 2 and elite:
                    mut = (lambda a: self.space.mutate(a, self.rng)) if hasattr(self.space, "mutate") \
                        else (lambda a: a.mutate(self.rng))
                    c = mut(elite[int(self.rng.integers(len(elite)))])
                    if self.rng.random() < 0.5:
                        c = mut(c)
                else:
                    c = self.space.random(self.rng)
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
            if not pool:
                return self.space.random(self.rng), {"ucb": None, "pool": 0}
            X = np.array([self._vector(inner, self.space.to_values(c)) for c in pool])
            mu, sd = inner.gpr.predict(X, return_std=True)
            ucb = np.asarray(mu).ravel() - self.beta * np.asarray(sd).ravel()
            j = int(np.argmin(ucb))
            return pool[j], {"ucb": float(ucb[j]), "mu": float(np.ravel(mu)[j]),
                             "sigma": float(np.ravel(sd)[j]), "pool": len(pool)}

    _LAZY["BayesianOracle"] = BayesianOracle


def bayesian_optimization(space, evaluate, resources=None, *, bounds, objectives=None, budget=100,
                          num_initial_points=10, beta=2.6, alpha=1e-4, acquisition="pool",
                          pool_size=256, seed=0, directory, workers=1, progress=True,
                          overwrite=False, cap=DEFAULT_CAP, arch_from_json=None,
                          max_rejections=10000, lag=None) -> SearchResult:
    """SpArSe multi-objective Bayesian optimisation on the shared trial store.

    See :class:`BayesianOracle` for the algorithm and :func:`run_search` for
    the arguments (resume, workers, rejection of over-bound candidates).
    ``lag`` (default: ``workers`` for a new search, the stored value when
    resuming) makes a multi-worker search independent of the workers' timing.
    Taught in 03-sparse-pruning.
    """
    return run_search("bayesian_optimization", space, evaluate, resources, bounds=bounds,
                      objectives=objectives, budget=budget, seed=seed, directory=directory,
                      workers=workers, progress=progress, overwrite=overwrite, cap=cap,
                      arch_from_json=arch_from_json, num_initial_points=num_initial_points,
                      beta=beta, alpha=alpha, acquisition=acquisition, pool_size=pool_size,
                      max_rejections=max_rejections, lag=lag)


if __name__ == "__main__":  # python -m helpers.search worker SPEC
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip TensorFlow's slow interpreter teardown; all state is on disk
    else:
        sys.exit("usage: python -m helpers.search worker SPEC_PICKLE")

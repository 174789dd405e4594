"""The trial store: what a search writes to disk, and :class:`SearchResult` to read it back.

Taught in 02-aging-evolution; read by every search notebook and 07-comparison
(:func:`load_search`).  Every trial is a keras-tuner trial folder
(``trial_<id>/trial.json``) written as soon as it finishes; ``oracle.json`` holds the
oracle state (start and end order, RNG state, rejected candidates), so a killed search
resumes with no finished trial lost or repeated.  Reading a store needs no keras-tuner.

Architecture protocol (what a search space provides)
----------------------------------------------------
``space.random(rng) -> arch`` and an architecture object with
``arch.to_json() -> str | dict``, ``arch.mutate(rng) -> arch``, optionally
``arch.key() -> str`` or a ``hash`` string property (stable hash) and, for MCUNet evolution,
``arch.crossover(other, rng) -> arch`` and ``arch.mutate(rng, prob)``.
Decoding uses ``space.from_json(s)`` if the space has it, else the
``arch_from_json`` argument (e.g. ``MyArch.from_json``).  All randomness must
come from the ``rng`` (a ``numpy.random.Generator``) passed in.

May import: :mod:`helpers.search.objectives`. No TensorFlow, no keras-tuner.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from helpers.search.objectives import hypervolume_history, pareto_front

_HP_NAMES = ("arch", "arch_kind", "origin", "parent", "resources", "result")


# ---------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------
@runtime_checkable
class Architecture(Protocol):
    """What an architecture object must provide (see module docstring).
    Taught in 02-aging-evolution.
    """

    def to_json(self) -> "str | dict": ...

    def mutate(self, rng: np.random.Generator) -> "Architecture": ...


@runtime_checkable
class SearchSpace(Protocol):
    """What a search space must provide: ``random(rng)`` (and ideally ``from_json``).
    Taught in 02-aging-evolution.
    """

    def random(self, rng: np.random.Generator) -> Architecture: ...



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



class SearchFailedError(RuntimeError):
    """A search that stopped on an error: ``resumable`` says whether running it again can help
    (a dead worker or an interruption: yes; every trial failing the same way: no).
    Taught in 02-aging-evolution."""

    def __init__(self, message: str, *, resumable: bool):
        super().__init__(message)
        self.resumable = bool(resumable)


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
    ``n + 1`` completed trials; ``oracle_state`` what the algorithm kept of its own (BO: the
    λ of every proposal, ``lambda_history``).  Taught in 02-aging-evolution.
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
    #: the oracle's own persisted state (e.g. BO's ``lambda_history``), from ``oracle.json``
    oracle_state: dict = dataclasses.field(default_factory=dict)

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
        row["feasible"] = bool(res.get("feasible", False)) if res else False
        row["seed"] = res.get("seed") if res else None
        row["wall_time_s"] = res.get("wall_time_s") if res else np.nan
        row["worker"] = res.get("worker") if res else None
        row["message"] = t.get("message") or ((res or {}).get("error") if res else None)
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
                        stop_reason=state.get("tinynas", {}).get("stop_reason"),
                        oracle_state=dict(state.get("tinynas", {}).get("extra") or {}))



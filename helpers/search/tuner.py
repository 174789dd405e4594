"""The keras-tuner tuner that trains (evaluates) each proposed architecture and stores its result.

Taught in 02-aging-evolution.  :class:`ArchTuner` is a keras-tuner ``BaseTuner``: it decodes a
trial's architecture, calls the user's ``evaluate(arch, trial_seed)`` inside
:func:`helpers.train.release_graphs` (each trial's TensorFlow graphs are freed), and writes
the exact objectives, feasibility, seed and wall time into the trial.

Heavy: imports keras-tuner (TensorFlow). May import: :mod:`helpers.search.objectives`,
:mod:`helpers.search.store`, :mod:`helpers.train`.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from typing import Mapping

import keras_tuner as kt
import numpy as np
from keras_tuner.engine.base_tuner import BaseTuner

from helpers.search.objectives import normalise, trial_seed
from helpers.search.store import _arch_key, _atomic_write_json, _feasible, _json_default
from helpers.train import release_graphs


class ArchTuner(BaseTuner):
    """keras-tuner BaseTuner whose trial = ``evaluate(arch, trial_seed)``.

    ``evaluate`` returns a dict with every objective (resource objectives
    may come from the pre-training ``resources`` dict instead) plus any
    JSON-able extra information (training curve summary, pruned
    architecture, ...), stored under ``info``.  The exact record goes to
    the trial's ``result`` hyperparameter (strings cross keras-tuner's gRPC
    exactly; its metrics are float32). An ``evaluate`` with a true
    ``wants_trial`` attribute is called as ``evaluate(arch, seed, trial_id=...,
    parent=<parent trial id or None>, store=<the search's project folder>)``
    (network morphism keeps weights there). Taught in 02-aging-evolution.
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
        try:
            with release_graphs():
                if getattr(self._evaluate, "wants_trial", False):   # e.g. network morphism
                    out = self._evaluate(arch, seed, trial_id=trial.trial_id,
                                         parent=v.get("parent") or None, store=self.project_dir)
                else:
                    out = self._evaluate(arch, seed)
        except Exception as e:
            # keras-tuner sends a worker's trial to the chief without its message: keep the
            # error with the trial's values, so the chief can show it when the search stops
            trial.hyperparameters.values["result"] = json.dumps(
                {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:],
                 "seed": seed, "worker": self.tuner_id, "finished_at": time.time()},
                default=_json_default)
            raise
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

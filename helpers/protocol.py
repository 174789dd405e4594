"""One benchmark protocol for every method: same task, target, limits, budget and seeds.

Taught in 07-comparison. A :class:`Protocol` fixes

* the **task** (dataset and the training / validation subsets the searches use),
* the **target** MCU and its **limits**: TFLite-Micro arena head (``peak_sram_bytes``),
  ``.tflite`` size (``flash_bytes``), MACs (the latency limit as the searches see it, since
  emulating every candidate would cost more than training it) and ``latency_ms`` (checked on
  the deployed models, emulated on the target),
* the **objectives** and the hypervolume's **reference point** (test error 1, the SRAM and
  flash limits),
* the **budget**: CPU-seconds of the whole search, supernet training included, measured
  with :func:`time.process_time` in the job's own process (one TensorFlow thread), and
* the **seeds**.

Every method runs under it (:data:`METHODS`): random search and μNAS aging evolution over the
granular space of 02, SpArSe Bayesian optimisation over the SpArSe space of 03, MicroNets DNAS
over the DS-CNN supernet of 04, and Once-for-All (progressive shrinking, then MCUNet's
evolution with inherited weights) over a MobileNetV2 block space as in 05. A search stops at
the first trial that would start after its budget is spent (the running trial finishes, so
a search overshoots by at most one trial; the record says by how much). DNAS and OFA size
their epochs to the budget from the cost of their first epoch.

Then every method's finalists (up to ``finalists`` models of its Pareto front over the
search's own estimates, best-error first) are **trained the same way** (``epochs_final``
epochs on ``n_train_final`` examples, Adam, seeded), converted to int8 and **measured by one
harness** (:func:`helpers.deploy.measure_deployed`: TFLite-Micro accuracy on the test split,
arena head and total, flash, emulated latency on the target). This final training is the
same for every method and is recorded beside the search cost, not charged to it: the
comparison is of what each search finds, not of how its paper trains the winner (OFA's
inherited weights are used only inside its search).

Each (task, method, seed) is one job in its own spawned process (``workers`` at a time),
stored as JSON under the run folder as soon as it ends: an interrupted run resumes where it
stopped. A job that raises is recorded with its error and the others go on; any other
failure (a dead worker process) stops the whole run at once, no process left behind.

May import every layer below (data, deploy, methods, search, run); a top layer, beside
:mod:`helpers.compare`.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from helpers import data as D
from helpers import deploy, plots, spaces, stats, targets, train
from helpers.protocol_methods import RUNNERS, resized
from helpers.run import seed_everything
from helpers.search.objectives import hypervolume, pareto_mask
from helpers.search.store import _atomic_write_json

__all__ = ["Protocol", "TASKS", "METHODS", "protocol", "run_all", "run_job", "load_records",
           "deployed_table", "summary_table", "anytime_table", "hypervolume_of", "claims",
           "seed_order", "separated", "report", "plot", "summary_dict", "method_label"]

#: method id -> (label, paper)
METHODS = {
    "random": ("Random search", "baseline (μNAS / SpArSe space of 02)"),
    "aging_evolution": ("μNAS aging evolution", "Liberis et al. 2020"),
    "bayesian_optimization": ("SpArSe Bayesian optimisation", "Fedorov et al. 2019"),
    "dnas": ("MicroNets DNAS", "Banbury et al. 2021"),
    "ofa": ("OFA supernet + evolution", "Cai et al. 2020 / Lin et al. 2020"),
}


def method_label(m: str) -> str:
    """The table label of a method id (``"dnas"`` -> ``"MicroNets DNAS"``). Taught in 07-comparison."""
    return METHODS[m][0]


@dataclass(frozen=True)
class Protocol:
    """One task on one target under one budget (see the module docstring).

    ``budget_cpu_s``: CPU-seconds per search; ``seeds``: one job per method and seed;
    ``n_train`` / ``n_val``: the stratified subsets every search trains / validates on
    (0: all); ``epochs_trial``: epochs per trained candidate (random, aging evolution, BO, and
    the proxy score of DNAS's result); ``n_train_final`` / ``epochs_final``: the one final
    training of every finalist; ``n_test``: test examples of the int8 measurement (0: all);
    ``error_bound``: the bound on the proxy error the searches scalarise with (μNAS and
    SpArSe divide each objective by its bound); ``finalists``: models deployed per job.
    """

    task: str
    target: str
    peak_sram_bytes: int
    flash_bytes: int
    macs: int
    latency_ms: float
    error_bound: float
    budget_cpu_s: float
    seeds: tuple = (0,)
    n_train: int = 4000
    n_val: int = 1000
    epochs_trial: int = 1
    n_train_final: int = 10000
    epochs_final: int = 3
    n_test: int = 0
    finalists: int = 2
    limits_source: str = ""

    @property
    def limits(self) -> dict:
        return {"peak_sram_bytes": self.peak_sram_bytes, "flash_bytes": self.flash_bytes,
                "macs": self.macs, "latency_ms": self.latency_ms}

    @property
    def search_bounds(self) -> dict:
        return {"error": self.error_bound, "peak_sram_bytes": self.peak_sram_bytes,
                "flash_bytes": self.flash_bytes, "macs": self.macs}

    @property
    def reference(self) -> dict:
        """The hypervolume's reference point, in the objectives' units."""
        return {"error": 1.0, "peak_sram_bytes": self.peak_sram_bytes, "flash_bytes": self.flash_bytes}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        return d

    def describe(self) -> str:
        return (f"{self.task} on {self.target}: arena head <= {self.peak_sram_bytes:,} B, .tflite <= "
                f"{self.flash_bytes:,} B, <= {self.macs:,} MACs, latency <= {self.latency_ms:g} ms; "
                f"{self.budget_cpu_s:g} CPU-s per search, seeds {list(self.seeds)}; candidates train "
                f"{self.epochs_trial} epoch(s) on {self.n_train or 'all'} examples, finalists "
                f"{self.epochs_final} epochs on {self.n_train_final or 'all'}"
                + (f"\n  limits: {self.limits_source}" if self.limits_source else ""))


#: The two tasks of the comparison (budgets and seeds are set per preset, see :func:`protocol`).
TASKS = {
    "mnist": Protocol(
        task="mnist", target="stm32f446re", peak_sram_bytes=4096, flash_bytes=12288,
        macs=30_000_000, latency_ms=200.0, error_bound=0.3, budget_cpu_s=60.0,
        limits_source="μNAS/SpArSe class: μNAS's MNIST bounds (2,500 B activations without the input, "
                      "4,500 B weights, 30M MACs) as TFLite-Micro counts them: the 784 B input and 16 B "
                      "alignment make the arena head <= 4 KB, the graph a .tflite carries makes the file "
                      "<= 12 KB"),
    "kws": Protocol(
        task="kws", target="stm32f446re", peak_sram_bytes=53248, flash_bytes=104448,
        macs=8_200_000, latency_ms=250.0, error_bound=0.8, budget_cpu_s=60.0,
        n_train=0, n_val=0, n_train_final=0, epochs_trial=2, epochs_final=8,
        limits_source="MicroNets-S class on the STM32F446RE: MicroNets KWS-S's published footprint "
                      "(52 KB SRAM, 102 KB flash, 16.4 Mops = 8.2M MACs, 0.25 s; Banbury et al. 2021) "
                      "as the limits"),
}


def protocol(task: str, **overrides) -> Protocol:
    """The task's protocol with ``overrides`` (e.g. ``budget_cpu_s=120, seeds=(0, 1, 2)``);
    every value is checked, a bad one raises ``ValueError`` naming it. Taught in 07-comparison."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {task!r}")
    fields = set(Protocol.__dataclass_fields__)
    bad = sorted(set(overrides) - fields)
    if bad:
        raise ValueError(f"unknown protocol field(s) {bad}; fields: {sorted(fields)}")
    if "seeds" in overrides:
        overrides["seeds"] = tuple(int(s) for s in overrides["seeds"])
    p = replace(TASKS[task], **overrides)
    checks = {"budget_cpu_s": p.budget_cpu_s > 0, "seeds": len(p.seeds) >= 1 and len(set(p.seeds)) == len(p.seeds),
              "peak_sram_bytes": p.peak_sram_bytes > 0, "flash_bytes": p.flash_bytes > 0, "macs": p.macs > 0,
              "latency_ms": p.latency_ms > 0, "error_bound": 0 < p.error_bound <= 1,
              "epochs_trial": p.epochs_trial >= 1, "epochs_final": p.epochs_final >= 1,
              "finalists": p.finalists >= 1, "n_train": p.n_train >= 0, "n_val": p.n_val >= 0,
              "n_train_final": p.n_train_final >= 0, "n_test": p.n_test >= 0}
    for k, ok in checks.items():
        if not ok:
            raise ValueError(f"protocol {k} = {getattr(p, k)!r} is not allowed")
    targets.get(p.target)
    return p


# ============================================================================ the clock
class CpuClock:
    """CPU-seconds of this process since construction (all its threads), against a budget."""

    def __init__(self, budget_s: float):
        self.budget_s = float(budget_s)
        self.t0 = time.process_time()

    def spent(self) -> float:
        return time.process_time() - self.t0

    def left(self) -> float:
        return self.budget_s - self.spent()

    def __call__(self):  # search.run_search(stop_when=...)
        s = self.spent()
        return f"CPU budget spent ({s:.1f} of {self.budget_s:g} s)" if s >= self.budget_s else None


# ============================================================================ one job
def _front(rows: list, k: int) -> list:
    """Up to ``k`` rows of the non-dominated set (error, SRAM, flash) of the rows, best error first."""
    if not rows:
        return []
    pts = np.array([[r["error"], r["peak_sram_bytes"], r["flash_bytes"]] for r in rows], float)
    keep = np.flatnonzero(pareto_mask(pts))
    order = sorted(keep, key=lambda i: (pts[i, 0], pts[i, 1], pts[i, 2]))
    seen, out = set(), []
    for i in order:
        if rows[i]["arch"] not in seen:
            seen.add(rows[i]["arch"])
            out.append(rows[i])
        if len(out) == k:
            break
    return out


def _feasible_row(p: Protocol, r: dict) -> bool:
    """Within the limits (the error bound only steers the searches' scalarisation)."""
    return (r["peak_sram_bytes"] <= p.peak_sram_bytes and r["flash_bytes"] <= p.flash_bytes
            and r["macs"] <= p.macs)


def _deploy(p: Protocol, arch_json: str, seed: int, data_final, data_full) -> dict:
    import keras
    arch = spaces.from_json(arch_json)
    r = getattr(arch, "resolution", None)
    if r is not None and tuple(data_full.input_shape[:2]) != (r, r):
        # MCUNet / OFA deploy a subnet at its resolution: the sensor pipeline delivers r x r
        # images, so the model has no resize operator (our engine has none either)
        data_final, data_full = resized(data_final, r), resized(data_full, r)
    c0 = time.process_time()
    model = spaces.build(arch, data_final.input_shape, data_final.num_classes, seed=seed)
    tr = train.fit(model, data_final, p.epochs_final, lr=3e-3, seed=seed, progress=False)
    tfl = deploy.to_tflite_int8(model, data_final.x_train[:256])
    keras.backend.clear_session()
    train_cpu = time.process_time() - c0
    dep = deploy.measure_deployed(tfl, data_full, p.target, n_test=p.n_test or None, emulate=True)
    f = dep.to_dict()
    lat = f.get("emulated_latency_ms")
    f.update(arch=arch_json, val_accuracy_float=float(tr.val_accuracy[-1]) if tr.val_accuracy else None,
             final_train_cpu_s=train_cpu,
             fits_sram=f["tflm_arena_head_bytes"] <= p.peak_sram_bytes, fits_flash=len(tfl) <= p.flash_bytes,
             fits_latency=(lat is not None and lat <= p.latency_ms))
    f["feasible"] = bool(f["fits_sram"] and f["fits_flash"] and f["fits_latency"])
    return f


def _job_path(directory: Path, task: str, method: str, seed: int) -> Path:
    return Path(directory) / f"{task}-{method}-s{seed}.json"


def run_job(p: Protocol, method: str, seed: int, directory) -> dict:
    """Run one method under ``p`` with ``seed`` and deploy its finalists; returns the record
    (also written to ``directory``). Exceptions are recorded (``error``), not raised. Taught in 07-comparison."""
    directory = Path(directory)
    work = directory / ".work" / f"{p.task}-{method}-s{seed}"   # trial stores, checkpoints: removed on success
    work.mkdir(parents=True, exist_ok=True)
    rec = {"task": p.task, "method": method, "seed": int(seed), "protocol": p.to_dict(),
           "host_cpus": os.cpu_count()}
    t0, c_start = time.time(), time.process_time()
    try:
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
        seed_everything(seed)
        data = D.load_cached(p.task, p.n_train, p.n_val, seed)
        clock = CpuClock(p.budget_cpu_s)
        out = RUNNERS[method](p, seed, work, clock, data)
        rec["search_cpu_s"] = clock.spent()
        rec["search_wall_s"] = time.time() - t0
        rec.update(out)
        rows = out["trials"]
        for r in rows:
            r["feasible"] = _feasible_row(p, r)
        rec["n_trials"] = len(rows)
        rec["n_feasible"] = int(sum(r["feasible"] for r in rows))
        fin = _front([r for r in rows if r["feasible"]], p.finalists)
        if not fin and rows:  # nothing feasible: deploy the closest candidate, marked infeasible
            fin = [min(rows, key=lambda r: max(r["peak_sram_bytes"] / p.peak_sram_bytes,
                                              r["flash_bytes"] / p.flash_bytes, r["macs"] / p.macs))]
        full = D.load(p.task, seed=0)
        final = full.subset(n_train=p.n_train_final or None, seed=seed) if p.n_train_final else full
        rec["deployed"] = [dict(_deploy(p, r["arch"], seed, final, full), search_error=r["error"])
                           for r in fin]
    except Exception as e:  # recorded: the table shows it, the other jobs go on
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc()[-4000:]
    rec["wall_s"] = time.time() - t0
    rec["cpu_s"] = time.process_time() - c_start
    if "error" not in rec:
        __import__("shutil").rmtree(work, ignore_errors=True)
    _atomic_write_json(str(_job_path(directory, p.task, method, seed)), rec)
    return rec


def _worker_init():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    import warnings
    warnings.filterwarnings("ignore")


def _job_main(args):
    _worker_init()
    p_dict, method, seed, directory = args
    d = dict(p_dict)
    d["seeds"] = tuple(d["seeds"])
    return run_job(Protocol(**d), method, seed, directory)


def run_all(protocols: Sequence[Protocol], methods: Sequence[str], directory, *, workers: int = 2,
            progress: bool = True) -> list[dict]:
    """Every (protocol, method, seed) job, ``workers`` at a time in spawned processes; finished
    jobs found in ``directory`` are loaded, not rerun. Returns the records, in job order. Taught in 07-comparison."""
    import concurrent.futures as cf
    import multiprocessing as mp
    from tqdm.auto import tqdm
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"methods must be among {list(METHODS)}; got {bad}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    jobs = [(p, m, s) for p in protocols for m in methods for s in p.seeds]
    todo = [j for j in jobs if not _job_path(directory, j[0].task, j[1], j[2]).exists()]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), disable=not progress, unit="job",
               desc="protocol")
    if todo:
        ex = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        try:
            futs = {ex.submit(_job_main, (p.to_dict(), m, s, str(directory))): (p.task, m, s) for p, m, s in todo}
            for f in cf.as_completed(futs):
                rec = f.result()  # a dead worker raises BrokenProcessPool here
                bar.set_postfix_str(f"{rec['task']} {rec['method']} s{rec['seed']}"
                                    + (f" ERROR {rec['error'][:60]}" if "error" in rec else ""))
                bar.update(1)
        except BaseException:
            for proc in list(getattr(ex, "_processes", {}).values()):
                proc.terminate()
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        ex.shutdown(wait=True)
    bar.close()
    return [json.loads(_job_path(directory, p.task, m, s).read_text()) for p, m, s in jobs]


def load_records(directory) -> list[dict]:
    """Every job record under ``directory`` (e.g. a committed ``results/`` folder). Taught in 07-comparison."""
    return [json.loads(f.read_text()) for f in sorted(Path(directory).glob("*-s*.json"))]


# ============================================================================ tables
def deployed_table(records):
    """One row per deployed model: method, seed, measured figures, feasibility. Taught in 07-comparison."""
    import pandas as pd
    rows = []
    for r in records:
        for i, d in enumerate(r.get("deployed", [])):
            rows.append({"task": r["task"], "method": r["method"], "seed": r["seed"], "finalist": i,
                         **{k: d.get(k) for k in (
                             "test_accuracy_int8", "tflm_arena_head_bytes", "tflm_arena_total_bytes",
                             "peak_sram_inplace_bytes", "emulated_sram_bytes", "flash_bytes", "macs",
                             "emulated_latency_ms", "feasible", "search_error", "final_train_cpu_s")}})
    return pd.DataFrame(rows)


def hypervolume_of(record: dict) -> float:
    """Hypervolume of a job's feasible deployed models: (test error, arena head / SRAM limit,
    flash / flash limit), reference point (1, 1, 1); 0 when none is feasible. Taught in 07-comparison."""
    p = record["protocol"]
    pts = [[1.0 - d["test_accuracy_int8"], d["tflm_arena_head_bytes"] / p["peak_sram_bytes"],
            d["flash_bytes"] / p["flash_bytes"]] for d in record.get("deployed", []) if d.get("feasible")]
    return float(hypervolume(np.array(pts, float), np.ones(3))) if pts else 0.0


def _best_acc(record: dict) -> float:
    accs = [d["test_accuracy_int8"] for d in record.get("deployed", []) if d.get("feasible")]
    return max(accs) if accs else float("nan")


def _spread(v):
    v = np.asarray([x for x in v if x is not None and np.isfinite(x)], float)
    if not len(v):
        return float("nan"), float("nan"), float("nan"), 0
    return float(v.mean()), float(v.min()), float(v.max()), len(v)


def summary_table(records):
    """Per task and method: seeds, trials, search CPU, best feasible deployed int8 accuracy and
    hypervolume as mean [min, max] over seeds, and the deployed figures of the best models. Taught in 07-comparison."""
    import pandas as pd
    out = []
    for task in dict.fromkeys(r["task"] for r in records):
        for m in METHODS:
            rs = [r for r in records if r["task"] == task and r["method"] == m]
            if not rs:
                continue
            ok = [r for r in rs if "error" not in r]
            acc = _spread([_best_acc(r) for r in ok])
            hv = _spread([hypervolume_of(r) for r in ok])
            best = [max((d for d in r["deployed"] if d.get("feasible")), key=lambda d: d["test_accuracy_int8"],
                        default=None) for r in ok]
            best = [b for b in best if b]
            med = lambda k: float(np.median([b[k] for b in best if b.get(k) is not None])) if best else float("nan")
            out.append({
                "task": task, "method": method_label(m), "id": m, "seeds": len(rs), "failed": len(rs) - len(ok),
                "trials (mean)": float(np.mean([r["n_trials"] for r in ok])) if ok else float("nan"),
                "search CPU-s (mean)": float(np.mean([r["search_cpu_s"] for r in ok])) if ok else float("nan"),
                "seeds with a feasible model": sum(1 for r in ok if np.isfinite(_best_acc(r))),
                "best int8 acc mean": acc[0], "best int8 acc min": acc[1], "best int8 acc max": acc[2],
                "HV mean": hv[0], "HV min": hv[1], "HV max": hv[2],
                "arena head B (median best)": med("tflm_arena_head_bytes"),
                "arena total B (median best)": med("tflm_arena_total_bytes"),
                "flash B (median best)": med("flash_bytes"),
                "latency ms (median best)": med("emulated_latency_ms"),
                "error": "; ".join(sorted({r["error"][:120] for r in rs if "error" in r})),
            })
    return pd.DataFrame(out)


def anytime_table(records, grid_points: int = 40):
    """Best-so-far accuracy (each method's own estimate during its search) vs CPU-seconds, on
    a common grid per task: one row per (task, method, grid point) with median, min and max
    over seeds (NaN before a seed's first trial). Taught in 07-comparison."""
    import pandas as pd
    rows = []
    for task in dict.fromkeys(r["task"] for r in records):
        rs = [r for r in records if r["task"] == task and "error" not in r]
        if not rs:
            continue
        tmax = max(max((t["cpu_s"] for t in r["trials"]), default=0.0) for r in rs)
        grid = np.linspace(0, tmax, grid_points)
        for m in METHODS:
            curves = []
            for r in (r for r in rs if r["method"] == m):
                ts = sorted(r["trials"], key=lambda t: t["cpu_s"])
                best, xs, ys = -np.inf, [], []
                for t in ts:
                    if t["feasible"]:
                        best = max(best, 1.0 - t["error"])
                    xs.append(t["cpu_s"])
                    ys.append(best if np.isfinite(best) else np.nan)
                c = np.full(len(grid), np.nan)
                for i, g in enumerate(grid):
                    j = np.searchsorted(xs, g, side="right") - 1
                    if j >= 0:
                        c[i] = ys[j]
                curves.append(c)
            if not curves:
                continue
            C = np.array(curves)
            for i, g in enumerate(grid):
                col = C[:, i]
                fin = col[np.isfinite(col)]
                rows.append({"task": task, "method": method_label(m), "cpu_s": float(g),
                             "median": float(np.median(fin)) if len(fin) else np.nan,
                             "min": float(fin.min()) if len(fin) else np.nan,
                             "max": float(fin.max()) if len(fin) else np.nan, "n": int(len(fin))})
    return pd.DataFrame(rows)


def seed_order(records) -> dict:
    """Per task: the methods ranked by hypervolume in each seed, and whether the order changed. Taught in 07-comparison."""
    out = {}
    for task in dict.fromkeys(r["task"] for r in records):
        seeds = sorted({r["seed"] for r in records if r["task"] == task})
        orders = {}
        for s in seeds:
            hv = {r["method"]: hypervolume_of(r) for r in records
                  if r["task"] == task and r["seed"] == s and "error" not in r}
            orders[s] = [method_label(m) for m in sorted(hv, key=lambda m: -hv[m])]
        out[task] = {"orders": orders, "changed": len({tuple(o) for o in orders.values()}) > 1}
    return out


def separated(records) -> list[str]:
    """Per task, the pairs of methods whose seed ranges (min-max) of best int8 accuracy or of
    hypervolume do not overlap: the differences larger than the spread. Taught in 07-comparison."""
    out = []
    for task in dict.fromkeys(r["task"] for r in records):
        for name, fn in (("best int8 accuracy", _best_acc), ("hypervolume", hypervolume_of)):
            vals = {m: [fn(r) for r in records if r["task"] == task and r["method"] == m and "error" not in r]
                    for m in METHODS}
            vals = {m: v for m, v in vals.items() if len(v) >= 2 and np.isfinite(v).all()}
            for a in vals:
                for b in vals:
                    if a != b and min(vals[a]) > max(vals[b]):
                        out.append(f"{task}: {method_label(a)} > {method_label(b)} in {name} "
                                   f"(min {min(vals[a]):.4g} > max {max(vals[b]):.4g}, {len(vals[a])} vs {len(vals[b])} seeds)")
    return out


def _dominated(a, b) -> bool:  # a dominated by b (minimisation)
    return bool(np.all(b <= a) and np.any(b < a))


def claims(records, *, seed: int = 0) -> list:
    """The survey's qualitative claims, each as a :class:`helpers.stats.Verdict` over seeds
    (Welch t over the seeds' values, :func:`helpers.stats.welch_ci`; a share of deployed models the
    exact binomial interval, :func:`helpers.stats.proportion_ci`; the ratio over deployed models a
    percentile bootstrap; a claim with a method missing is left out). Taught in 07-comparison."""
    out = []

    def per(task, m, fn):
        return np.array([fn(r) for r in records if r["task"] == task and r["method"] == m and "error" not in r],
                        float)

    a, b = per("mnist", "aging_evolution", hypervolume_of), per("mnist", "bayesian_optimization", hypervolume_of)
    if len(a) and len(b):
        out.append(stats.verdict(stats.welch_ci(a, b),
                                 claim="MNIST: μNAS aging evolution's deployed hypervolume exceeds SpArSe BO's"))
    a, b = per("mnist", "aging_evolution", _best_acc), per("mnist", "bayesian_optimization", _best_acc)
    if len(a) and len(b) and np.isfinite(a).all() and np.isfinite(b).all():
        out.append(stats.verdict(stats.welch_ci(a, b),
                                 claim="MNIST: μNAS's best feasible int8 accuracy exceeds SpArSe's"))
    dn = [r for r in records if r["task"] == "kws" and r["method"] == "dnas" and "error" not in r]
    of = [r for r in records if r["task"] == "kws" and r["method"] == "ofa" and "error" not in r]
    if dn and of:
        def pts(rs):
            return [np.array([1 - d["test_accuracy_int8"], d["tflm_arena_head_bytes"], d["flash_bytes"]], float)
                    for r in rs for d in r["deployed"] if d.get("feasible")]
        op = pts(of)
        nd = np.array([0.0 if any(_dominated(x, o) for o in op) else 1.0 for x in pts(dn)])
        if len(nd):
            out.append(stats.verdict(stats.proportion_ci(int(nd.sum()), len(nd)),
                                     claim="KWS: share of MicroNets DNAS models no OFA model dominates "
                                           "(error, arena head, flash)", null=0.5))
    ratios = np.array([d["tflm_arena_total_bytes"] / d["emulated_sram_bytes"] for r in records if "error" not in r
                       for d in r.get("deployed", []) if d.get("emulated_sram_bytes")], float)
    if len(ratios):
        out.append(stats.verdict(stats.bootstrap_ci(ratios, np.mean, n=2000, seed=seed),
                                 claim="co-designed engine: TFLM arena total / our engine's measured SRAM "
                                       "(every deployed model)", null=1.0))
    return out


def summary_dict(records, *, seed: int = 0) -> dict:
    """The summary table, the claims (estimate, interval, n, verdict) and the seed orders of
    ``records`` as one JSON-able dict (what the README quotes). Taught in 07-comparison."""
    summ = summary_table(records)
    return {"jobs": len(records), "failed": sum("error" in r for r in records),
            "tasks": sorted({r["task"] for r in records}),
            "seeds": sorted({r["seed"] for r in records}),
            "budget_cpu_s": sorted({r["protocol"]["budget_cpu_s"] for r in records}),
            "search_cpu_s_total": float(sum(r.get("search_cpu_s", 0.0) for r in records)),
            "final_train_cpu_s_total": float(sum(d.get("final_train_cpu_s", 0.0) for r in records
                                                 for d in r.get("deployed", []))),
            "job_wall_s_total": float(sum(r.get("wall_s", 0.0) for r in records)),
            "summary": json.loads(summ.to_json(orient="records")),
            "claims": [{"claim": v.claim, "estimate": v.estimate, "low": v.low, "high": v.high,
                        "n": list(v.n) if isinstance(v.n, tuple) else v.n, "verdict": v.word,
                        "summary": v.summary()} for v in claims(records, seed=seed)],
            "separated": separated(records),
            "seed_order": {t: {"orders": {str(k): o for k, o in v["orders"].items()}, "changed": v["changed"]}
                           for t, v in seed_order(records).items()}}


def report(records, *, seed: int = 0) -> list[str]:
    """The verdict lines: each claim with its interval, the differences larger than the spread,
    the order by hypervolume per seed. Taught in 07-comparison."""
    out = ["- " + v.summary() for v in claims(records, seed=seed)]
    gaps = separated(records)
    out.append("differences larger than the spread over seeds:" + ("" if gaps else " none"))
    out += ["   " + g for g in gaps]
    return out + [f"{t}: order by hypervolume per seed {o['orders']} -> "
                  f"{'changed between seeds' if o['changed'] else 'the same in every seed'}"
                  for t, o in seed_order(records).items()]


def plot(records) -> list:
    """Per task one figure: the anytime curves (DNAS's one result per seed as markers) and the
    deployed fronts against the task's limits (from the records). Taught in 07-comparison."""
    import matplotlib.pyplot as plt
    anytime, dep, figs = anytime_table(records), deployed_table(records), []
    for task, p in {r["task"]: r["protocol"] for r in records}.items():
        one_shot = [(t["cpu_s"], 1 - t["error"]) for r in records if r["task"] == task
                    and r["method"] == "dnas" and "error" not in r for t in r["trials"]]
        fig, axes = plt.subplots(1, 3, figsize=(18, 4))
        plots.anytime_curves(anytime, task, ax=axes[0], points={method_label("dnas"): one_shot})
        plots.deployed_fronts(dep, task, p["peak_sram_bytes"], p["flash_bytes"], axes=axes[1:])
        fig.tight_layout()
        figs.append(fig)
    return figs


def main(argv=None) -> int:
    """``python -m helpers.protocol summary DIR [--json FILE]``: print (and save) the summary of
    the job records in DIR. Taught in 07-comparison."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m helpers.protocol")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summary", help="summarise the job records of a folder")
    s.add_argument("directory")
    s.add_argument("--json", default=None, help="write the summary to this file")
    a = ap.parse_args(argv)
    recs = load_records(a.directory)
    if not recs:
        print(f"error: no job records (*-s*.json) in {a.directory}")
        return 2
    d = summary_dict(recs)
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary_table(recs).drop(columns="id").round(4).to_string(index=False))
    print("\n".join(report(recs)))
    if a.json:
        Path(a.json).write_text(json.dumps(d, indent=1, ensure_ascii=False) + "\n")
        print("wrote", a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

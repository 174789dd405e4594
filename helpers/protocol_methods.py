"""The five methods as the comparison protocol runs them (notebook 07, :mod:`helpers.protocol`).

Each ``run_<method>(p, seed, directory, clock, data)`` runs one search of :class:`helpers.protocol.Protocol`
``p`` until ``clock`` (a :class:`helpers.protocol.CpuClock`: ``spent()``, ``left()`` and, as a
search's ``stop_when``, ``clock()``) says its budget is spent, and returns ``{"trials": [rows],
...}``: one row per trained or evaluated candidate with the CPU-seconds spent so far, the method's
own error estimate and the resources of the model it would deploy. :data:`RUNNERS` maps the
method ids to them. Taught in 07-comparison.

May import every layer below (methods, search, spaces); layer 6, used by
:mod:`helpers.protocol` only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers import search, spaces
from helpers.methods import micronets, munas, ofa
from helpers.methods import micronets_space as MS
from helpers.methods import sparse as SP
from helpers.methods import sparse_eval as SE

__all__ = ["RUNNERS", "resized"]


def _arch_of(x):
    return getattr(x, "arch", x)

class _Resources:
    """The pre-training resources of every method's candidates (:func:`munas.arch_resources`
    with TFLite-Micro's plan, input included): arena head, ``.tflite`` size, MACs."""

    def __init__(self, input_shape, num_classes):
        self.input_shape, self.num_classes = tuple(input_shape), int(num_classes)

    def __call__(self, cand) -> dict:
        r = munas.arch_resources(cand, self.input_shape, self.num_classes, plan="tflm", include_input=True)
        return {k: r[k] for k in ("peak_sram_bytes", "flash_bytes", "macs")}


class _Logged:
    """Wraps a search's ``evaluate``: after every trial, one row with the CPU time spent so
    far, the method's own accuracy estimate and the resources of the model it would deploy."""

    def __init__(self, evaluate, clock, res, rows, offset_s: float = 0.0):
        self.evaluate, self.clock, self.res, self.rows, self.offset_s = evaluate, clock, res, rows, offset_s

    def __call__(self, cand, trial_seed):
        out = dict(self.evaluate(cand, trial_seed))
        arch = spaces.from_json(out["pruned_arch"]) if out.get("pruned_arch") else _arch_of(cand)
        r = self.res(arch)
        self.rows.append({"cpu_s": self.clock.spent() + self.offset_s, "error": float(out["error"]),
                          **r, "arch": arch.to_json()})
        return out


# ============================================================================ the methods
def _granular_space():
    return munas.ArchSpace(spaces.GranularArch,
                           spaces.GranularSpace(max_blocks=4, max_filters=32, max_units=64),
                           sparsity=(0.0, 0.5))


def _search_trials(p: "Protocol", method: str, seed: int, directory: Path, clock, data) -> dict:
    res = _Resources(data.input_shape, data.num_classes)
    rows: list = []
    common = dict(bounds=p.search_bounds, budget=100000, seed=seed, directory=directory / method,
                  overwrite=True, progress=False, stop_when=clock)
    if method in ("random", "aging_evolution"):
        ev = munas.ArchEvaluator(p.task, epochs=p.epochs_trial, n_train=p.n_train, n_val=p.n_val,
                                 lr=0.01, batch_size=32, data_seed=seed, plan="tflm", include_input=True)
        space = _granular_space()
        if method == "random":
            r = search.random_search(space, _Logged(ev, clock, res, rows), res, **common)
        else:
            # the population scaled to the budget (μNAS: 100 of 2,000 rounds); a trial costs a few s
            pop = int(min(20, max(5, p.budget_cpu_s // 15)))
            r = search.aging_evolution(space, _Logged(ev, clock, res, rows), res, population_size=pop,
                                       sample_size=max(2, pop // 3), **common)
    else:
        ev = SE.SparseEvaluator(p.task, epochs=p.epochs_trial, n_train=p.n_train, n_val=p.n_val,
                                data_seed=seed)
        space = SP.SparseSpace(granular=spaces.GranularSpace(
            max_blocks=3, max_layers=2, max_filters=16, kernels=(3, 5), pool_sizes=(2, 3, 4), max_dense=2,
            min_units=10, max_units=32), sparsity=(0.0, 0.8), structured=(False, True), lr=(2e-3, 1e-2))
        r = search.bayesian_optimization(space, _Logged(ev, clock, res, rows), res,
                                         num_initial_points=int(min(20, max(5, p.budget_cpu_s // 15))),
                                         pool_size=256, **common)
    return {"trials": rows, "rejected": len(r.rejected), "stop": "budget"}


def _dnas(p: "Protocol", seed: int, directory: Path, clock, data) -> dict:
    space = MS.DNASSpace(data.input_shape, data.num_classes, widths=(8, 16, 24, 32, 40, 48, 56, 64), n_blocks=4)
    big = MS.exact_resources(space, [max(o) for _, o in space.nodes])
    tg = {"working_memory": float(p.peak_sram_bytes),
          "model_size": float(p.flash_bytes - (big["flash_bytes"] - big["model_size"])), "ops": 2.0 * p.macs}
    net = micronets.DNASSupernet(space, seed=seed)
    c0 = clock.spent()
    micronets.warmup(net, data, 1, seed=seed, progress=False)
    per_epoch = max(clock.spent() - c0, 1e-3)
    proxy_cost = per_epoch  # the proxy training of the result: about one epoch
    # a search epoch was measured at about half the warm-up epoch (which also traces the graphs)
    epochs = int(max(1, min(40, (clock.left() - proxy_cost) // (0.6 * per_epoch))))
    r = micronets.search(space, data, tg, epochs=epochs, seed=seed, net=net, init_state=net.get_state(),
                         progress=False)
    arch = r.arch
    res = _Resources(data.input_shape, data.num_classes)
    ev = munas.ArchEvaluator(p.task, epochs=p.epochs_trial, n_train=p.n_train, n_val=p.n_val, lr=0.01,
                             batch_size=32, data_seed=seed, pruning=False, plan="tflm", include_input=True)
    out = ev(arch, seed)
    rows = [{"cpu_s": clock.spent(), "error": float(out["error"]), **res(arch), "arch": arch.to_json()}]
    return {"trials": rows, "rejected": 0, "stop": f"{1 + epochs} epochs (1 warm-up + {epochs} search)",
            "dnas_epochs": epochs, "dnas_targets": tg}


def _ofa(p: "Protocol", seed: int, directory: Path, clock, data) -> dict:
    H = data.input_shape[0]
    square = data.input_shape[0] == data.input_shape[1]
    if square:
        res_list = tuple(r for r in (12, 16, 20, 24, 28) if r <= H) or (H,)
        bs = spaces.BlockSpace(kernels=(3, 5), expansions=(1, 2, 3), depths=(1, 2), widths=(0.5,),
                               resolutions=res_list, stem=(8, 2), first_channels=8, stages=((16, 2), (24, 2)))
    else:  # a spectrogram: one resolution (the input's height), the width kept as it is
        res_list = (H,)
        bs = spaces.BlockSpace(kernels=(3, 5), expansions=(1, 2, 3), depths=(1, 2), widths=(0.5,),
                               resolutions=res_list, stem=(16, 2), first_channels=16,
                               stages=((24, 2), (40, 2), (48, 1)))
    net = ofa.Supernet(bs, 0.5, res_list, data.input_shape, data.num_classes, seed=seed,
                       directory=directory / "ofa")
    x, y = data.x_train, data.y_train
    # progressive shrinking sized to half the budget: the full network one epoch, then one
    # elastic-kernel epoch to measure what an elastic epoch costs, then k epochs of kernel,
    # depth and expansion each, trained epoch by epoch while the half budget lasts
    net.train(x, y, ofa.progressive_schedule(bs, [1, 1, 0, 0, 0, 0]), tag="ps", seed=seed, progress=False)
    elastic = max(clock.spent() / 2.0, 1e-3)
    k = int(max(1, (0.5 * p.budget_cpu_s - clock.spent()) // (3 * elastic)))
    sched = ofa.progressive_schedule(bs, [1, k, 0, k, 0, k])
    extra = 0
    while clock.spent() < 0.5 * p.budget_cpu_s:
        n0 = len(net.log.rows)
        net.train(x, y, sched, tag="ps", seed=seed, stop_after_epochs=1, progress=False)
        if len(net.log.rows) == n0:
            break
        extra += 1
    extra += 1
    supernet_cpu = clock.spent()
    x_calib = x[:256]
    xv, yv = data.x_val[:500], data.y_val[:500]

    def inherited(arch, trial_seed):
        return {"error": 1.0 - net.evaluate(arch, xv, yv, x_calib)}

    res = _Resources(data.input_shape, data.num_classes)
    rows: list = []
    r = search.mcunet_evolution(ofa.SubnetSpace(net.space), _Logged(inherited, clock, res, rows), res,
                                bounds=p.search_bounds, population_size=20, n_mutation=10, n_crossover=10,
                                iterations=500, seed=seed, directory=directory / "ofa-evolution",
                                overwrite=True, progress=False, stop_when=clock)
    return {"trials": rows, "rejected": len(r.rejected), "stop": "budget",
            "supernet_epochs": 1 + extra, "supernet_cpu_s": supernet_cpu}


def resized(ds, r: int):
    """``ds`` with every image resized (bilinear, as the model's own resize layer) to r x r.
    Taught in 07-comparison."""
    import dataclasses
    import tensorflow as tf

    def rs(x):
        return np.asarray(tf.image.resize(x, (r, r), method="bilinear"), np.float32)
    return dataclasses.replace(ds, x_train=rs(ds.x_train), x_val=rs(ds.x_val), x_test=rs(ds.x_test))


def _search_method(method):
    def run(p, seed, directory, clock, data):
        return _search_trials(p, method, seed, directory, clock, data)
    return run


#: method id -> runner
RUNNERS = {"random": _search_method("random"), "aging_evolution": _search_method("aging_evolution"),
           "bayesian_optimization": _search_method("bayesian_optimization"), "dnas": _dnas, "ofa": _ofa}

"""μNAS (02-aging-evolution): its candidates, space adapter, resource objectives and trial evaluator.

Taught in 02-aging-evolution (Liberis et al., μNAS). :class:`Candidate` (an architecture plus
its structured-pruning sparsity), :class:`ArchSpace` (the granular space for the search
drivers, with morphisms that stay within its bounds), :func:`arch_resources` (the exact
pre-training objectives), :func:`evaluate_arch` / :class:`ArchEvaluator` (train one
candidate with Dynamic Pruning with Feedback and measure the pruned network).
The search itself is :func:`helpers.search.aging_evolution`.
:func:`minimum_resources` / :func:`check_bounds` say before any work whether a bound can be met.
May import: :mod:`helpers.data`, :mod:`helpers.params`, :mod:`helpers.spaces`,
:mod:`helpers.resources`, :mod:`helpers.train`, :mod:`helpers.prune`, :mod:`helpers.deploy`. TensorFlow is imported lazily.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from typing import Any, Mapping

import numpy as np

from helpers import data as _data
from helpers import deploy as _deploy
from helpers import params as _params
from helpers import prune, spaces
from helpers import resources as _res
from helpers import spaces as _spaces
from helpers.train import accuracy, compile_model

__all__ = ["Candidate", "ArchSpace", "arch_resources", "ArchResources", "evaluate_arch",
           "ArchEvaluator", "smallest_archs", "minimum_resources", "check_bounds", "weights_removed",
           "train_and_deploy"]

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
    * ``weights_bytes``: int8 weights + int32 biases (μNAS "model size"), and
      ``flash_bytes``: the whole ``.tflite`` file (graph, quantisation, header).
    * ``macs``, ``params``.

    Taught in 02-aging-evolution.
    """

    a = getattr(arch, "arch", arch)
    g = _res.graph_from_layers(a.layers(input_shape, num_classes))
    fl = _res.flash_bytes(g)
    macs, params = g.macs, g.params
    if not include_input:
        for t in g.inputs:
            g.tensors[t].const = True  # not planned: outside the activation arena
    mp = _res.plan(g, plan)
    return {"peak_sram_bytes": int(mp.peak_sram_bytes), "weights_bytes": int(fl["weights"] + fl["biases"]),
            "macs": int(macs), "params": int(params), "flash_bytes": int(fl["total"])}


def smallest_archs(space=None, *, first_layer_types=None) -> list:
    """The smallest architectures of a granular space: one block of one layer of the fewest
    filters and the smallest kernel, every choice of layer type, stride, pre-pool,
    batch-norm and pooling, no hidden dense layer (the classifier only).

    Every architecture of the space contains a first layer and a classifier at least this
    large, so the minimum of a resource over these is the least any architecture of the
    space needs. ``first_layer_types``: the allowed types of the first layer (default: all).
    Taught in 02-aging-evolution.
    """
    s = space or _spaces.DEFAULT_GRANULAR
    types = tuple(first_layer_types or _spaces.GRANULAR_LAYER_TYPES)
    k = min(s.kernels)
    out = []
    for t in types:
        for stride in (1, 2):
            for pool in (False, True):
                for bn in (False, True):
                    for pooling in ("avg", "max"):
                        for pool_size in (0,) + tuple(s.pool_sizes):
                            layer = _spaces.ConvLayer(type=t, filters=0 if t == "dwconv" else s.min_filters,
                                                      kernel=1 if t == "conv1x1" else k, stride=stride,
                                                      batch_norm=bn, relu=False)
                            out.append(_spaces.GranularArch(blocks=[_spaces.ConvBlock([layer], pool=pool)],
                                                            pooling=pooling, pool_size=pool_size, dense=[]))
    return out


def minimum_resources(input_shape, num_classes, space=None, *, plan: str = "reordered",
                      include_input: bool = False) -> dict:
    """The least of each :func:`arch_resources` objective (``peak_sram_bytes``,
    ``weights_bytes``, ``flash_bytes``, ``macs``, ``params``) any architecture of the granular
    ``space`` needs (the minimum over :func:`smallest_archs`; each objective on its own).
    No training, no TensorFlow: milliseconds. Taught in 02-aging-evolution.
    """
    best: dict = {}
    for a in smallest_archs(space):
        r = arch_resources(a, input_shape, num_classes, plan=plan, include_input=include_input)
        for key, v in r.items():
            best[key] = min(best.get(key, v), v)
    return best


_UNITS = {"peak_sram_bytes": "B of peak SRAM", "weights_bytes": "B of weights + biases",
          "flash_bytes": "B of flash", "macs": "MACs", "params": "parameters"}


def _too_small(need, objective, space, input_shape) -> str:
    f = (space or _spaces.DEFAULT_GRANULAR).min_filters
    return (f"must be >= {need:,}: the smallest architecture of the space (one layer of {f} "
            f"filter{'s' if f != 1 else ''} + the classifier, input {tuple(input_shape)}) needs "
            f"{need:,} {_UNITS.get(objective, objective)}")


def check_bounds(bounds: Mapping, input_shape, num_classes, space=None, *, plan: str = "reordered",
                 include_input: bool = False) -> dict:
    """Raise :class:`helpers.params.ParameterError` naming the first bound no architecture of
    ``space`` can meet, and the least any architecture needs; returns the minimums.

    ``bounds``: ``{parameter name: (objective of arch_resources, bound or None)}``, e.g.
    ``{"PEAK_SRAM_BOUND": ("peak_sram_bytes", 2500)}``: checked before any work so that an
    impossible bound fails at once rather than after thousands of rejected samples.
    Taught in 02-aging-evolution.
    """
    need = minimum_resources(input_shape, num_classes, space, plan=plan, include_input=include_input)
    for name, (objective, bound) in bounds.items():
        if objective not in need:
            raise ValueError(f"{name}: objective {objective!r} unknown; allowed {sorted(need)}")
        if bound is not None and bound < need[objective]:
            raise _params.ParameterError(name, bound, _too_small(need[objective], objective, space,
                                                                 input_shape))
    return need


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

    KEYS = ("peak_sram_bytes", "weights_bytes", "macs")

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
def _pruned_granular(arch, widths: dict):
    """Copy of a GranularArch with conv filters / dense units set to the pruned widths."""
    new = arch.copy()
    for bi, b in enumerate(new.blocks):
        for li, layer in enumerate(b.layers):
            if layer.type == "dwconv":
                continue
            name = f"b{bi}_l{li}_{layer.type}"
            if name in widths:
                layer.filters = int(widths[name])
    for di, d in enumerate(new.dense):
        if f"dense{di}" in widths:
            d.units = int(widths[f"dense{di}"])
    return new


def evaluate_arch(arch, data, epochs: int = 1, *, sparsity: float | None = None, seed: int = 0,
                  lr: float = 3e-3, batch_size: int = 64, max_seconds: float | None = None,
                  plan: str = "reordered", include_input: bool = False,
                  lr_decay: bool = False, return_model: bool = False) -> dict:
    """Train one searched architecture (optionally with structured pruning) and measure it.

    ``arch``: a :class:`helpers.spaces.GranularArch` or a :class:`Candidate`
    (its ``sparsity`` is used unless ``sparsity`` is given). The model is built with
    ``seed``, trained for ``epochs`` (one ``fit`` call, Adam at ``lr``, cosine-decayed to 0
    over the run if ``lr_decay``, data order seeded, at most ``max_seconds``) with μNAS's structured DPF pruning to ``sparsity`` when > 0 (cubic
    schedule reaching the target at 80 % of the steps, masks applied at the end; an
    architecture without a prunable convolution is trained dense, ``achieved_sparsity`` 0;
    hidden Dense layers are not pruned, so they stay within the space's unit bounds); the surviving channel counts are
    written back into the architecture (``pruned_arch``) and the resource objectives
    are those of that pruned architecture (:func:`arch_resources`, with
    ``plan`` and ``include_input``). Returns a JSON-able dict: ``error`` (1 − validation
    accuracy of the final, pruned model), ``val_accuracy``, ``peak_sram_bytes``,
    ``weights_bytes``, ``flash_bytes``, ``macs``, ``params``, ``sparsity``,
    ``achieved_sparsity``, ``pruned_arch`` (JSON), ``loss_first``/``loss_last``,
    ``train_seconds``, ``epochs_run``; with ``return_model`` also ``model`` (the trained
    Keras model, masked, original widths). Taught in 02-aging-evolution.
    """
    import keras


    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    a = getattr(arch, "arch", arch)
    s = float(getattr(arch, "sparsity", 0.0) if sparsity is None else sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {s}")
    t0 = time.time()
    model = spaces.build(a, data.input_shape, data.num_classes, seed=seed)
    n = len(data.x_train)
    steps = epochs * (-(-n // batch_size))
    compile_model(model, keras.optimizers.schedules.CosineDecay(lr, steps) if lr_decay else lr)
    cbs = []
    pr = None
    # convolutions only: a pruned hidden Dense could fall below the space's minimum units
    dense_names = tuple(f"dense{i}" for i in range(len(getattr(a, "dense", []))))
    if s > 0 and prune.channel_groups(model, exclude=dense_names):  # else nothing prunable: dense
        pr = prune.structured_pruning(s, end_step=max(0, int(0.8 * steps) - 1), exclude=dense_names)
        cbs.append(pr)

    class _Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if max_seconds is not None and time.time() - t0 > max_seconds:
                self.model.stop_training = True

    cbs.append(_Budget())
    order = np.random.default_rng(seed).permutation(n)
    h = model.fit(data.x_train[order], data.y_train[order], batch_size=batch_size, epochs=epochs,
                  shuffle=True, callbacks=cbs, verbose=0)
    val_acc = accuracy(model, data.x_val, data.y_val)
    pruned = a
    achieved = 0.0
    if pr is not None:
        survivors = prune.surviving_channels(model, pr.channel_masks)
        pruned = _pruned_granular(a, prune.pruned_widths(model, survivors))
        achieved = float(pr.sparsity)
    res = arch_resources(pruned, data.input_shape, data.num_classes, plan=plan,
                                include_input=include_input)
    loss = [float(v) for v in h.history.get("loss", [])]
    out = {"error": 1.0 - val_acc, "val_accuracy": val_acc, **res, "sparsity": s,
           "achieved_sparsity": achieved, "pruned_arch": pruned.to_json(),
           "loss_first": loss[0] if loss else float("nan"),
           "loss_last": loss[-1] if loss else float("nan"),
           "epochs_run": len(loss), "train_seconds": time.time() - t0}
    if return_model:
        out["model"] = model
    return out


class ArchEvaluator:
    """``evaluate(candidate, trial_seed) -> dict`` for the searches (picklable for workers).

    Loads ``dataset`` once per process (module cache; nothing big is pickled),
    takes a stratified subset of ``n_train`` / ``n_val`` examples (0 = all) and
    calls :func:`evaluate_arch` with ``epochs``, ``lr``, ``max_seconds``. Pruning
    follows each candidate's ``sparsity`` (set ``pruning=False`` to ignore it).
    Taught in 02-aging-evolution.
    """

    def __init__(self, dataset: str = "mnist", *, epochs: int = 1, n_train: int = 0, n_val: int = 0,
                 lr: float = 3e-3, batch_size: int = 64, max_seconds: float | None = None,
                 pruning: bool = True, data_seed: int = 0, plan: str = "reordered",
                 include_input: bool = False):
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        self.dataset, self.epochs, self.n_train, self.n_val = dataset, epochs, int(n_train), int(n_val)
        self.lr, self.batch_size, self.max_seconds = float(lr), int(batch_size), max_seconds
        self.pruning, self.data_seed = bool(pruning), int(data_seed)
        self.plan, self.include_input = plan, bool(include_input)

    def data(self):
        """The (cached) dataset the trials train on."""
        return _data.load_cached(self.dataset, self.n_train, self.n_val, self.data_seed)

    def __call__(self, cand, trial_seed: int) -> dict:
        return evaluate_arch(cand, self.data(), self.epochs,
                             sparsity=None if self.pruning else 0.0, seed=int(trial_seed) % (2**31),
                             lr=self.lr, batch_size=self.batch_size, max_seconds=self.max_seconds,
                             plan=self.plan, include_input=self.include_input)


def weights_removed(cand, pruned_arch, input_shape, num_classes) -> float:
    """Share of a searched candidate's int8 weight bytes its structured pruning removed:
    ``1 - weights(pruned_arch) / weights(cand's unpruned architecture)`` (``pruned_arch``: the
    JSON the evaluator records). Taught in 02-aging-evolution."""
    dense = arch_resources(getattr(cand, "arch", cand), input_shape, num_classes)["weights_bytes"]
    pruned = arch_resources(_spaces.from_json(pruned_arch), input_shape, num_classes)["weights_bytes"]
    return 1.0 - pruned / max(dense, 1)


def train_and_deploy(arch, data, epochs: int, *, seed: int = 0, lr: float = 1e-2, batch_size: int = 128,
                     n_calib: int = 256) -> dict:
    """Train ``arch`` dense with the final recipe (:func:`evaluate_arch`, cosine decay), convert
    to int8 and measure it in TFLite-Micro (:func:`helpers.deploy.measure_deployed`): returns
    ``tflite`` (bytes), ``deployed`` (figures), ``correct`` (per test image, for paired
    intervals), ``params``, ``train_seconds``. Taught in 02-aging-evolution."""
    r = evaluate_arch(arch, data, epochs, sparsity=0.0, seed=seed, lr=lr, batch_size=batch_size,
                      lr_decay=True, return_model=True)
    tfl = _deploy.to_tflite_int8(r.pop("model"), data.x_train[:n_calib])
    dep = _deploy.measure_deployed(tfl, data, emulate=False)
    correct = np.argmax(_deploy.tflm_predict(tfl, data.x_test), axis=1) == np.asarray(data.y_test)
    return {"tflite": tfl, "deployed": dep, "correct": correct,
            "params": _res.profile(tfl, plan="tflm", table=False).params,
            "train_seconds": r["train_seconds"]}

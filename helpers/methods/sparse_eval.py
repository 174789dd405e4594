"""SpArSe trial evaluation: train a candidate with its pruning, optionally from its parent's
weights (network morphism), and measure the three SpArSe objectives.

Taught in 03-sparse-pruning (SpArSe, Fedorov et al. 2019). :func:`train_candidate` builds a
candidate of :class:`helpers.methods.sparse.SparseSpace`, trains it with its pruning schedule
(:mod:`helpers.prune`) and returns the pruned model; :class:`SparseEvaluator` is the picklable
``evaluate(candidate, trial_seed)`` the search drivers call.

**Network morphism inside the search.** SpArSe grows candidates from trained parents, so a
child starts from its parent's weights and needs fewer epochs. With
``SparseEvaluator(inherit=True)`` the evaluator asks the tuner for the trial's id, its parent
trial (the BO oracle records which trained candidate a pool morphism came from; aging
evolution records the mutated parent) and the search's store; every trained candidate's
weights are kept there (``weights/<trial id>.npz``, :func:`helpers.inherit.save_weights`),
and a child whose parent is stored starts from it (:func:`helpers.inherit.inherit_weights`).
When at least ``min_inherited`` of its weight tensors took the parent's values (a grown child
inherits every layer it shares with its parent but a small share of its values, so the share
of tensors is the criterion) it trains ``epochs_inherited`` epochs instead of ``epochs``: that
is the saving, recorded per trial (``inherited_tensors``, ``inherited_fraction`` of the
values, ``inherited_from``, ``epochs_run``). Random candidates, and children
whose parent is not stored (a resumed store made without inheritance), train from scratch.

May import: :mod:`helpers.data`, :mod:`helpers.prune`, :mod:`helpers.resources`,
:mod:`helpers.spaces`, :mod:`helpers.train`, :mod:`helpers.inherit`,
:mod:`helpers.methods.sparse`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from helpers import data as D
from helpers import inherit as I
from helpers import prune as P
from helpers import resources as R
from helpers import spaces as S
from helpers import train as T
from helpers.methods.sparse import (SparseCandidate, apply_widths, arch_from_dict_unchecked,
                                    arch_model_size, model_size, working_memory)

__all__ = ["train_candidate", "SparseEvaluator"]


def train_candidate(cand: SparseCandidate, data, *, epochs: int = 1, batch_size: int = 64,
                    seed: int = 0, max_seconds: float | None = None, progress: bool = False,
                    parent_weights: dict | None = None, epochs_inherited: int | None = None,
                    min_inherited: float = 0.5):
    """Build, train with the candidate's pruning, return ``(model, info)``.

    The model is the pruned one (masks applied; structured pruning zeroes
    whole channels).  ``info``: ``val_accuracy``, achieved ``sparsity``,
    ``pruning`` ("unstructured" / "structured" / "none" with the reason),
    ``pruned_arch`` (JSON of the architecture with surviving widths, for
    structured pruning), ``train_seconds``, ``epochs_run``.  With
    ``parent_weights`` (:func:`helpers.inherit.load_weights`) the model starts
    from them where shapes allow, and trains ``epochs_inherited`` epochs when at
    least ``min_inherited`` of its weight tensors took the parent's values (``info``:
    ``inherited_tensors``, and ``inherited_fraction`` of its values). Taught in 03-sparse-pruning.
    """
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one new model per trial: retracing notices are expected
    model = S.build(cand.arch, data.input_shape, data.num_classes, seed=seed)
    info = {"pruning": "none (sparsity 0)", "inherited_fraction": 0.0, "inherited_tensors": 0.0}
    if parent_weights is not None:
        rep = I.inherit_weights(model, parent_weights)
        info["inherited_fraction"] = float(rep.fraction)
        info["inherited_tensors"] = float(rep.tensor_fraction)
        if epochs_inherited is not None and rep.tensor_fraction >= min_inherited:
            epochs = int(epochs_inherited)
    cbs = []
    cb = None
    if cand.sparsity > 0:
        if cand.structured:
            if P.channel_groups(model):
                cb = P.structured_pruning(cand.sparsity)
                info["pruning"] = "structured"
            else:
                info["pruning"] = "none (no prunable channel: every conv feeds a merge or the output)"
        else:
            cb = P.unstructured_pruning(cand.sparsity, prune_last=True)  # SpArSe prunes every layer
            info["pruning"] = "unstructured"
    if cb is not None:
        cbs.append(cb)
    T.compile_model(model, cand.lr)
    tr = T.fit(model, data, epochs=epochs, batch_size=batch_size, lr=cand.lr, seed=seed,
               max_seconds=max_seconds, callbacks=cbs, progress=progress)
    val_acc = T.accuracy(model, data.x_val, data.y_val)
    pruned = cand.arch
    if cb is not None and cand.structured:
        widths = P.pruned_widths(model, P.surviving_channels(model, cb.channel_masks))
        pruned = apply_widths(cand.arch, widths)
        info["pruned_widths"] = widths
    info.update({"val_accuracy": float(val_acc), "sparsity": float(cb.sparsity) if cb else 0.0,
                 "pruned_arch": pruned.to_json(), "train_seconds": float(tr.wall_seconds),
                 "epochs_run": int(tr.epochs_run), "final_train_accuracy":
                 float(tr.train_accuracy[-1]) if tr.train_accuracy else float("nan")})
    return model, info


@dataclass
class SparseEvaluator:
    """``evaluate(candidate, trial_seed) -> dict`` for the search drivers (picklable).

    Trains the candidate with its pruning on ``dataset`` (``n_train`` /
    ``n_val`` stratified subsets, 0 = all) for ``epochs`` and returns the three
    SpArSe objectives plus recorded extras: ``model_size_indexed`` (with
    sparse-index overhead), ``peak_sram_bytes`` (TFLM plan of the pruned
    architecture, :func:`helpers.resources.profile`), ``flash_bytes`` (its int8
    ``.tflite`` estimate, dense storage), ``macs``, pruning info.  With
    ``inherit=True``, network morphism: a child starts from its stored parent's
    weights and trains ``epochs_inherited`` epochs (module docstring).
    Taught in 03-sparse-pruning.
    """

    dataset: str = "mnist"
    epochs: int = 1
    batch_size: int = 64
    n_train: int = 0
    n_val: int = 0
    data_seed: int = 0
    max_seconds: float | None = None
    inherit: bool = False
    epochs_inherited: int | None = None
    min_inherited: float = 0.5

    def __post_init__(self):
        if self.epochs_inherited is not None and not 1 <= int(self.epochs_inherited) <= int(self.epochs):
            raise ValueError(f"epochs_inherited must be in [1, epochs = {self.epochs}], "
                             f"got {self.epochs_inherited!r}")
        if not 0.0 <= float(self.min_inherited) <= 1.0:
            raise ValueError(f"min_inherited must be in [0, 1], got {self.min_inherited!r}")

    @property
    def wants_trial(self) -> bool:
        """The tuner passes ``trial_id``, ``parent`` and ``store`` when this is true."""
        return bool(self.inherit)

    def data(self):
        """The (cached) dataset the trials train on."""
        return D.load_cached(self.dataset, self.n_train, self.n_val, self.data_seed)

    def __call__(self, cand: SparseCandidate, seed: int, *, trial_id: str | None = None,
                 parent: str | None = None, store: str | None = None) -> dict:
        import keras
        d = self.data()
        wdir = os.path.join(str(store), "weights") if (self.inherit and store) else None
        parent_weights, src = None, ""
        if wdir and parent:
            path = os.path.join(wdir, f"{parent}.npz")
            if os.path.exists(path):
                parent_weights, src = I.load_weights(path), str(parent)
        model, info = train_candidate(cand, d, epochs=self.epochs, batch_size=self.batch_size,
                                      seed=seed, max_seconds=self.max_seconds,
                                      parent_weights=parent_weights,
                                      epochs_inherited=self.epochs_inherited,
                                      min_inherited=self.min_inherited)
        info["inherited_from"] = src
        if wdir and trial_id is not None:
            os.makedirs(wdir, exist_ok=True)
            I.save_weights(model, os.path.join(wdir, f"{trial_id}.npz"))
        pruned = arch_from_dict_unchecked(info["pruned_arch"])
        if info["pruning"] == "structured":
            # the surviving channels are dense; a dead channel's weights also vanish from the
            # next layer's input side, which the masked Keras model still holds: count the
            # rebuilt (narrower) network
            ms = arch_model_size(pruned, d.input_shape, d.num_classes)
            ms.dense = arch_model_size(cand.arch, d.input_shape, d.num_classes).dense
        else:
            ms = model_size(model)
        g = R.graph_from_layers(pruned.layers(d.input_shape, d.num_classes))
        wm = working_memory(g)
        prof = R.profile(g, plan="tflm", table=False)
        keras.backend.clear_session()
        out = {"error": 1.0 - info["val_accuracy"], "model_size": ms.nonzero,
               "working_memory": wm.peak, "model_size_indexed": ms.indexed,
               "peak_sram_bytes": prof.peak_sram_bytes, "flash_bytes": prof.flash_bytes,
               "macs": prof.macs, "params_dense": ms.dense}
        out.update({k: v for k, v in info.items() if k != "pruned_arch"})
        out["pruned_arch"] = info["pruned_arch"]
        return out

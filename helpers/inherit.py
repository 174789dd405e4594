"""Network morphism with weight inheritance (SpArSe's warm start): a child architecture starts
from its parent's trained weights wherever the shapes allow, and what that saves in training.

Taught in 03-sparse-pruning. SpArSe (Fedorov et al., 2019) grows candidates from trained
parents by network morphism, so a child needs less training than a network started from
scratch. :func:`inherit_weights` copies, layer by layer, every weight tensor whose shape is
the parent's (layers matched by aligning the two networks' sequences of weighted layers, class
and kernel size, with :mod:`difflib`: :func:`helpers.spaces.build` names layers by position,
so after a layer is inserted or removed, names alone would misalign every later layer), and the overlapping slice of a tensor that differs only in its channel axes (a
convolution with more or fewer filters or input channels, its batch-norm vectors and bias);
other tensors keep the child's initialisation. :func:`inheritance_saving` trains the child
twice on the same data and seed, from scratch and inherited, and measures the epochs saved:
how many fewer epochs the inherited child needs to reach the from-scratch child's final
validation accuracy.

May import: :mod:`helpers.train` (Keras lazily).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from helpers import train as T

__all__ = ["InheritReport", "inherit_weights", "save_weights", "load_weights", "InheritanceSaving",
           "inheritance_saving"]

_CHANNEL_AXES = {"Conv2D": (2, 3), "DepthwiseConv2D": (2, 3), "Dense": (0, 1)}


@dataclass
class InheritReport:
    """Which weights a child took from its parent: tensors ``copied`` whole, ``partial``
    (overlapping slice), ``skipped``; ``fraction`` of the child's values inherited.
    Taught in 03-sparse-pruning."""

    copied: list = field(default_factory=list)
    partial: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    inherited_values: int = 0
    total_values: int = 0

    @property
    def fraction(self) -> float:
        return self.inherited_values / max(self.total_values, 1)

    @property
    def tensor_fraction(self) -> float:
        """Share of the child's weight tensors that took values (whole or sliced) from the
        parent: a grown child (a new layer, a classifier whose input changed) inherits every
        layer it shares with its parent yet a small share of its values."""
        n = len(self.copied) + len(self.partial)
        return n / max(n + len(self.skipped), 1)

    def summary(self) -> str:
        return (f"inherited {self.fraction:.1%} of {self.total_values:,} values, "
                f"{self.tensor_fraction:.0%} of the tensors: "
                f"{len(self.copied)} tensors whole, {len(self.partial)} in part, "
                f"{len(self.skipped)} re-initialised")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fraction"] = self.fraction
        d["tensor_fraction"] = self.tensor_fraction
        return d


def _slice_ok(kind: str, i: int, a: np.ndarray, b: np.ndarray) -> bool:
    """May tensor ``i`` of a layer of class ``kind`` be copied as an overlapping slice?"""
    if a.ndim != b.ndim:
        return False
    if a.ndim == 1:                  # bias, batch-norm vectors: per channel
        return True
    axes = _CHANNEL_AXES.get(kind)
    if axes is None or i != 0:
        return False
    if kind == "Dense":              # the input axis of a Dense layer means positions: exact only
        return a.shape[0] == b.shape[0]
    return all(a.shape[d] == b.shape[d] for d in range(a.ndim) if d not in axes)


def _layer_weights(model) -> dict:
    """``{layer name: (layer class name, [arrays])}`` of a Keras model's weighted layers."""
    return {l.name: (type(l).__name__, [np.asarray(w) for w in l.get_weights()])
            for l in model.layers if l.get_weights()}


def save_weights(model, path) -> None:
    """Store a trained Keras model's weights, layer by layer, as an ``.npz`` file that
    :func:`load_weights` reads back as a parent for :func:`inherit_weights` (a search's trial
    store keeps one per trained candidate). Written atomically. Taught in 03-sparse-pruning."""
    arrays = {f"{name}|{kind}|{i}": w for name, (kind, ws) in _layer_weights(model).items()
              for i, w in enumerate(ws)}
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_weights(path) -> dict:
    """The ``{layer name: (class name, [arrays])}`` stored by :func:`save_weights`.
    Taught in 03-sparse-pruning."""
    out: dict = {}
    with np.load(path) as z:
        for key in z.files:
            name, kind, i = key.rsplit("|", 2)
            out.setdefault(name, (kind, {}))[1][int(i)] = z[key]
    return {n: (k, [ws[i] for i in sorted(ws)]) for n, (k, ws) in out.items()}


def _signature(kind: str, ws) -> tuple:
    """What must agree for two layers to correspond: class, and a convolution's kernel size."""
    w = np.asarray(ws[0])
    if kind in _CHANNEL_AXES and kind != "Dense" and w.ndim == 4:
        return (kind, w.shape[0], w.shape[1])
    return (kind, len(ws))


def _align(child_layers, src: dict) -> dict:
    """Child layer name -> parent layer name, by aligning the two sequences of weighted layers
    (longest matching runs of signatures), so a layer inserted or removed by a morphism does
    not misalign the layers after it; layers outside every run keep their own name."""
    names = list(src)
    a = [_signature(*src[n]) for n in names]
    b = [_signature(type(l).__name__, l.get_weights()) for l in child_layers]
    out = {}
    for i, j, size in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(size):
            out[child_layers[j + k].name] = names[i + k]
    return out


def inherit_weights(child, parent) -> InheritReport:
    """Copy ``parent``'s trained weights into ``child`` where shapes allow (see the module
    docstring); returns what was copied. ``child`` is a Keras model; ``parent`` a Keras model
    or the dict :func:`load_weights` returns. Taught in 03-sparse-pruning."""
    src = parent if isinstance(parent, dict) else _layer_weights(parent)
    rep = InheritReport()
    match = _align([l for l in child.layers if l.get_weights()], src)
    for layer in child.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        rep.total_values += sum(w.size for w in ws)
        kind_p, pws = src.get(match.get(layer.name, layer.name), (None, []))
        if kind_p != type(layer).__name__:
            pws = []
        if len(pws) != len(ws):
            rep.skipped += [f"{layer.name}[{i}]" for i in range(len(ws))]
            continue
        kind = type(layer).__name__
        new = []
        for i, (w, pw) in enumerate(zip(ws, pws)):
            tag = f"{layer.name}[{i}]"
            if w.shape == pw.shape:
                new.append(pw.copy())
                rep.copied.append(tag)
                rep.inherited_values += w.size
            elif _slice_ok(kind, i, w, pw):
                out = w.copy()
                sl = tuple(slice(0, min(a, b)) for a, b in zip(w.shape, pw.shape))
                out[sl] = pw[sl]
                new.append(out)
                rep.partial.append(tag)
                rep.inherited_values += int(np.prod([s.stop for s in sl]))
            else:
                new.append(w)
                rep.skipped.append(tag)
        layer.set_weights(new)
    return rep


@dataclass
class InheritanceSaving:
    """Validation accuracy per epoch of one child trained from scratch and inherited, and
    the ``epochs_saved`` (from-scratch epochs minus the inherited child's epochs to reach the
    same final accuracy; 0 when it never does). Taught in 03-sparse-pruning."""

    epochs: int
    scratch_val_accuracy: list
    inherited_val_accuracy: list
    inherit: dict
    epochs_saved: int

    def summary(self) -> str:
        return (f"child trained {self.epochs} epoch(s): from scratch val accuracy "
                f"{self.scratch_val_accuracy[-1]:.4f}, inherited "
                f"{self.inherited_val_accuracy[-1]:.4f} (after epoch 1: "
                f"{self.scratch_val_accuracy[0]:.4f} vs {self.inherited_val_accuracy[0]:.4f}); "
                f"epochs saved {self.epochs_saved} of {self.epochs}")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self):
        import pandas as pd
        return pd.DataFrame({"epoch": np.arange(1, self.epochs + 1),
                             "from scratch": self.scratch_val_accuracy,
                             "inherited": self.inherited_val_accuracy})


def inheritance_saving(build_child, parent, data, *, epochs: int = 2, lr: float = 1e-3,
                       seed: int = 0) -> InheritanceSaving:
    """Train the child (``build_child()`` -> a fresh Keras model, same seed each call) for
    ``epochs`` from scratch and from ``parent``'s weights (:func:`inherit_weights`) on
    ``data``; validation accuracy after every epoch. Taught in 03-sparse-pruning."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    curves = {}
    rep = None
    for mode in ("scratch", "inherited"):
        m = build_child()
        if mode == "inherited":
            rep = inherit_weights(m, parent)
        T.compile_model(m, lr)
        tr = T.fit(m, data, epochs=epochs, lr=lr, seed=seed, progress=False)
        curves[mode] = [float(a) for a in tr.val_accuracy]
    target = curves["scratch"][-1]
    reach = next((i + 1 for i, a in enumerate(curves["inherited"]) if a >= target), None)
    saved = 0 if reach is None else epochs - reach
    return InheritanceSaving(epochs=epochs, scratch_val_accuracy=curves["scratch"],
                             inherited_val_accuracy=curves["inherited"], inherit=rep.to_dict(),
                             epochs_saved=int(saved))

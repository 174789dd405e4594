"""SpArSe glue: objectives, a fixed-length search parametrisation, and the trial evaluator.

Taught in 03-sparse-pruning (SpArSe, Fedorov et al. 2019).  The search engine
itself (Bayesian optimisation with random scalarisations on the shared trial
store) is :class:`helpers.search.oracles.BayesianOracle` / :func:`helpers.search.bayesian_optimization`;
this module provides what is specific to SpArSe:

* **Objectives** (SpArSe section 3):

  - f1 ``error`` = 1 - validation accuracy (float model, as in SpArSe);
  - f2 ``model_size`` = non-zero parameters (weights and biases after
    batch-norm folding), i.e. bytes at 8 bits per parameter
    (:func:`model_size`).  ``model_size_indexed`` adds the sparse-index
    overhead: every weight tensor is stored in the cheapest of dense int8
    (``n`` bytes) or bitmap + non-zeros (``ceil(n / 8) + nnz`` bytes); biases
    are stored dense (1 byte each, as in f2) - so the two differ only by the
    index;
  - f3 ``working_memory`` = max over operators of (bytes of its activation
    inputs + bytes of its outputs), int8 (:func:`working_memory`).  It is
    computed on the same converter graph IR as :func:`helpers.resources.profile`
    (so it can sit beside the exact TFLite-Micro peak SRAM): SpArSe's model
    ignores tensors kept alive for a later ``ADD`` (under-estimates with
    branches), 16-byte alignment and kernel scratch buffers (under-estimates a
    little) and counts nothing else.

* **Parametrisation** (:class:`SparseSpace`, :class:`SparseCandidate`): the
  μNAS granular space (:mod:`helpers.spaces`) with a maximum number of blocks,
  layers and dense layers, written as a *fixed-length* vector of keras-tuner
  hyperparameters (slots beyond ``n_blocks`` / ``layers`` / ``n_dense`` are
  conditional and inactive), plus training and pruning hyperparameters: the
  learning rate, the target sparsity and structured vs unstructured pruning.
  Candidates also ``mutate`` (μNAS morphisms + pruning changes), so aging
  evolution runs on exactly the same space for the side-by-side.

* **Evaluation**: :class:`helpers.methods.sparse_eval.SparseEvaluator` builds, trains with
  pruning (:mod:`helpers.prune`) and, with network morphism, from the parent's weights, and
  measures the three objectives on the pruned network.

Importing this module does not import TensorFlow.

* **Feasibility**: :func:`minimum_objectives`, :func:`check_bounds` (before any work).

May import: :mod:`helpers.params`, :mod:`helpers.spaces`, :mod:`helpers.tflite_io`,
:mod:`helpers.resources`, :mod:`helpers.search.objectives`,
:mod:`helpers.methods.munas` (the smallest architectures of a granular space).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from helpers import params as _params
from helpers import resources as R
from helpers import spaces as S
from helpers import tflite_io
from helpers.methods.munas import smallest_archs
from helpers.search.objectives import chebyshev_simplex, lambdas_simplex

__all__ = ["WorkingMemory", "working_memory", "ModelSize", "model_size", "SparseSpace",
           "SparseCandidate", "apply_widths", "arch_from_dict_unchecked", "arch_model_size", "candidate_resources",
           "lambdas_simplex", "chebyshev_simplex", "OBJECTIVES",
           "minimum_objectives", "check_bounds"]

#: objective names used in the trial store (f1, f2, f3)
OBJECTIVES = ("error", "model_size", "working_memory")

_LEARNED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


# ============================================================================ f3
@dataclass
class WorkingMemory:
    """SpArSe working memory of one network: per-operator input + output bytes.

    ``peak`` = max over operators (f3); ``layers``: one dict per operator
    (op, opcode, name, input_bytes, output_bytes, working_bytes).  Taught in
    03-sparse-pruning.
    """

    peak: int
    layers: list
    argmax: int = -1

    def table(self):
        """Per-operator DataFrame."""
        import pandas as pd
        return pd.DataFrame(self.layers)

    def summary(self) -> str:
        if not self.layers:
            return "working memory: empty graph"
        r = self.layers[self.argmax]
        return (f"SpArSe working memory {self.peak} B (max over {len(self.layers)} operators; "
                f"at op {r['op']} {r['opcode']} {r['name']}: in {r['input_bytes']} B + "
                f"out {r['output_bytes']} B)")

    __str__ = summary

    def to_dict(self) -> dict:
        return {"peak": self.peak, "argmax": self.argmax, "layers": [dict(r) for r in self.layers]}


def _graph(obj, input_shape=None, num_classes=None) -> R.Graph:
    if isinstance(obj, SparseCandidate):
        obj = obj.arch
    if isinstance(obj, R.Graph):
        return obj
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], S.Layer):
        return R.graph_from_layers(list(obj))
    if hasattr(obj, "layers") and hasattr(obj, "to_dict") and hasattr(obj, "mutate"):
        if input_shape is None or num_classes is None:
            raise ValueError("input_shape=(H, W, C) and num_classes are required for an architecture")
        return R.graph_from_layers(obj.layers(input_shape, num_classes))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return R.graph_from_tflite(bytes(obj))
    raise ValueError(f"expected an architecture (helpers.spaces / SparseCandidate), a layer list, "
                     f".tflite bytes or a resources.Graph; got {type(obj).__name__}")


def working_memory(obj, input_shape=None, num_classes=None) -> WorkingMemory:
    """f3 of SpArSe: ``max_l (|inputs of l| + |outputs of l|)`` in bytes (int8 activations).

    ``obj``: an architecture (with ``input_shape``, ``num_classes``), a
    :class:`SparseCandidate`, a layer list, ``.tflite`` bytes or a
    :class:`helpers.resources.Graph`.  Constant inputs (weights, biases,
    shapes) are not working memory.  Taught in 03-sparse-pruning.
    """
    g = _graph(obj, input_shape, num_classes)
    rows = []
    for op in g.ops:
        ins = sorted({t for t in op.inputs if t >= 0 and not g.tensors[t].const})
        ib = sum(g.tensors[t].nbytes for t in ins)
        ob = sum(g.tensors[t].nbytes for t in op.outputs)
        rows.append({"op": op.index, "opcode": op.opcode, "name": op.name, "input_bytes": ib,
                     "output_bytes": ob, "working_bytes": ib + ob})
    if not rows:
        return WorkingMemory(0, [], -1)
    k = int(np.argmax([r["working_bytes"] for r in rows]))
    return WorkingMemory(int(rows[k]["working_bytes"]), rows, k)


# ============================================================================ f2
@dataclass
class ModelSize:
    """SpArSe model size of one network.

    ``nonzero`` (f2): non-zero parameters (int8 weights + biases); ``indexed``:
    bytes with the sparse-index overhead (per weight tensor the cheaper of
    dense ``n`` and bitmap ``ceil(n/8) + nnz``; biases dense); ``dense``: all
    parameters; ``layers``: per-tensor rows.  Taught in 03-sparse-pruning.
    """

    nonzero: int
    indexed: int
    dense: int
    layers: list = field(default_factory=list)
    source: str = ""

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero / self.dense if self.dense else 0.0

    @property
    def index_overhead(self) -> int:
        return self.indexed - self.nonzero

    def table(self):
        """Per-tensor DataFrame (layer, tensor, size, nonzero, stored_bytes, format)."""
        import pandas as pd
        return pd.DataFrame(self.layers)

    def summary(self) -> str:
        return (f"model size ({self.source}): {self.nonzero} non-zero parameters of {self.dense} "
                f"(sparsity {self.sparsity:.1%}); with sparse-index overhead {self.indexed} B "
                f"(+{self.index_overhead} B)")

    __str__ = summary

    def to_dict(self) -> dict:
        return {"nonzero": self.nonzero, "indexed": self.indexed, "dense": self.dense,
                "sparsity": self.sparsity, "source": self.source,
                "layers": [dict(r) for r in self.layers]}


def _tensor_row(layer, kind, arr) -> dict:
    a = np.asarray(arr)
    n = int(a.size)
    nz = int(np.count_nonzero(a))
    stored = min(n, nz + (n + 7) // 8) if kind == "weights" else nz
    return {"layer": layer, "tensor": kind, "size": n, "nonzero": nz, "stored_bytes": stored,
            "format": ("dense" if stored == n and kind == "weights" else
                       "bitmap" if kind == "weights" else "dense (bias)")}


def _finish(rows, source) -> ModelSize:
    nz = sum(r["nonzero"] for r in rows)
    stored = sum(r["stored_bytes"] if r["tensor"] == "weights" else r["nonzero"] for r in rows)
    return ModelSize(int(nz), int(stored), int(sum(r["size"] for r in rows)), rows, source)


def _model_size_tflite(b) -> ModelSize:
    m = tflite_io.read(b)
    rows = []
    seen = set()
    for op in m.ops:
        if op.opcode not in _LEARNED:
            continue
        for pos, kind in ((1, "weights"), (2, "bias")):
            if pos < len(op.inputs) and op.inputs[pos] >= 0 and op.inputs[pos] not in seen:
                t = m.tensors[op.inputs[pos]]
                if t.data is not None:
                    seen.add(op.inputs[pos])
                    rows.append(_tensor_row(f"op{op.index}_{op.opcode}", kind, t.data))
    return _finish(rows, "int8 .tflite")


def _model_size_keras(model) -> ModelSize:
    """Folds batch-norm into the preceding conv as the converter does."""
    rows = []
    by_name = {l.name: l for l in model.layers}
    for layer in model.layers:
        cls = type(layer).__name__
        if cls not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        w = [np.asarray(v) for v in layer.get_weights()]
        k = w[0]
        bias = w[1] if getattr(layer, "use_bias", False) else np.zeros(k.shape[-1] if cls != "DepthwiseConv2D"
                                                                        else k.shape[2] * k.shape[3])
        bn = by_name.get(layer.name + "_bn")
        if bn is not None:
            g, b, mu, var = [np.asarray(v) for v in bn.get_weights()]
            scale = g / np.sqrt(var + bn.epsilon)
            bias = b + scale * (bias - mu)
            if cls == "DepthwiseConv2D":
                k = k * scale.reshape(1, 1, k.shape[2], k.shape[3])
            else:
                k = k * scale
        rows.append(_tensor_row(layer.name, "weights", k))
        rows.append(_tensor_row(layer.name, "bias", bias))
    return _finish(rows, "keras (BN folded)")


def model_size(obj) -> ModelSize:
    """f2 of SpArSe: non-zero parameters, with and without sparse-index overhead.

    ``obj``: ``.tflite`` bytes (exact int8 count: weights that quantise to 0
    count as zero) or a Keras model (float weights, batch-norm folded as the
    converter does; an upper bound of the int8 count).  Taught in
    03-sparse-pruning.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _model_size_tflite(bytes(obj))
    if hasattr(obj, "layers") and hasattr(obj, "get_weights"):
        return _model_size_keras(obj)
    raise ValueError(f"model_size: expected .tflite bytes or a Keras model; got {type(obj).__name__}")


# ==================================================================== the space
def _r(x, nd=4):
    return float(round(float(x), nd))


@dataclass(frozen=True)
class SparseSpace:
    """SpArSe's fixed-length parametrisation of a granular space plus training and pruning.

    ``granular``: bounds of the architecture part (:class:`helpers.spaces.GranularSpace`).
    ``sparsity``: (low, high) target sparsity; ``structured``: allowed pruning
    kinds (``(False, True)``: both); ``lr``: (low, high) learning rate, log scale;
    ``stem_conv``: the first layer is a full k x k convolution (a depthwise or 1x1
    convolution of a 1-channel image only rescales it: such candidates waste
    trials, and SpArSe's networks start with a convolution).
    ``hyperparameters()`` gives the keras-tuner encoding; ``to_values`` /
    ``from_values`` convert candidates; ``random(rng)`` samples it with numpy
    (the initial design of BO and the initial population of aging evolution).
    Taught in 03-sparse-pruning.
    """

    granular: S.GranularSpace = S.GranularSpace(max_blocks=3, max_layers=2, max_filters=24,
                                                max_dense=2, min_units=10, max_units=64)
    sparsity: tuple = (0.0, 0.9)
    structured: tuple = (False, True)
    lr: tuple = (1e-3, 1e-2)
    stem_conv: bool = True

    def __post_init__(self):
        lo, hi = self.sparsity
        if not (0.0 <= lo <= hi < 1.0):
            raise ValueError(f"sparsity must be (low, high) with 0 <= low <= high < 1; got {self.sparsity}")
        if not self.structured or any(not isinstance(s, bool) for s in self.structured):
            raise ValueError(f"structured must be a non-empty tuple of bools; got {self.structured}")
        if not (0 < self.lr[0] <= self.lr[1]):
            raise ValueError(f"lr must be (low, high) with 0 < low <= high; got {self.lr}")

    # ------------------------------------------------------------ sampling / io
    def random(self, rng) -> "SparseCandidate":
        """A random candidate: granular architecture (μNAS sampler) + uniform pruning/training."""
        arch = S.GranularArch.random(rng, self.granular)
        if self.stem_conv and arch.blocks[0].layers[0].type != "conv":  # repair, rng-deterministic
            l = arch.blocks[0].layers[0]
            if l.type == "dwconv":
                l.filters = int(rng.integers(self.granular.min_filters, self.granular.max_filters + 1))
            if l.type == "conv1x1":
                l.kernel = int(rng.choice(self.granular.kernels))
            l.type = "conv"
        return SparseCandidate(arch, *self._random_hparams(rng), space=self)

    def allows(self, arch) -> bool:
        """Whether ``arch`` satisfies the space's structural constraint (``stem_conv``)."""
        return not self.stem_conv or arch.blocks[0].layers[0].type == "conv"

    def mutate(self, cand: "SparseCandidate", rng) -> "SparseCandidate":
        """``cand.mutate(rng)`` within this space's bounds (search-space protocol)."""
        return cand.mutate(rng, self)

    def _random_hparams(self, rng):
        lo, hi = self.sparsity
        s = _r(rng.uniform(lo, hi)) if hi > lo else _r(lo)
        st = bool(self.structured[int(rng.integers(len(self.structured)))])
        lr = _r(math.exp(rng.uniform(math.log(self.lr[0]), math.log(self.lr[1]))), 6)
        return s, st, lr

    def from_json(self, s) -> "SparseCandidate":
        """Candidate from :meth:`SparseCandidate.to_json` (string or dict)."""
        d = json.loads(s) if isinstance(s, str) else dict(s)
        try:
            arch = S.GranularArch.from_dict(d["arch"])
            c = SparseCandidate(arch, float(d["sparsity"]), bool(d["structured"]), float(d["lr"]),
                                space=self)
        except KeyError as e:
            raise ValueError(f"SpArSe candidate JSON lacks {e}; got keys {sorted(d)}") from e
        return c

    # ------------------------------------------------------------ keras-tuner encoding
    def hyperparameters(self):
        """keras-tuner ``HyperParameters``: the fixed-length (conditional) encoding."""
        import keras_tuner as kt
        g = self.granular
        hp = kt.HyperParameters()
        hp.Int("n_blocks", 1, g.max_blocks)
        for b in range(g.max_blocks):
            with hp.conditional_scope("n_blocks", list(range(b + 1, g.max_blocks + 1))):
                hp.Int(f"b{b}_layers", 1, g.max_layers)
                hp.Boolean(f"b{b}_prepool")
                hp.Choice(f"b{b}_branch", ["none", "conv1x1", "conv"])
                hp.Choice(f"b{b}_branch_kernel", list(g.kernels))
                hp.Boolean(f"b{b}_branch_bn")
                hp.Boolean(f"b{b}_branch_relu")
                for li in range(g.max_layers):
                    with hp.conditional_scope(f"b{b}_layers", list(range(li + 1, g.max_layers + 1))):
                        p = f"b{b}_l{li}_"
                        if self.stem_conv and b == 0 and li == 0:
                            hp.Fixed(p + "type", "conv")
                        else:
                            hp.Choice(p + "type", list(S.GRANULAR_LAYER_TYPES))
                        hp.Int(p + "filters", g.min_filters, g.max_filters)
                        hp.Choice(p + "kernel", list(g.kernels))
                        hp.Boolean(p + "stride2")
                        hp.Boolean(p + "bn")
                        hp.Boolean(p + "relu")
        hp.Choice("pooling", ["avg", "max"])
        hp.Choice("pool_size", [0] + list(g.pool_sizes))
        hp.Int("n_dense", 0, g.max_dense - 1)
        for d in range(g.max_dense - 1):
            with hp.conditional_scope("n_dense", list(range(d + 1, g.max_dense))):
                hp.Int(f"d{d}_units", g.min_units, g.max_units)
        lo, hi = self.sparsity
        if hi > lo:
            hp.Float("sparsity", lo, hi)
        else:
            hp.Fixed("sparsity", float(lo))
        if len(set(self.structured)) > 1:
            hp.Boolean("structured")
        else:
            hp.Fixed("structured", bool(self.structured[0]))
        if self.lr[1] > self.lr[0]:
            hp.Float("lr", self.lr[0], self.lr[1], sampling="log")
        else:
            hp.Fixed("lr", float(self.lr[0]))
        return hp

    def to_values(self, cand: "SparseCandidate") -> dict:
        """Candidate -> hyperparameter values (active ones only; unused fields at defaults)."""
        g = self.granular
        a = cand.arch
        v = {"n_blocks": len(a.blocks)}
        for b, blk in enumerate(a.blocks):
            br = blk.branch.normalized() if blk.branch else None
            v[f"b{b}_layers"] = len(blk.layers)
            v[f"b{b}_prepool"] = bool(blk.pool)
            v[f"b{b}_branch"] = br.type if br else "none"
            v[f"b{b}_branch_kernel"] = int(br.kernel) if br and br.type == "conv" else int(g.kernels[0])
            v[f"b{b}_branch_bn"] = bool(br.batch_norm) if br else False
            v[f"b{b}_branch_relu"] = bool(br.relu) if br else False
            for li, l in enumerate(blk.layers):
                l = l.normalized()
                p = f"b{b}_l{li}_"
                v[p + "type"] = l.type
                v[p + "filters"] = int(l.filters) if l.type != "dwconv" else int(g.min_filters)
                v[p + "kernel"] = int(l.kernel) if l.type != "conv1x1" else int(g.kernels[0])
                v[p + "stride2"] = l.stride == 2
                v[p + "bn"] = bool(l.batch_norm)
                v[p + "relu"] = bool(l.relu)
        v["pooling"] = a.pooling
        v["pool_size"] = int(a.pool_size)
        v["n_dense"] = len(a.dense)
        for d, dl in enumerate(a.dense):
            v[f"d{d}_units"] = int(dl.units)
        v["sparsity"] = float(cand.sparsity)
        v["structured"] = bool(cand.structured)
        v["lr"] = float(cand.lr)
        return v

    def from_values(self, v: dict) -> "SparseCandidate":
        """Hyperparameter values -> candidate (inactive slots ignored)."""
        blocks = []
        for b in range(int(v["n_blocks"])):
            layers = []
            for li in range(int(v[f"b{b}_layers"])):
                p = f"b{b}_l{li}_"
                t = v[p + "type"]
                layers.append(S.ConvLayer(type=t, filters=0 if t == "dwconv" else int(v[p + "filters"]),
                                          kernel=1 if t == "conv1x1" else int(v[p + "kernel"]),
                                          stride=2 if v[p + "stride2"] else 1,
                                          batch_norm=bool(v[p + "bn"]), relu=bool(v[p + "relu"])))
            bt = v[f"b{b}_branch"]
            br = None
            if bt != "none":
                br = S.Branch(type=bt, kernel=1 if bt == "conv1x1" else int(v[f"b{b}_branch_kernel"]),
                              batch_norm=bool(v[f"b{b}_branch_bn"]), relu=bool(v[f"b{b}_branch_relu"]))
            blocks.append(S.ConvBlock(layers=layers, pool=bool(v[f"b{b}_prepool"]), branch=br))
        dense = [S.DenseLayer(int(v[f"d{d}_units"]), True) for d in range(int(v["n_dense"]))]
        arch = S.GranularArch(blocks=blocks, pooling=str(v["pooling"]), pool_size=int(v["pool_size"]),
                              dense=dense).validate(self.granular)
        return SparseCandidate(arch, _r(v["sparsity"]), bool(v["structured"]), _r(v["lr"], 6), space=self)


@dataclass(eq=False)
class SparseCandidate:
    """One SpArSe search point: a granular architecture + pruning + training hyperparameters.

    ``sparsity``: target fraction pruned (weights if unstructured, channels if
    structured); ``lr``: Adam learning rate.  JSON round-trip through
    ``space.from_json``; ``mutate(rng)`` for aging evolution.  Taught in
    03-sparse-pruning.
    """

    arch: S.GranularArch
    sparsity: float = 0.0
    structured: bool = False
    lr: float = 3e-3
    space: SparseSpace | None = None

    def to_dict(self) -> dict:
        """Plain dict: ``arch`` (granular dict), ``sparsity``, ``structured``, ``lr``."""
        return {"arch": self.arch.to_dict(), "sparsity": _r(self.sparsity),
                "structured": bool(self.structured), "lr": _r(self.lr, 6)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys); ``SparseSpace.from_json`` reads it back."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit hash of the canonical JSON."""
        import hashlib
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:16]

    def key(self) -> str:
        """Trial-store key (= :attr:`hash`)."""
        return self.hash

    def __eq__(self, other):
        return isinstance(other, SparseCandidate) and other.to_json() == self.to_json()

    def __hash__(self):
        return hash(self.to_json())

    def describe(self) -> str:
        """One line: ``C6k3/2`` conv 6 filters kernel 3 stride 2, ``P`` 1x1, ``DW`` depthwise,
        ``mp+`` 2x2 pre-pool, ``+br(...)`` branch; then pooling, dense layers and pruning."""
        a = self.arch
        parts = []
        for b in a.blocks:
            ls = []
            for l in b.layers:
                l = l.normalized()
                s = {"conv": f"C{l.filters}k{l.kernel}", "conv1x1": f"P{l.filters}",
                     "dwconv": f"DW{l.kernel}"}[l.type]
                s += "/2" if l.stride == 2 else ""
                ls.append(s)
            parts.append(("mp+" if b.pool else "") + "-".join(ls) + (f"+br({b.branch.type})" if b.branch else ""))
        head = ("GAP" if a.pool_size == 0 and a.pooling == "avg" else "GMP" if a.pool_size == 0
                else f"{a.pooling}{a.pool_size}") + "".join(f"-FC{d.units}" for d in a.dense)
        return (" | ".join(parts) + f" | {head}; {'struct' if self.structured else 'unstruct'} "
                f"s={self.sparsity:.2f} lr={self.lr:.4f}")

    def mutate(self, rng, space: SparseSpace | None = None) -> "SparseCandidate":
        """μNAS morphism of the architecture (p = 0.75) or a change of a pruning/training value."""
        sp = space or self.space or SparseSpace()
        for _ in range(100):
            r = rng.random()
            new = SparseCandidate(self.arch, self.sparsity, self.structured, self.lr, space=sp)
            if r < 0.75:
                new.arch = self.arch.mutate(rng, sp.granular)
                if not sp.allows(new.arch):
                    continue
            elif r < 0.85:
                lo, hi = sp.sparsity
                new.sparsity = _r(min(max(self.sparsity + float(rng.choice([-0.2, -0.1, 0.1, 0.2])), lo), hi))
            elif r < 0.92:
                if len(set(sp.structured)) > 1:
                    new.structured = not self.structured
            else:
                lo, hi = sp.lr
                new.lr = _r(min(max(self.lr * float(rng.choice([0.5, 2.0])), lo), hi), 6)
            if new.to_json() != self.to_json():
                new.last_mutation = getattr(new.arch, "last_mutation", "") if r < 0.75 else \
                    ("sparsity" if r < 0.85 else "structured" if r < 0.92 else "lr")
                return new
        raise RuntimeError("no applicable mutation found")  # pragma: no cover


def apply_widths(arch: S.GranularArch, widths: dict) -> S.GranularArch:
    """The architecture with pruned widths written back (``helpers.prune.pruned_widths`` names).

    Conv layers are named ``b{block}_l{layer}_{type}`` and hidden dense layers
    ``dense{i}`` by :func:`helpers.spaces.build`; other names are ignored.
    Taught in 03-sparse-pruning.
    """
    d = arch.to_dict()
    for bi, b in enumerate(d["blocks"]):
        for li, l in enumerate(b["layers"]):
            n = f"b{bi}_l{li}_{l['type']}"
            if n in widths and l["type"] != "dwconv":
                l["filters"] = int(widths[n])
    for di, x in enumerate(d["dense"]):
        if f"dense{di}" in widths:
            x["units"] = max(int(widths[f"dense{di}"]), 1)
    return arch_from_dict_unchecked(d)


def arch_from_dict_unchecked(d) -> S.GranularArch:
    """A granular architecture from its dict or JSON without the space's bounds check.

    Structured pruning can leave widths below the space's minimum (a dense
    layer of 6 units): still a valid network.  Taught in 03-sparse-pruning.
    """
    if isinstance(d, str):
        d = json.loads(d)
    blocks = [S.ConvBlock(layers=[S.ConvLayer(**l) for l in b["layers"]], pool=b["pool"],
                          branch=S.Branch(**b["branch"]) if b.get("branch") else None) for b in d["blocks"]]
    return S.GranularArch(blocks=blocks, pooling=d["pooling"], pool_size=d["pool_size"],
                          dense=[S.DenseLayer(**x) for x in d["dense"]])


def _prunable_kernel_counts(arch, input_shape, num_classes):
    """(kernel weights, biases): unstructured pruning with ``prune_last=True`` prunes every kernel."""
    lay = arch.layers(input_shape, num_classes)
    shp = {l.id: l.shape for l in lay}
    prunable = other = 0
    for l in lay:
        if l.kind == "conv":
            k = l.params["kernel"] ** 2 * shp[l.inputs[0]][-1] * l.params["filters"]
            prunable += k
            other += l.params["filters"]
        elif l.kind == "dwconv":
            c = shp[l.inputs[0]][-1]
            prunable += l.params["kernel"] ** 2 * c
            other += c
        elif l.kind == "dense":
            n = int(np.prod(shp[l.inputs[0]]))
            prunable += n * l.params["units"]
            other += l.params["units"]
    return prunable, other


def arch_model_size(arch, input_shape, num_classes) -> ModelSize:
    """Model size of a dense architecture (every parameter non-zero; weights and biases,
    batch-norm folded). Used for structurally pruned networks, whose surviving
    channels are dense.  Taught in 03-sparse-pruning."""
    p, o = _prunable_kernel_counts(arch, input_shape, num_classes)
    return ModelSize(int(p + o), int(p + o), int(p + o), [], "architecture (dense)")


def candidate_resources(cand: SparseCandidate, input_shape, num_classes, *, exact: bool = True) -> dict:
    """Pre-training screen of a candidate (no TensorFlow, milliseconds).

    ``working_memory`` (f3) of the dense architecture: exact for unstructured
    pruning, an upper bound for structured pruning (removing channels only
    shrinks tensors).  ``model_size`` (f2) only for unstructured pruning:
    ``prunable - round(s * prunable) + other`` (global magnitude pruning
    removes exactly that many kernel weights, classifier included, as SpArSe;
    biases are not pruned), so an over-size candidate costs no training.  With ``exact``
    also the TFLM peak SRAM and flash estimate (:func:`helpers.resources.profile`)
    of the dense architecture.  Taught in 03-sparse-pruning.
    """
    arch = cand.arch
    g = R.graph_from_layers(arch.layers(input_shape, num_classes))
    out = {"working_memory": working_memory(g).peak}
    p, o = _prunable_kernel_counts(arch, input_shape, num_classes)
    out["params_dense"] = p + o
    if not cand.structured or cand.sparsity == 0:
        out["model_size"] = int(p - round(cand.sparsity * p) + o)
    if exact:
        prof = R.profile(g, plan="tflm", table=False)
        out["peak_sram_dense"] = prof.peak_sram_bytes
        out["flash_dense"] = prof.flash_bytes
        out["macs_dense"] = prof.macs
    return out


def minimum_objectives(input_shape, num_classes, space: "SparseSpace | None" = None) -> dict:
    """The least ``working_memory`` (f3, bytes) and ``model_size`` (f2, non-zero parameters)
    any candidate of ``space`` (default :class:`SparseSpace`) needs: the minimum over the
    smallest architectures of its granular space (:func:`helpers.methods.munas.smallest_archs`,
    a full convolution first when ``stem_conv``), the model size at the highest sparsity when
    unstructured pruning is allowed (biases are never pruned), dense otherwise (structured
    pruning keeps a channel). No training, no TensorFlow. Taught in 03-sparse-pruning.
    """
    space = space or SparseSpace()
    wm, size = [], []
    for a in smallest_archs(space.granular, first_layer_types=("conv",) if space.stem_conv else None):
        wm.append(working_memory(a, input_shape, num_classes).peak)
        p, o = _prunable_kernel_counts(a, input_shape, num_classes)
        size.append(int(p - round(space.sparsity[1] * p) + o) if False in space.structured else int(p + o))
    return {"working_memory": min(wm), "model_size": min(size)}


def check_bounds(bounds: dict, input_shape, num_classes, space: "SparseSpace | None" = None) -> dict:
    """Raise :class:`helpers.params.ParameterError` naming the first bound no candidate of
    ``space`` can meet and the least any candidate needs; returns the minimums. ``bounds``:
    ``{parameter name: (objective, bound)}``, e.g. ``{"MAX_WORKING_MEMORY": ("working_memory",
    2048)}``. Taught in 03-sparse-pruning.
    """
    need = minimum_objectives(input_shape, num_classes, space)
    units = {"working_memory": "B of working memory (f3)", "model_size": "non-zero parameters (f2)"}
    for name, (objective, bound) in bounds.items():
        if bound is not None and bound < need[objective]:
            raise _params.ParameterError(
                name, bound, f"must be >= {need[objective]:,}: the smallest candidate of the space "
                f"(one convolution of 1 filter + the classifier, input {tuple(input_shape)}) needs "
                f"{need[objective]:,} {units[objective]}")
    return need

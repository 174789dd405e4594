"""Sparse weights run by our engine: a Python run with the sparse kernels and a dense-vs-sparse
comparison of the emulated Cortex-M build (flash, cycles, bit-exactness with TFLite-Micro).

Taught in 03-sparse. The two formats (row-compressed "gap" and "bitmask"), their byte cost
and the kernels are in :mod:`helpers.engine.sparse_weights` (re-exported here:
:func:`encode`, :func:`decode`, :func:`choose`, :class:`SparseWeights`,
:class:`BitmaskWeights`); the C kernels in ``csrc/tn_sparse.c``; the code generator takes
``weights="sparse"`` (per layer the smallest of dense, gap, bitmask), ``"sparse-all"`` (gap
everywhere) or ``"bitmask"`` (bitmask everywhere). ``mode`` below is a :func:`choose` mode:
``"auto"``, ``"always"`` (= ``"gap"``), ``"bitmask"``, ``"never"``. Every per-layer row
says the format the layer got (``format``: ``"dense"``, ``"gap"`` or ``"bitmask"``).
Public API::

    run(tflite_bytes, x, mode="auto") -> SparseRun                  (NumPy kernels)
    layers(tflite_bytes, mode="auto") -> list of dict                (per-layer storage)
    compare_dense(tflite_bytes, x, target) -> SparseComparison      (emulated, both builds)

TFLite-Micro (the ``tflite_micro`` package) is imported lazily, only by
:func:`compare_dense`. May import: :mod:`helpers.tflite_io`, :mod:`helpers.targets`,
:mod:`helpers.engine.interpreter`, :mod:`helpers.engine.sparse_weights`,
:mod:`helpers.engine.emulator`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from helpers import tflite_io
from helpers.engine import emulator
from helpers.engine.interpreter import _apply, prepare
from helpers.engine.sparse_weights import (SPARSE_OPS, BitmaskWeights, SparseWeights,
                                           apply_sparse, choose, decode, encode,
                                           encode_bitmask, weight_matrix)

__all__ = ["SPARSE_OPS", "SparseWeights", "BitmaskWeights", "encode", "decode", "choose",
           "layers", "run", "SparseRun", "compare_dense", "SparseComparison", "model_sparsity"]

#: :func:`compare_dense` mode -> ``generate_c(..., weights=...)`` of the sparse build.
_BUILD_WEIGHTS = {"auto": "sparse", "always": "sparse-all", "gap": "sparse-all",
                  "bitmask": "bitmask"}


def _format(sw) -> str:
    return "dense" if sw is None else sw.fmt


def _format_counts(rows) -> str:
    n = {f: sum(1 for r in rows if r.get("format") == f) for f in ("bitmask", "gap")}
    return f"{n['bitmask']} bitmask, {n['gap']} row-compressed"


def layers(tflite_bytes, mode: str = "auto") -> list:
    """Per weighted layer: op, kind, shape, non-zero weights, zeros fraction, bytes in each
    format (``dense_bytes``; ``sparse_bytes`` = ``gap_bytes``, row-compressed;
    ``bitmask_bytes``) and how ``mode`` stores it: ``stored`` (``"sparse"`` / ``"dense"``),
    ``format`` (``"dense"``, ``"gap"``, ``"bitmask"``), ``stored_bytes``.
    Taught in 03-sparse."""
    rows = []
    for s in prepare(tflite_bytes):
        if s.kind not in SPARSE_OPS:
            continue
        m = weight_matrix(s)
        full, bm = encode(m), encode_bitmask(m)
        sw = choose(s, mode)
        rows.append({"op": s.index, "kind": s.kind, "rows": full.rows, "cols": full.cols,
                     "weights": full.rows * full.cols, "nonzero": full.nnz,
                     "sparsity": full.sparsity, "dense_bytes": full.dense_bytes,
                     "sparse_bytes": full.nbytes, "gap_bytes": full.nbytes,
                     "bitmask_bytes": bm.nbytes,
                     "stored": "sparse" if sw is not None else "dense", "format": _format(sw),
                     "stored_bytes": sw.nbytes if sw is not None else full.dense_bytes})
    return rows


def model_sparsity(tflite_bytes) -> dict:
    """Zeros of the deployed model's CONV / DEPTHWISE / FC weights: ``weights``, ``nonzero``,
    ``sparsity`` (fraction of zeros). Taught in 03-sparse."""
    ls = layers(tflite_bytes, "never")
    n = sum(r["weights"] for r in ls)
    nz = sum(r["nonzero"] for r in ls)
    return {"weights": int(n), "nonzero": int(nz), "sparsity": 1.0 - nz / max(n, 1)}


@dataclass
class SparseRun:
    """One inference of the NumPy kernels with sparse layers. Taught in 03-sparse."""

    output: np.ndarray
    mode: str
    layers: list = field(default_factory=list)

    def summary(self) -> str:
        n = sum(1 for r in self.layers if r["stored"] == "sparse")
        return (f"sparse run (mode {self.mode!r}): {n} of {len(self.layers)} weighted layers "
                f"sparse ({_format_counts(self.layers)}); output {self.output.shape} int8")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"mode": self.mode, "layers": list(self.layers), "output": self.output.tolist()}

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.layers)


def run(tflite_bytes, x, mode: str = "auto") -> SparseRun:
    """Run the model on int8 ``x`` with the NumPy kernels, layers chosen by ``mode``
    (:func:`choose`: ``"auto"``, ``"always"``, ``"bitmask"``, ``"never"``) running sparse
    (zeros skipped). Taught in 03-sparse."""
    m = tflite_io.read(tflite_bytes)
    tin = m.tensors[m.inputs[0]]
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"x must be int8 (quantise it with the model's input scale and zero "
                         f"point first), got {x.dtype}")
    if x.size != int(np.prod(tin.shape)):
        raise ValueError(f"x has {x.size} values; the model input {tuple(tin.shape)} needs "
                         f"{int(np.prod(tin.shape))}")
    vals = {m.inputs[0]: x.ravel()}
    out_layers = []
    for s in prepare(tflite_bytes):
        xs = [np.asarray(vals[t]).reshape(shp) for t, shp in zip(s.x, s.in_shapes)]
        sw = choose(s, mode)
        y = apply_sparse(s, sw, xs[0]) if sw is not None else _apply(s, xs)
        vals[s.y] = np.asarray(y, np.int8).ravel()
        if s.kind in SPARSE_OPS:
            out_layers.append({"op": s.index, "kind": s.kind,
                               "stored": "sparse" if sw is not None else "dense",
                               "format": _format(sw)})
    tout = m.tensors[m.outputs[0]]
    return SparseRun(output=vals[m.outputs[0]].reshape(tout.shape), mode=mode, layers=out_layers)


def _tflm_output(tflite_bytes, x):
    from tflite_micro.python.tflite_micro import runtime
    m = tflite_io.read(tflite_bytes)
    it = runtime.Interpreter.from_bytes(bytes(tflite_bytes))
    it.set_input(np.asarray(x, np.int8).reshape(m.tensors[m.inputs[0]].shape), 0)
    it.invoke()
    return np.array(it.get_output(0))


@dataclass
class SparseComparison:
    """Dense vs sparse build of one model on one target (MLTK-profiler style).

    Measured: ``weights_bytes`` (the weights arrays of the generated C, dense and sparse),
    ``flash_bytes`` (whole linked image, text + rodata + data), ``instructions`` (exact);
    estimated: ``cycles`` (the emulator's Cortex-M timing table). ``bit_exact_*``:
    ``np.array_equal`` of each output with TFLite-Micro running the dense model.
    Taught in 03-sparse.
    """

    target: str
    plan: str
    kernels: str
    mode: str
    weights: int
    nonzero: int
    sparsity: float
    dense_weights_bytes: int
    sparse_weights_bytes: int
    dense_flash_bytes: int
    sparse_flash_bytes: int
    dense_instructions: int
    sparse_instructions: int
    dense_cycles: float
    sparse_cycles: float
    dense_latency_ms: float
    sparse_latency_ms: float
    bit_exact_python: bool
    bit_exact_emulated_dense: bool
    bit_exact_emulated_sparse: bool
    n_inputs: int
    layers: list = field(default_factory=list)

    @property
    def flash_saving(self) -> float:
        return 1.0 - self.sparse_flash_bytes / max(self.dense_flash_bytes, 1)

    @property
    def speedup(self) -> float:
        return self.dense_cycles / max(self.sparse_cycles, 1.0)

    @property
    def bit_exact(self) -> bool:
        return self.bit_exact_python and self.bit_exact_emulated_dense and \
            self.bit_exact_emulated_sparse

    def summary(self) -> str:
        n_sp = sum(1 for r in self.layers if r["stored"] == "sparse")
        return "\n".join([
            f"Sparse vs dense weights on {self.target} (plan {self.plan!r}, {self.kernels} "
            f"kernels): {self.nonzero:,} of {self.weights:,} weights non-zero "
            f"({self.sparsity:.1%} zeros), {n_sp} of {len(self.layers)} layers stored sparse "
            f"({_format_counts(self.layers)})",
            f"  weights {self.dense_weights_bytes:,} B dense -> {self.sparse_weights_bytes:,} B "
            f"sparse; flash (whole image) {self.dense_flash_bytes:,} -> "
            f"{self.sparse_flash_bytes:,} B ({self.flash_saving:+.1%} saved)",
            f"  cycles ~{self.dense_cycles:,.0f} -> ~{self.sparse_cycles:,.0f} (estimate; "
            f"x{self.speedup:.2f}); instructions {self.dense_instructions:,} -> "
            f"{self.sparse_instructions:,} (exact)",
            f"  bit-exact with TFLite-Micro (dense model) on {self.n_inputs} inputs: Python "
            f"sparse {self.bit_exact_python}, emulated dense {self.bit_exact_emulated_dense}, "
            f"emulated sparse {self.bit_exact_emulated_sparse}"])

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(flash_saving=self.flash_saving, speedup=self.speedup, bit_exact=self.bit_exact)
        return d

    def table(self):
        """Per weighted layer: storage, bytes, and emulated cycles dense vs sparse."""
        import pandas as pd
        return pd.DataFrame(self.layers)


def compare_dense(tflite_bytes, x, target="stm32f746zg", plan: str = "inplace",
                  kernels: str = "dsp", mode: str = "auto") -> SparseComparison:
    """Build the model twice for ``target`` (weights dense, and sparse per :func:`choose`
    ``mode``: ``"auto"``, ``"always"`` / ``"gap"``, ``"bitmask"``), emulate both on the int8
    input(s) ``x`` (one sample, or a batch (N, ...)), and check every output against
    TFLite-Micro running the dense model. Cycles and instructions are those of the first
    input; each layer row's ``format`` is the one the generated C stores. Taught in 03-sparse."""
    if mode not in _BUILD_WEIGHTS:
        raise ValueError(f"mode must be one of {list(_BUILD_WEIGHTS)}, got {mode!r}")
    m = tflite_io.read(tflite_bytes)
    shape = tuple(m.tensors[m.inputs[0]].shape)
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"x must be int8 (quantise first), got {x.dtype}")
    per = int(np.prod(shape))
    if x.size % per:
        raise ValueError(f"x has {x.size} values, not a multiple of the model input "
                         f"{shape} ({per} values)")
    xs = x.reshape((-1,) + shape)
    bd = emulator.build(tflite_bytes, target=target, plan=plan, kernels=kernels)
    bs = emulator.build(tflite_bytes, target=target, plan=plan, kernels=kernels,
                        weights=_BUILD_WEIGHTS[mode])
    ok_py = ok_d = ok_s = True
    rd = rs = None
    for i, xi in enumerate(xs):
        ref = _tflm_output(tflite_bytes, xi).ravel()
        ok_py &= bool(np.array_equal(run(tflite_bytes, xi, mode).output.ravel(), ref))
        ed = emulator.run(bd, xi)
        es = emulator.run(bs, xi)
        ok_d &= bool(np.array_equal(ed.output.ravel(), ref))
        ok_s &= bool(np.array_equal(es.output.ravel(), ref))
        if i == 0:
            rd, rs = ed, es
    ls = layers(tflite_bytes, mode)
    cyc_d = {o["op"]: o["cycles"] for o in rd.per_op}
    cyc_s = {o["op"]: o["cycles"] for o in rs.per_op}
    gen_fmt = {o["op"]: o["weights"] for o in bs.generated.ops}
    for r in ls:
        f = gen_fmt.get(r["op"], r["format"])   # what the C stores (4-bit filters stay dense)
        if f != r["format"]:
            r.update(format=f, stored="sparse" if f != "dense" else "dense",
                     stored_bytes=r[f"{f}_bytes"])
        r["dense_cycles"] = cyc_d.get(r["op"], 0.0)
        r["sparse_cycles"] = cyc_s.get(r["op"], 0.0)
    sp = model_sparsity(tflite_bytes)
    return SparseComparison(
        target=rd.target, plan=rd.plan, kernels=kernels, mode=mode, weights=sp["weights"],
        nonzero=sp["nonzero"], sparsity=sp["sparsity"],
        dense_weights_bytes=bd.generated.weight_bytes,
        sparse_weights_bytes=bs.generated.weight_bytes, dense_flash_bytes=rd.flash_bytes,
        sparse_flash_bytes=rs.flash_bytes, dense_instructions=rd.instructions,
        sparse_instructions=rs.instructions, dense_cycles=rd.cycles, sparse_cycles=rs.cycles,
        dense_latency_ms=rd.latency_ms, sparse_latency_ms=rs.latency_ms,
        bit_exact_python=ok_py, bit_exact_emulated_dense=ok_d, bit_exact_emulated_sparse=ok_s,
        n_inputs=len(xs), layers=ls)

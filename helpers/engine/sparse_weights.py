"""Sparse int8 weights: two compressed formats (row-compressed and bitmask), their encoders /
decoders, NumPy kernels that skip zeros, and the C declarations and calls the code generator
emits for a sparse layer.

Taught in 03-sparse. SpArSe (Fedorov et al., 2019) counts a model's size as its non-zero
weights; TFLite-Micro stores every weight, zero or not, so that saving needs an engine that
stores and runs weights sparse. This module is that engine's storage for ``CONV_2D``,
``DEPTHWISE_CONV_2D`` and ``FULLY_CONNECTED``.

**Rows.** A layer's weights are viewed as a matrix of ``rows`` output channels by ``cols``
taps, each row in the order the kernel walks it: ``CONV_2D`` (Cout, KH*KW*Cin) in im2col
order (ky, kx, cin); ``FULLY_CONNECTED`` (Cout, N); ``DEPTHWISE_CONV_2D`` (C*M, KH*KW), tap
``ky*KW + kx``. Both formats store the rows one after the other.

**Format "gap" (row-compressed, 8-bit gaps; :class:`SparseWeights`).** Each row stores its
non-zero entries as two parallel streams, ``val`` (int8) and ``gap`` (uint8: the entry's
column minus the previous entry's column, the first entry's gap is its column), plus one
``cnt`` (uint16, entries in the row). A gap over 255 is bridged by filler entries
``(val 0, gap 255)``. Pays off below about 50% density.

**Format "bitmask" (:class:`BitmaskWeights`).** Each row stores a bitmask of ``cols`` bits,
padded with zero bits to a whole byte (``row_bytes = ceil(cols / 8)``): bit ``j % 8`` (LSB
first) of the row's byte ``j // 8`` is 1 when column ``j`` is non-zero. The masks of all rows
form one ``mask`` stream (uint8, ``rows * row_bytes``); the non-zero values, row by row in
column order, form one ``val`` stream (int8, ``nnz``). No counts: a row's value count is the
popcount of its mask. Pays off above ``1/8`` zeros (about 37% smaller at 50% zeros).

Byte cost::

    gap_bytes     = 2 * rows + 2 * (nnz + fillers),   fillers = sum over gaps g of (g - 1) // 255
    bitmask_bytes = rows * ceil(cols / 8) + nnz
    dense_bytes   = rows * cols

**Choice.** :func:`choose` ``mode``: ``"auto"`` stores each layer in the smallest of dense,
gap and bitmask (dense on a tie; gap over bitmask on a tie); ``"always"`` (alias ``"gap"``)
every layer row-compressed; ``"bitmask"`` every layer bitmask; ``"never"`` every layer dense.
The code generator takes ``generate_c(..., weights=...)``: ``"sparse"`` (mode ``"auto"``),
``"sparse-all"`` (``"always"``), ``"bitmask"`` (``"bitmask"``), see :data:`WEIGHTS_MODES`;
biases, multipliers and shifts are unchanged.

**Kernels.** The NumPy kernels (:func:`conv2d_sparse`, :func:`depthwise_conv2d_sparse`,
:func:`fully_connected_sparse`) take either format and multiply only the stored entries;
integer sums are exact, so the outputs equal TFLite-Micro's dense run bit for bit
(``tests/test_sparse_engine.py``). The C kernels (``csrc/tn_sparse.c``: ``tn_*_sparse_s8``
walk the gap streams, ``tn_*_bitmask_s8`` the set bits of each mask byte) read the same
streams: convolution and fully connected fold ``in_offset * sum(w)`` into the bias and read an
im2col column (padding = input zero point), depthwise checks each stored tap against the
image border.

May import: :mod:`helpers.engine.kernels`, :mod:`helpers.engine.interpreter`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from helpers.engine.interpreter import OpSpec
from helpers.engine.kernels import _patches, _requant

__all__ = ["SPARSE_OPS", "FORMATS", "MODES", "WEIGHTS_MODES", "SparseWeights",
           "BitmaskWeights", "encode", "encode_bitmask", "decode", "weight_matrix",
           "from_matrix", "sparse_bytes", "format_bytes", "choose", "conv2d_sparse",
           "depthwise_conv2d_sparse", "fully_connected_sparse", "apply_sparse", "c_layer"]

#: The operators whose weights may be stored sparse.
SPARSE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

#: Storage formats of a weighted layer: dense int8, row-compressed ("gap"), bitmask.
FORMATS = ("dense", "gap", "bitmask")
#: :func:`choose` modes (``"always"`` = ``"gap"``, the row-compressed format everywhere).
MODES = ("auto", "always", "gap", "bitmask", "never")
#: ``generate_c(..., weights=...)`` values other than ``"dense"`` -> :func:`choose` mode.
WEIGHTS_MODES = {"sparse": "auto", "sparse-all": "always", "bitmask": "bitmask"}

_MAX_GAP = 255
_MAX_COUNT = 65535


class _Stored:
    """What both formats report: dense size, zeros, one-line summary, a JSON-able dict."""

    fmt: ClassVar[str] = ""
    label: ClassVar[str] = ""

    @property
    def dense_bytes(self) -> int:
        return self.rows * self.cols

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nnz / max(self.rows * self.cols, 1)

    def summary(self) -> str:
        return (f"{self.rows}x{self.cols} weights, {self.nnz:,} non-zero "
                f"({self.sparsity:.1%} zeros): {self.nbytes:,} B {self.label} vs "
                f"{self.dense_bytes:,} B dense")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"format": self.fmt, "rows": self.rows, "cols": self.cols, "nnz": self.nnz,
                "entries": int(self.val.size), "sparse_bytes": self.nbytes,
                "dense_bytes": self.dense_bytes, "sparsity": self.sparsity}


@dataclass
class SparseWeights(_Stored):
    """One layer's weights in the row-compressed format (see the module docstring).

    ``cnt`` (uint16, one per row), ``val`` (int8) and ``gap`` (uint8) streams; ``rows`` x
    ``cols`` the matrix shape; ``nnz`` the non-zero weights (fillers excluded).
    Taught in 03-sparse.
    """

    rows: int
    cols: int
    cnt: np.ndarray
    val: np.ndarray
    gap: np.ndarray
    nnz: int
    fmt: ClassVar[str] = "gap"
    label: ClassVar[str] = "row-compressed"

    @property
    def nbytes(self) -> int:
        """Bytes stored: ``2 * rows + 2 * entries``."""
        return 2 * self.rows + 2 * int(self.val.size)


def _check_matrix(matrix) -> np.ndarray:
    w = np.asarray(matrix)
    if w.ndim != 2:
        raise ValueError(f"matrix must be 2-D (rows, cols), got shape {w.shape}")
    if w.dtype != np.int8:
        raise ValueError(f"matrix must be int8, got {w.dtype}")
    return w


def encode(matrix, fmt: str = "gap"):
    """Encode an int8 (rows, cols) matrix: ``fmt="gap"`` (default) the row-compressed
    :class:`SparseWeights`, ``fmt="bitmask"`` :class:`BitmaskWeights` (:func:`encode_bitmask`).
    Taught in 03-sparse."""
    if fmt == "bitmask":
        return encode_bitmask(matrix)
    if fmt != "gap":
        raise ValueError(f"fmt must be 'gap' or 'bitmask', got {fmt!r}")
    w = _check_matrix(matrix)
    rows, cols = w.shape
    cnt, val, gap = [], [], []
    for r in range(rows):
        nz = np.flatnonzero(w[r])
        n0 = len(val)
        prev = 0
        for pos in nz:
            g = int(pos) - prev
            while g > _MAX_GAP:
                val.append(0)
                gap.append(_MAX_GAP)
                g -= _MAX_GAP
            val.append(int(w[r, pos]))
            gap.append(g)
            prev = int(pos)
        n = len(val) - n0
        if n > _MAX_COUNT:
            raise ValueError(f"row {r} has {n} entries; the format's uint16 count allows "
                             f"{_MAX_COUNT}")
        cnt.append(n)
    return SparseWeights(rows=rows, cols=cols, cnt=np.array(cnt, np.uint16),
                         val=np.array(val, np.int8), gap=np.array(gap, np.uint8),
                         nnz=int(np.count_nonzero(w)))


def _positions(sw):
    """Per row: (columns, values) of its entries (gap fillers included, value 0)."""
    if isinstance(sw, BitmaskWeights):
        return _bitmask_positions(sw)
    out = []
    start = 0
    for r in range(sw.rows):
        n = int(sw.cnt[r])
        g = sw.gap[start:start + n].astype(np.int64)
        out.append((np.cumsum(g), sw.val[start:start + n].astype(np.int64)))
        start += n
    return out


def decode(sw) -> np.ndarray:
    """The dense int8 (rows, cols) matrix back from :func:`encode` (either format).
    Taught in 03-sparse."""
    if isinstance(sw, BitmaskWeights):
        return _decode_bitmask(sw)
    if int(sw.cnt.astype(np.int64).sum()) != sw.val.size or sw.val.size != sw.gap.size:
        raise ValueError(f"corrupt SparseWeights: counts sum to {int(sw.cnt.sum())}, "
                         f"{sw.val.size} values, {sw.gap.size} gaps")
    w = np.zeros((sw.rows, sw.cols), np.int8)
    for r, (cols, vals) in enumerate(_positions(sw)):
        if len(cols) and cols[-1] >= sw.cols:
            raise ValueError(f"corrupt SparseWeights: row {r} reaches column {cols[-1]} "
                             f"of {sw.cols}")
        w[r, cols] = vals
    return w


@dataclass
class BitmaskWeights(_Stored):
    """One layer's weights in the bitmask format (see the module docstring).

    ``mask`` (uint8, shape (rows, row_bytes), LSB first, padding bits zero) and ``val`` (int8,
    the non-zeros row by row); ``rows`` x ``cols`` the matrix shape. Taught in 03-sparse.
    """

    rows: int
    cols: int
    mask: np.ndarray
    val: np.ndarray
    fmt: ClassVar[str] = "bitmask"
    label: ClassVar[str] = "bitmask"

    @property
    def nnz(self) -> int:
        return int(self.val.size)

    @property
    def row_bytes(self) -> int:
        return (self.cols + 7) // 8

    @property
    def nbytes(self) -> int:
        """Bytes stored: ``rows * ceil(cols / 8) + nnz``."""
        return self.rows * self.row_bytes + self.nnz


def encode_bitmask(matrix) -> BitmaskWeights:
    """Encode an int8 (rows, cols) matrix into the bitmask format. Taught in 03-sparse."""
    w = _check_matrix(matrix)
    rows, cols = w.shape
    mask = np.packbits(w != 0, axis=1, bitorder="little").reshape(rows, (cols + 7) // 8)
    return BitmaskWeights(rows=rows, cols=cols, mask=mask.astype(np.uint8),
                          val=np.ascontiguousarray(w[w != 0], np.int8))


def _bitmask_bits(bw: BitmaskWeights) -> np.ndarray:
    """(rows, cols) bool: the stored positions, after checking the streams agree."""
    mask = np.asarray(bw.mask, np.uint8).reshape(bw.rows, -1)
    if mask.shape[1] != bw.row_bytes:
        raise ValueError(f"corrupt BitmaskWeights: {mask.shape[1]} mask bytes per row, "
                         f"{bw.cols} columns need {bw.row_bytes}")
    bits = np.unpackbits(mask, axis=1, bitorder="little").astype(bool)
    if bits[:, bw.cols:].any():
        raise ValueError("corrupt BitmaskWeights: a padding bit past the last column is set")
    bits = bits[:, :bw.cols]
    if int(bits.sum()) != bw.val.size:
        raise ValueError(f"corrupt BitmaskWeights: masks hold {int(bits.sum())} bits, "
                         f"{bw.val.size} values")
    return bits


def _decode_bitmask(bw: BitmaskWeights) -> np.ndarray:
    bits = _bitmask_bits(bw)
    w = np.zeros((bw.rows, bw.cols), np.int8)
    w[bits] = bw.val                      # row-major order = the value stream's order
    return w


def _bitmask_positions(bw: BitmaskWeights):
    bits = _bitmask_bits(bw)
    vals = bw.val.astype(np.int64)
    out, start = [], 0
    for r in range(bw.rows):
        cols = np.flatnonzero(bits[r])
        out.append((cols, vals[start:start + cols.size]))
        start += cols.size
    return out


def weight_matrix(spec: OpSpec) -> np.ndarray:
    """The (rows, cols) matrix of a prepared layer in the order its kernel walks it.
    Taught in 03-sparse."""
    w = spec.consts.get("w")
    if spec.kind not in SPARSE_OPS or w is None:
        raise ValueError(f"op {spec.index} is {spec.kind}; sparse weights exist for "
                         f"{list(SPARSE_OPS)}")
    if spec.kind == "DEPTHWISE_CONV_2D":
        kh, kw, co = w.shape
        return np.ascontiguousarray(w.reshape(kh * kw, co).T)
    return np.ascontiguousarray(w.reshape(w.shape[0], -1))


def from_matrix(spec: OpSpec, matrix) -> np.ndarray:
    """Inverse of :func:`weight_matrix`: the matrix in the layer's own weight layout.
    Taught in 03-sparse."""
    m = np.asarray(matrix, np.int8)
    w = spec.consts["w"]
    if spec.kind == "DEPTHWISE_CONV_2D":
        return np.ascontiguousarray(m.T).reshape(w.shape)
    return m.reshape(w.shape)


def sparse_bytes(spec: OpSpec) -> tuple[int, int]:
    """``(sparse_bytes, dense_bytes)`` of a layer's weights, row-compressed ("gap").
    Taught in 03-sparse."""
    sw = encode(weight_matrix(spec))
    return sw.nbytes, sw.dense_bytes


def format_bytes(spec: OpSpec) -> dict:
    """Bytes of a layer's weights in each format: ``{"dense", "gap", "bitmask"}``.
    Taught in 03-sparse."""
    m = weight_matrix(spec)
    return {"dense": int(m.size), "gap": encode(m).nbytes, "bitmask": encode_bitmask(m).nbytes}


def _sparse_ok(spec: OpSpec) -> bool:
    return spec.kind in SPARSE_OPS and not (spec.kind == "FULLY_CONNECTED"
                                            and spec.params.get("w_zp", 0) != 0)


def choose(spec: OpSpec, mode: str = "auto"):
    """The encoded weights (:class:`SparseWeights` or :class:`BitmaskWeights`) if the layer is
    stored sparse, else ``None`` (dense). ``mode`` (:data:`MODES`): ``"auto"`` (the smallest
    of dense, row-compressed and bitmask), ``"always"`` / ``"gap"`` (row-compressed, every
    CONV / DEPTHWISE / FC layer), ``"bitmask"`` (bitmask, every such layer), ``"never"``.
    Taught in 03-sparse."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if mode == "never" or not _sparse_ok(spec):
        return None
    m = weight_matrix(spec)
    if mode == "bitmask":
        return encode_bitmask(m)
    sw = encode(m)
    if mode != "auto":
        return sw
    bw = encode_bitmask(m)
    best = bw if bw.nbytes < sw.nbytes else sw
    return best if best.nbytes < best.dense_bytes else None


# --------------------------------------------------------------------------------------
# NumPy kernels that multiply only the stored entries
# --------------------------------------------------------------------------------------

def _sparse_matmul(cols_x, sw):
    """(P, cols) int64 columns times the sparse (rows, cols) matrix transposed: (P, rows)."""
    acc = np.zeros((cols_x.shape[0], sw.rows), np.int64)
    for r, (cols, vals) in enumerate(_positions(sw)):
        if len(cols):
            acc[:, r] = cols_x[:, cols] @ vals
    return acc


def conv2d_sparse(x, sw, bias, *, kh, kw, stride=(1, 1), dilation=(1, 1),
                  pad=(0, 0), out_hw, in_zp=0, out_zp=0, mult, shift, act_min=-128,
                  act_max=127, rounding=None):
    """int8 CONV_2D with sparse weights ``sw`` (either format; rows Cout, cols KH*KW*Cin):
    x (H, W, Cin) int8. Same arithmetic as :func:`helpers.engine.kernels.conv2d`.
    Taught in 03-sparse."""
    x = np.asarray(x, np.int8)
    oh, ow = out_hw
    p = _patches(x, kh, kw, *stride, *dilation, *pad, oh, ow, fill=np.int8(in_zp))
    xv = p.astype(np.int64).reshape(oh * ow, -1) - in_zp
    acc = _sparse_matmul(xv, sw) + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding).reshape(oh, ow, sw.rows)


def depthwise_conv2d_sparse(x, sw, bias, *, kh, kw, stride=(1, 1),
                            dilation=(1, 1), pad=(0, 0), out_hw, depth_multiplier=1, in_zp=0,
                            out_zp=0, mult, shift, act_min=-128, act_max=127, rounding=None):
    """int8 DEPTHWISE_CONV_2D with sparse weights ``sw`` (either format; rows C*M, cols KH*KW
    taps). Taught in 03-sparse."""
    x = np.asarray(x, np.int8)
    oh, ow = out_hw
    p = _patches(x, kh, kw, *stride, *dilation, *pad, oh, ow, fill=np.int8(in_zp))
    xv = p.astype(np.int64).reshape(oh * ow, kh * kw, -1) - in_zp
    acc = np.zeros((oh * ow, sw.rows), np.int64)
    for r, (cols, vals) in enumerate(_positions(sw)):
        if len(cols):
            acc[:, r] = xv[:, cols, r // depth_multiplier] @ vals
    acc = acc + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding).reshape(oh, ow, sw.rows)


def fully_connected_sparse(x, sw, bias, *, in_zp=0, out_zp=0, mult, shift,
                           act_min=-128, act_max=127, rounding=None):
    """int8 FULLY_CONNECTED with sparse weights ``sw`` (either format; rows Cout, cols N):
    x (N,). Taught in 03-sparse."""
    xv = (np.asarray(x, np.int64).reshape(1, -1) - in_zp)
    acc = _sparse_matmul(xv, sw)[0] + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding)


def apply_sparse(spec: OpSpec, sw, x, rounding=None):
    """Run one prepared layer with its weights ``sw`` (from :func:`choose`).
    Taught in 03-sparse."""
    p, b = spec.params, spec.consts["bias"]
    q = dict(mult=p["mult"], shift=p["shift"], act_min=p["act_min"], act_max=p["act_max"],
             rounding=rounding, in_zp=p["in_zp"], out_zp=p["out_zp"])
    if spec.kind == "FULLY_CONNECTED":
        return fully_connected_sparse(x, sw, b, **q)
    geo = dict(kh=p["kh"], kw=p["kw"], stride=(p["sh"], p["sw"]), dilation=(p["dh"], p["dw"]),
               pad=(p["pt"], p["pl"]), out_hw=spec.out_shape[:2])
    if spec.kind == "CONV_2D":
        return conv2d_sparse(x, sw, b, **geo, **q)
    return depthwise_conv2d_sparse(x, sw, b, depth_multiplier=p["depth_multiplier"], **geo, **q)


# --------------------------------------------------------------------------------------
# C emission (used by helpers.engine.codegen.generate_c(..., weights="sparse" | ...))
# --------------------------------------------------------------------------------------

@dataclass
class _CLayer:
    decl: str
    call: str
    weight_bytes: int
    col_bytes: int
    inplace: bool
    fmt: str


def _arr(ctype, name, values, per_line=24):
    vals = [str(int(v)) for v in np.asarray(values).ravel()] or ["0"]
    body = ",\n  ".join(", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line))
    return f"static const {ctype} {name}[{len(vals)}] = {{\n  {body}\n}};\n"


def c_layer(spec: OpSpec, pre: str, off, scratch: dict, plan_name: str, mode: str = "auto"):
    """C declarations and the kernel call of one layer stored sparse (the format
    :func:`choose` picks for ``mode``), or ``None`` when the layer stays dense. ``off(t)``:
    arena offset of tensor ``t``; ``scratch``: the plan's {op: (offset, size)}.
    Taught in 03-sparse."""
    sw = choose(spec, mode)
    if sw is None:
        return None
    s, p = spec, spec.params
    x0, oi = s.x[0], s.index
    bias = s.consts["bias"].astype(np.int64)
    dense = weight_matrix(s).astype(np.int64)
    if sw.fmt == "bitmask":
        kern = "bitmask"
        d = [f"/* op {oi}: {s.kind} {s.in_shapes[0]} -> {s.out_shape}, bitmask weights: "
             f"{sw.nnz} non-zero of {sw.rows * sw.cols}, {sw.nbytes} B (dense {sw.dense_bytes} "
             f"B) */", _arr("uint8_t", f"{pre}_mask", sw.mask),
             _arr("int8_t", f"{pre}_val", sw.val),
             f"static const tn_bitmask_t {pre}_sw = {{{pre}_mask, {pre}_val}};\n"]
    else:
        kern = "sparse"
        d = [f"/* op {oi}: {s.kind} {s.in_shapes[0]} -> {s.out_shape}, sparse weights: "
             f"{sw.nnz} non-zero of {sw.rows * sw.cols}, {sw.nbytes} B (dense {sw.dense_bytes} "
             f"B) */", _arr("uint16_t", f"{pre}_cnt", sw.cnt), _arr("int8_t", f"{pre}_val", sw.val),
             _arr("uint8_t", f"{pre}_gap", sw.gap),
             f"static const tn_sparse_t {pre}_sw = {{{pre}_cnt, {pre}_val, {pre}_gap}};\n"]
    col_bytes = 0
    inplace = False
    if s.kind in ("CONV_2D", "FULLY_CONNECTED"):
        bias = bias + (-p["in_zp"]) * dense.sum(axis=1)
        if np.any(np.abs(bias) >= 2 ** 31):
            raise ValueError(f"op {oi}: folded bias overflows int32")
    d += [_arr("int32_t", f"{pre}_b", bias), _arr("int32_t", f"{pre}_m", p["mult"]),
          _arr("int32_t", f"{pre}_s", p["shift"])]
    if s.kind == "FULLY_CONNECTED":
        (n,), (co,) = s.in_shapes[0], s.out_shape
        call = (f"tn_fc_{kern}_s8({n}, {co}, tn_arena + {off(x0)}, &{pre}_sw, {pre}_b, "
                f"{p['out_zp']}, {pre}_m, {pre}_s, {p['act_min']}, {p['act_max']}, "
                f"tn_arena + {off(s.y)});")
        return _CLayer("\n".join(d), call, sw.nbytes, 0, False, sw.fmt)
    ih, iw, ic = s.in_shapes[0]
    oh, ow, oc = s.out_shape
    dm = p.get("depth_multiplier", 1)
    d.append(f"static const tn_conv_t {pre}_p = {{{ih}, {iw}, {ic}, {oh}, {ow}, {oc}, "
             f"{p['kh']}, {p['kw']}, {p['sh']}, {p['sw']}, {p['dh']}, {p['dw']}, "
             f"{p['pt']}, {p['pl']}, {dm}, {-p['in_zp']}, {p['out_zp']}, "
             f"{p['act_min']}, {p['act_max']}}};\n")
    args = f"&{pre}_p, tn_arena + {off(x0)}, &{pre}_sw, {pre}_b, {pre}_m, {pre}_s"
    if s.kind == "CONV_2D":
        if not (p["kh"] == 1 and p["kw"] == 1 and p["pt"] == 0 and p["pl"] == 0):
            col_bytes = p["kh"] * p["kw"] * ic
        call = f"tn_conv2d_{kern}_s8({args}, tn_arena + {off(s.y)}, tn_col);"
    elif off(s.y) == off(x0):
        inplace = True
        if oi not in scratch:
            raise ValueError(f"plan {plan_name!r} runs op {oi} in place but has no scratch "
                             f"buffer for it")
        so, ssz = scratch[oi]
        if ssz < oh * ow:
            raise ValueError(f"plan scratch for op {oi} is {ssz} B, needs {oh * ow}")
        call = f"tn_dwconv_inplace_{kern}_s8({args}, tn_arena + {so});"
    else:
        call = f"tn_dwconv_{kern}_s8({args}, tn_arena + {off(s.y)});"
    return _CLayer("\n".join(d), call, sw.nbytes, col_bytes, inplace, sw.fmt)

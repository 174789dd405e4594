"""More int8 operators, bit-exact with TFLite-Micro: the float I/O wrapper, shape arithmetic and
the elementwise / data-movement ops user models bring.

Taught in 06-deployment ("bring your own model"). Operators (:data:`EXT_OPS`):

* ``QUANTIZE`` float32 -> int8 (``AffineQuantize``: ``round(x / float(scale)) + zp`` in
  float32, round half away from zero, clamped) and int8 -> int8 (``Requantize`` with the
  ``QuantizeMultiplier`` of ``in_scale / out_scale``); ``DEQUANTIZE`` int8 -> float32
  (``float(double(scale) * (q - zp))``);
* ``PAD`` / ``PADV2`` (constant padding with the output zero point or the given value),
  ``CONCATENATION`` (equal quantisation, a copy as in TFLM's int8 kernel), ``MUL``
  (``MultiplyByQuantizedMultiplier((a - za) (b - zb))`` with numpy broadcasting);
* ``LOGISTIC`` and ``TANH`` (gemmlowp fixed-point ``logistic`` / ``tanh`` on a Q4.27 input,
  as ``reference_integer_ops``), ``HARD_SWISH`` (TFLite's int16 fixed-point ``HardSwish``);
* ``SHAPE``, ``STRIDED_SLICE``, ``PACK`` on shape tensors: **evaluated at prepare time**
  (constant folding: shapes are static at batch 1); the op then only stores its folded
  value in the arena. ``STRIDED_SLICE`` of an int8 activation (constant begin / end /
  strides, at most 4-D) is a strided copy; a ``PACK`` of activations is refused.

:func:`prepare_op` returns the fields of an :class:`helpers.engine.interpreter.OpSpec`,
:func:`apply` runs one. Elementwise int8 -> int8 ops also carry ``params["lut"]``, their
output for all 256 inputs, which the C engine uses as a lookup table (so the C is the
Python kernel by construction); float QUANTIZE carries the 255 decision thresholds as
order-preserving int32 keys of float32 bit patterns and DEQUANTIZE the 256 float32 bit
patterns of its outputs, so the emulated C needs no floating point at all.

May import: :mod:`helpers.engine.kernels`.
"""
from __future__ import annotations

import numpy as np

from helpers.engine.kernels import (INT32_MAX, UnsupportedOpError, _exp_on_negative_values,
                                    _rdbpot_v, _sat_left_shift, _srdhm_v, activation_range,
                                    multiply_by_quantized_multiplier, quantize_multiplier)

__all__ = ["EXT_OPS", "FOLDED_OPS", "UNARY_OPS", "unary", "unary_params", "prepare_op", "apply", "float_key", "quantize_float",
           "dequantize"]

#: Operators this module prepares (in addition to those of :mod:`helpers.engine.kernels`).
EXT_OPS = ("QUANTIZE", "DEQUANTIZE", "PAD", "PADV2", "CONCATENATION", "MUL", "SHAPE",
           "STRIDED_SLICE", "PACK", "LOGISTIC", "TANH", "HARD_SWISH")
#: Elementwise int8 -> int8 operators computed by :func:`unary` (a lookup table in C).
UNARY_OPS = ("LOGISTIC", "TANH", "HARD_SWISH")
#: Operators evaluated at prepare time (their output is a constant of the model).
FOLDED_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")

_Q8 = np.arange(-128, 128, dtype=np.int64)


def _q(t):
    s = float(t.scale[0]) if t.scale.size else 1.0
    z = int(t.zero_point[0]) if t.zero_point.size else 0
    return s, z


# ----------------------------------------------------------------------------- arithmetic

def quantize_float(x, scale: float, zero_point: int) -> np.ndarray:
    """TFLM's float -> int8 ``AffineQuantize``: ``x / float32(scale)`` in float32, rounded half
    away from zero, plus the zero point, clamped to int8. Taught in 06-deployment."""
    r = (np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64)
    r = np.nan_to_num(r, nan=0.0, posinf=2.0 ** 40, neginf=-2.0 ** 40)
    v = np.sign(r) * np.floor(np.abs(r) + 0.5)
    return np.clip(v + int(zero_point), -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    """TFLM's ``Dequantize``: ``float32(double(scale) * (q - zp))``. Taught in 06-deployment."""
    d = np.asarray(q, np.int64) - int(zero_point)
    return (float(np.float32(scale)) * d.astype(np.float64)).astype(np.float32)


def float_key(bits) -> np.ndarray:
    """Order-preserving int32 key of float32 bit patterns (``-0.0`` and ``0.0`` equal):
    ``b`` for ``b >= 0``, ``-(b & 0x7fffffff)`` otherwise. Taught in 06-deployment."""
    b = np.asarray(bits, np.int64)
    return np.where(b >= 0, b, -(b & 0x7FFFFFFF)).astype(np.int64)


def _key_to_float(k):
    k = np.asarray(k, np.int64)
    bits = np.where(k >= 0, k, (-k) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def _quantize_thresholds(scale: float, zp: int) -> np.ndarray:
    """thr[j] = smallest float key whose quantised value is >= -127 + j (j = 0..254)."""
    levels = np.arange(-127, 128, dtype=np.int64)
    lo = np.full(levels.shape, -0x7F800000, np.int64)   # -inf
    hi = np.full(levels.shape, 0x7F800000, np.int64)    # +inf
    reach = quantize_float(_key_to_float(hi), scale, zp).astype(np.int64) >= levels
    for _ in range(33):
        mid = (lo + hi) // 2
        ok = quantize_float(_key_to_float(mid), scale, zp).astype(np.int64) >= levels
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    first = quantize_float(_key_to_float(lo), scale, zp).astype(np.int64) >= levels
    thr = np.where(first, lo, hi)
    return np.where(reach, thr, 0x7FFFFFFF).astype(np.int64)


# ----------------------------------------------------------------------------- LOGISTIC, TANH

def _one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 -> Q0.31); ``(1 - x) / (1 + x)``
    variant below."""
    return _sat_left_shift(_nr_reciprocal(a), 1)


def _nr_reciprocal(a):
    a = np.asarray(a, np.int64)
    s = a + INT32_MAX                                   # RoundingHalfSum(a, One) in Q0.31
    half = np.where(s >= 0, (s + 1) >> 1, -((-s + 1) >> 1))
    x = 1515870810 + _srdhm_v(half, -1010580540)        # 48/17 - 32/17 d, Q2.29
    for _ in range(3):
        x = x + _sat_left_shift(_srdhm_v(x, (1 << 29) - _srdhm_v(half, x)), 2)
    return x                                            # 1 / (2 half), Q2.29


def _input_radius(left_shift: int, integer_bits: int = 4) -> int:
    v = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    return int(np.floor(v))


def _q4_params(scale: float):
    import math
    q, left = math.frexp(float(np.float32(scale)) * float(1 << 27))
    mult = int(math.copysign(math.floor(abs(q * (1 << 31)) + 0.5), q))
    return mult, left, _input_radius(left)


def unary_params(kind: str, si: float, zi: int, so: float, zo: int, where: str = "",
                 rounding: str | None = None) -> dict:
    """Prepare-time integer parameters of ``LOGISTIC`` / ``TANH`` / ``HARD_SWISH`` (TFLM's
    Prepare). Raises :class:`UnsupportedOpError` for output quantisations TFLM rejects.
    Taught in 06-deployment."""
    if kind == "LOGISTIC":
        if zo != -128 or abs(so - 1 / 256) > 1e-12:
            raise UnsupportedOpError(f"{where}: int8 LOGISTIC needs output scale 1/256, zp -128")
        m, left, radius = _q4_params(si)
        return {"in_zp": zi, "mult": m, "shift": left, "radius": radius}
    if kind == "TANH":
        if zo != 0 or abs(so - 1 / 128) > 1e-12:
            raise UnsupportedOpError(f"{where}: int8 TANH needs output scale 1/128, zp 0")
        m, left, radius = _q4_params(si)
        return {"in_zp": zi, "mult": m, "shift": left, "radius": radius}
    if kind == "HARD_SWISH":
        hires = np.float32(1.0 / 128.0) * np.float32(si)
        om, oe = quantize_multiplier(float(hires / np.float32(so)), rounding)
        rm, re_ = quantize_multiplier(float(hires / np.float32(3.0 / 32768.0)), rounding)
        if oe > 0:
            raise UnsupportedOpError(f"{where}: HARD_SWISH output multiplier exponent {oe} > 0")
        d16 = lambda v: 32767 if v >= INT32_MAX - (1 << 15) else (v + (1 << 15)) >> 16  # noqa
        return {"in_zp": zi, "out_zp": zo, "out_mult16": d16(om), "out_exp": oe,
                "relu_mult16": d16(rm), "relu_exp": re_}
    raise UnsupportedOpError(f"{where}: {kind} is not an elementwise operator here")


def _srdhm16(a, b):
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    r = ab + nudge
    q = np.where(r >= 0, r >> 15, -((-r) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, q)


def _sdhm16(a, b):                                   # rounding toward zero
    ab = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    q = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((np.asarray(a) == -32768) & (np.asarray(b) == -32768), 32767, q)


def _sat16(v):
    return np.clip(v, -32768, 32767)


def unary(kind: str, x, params: dict, rounding: str | None = None) -> np.ndarray:
    """``LOGISTIC`` / ``TANH`` / ``HARD_SWISH`` of int8 ``x`` with :func:`unary_params`,
    bit-exact with TFLM's reference integer kernels. Taught in 06-deployment."""
    p = params
    v = np.asarray(x, np.int64) - p["in_zp"]
    if kind in ("LOGISTIC", "TANH"):
        q4 = multiply_by_quantized_multiplier(v, p["mult"], p["shift"], rounding)
        if kind == "LOGISTIC":
            a = np.abs(q4)
            pos = _one_over_one_plus_x(_exp_on_negative_values(-a, 4))
            r = np.where(q4 == 0, 1 << 30, np.where(q4 > 0, pos, INT32_MAX - pos))
            y = np.clip(_rdbpot_v(r, 23) - 128, -128, 127)
            lo, hi = -128, 127
        else:
            n = np.where(q4 < 0, q4, -q4)
            e = _exp_on_negative_values(n, 5)        # exp(2 n): ExactMulByPot<1> -> Q5.26
            # one_minus_x_over_one_plus_x: Rescale<0>(x - One) of the Q2.29 reciprocal
            t = _sat_left_shift(_nr_reciprocal(e) - (1 << 29), 2)
            r = np.where(q4 == 0, 0, np.where(q4 < 0, -t, t))
            y = np.clip(_rdbpot_v(r, 24), -128, 127)
            lo, hi = -128, 127
        y = np.where(v <= -p["radius"], lo, np.where(v >= p["radius"], hi, y))
        return y.astype(np.int8)
    if kind == "HARD_SWISH":
        hi_in = v * 128
        pre = _srdhm16(hi_in, p["out_mult16"])
        r = hi_in
        if p["relu_exp"] > 0:
            r = _sat16(r * (1 << (p["relu_exp"] - 1)))
        r = _srdhm16(r, p["relu_mult16"])
        if p["relu_exp"] > 0:
            r = _sat16(r * 2)
        if p["relu_exp"] < 0:
            r = _rdbpot_v(r, -p["relu_exp"])
        r = (r + (1 << 15)) >> 1
        out = _rdbpot_v(_sdhm16(r, pre), -p["out_exp"]) + p["out_zp"]
        return np.clip(out, -128, 127).astype(np.int8)
    raise UnsupportedOpError(kind)


# ----------------------------------------------------------------------------- prepare

def _value(m, t, folded):
    if t in folded:
        return folded[t]
    if m.tensors[t].data is not None:
        return np.asarray(m.tensors[t].data)
    return None


def _strided_slice(x, begin, end, strides, o, where):
    if o.get("ellipsis_mask", 0) or o.get("new_axis_mask", 0):
        raise UnsupportedOpError(f"{where}: STRIDED_SLICE with ellipsis / new-axis masks")
    sl, shrink = [], []
    for d in range(x.ndim):
        b, e, s = int(begin[d]), int(end[d]), int(strides[d])
        if o.get("offset"):
            e = b + e
        if o.get("begin_mask", 0) >> d & 1:
            b = None
        if o.get("end_mask", 0) >> d & 1:
            e = None
        if o.get("shrink_axis_mask", 0) >> d & 1:
            b = int(begin[d]) % x.shape[d]
            e, s = b + 1, 1
            shrink.append(d)
        sl.append(slice(b, e, s))
    y = x[tuple(sl)]
    return y.reshape([n for d, n in enumerate(y.shape) if d not in shrink])


def _prepare_slice(op, m, folded, where) -> dict:
    """STRIDED_SLICE of an int8 activation with constant begin / end / strides: per
    dimension (start, step, length), a strided copy."""
    T = m.tensors
    tin, tout = T[op.inputs[0]], T[op.outputs[0]]
    vals = [_value(m, t, folded) for t in op.inputs[1:4]]
    if any(v is None for v in vals):
        raise UnsupportedOpError(f"{where}: STRIDED_SLICE with non-constant begin / end / "
                                 f"strides")
    if tin.dtype != np.int8 or _q(tin) != _q(tout) or len(tin.shape) > 4:
        raise UnsupportedOpError(f"{where}: STRIDED_SLICE of activations needs an int8 tensor "
                                 f"of at most 4 dimensions and unchanged quantisation")
    ish = tuple(int(d) for d in tin.shape)
    idx = np.arange(int(np.prod(ish))).reshape(ish)
    sel = _strided_slice(idx, *vals, op.options, where)
    if sel.size == 0 or sel.size != int(np.prod(tout.shape)):
        raise UnsupportedOpError(f"{where}: STRIDED_SLICE selects {sel.size} elements, the "
                                 f"output has {int(np.prod(tout.shape))}")
    runs = _slice_runs(ish, vals, op.options, where)
    grid = idx.reshape((1,) * (4 - len(ish)) + ish)[np.ix_(*[
        start + step * np.arange(n) for start, step, n in runs])]
    if not np.array_equal(grid.reshape(-1), sel.reshape(-1)):  # pragma: no cover - a guard
        raise UnsupportedOpError(f"{where}: STRIDED_SLICE not a regular strided window")
    return dict(x=[op.inputs[0]], in_shapes=[ish], out_shape=tuple(int(d) for d in tout.shape),
                params={"index": sel.reshape(-1), "runs": runs})


def _slice_runs(shape, vals, o, where) -> tuple:
    """(start, step, length) per dimension (left-padded to 4-D) for the C strided copy."""
    begin, end, strides = (np.asarray(v).ravel() for v in vals)
    runs = []
    for d, n in enumerate(shape):
        if o.get("shrink_axis_mask", 0) >> d & 1:
            runs.append((int(begin[d]) % n, 1, 1))
            continue
        sub = np.arange(n).reshape([n if j == d else 1 for j in range(len(shape))])
        sl = _strided_slice(sub, np.where(np.arange(len(shape)) == d, begin, 0),
                            np.where(np.arange(len(shape)) == d, end, 1),
                            np.where(np.arange(len(shape)) == d, strides, 1),
                            _dim_options(o, d), where).ravel()
        runs.append((int(sl[0]), int(sl[1] - sl[0]) if sl.size > 1 else 1, int(sl.size)))
    return tuple([(0, 1, 1)] * (4 - len(shape)) + runs)


def _dim_options(o, d) -> dict:
    """The slice options restricted to dimension ``d`` (other dimensions: full, kept)."""
    bit = 1 << d
    return {"begin_mask": o.get("begin_mask", 0) & bit, "end_mask": o.get("end_mask", 0) & bit,
            "shrink_axis_mask": 0, "offset": o.get("offset", False)}


def prepare_op(op, m, folded: dict, rounding: str | None = None) -> dict:
    """Fields of the OpSpec of operator ``op`` of parsed model ``m`` (``x``, ``in_shapes``,
    ``out_shape``, ``params``, ``consts``). ``folded`` maps tensor index -> value of
    tensors evaluated at prepare time; this call adds the folded outputs. Raises
    :class:`UnsupportedOpError` naming the operator for variants not modelled.
    Taught in 06-deployment."""
    k, o, T = op.opcode, op.options, m.tensors
    where = f"operator {op.index} ({k})"
    tin, tout = T[op.inputs[0]], T[op.outputs[0]]
    si, zi = _q(tin)
    so, zo = _q(tout)
    full = lambda t: tuple(int(d) for d in T[t].shape)  # noqa: E731
    n_out = int(np.prod(tout.shape))
    if k == "STRIDED_SLICE" and op.inputs[0] not in folded and tin.data is None:
        return _prepare_slice(op, m, folded, where)
    if k in FOLDED_OPS:
        if k == "SHAPE":
            v = np.array(tin.shape, dtype=tout.dtype)
        else:
            vals = [_value(m, t, folded) for t in op.inputs]
            if any(v is None for v in vals):
                raise UnsupportedOpError(f"{where}: only {k} of constant-foldable shape tensors "
                                         f"is supported (an input is an activation)")
            if k == "PACK":
                v = np.stack(vals, axis=int(o.get("axis", 0)))
            else:
                v = _strided_slice(vals[0], *vals[1:4], o, where)
            v = np.asarray(v, dtype=tout.dtype).reshape(tout.shape)
        folded[op.outputs[0]] = v
        return dict(x=[], in_shapes=[], out_shape=full(op.outputs[0]), params={"value": v})
    if k == "QUANTIZE":
        if tout.dtype != np.int8 or tout.scale.size != 1:
            raise UnsupportedOpError(f"{where}: only per-tensor quantisation to int8 is "
                                     f"supported, got {tout.type_name}")
        if tin.dtype == np.float32:
            return dict(x=[op.inputs[0]], in_shapes=[(n_out,)], out_shape=(n_out,),
                        params={"mode": "float", "scale": so, "zp": zo,
                                "thr": _quantize_thresholds(so, zo)})
        if tin.dtype != np.int8:
            raise UnsupportedOpError(f"{where}: QUANTIZE from {tin.type_name}; supported "
                                     f"float32 -> int8 and int8 -> int8")
        mult, shift = quantize_multiplier(float(si) / float(so), rounding)
        y = multiply_by_quantized_multiplier(_Q8 - zi, mult, shift, rounding) + zo
        lut = np.clip(y, -128, 127).astype(np.int8)
        return dict(x=[op.inputs[0]], in_shapes=[(n_out,)], out_shape=(n_out,),
                    params={"mode": "requant", "mult": mult, "shift": shift, "lut": lut})
    if k == "DEQUANTIZE":
        if tin.dtype != np.int8 or tout.dtype != np.float32 or tin.scale.size != 1:
            raise UnsupportedOpError(f"{where}: only per-tensor int8 -> float32 is supported")
        table = dequantize(_Q8, si, zi)
        return dict(x=[op.inputs[0]], in_shapes=[(n_out,)], out_shape=(n_out,),
                    params={"scale": si, "zp": zi, "table": table,
                            "table_bits": table.view(np.int32).astype(np.int64)})
    if tin.dtype != np.int8 or tout.dtype != np.int8:
        raise UnsupportedOpError(f"{where}: {tin.type_name} -> {tout.type_name}; only int8 "
                                 f"is supported")
    if k in ("PAD", "PADV2"):
        pads = _value(m, op.inputs[1], folded)
        if pads is None:
            raise UnsupportedOpError(f"{where}: paddings must be constant")
        if (si, zi) != (so, zo):
            raise UnsupportedOpError(f"{where}: PAD changing quantisation")
        rank = len(tin.shape)
        if rank > 4:
            raise UnsupportedOpError(f"{where}: PAD of a {rank}-D tensor (at most 4-D)")
        value = zo
        if k == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            cv = _value(m, op.inputs[2], folded)
            if cv is None:
                raise UnsupportedOpError(f"{where}: constant_values must be constant")
            value = int(np.asarray(cv).ravel()[0])
        pads = np.asarray(pads, np.int64).reshape(rank, 2)
        return dict(x=[op.inputs[0]], in_shapes=[full(op.inputs[0])],
                    out_shape=full(op.outputs[0]), params={"pads": pads, "value": value})
    if k in UNARY_OPS:
        up = unary_params(k, si, zi, so, zo, where, rounding)
        up["lut"] = unary(k, _Q8, up, rounding)
        return dict(x=[op.inputs[0]], in_shapes=[(n_out,)], out_shape=(n_out,), params=up)
    if k == "CONCATENATION":
        ins = list(op.inputs)
        for t in ins:
            if T[t].data is not None:
                raise UnsupportedOpError(f"{where}: CONCATENATION of a constant tensor")
            if _q(T[t]) != (so, zo) or T[t].dtype != np.int8:
                raise UnsupportedOpError(f"{where}: int8 CONCATENATION needs every input "
                                         f"quantised like the output (as TFLite-Micro)")
        if o.get("fused_activation_function", "NONE") not in ("NONE", None):
            raise UnsupportedOpError(f"{where}: fused activation on CONCATENATION")
        axis = int(o.get("axis", 0)) % len(tout.shape)
        return dict(x=ins, in_shapes=[full(t) for t in ins], out_shape=full(op.outputs[0]),
                    params={"axis": axis})
    if k == "MUL":
        ta, tb = T[op.inputs[0]], T[op.inputs[1]]
        (sa, za), (sb, zb) = _q(ta), _q(tb)
        mult, shift = quantize_multiplier(float(sa) * float(sb) / float(so), rounding)
        lo, hi = activation_range(o.get("fused_activation_function", "NONE"), so, zo)
        x, shapes, consts = [], [], {}
        for j, t in enumerate(op.inputs[:2]):
            v = _value(m, t, folded)
            if v is not None:
                consts[f"in{j}"] = np.asarray(v, np.int8).reshape(full(t))
            else:
                x.append(t)
                shapes.append(full(t))
        oshape = full(op.outputs[0])
        if len(oshape) > 4:
            raise UnsupportedOpError(f"{where}: MUL of {len(oshape)}-D tensors (at most 4-D)")
        return dict(x=x, in_shapes=shapes, out_shape=oshape, consts=consts,
                    params={"a_zp": za, "b_zp": zb, "out_zp": zo, "mult": mult, "shift": shift,
                            "act_min": lo, "act_max": hi, "a_shape": full(op.inputs[0]),
                            "b_shape": full(op.inputs[1]), "n_macs": n_out})
    raise UnsupportedOpError(f"{where}: not an operator of helpers.engine.kernels_ext")


# ----------------------------------------------------------------------------- apply

def apply(kind: str, params: dict, consts: dict, xs: list, rounding: str | None = None):
    """Run one prepared operator on its activation inputs ``xs``. Taught in 06-deployment."""
    p = params
    if kind == "STRIDED_SLICE" and "index" in p:
        return np.asarray(xs[0]).reshape(-1)[p["index"]]
    if kind in FOLDED_OPS:
        return p["value"]
    if kind == "QUANTIZE":
        if p["mode"] == "float":
            return quantize_float(xs[0], p["scale"], p["zp"])
        return p["lut"][np.asarray(xs[0], np.int64) + 128]
    if kind in UNARY_OPS:
        return unary(kind, xs[0], p, rounding)
    if kind == "DEQUANTIZE":
        return dequantize(xs[0], p["scale"], p["zp"])
    if kind in ("PAD", "PADV2"):
        x = np.asarray(xs[0])
        return np.pad(x, [tuple(r) for r in p["pads"]], constant_values=p["value"]).astype(np.int8)
    if kind == "CONCATENATION":
        return np.concatenate([np.asarray(a) for a in xs], axis=p["axis"])
    if kind == "MUL":
        it = iter(xs)
        a = consts["in0"] if "in0" in consts else next(it)
        b = consts["in1"] if "in1" in consts else next(it)
        acc = (np.asarray(a, np.int64) - p["a_zp"]) * (np.asarray(b, np.int64) - p["b_zp"])
        y = multiply_by_quantized_multiplier(acc, p["mult"], p["shift"], rounding) + p["out_zp"]
        return np.clip(y, p["act_min"], p["act_max"]).astype(np.int8)
    raise UnsupportedOpError(kind)

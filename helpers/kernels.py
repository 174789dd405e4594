"""int8 reference kernels, bit-exact with TFLite / TFLite-Micro, and an arena interpreter.

Taught in 06-deployment. Two layers:

* **Kernels** (NumPy, int64 accumulation, vectorised): :func:`conv2d`,
  :func:`depthwise_conv2d`, :func:`fully_connected`, :func:`add`, :func:`average_pool`,
  :func:`max_pool`, :func:`mean`, :func:`softmax`, plus ``RESHAPE``. They follow TFLite's
  integer arithmetic: per-channel requantisation with ``MultiplyByQuantizedMultiplier``
  (``multiplier`` / ``shift`` derived from the float scales with ``frexp``, exactly as
  ``QuantizeMultiplier``), round-half-away rounding, activation clamps.
* **Interpreter** (:class:`Interpreter`, :func:`run`): executes a ``.tflite`` flatbuffer
  op by op inside one explicit arena (a NumPy byte array) laid out by a named memory plan
  from :mod:`helpers.resources` (``tflm``, ``reordered``, ``inplace``). Every tensor lives
  at its planned byte offset; in-place depthwise ops really overwrite their input channel
  by channel through a one-channel scratch buffer, so equality with TFLite proves the
  plan correct, not only small. ``check_live=True`` also verifies after every op that no
  tensor still needed was overwritten.

:func:`prepare` turns a model into :class:`OpSpec` records (layouts, int32 multipliers
and shifts, activation ranges); the Python kernels and the C code generator
(:mod:`helpers.emulator`) both consume them, so the generated C uses the very same
constants.

Rounding: TFLite has two ``MultiplyByQuantizedMultiplier`` variants, the historical
"double rounding" (gemmlowp ``SaturatingRoundingDoublingHighMul`` then
``RoundingDivideByPOT``) and ``TFLITE_SINGLE_ROUNDING`` (one 64-bit round-half-up
shift). :data:`ROUNDING` is the one that TF 2.21's interpreter and the pinned
tflite-micro match (checked by ``tests/test_kernels.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from helpers import tflite_io

__all__ = ["ROUNDING", "SUPPORTED_OPS", "UnsupportedOpError", "quantize_multiplier",
           "multiply_by_quantized_multiplier", "activation_range", "conv2d", "depthwise_conv2d",
           "fully_connected", "add", "average_pool", "max_pool", "mean", "softmax",
           "OpSpec", "prepare", "Interpreter", "KernelRun", "run", "reference_outputs"]

#: Rounding of MultiplyByQuantizedMultiplier that matches TF 2.21 and the pinned TFLM.
ROUNDING = "double"

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
                 "MAX_POOL_2D", "MEAN", "REDUCE_MAX", "RESHAPE", "SOFTMAX")

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class UnsupportedOpError(ValueError):
    """The model contains an operator (or a variant of one) these kernels do not implement."""


# --------------------------------------------------------------------------------------
# Quantisation arithmetic
# --------------------------------------------------------------------------------------

def quantize_multiplier(real: float, rounding: str | None = None) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    ``multiplier`` is an int32 in [2**30, 2**31), ``shift`` the power-of-two exponent
    (positive = left shift). Uses ``frexp`` and round-half-away-from-zero as TFLite does.
    """
    rounding = rounding or ROUNDING
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(_round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if rounding == "single" and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def _round_half_away(x):
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _wrap32(x):
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul for int32 a (array) and b >= 0."""
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    r = ab + nudge
    # C integer division by 2**31 truncates toward zero
    q = np.where(r >= 0, r >> 31, -((-r) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def _rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT (round half away from zero)."""
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift, rounding: str | None = None):
    """``MultiplyByQuantizedMultiplier(x, multiplier, shift)`` elementwise (int64 arrays).

    ``multiplier`` / ``shift`` broadcast against ``x`` (per-channel along the last axis).
    ``rounding``: ``"double"`` (gemmlowp, TFLite's default build) or ``"single"``.
    """
    rounding = rounding or ROUNDING
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if rounding == "single":
        total = 31 - s
        rnd = np.int64(1) << (total - 1)
        return (x * m + rnd) >> total
    if rounding != "double":
        raise ValueError(f"rounding must be 'double' or 'single', got {rounding!r}")
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    xs = _wrap32(x << left)
    return _rdbpot(_srdhm(xs, m), right)


def activation_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """int8 clamp bounds of a fused activation (``CalculateActivationRangeQuantized``)."""
    s = np.float32(scale)

    def q(f):
        return int(zero_point) + int(_round_half_away(float(np.float32(f) / s)))
    lo, hi = -128, 127
    if act in (None, "NONE"):
        return lo, hi
    if act == "RELU":
        return max(lo, q(0.0)), hi
    if act == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise UnsupportedOpError(f"fused_activation_function {act!r} not supported; allowed "
                             f"NONE, RELU, RELU6, RELU_N1_TO_1")


def _padding(padding: str, in_size: int, k: int, stride: int, dilation: int, out_size: int) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        return 0
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2


# --------------------------------------------------------------------------------------
# Kernels (NHWC int8 tensors with batch 1 allowed to be omitted: arrays (H, W, C))
# --------------------------------------------------------------------------------------

def _requant(acc, mult, shift, out_zp, lo, hi, rounding=None):
    y = multiply_by_quantized_multiplier(acc, mult, shift, rounding) + out_zp
    return np.clip(y, lo, hi).astype(np.int8)


def _patches(x, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, fill):
    """(oh, ow, kh, kw, C) windows of x (H, W, C) padded with ``fill``."""
    h, w, c = x.shape
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    pb = max(need_h - h - pt, 0)
    pr = max(need_w - w - pl, 0)
    xp = np.full((h + pt + pb, w + pl + pr, c), fill, dtype=x.dtype)
    xp[pt:pt + h, pl:pl + w] = x
    iy = (np.arange(oh) * sh)[:, None] + (np.arange(kh) * dh)[None, :]   # (oh, kh)
    ix = (np.arange(ow) * sw)[:, None] + (np.arange(kw) * dw)[None, :]   # (ow, kw)
    return xp[iy[:, None, :, None], ix[None, :, None, :]]                # (oh, ow, kh, kw, C)


def _valid_mask(h, w, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow):
    iy = (np.arange(oh) * sh - pt)[:, None] + (np.arange(kh) * dh)[None, :]
    ix = (np.arange(ow) * sw - pl)[:, None] + (np.arange(kw) * dw)[None, :]
    my = (iy >= 0) & (iy < h)
    mx = (ix >= 0) & (ix < w)
    return my[:, None, :, None] & mx[None, :, None, :]                     # (oh, ow, kh, kw)


def conv2d(x, w, bias, *, stride=(1, 1), dilation=(1, 1), pad=(0, 0), out_hw=None,
           in_zp=0, out_zp=0, mult, shift, act_min=-128, act_max=127, rounding=None):
    """int8 CONV_2D: x (H, W, Cin) int8, w (Cout, KH, KW, Cin) int8, bias (Cout,) int32.

    Out-of-image taps are skipped (equivalently, padded with the input zero point).
    ``mult`` / ``shift``: per-output-channel int32 arrays. Returns (OH, OW, Cout) int8.
    """
    x = np.asarray(x, np.int8)
    co, kh, kw, ci = w.shape
    sh, sw = stride
    dh, dw = dilation
    pt, pl = pad
    oh, ow = out_hw
    p = _patches(x, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, fill=np.int8(in_zp if -128 <= in_zp <= 127 else 0))
    xv = p.astype(np.int64) - in_zp
    if not (-128 <= in_zp <= 127):
        xv = xv * _valid_mask(*x.shape[:2], kh, kw, sh, sw, dh, dw, pt, pl, oh, ow)[..., None]
    acc = xv.reshape(oh * ow, -1) @ w.reshape(co, -1).astype(np.int64).T
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding).reshape(oh, ow, co)


def depthwise_conv2d(x, w, bias, *, stride=(1, 1), dilation=(1, 1), pad=(0, 0), out_hw=None,
                     depth_multiplier=1, in_zp=0, out_zp=0, mult, shift, act_min=-128,
                     act_max=127, rounding=None):
    """int8 DEPTHWISE_CONV_2D: x (H, W, C), w (KH, KW, C*M), bias (C*M,). Output channel
    ``c*M + m`` reads input channel ``c``. Returns (OH, OW, C*M) int8."""
    x = np.asarray(x, np.int8)
    kh, kw, co = w.shape
    sh, sw = stride
    dh, dw = dilation
    pt, pl = pad
    oh, ow = out_hw
    p = _patches(x, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, fill=np.int8(in_zp if -128 <= in_zp <= 127 else 0))
    xv = p.astype(np.int64) - in_zp
    if not (-128 <= in_zp <= 127):
        xv = xv * _valid_mask(*x.shape[:2], kh, kw, sh, sw, dh, dw, pt, pl, oh, ow)[..., None]
    if depth_multiplier != 1:
        xv = np.repeat(xv, depth_multiplier, axis=-1)
    acc = np.einsum("yxabc,abc->yxc", xv, w.astype(np.int64))
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding)


def fully_connected(x, w, bias, *, in_zp=0, w_zp=0, out_zp=0, mult, shift, act_min=-128,
                    act_max=127, rounding=None):
    """int8 FULLY_CONNECTED: x (N,) or (B, N), w (Cout, N), bias (Cout,)."""
    xv = np.asarray(x, np.int64) - in_zp
    acc = xv @ (w.astype(np.int64) - w_zp).T
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding)


def add(a, b, *, a_zp, b_zp, out_zp, left_shift, a_mult, a_shift, b_mult, b_shift, out_mult,
        out_shift, act_min=-128, act_max=127, rounding=None):
    """int8 ADD (same shapes): TFLite's integer add with ``left_shift`` = 20."""
    ra = _wrap32((np.asarray(a, np.int64) - a_zp) << left_shift)
    rb = _wrap32((np.asarray(b, np.int64) - b_zp) << left_shift)
    sa = multiply_by_quantized_multiplier(ra, a_mult, a_shift, rounding)
    sb = multiply_by_quantized_multiplier(rb, b_mult, b_shift, rounding)
    y = multiply_by_quantized_multiplier(_wrap32(sa + sb), out_mult, out_shift, rounding) + out_zp
    return np.clip(y, act_min, act_max).astype(np.int8)


def _pool_windows(x, kh, kw, sh, sw, pt, pl, oh, ow):
    h, w, c = x.shape
    p = _patches(x, kh, kw, sh, sw, 1, 1, pt, pl, oh, ow, fill=np.int8(0))
    m = _valid_mask(h, w, kh, kw, sh, sw, 1, 1, pt, pl, oh, ow)
    return p, m


def average_pool(x, *, filter_hw, stride, pad, out_hw, act_min=-128, act_max=127):
    """int8 AVERAGE_POOL_2D (TFLite reference: in-image taps only, rounded division)."""
    x = np.asarray(x, np.int8)
    (kh, kw), (sh, sw), (pt, pl), (oh, ow) = filter_hw, stride, pad, out_hw
    p, m = _pool_windows(x, kh, kw, sh, sw, pt, pl, oh, ow)
    acc = (p.astype(np.int64) * m[..., None]).sum(axis=(2, 3))
    cnt = m.sum(axis=(2, 3)).astype(np.int64)[..., None]
    q = np.where(acc > 0, (acc + cnt // 2) // cnt, -((-acc + cnt // 2) // cnt))
    return np.clip(q, act_min, act_max).astype(np.int8)


def max_pool(x, *, filter_hw, stride, pad, out_hw, act_min=-128, act_max=127):
    """int8 MAX_POOL_2D (in-image taps only)."""
    x = np.asarray(x, np.int8)
    (kh, kw), (sh, sw), (pt, pl), (oh, ow) = filter_hw, stride, pad, out_hw
    p, m = _pool_windows(x, kh, kw, sh, sw, pt, pl, oh, ow)
    v = np.where(m[..., None], p.astype(np.int64), -(1 << 20)).max(axis=(2, 3))
    return np.clip(v, act_min, act_max).astype(np.int8)


def mean(x, *, axes, in_zp, out_zp, mult, shift, rounding=None):
    """int8 MEAN over ``axes`` of x (TFLite ``QuantizedMeanOrSum``: integer sum, the
    1/N factor folded into the multiplier, one requantisation)."""
    x = np.asarray(x, np.int64)
    n = int(np.prod([x.shape[a] for a in axes]))
    m2, s2 = mean_multiplier(mult, shift, n)
    acc = x.sum(axis=tuple(axes)) - in_zp * n
    y = multiply_by_quantized_multiplier(_wrap32(acc), m2, s2, rounding) + out_zp
    return np.clip(y, -128, 127).astype(np.int8)


def mean_multiplier(mult: int, shift: int, n: int) -> tuple[int, int]:
    """Fold 1/n into (mult, shift) as TFLite's QuantizedMeanOrSum does."""
    s = 63 - _clz64(n)
    s = min(s, 32)
    s = min(s, 31 + shift)
    return int((int(mult) << s) // n), int(shift - s)


def _clz64(v: int) -> int:
    return 64 - int(v).bit_length()


# ---- softmax (TFLite reference int8 softmax: gemmlowp fixed point) --------------------

def _sat_rdhm_scalar(a: int, b: int) -> int:
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    r = ab + nudge
    return r >> 31 if r >= 0 else -((-r) >> 31)


def _rdbpot_scalar(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def _sat32(x: int) -> int:
    return max(INT32_MIN, min(INT32_MAX, x))


def _srdhm_v(a, b):
    """Vector SaturatingRoundingDoublingHighMul for int32 arrays a, b."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    r = ab + nudge
    q = np.where(r >= 0, r >> 31, -((-r) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def _rdbpot_v(x, e):
    x = np.asarray(x, np.int64)
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def _sat_left_shift(x, e):
    return np.clip(np.asarray(x, np.int64) << e, INT32_MIN, INT32_MAX)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31)."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = a + (1 << 28)                         # a + 1/8 in Q0.31
    x2 = _srdhm_v(x, x)
    x3 = _srdhm_v(x2, x)
    x4 = _srdhm_v(x2, x2)
    x4_over_4 = _rdbpot_v(x4, 2)
    x4_over_24_plus_x3_over_6_plus_x2_over_2 = _rdbpot_v(
        _srdhm_v(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + _srdhm_v(constant_term, x + x4_over_24_plus_x3_over_6_plus_x2_over_2)


def _exp_on_negative_values(a, integer_bits):
    """gemmlowp exp_on_negative_values: input Q(integer_bits).(31-integer_bits) <= 0,
    output Q0.31."""
    a = np.asarray(a, np.int64)
    k_fractional_bits = 31 - integer_bits
    one_quarter = 1 << (k_fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _sat_left_shift(a_mod_quarter_minus_one_quarter, integer_bits))   # rescale to Q0.31
    remainder = a_mod_quarter_minus_one_quarter - a
    multipliers = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                   (2, 39332535), (3, 720401), (4, 242)]
    for exponent, mult in multipliers:
        if integer_bits > exponent:
            bit = (remainder >> (k_fractional_bits + exponent)) & 1
            result = np.where(bit != 0, _srdhm_v(result, mult), result)
    if integer_bits > 5:
        clamp = -(1 << (k_fractional_bits + 5))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: a Q0.31 in [0,1) -> Q2.29."""
    a = np.asarray(a, np.int64)
    # half_denominator = RoundingHalfSum(a, 1.0) in Q0.31
    s = a + INT32_MAX
    half_denominator = np.where(s >= 0, (s + 1) >> 1, -((-s + 1) >> 1))
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = constant_48_over_17 + _srdhm_v(half_denominator, constant_neg_32_over_17)   # Q2.29
    one_q229 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = _srdhm_v(half_denominator, x)                    # Q2.29
        one_minus = one_q229 - half_denominator_times_x
        x = x + _sat_left_shift(_srdhm_v(x, one_minus), 2)                        # Q2.29
    # Rescale<0>(ExactMulByPot<-1>(x)): halve with rounding, then Q2.29 -> Q0.31
    return _sat_left_shift(_rdbpot_v(x, 1), 2)


def _get_reciprocal(x, x_integer_digits):
    """TFLite GetReciprocal: returns (shifted_scale Q0.31, num_bits_over_unit)."""
    x = np.asarray(x, np.int64)
    headroom_plus_one = np.array([_clz32(int(v)) for v in x.ravel()]).reshape(x.shape)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    shifted_sum_minus_one = _wrap32(shifted_sum_minus_one)
    shifted_scale = _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    return shifted_scale, num_bits_over_unit


def _clz32(v: int) -> int:
    v &= 0xFFFFFFFF
    return 32 - v.bit_length()


def softmax(x, *, input_beta_multiplier, input_beta_left_shift, diff_min, rounding=None):
    """int8 SOFTMAX over the last axis (TFLite / TFLM reference ``Softmax`` int8 ->
    int8, output scale 1/256, zero point -128)."""
    x = np.asarray(x, np.int64)
    k_scaled_diff_integer_bits = 5
    k_accumulation_integer_bits = 12
    max_in_row = x.max(axis=-1, keepdims=True)
    diff = x - max_in_row
    valid = diff >= diff_min
    if (rounding or ROUNDING) == "single":
        diff_rescaled = multiply_by_quantized_multiplier(diff, input_beta_multiplier,
                                                         input_beta_left_shift, "single")
    else:
        diff_rescaled = _srdhm_v(_wrap32(diff << input_beta_left_shift), input_beta_multiplier)
    exps = _exp_on_negative_values(diff_rescaled, k_scaled_diff_integer_bits)   # Q0.31
    # accumulate in Q12.19: Rescale<kAccumulationIntegerBits>(exp) = RDBPOT(exp, 12)
    contrib = np.where(valid, _rdbpot_v(exps, k_accumulation_integer_bits), 0)
    sum_of_exps = contrib.sum(axis=-1, keepdims=True)
    shifted_scale, num_bits_over_unit = _get_reciprocal(sum_of_exps, k_accumulation_integer_bits)
    unsat = _rdbpot_v(_srdhm_v(shifted_scale, exps), (num_bits_over_unit + 31 - 8))
    shifted_output = unsat - 128
    out = np.clip(shifted_output, -128, 127)
    return np.where(valid, out, -128).astype(np.int8)


def softmax_params(beta: float, input_scale: float, rounding: str | None = None) -> tuple[int, int, int]:
    """``(input_beta_multiplier, input_beta_left_shift, diff_min)`` of TFLite's
    ``PreprocessSoftmaxScaling`` + ``CalculateInputRadius`` for int8 (5 integer bits)."""
    k_scaled_diff_integer_bits = 5
    rounding = rounding or ROUNDING
    max_real = (1 << 30) - 1.0 if rounding == "single" else (1 << 31) - 1.0
    input_beta_real_multiplier = min(
        float(beta) * float(input_scale) * (1 << (31 - k_scaled_diff_integer_bits)), max_real)
    mult, shift = quantize_multiplier(input_beta_real_multiplier, rounding)
    # QuantizeMultiplierGreaterThanOne
    left_shift = shift
    # CalculateInputRadius(input_integer_bits=5, input_left_shift, total_signed_bits=31)
    max_input_rescaled = (1.0 * ((1 << k_scaled_diff_integer_bits) - 1)
                          * (1 << (31 - k_scaled_diff_integer_bits)) / (1 << left_shift))
    diff_min = -int(math.floor(max_input_rescaled))
    return int(mult), int(left_shift), int(diff_min)


# --------------------------------------------------------------------------------------
# Model preparation: OpSpec records shared by the interpreter and the C generator
# --------------------------------------------------------------------------------------

@dataclass
class OpSpec:
    """One operator with everything a kernel needs (layout-ready constants, int params).

    ``kind`` is the opcode; ``x`` / ``y`` the activation tensor indices it reads
    (list) and writes; ``consts`` weights / bias arrays; ``params`` plain ints (and int
    arrays for per-channel multipliers); ``in_shape`` / ``out_shape`` are HWC (batch
    removed) shapes; ``macs`` the multiply-accumulates.
    """

    index: int
    kind: str
    x: list
    y: int
    in_shapes: list
    out_shape: tuple
    params: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)
    macs: int = 0


def _q(t):
    s = float(t.scale[0]) if t.scale.size else 1.0
    z = int(t.zero_point[0]) if t.zero_point.size else 0
    return s, z


def _hwc(shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        if shape[0] != 1:
            raise UnsupportedOpError(f"batch size {shape[0]} not supported (batch must be 1)")
        return shape[1:]
    if len(shape) >= 1 and shape[0] == 1 and len(shape) > 1:
        return shape[1:]
    return shape


def prepare(tflite_bytes, rounding: str | None = None) -> list:
    """Parse a model into a list of :class:`OpSpec` (file order)."""
    rounding = rounding or ROUNDING
    m = tflite_io.read(tflite_bytes)
    T = m.tensors
    specs = []
    for op in m.ops:
        k = op.opcode
        o = op.options
        if k not in SUPPORTED_OPS:
            raise UnsupportedOpError(f"operator {op.index} is {k}; supported ops are "
                                     f"{list(SUPPORTED_OPS)}")
        tin = T[op.inputs[0]]
        tout = T[op.outputs[0]]
        if tin.dtype != np.int8 or tout.dtype != np.int8:
            raise UnsupportedOpError(f"operator {op.index} ({k}) has {tin.type_name} -> "
                                     f"{tout.type_name} tensors; only int8 models are supported")
        si, zi = _q(tin)
        so, zo = _q(tout)
        act = o.get("fused_activation_function", "NONE")
        spec = OpSpec(index=op.index, kind=k, x=[op.inputs[0]], y=op.outputs[0],
                      in_shapes=[_hwc(tin.shape)], out_shape=_hwc(tout.shape))
        p = spec.params
        if k in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            tw = T[op.inputs[1]]
            tb = T[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            w = tw.data
            h, wd, ci = spec.in_shapes[0]
            oh, ow, co = spec.out_shape
            if k == "CONV_2D":
                _, kh, kw, wci = w.shape
                if wci != ci:
                    raise UnsupportedOpError(f"operator {op.index}: grouped CONV_2D "
                                             f"(filter {wci} vs input {ci} channels) not supported")
            else:
                _, kh, kw, _ = w.shape
            sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
            dh, dw = o.get("dilation_h_factor", 1), o.get("dilation_w_factor", 1)
            pad = o.get("padding", "SAME")
            pt = _padding(pad, h, kh, sh, dh, oh)
            pl = _padding(pad, wd, kw, sw, dw, ow)
            wscale = tw.scale.astype(np.float64)
            if wscale.size == 1:
                wscale = np.full(co, wscale[0])
            mults, shifts = zip(*[quantize_multiplier(float(si) * float(ws) / float(so), rounding)
                                  for ws in wscale.astype(np.float32)])
            lo, hi = activation_range(act, so, zo)
            bias = tb.data.astype(np.int32) if tb is not None else np.zeros(co, np.int32)
            p.update(kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, pt=pt, pl=pl, in_zp=zi, out_zp=zo,
                     act_min=lo, act_max=hi, mult=np.array(mults, np.int64),
                     shift=np.array(shifts, np.int64))
            if k == "CONV_2D":
                spec.consts = {"w": w.astype(np.int8), "bias": bias}
                spec.macs = oh * ow * co * kh * kw * ci
            else:
                dm = o.get("depth_multiplier", 1) or 1
                if co != ci * dm:
                    dm = co // ci
                p["depth_multiplier"] = int(dm)
                spec.consts = {"w": w.reshape(kh, kw, co).astype(np.int8), "bias": bias}
                spec.macs = oh * ow * co * kh * kw
        elif k == "FULLY_CONNECTED":
            tw = T[op.inputs[1]]
            tb = T[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            w = tw.data.astype(np.int8)
            co, n = w.shape
            if o.get("keep_num_dims"):
                pass
            if int(np.prod(tin.shape)) != n:
                raise UnsupportedOpError(f"operator {op.index}: FULLY_CONNECTED with batch > 1 "
                                         f"not supported")
            spec.in_shapes = [(n,)]
            spec.out_shape = (co,)
            if tw.scale.size > 1:
                mults, shifts = zip(*[quantize_multiplier(float(si) * float(ws) / float(so), rounding)
                                      for ws in tw.scale.astype(np.float32)])
            else:
                # GetQuantizedConvolutionMultipler: double(input_scale * filter_scale) / out
                prod = float(np.float32(si) * np.float32(tw.scale[0]))
                mm, ss = quantize_multiplier(prod / float(so), rounding)
                mults, shifts = [mm] * co, [ss] * co
            lo, hi = activation_range(act, so, zo)
            bias = tb.data.astype(np.int32) if tb is not None else np.zeros(co, np.int32)
            wzp = int(tw.zero_point[0]) if tw.zero_point.size else 0
            p.update(in_zp=zi, w_zp=wzp, out_zp=zo, act_min=lo, act_max=hi,
                     mult=np.array(mults, np.int64), shift=np.array(shifts, np.int64))
            spec.consts = {"w": w, "bias": bias}
            spec.macs = co * n
        elif k == "ADD":
            tb_ = T[op.inputs[1]]
            if tuple(d for d in tb_.shape if d != 1) != tuple(d for d in tin.shape if d != 1):
                raise UnsupportedOpError(f"operator {op.index}: broadcasting ADD "
                                         f"{tin.shape} + {tb_.shape} not supported")
            if tb_.data is not None:
                raise UnsupportedOpError(f"operator {op.index}: ADD of a constant not supported")
            s2, z2 = _q(tb_)
            left_shift = 20
            twice_max = 2.0 * float(max(np.float32(si), np.float32(s2)))
            a_m, a_s = quantize_multiplier(float(si) / twice_max, rounding)
            b_m, b_s = quantize_multiplier(float(s2) / twice_max, rounding)
            o_m, o_s = quantize_multiplier(
                twice_max / float(np.float32((1 << left_shift) * np.float32(so))), rounding)
            lo, hi = activation_range(act, so, zo)
            spec.x = [op.inputs[0], op.inputs[1]]
            spec.in_shapes = [_hwc(tout.shape), _hwc(tout.shape)]
            p.update(a_zp=zi, b_zp=z2, out_zp=zo, left_shift=left_shift, a_mult=a_m, a_shift=a_s,
                     b_mult=b_m, b_shift=b_s, out_mult=o_m, out_shift=o_s, act_min=lo, act_max=hi)
        elif k in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            h, wd, c = spec.in_shapes[0]
            oh, ow, _ = spec.out_shape
            kh, kw = o.get("filter_height", 1), o.get("filter_width", 1)
            sh, sw = o.get("stride_h", 1), o.get("stride_w", 1)
            pad = o.get("padding", "VALID")
            if abs(si - so) > 0 or zi != zo:
                raise UnsupportedOpError(f"operator {op.index}: {k} with different input and "
                                         f"output quantisation not supported")
            lo, hi = activation_range(act, so, zo)
            p.update(kh=kh, kw=kw, sh=sh, sw=sw, pt=_padding(pad, h, kh, sh, 1, oh),
                     pl=_padding(pad, wd, kw, sw, 1, ow), act_min=lo, act_max=hi)
        elif k == "MEAN":
            axes = [int(a) for a in np.asarray(T[op.inputs[1]].data).ravel()]
            axes = [a % len(tin.shape) for a in axes]
            if len(tin.shape) != 4 or sorted(axes) != [1, 2]:
                raise UnsupportedOpError(f"operator {op.index}: MEAN over axes {axes} of a "
                                         f"{len(tin.shape)}-D tensor; only spatial (1, 2) "
                                         f"means of NHWC tensors are supported")
            h, wd, c = spec.in_shapes[0]
            spec.out_shape = (c,) if not o.get("keep_dims") else (1, 1, c)
            mm, ss = quantize_multiplier(float(si) / float(so), rounding)
            m2, s2 = mean_multiplier(mm, ss, h * wd)
            p.update(in_zp=zi, out_zp=zo, mult=mm, shift=ss, n=h * wd, mult_n=m2, shift_n=s2)
        elif k == "REDUCE_MAX":
            axes = [int(a) for a in np.asarray(T[op.inputs[1]].data).ravel()]
            axes = [a % len(tin.shape) for a in axes]
            if len(tin.shape) != 4 or sorted(axes) != [1, 2]:
                raise UnsupportedOpError(f"operator {op.index}: REDUCE_MAX over axes {axes}; "
                                         f"only spatial (1, 2) of NHWC tensors is supported")
            if abs(si - so) > 0 or zi != zo:
                raise UnsupportedOpError(f"operator {op.index}: REDUCE_MAX changing quantisation")
            h, wd, c = spec.in_shapes[0]
            spec.out_shape = (c,)
            p.update(n=h * wd)
        elif k == "RESHAPE":
            spec.x = [op.inputs[0]]
            if (si, zi) != (so, zo):
                raise UnsupportedOpError(f"operator {op.index}: RESHAPE changing quantisation")
        elif k == "SOFTMAX":
            if abs(so - 1 / 256) > 1e-9 or zo != -128:
                raise UnsupportedOpError(f"operator {op.index}: int8 SOFTMAX must have output "
                                         f"scale 1/256 and zero point -128")
            beta = float(o.get("beta", 1.0))
            bm, bs, dmin = softmax_params(beta, float(si), rounding)
            n = int(tin.shape[-1])
            spec.in_shapes = [(int(np.prod(tin.shape)) // n, n)]
            spec.out_shape = spec.in_shapes[0]
            p.update(beta_mult=bm, beta_shift=bs, diff_min=dmin)
        specs.append(spec)
    return specs


def _apply(spec: OpSpec, xs: list, rounding=None):
    """Run one OpSpec on input arrays (shaped per spec.in_shapes); returns the output."""
    p, c, k = spec.params, spec.consts, spec.kind
    if k == "CONV_2D":
        return conv2d(xs[0], c["w"], c["bias"], stride=(p["sh"], p["sw"]),
                      dilation=(p["dh"], p["dw"]), pad=(p["pt"], p["pl"]),
                      out_hw=spec.out_shape[:2], in_zp=p["in_zp"], out_zp=p["out_zp"],
                      mult=p["mult"], shift=p["shift"], act_min=p["act_min"],
                      act_max=p["act_max"], rounding=rounding)
    if k == "DEPTHWISE_CONV_2D":
        return depthwise_conv2d(xs[0], c["w"], c["bias"], stride=(p["sh"], p["sw"]),
                                dilation=(p["dh"], p["dw"]), pad=(p["pt"], p["pl"]),
                                out_hw=spec.out_shape[:2], depth_multiplier=p["depth_multiplier"],
                                in_zp=p["in_zp"], out_zp=p["out_zp"], mult=p["mult"],
                                shift=p["shift"], act_min=p["act_min"], act_max=p["act_max"],
                                rounding=rounding)
    if k == "FULLY_CONNECTED":
        return fully_connected(xs[0], c["w"], c["bias"], in_zp=p["in_zp"], w_zp=p["w_zp"],
                               out_zp=p["out_zp"], mult=p["mult"], shift=p["shift"],
                               act_min=p["act_min"], act_max=p["act_max"], rounding=rounding)
    if k == "ADD":
        return add(xs[0], xs[1], a_zp=p["a_zp"], b_zp=p["b_zp"], out_zp=p["out_zp"],
                   left_shift=p["left_shift"], a_mult=p["a_mult"], a_shift=p["a_shift"],
                   b_mult=p["b_mult"], b_shift=p["b_shift"], out_mult=p["out_mult"],
                   out_shift=p["out_shift"], act_min=p["act_min"], act_max=p["act_max"],
                   rounding=rounding)
    if k in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        f = average_pool if k == "AVERAGE_POOL_2D" else max_pool
        return f(xs[0], filter_hw=(p["kh"], p["kw"]), stride=(p["sh"], p["sw"]),
                 pad=(p["pt"], p["pl"]), out_hw=spec.out_shape[:2], act_min=p["act_min"],
                 act_max=p["act_max"])
    if k == "MEAN":
        y = mean(xs[0], axes=(0, 1), in_zp=p["in_zp"], out_zp=p["out_zp"], mult=p["mult"],
                 shift=p["shift"], rounding=rounding)
        return y
    if k == "REDUCE_MAX":
        return np.asarray(xs[0]).max(axis=(0, 1)).astype(np.int8)
    if k == "RESHAPE":
        return np.asarray(xs[0])
    if k == "SOFTMAX":
        return softmax(xs[0], input_beta_multiplier=p["beta_mult"],
                       input_beta_left_shift=p["beta_shift"], diff_min=p["diff_min"],
                       rounding=rounding)
    raise UnsupportedOpError(k)


# --------------------------------------------------------------------------------------
# Arena interpreter
# --------------------------------------------------------------------------------------

@dataclass
class KernelRun:
    """Result of :func:`run` / :meth:`Interpreter.invoke`."""

    output: np.ndarray
    plan: str
    arena_bytes: int
    order: list
    per_op: list = field(default_factory=list)   # dict(op, kind, in_offset, out_offset, inplace)

    def summary(self) -> str:
        n_inplace = sum(1 for r in self.per_op if r.get("inplace"))
        return (f"int8 reference run, plan {self.plan!r}: arena {self.arena_bytes:,} B, "
                f"{len(self.order)} ops ({n_inplace} in place); output {self.output.shape} int8")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"plan": self.plan, "arena_bytes": self.arena_bytes, "order": list(self.order),
                "per_op": list(self.per_op), "output": self.output.tolist()}

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.per_op)


class _NaivePlan:
    """Every activation tensor at its own offset (no sharing), for tests and fallback."""

    def __init__(self, model):
        self.name = "naive"
        self.order = [op.index for op in model.ops]
        self.offsets, self.sizes = {}, {}
        off = 0
        for op in model.ops:
            for t in list(op.inputs) + list(op.outputs):
                if t >= 0 and model.tensors[t].data is None and t not in self.offsets:
                    self.offsets[t] = off
                    self.sizes[t] = model.tensors[t].nbytes
                    off += (model.tensors[t].nbytes + 15) // 16 * 16
        self.scratch = []
        self.peak_bytes = off


def _get_plan(tflite_bytes, plan):
    if plan is None or plan == "naive":
        return _NaivePlan(tflite_io.read(tflite_bytes))
    if isinstance(plan, str):
        from helpers import resources
        return resources.plan_tflite(tflite_bytes, plan=plan)
    return plan


def _plan_arena_bytes(plan) -> int:
    end = 0
    for t, off in plan.offsets.items():
        end = max(end, int(off) + int(plan.sizes[t]))
    for _op, off, size in getattr(plan, "scratch", []) or []:
        end = max(end, int(off) + int(size))
    return max(end, int(getattr(plan, "peak_bytes", 0) or 0))


class Interpreter:
    """Run a .tflite model op by op inside one arena laid out by a memory plan.

    ``plan``: ``"tflm"``, ``"reordered"``, ``"inplace"`` (from
    :func:`helpers.resources.plan_tflite`), a plan object with ``order``, ``offsets``,
    ``sizes``, ``scratch``, ``peak_bytes``, or ``None`` (no sharing). Taught in
    06-deployment.
    """

    def __init__(self, tflite_bytes, plan="tflm", rounding: str | None = None):
        self.model = tflite_io.read(tflite_bytes)
        self.specs = {s.index: s for s in prepare(tflite_bytes, rounding)}
        self.rounding = rounding or ROUNDING
        self.plan = _get_plan(tflite_bytes, plan)
        self.plan_name = getattr(self.plan, "name", str(plan))
        self.arena_bytes = _plan_arena_bytes(self.plan)
        self.arena = np.zeros(self.arena_bytes, np.uint8)
        missing = [t for s in self.specs.values() for t in s.x + [s.y]
                   if t not in self.plan.offsets]
        if missing:
            raise ValueError(f"plan {self.plan_name!r} has no offset for tensors {sorted(set(missing))}")
        self.scratch = {}
        for op_i, off, size in getattr(self.plan, "scratch", []) or []:
            self.scratch[int(op_i)] = (int(off), int(size))

    def _view(self, t):
        off = int(self.plan.offsets[t])
        n = self.model.tensors[t].nbytes
        return self.arena[off:off + n].view(np.int8)

    def invoke(self, x, check_live: bool = True) -> KernelRun:
        """Run one inference on int8 input ``x`` (shape of the model input, batch optional)."""
        tin = self.model.tensors[self.model.inputs[0]]
        x = np.asarray(x)
        if x.dtype != np.int8:
            raise ValueError(f"x must be int8 (quantise first with the input scale "
                             f"{tin.scale[:1]} and zero point {tin.zero_point[:1]}), got {x.dtype}")
        if x.size != int(np.prod(tin.shape)):
            raise ValueError(f"x has {x.size} elements, the model input {tin.shape} needs "
                             f"{int(np.prod(tin.shape))}")
        self.arena[:] = 0
        self._view(self.model.inputs[0])[:] = x.ravel()
        # tensors still needed later: consumer positions in execution order
        order = list(self.plan.order)
        last_use = {}
        for pos, oi in enumerate(order):
            for t in self.specs[oi].x:
                last_use[t] = pos
        for t in self.model.outputs:
            last_use[t] = len(order)
        shadow = {self.model.inputs[0]: x.ravel().copy()} if check_live else {}
        per_op = []
        for pos, oi in enumerate(order):
            s = self.specs[oi]
            inplace = (s.kind == "DEPTHWISE_CONV_2D" and
                       int(self.plan.offsets[s.y]) == int(self.plan.offsets[s.x[0]]))
            out_off = int(self.plan.offsets[s.y])
            out_n = self.model.tensors[s.y].nbytes
            if not inplace:
                for t in s.x:
                    a0, n0 = int(self.plan.offsets[t]), self.model.tensors[t].nbytes
                    if s.kind != "RESHAPE" and a0 < out_off + out_n and out_off < a0 + n0:
                        raise ValueError(f"plan {self.plan_name!r}: op {oi} ({s.kind}) output "
                                         f"[{out_off}, {out_off + out_n}) overlaps its input "
                                         f"tensor {t} [{a0}, {a0 + n0}) and this kernel is not "
                                         f"in-place safe")
                xs = [self._view(t).reshape(shp) for t, shp in zip(s.x, s.in_shapes)]
                y = _apply(s, xs, self.rounding)
                self._view(s.y)[:] = np.asarray(y, np.int8).ravel()
            else:
                self._depthwise_inplace(s)
            per_op.append({"op": oi, "kind": s.kind, "out_offset": out_off, "out_bytes": out_n,
                           "in_offsets": [int(self.plan.offsets[t]) for t in s.x],
                           "inplace": inplace, "macs": s.macs})
            if check_live:
                shadow[s.y] = self._view(s.y).copy()
                for t, ref in shadow.items():
                    if last_use.get(t, -1) > pos and not np.array_equal(self._view(t), ref):
                        raise AssertionError(
                            f"plan {self.plan_name!r}: after op {oi} ({s.kind}) tensor {t} "
                            f"(still needed by a later op) was overwritten")
        out = self._view(self.model.outputs[0]).copy()
        tout = self.model.tensors[self.model.outputs[0]]
        return KernelRun(output=out.reshape(tout.shape), plan=self.plan_name,
                         arena_bytes=self.arena_bytes, order=order, per_op=per_op)

    def _depthwise_inplace(self, s: OpSpec):
        """Depthwise conv writing over its own input, one channel at a time through a
        one-channel scratch buffer (what the generated C does)."""
        p = s.params
        h, w, c = s.in_shapes[0]
        oh, ow, co = s.out_shape
        if co != c or p["depth_multiplier"] != 1:
            raise ValueError(f"op {s.index}: in-place depthwise needs in == out channels")
        buf = self._view(s.x[0])                      # flat HWC input, overwritten in place
        if s.index in self.scratch:
            off, size = self.scratch[s.index]
            if size < oh * ow:
                raise ValueError(f"plan scratch for op {s.index} is {size} B, needs {oh * ow}")
            tmp = self.arena[off:off + oh * ow].view(np.int8)
        else:
            tmp = np.zeros(oh * ow, np.int8)
        wts, bias = s.consts["w"], s.consts["bias"]
        for ch in range(c):
            xc = buf.reshape(h, w, c)[:, :, ch:ch + 1].copy()
            yc = depthwise_conv2d(xc, wts[:, :, ch:ch + 1], bias[ch:ch + 1],
                                  stride=(p["sh"], p["sw"]), dilation=(p["dh"], p["dw"]),
                                  pad=(p["pt"], p["pl"]), out_hw=(oh, ow), in_zp=p["in_zp"],
                                  out_zp=p["out_zp"], mult=p["mult"][ch:ch + 1],
                                  shift=p["shift"][ch:ch + 1], act_min=p["act_min"],
                                  act_max=p["act_max"], rounding=self.rounding)
            tmp[:] = yc.ravel()
            buf[ch:oh * ow * c:c] = tmp


def run(tflite_bytes, x, plan="tflm", check_live: bool = True, rounding: str | None = None) -> KernelRun:
    """One inference of the int8 reference kernels in an arena laid out by ``plan``.
    Taught in 06-deployment."""
    return Interpreter(tflite_bytes, plan, rounding).invoke(x, check_live=check_live)


def reference_outputs(tflite_bytes, x, engine: str = "tflite") -> np.ndarray:
    """int8 output of an official interpreter on int8 ``x``: ``engine="tflite"``
    (tf.lite.Interpreter with the reference kernels, no delegate), ``"tflite-default"``
    (tf.lite.Interpreter as built, XNNPACK included) or ``"tflm"`` (tflite-micro)."""
    x = np.asarray(x, np.int8)
    if engine == "tflm":
        from tflite_micro.python.tflite_micro import runtime
        it = runtime.Interpreter.from_bytes(bytes(tflite_bytes))
        m = tflite_io.read(tflite_bytes)
        it.set_input(x.reshape(m.tensors[m.inputs[0]].shape), 0)
        it.invoke()
        return np.array(it.get_output(0))
    if engine in ("tflite", "tflite-default"):
        import os
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        kw = {}
        if engine == "tflite":
            kw["experimental_op_resolver_type"] = tf.lite.experimental.OpResolverType.BUILTIN_REF
        it = tf.lite.Interpreter(model_content=bytes(tflite_bytes), **kw)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], x.reshape(d["shape"]))
        it.invoke()
        return np.array(it.get_tensor(it.get_output_details()[0]["index"]))
    raise ValueError(f"engine must be 'tflite', 'tflite-default' or 'tflm', got {engine!r}")


# --------------------------------------------------------------------------------------
# A sampled test set (both search spaces), for bit-exactness checks
# --------------------------------------------------------------------------------------

#: Size presets of :func:`sample_models`: granular-space bounds, input size, block-space
#: widths and resolutions.
SAMPLE_PRESETS = {
    "tiny": dict(granular=dict(max_blocks=3, max_layers=2, max_filters=12, max_units=24,
                               max_dense=2), hw=12, widths=(0.2, 0.3), resolutions=(16, 20)),
    "small": dict(granular=dict(max_blocks=5, max_layers=3, max_filters=32, max_units=64,
                                max_dense=3), hw=16, widths=(0.2, 0.3, 0.4, 0.5),
                  resolutions=(16, 20, 24, 28, 32)),
}


def sample_models(n: int, seed: int = 0, size: str = "tiny", spaces=("granular", "block"),
                  num_classes: int = 10, progress: bool = True, cache_dir=None) -> list:
    """``n`` int8 .tflite models sampled alternately from the search spaces of
    :mod:`helpers.spaces` (granular muNAS space and MobileNetV2 block space), with
    random weights and a random representative set. Returns a list of
    ``(name, tflite_bytes)``. ``size``: ``"tiny"`` (CI) or ``"small"``. With
    ``cache_dir`` each converted model is kept there and reused (the i-th model depends
    only on ``seed``, ``size``, ``spaces`` and ``i``). Taught in 06-deployment (the
    bit-exactness check)."""
    from pathlib import Path
    from helpers import deploy
    from helpers import spaces as S

    if size not in SAMPLE_PRESETS:
        raise ValueError(f"size must be one of {list(SAMPLE_PRESETS)}, got {size!r}")
    bad = [s for s in spaces if s not in ("granular", "block")]
    if bad or not spaces:
        raise ValueError(f"spaces must be a non-empty subset of ('granular', 'block'), got {spaces!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pre = SAMPLE_PRESETS[size]
    gspace = S.GranularSpace(**pre["granular"])
    rng = np.random.default_rng(seed)
    out = []
    it = range(n)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="sample_models")
    for i in it:
        kind = spaces[i % len(spaces)]
        s = int(rng.integers(1 << 31))
        r = np.random.default_rng(s)
        path = None
        if cache_dir is not None:
            tag = f"{size}-{seed}-{'_'.join(spaces)}-{num_classes}-{i}"
            path = Path(cache_dir) / f"{tag}.tflite"
            if path.exists() and path.with_suffix(".name").exists():
                out.append((path.with_suffix(".name").read_text(), path.read_bytes()))
                continue
        if kind == "granular":
            arch = S.GranularArch.random(r, gspace)
            ch = int(r.choice([1, 3]))
            shape = (pre["hw"], pre["hw"], ch)
        else:
            arch = S.BlockArch.random(r, width=float(r.choice(pre["widths"])),
                                      resolution=int(r.choice(pre["resolutions"])))
            shape = (arch.resolution, arch.resolution, 3)
        model = S.build(arch, shape, num_classes, seed=s)
        rep = r.normal(0, 1, (8,) + shape).astype(np.float32)
        item = (f"{kind}-{i}-{arch.hash[:8]}", deploy.to_tflite_int8(model, rep))
        if path is not None:  # atomic writes: several test processes may share the cache
            import os
            path.parent.mkdir(parents=True, exist_ok=True)
            for dst, data in ((path, item[1]), (path.with_suffix(".name"), item[0].encode())):
                tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, dst)
        out.append(item)
    return out

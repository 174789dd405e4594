"""int8 reference kernels and quantisation arithmetic, bit-exact with TFLite / TFLite-Micro.

Taught in 06-deployment. Two layers:

* **Kernels** (NumPy, int64 accumulation, vectorised): :func:`conv2d`,
  :func:`depthwise_conv2d`, :func:`fully_connected`, :func:`add`, :func:`average_pool`,
  :func:`max_pool`, :func:`mean`, :func:`softmax`, plus ``RESHAPE``. They follow TFLite's
  integer arithmetic: per-channel requantisation with ``MultiplyByQuantizedMultiplier``
  (``multiplier`` / ``shift`` derived from the float scales with ``frexp``, exactly as
  ``QuantizeMultiplier``), round-half-away rounding, activation clamps.
* **Interpreter** (:mod:`helpers.engine.interpreter`): executes a ``.tflite`` flatbuffer
  op by op inside one explicit arena (a NumPy byte array) laid out by a named memory plan
  from :mod:`helpers.resources` (``tflm``, ``reordered``, ``inplace``). Every tensor lives
  at its planned byte offset; in-place depthwise ops really overwrite their input channel
  by channel through a one-channel scratch buffer, so equality with TFLite proves the
  plan correct, not only small. ``check_live=True`` also verifies after every op that no
  tensor still needed was overwritten.

:func:`prepare` turns a model into :class:`OpSpec` records (layouts, int32 multipliers
and shifts, activation ranges); the Python kernels and the C code generator
(:mod:`helpers.engine.codegen`) both consume them, so the generated C uses the very same
constants.

Rounding: TFLite has two ``MultiplyByQuantizedMultiplier`` variants, the historical
"double rounding" (gemmlowp ``SaturatingRoundingDoublingHighMul`` then
``RoundingDivideByPOT``) and ``TFLITE_SINGLE_ROUNDING`` (one 64-bit round-half-up
shift). :data:`ROUNDING` is the one that TF 2.21's interpreter and the pinned
tflite-micro match (checked by ``tests/test_kernels.py``).

Imports no other module of the package.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ROUNDING", "SUPPORTED_OPS", "UnsupportedOpError", "quantize_multiplier",
           "multiply_by_quantized_multiplier", "activation_range", "conv2d", "depthwise_conv2d",
           "fully_connected", "add", "average_pool", "max_pool", "mean", "softmax",
           "mean_multiplier", "softmax_params"]

#: Rounding of MultiplyByQuantizedMultiplier that matches TF 2.21 and the pinned TFLM.
ROUNDING = "double"

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
                 "MAX_POOL_2D", "MEAN", "REDUCE_MAX", "RESHAPE", "SOFTMAX")

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


class UnsupportedOpError(ValueError):
    """The model contains an operator (or a variant of one) these kernels do not implement.
    Taught in 06-deployment.
    """


# --------------------------------------------------------------------------------------
# Quantisation arithmetic
# --------------------------------------------------------------------------------------

def quantize_multiplier(real: float, rounding: str | None = None) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``.

    ``multiplier`` is an int32 in [2**30, 2**31), ``shift`` the power-of-two exponent
    (positive = left shift). Uses ``frexp`` and round-half-away-from-zero as TFLite does.
    Taught in 06-deployment.
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
    Taught in 06-deployment.
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
    """int8 clamp bounds of a fused activation (``CalculateActivationRangeQuantized``).
    Taught in 06-deployment.
    """
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
    Taught in 06-deployment.
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
    ``c*M + m`` reads input channel ``c``. Returns (OH, OW, C*M) int8. Taught in 06-deployment."""
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
    """int8 FULLY_CONNECTED: x (N,) or (B, N), w (Cout, N), bias (Cout,).
    Taught in 06-deployment.
    """
    xv = np.asarray(x, np.int64) - in_zp
    acc = xv @ (w.astype(np.int64) - w_zp).T
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _requant(acc, mult, shift, out_zp, act_min, act_max, rounding)


def add(a, b, *, a_zp, b_zp, out_zp, left_shift, a_mult, a_shift, b_mult, b_shift, out_mult,
        out_shift, act_min=-128, act_max=127, rounding=None):
    """int8 ADD (same shapes): TFLite's integer add with ``left_shift`` = 20.
    Taught in 06-deployment.
    """
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
    """int8 AVERAGE_POOL_2D (TFLite reference: in-image taps only, rounded division).
    Taught in 06-deployment.
    """
    x = np.asarray(x, np.int8)
    (kh, kw), (sh, sw), (pt, pl), (oh, ow) = filter_hw, stride, pad, out_hw
    p, m = _pool_windows(x, kh, kw, sh, sw, pt, pl, oh, ow)
    acc = (p.astype(np.int64) * m[..., None]).sum(axis=(2, 3))
    cnt = m.sum(axis=(2, 3)).astype(np.int64)[..., None]
    q = np.where(acc > 0, (acc + cnt // 2) // cnt, -((-acc + cnt // 2) // cnt))
    return np.clip(q, act_min, act_max).astype(np.int8)


def max_pool(x, *, filter_hw, stride, pad, out_hw, act_min=-128, act_max=127):
    """int8 MAX_POOL_2D (in-image taps only). Taught in 06-deployment."""
    x = np.asarray(x, np.int8)
    (kh, kw), (sh, sw), (pt, pl), (oh, ow) = filter_hw, stride, pad, out_hw
    p, m = _pool_windows(x, kh, kw, sh, sw, pt, pl, oh, ow)
    v = np.where(m[..., None], p.astype(np.int64), -(1 << 20)).max(axis=(2, 3))
    return np.clip(v, act_min, act_max).astype(np.int8)


def mean(x, *, axes, in_zp, out_zp, mult, shift, rounding=None):
    """int8 MEAN over ``axes`` of x (TFLite ``QuantizedMeanOrSum``: integer sum, the
    1/N factor folded into the multiplier, one requantisation). Taught in 00-overview."""
    x = np.asarray(x, np.int64)
    n = int(np.prod([x.shape[a] for a in axes]))
    m2, s2 = mean_multiplier(mult, shift, n)
    acc = x.sum(axis=tuple(axes)) - in_zp * n
    y = multiply_by_quantized_multiplier(_wrap32(acc), m2, s2, rounding) + out_zp
    return np.clip(y, -128, 127).astype(np.int8)


def mean_multiplier(mult: int, shift: int, n: int) -> tuple[int, int]:
    """Fold 1/n into (mult, shift) as TFLite's QuantizedMeanOrSum does. Taught in 06-deployment."""
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
    int8, output scale 1/256, zero point -128). Taught in 06-deployment."""
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
    ``PreprocessSoftmaxScaling`` + ``CalculateInputRadius`` for int8 (5 integer bits).
    Taught in 06-deployment."""
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

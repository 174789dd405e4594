"""4-bit weights (MicroNets' sub-byte quantisation): packing, post-training rounding, C layout.

Taught in 04-micronets. MicroNets (Banbury et al., 2021) deploy some models with 4-bit
weights and 8-bit activations to halve the weights' flash. This module holds:

* **TFLite's int4 layout** (:func:`pack_int4` / :func:`unpack_int4`): tensor type ``INT4``
  (17), two values per byte, element ``2i`` in the low nibble and ``2i+1`` in the high
  nibble, an odd count padded with a zero nibble. The pinned TFLite-Micro runs such
  ``CONV_2D`` and ``DEPTHWISE_CONV_2D`` filters (per-channel) and ``FULLY_CONNECTED``
  filters with *one* scale per tensor (its per-channel check refuses int4), so that is
  what :func:`quantize_model_int4` writes (TF 2.21's ``tf.lite.Interpreter`` runs the
  same files but differs from TFLM by 1 LSB on some inputs; TFLM is the reference). TFLM unpacks the filter to int8 and runs its int8 kernel, so our int8
  Python kernels on the unpacked values are the same arithmetic (``tests/test_int4.py``
  checks both against TFLM with ``np.array_equal``).
* **Post-training rounding** (:func:`quantize_model_int4`): an int8 ``.tflite`` in, the same
  model with chosen filters rounded to 16 levels out (per output channel; symmetric,
  zero point 0, scale ``max(max_w / 7, -min_w / 8)``), biases requantised to the new
  ``input_scale * filter_scale``. An :class:`Int4Result` reports the bytes saved and the
  rounding error per layer.
* **The C layout** (:func:`c_pack_rows`): the generated C keeps the packed bytes, but
  re-orders the nibbles of each output channel's row in groups of 8 so that the Armv7E-M
  kernels in ``csrc/tn_int4.c`` expand them with one shift, two masks and four ``SXTB16``
  per 8 weights (byte ``j`` of a group holds weights ``j`` (low) and ``j+4`` (high)).
  The tail of a row (``n % 8`` weights) is packed in TFLite's order.

May import: :mod:`helpers.tflite_io` (the interpreter and the C generator import this module).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from helpers import tflite_io

__all__ = ["INT4_TYPE", "INT4_OPS", "pack_int4", "unpack_int4", "round_to_int4",
           "quantize_model_int4", "Int4Result", "c_pack_rows", "weights_bytes"]

#: TensorType enum value of INT4 in the TFLite schema.
INT4_TYPE = 17
#: Operators whose filters :func:`quantize_model_int4` can round to 4 bits.
INT4_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def pack_int4(q) -> np.ndarray:
    """Pack int values in [-8, 7] two per byte, TFLite's order (element 2i in the low
    nibble, 2i+1 in the high nibble; an odd count ends with a zero high nibble).
    Returns uint8 of ``ceil(n / 2)`` bytes. Taught in 04-micronets."""
    q = np.asarray(q).ravel()
    if q.size and (q.min() < -8 or q.max() > 7):
        raise ValueError(f"q: int4 values must lie in [-8, 7], got [{int(q.min())}, {int(q.max())}]")
    q = q.astype(np.int64)
    if q.size % 2:
        q = np.append(q, 0)
    lo = q[0::2] & 0xF
    hi = q[1::2] & 0xF
    return (lo | (hi << 4)).astype(np.uint8)


def unpack_int4(packed, shape) -> np.ndarray:
    """Inverse of :func:`pack_int4`: int8 array of ``shape`` (values in [-8, 7]).
    Taught in 04-micronets."""
    b = np.asarray(packed, np.uint8).ravel().astype(np.int16)
    n = int(np.prod(shape, dtype=np.int64)) if len(tuple(shape)) else 1
    if b.size != (n + 1) // 2:
        raise ValueError(f"packed: {b.size} bytes, an int4 tensor of shape {tuple(shape)} "
                         f"needs {(n + 1) // 2}")
    lo = ((b & 0xF) ^ 8) - 8
    hi = ((b >> 4) ^ 8) - 8
    out = np.empty(2 * b.size, np.int8)
    out[0::2] = lo
    out[1::2] = hi
    return out[:n].reshape(tuple(int(s) for s in shape))


def round_to_int4(w, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Round float weights ``w`` to 16 levels: per slice along ``axis`` (None: one scale
    for the whole tensor). Returns ``(q int8 in [-8, 7], scale float32 per slice)`` with
    ``w ~= q * scale``; scale = ``max(max_w / 7, -min_w / 8)`` (all-zero slices get 1).
    Taught in 04-micronets."""
    w = np.asarray(w, np.float64)
    if axis is None:
        red = tuple(range(w.ndim))
    else:
        if not -w.ndim <= axis < w.ndim:
            raise ValueError(f"axis must be in [-{w.ndim}, {w.ndim}) or None, got {axis}")
        axis %= w.ndim
        red = tuple(i for i in range(w.ndim) if i != axis)
    hi = w.max(axis=red) if w.size else np.zeros(1)
    lo = w.min(axis=red) if w.size else np.zeros(1)
    scale = np.maximum(np.maximum(hi, 0) / 7.0, np.maximum(-lo, 0) / 8.0)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shp = [1] * w.ndim
    if axis is not None:
        shp[axis] = -1
    s = np.atleast_1d(scale).astype(np.float64).reshape(shp) if axis is not None else float(scale)
    q = np.clip(np.round(w / s), -8, 7).astype(np.int8)
    return q, np.atleast_1d(scale)


@dataclass
class Int4Result:
    """A model with 4-bit filters (:func:`quantize_model_int4`) and what it changed.

    ``tflite``: the new ``.tflite`` bytes; ``layers``: one dict per operator considered
    (op, kind, weights, int8 / int4 bytes, per-channel or per-tensor, relative RMS
    rounding error of the float weights, whether it was converted). Taught in 04-micronets.
    """

    tflite: bytes = field(repr=False)
    flash_bytes_int8: int
    flash_bytes_int4: int
    weights_bytes_int8: int
    weights_bytes_int4: int
    layers: list = field(default_factory=list)

    @property
    def flash_saving(self) -> float:
        """Fraction of the int8 ``.tflite`` saved."""
        return 1.0 - self.flash_bytes_int4 / max(self.flash_bytes_int8, 1)

    def summary(self) -> str:
        n4 = sum(1 for r in self.layers if r["int4"])
        return (f"4-bit filters in {n4} of {len(self.layers)} layers: weights + biases "
                f"{self.weights_bytes_int8:,} -> {self.weights_bytes_int4:,} B, .tflite "
                f"{self.flash_bytes_int8:,} -> {self.flash_bytes_int4:,} B "
                f"({100 * self.flash_saving:.1f}% smaller)")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("tflite")
        d["flash_saving"] = self.flash_saving
        return d

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.layers)


def weights_bytes(tflite_bytes) -> int:
    """Bytes of the filters and biases of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
    (int4 filters counted packed). Taught in 04-micronets."""
    m = tflite_io.read(tflite_bytes)
    seen = set()
    total = 0
    for op in m.ops:
        if op.opcode not in INT4_OPS:
            continue
        for i in op.inputs[1:3]:
            if i >= 0 and i not in seen and m.tensors[i].data is not None:
                seen.add(i)
                total += m.tensors[i].nbytes
    return int(total)


def quantize_model_int4(tflite_bytes, ops=("CONV_2D", "FULLY_CONNECTED"), skip=(),
                        min_weights: int = 0) -> Int4Result:
    """Round the filters of an int8 ``.tflite`` to 4 bits (post-training, no data needed).

    ``ops``: operator kinds to convert (subset of :data:`INT4_OPS`); ``skip``: operator
    indices kept int8 (e.g. the first convolution); ``min_weights``: keep layers with fewer
    weights int8. Each converted filter is de-quantised from its int8 values and rounded
    with :func:`round_to_int4` per output channel (``FULLY_CONNECTED``: one scale, what
    TFLite-Micro accepts); its int32 bias is re-quantised to ``input_scale * new scale``.
    Taught in 04-micronets.
    """
    import flatbuffers
    bad = [o for o in ops if o not in INT4_OPS]
    if bad or isinstance(ops, str):
        raise ValueError(f"ops must be a list of {list(INT4_OPS)}, got {ops!r}")
    if int(min_weights) < 0:
        raise ValueError(f"min_weights must be >= 0, got {min_weights}")
    parsed = tflite_io.require_int8(tflite_bytes, "helpers.engine.int4.quantize_model_int4")
    fb = tflite_io._schema()
    mt = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytes(tflite_bytes), 0))
    sg = mt.subgraphs[0]
    layers = []
    converted_w = set()
    for op in parsed.ops:
        if op.opcode not in INT4_OPS:
            continue
        wi = op.inputs[1]
        tw = parsed.tensors[wi]
        row = {"op": op.index, "kind": op.opcode, "weights": int(np.prod(tw.shape)),
               "bytes_int8": tw.nbytes, "bytes_int4": tw.nbytes, "per_channel": None,
               "rel_rms_error": 0.0, "int4": False}
        layers.append(row)
        if (op.opcode not in ops or op.index in skip or row["weights"] < min_weights
                or tw.type_name != "INT8" or wi in converted_w):
            continue
        if sum(wi in o.inputs for o in parsed.ops) > 1:
            continue  # a filter shared by two operators stays int8
        converted_w.add(wi)
        t = sg.tensors[wi]
        w8 = tw.data.astype(np.float64)
        s8 = tw.scale.astype(np.float64)
        qd = int(tw.quantized_dimension)
        shp = [1] * w8.ndim
        shp[qd] = -1
        wf = w8 * (s8.reshape(shp) if s8.size > 1 else s8[0])
        axis = None if op.opcode == "FULLY_CONNECTED" else qd
        q, s4 = round_to_int4(wf, axis)
        back = q.astype(np.float64) * (s4.astype(np.float64).reshape(shp) if axis is not None
                                       else float(s4[0]))
        row.update(bytes_int4=(q.size + 1) // 2, per_channel=axis is not None, int4=True,
                   rel_rms_error=float(np.sqrt(np.mean((back - wf) ** 2))
                                       / max(np.sqrt(np.mean(wf ** 2)), 1e-30)))
        t.type = INT4_TYPE
        mt.buffers[t.buffer].data = pack_int4(q)
        t.quantization.scale = [float(v) for v in s4]
        t.quantization.zeroPoint = [0] * s4.size
        t.quantization.quantizedDimension = qd if axis is not None else 0
        s_in = float(parsed.tensors[op.inputs[0]].scale[0])
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bt = parsed.tensors[op.inputs[2]]
            b_old = bt.data.astype(np.float64)
            bs_old = bt.scale.astype(np.float64)
            b_real = b_old * (bs_old if bs_old.size == b_old.size else bs_old[0])
            bs_new = (np.float32(s_in) * s4.astype(np.float32)).astype(np.float32)
            b_new = np.round(b_real / np.broadcast_to(bs_new.astype(np.float64), b_real.shape))
            if np.any(np.abs(b_new) >= 2 ** 31):
                raise ValueError(f"operator {op.index}: re-quantised bias overflows int32")
            tb = sg.tensors[op.inputs[2]]
            mt.buffers[tb.buffer].data = b_new.astype(np.int32).view(np.uint8)
            tb.quantization.scale = [float(v) for v in bs_new]
            tb.quantization.zeroPoint = [0] * bs_new.size
            tb.quantization.quantizedDimension = 0
    tflite_io.canonical_model_t(mt)
    bld = flatbuffers.Builder(len(tflite_bytes) + 1024)
    tflite_io.pack_model(mt, bld)
    out = bytes(bld.Output())
    return Int4Result(tflite=out, flash_bytes_int8=len(tflite_bytes), flash_bytes_int4=len(out),
                      weights_bytes_int8=weights_bytes(tflite_bytes),
                      weights_bytes_int4=weights_bytes(out), layers=layers)


def c_pack_rows(w) -> np.ndarray:
    """Pack int4 weights ``w`` (rows = output channels, ``(co, n)`` or ``(co, ...)``) in
    the generated C's layout: each row ``ceil(n / 2)`` bytes; groups of 8 weights as 4
    bytes with byte ``j`` = weight ``j`` (low nibble) | weight ``j + 4`` (high nibble);
    the last ``n % 8`` weights in TFLite's order. Taught in 04-micronets."""
    w = np.asarray(w)
    w = w.reshape(w.shape[0], -1).astype(np.int64)
    if w.size and (w.min() < -8 or w.max() > 7):
        raise ValueError("w: int4 values must lie in [-8, 7]")
    co, n = w.shape
    g = n // 8
    body = w[:, :8 * g].reshape(co, g, 2, 4)          # [.., 0, j] = weight j, [.., 1, j] = j+4
    grp = ((body[:, :, 0, :] & 0xF) | ((body[:, :, 1, :] & 0xF) << 4)).reshape(co, 4 * g)
    tail = np.stack([pack_int4(r) for r in w[:, 8 * g:]]) if n % 8 else np.zeros((co, 0), np.int64)
    return np.concatenate([grp.astype(np.uint8), tail.astype(np.uint8)], axis=1).ravel()


# --------------------------------------------------------------------------------------
# C generation hooks (called by helpers.engine.codegen for ops with p["w_bits"] == 4)
# --------------------------------------------------------------------------------------

#: Largest row (kh*kw*ic or FC inputs) of the packed DSP kernels: 16 * 128 * 128 * n < 2**31.
C_MAX_ROW = (1 << 31) // (16 * 128 * 128) - 1


def _packed_in_c(spec, dsp: bool) -> bool:
    """True: the C kernel reads the packed filter directly (DSP conv / FC); False: it is
    unpacked to int8 (``tn_unpack_s4``) into a static buffer before the int8 kernel."""
    return dsp and spec.kind in ("CONV_2D", "FULLY_CONNECTED")


def c_weights(spec, pre: str, dsp: bool) -> tuple[str, int, int]:
    """C declaration of a 4-bit filter for op record ``spec`` (prefix ``pre``): returns
    ``(source, flash bytes, int8 unpack buffer bytes needed)``. Taught in 04-micronets."""
    w = np.asarray(spec.consts["w"])
    if _packed_in_c(spec, dsp):
        if w.reshape(w.shape[0], -1).shape[1] > C_MAX_ROW:
            raise ValueError(f"op {spec.index}: int4 row of {w[0].size} weights exceeds "
                             f"{C_MAX_ROW} (int32 accumulator of the packed kernel)")
        data, unpack, name = c_pack_rows(w), 0, f"{pre}_w"
    else:
        data, unpack, name = pack_int4(w.ravel()), int(w.size), f"{pre}_w4"
    vals = [str(int(v)) for v in data]
    body = ",\n  ".join(", ".join(vals[i:i + 24]) for i in range(0, len(vals), 24))
    src = f"static const uint8_t {name}[{len(vals)}] = {{\n  {body}\n}};\n"
    if unpack:
        src += f"#define {pre}_w tn_w4buf  /* unpacked before the int8 kernel */\n"
    return src, int(data.size), unpack


def c_call(spec, pre: str, dsp: bool, call: str) -> str:
    """The kernel call of a 4-bit op: the int4 DSP kernel, or an unpack then the int8 call.
    Taught in 04-micronets."""
    if _packed_in_c(spec, dsp):
        return call.replace("tn_conv2d_s8_dsp(", "tn_conv2d_s4_dsp(").replace(
            "tn_fc_s8_dsp(", "tn_fc_s4_dsp(")
    return f"tn_unpack_s4({pre}_w4, {int(np.asarray(spec.consts['w']).size)}, tn_w4buf); {call}"

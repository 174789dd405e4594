"""The arena interpreter: a ``.tflite`` prepared into :class:`OpSpec` records and run op by op.

Taught in 06-deployment. :func:`prepare` turns a model into :class:`OpSpec` records (layouts,
int32 multipliers and shifts, activation ranges); the Python kernels and the C code generator
(:mod:`helpers.engine.codegen`) both consume them. :class:`Interpreter` / :func:`run`
execute the model inside one explicit arena (a NumPy byte array) laid out by a named memory
plan from :mod:`helpers.resources`; every tensor lives at its planned byte offset, so
equality with TFLite proves the plan correct, not only small. May import:
:mod:`helpers.tflite_io`, :mod:`helpers.resources`, :mod:`helpers.engine.kernels`,
:mod:`helpers.engine.kernels_ext` (the float I/O wrapper, folded shape ops, PAD, MUL, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from helpers import resources, tflite_io
from helpers.engine.kernels import (ROUNDING, SUPPORTED_OPS, UnsupportedOpError, _padding,
                                    activation_range, add, average_pool, conv2d,
                                    depthwise_conv2d, fully_connected, max_pool, mean,
                                    mean_multiplier, quantize_multiplier, softmax, softmax_params)
from helpers.engine import kernels_ext

__all__ = ["OpSpec", "prepare", "Interpreter", "KernelRun", "run"]

# --------------------------------------------------------------------------------------
# Model preparation: OpSpec records shared by the interpreter and the C generator
# --------------------------------------------------------------------------------------

@dataclass
class OpSpec:
    """One operator with everything a kernel needs (layout-ready constants, int params).

    ``kind`` is the opcode; ``x`` / ``y`` the activation tensor indices it reads
    (list) and writes; ``consts`` weights / bias arrays; ``params`` plain ints (and int
    arrays for per-channel multipliers); ``in_shape`` / ``out_shape`` are HWC (batch
    removed) shapes; ``macs`` the multiply-accumulates. Taught in 06-deployment.
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
    """Parse a model into a list of :class:`OpSpec` (file order). Taught in 06-deployment."""
    rounding = rounding or ROUNDING
    m = tflite_io.require_int8(tflite_bytes, "helpers.engine.interpreter (the int8 kernels)")
    T = m.tensors
    specs = []
    folded = {}
    for op in m.ops:
        k = op.opcode
        o = op.options
        if k in kernels_ext.EXT_OPS:
            specs.append(OpSpec(index=op.index, kind=k, y=op.outputs[0],
                                **kernels_ext.prepare_op(op, m, folded, rounding)))
            continue
        if k not in SUPPORTED_OPS:
            raise UnsupportedOpError(f"operator {op.index} is {k}; supported ops are "
                                     f"{list(SUPPORTED_OPS) + list(kernels_ext.EXT_OPS)}")
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
    if k in kernels_ext.EXT_OPS:
        return kernels_ext.apply(k, spec.params, spec.consts, xs, rounding)
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
    """Result of :func:`run` / :meth:`Interpreter.invoke`. Taught in 06-deployment."""

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
        self.peak_sram_bytes = off


def _get_plan(tflite_bytes, plan):
    if plan is None or plan == "naive":
        return _NaivePlan(tflite_io.read(tflite_bytes))
    if isinstance(plan, str):
        return resources.plan_tflite(tflite_bytes, plan=plan)
    return plan


def _plan_arena_bytes(plan) -> int:
    end = 0
    for t, off in plan.offsets.items():
        end = max(end, int(off) + int(plan.sizes[t]))
    for _op, off, size in getattr(plan, "scratch", []) or []:
        end = max(end, int(off) + int(size))
    return max(end, int(getattr(plan, "peak_sram_bytes", 0) or 0))


class Interpreter:
    """Run a .tflite model op by op inside one arena laid out by a memory plan.

    ``plan``: ``"tflm"``, ``"reordered"``, ``"inplace"`` (from
    :func:`helpers.resources.plan_tflite`), a plan object with ``order``, ``offsets``,
    ``sizes``, ``scratch``, ``peak_sram_bytes``, or ``None`` (no sharing). Taught in
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
        return self.arena[off:off + n].view(self.model.tensors[t].dtype)

    def invoke(self, x, check_live: bool = True) -> KernelRun:
        """Run one inference on int8 input ``x`` (shape of the model input, batch optional)."""
        tin = self.model.tensors[self.model.inputs[0]]
        x = np.asarray(x)
        if tin.dtype == np.float32 and np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        elif x.dtype != tin.dtype:
            raise ValueError(f"x must be {tin.dtype} (the model input's type; for int8 quantise "
                             f"first with the input scale {tin.scale[:1]} and zero point "
                             f"{tin.zero_point[:1]}), got {x.dtype}")
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
                self._view(s.y)[:] = np.asarray(y).ravel()
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

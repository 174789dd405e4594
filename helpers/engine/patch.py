"""Patch-based inference (MCUNetV2) in both engines: the Python arena interpreter and generated C.

Taught in 06-deployment (Part "Patch-based inference"). A :class:`~helpers.resources.patch_plan.
PatchSchedule` runs operators ``0..split`` patch by patch: for each patch every stage operator
computes its output region (from :func:`helpers.resources.patch_plan.stage_regions`) out of its
input's per-patch buffer (or the full network input), with the padding of the whole image at the
image borders and none inside; the split operator writes its patch straight into the full split
output. The rest runs layer by layer. Every buffer sits at the offset of
:func:`helpers.resources.patch_plan.patch_plan`, so equality with TFLite-Micro proves the plan.

* :func:`run` - the Python engine (``interpreter.prepare`` OpSpecs, the NumPy kernels);
* :func:`generate_c` - C for ``emulator.build(..., schedule=...)``: the stage as per-patch kernel
  calls with local shapes and pads (``csrc/tn_patch.c`` for row-wise and strided calls), the rest
  from :func:`helpers.engine.codegen.generate_c` on the layer-by-layer part of the plan.

May import: :mod:`helpers.tflite_io`, :mod:`helpers.resources`, :mod:`helpers.engine.kernels`,
:mod:`helpers.engine.interpreter`, :mod:`helpers.engine.codegen`.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import numpy as np

from helpers import tflite_io
from helpers.engine import codegen
from helpers.engine import interpreter as K
from helpers.resources.patch_plan import PatchSchedule, patch_plan

__all__ = ["PatchRun", "run", "generate_c", "local_spec"]


def _schedule(schedule) -> PatchSchedule:
    if isinstance(schedule, PatchSchedule):
        return schedule
    if isinstance(schedule, (tuple, list)) and len(schedule) == 2:
        return PatchSchedule(int(schedule[0]), int(schedule[1]))
    raise ValueError(f"schedule must be a PatchSchedule(split, grid) or a (split, grid) pair, "
                     f"got {schedule!r}")


def local_spec(s: K.OpSpec, buf_reg, out_reg) -> tuple:
    """The OpSpec of ``s`` restricted to output region ``out_reg`` (r0, r1, c0, c1) reading an
    input buffer that holds region ``buf_reg`` of its input, plus the (row, col) offset into
    that buffer where the op's needed input starts. Pads stay those of the whole image at the
    image borders (the input region is clipped there) and vanish inside it.
    Taught in 06-deployment."""
    a, b, c, d = out_reg
    ls = copy.copy(s)
    ls.params = dict(s.params)
    ch = s.out_shape[2]
    ls.out_shape = (b - a, d - c, ch)
    if s.kind == "ADD":
        ls.in_shapes = [ls.out_shape, ls.out_shape]
        return ls, (a - buf_reg[0], c - buf_reg[2])
    p = ls.params
    H, W, ci = s.in_shapes[0]
    kh, kw, sh, sw = p["kh"], p["kw"], p["sh"], p["sw"]
    dh, dw = p.get("dh", 1), p.get("dw", 1)
    r0 = max(0, a * sh - p["pt"])
    r1 = min(H, (b - 1) * sh - p["pt"] + (kh - 1) * dh + 1)
    c0 = max(0, c * sw - p["pl"])
    c1 = min(W, (d - 1) * sw - p["pl"] + (kw - 1) * dw + 1)
    if r0 < buf_reg[0] or r1 > buf_reg[1] or c0 < buf_reg[2] or c1 > buf_reg[3]:
        raise ValueError(f"op {s.index}: input buffer {buf_reg} misses the needed region "
                         f"{(r0, r1, c0, c1)}")
    p["pt"] = p["pt"] - a * sh + r0
    p["pl"] = p["pl"] - c * sw + c0
    ls.in_shapes = [(r1 - r0, c1 - c0, ci)]
    return ls, (r0 - buf_reg[0], c0 - buf_reg[2])


@dataclass
class PatchRun:
    """Result of :func:`run`: int8 output, the plan's arena, patches and MACs.
    Taught in 06-deployment."""

    output: np.ndarray
    schedule: PatchSchedule
    arena_bytes: int
    macs: int
    base_macs: int
    per_op: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"patch-based int8 run (split op {self.schedule.split}, {self.schedule.grid}x"
                f"{self.schedule.grid} patches): arena {self.arena_bytes:,} B, MACs {self.macs:,} "
                f"(+{100 * (self.macs / max(self.base_macs, 1) - 1):.1f} %); output "
                f"{self.output.shape} int8")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"split": self.schedule.split, "grid": self.schedule.grid,
                "arena_bytes": self.arena_bytes, "macs": self.macs, "base_macs": self.base_macs,
                "output": self.output.tolist(), "per_op": list(self.per_op)}

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.per_op)


def run(tflite_bytes, x, schedule, rounding: str | None = None, inplace: bool = True) -> PatchRun:
    """One patch-based inference of the int8 Python kernels inside the arena of
    :func:`~helpers.resources.patch_plan.patch_plan` (``inplace``: its in-place depthwise
    tiles). Taught in 06-deployment."""
    sch = _schedule(schedule)
    m = tflite_io.read(tflite_bytes)
    specs = {s.index: s for s in K.prepare(tflite_bytes, rounding)}
    pp = patch_plan(tflite_bytes, sch, inplace=inplace)
    arena = np.zeros(pp.peak_sram_bytes, np.uint8)
    tin = m.tensors[m.inputs[0]]
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"x must be int8 (quantise with the model's input scale and zero point "
                         f"first), got {x.dtype}")
    if x.size != int(np.prod(tin.shape)):
        raise ValueError(f"x has {x.size} values; the model input {tuple(tin.shape)} needs "
                         f"{int(np.prod(tin.shape))}")

    def full(t):
        o = pp.offsets[t]
        return arena[o:o + m.tensors[t].nbytes].view(m.tensors[t].dtype)

    full(m.inputs[0])[:] = x.ravel()
    y = specs[sch.split].y
    per_op = []
    macs = 0
    for pi, reg in enumerate(pp.regions):
        def buf(t):
            r = reg[t]
            shape = (r[1] - r[0], r[3] - r[2], m.tensors[t].shape[3])
            if t in pp.patch_offsets:
                o = pp.patch_offsets[t]
                return arena[o:o + int(np.prod(shape))].view(np.int8).reshape(shape), r
            H, W, C = m.tensors[t].shape[1:]
            return full(t).reshape(H, W, C), (0, H, 0, W)
        for oi in pp.stage_ops:
            if f"op:{oi}" not in reg:
                continue
            s = specs[oi]
            out_reg = reg[f"op:{oi}"]
            xs = []
            ls = None
            for t in s.x:
                arr, breg = buf(t)
                ls, (dy, dx) = local_spec(s, breg, out_reg)
                hh, ww = ls.in_shapes[0][:2]
                xs.append(arr[dy:dy + hh, dx:dx + ww])
            out = np.asarray(K._apply(ls, xs, rounding), np.int8)
            if s.y == y:
                H, W, C = m.tensors[y].shape[1:]
                full(y).reshape(H, W, C)[out_reg[0]:out_reg[1], out_reg[2]:out_reg[3]] = out
            else:
                dst, _ = buf(s.y)
                dst[...] = out
            pm = s.macs * (out_reg[1] - out_reg[0]) * (out_reg[3] - out_reg[2]) // \
                max(s.out_shape[0] * s.out_shape[1], 1)
            macs += pm
            per_op.append({"patch": pi, "op": oi, "kind": s.kind, "region": out_reg, "macs": pm,
                           "inplace": oi in pp.inplace_ops})
    for oi in pp.rest_ops:
        s = specs[oi]
        xs = [full(t).reshape(shp) for t, shp in zip(s.x, s.in_shapes)]
        full(s.y)[:] = np.asarray(K._apply(s, xs, rounding)).ravel()
        macs += s.macs
        per_op.append({"patch": None, "op": oi, "kind": s.kind, "region": None, "macs": s.macs})
    tout = m.tensors[m.outputs[0]]
    return PatchRun(output=full(m.outputs[0]).copy().reshape(tout.shape), schedule=sch,
                    arena_bytes=pp.peak_sram_bytes, macs=int(macs), base_macs=pp.base_macs,
                    per_op=per_op)


# --------------------------------------------------------------------------------------
# C generation: the stage as per-patch kernel calls, the rest from codegen.generate_c
# --------------------------------------------------------------------------------------

@dataclass
class _TailPlan:
    """The layer-by-layer part of a patch plan, in the shape codegen.generate_c reads."""

    name: str
    order: list
    offsets: dict
    sizes: dict
    peak_sram_bytes: int
    scratch: list = field(default_factory=list)


def generate_c(tflite_bytes, schedule, kernels: str = "dsp", inplace: bool = True) -> codegen.GeneratedC:
    """C for a patch-based inference (``emulator.build(..., schedule=...)`` uses it): the
    stage's weights once, one local parameter struct and kernel call per patch and operator
    (``csrc/tn_patch.c``, included), then the rest as :func:`helpers.engine.codegen.generate_c`
    emits it, all in the arena of :func:`~helpers.resources.patch_plan.patch_plan`.
    Taught in 06-deployment."""
    if kernels not in codegen.KERNELS:
        raise ValueError(f"kernels must be one of {list(codegen.KERNELS)}, got {kernels!r}")
    sch = _schedule(schedule)
    m = tflite_io.read(tflite_bytes)
    specs = {s.index: s for s in K.prepare(tflite_bytes)}
    pp = patch_plan(tflite_bytes, sch, inplace=inplace)
    dsp = kernels == "dsp"
    tail = _TailPlan(name=f"patch{sch.grid}x{sch.grid}@{sch.split}", order=list(pp.rest_ops),
                     offsets=dict(pp.offsets),
                     sizes={t: m.tensors[t].nbytes for t in pp.offsets},
                     peak_sram_bytes=pp.peak_sram_bytes)
    gen = codegen.generate_c(tflite_bytes, plan=tail, kernels=kernels)
    y = specs[sch.split].y
    decl = [f"/* Patch stage: ops {pp.stage_ops[0]}..{sch.split}, {sch.grid}x{sch.grid} patches "
            f"(helpers.engine.patch). */"]
    if dsp:
        decl.append("#define TN_PATCH_DSP 1")
    decl.append('#include "tn_patch.c"')
    calls, ops = [], []
    col, wbytes = 4, 0
    for oi in pp.stage_ops:
        s = specs[oi]
        p = s.params
        pre = f"op{oi}"
        if s.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = s.consts["w"]
            bias = s.consts["bias"].astype(np.int64)
            if dsp and s.kind == "CONV_2D":
                bias = bias + (-p["in_zp"]) * w.reshape(w.shape[0], -1).astype(np.int64).sum(axis=1)
                if np.any(np.abs(bias) >= 2 ** 31):
                    raise ValueError(f"op {oi}: folded bias overflows int32")
                col = max(col, p["kh"] * p["kw"] * s.in_shapes[0][2])
            decl.append(codegen._c_array("int8_t", f"{pre}_w", w))
            decl.append(codegen._c_array("int32_t", f"{pre}_b", bias))
            decl.append(codegen._c_array("int32_t", f"{pre}_m", p["mult"]))
            decl.append(codegen._c_array("int32_t", f"{pre}_s", p["shift"]))
            wbytes += w.size
    for pi, reg in enumerate(pp.regions):
        def where(t):
            """(C pointer expression, buffer region, row length in bytes) of tensor t."""
            C = m.tensors[t].shape[3]
            if t in pp.patch_offsets:
                r = reg[t]
                return f"tn_arena + {pp.patch_offsets[t]}", r, (r[3] - r[2]) * C
            H, W = m.tensors[t].shape[1:3]
            return f"tn_arena + {pp.offsets[t]}", (0, H, 0, W), W * C
        for oi in pp.stage_ops:
            if f"op:{oi}" not in reg:
                continue
            s = specs[oi]
            p = s.params
            out_reg = reg[f"op:{oi}"]
            pre, name = f"op{oi}", f"op{oi}_p{pi}"
            optr, obreg, ostride = where(s.y)
            if s.y == y:   # straight into the full split output
                optr += f" + {(out_reg[0] * (obreg[3]) + out_reg[2]) * s.out_shape[2]}"
            if s.kind == "ADD":
                ls, _ = local_spec(s, out_reg, out_reg)
                rows, cols, ch = ls.out_shape
                args = []
                for t in s.x:
                    ptr, breg, stride = where(t)
                    _, (dy, dx) = local_spec(s, breg, out_reg)
                    args.append(f"{ptr} + {(dy * (breg[3] - breg[2]) + dx) * ch}, {stride}")
                decl.append(f"static const tn_add_t {name} = {{{cols * ch}, {-p['a_zp']}, "
                            f"{-p['b_zp']}, {p['out_zp']}, {p['left_shift']}, {p['a_mult']}, "
                            f"{p['a_shift']}, {p['b_mult']}, {p['b_shift']}, {p['out_mult']}, "
                            f"{p['out_shift']}, {p['act_min']}, {p['act_max']}}};")
                calls.append(f"tn_patch_add_s8(&{name}, {rows}, {args[0]}, {args[1]}, {optr}, "
                             f"{ostride});")
            else:
                iptr, breg, _ = where(s.x[0])
                ls, (dy, dx) = local_spec(s, breg, out_reg)
                lp = ls.params
                bh, bw = breg[1] - breg[0], breg[3] - breg[2]
                ih, iw, ic = s.in_shapes[0]
                oh, ow, oc = ls.out_shape
                # the needed input starts dy rows / dx columns into the buffer: keep the whole
                # buffer (pads pt - dy, pl - dx) so taps outside it read as image padding
                pt, pl_ = lp["pt"] - dy, lp["pl"] - dx
                base = iptr
                if s.kind == "CONV_2D" and p["kh"] == 1 and p["kw"] == 1 and pl_ <= 0:
                    base += f" + {(-pl_) * ic}"      # 1x1: no tap reads padding; direct path
                    pl_ = 0
                if s.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                    dm = p.get("depth_multiplier", 1)
                    decl.append(f"static const tn_conv_t {name} = {{{bh}, {bw}, {ic}, {oh}, {ow}, "
                                f"{oc}, {p['kh']}, {p['kw']}, {p['sh']}, {p['sw']}, {p['dh']}, "
                                f"{p['dw']}, {pt}, {pl_}, {dm}, {-p['in_zp']}, {p['out_zp']}, "
                                f"{p['act_min']}, {p['act_max']}}};")
                    kind = {("CONV_2D", False): 0, ("CONV_2D", True): 1,
                            ("DEPTHWISE_CONV_2D", False): 2, ("DEPTHWISE_CONV_2D", True): 3}
                    if oi in pp.inplace_ops:   # output tile over the input tile (aliased)
                        calls.append(f"tn_dwconv_inplace_s8(&{name}, {base}, {pre}_w, {pre}_b, "
                                     f"{pre}_m, {pre}_s, tn_arena + {pp.scratch[oi][0]});")
                    else:
                        calls.append(f"tn_patch_conv_s8({kind[(s.kind, dsp)]}, &{name}, "
                                     f"{base}, {pre}_w, {pre}_b, {pre}_m, {pre}_s, {optr}, "
                                     f"{ostride}, tn_pcol);")
                else:
                    decl.append(f"static const tn_pool_t {name} = {{{bh}, {bw}, {ic}, {oh}, {ow}, "
                                f"{p['kh']}, {p['kw']}, {p['sh']}, {p['sw']}, {pt}, {pl_}, "
                                f"{p['act_min']}, {p['act_max']}}};")
                    k = 0 if s.kind == "AVERAGE_POOL_2D" else 1
                    calls.append(f"tn_patch_pool_s8({k}, &{name}, {base}, {optr}, {ostride});")
            pm = s.macs * (out_reg[1] - out_reg[0]) * (out_reg[3] - out_reg[2]) // \
                max(s.out_shape[0] * s.out_shape[1], 1)
            ops.append({"op": oi, "kind": s.kind, "macs": int(pm),
                        "inplace": oi in pp.inplace_ops, "patch": pi})
    decl.append(f"static int8_t tn_pcol[{col}];  /* im2col of one output pixel (patch stage) */")
    head, sep, body = gen.source.partition("int tn_main(void) {")
    n = len(calls)
    body = re.sub(r"tn_marker\((\d+)\)", lambda mm: f"tn_marker({int(mm.group(1)) + n})", body)
    body = body.replace("  tn_ready();\n", "  tn_ready();\n" + "".join(
        f"  tn_marker({i}); {c}\n" for i, c in enumerate(calls)), 1)
    src = head + "\n".join(decl) + "\n\n" + sep + body
    return codegen.GeneratedC(
        source=src, plan=tail.name, kernels=kernels, arena_bytes=gen.arena_bytes,
        plan_peak_bytes=pp.peak_sram_bytes, input_offset=gen.input_offset,
        input_bytes=gen.input_bytes, input_shape=gen.input_shape,
        output_offset=gen.output_offset, output_bytes=gen.output_bytes,
        output_shape=gen.output_shape, col_bytes=gen.col_bytes + (col if dsp else 0),
        ops=ops + [dict(o, patch=None) for o in gen.ops],
        weight_bytes=gen.weight_bytes + int(wbytes))

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


def run(tflite_bytes, x, schedule, rounding: str | None = None) -> PatchRun:
    """One patch-based inference of the int8 Python kernels inside the arena of
    :func:`~helpers.resources.patch_plan.patch_plan`. Taught in 06-deployment."""
    sch = _schedule(schedule)
    m = tflite_io.read(tflite_bytes)
    specs = {s.index: s for s in K.prepare(tflite_bytes, rounding)}
    pp = patch_plan(tflite_bytes, sch)
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
        return arena[o:o + m.tensors[t].nbytes].view(np.int8)

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
            per_op.append({"patch": pi, "op": oi, "kind": s.kind, "region": out_reg, "macs": pm})
    for oi in pp.rest_ops:
        s = specs[oi]
        xs = [full(t).reshape(shp) for t, shp in zip(s.x, s.in_shapes)]
        full(s.y)[:] = np.asarray(K._apply(s, xs, rounding), np.int8).ravel()
        macs += s.macs
        per_op.append({"patch": None, "op": oi, "kind": s.kind, "region": None, "macs": s.macs})
    tout = m.tensors[m.outputs[0]]
    return PatchRun(output=full(m.outputs[0]).copy().reshape(tout.shape), schedule=sch,
                    arena_bytes=pp.peak_sram_bytes, macs=int(macs), base_macs=pp.base_macs,
                    per_op=per_op)

"""Patch-based inference (MCUNetV2): receptive fields, the memory plan of a patch schedule, the planner.

Taught in 06-deployment (Part "Patch-based inference"). The first *stage* of a network (operators
``0..split`` in file order) runs patch by patch: the output of operator ``split`` is cut into an
``n x n`` grid, and for each patch every stage operator computes only the region of its output
that the patch needs (its receptive field, halo recomputed), reading the global input and writing
its piece of the split output. The rest runs layer by layer. Here, on the graph IR alone:

* :class:`PatchSchedule` (split operator, grid) and :func:`stage_regions` (per patch, the region
  of every stage tensor, by backward receptive-field propagation with the global padding);
* :func:`patch_plan` -> :class:`PatchPlan`: per-patch buffers, the full input and split output and
  the layer-by-layer rest laid out with TFLite-Micro's greedy placement over one timeline,
  verified (no two live buffers overlap, reported peak == layout end), and the recompute
  overhead (extra MACs / MACs);
* :func:`choose_schedule` -> :class:`PatchChoice`: the split and grid with the lowest peak SRAM
  under a MAC-overhead limit.

The engines that run a schedule live in :mod:`helpers.engine.patch`. May import:
:mod:`helpers.tflite_io`, :mod:`helpers.resources.graph`, :mod:`helpers.resources.planners`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from helpers.resources.graph import Graph, _align, graph_from_layers, graph_from_tflite
from helpers.resources.planners import _greedy

__all__ = ["PatchSchedule", "PatchPlan", "PatchChoice", "PATCH_OPS", "stage_regions",
           "valid_splits", "patch_plan", "choose_schedule", "patch_resources"]

#: Operators a patch stage may hold (spatially local: each output pixel reads a window).
PATCH_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD")


@dataclass(frozen=True)
class PatchSchedule:
    """Run operators ``0..split`` (file order) patch by patch over an ``grid x grid`` cut of
    operator ``split``'s output; the rest layer by layer. Taught in 06-deployment."""

    split: int
    grid: int

    def __post_init__(self):
        for name in ("split", "grid"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"PatchSchedule.{name} must be an int, got {v!r}")
        if self.split < 0:
            raise ValueError(f"PatchSchedule.split must be >= 0, got {self.split}")
        if self.grid < 1:
            raise ValueError(f"PatchSchedule.grid must be >= 1, got {self.grid}")


def _graph(model) -> Graph:
    return model if isinstance(model, Graph) else graph_from_tflite(model)


def _window(g: Graph, op):
    """(kh, kw, sh, sw, dh, dw, pt, pl) of a windowed op with TFLite's SAME/VALID padding."""
    o = op.options
    _, h, w, _ = g.tensors[op.inputs[0]].shape
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    if op.opcode == "CONV_2D":
        _, kh, kw, _ = g.tensors[op.inputs[1]].shape
    elif op.opcode == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = g.tensors[op.inputs[1]].shape
    else:
        kh, kw = int(o.get("filter_height", 1)), int(o.get("filter_width", 1))
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        dh, dw = int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))
    else:
        dh = dw = 1
    pad = o.get("padding", "SAME" if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") else "VALID")

    def p(n, k, s, d, on):
        if pad == "VALID":
            return 0
        return max((on - 1) * s + (k - 1) * d + 1 - n, 0) // 2
    return kh, kw, sh, sw, dh, dw, p(h, kh, sh, dh, oh), p(w, kw, sw, dw, ow)


def _need(g: Graph, op, reg):
    """Input region (r0, r1, c0, c1), clipped to the image, that output region ``reg`` reads."""
    a, b, c, d = reg
    _, h, w, _ = g.tensors[op.inputs[0]].shape
    kh, kw, sh, sw, dh, dw, pt, pl = _window(g, op)
    return (max(0, a * sh - pt), min(h, (b - 1) * sh - pt + (kh - 1) * dh + 1),
            max(0, c * sw - pl), min(w, (d - 1) * sw - pl + (kw - 1) * dw + 1))


def valid_splits(model) -> list:
    """Operator indices that can end a patch stage: every operator up to it is one of
    :data:`PATCH_OPS` on NHWC tensors, and only its output leaves the stage.
    Taught in 06-deployment."""
    g = _graph(model)
    out = []
    cons = g.consumers()
    produced = set()
    for op in g.ops:
        if op.opcode not in PATCH_OPS:
            break
        t_in = [t for t in op.inputs if t >= 0 and not g.tensors[t].const]
        if any(len(g.tensors[t].shape) != 4 for t in t_in + list(op.outputs)):
            break
        if any(t not in produced and t not in g.inputs for t in t_in):
            break
        produced.update(op.outputs)
        y = op.outputs[0]
        leaving = [t for t in produced if any(c > op.index for c in cons[t])]
        if leaving == [y] and y not in g.outputs and \
                all(c <= op.index for t in g.inputs for c in cons[t]):
            out.append(op.index)
    return out


def stage_regions(model, schedule: PatchSchedule) -> list:
    """Per patch (row-major), ``{tensor: (r0, r1, c0, c1)}`` for every stage tensor (graph
    input, intermediates, split output) and ``{"op:<i>": region}`` for each op's computed
    output region. Regions are half-open rows / columns, clipped to the tensor.
    Taught in 06-deployment."""
    g = _graph(model)
    ok = valid_splits(g)
    if schedule.split not in ok:
        raise ValueError(f"schedule.split={schedule.split} cannot end a patch stage of this model; "
                         f"allowed splits: {ok}")
    y = g.ops[schedule.split].outputs[0]
    _, H, W, _ = g.tensors[y].shape
    n = schedule.grid
    if n > min(H, W):
        raise ValueError(f"schedule.grid={n} exceeds the split output's {H}x{W} pixels "
                         f"(allowed 1..{min(H, W)})")
    rows = [(i * H // n, (i + 1) * H // n) for i in range(n)]
    cols = [(j * W // n, (j + 1) * W // n) for j in range(n)]
    stage = g.ops[:schedule.split + 1]
    patches = []
    for r in rows:
        for c in cols:
            reg = {y: (r[0], r[1], c[0], c[1])}
            for op in reversed(stage):
                t = op.outputs[0]
                if t not in reg:        # no consumer inside the stage needs it (dead output)
                    continue
                reg[f"op:{op.index}"] = reg[t]
                ins = [i for i in op.inputs if i >= 0 and not g.tensors[i].const]
                need = reg[t] if op.opcode == "ADD" else _need(g, op, reg[t])
                for i in (ins if op.opcode == "ADD" else ins[:1]):
                    if i in reg:
                        a = reg[i]
                        reg[i] = (min(a[0], need[0]), max(a[1], need[1]),
                                  min(a[2], need[2]), max(a[3], need[3]))
                    else:
                        reg[i] = need
            patches.append(reg)
    return patches


def _region_macs(g: Graph, op, reg) -> int:
    rows, cols = reg[1] - reg[0], reg[3] - reg[2]
    _, oh, ow, _ = g.tensors[op.outputs[0]].shape
    return op.macs * rows * cols // (oh * ow) if op.macs else 0


@dataclass
class PatchPlan:
    """Memory plan of one :class:`PatchSchedule` (MLTK-profiler style result).

    ``buffers``: one row per buffer, dict(name, tensor, kind ("full" / "patch" / "scratch"),
    offset, size, first, last) with lifetimes in the steps of one timeline (step ``p`` of the
    stage = its ``p``-th operator, for every patch; then the rest of the operators); ``offsets``
    / ``patch_offsets``: tensor -> offset of its full buffer / its per-patch buffer;
    ``peak_sram_bytes``: the layout end (checked == max(offset + size)); ``live_bytes``: bytes
    live at each step (its max <= the peak); ``macs`` / ``base_macs``: with / without halo
    recompute; ``overhead`` = macs / base_macs - 1; ``inplace_ops``: stage depthwise ops run in
    place (output tile over the input tile; ``scratch`` holds their one-channel buffers).
    Taught in 06-deployment."""

    schedule: PatchSchedule
    buffers: list
    offsets: dict
    patch_offsets: dict
    patch_sizes: dict
    peak_sram_bytes: int
    live_bytes: list
    macs: int
    base_macs: int
    stage_ops: list
    rest_ops: list
    regions: list = field(repr=False, default_factory=list)
    inplace_ops: list = field(default_factory=list)
    scratch: dict = field(default_factory=dict)      # in-place op -> (offset, size)

    @property
    def overhead(self) -> float:
        return self.macs / max(self.base_macs, 1) - 1.0

    @property
    def n_patches(self) -> int:
        return self.schedule.grid ** 2

    def summary(self) -> str:
        return (f"patch plan split op {self.schedule.split}, {self.schedule.grid}x"
                f"{self.schedule.grid} patches: peak {self.peak_sram_bytes:,} B, MACs "
                f"{self.macs:,} (+{100 * self.overhead:.1f} % recompute), "
                f"{len(self.buffers)} buffers")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"split": self.schedule.split, "grid": self.schedule.grid,
                "peak_sram_bytes": self.peak_sram_bytes, "macs": self.macs,
                "base_macs": self.base_macs, "overhead": self.overhead,
                "buffers": [dict(b) for b in self.buffers], "live_bytes": list(self.live_bytes)}

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.buffers)

    def verify(self) -> None:
        """Raise AssertionError if two buffers live at the same step overlap in memory, or
        the reported peak differs from the layout end."""
        bs = self.buffers
        for i, a in enumerate(bs):
            for b in bs[i + 1:]:
                if a["first"] > b["last"] or b["first"] > a["last"]:
                    continue
                if a["offset"] < b["offset"] + b["size"] and b["offset"] < a["offset"] + a["size"]:
                    raise AssertionError(f"patch plan: buffers {a['name']} and {b['name']} are "
                                         f"live together and overlap")
        end = max(b["offset"] + b["size"] for b in bs)
        if end != self.peak_sram_bytes:
            raise AssertionError(f"patch plan: peak {self.peak_sram_bytes} != layout end {end}")
        if max(self.live_bytes) > self.peak_sram_bytes:
            raise AssertionError("patch plan: live bytes exceed the layout")


def patch_plan(model, schedule: PatchSchedule, inplace: bool = True) -> PatchPlan:
    """Memory plan (with offsets, verified) and MACs of ``schedule`` on ``model`` (.tflite
    bytes / path / Graph). ``inplace``: depthwise ops whose input tile dies with them write
    over it (plus one output channel of scratch), as TinyEngine does layer by layer.
    Taught in 06-deployment."""
    g = _graph(model)
    regions = stage_regions(g, schedule)
    k = schedule.split + 1
    stage, rest = g.ops[:k], g.ops[k:]
    y = stage[-1].outputs[0]
    cons = g.consumers()
    stage_pos = {op.index: p + 1 for p, op in enumerate(stage)}
    # per-patch buffers: intermediates of the stage (the split operator writes its patch
    # straight into the full split output, row by row). An in-place depthwise (TinyEngine)
    # writes its output tile over its dying input tile through one output channel of scratch.
    bufs = []          # (name, tensor, kind, size, first, last)
    patch_sizes, alias, inplace_ops = {}, {}, []
    life = {}
    for op in stage:
        t = op.outputs[0]
        if t not in regions[0] or t == y:
            continue
        c = g.tensors[t].shape[3]
        patch_sizes[t] = max((r[t][1] - r[t][0]) * (r[t][3] - r[t][2]) * c for r in regions)
        last = max([stage_pos[u] for u in cons[t] if u in stage_pos] or [stage_pos[op.index]])
        life[t] = [stage_pos[op.index], last]
        src = op.inputs[0]
        if inplace and op.opcode == "DEPTHWISE_CONV_2D" and \
                int(op.options.get("depth_multiplier", 1)) == 1 and src in life and \
                life[src][1] == stage_pos[op.index] and \
                patch_sizes[t] <= patch_sizes[alias.get(src, src)] and g.tensors[src].shape[3] == c:
            root = alias.get(src, src)
            alias[t] = root
            life[root][1] = max(life[root][1], last)
            inplace_ops.append(op.index)
            hw = max((r[t][1] - r[t][0]) * (r[t][3] - r[t][2]) for r in regions)
            bufs.append((f"scratch:{op.index}", op.index, "scratch", _align(hw),
                         stage_pos[op.index], stage_pos[op.index]))
    for t, (f, l_) in life.items():
        if t not in alias:
            bufs.append((f"patch:{t}", t, "patch", _align(patch_sizes[t]), f, l_))
    # full buffers: graph inputs (live through the stage), split output, the rest
    end = len(g.ops)
    for t in g.inputs:
        bufs.append((f"full:{t}", t, "full", _align(g.tensors[t].nbytes), 0, k))
    last_y = max(cons[y]) + 1
    bufs.append((f"full:{y}", y, "full", _align(g.tensors[y].nbytes), 1, last_y))
    for op in rest:
        s = op.index + 1
        for t in op.outputs:
            if g.tensors[t].const or g.tensors[t].nbytes == 0:
                continue
            last = end if t in g.outputs else max([u + 1 for u in cons[t]] or [s])
            bufs.append((f"full:{t}", t, "full", _align(g.tensors[t].nbytes), s, last))
        for j, b in enumerate(op.scratch):
            bufs.append((f"scratch:{op.index}:{j}", op.index, "scratch", _align(b), s, s))
    offs, peak = _greedy([b[3] for b in bufs], [b[4] for b in bufs], [b[5] for b in bufs])
    rows = [{"name": b[0], "tensor": b[1], "kind": b[2], "offset": int(o), "size": int(b[3]),
             "first": int(b[4]), "last": int(b[5])} for b, o in zip(bufs, offs)]
    live = [sum(r["size"] for r in rows if r["first"] <= s <= r["last"]) for s in range(end + 1)]
    macs = sum(_region_macs(g, op, r[f"op:{op.index}"]) for r in regions for op in stage
               if f"op:{op.index}" in r) + sum(op.macs for op in rest)
    poff = {r["tensor"]: r["offset"] for r in rows if r["kind"] == "patch"}
    for t, root in alias.items():
        poff[t] = poff[root]
    p = PatchPlan(schedule=schedule, buffers=rows,
                  offsets={r["tensor"]: r["offset"] for r in rows if r["kind"] == "full"},
                  patch_offsets=poff,
                  patch_sizes=patch_sizes, peak_sram_bytes=int(peak), live_bytes=live,
                  macs=int(macs), base_macs=int(g.macs), stage_ops=[o.index for o in stage],
                  rest_ops=[o.index for o in rest], regions=regions, inplace_ops=inplace_ops,
                  scratch={r["tensor"]: (r["offset"], r["size"]) for r in rows
                           if r["kind"] == "scratch" and r["tensor"] in inplace_ops})
    p.verify()
    return p


@dataclass
class PatchChoice:
    """Result of :func:`choose_schedule`: the best plan and every candidate tried.
    Taught in 06-deployment."""

    best: PatchPlan
    candidates: list          # dict(split, grid, peak_sram_bytes, overhead, feasible)
    max_overhead: float

    def summary(self) -> str:
        return (f"best of {len(self.candidates)} schedules under +{100 * self.max_overhead:.0f} % "
                f"MACs: {self.best.summary()}")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"best": self.best.to_dict(), "candidates": list(self.candidates),
                "max_overhead": self.max_overhead}

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.candidates)


def choose_schedule(model, max_overhead: float = 0.2, grids=range(1, 9), splits=None,
                    inplace: bool = True) -> PatchChoice:
    """The split and grid minimising peak SRAM with recompute overhead <= ``max_overhead``
    (extra MACs / MACs); ties go to fewer patches, then the earlier split. ``grids``: grid
    sizes to try; ``splits``: operator indices (default :func:`valid_splits`).
    Taught in 06-deployment."""
    if isinstance(max_overhead, bool) or not isinstance(max_overhead, (int, float)) \
            or max_overhead < 0:
        raise ValueError(f"max_overhead must be a number >= 0 (e.g. 0.2 = 20 % extra MACs), "
                         f"got {max_overhead!r}")
    g = _graph(model)
    ok = valid_splits(g)
    if not ok:
        raise ValueError("model: no operator can end a patch stage (the first operator must be "
                         f"one of {list(PATCH_OPS)})")
    splits = ok if splits is None else list(splits)
    bad = [s for s in splits if s not in ok]
    if bad:
        raise ValueError(f"splits {bad} cannot end a patch stage; allowed: {ok}")
    cands, best = [], None
    for s in splits:
        _, H, W, _ = g.tensors[g.ops[s].outputs[0]].shape
        for n in grids:
            if n > min(H, W):
                continue
            p = patch_plan(g, PatchSchedule(s, int(n)), inplace=inplace)
            feas = p.overhead <= max_overhead + 1e-12
            cands.append({"split": s, "grid": int(n), "peak_sram_bytes": p.peak_sram_bytes,
                          "overhead": p.overhead, "macs": p.macs, "feasible": feas})
            if feas and (best is None or (p.peak_sram_bytes, n * n) <
                         (best.peak_sram_bytes, best.schedule.grid ** 2)):
                best = p
    if best is None:
        raise ValueError(f"max_overhead={max_overhead}: no schedule within the limit")
    return PatchChoice(best=best, candidates=cands, max_overhead=float(max_overhead))


def patch_resources(arch, input_shape, num_classes: int, max_overhead: float = 0.2) -> dict:
    """Search-side resources of an architecture of :mod:`helpers.spaces` run with its best
    patch schedule (no TensorFlow: the converter graph of ``arch.layers``): ``peak_sram_bytes``
    (patch-based), ``macs`` (with recompute), ``split``, ``grid``. A drop-in SRAM model for a
    search's resource function, so a larger resolution can fit a board (MCUNetV2 co-design).
    Taught in 06-deployment."""
    g = graph_from_layers(arch.layers(tuple(input_shape), int(num_classes)))
    best = choose_schedule(g, max_overhead=max_overhead).best
    return {"peak_sram_bytes": best.peak_sram_bytes, "macs": best.macs,
            "split": best.schedule.split, "grid": best.schedule.grid}

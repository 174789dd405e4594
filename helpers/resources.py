"""Exact resource model: MACs, parameters, flash and peak SRAM under a memory plan.

Everything here works on a small graph IR (:class:`Graph`: int8 tensors and
TFLite operators) that is built either

* from an architecture of :mod:`helpers.spaces` **without TensorFlow**, by
  mirroring what the TFLite converter emits for the Keras model that
  :func:`helpers.spaces.build` makes (batch-norm folded into the conv, ReLU
  fused, Flatten -> RESHAPE, GlobalAveragePooling -> MEAN, global max -> REDUCE_MAX,
  Resizing -> RESIZE_BILINEAR, and the converter's operator order), or
* from a real ``.tflite`` file (:func:`graph_from_tflite`, via
  :mod:`helpers.tflite_io`),

so the same planners give plans for a search candidate and for the deployed
file. Memory plans (:func:`plan`, :func:`plan_tflite`):

``"tflm"``
    TFLite-Micro's ``GreedyMemoryPlanner`` replicated exactly: every non-constant
    tensor (network input and output included) and every kernel scratch buffer,
    sizes rounded up to 16 bytes, lifetimes in the file's operator order, buffers
    placed largest first (ties: later-added first) at the lowest offset that does
    not collide with a buffer alive at the same time. ``peak_bytes`` is the arena
    *head* TFLM reports.
``"reordered"``
    Liberis & Lane operator reordering as in muNAS: the minimum over all valid
    execution orders of the maximum bytes live at any step (exact dynamic
    programme over the sets of executed operators, not a heuristic).
``"inplace"``
    TinyEngine's in-place depthwise on top of the best order: a depthwise
    convolution (depth multiplier 1) whose input has no consumer after it writes
    its output over its input, needing one extra output channel (Ho*Wo bytes)
    of scratch, so its step costs N + N/C instead of 2N.

Scratch buffers are those the *reference* int8 kernels of the pinned
tflite-micro build request in ``Prepare`` (see :data:`KERNELS_ASSUMED`).

Taught in 00-overview (what peak SRAM, flash and MACs mean) and 06-deployment
(plans against the measured arena).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tensor", "Node", "Graph", "MemoryPlan", "Profile", "PLANS", "KERNELS_ASSUMED",
           "ALIGN", "graph_from_tflite", "graph_from_layers", "plan", "plan_tflite",
           "timeline", "profile", "flash_bytes", "FLASH_FIXED_OVERHEAD"]

#: TFLite-Micro's kBufferAlignment (MicroArenaBufferAlignment()).
ALIGN = 16
PLANS = ("tflm", "reordered", "inplace")

#: Scratch buffers requested in Prepare by the reference int8 kernels of the pinned
#: tflite-micro build (no CMSIS-NN). Ops not listed request none.
KERNELS_ASSUMED = {
    "CONV_2D": "reference int8 conv (tensorflow/lite/micro/kernels/conv.cc): no scratch",
    "DEPTHWISE_CONV_2D": "reference int8 depthwise_conv: no scratch",
    "FULLY_CONNECTED": "reference int8 fully_connected: no scratch",
    "MEAN": "reduce_common.cc PrepareMeanOrSum: int32 accumulator, 4 x output elements",
    "SUM": "reduce_common.cc PrepareMeanOrSum: int32 accumulator, 4 x output elements",
    "REDUCE_MAX": "reduce_common.cc PrepareMax: 4 x input rank + 4 x number of axes",
    "MAX_POOL_2D": "reference pooling: no scratch",
    "AVERAGE_POOL_2D": "reference pooling: no scratch",
    "ADD": "reference add: no scratch",
    "RESHAPE": "reshape: output is its own buffer (copy), no scratch",
    "RESIZE_BILINEAR": "reference resize_bilinear: no scratch",
}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _prod(shape) -> int:
    p = 1
    for s in shape:
        p *= int(s)
    return p


# ============================================================================ graph IR

@dataclass(slots=True)
class Tensor:
    """A tensor of the graph IR. ``nbytes`` is unaligned; constants are not planned."""

    index: int
    shape: tuple
    itemsize: int = 1
    const: bool = False
    name: str = ""
    nbytes: int = 0
    channels: int = 0  # quantisation channels (per-channel weights / biases), 0 = per-tensor
    value: tuple | None = None  # small int32 constants (axes, shapes): their values
    qdim: int = 0  # quantized dimension of per-channel constants

    def __post_init__(self):
        if not self.nbytes:
            self.nbytes = _prod(self.shape) * self.itemsize


@dataclass(slots=True)
class Node:
    """An operator: TFLite ``opcode``, tensor indices, options, kernel scratch
    requests (bytes, in request order), MACs and learned parameters."""

    index: int
    opcode: str
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)
    scratch: list = field(default_factory=list)
    macs: int = 0
    params: int = 0
    name: str = ""


@dataclass
class Graph:
    """Operators in execution (file) order over int8 tensors; see module docstring."""

    tensors: list
    ops: list
    inputs: list
    outputs: list
    name: str = ""

    def consumers(self) -> dict:
        cons: dict[int, list] = {t.index: [] for t in self.tensors}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0 and op.index not in cons[t]:
                    cons[t].append(op.index)
        return cons

    def producers(self) -> dict:
        return {t: op.index for op in self.ops for t in op.outputs}

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)

    def planned(self) -> list:
        """Tensor indices TFLM puts in the arena (non-constant, non-empty), in index order."""
        return [t.index for t in self.tensors if not t.const and t.nbytes > 0]


# ---------------------------------------------------------------- per-op scratch and MACs

def kernel_scratch(opcode: str, in_shapes: list, out_shapes: list) -> list:
    """Scratch bytes the reference int8 kernel of ``opcode`` requests (request order)."""
    if opcode in ("MEAN", "SUM"):
        return [4 * _prod(out_shapes[0])]
    if opcode in ("REDUCE_MAX", "REDUCE_MIN"):
        axis = in_shapes[1] if len(in_shapes) > 1 and in_shapes[1] is not None else (1,)
        return [4 * len(in_shapes[0]), 4 * _prod(axis)]
    return []


def op_macs(opcode: str, in_shapes: list, out_shapes: list, options: dict | None = None) -> int:
    """Multiply-accumulates of one operator (conv, depthwise, dense; 0 for the rest)."""
    if opcode == "CONV_2D":
        _, ho, wo, co = out_shapes[0]
        co_, kh, kw, ci = in_shapes[1]
        return ho * wo * co * kh * kw * ci
    if opcode == "DEPTHWISE_CONV_2D":
        _, ho, wo, co = out_shapes[0]
        _, kh, kw, _ = in_shapes[1]
        return ho * wo * co * kh * kw
    if opcode == "FULLY_CONNECTED":
        units, n = in_shapes[1]
        batch = _prod(out_shapes[0]) // units
        return batch * units * n
    return 0


# ------------------------------------------------------------------------ from .tflite

def graph_from_tflite(model) -> Graph:
    """Graph IR of a ``.tflite`` (bytes, path or :class:`helpers.tflite_io.TFLiteModel`)."""
    from helpers import tflite_io
    m = tflite_io.read(model)
    tensors = [Tensor(index=t.index, shape=tuple(t.shape), itemsize=t.dtype.itemsize,
                      const=t.is_constant or t.is_variable, name=t.name, nbytes=t.nbytes,
                      channels=int(t.scale.size) if t.scale.size > 1 else 0)
               for t in m.tensors]
    ops = []
    for op in m.ops:
        ins = [m.tensors[i].shape if i >= 0 else None for i in op.inputs]
        outs = [m.tensors[i].shape for i in op.outputs]
        params = sum(_prod(m.tensors[i].shape) for i in op.inputs[1:]
                     if i >= 0 and m.tensors[i].is_constant and op.opcode in _LEARNED)
        ops.append(Node(index=op.index, opcode=op.opcode, inputs=list(op.inputs),
                        outputs=list(op.outputs), options=dict(op.options),
                        scratch=kernel_scratch(op.opcode, ins, outs),
                        macs=op_macs(op.opcode, ins, outs, op.options), params=params))
    return Graph(tensors=tensors, ops=ops, inputs=list(m.inputs), outputs=list(m.outputs),
                 name="tflite")


_LEARNED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


# ============================================================================ planners

def _greedy(sizes: list, first: list, last: list) -> tuple[list, int]:
    """TFLite-Micro GreedyMemoryPlanner::CalculateOffsetsIfNeeded, replicated.

    ``sizes`` already aligned, buffers in the order they were added. Returns
    (offsets, GetMaximumMemorySize()).
    """
    n = len(sizes)
    if n == 0:
        return [], 0
    # Online buffers are written from the tail (so the id order is reversed),
    # then bubble-sorted by descending size, which is stable.
    ids = list(range(n - 1, -1, -1))
    ids.sort(key=lambda i: -sizes[i])  # Python's sort is stable, like the bubble sort
    offsets = [-1] * n
    placed: list[tuple[int, int]] = []  # (offset, id), kept sorted by offset (ties: insert order)
    first_id = ids[0]
    offsets[first_id] = 0
    placed.append((0, first_id))
    for bid in ids[1:]:
        size, f, l = sizes[bid], first[bid], last[bid]
        candidate = 0
        for off, pid in placed:  # already in offset order
            if first[pid] > l or f > last[pid]:
                continue
            if off - candidate >= size:
                break
            end = off + sizes[pid]
            if end > candidate:
                candidate = end
        offsets[bid] = candidate
        # Insert after every entry whose offset <= candidate (TFLM inserts before the
        # first entry with a strictly larger offset; a new smallest goes to the front).
        if placed[0][0] > candidate:
            placed.insert(0, (candidate, bid))
        else:
            k = len(placed)
            for j in range(1, len(placed)):
                if placed[j][0] > candidate:
                    k = j
                    break
            placed.insert(k, (candidate, bid))
    peak = max(offsets[i] + sizes[i] for i in range(n))
    return offsets, peak


@dataclass
class MemoryPlan:
    """An activation memory plan.

    ``order``: op indices in execution order; ``offsets`` / ``sizes``: tensor
    index -> byte offset / aligned bytes in the arena; ``scratch``: list of
    (op_index, offset, size); ``peak_bytes``: the plan's peak SRAM (for "tflm"
    the arena head TFLM allocates; for "reordered" / "inplace" the minimum over
    execution orders of the maximum live bytes); ``arena_bytes``: size of the
    concrete offset layout (greedy placement in ``order``; equals ``peak_bytes``
    for "tflm", may exceed it by fragmentation otherwise; for "inplace" the
    layout keeps a depthwise input's whole buffer for its in-place output, so it
    is conservative); ``live_bytes``: bytes live at each step of ``order``;
    ``inplace_ops``: depthwise ops run in place (output offset == input offset,
    plus a scratch buffer of one output channel, Ho*Wo bytes).
    """

    name: str
    order: list
    offsets: dict
    sizes: dict
    scratch: list
    peak_bytes: int
    arena_bytes: int = 0
    live_bytes: list = field(default_factory=list)
    inplace_ops: list = field(default_factory=list)
    lifetimes: dict = field(default_factory=dict)

    def summary(self) -> str:
        s = (f"memory plan '{self.name}': peak {self.peak_bytes} B "
             f"(layout {self.arena_bytes} B), {len(self.order)} ops, "
             f"{len(self.sizes)} tensors, {len(self.scratch)} scratch buffers")
        if self.inplace_ops:
            s += f", in-place depthwise ops {self.inplace_ops}"
        return s

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"name": self.name, "order": list(self.order), "peak_bytes": self.peak_bytes,
                "arena_bytes": self.arena_bytes,
                "offsets": {int(k): int(v) for k, v in self.offsets.items()},
                "sizes": {int(k): int(v) for k, v in self.sizes.items()},
                "scratch": [list(s) for s in self.scratch], "live_bytes": list(self.live_bytes),
                "inplace_ops": list(self.inplace_ops)}

    def timeline(self) -> list:
        """Bytes live at each step: list of (op_index, bytes) in execution order."""
        return list(zip(self.order, self.live_bytes))


def _lifetimes(g: Graph, order: list, alias: dict | None = None):
    """TFLM lifetimes (allocation scopes) for the planned tensors in ``order``.

    Scope 0 = subgraph start (inputs and outputs are created there), the op at
    position p runs in scope p + 1; outputs stay alive to the last scope.
    ``alias`` maps an in-place output tensor to the tensor whose buffer it reuses.
    """
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    planned = set(g.planned())

    def root(t):
        while alias and t in alias:
            t = alias[t]
        return t

    for t in g.inputs + g.outputs:
        if t in planned:
            r = root(t)
            first[r] = 0
            last[r] = 0
    for p, oi in enumerate(order):
        s = p + 1
        op = g.ops[oi]
        for t in op.outputs:
            if t in planned:
                r = root(t)
                if r == t or r not in first:
                    first[r] = s
                last[r] = max(last.get(r, s), s)
        for t in op.inputs:
            if t >= 0 and t in planned:
                r = root(t)
                first.setdefault(r, s)
                last[r] = max(last.get(r, s), s)
    end = len(order)
    for t in g.outputs:
        if t in planned:
            last[root(t)] = end
    return first, last


def _layout(g: Graph, order: list, name: str, alias: dict | None = None,
            extra_scratch: dict | None = None) -> MemoryPlan:
    """Greedy (TFLM) placement of the graph in ``order``."""
    alias = alias or {}
    first, last = _lifetimes(g, order, alias)
    pos = {oi: p for p, oi in enumerate(order)}
    tids = [t for t in g.planned() if t not in alias]
    sizes = [_align(g.tensors[t].nbytes) for t in tids]
    f = [first.get(t, -1) for t in tids]
    l_ = [last.get(t, -1) for t in tids]
    # scratch buffers follow the tensors, in request order (= op order in the file)
    sc_meta = []
    for oi in order if name != "tflm" else range(len(g.ops)):
        req = list(g.ops[oi].scratch) + list((extra_scratch or {}).get(oi, []))
        for b in req:
            sc_meta.append((oi, b))
            sizes.append(_align(b))
            f.append(pos[oi] + 1)
            l_.append(pos[oi] + 1)
    offsets, arena = _greedy(sizes, f, l_)
    off = {t: offsets[i] for i, t in enumerate(tids)}
    sz = {t: sizes[i] for i, t in enumerate(tids)}
    for a in alias:
        r = a
        while r in alias:
            r = alias[r]
        off[a] = off[r]
        sz[a] = _align(g.tensors[a].nbytes)
    scratch = [(oi, offsets[len(tids) + k], sizes[len(tids) + k])
               for k, (oi, b) in enumerate(sc_meta)]
    # live bytes per step
    nsteps = len(order)
    live = [0] * nsteps
    for i in range(len(sizes)):
        if f[i] < 0:
            continue
        for s in range(max(f[i], 1), min(l_[i], nsteps) + 1):
            live[s - 1] += sizes[i]
    lifetimes = {t: (first.get(t, -1), last.get(t, -1)) for t in tids}
    return MemoryPlan(name=name, order=list(order), offsets=off, sizes=sz, scratch=scratch,
                      peak_bytes=arena, arena_bytes=arena, live_bytes=live,
                      lifetimes=lifetimes)


def _best_order(g: Graph, sizes: dict, inplace: set, extra_scratch: dict, before: dict):
    """Exact min over topological orders of the max live bytes (muNAS / Liberis & Lane).

    DP over the sets of executed operators (bitmasks); a tensor is live while its
    producer has run (graph inputs: from the start) and some consumer has not
    (graph outputs: to the end). The step running op ``o`` holds everything live
    before it that is still needed (its inputs included), its outputs and its
    scratch. An op in ``inplace`` writes its output over its (dying) input, so
    its output adds nothing at its own step. ``before`` adds precedence edges
    op -> [ops that must run first]. Returns (peak, order, live bytes per step).
    """
    n = len(g.ops)
    planned = set(sizes)
    prod = {}
    for op in g.ops:
        for t in op.outputs:
            prod[t] = op.index
    outs = set(g.outputs)
    bufs = []  # (size, producer bit (0 for graph inputs), consumer mask, is_output)
    cons: dict[int, int] = {}
    for op in g.ops:
        for t in op.inputs:
            if t >= 0 and t in planned:
                cons[t] = cons.get(t, 0) | (1 << op.index)
    for t in sorted(planned):
        p = prod.get(t, -1)
        bufs.append((sizes[t], 0 if p < 0 else 1 << p, cons.get(t, 0), t in outs))
    preds = [0] * n
    for op in g.ops:
        m = 0
        for t in op.inputs:
            if t >= 0 and t in prod:
                m |= 1 << prod[t]
        for b in before.get(op.index, []):
            m |= 1 << b
        preds[op.index] = m
    new_bytes = [0 if op.index in inplace else
                 sum(sizes[t] for t in op.outputs if t in planned) for op in g.ops]
    scratch_b = [sum(_align(b) for b in op.scratch) + sum(_align(b) for b in
                 extra_scratch.get(op.index, [])) for op in g.ops]

    def live(mask: int) -> int:
        tot = 0
        for size, pbit, cmask, is_out in bufs:
            if pbit and not mask & pbit:
                continue
            if is_out or (cmask & ~mask):
                tot += size
        return tot

    best: dict[int, tuple[int, int]] = {0: (0, -1)}
    frontier = [0]
    full = (1 << n) - 1
    for _ in range(n):
        nxt: dict[int, tuple[int, int]] = {}
        for S in frontier:
            peakS = best[S][0]
            base = live(S)
            for o in range(n):
                if (S >> o) & 1 or (preds[o] & ~S):
                    continue
                cost = base + new_bytes[o] + scratch_b[o]
                if peakS > cost:
                    cost = peakS
                T = S | (1 << o)
                cur = nxt.get(T)
                if cur is None or cost < cur[0]:
                    nxt[T] = (cost, o)
        best.update(nxt)
        frontier = list(nxt)
        if len(frontier) > 100000:
            raise RuntimeError("reordering DP: too many states (graph too branchy)")
    if full not in best:
        raise ValueError("graph has a cycle or unreachable operators")
    order = []
    S = full
    while S:
        o = best[S][1]
        order.append(o)
        S &= ~(1 << o)
    order.reverse()
    steps = []
    S = 0
    for o in order:
        steps.append(live(S) + new_bytes[o] + scratch_b[o])
        S |= 1 << o
    return best[full][0], order, steps


def plan(g: Graph, name: str = "tflm") -> MemoryPlan:
    """Memory plan ``name`` ("tflm", "reordered" or "inplace") of graph ``g``.

    Taught in 06-deployment.
    """
    if name not in PLANS:
        raise ValueError(f"plan={name!r} unknown; allowed: {', '.join(PLANS)}")
    order0 = [op.index for op in g.ops]
    if name == "tflm":
        p = _layout(g, order0, "tflm")
        return p
    sizes = {t: _align(g.tensors[t].nbytes) for t in g.planned()}
    if name == "reordered":
        peak, order, live = _best_order(g, sizes, set(), {}, {})
        p = _layout(g, order, "reordered")
        p.peak_bytes = peak
        p.live_bytes = live
        return p
    # in-place depthwise: candidates = DW ops with depth multiplier 1 whose input is a
    # planned, non-output tensor of at least the output's size.
    cons = g.consumers()
    cands = []
    for op in g.ops:
        if op.opcode != "DEPTHWISE_CONV_2D" or int(op.options.get("depth_multiplier", 1)) != 1:
            continue
        tin, tout = op.inputs[0], op.outputs[0]
        if g.tensors[tin].const or tin in g.outputs or tout in g.outputs:
            continue
        if g.tensors[tout].nbytes > g.tensors[tin].nbytes:
            continue
        cands.append(op.index)
    shared = [o for o in cands if len(cons[g.ops[o].inputs[0]]) > 1]
    sole = [o for o in cands if o not in shared]
    best = None
    # ops whose input is shared: in place only if the other consumers run first; try
    # both choices for up to 4 such ops (exhaustive), otherwise require them all.
    choices = [()]
    if shared:
        import itertools
        if len(shared) <= 4:
            choices = [c for r in range(len(shared) + 1)
                       for c in itertools.combinations(shared, r)]
        else:
            choices = [tuple(shared), ()]
    for chosen in choices:
        inplace = sorted(sole + list(chosen))
        alias, extra, before = {}, {}, {}
        for o in inplace:
            op = g.ops[o]
            alias[op.outputs[0]] = op.inputs[0]
            _, ho, wo, _ = g.tensors[op.outputs[0]].shape
            extra[o] = [ho * wo]
            others = [c for c in cons[op.inputs[0]] if c != o]
            if others:
                before[o] = others
        try:
            peak, order, live = _best_order(g, sizes, set(inplace), extra, before)
        except ValueError:
            continue  # precedence edges made a cycle
        if best is None or peak < best[0]:
            best = (peak, order, live, inplace, alias, extra)
    peak, order, live, inplace, alias, extra = best
    p = _layout(g, order, "inplace", alias=alias, extra_scratch=extra)
    p.peak_bytes = peak
    p.live_bytes = live
    p.inplace_ops = inplace
    return p


def plan_tflite(tflite_bytes_or_model, plan: str = "tflm") -> MemoryPlan:
    """Memory plan of a real ``.tflite`` (bytes, path or parsed model).

    ``plan="tflm"`` reproduces the arena head TFLite-Micro allocates for the file.
    Taught in 06-deployment.
    """
    g = tflite_bytes_or_model if isinstance(tflite_bytes_or_model, Graph) \
        else graph_from_tflite(tflite_bytes_or_model)
    return globals()["plan"](g, plan)


def timeline(p: MemoryPlan) -> list:
    """Bytes live at each execution step of plan ``p``: list of (op_index, bytes)."""
    return p.timeline()


# ============================================================== arch -> converter graph

_ACT = {None: "NONE", "relu": "RELU", "relu6": "RELU6"}


def _converter_layers(layers) -> list:
    """Insert the extra ops the converter adds, as virtual layers.

    An ADD of two 1x1xC tensors (C > 1) gets its second operand reshaped to (C,)
    (a broadcasting add); the RESHAPE is emitted right after that operand.
    """
    from copy import copy
    out = list(layers)
    for i, l in enumerate(layers):
        if l.kind == "add" and all(tuple(layers[j].shape[:2]) == (1, 1) for j in l.inputs) \
                and layers[l.inputs[1]].shape[-1] > 1:
            src = l.inputs[1]
            v = copy(layers[src])
            v.id, v.kind, v.inputs = len(out), "squeeze", (src,)
            v.shape, v.params, v.name = (layers[src].shape[-1],), {}, l.name + "_reshape"
            out.append(v)
            nl = copy(l)
            nl.inputs = (l.inputs[0], v.id) + tuple(l.inputs[2:])
            out[i] = nl
    return out


def _converter_order(layers) -> list:
    """Operator order the TFLite converter emits for a Keras functional graph.

    Observed behaviour (checked on the agreement sets): a post-order depth-first
    walk from the output that visits a layer's inputs last-to-first.
    """
    seen = set()
    order = []
    stack = [(_output_layer(layers), False)]
    while stack:
        lid, expanded = stack.pop()
        if expanded:
            order.append(lid)
            continue
        if lid in seen:
            continue
        seen.add(lid)
        stack.append((lid, True))
        # push inputs first-to-last so that the last input is visited first
        for i in layers[lid].inputs:
            if i not in seen:
                stack.append((i, False))
    return [lid for lid in order if layers[lid].kind != "input"]


def _output_layer(layers) -> int:
    used = {i for l in layers for i in l.inputs}
    outs = [l.id for l in layers if l.id not in used and l.kind != "input"]
    return outs[-1] if outs else layers[-1].id


def graph_from_layers(layers, name: str = "") -> Graph:
    """Graph IR the TFLite converter would emit for the Keras model of ``layers``.

    ``layers`` is :meth:`helpers.spaces.GranularArch.layers` (or BlockArch's)
    output. No TensorFlow involved; see :func:`profile`.
    """
    tensors: list[Tensor] = []

    consts: dict = {}

    def new(shape, itemsize=1, const=False, channels=0, value=None, qdim=0):
        if value is not None:  # the converter merges identical int32 constants
            key = (tuple(shape), tuple(value))
            if key in consts:
                return consts[key]
        t = Tensor(index=len(tensors), shape=tuple(shape), itemsize=itemsize, const=const,
                   channels=channels, value=None if value is None else tuple(value), qdim=qdim)
        tensors.append(t)
        if value is not None:
            consts[(tuple(shape), tuple(value))] = t.index
        return t.index

    out_lid = layers[-1].id
    layers = _converter_layers(layers)
    out_t = {}
    inp = layers[0]
    out_t[inp.id] = new((1,) + tuple(inp.shape))
    ops: list[Node] = []
    for lid in _converter_order(layers):
        l = layers[lid]
        p = l.params
        x = out_t[l.inputs[0]]
        xs = tensors[x].shape
        oshape = (1,) + tuple(l.shape)
        opts: dict[str, Any] = {}
        ins = [x]
        scratch: list = []
        macs = params = 0
        if l.kind == "conv":
            k, f, cin = p["kernel"], p["filters"], xs[3]
            w = new((f, k, k, cin), 1, True, f)
            b = new((f,), 4, True, f)
            ins += [w, b]
            opcode = "CONV_2D"
            opts = {"padding": "SAME", "stride_w": p["stride"], "stride_h": p["stride"],
                    "fused_activation_function": _ACT[p["act"]]}
            macs = oshape[1] * oshape[2] * f * k * k * cin
            params = f * k * k * cin + f
        elif l.kind == "dwconv":
            k, c = p["kernel"], xs[3]
            w = new((1, k, k, c), 1, True, c, qdim=3)
            b = new((c,), 4, True, c)
            ins += [w, b]
            opcode = "DEPTHWISE_CONV_2D"
            opts = {"padding": "SAME", "stride_w": p["stride"], "stride_h": p["stride"],
                    "depth_multiplier": 1, "fused_activation_function": _ACT[p["act"]]}
            macs = oshape[1] * oshape[2] * c * k * k
            params = k * k * c + c
        elif l.kind in ("maxpool", "avgpool"):
            opcode = "MAX_POOL_2D" if l.kind == "maxpool" else "AVERAGE_POOL_2D"
            opts = {"padding": "SAME", "stride_w": p["size"], "stride_h": p["size"],
                    "filter_width": p["size"], "filter_height": p["size"],
                    "fused_activation_function": "NONE"}
        elif l.kind == "add":
            ins = [out_t[i] for i in l.inputs]
            opcode = "ADD"
            opts = {"fused_activation_function": "NONE"}
        elif l.kind in ("gap", "gmp"):
            ins += [new((2,), 4, True, value=(1, 2))]
            opcode = "MEAN" if l.kind == "gap" else "REDUCE_MAX"
            opts = {"keep_dims": False}
            scratch = kernel_scratch(opcode, [xs, (2,)], [oshape])
        elif l.kind == "flatten":
            if _prod(xs[1:-1]) == 1:
                # the converter drops a RESHAPE before FULLY_CONNECTED that keeps the
                # last dimension (1x1xC -> C): the FC reads the 4-D tensor directly
                out_t[lid] = x
                continue
            ins += [new((2,), 4, True, value=(1, _prod(xs[1:])))]
            opcode = "RESHAPE"
        elif l.kind == "dense":
            n, u = _prod(xs[1:]), p["units"]
            w = new((u, n), 1, True, u)
            b = new((u,), 4, True, u)
            ins += [w, b]
            opcode = "FULLY_CONNECTED"
            opts = {"fused_activation_function": _ACT[p["act"]], "keep_num_dims": False,
                    "weights_format": "DEFAULT"}
            macs = n * u
            params = n * u + u
        elif l.kind == "squeeze":
            oshape = tuple(l.shape)  # rank 1, no batch dimension
            ins += [new((1,), 4, True, value=(l.shape[-1],))]
            opcode = "RESHAPE"
        elif l.kind == "resize":
            ins += [new((2,), 4, True, value=(p["height"], p["width"]))]
            opcode = "RESIZE_BILINEAR"
            opts = {"align_corners": False, "half_pixel_centers": True}
        else:
            raise ValueError(f"layer kind {l.kind!r} unknown")
        y = new(oshape)
        out_t[lid] = y
        ops.append(Node(index=len(ops), opcode=opcode, inputs=ins, outputs=[y], options=opts,
                        scratch=scratch, macs=macs, params=params, name=l.name))
    return Graph(tensors=tensors, ops=ops, inputs=[out_t[inp.id]],
                 outputs=[out_t[out_lid]], name=name)


# ================================================================================ flash

#: Converter metadata kept in the file: name -> payload bytes (TF 2.21 converter).
CONVERTER_METADATA = (("min_runtime_version", 16), ("CONVERSION_METADATA", 96))
#: Operator versions the converter writes for int8 models (only "== 1" changes the size).
OP_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "MAX_POOL_2D": 2,
               "AVERAGE_POOL_2D": 2, "ADD": 2, "MEAN": 2, "REDUCE_MAX": 2, "RESHAPE": 1,
               "RESIZE_BILINEAR": 3}
_FUSED = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PADDING = {"SAME": 0, "VALID": 1}


def _options_t(fb, op: Node):
    """(BuiltinOptions type, options object) the converter writes for ``op``."""
    o = op.options
    act = _FUSED[o.get("fused_activation_function", "NONE")]
    if op.opcode == "CONV_2D":
        t = fb.Conv2DOptionsT()
        t.padding, t.strideW, t.strideH = _PADDING[o["padding"]], o["stride_w"], o["stride_h"]
        t.fusedActivationFunction = act
        return fb.BuiltinOptions.Conv2DOptions, t
    if op.opcode == "DEPTHWISE_CONV_2D":
        t = fb.DepthwiseConv2DOptionsT()
        t.padding, t.strideW, t.strideH = _PADDING[o["padding"]], o["stride_w"], o["stride_h"]
        t.depthMultiplier, t.fusedActivationFunction = o.get("depth_multiplier", 1), act
        return fb.BuiltinOptions.DepthwiseConv2DOptions, t
    if op.opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        t = fb.Pool2DOptionsT()
        t.padding, t.strideW, t.strideH = _PADDING[o["padding"]], o["stride_w"], o["stride_h"]
        t.filterWidth, t.filterHeight = o["filter_width"], o["filter_height"]
        t.fusedActivationFunction = act
        return fb.BuiltinOptions.Pool2DOptions, t
    if op.opcode == "FULLY_CONNECTED":
        t = fb.FullyConnectedOptionsT()
        t.fusedActivationFunction = act
        t.keepNumDims = bool(o.get("keep_num_dims", False))
        return fb.BuiltinOptions.FullyConnectedOptions, t
    if op.opcode == "ADD":
        t = fb.AddOptionsT()
        t.fusedActivationFunction = act
        return fb.BuiltinOptions.AddOptions, t
    if op.opcode in ("MEAN", "REDUCE_MAX"):
        t = fb.ReducerOptionsT()
        t.keepDims = bool(o.get("keep_dims", False))
        return fb.BuiltinOptions.ReducerOptions, t
    if op.opcode == "RESIZE_BILINEAR":
        t = fb.ResizeBilinearOptionsT()
        t.alignCorners = bool(o.get("align_corners", False))
        t.halfPixelCenters = bool(o.get("half_pixel_centers", True))
        return fb.BuiltinOptions.ResizeBilinearOptions, t
    if op.opcode == "RESHAPE":
        return 0, None
    raise ValueError(f"flash model: operator {op.opcode} not modelled")


_CODES: dict = {}


def _builtin_code(opcode: str) -> int:
    if not _CODES:
        from helpers.tflite_io import _enum_names
        _CODES.update({v: k for k, v in _enum_names("BuiltinOperator").items()})
    return _CODES[opcode]


def _tensor_t(fb, t: Tensor, quant: bool):
    import numpy as np
    tt = fb.TensorT()
    tt.shape = np.asarray(t.shape, np.int32)
    tt.type = 9 if t.itemsize == 1 else 2
    tt.hasRank = True
    tt.buffer = 1 if t.const else 0
    if quant:
        q = fb.QuantizationParametersT()
        n = t.channels or 1
        q.scale = np.zeros(n, np.float32)
        q.zeroPoint = np.zeros(n, np.int64)
        q.quantizedDimension = t.qdim
        tt.quantization = q
    return tt


def _operator_t(fb, op: Node, cidx: dict, remap: dict):
    import numpy as np
    ot = fb.OperatorT()
    ot.opcodeIndex = cidx[op.opcode]
    ot.inputs = np.asarray([remap.get(i, 0) if i >= 0 else -1 for i in op.inputs], np.int32)
    ot.outputs = np.asarray([remap.get(i, 0) for i in op.outputs], np.int32)
    ot.builtinOptionsType, ot.builtinOptions = _options_t(fb, op)
    return ot


def _model_t(g: Graph):
    """The canonical ``ModelT`` (see helpers.tflite_io.canonical_model_t) of ``g``,
    with placeholder payloads: what helpers.deploy.to_tflite_int8 would write."""
    import numpy as np
    from helpers import tflite_io
    fb = tflite_io._schema()
    # canonical tensor order: constants by first use, then the rest in index order
    order, seen = [], set()
    for op in g.ops:
        for i in op.inputs:
            if i >= 0 and g.tensors[i].const and i not in seen:
                seen.add(i)
                order.append(i)
    order += [t.index for t in g.tensors if t.const and t.index not in seen]
    order += [t.index for t in g.tensors if not t.const]
    remap = {old: new for new, old in enumerate(order)}
    m = fb.ModelT()
    m.version = 3
    m.description = "MLIR Converted."
    codes, cidx = [], {}
    for op in g.ops:
        if op.opcode not in cidx:
            code = _builtin_code(op.opcode)
            oc = fb.OperatorCodeT()
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.builtinCode = code
            oc.version = OP_VERSIONS.get(op.opcode, 2)
            cidx[op.opcode] = len(codes)
            codes.append(oc)
    m.operatorCodes = codes
    Stub = tflite_io.PackStub
    buffers = [tflite_io.fb_buffer(None)]
    tensors = []
    for old in order:
        t = g.tensors[old]
        quant = (t.itemsize == 1 or t.channels)
        sig = ("T", len(t.shape), t.itemsize, t.const, (t.channels or 1) if quant else 0,
               t.qdim)
        tensors.append(Stub(sig, lambda t=t, quant=quant: _tensor_t(fb, t, quant)))
        if t.const:
            buffers.append(Stub(("B",), tflite_io._schema().BufferT, raw=t.nbytes))
    ops = []
    for op in g.ops:
        typ, opt = _options_t(fb, op)
        key = ("O", cidx[op.opcode] != 0, len(op.inputs), len(op.outputs), typ,
               tuple(sorted(vars(opt).items())) if opt is not None else None)
        ops.append(Stub(key, lambda op=op: _operator_t(fb, op, cidx, remap)))
    sg = fb.SubGraphT()
    sg.tensors, sg.operators = tensors, ops
    sg.inputs = np.asarray([remap[i] for i in g.inputs], np.int32)
    sg.outputs = np.asarray([remap[i] for i in g.outputs], np.int32)
    m.subgraphs = [sg]
    meta = []
    for name, nbytes in CONVERTER_METADATA:
        md = fb.MetadataT()
        md.name = name
        md.buffer = len(buffers)
        buffers.append(tflite_io.fb_buffer(nbytes))
        meta.append(md)
    m.metadata = meta
    m.buffers = buffers
    return m


def flash_bytes(g: Graph) -> dict:
    """Size of the int8 ``.tflite`` that :func:`helpers.deploy.to_tflite_int8` writes.

    Computed by replaying the flatbuffer serialisation of the converter's graph
    (same tensors, quantisation vectors, operator options, 16-byte aligned
    buffers) without writing bytes, so it is exact when ``g`` mirrors the file.
    Parts: ``weights`` (int8), ``biases`` (int32, incl. small int32 constants),
    ``quant`` (per-channel scale float32 + zero point int64 of every quantised
    tensor), ``overhead`` (:data:`FLASH_FIXED_OVERHEAD`: header, converter
    metadata, description), ``graph`` (the rest: tensor / operator tables, shapes,
    vtables, alignment); ``total`` = file size.
    """
    from helpers import tflite_io
    weights = sum(t.nbytes for t in g.tensors if t.const and t.itemsize == 1)
    biases = sum(t.nbytes for t in g.tensors if t.const and t.itemsize != 1)
    quant = sum(12 * (t.channels or 1) for t in g.tensors if t.itemsize == 1 or t.channels)
    total = tflite_io.packed_size(_model_t(g))
    graph = total - weights - biases - quant - FLASH_FIXED_OVERHEAD
    return {"weights": weights, "biases": biases, "quant": quant, "graph": graph,
            "overhead": FLASH_FIXED_OVERHEAD, "total": total}


def _fixed_overhead() -> int:
    g = Graph(tensors=[], ops=[], inputs=[], outputs=[])
    from helpers import tflite_io
    return tflite_io.packed_size(_model_t(g))


#: Bytes of every ``.tflite`` from helpers.deploy.to_tflite_int8 that do not depend on
#: the network: flatbuffer header and root tables, description, the converter's
#: metadata (min_runtime_version, CONVERSION_METADATA). Computed once at import
#: (size of the same file with no tensors and no operators).
FLASH_FIXED_OVERHEAD = 0


# ============================================================================== profile

@dataclass
class Profile:
    """Resources of one network (MLTK-profiler style result object).

    ``peak_sram``: activation bytes under ``plan`` (TFLM arena head for "tflm");
    ``flash_bytes``: estimated size of the int8 ``.tflite`` (see
    :func:`flash_bytes`, ``flash`` has the parts); ``macs`` / ``params``: totals;
    ``layers``: one dict per operator (see :meth:`table`); ``kernels``: the
    scratch-buffer assumptions used.
    """

    name: str
    plan: str
    peak_sram: int
    flash_bytes: int
    macs: int
    params: int
    flash: dict
    layers: list
    kernels: dict
    memory_plan: MemoryPlan | None = None
    input_shape: tuple = ()
    num_classes: int = 0

    def summary(self) -> str:
        lines = [f"Profile of {self.name or 'model'} (plan '{self.plan}')",
                 f"  MACs         {self.macs:>12,}",
                 f"  parameters   {self.params:>12,}",
                 f"  flash        {self.flash_bytes:>12,} B  (weights {self.flash['weights']:,}"
                 f" + biases {self.flash['biases']:,} + quant {self.flash['quant']:,}"
                 f" + graph {self.flash['graph']:,} + fixed {self.flash['overhead']:,})",
                 f"  peak SRAM    {self.peak_sram:>12,} B  (activations + scratch, 16-B aligned)",
                 f"  operators    {len(self.layers):>12}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"Profile(plan={self.plan!r}, peak_sram={self.peak_sram}, "
                f"flash_bytes={self.flash_bytes}, macs={self.macs}, params={self.params})")

    def table(self):
        """Per-operator pandas DataFrame: op, name, output shape, MACs, params,
        weight bytes, scratch bytes, live bytes at that step of the plan."""
        import pandas as pd
        return pd.DataFrame(self.layers)

    def to_dict(self) -> dict:
        return {"name": self.name, "plan": self.plan, "peak_sram": self.peak_sram,
                "flash_bytes": self.flash_bytes, "macs": self.macs, "params": self.params,
                "flash": dict(self.flash), "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "layers": [dict(r) for r in self.layers],
                "kernels": dict(self.kernels)}


def _to_graph(obj, input_shape, num_classes) -> tuple[Graph, str]:
    if isinstance(obj, Graph):
        return obj, obj.name
    if hasattr(obj, "layers") and hasattr(obj, "to_dict") and hasattr(obj, "mutate"):
        if input_shape is None or num_classes is None:
            raise ValueError("profile(arch): input_shape=(H, W, C) and num_classes are required "
                             "for an architecture")
        return graph_from_layers(obj.layers(input_shape, num_classes)), obj.space_name
    if isinstance(obj, (bytes, bytearray, memoryview)) or hasattr(obj, "tensors"):
        return graph_from_tflite(obj), "tflite"
    if hasattr(obj, "inputs") and hasattr(obj, "layers") and hasattr(obj, "get_config"):
        raise ValueError("profile(keras_model): convert it first with "
                         "helpers.deploy.to_tflite_int8(model, data) and profile the bytes, or "
                         "profile the architecture it was built from")
    raise ValueError(f"profile: expected an architecture (helpers.spaces), .tflite bytes, "
                     f"a parsed TFLiteModel or a Graph; got {type(obj).__name__}")


def profile(arch_or_model, input_shape=None, num_classes=None, plan: str = "tflm",
            table: bool = True) -> Profile:
    """Profile an architecture (no TensorFlow, ~1 ms) or a ``.tflite``.

    ``arch_or_model``: a :mod:`helpers.spaces` architecture (give ``input_shape``
    and ``num_classes``), ``.tflite`` bytes / parsed model, or a :class:`Graph`.
    ``plan``: "tflm", "reordered" or "inplace" (see module docstring).
    ``table=False`` skips the per-layer rows (a little faster in searches).

    Taught in 00-overview and 02-aging-evolution.
    """
    if plan not in PLANS:
        raise ValueError(f"plan={plan!r} unknown; allowed: {', '.join(PLANS)}")
    g, name = _to_graph(arch_or_model, input_shape, num_classes)
    mp = globals()["plan"](g, plan)
    fl = flash_bytes(g)
    rows = []
    if table:
        step = {oi: p for p, oi in enumerate(mp.order)}
        for op in g.ops:
            t = g.tensors[op.outputs[0]]
            wb = sum(g.tensors[i].nbytes for i in op.inputs if i >= 0 and g.tensors[i].const)
            rows.append({"op": op.index, "opcode": op.opcode, "name": op.name,
                         "output_shape": tuple(t.shape), "macs": op.macs, "params": op.params,
                         "weight_bytes": wb, "scratch_bytes": sum(op.scratch),
                         "step": step[op.index], "live_bytes": mp.live_bytes[step[op.index]]})
    used = {op.opcode for op in g.ops}
    kernels = {k: v for k, v in KERNELS_ASSUMED.items() if k in used}
    return Profile(name=name, plan=plan, peak_sram=mp.peak_bytes, flash_bytes=fl["total"],
                   macs=g.macs, params=g.params, flash=fl, layers=rows, kernels=kernels,
                   memory_plan=mp, input_shape=tuple(input_shape or ()),
                   num_classes=int(num_classes or 0))


FLASH_FIXED_OVERHEAD = _fixed_overhead()

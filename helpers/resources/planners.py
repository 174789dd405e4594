"""Memory planners over the graph IR: TFLite-Micro's greedy plan, operator reordering, in-place depthwise.

Taught in 06-deployment (plans against the measured arena). See :mod:`helpers.resources` for
what each plan means. May import: :mod:`helpers.resources.graph`, :mod:`helpers.tflite_io`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from helpers.resources.graph import ALIGN, PLANS, Graph, _align, graph_from_tflite

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


def _pingpong(sizes: list, first: list, last: list, target: int) -> tuple[list, int]:
    """Two-ended placement: buffers in order of creation, each put at the end of an arena
    of ``target`` bytes opposite to the buffer created just before it that is still live
    (a chain then alternates bottom / top, reaching max(input + output) exactly), lowest
    free offset when neither end fits. Returns (offsets, end of the layout)."""
    n = len(sizes)
    ids = sorted(range(n), key=lambda i: (first[i], -sizes[i], i))
    offsets = [0] * n
    top = [False] * n
    placed: list[int] = []
    for b in ids:
        size, f, l = sizes[b], first[b], last[b]
        busy = sorted((offsets[p], offsets[p] + sizes[p]) for p in placed
                      if not (first[p] > l or f > last[p]))
        recent = [p for p in placed if not (first[p] > l or f > last[p])]
        want_top = not top[recent[-1]] if recent else False
        low = 0
        for a, e in busy:  # lowest gap from the bottom
            if a - low >= size:
                break
            low = max(low, e)
        hi, moved = target - size, True
        while hi >= 0 and moved:  # highest gap below target
            moved = False
            for a, e in busy:
                if a < hi + size and e > hi:
                    hi, moved = a - size, True
        high = hi if hi >= 0 else None
        if want_top and high is not None:
            offsets[b], top[b] = high, True
        elif low + size <= target or high is None:
            offsets[b] = low
        else:
            offsets[b], top[b] = high, True
        placed.append(b)
    end = max((offsets[i] + sizes[i] for i in range(n)), default=0)
    return offsets, end


@dataclass
class MemoryPlan:
    """An activation memory plan.

    ``order``: op indices in execution order; ``offsets`` / ``sizes``: tensor
    index -> byte offset / aligned bytes in the arena; ``scratch``: list of
    (op_index, offset, size); ``peak_sram_bytes``: the end of the concrete offset
    layout (every plan is a layout: for "tflm" the arena head TFLM allocates; for
    "reordered" / "inplace" the best of several placements, see :func:`plan`), checked
    by :func:`verify_plan`; ``arena_bytes``: the same figure (kept for callers);
    ``lower_bound_bytes``: a bound no layout can beat (for "tflm" the maximum live
    bytes in ``order``; for "reordered" / "inplace" the minimum over execution orders
    of the maximum live bytes, the Liberis & Lane / muNAS figure; for "inplace" the
    layout keeps a depthwise input's whole buffer for its in-place output, so the
    layout can exceed the bound); ``live_bytes``: bytes live at each step of ``order``;
    ``inplace_ops``: depthwise ops run in place (output offset == input offset,
    plus a scratch buffer of one output channel, Ho*Wo bytes). Taught in 06-deployment.
    """

    name: str
    order: list
    offsets: dict
    sizes: dict
    scratch: list
    peak_sram_bytes: int
    arena_bytes: int = 0
    live_bytes: list = field(default_factory=list)
    inplace_ops: list = field(default_factory=list)
    lifetimes: dict = field(default_factory=dict)
    lower_bound_bytes: int = 0

    def summary(self) -> str:
        s = (f"memory plan '{self.name}': peak {self.peak_sram_bytes} B (layout end; lower "
             f"bound {self.lower_bound_bytes} B), {len(self.order)} ops, "
             f"{len(self.sizes)} tensors, {len(self.scratch)} scratch buffers")
        if self.inplace_ops:
            s += f", in-place depthwise ops {self.inplace_ops}"
        return s

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"name": self.name, "order": list(self.order), "peak_sram_bytes": self.peak_sram_bytes,
                "arena_bytes": self.arena_bytes, "lower_bound_bytes": self.lower_bound_bytes,
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
            extra_scratch: dict | None = None, bound: int | None = None) -> MemoryPlan:
    """Placement of the graph in ``order``: TFLM's greedy; with ``bound`` also two-ended
    placements (:func:`_pingpong`) at targets from ``bound`` up to the greedy end, keeping
    the smallest layout (stops as soon as one reaches ``bound``)."""
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
    if bound is not None and arena > bound:
        greedy_end = arena
        for k in range(4):
            target = bound + (greedy_end - bound) * k // 4
            target -= target % ALIGN
            o2, a2 = _pingpong(sizes, f, l_, target)
            if a2 < arena:
                offsets, arena = o2, a2
            if arena <= bound:
                break
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
                      peak_sram_bytes=arena, arena_bytes=arena, live_bytes=live,
                      lifetimes=lifetimes, lower_bound_bytes=max(live, default=0))


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
        p = _best_layout(g, [order, order0], "reordered", bound=peak)
        if p.order == order:
            p.live_bytes = live
        p.lower_bound_bytes = peak
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
    p = _best_layout(g, [order], "inplace", bound=peak, alias=alias, extra_scratch=extra)
    p.live_bytes = live
    p.inplace_ops = inplace
    # the plain reordered layout is an in-place plan with no op in place: never worse
    # (not needed when the in-place layout reaches its bound, which no layout beats)
    if p.peak_sram_bytes > peak:
        r = globals()["plan"](g, "reordered")
        if r.peak_sram_bytes < p.peak_sram_bytes:
            r.name, r.inplace_ops = "inplace", []
            p = r
    p.lower_bound_bytes = min(peak, p.peak_sram_bytes)
    return p


def _best_layout(g: Graph, orders: list, name: str, bound: int, alias=None,
                 extra_scratch=None) -> MemoryPlan:
    """The smallest of several layouts: TFLM's greedy and two-ended placements at a few
    targets from ``bound`` up, for each order in ``orders``."""
    best = None
    for order in orders:
        c = _layout(g, order, name, alias, extra_scratch, bound=bound)
        if best is None or c.peak_sram_bytes < best.peak_sram_bytes:
            best = c
        if best.peak_sram_bytes <= bound:
            break
    return best


def verify_plan(g: Graph, p: MemoryPlan) -> dict:
    """Prove that plan ``p`` is a valid layout of ``g``; raise ``ValueError`` naming the fault.

    Checks, from the graph alone (not from the plan's own lifetimes): ``p.order`` runs
    every operator once after its producers; every planned tensor has a 16-byte aligned
    offset and room for its bytes; no two buffers (tensors, scratch) that are live at the
    same step share a byte, where a tensor is live from its producer's step (graph inputs:
    from the start) to its last consumer's step (graph outputs: to the end) and a scratch
    buffer at its op's step only; the one exception is an in-place op of
    ``p.inplace_ops``, whose output may share its input's buffer; ``p.peak_sram_bytes``
    equals the end of the layout and is not below ``p.lower_bound_bytes``. Returns
    ``{"buffers", "pairs_checked", "end"}``. Taught in 06-deployment.
    """
    n = len(g.ops)
    if sorted(p.order) != list(range(n)):
        raise ValueError(f"plan {p.name!r}: order {p.order} is not a permutation of the "
                         f"{n} operators")
    prod = g.producers()
    pos = {oi: k for k, oi in enumerate(p.order)}
    for oi in p.order:
        for t in g.ops[oi].inputs:
            if t >= 0 and t in prod and pos[prod[t]] >= pos[oi]:
                raise ValueError(f"plan {p.name!r}: operator {oi} runs before operator "
                                 f"{prod[t]}, the producer of its input tensor {t}")
    bufs = []  # (label, offset, size, first step, last step)
    for t in g.planned():
        if t not in p.offsets:
            raise ValueError(f"plan {p.name!r}: tensor {t} has no offset")
        off, size = int(p.offsets[t]), int(g.tensors[t].nbytes)
        if off % ALIGN or off < 0:
            raise ValueError(f"plan {p.name!r}: tensor {t} offset {off} not {ALIGN}-byte aligned")
        if int(p.sizes.get(t, 0)) < size:
            raise ValueError(f"plan {p.name!r}: tensor {t} given {p.sizes.get(t, 0)} B, "
                             f"needs {size} B")
        steps = [pos[c] + 1 for c in g.consumers()[t]] + \
                ([pos[prod[t]] + 1] if t in prod else [0])
        first = 0 if t in g.inputs or t not in prod else pos[prod[t]] + 1
        last = n + 1 if t in g.outputs else max(steps)
        bufs.append((f"tensor {t}", off, size, first, last))
    for oi, off, size in p.scratch:
        bufs.append((f"scratch of operator {oi}", int(off), int(size), pos[oi] + 1, pos[oi] + 1))
    allowed = set()
    for oi in p.inplace_ops:
        op = g.ops[oi]
        allowed.add((f"tensor {op.inputs[0]}", f"tensor {op.outputs[0]}"))
    pairs = 0
    for i in range(len(bufs)):
        a = bufs[i]
        for b in bufs[i + 1:]:
            if a[4] < b[3] or b[4] < a[3]:
                continue
            pairs += 1
            if a[1] < b[1] + b[2] and b[1] < a[1] + a[2] and a[2] and b[2]:
                if (a[0], b[0]) in allowed or (b[0], a[0]) in allowed:
                    continue
                raise ValueError(f"plan {p.name!r}: {a[0]} [{a[1]}, {a[1] + a[2]}) and {b[0]} "
                                 f"[{b[1]}, {b[1] + b[2]}) overlap while both are live "
                                 f"(steps {max(a[3], b[3])}..{min(a[4], b[4])})")
    end = max((off + _align(size) for _, off, size, _, _ in bufs), default=0)
    if p.peak_sram_bytes != end:
        raise ValueError(f"plan {p.name!r}: reports peak {p.peak_sram_bytes} B but its layout "
                         f"ends at {end} B")
    if p.lower_bound_bytes > p.peak_sram_bytes:
        raise ValueError(f"plan {p.name!r}: lower bound {p.lower_bound_bytes} B above the "
                         f"layout's end {p.peak_sram_bytes} B")
    return {"buffers": len(bufs), "pairs_checked": pairs, "end": end}


def plan_tflite(tflite_bytes_or_model, plan: str = "tflm") -> MemoryPlan:
    """Memory plan of a real ``.tflite`` (bytes, path or parsed model).

    ``plan="tflm"`` reproduces the arena head TFLite-Micro allocates for the file.
    Taught in 06-deployment.
    """
    g = tflite_bytes_or_model if isinstance(tflite_bytes_or_model, Graph) \
        else graph_from_tflite(tflite_bytes_or_model)
    return globals()["plan"](g, plan)


def timeline(p: MemoryPlan) -> list:
    """Bytes live at each execution step of plan ``p``: list of (op_index, bytes).
    Taught in 06-deployment.
    """
    return p.timeline()

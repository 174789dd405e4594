"""MicroNets' DNAS search space and its resources: decision nodes, expected and exact costs.

Taught in 04-micronets-dnas. :class:`DNASSpace` is a DS-CNN backbone (a stem convolution,
``n_blocks`` depthwise-separable blocks, global average pooling, classifier) with one
*decision node* per searched layer (a width in multiples of ``step``, or *identity* for
stride-1 blocks: depth search). :func:`expected_resources` computes model size, working
memory and ops exactly from the decision probabilities (for a one-hot choice the expectation
*is* the exact resource, :func:`exact_resources`). May import: :mod:`helpers.spaces`,
:mod:`helpers.targets`, :mod:`helpers.resources`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from helpers import resources
from helpers import spaces as S
from helpers import targets as T

#: The three resources the DNAS penalises (keys of :func:`expected_resources`).
RESOURCES = ("model_size", "working_memory", "ops")
_ALIGN = 16
_BIAS_B = 4     # int32 bias bytes
_QUANT_B = 12   # per quantisation channel: float32 scale + int64 zero point


def _align(n):
    return (np.asarray(n, np.int64) + _ALIGN - 1) // _ALIGN * _ALIGN


def _same(n: int, s: int) -> int:
    return -(-n // s)


# ============================================================================== space

@dataclass(frozen=True)
class DNASSpace:
    """The DS-CNN supernet's decision nodes (MicroNets' KWS backbone, DS-CNN, Zhang et al. 2017).

    Layers: stem ``Conv2D(stem_kernel, stride stem_stride)`` + BN + ReLU, then for each
    block ``DepthwiseConv2D(kernel, stride strides[b])`` + BN + ReLU and
    ``Conv2D 1x1`` + BN + ReLU, global average pooling, dense classifier. Decision
    node 0 picks the stem width from ``widths``; node ``b + 1`` picks block ``b``'s
    pointwise width from ``widths``, or 0 = identity (skip the block) when the block
    has stride 1. Taught in 04-micronets-dnas.
    """

    input_shape: tuple
    num_classes: int
    widths: tuple = (8, 16, 24, 32, 40, 48, 56, 64)
    n_blocks: int = 4
    strides: tuple = ()
    stem_kernel: int = 3
    stem_stride: int = 2
    kernel: int = 3
    skip: bool = True

    def __post_init__(self):
        shp = tuple(int(s) for s in self.input_shape)
        if len(shp) != 3 or min(shp) < 1:
            raise ValueError(f"input_shape must be (H, W, C) positive ints, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shp)
        if not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {self.num_classes!r}")
        w = tuple(int(x) for x in self.widths)
        if not w or min(w) < 1 or sorted(set(w)) != list(w):
            raise ValueError(f"widths must be increasing positive ints, got {self.widths!r}")
        object.__setattr__(self, "widths", w)
        if not isinstance(self.n_blocks, int) or self.n_blocks < 0:
            raise ValueError(f"n_blocks must be an int >= 0, got {self.n_blocks!r}")
        st = tuple(int(s) for s in self.strides) or (1,) * self.n_blocks
        if len(st) != self.n_blocks or any(s not in (1, 2) for s in st):
            raise ValueError(f"strides must give 1 or 2 for each of the {self.n_blocks} blocks, "
                             f"got {self.strides!r}")
        object.__setattr__(self, "strides", st)
        for k in ("stem_kernel", "kernel"):
            if getattr(self, k) not in (1, 3, 5, 7):
                raise ValueError(f"{k} must be one of 1, 3, 5, 7, got {getattr(self, k)!r}")
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride!r}")

    # ------------------------------------------------------------------ nodes
    @property
    def max_width(self) -> int:
        return self.widths[-1]

    def options(self, node: int) -> tuple:
        """Choices of decision node ``node`` (0 = stem; a block's 0 means identity)."""
        if node == 0:
            return self.widths
        if not 1 <= node <= self.n_blocks:
            raise ValueError(f"node must be in 0..{self.n_blocks}, got {node!r}")
        return ((0,) if self.skippable(node - 1) else ()) + self.widths

    def skippable(self, block: int) -> bool:
        return bool(self.skip) and self.strides[block] == 1

    @property
    def nodes(self) -> list:
        """``[(name, options), ...]`` for every decision node."""
        return [("stem" if i == 0 else f"block{i - 1}", self.options(i))
                for i in range(self.n_blocks + 1)]

    @property
    def size(self) -> int:
        """Number of discrete architectures in the space."""
        return int(np.prod([len(o) for _, o in self.nodes]))

    def spatial(self) -> list:
        """(H, W) after the stem and after each block."""
        h, w, _ = self.input_shape
        hw = [(_same(h, self.stem_stride), _same(w, self.stem_stride))]
        for s in self.strides:
            hw.append((_same(hw[-1][0], s), _same(hw[-1][1], s)))
        return hw

    def check_choices(self, choices) -> list:
        ch = [int(c) for c in choices]
        if len(ch) != self.n_blocks + 1:
            raise ValueError(f"choices must give one value per decision node "
                             f"({self.n_blocks + 1}), got {len(ch)}")
        for i, c in enumerate(ch):
            if c not in self.options(i):
                raise ValueError(f"choices[{i}]={c} not allowed; node {self.nodes[i][0]} "
                                 f"allows {self.options(i)}")
        return ch

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def summary(self) -> str:
        lines = [f"DS-CNN supernet for input {self.input_shape}, {self.num_classes} classes: "
                 f"{self.n_blocks + 1} decision nodes, {self.size:,} architectures"]
        for (name, opts), hw in zip(self.nodes, self.spatial()):
            o = ", ".join("identity" if v == 0 else str(v) for v in opts)
            lines.append(f"  {name:8s} -> {hw[0]}x{hw[1]}  options: {o}")
        return "\n".join(lines)

    __str__ = summary


def dscnn_space(input_shape, num_classes, *, max_width: int = 64, step: int = 8,
                n_blocks: int = 4, strides=None, stem_stride: int = 2) -> DNASSpace:
    """A :class:`DNASSpace` with widths ``step, 2*step, ..., max_width`` (step 4 or 8).

    ``strides`` defaults to all 1 for KWS-like inputs (height > 2x width) and to a
    stride-2 second block for square images. Taught in 04-micronets-dnas."""
    if step not in (4, 8):
        raise ValueError(f"step must be 4 or 8 (MicroNets' width granularity), got {step!r}")
    if not isinstance(max_width, int) or max_width < step or max_width % step:
        raise ValueError(f"max_width must be a multiple of step={step}, got {max_width!r}")
    if strides is None:
        h, w = int(input_shape[0]), int(input_shape[1])
        strides = (1,) * n_blocks if h > 2 * w or n_blocks < 2 else \
            tuple(2 if b == 1 else 1 for b in range(n_blocks))
    return DNASSpace(tuple(input_shape), int(num_classes), tuple(range(step, max_width + 1, step)),
                     n_blocks, tuple(strides), stem_stride=stem_stride)


def to_arch(space: DNASSpace, choices):
    """The discrete :class:`helpers.spaces.GranularArch` of one choice per node
    (blocks chosen as identity are left out). Taught in 04-micronets-dnas."""
    ch = space.check_choices(choices)
    L = S.ConvLayer
    blocks = [S.ConvBlock(layers=[L("conv", ch[0], space.stem_kernel, space.stem_stride, True, True)])]
    for b in range(space.n_blocks):
        if ch[b + 1] == 0:
            continue
        blocks.append(S.ConvBlock(layers=[L("dwconv", 0, space.kernel, space.strides[b], True, True),
                                          L("conv1x1", ch[b + 1], 1, 1, True, True)]))
    return S.GranularArch(blocks=blocks, pooling="avg", pool_size=0, dense=[])


def random_choices(space: DNASSpace, rng) -> list:
    """One uniformly random option per node (the uniform prior over the space).
    Taught in 04-micronets-dnas.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    return [int(rng.choice(o)) for _, o in space.nodes]


def one_hot(space: DNASSpace, choices) -> list:
    """Probability vectors (one per node) putting all mass on ``choices``.
    Taught in 04-micronets-dnas.
    """
    ch = space.check_choices(choices)
    out = []
    for i, c in enumerate(ch):
        opts = space.options(i)
        p = np.zeros(len(opts))
        p[opts.index(c)] = 1.0
        out.append(p)
    return out


# ================================================================ expected resources

class _NP:
    @staticmethod
    def const(x):
        return np.asarray(x, np.float64)

    @staticmethod
    def dot(p, v):
        return float(np.dot(np.asarray(p, np.float64), v)) if np.ndim(p) == 1 else p @ v

    @staticmethod
    def vecmat(p, m):
        return np.asarray(p, np.float64) @ m

    @staticmethod
    def max(xs):
        return max(xs)


class _TF:
    @staticmethod
    def const(x):
        import tensorflow as tf
        return tf.constant(np.asarray(x, np.float32))

    @staticmethod
    def dot(p, v):
        import tensorflow as tf
        return tf.reduce_sum(p * v)

    @staticmethod
    def vecmat(p, m):
        import tensorflow as tf
        return tf.linalg.matvec(m, p, transpose_a=True)

    @staticmethod
    def max(xs):
        import tensorflow as tf
        return tf.reduce_max(tf.stack(xs))


def expected_resources(space: DNASSpace, probs, backend: str = "numpy", per_op: bool = False) -> dict:
    """Expected resources of the relaxed network for decision probabilities ``probs``.

    ``probs``: one probability vector per node (over ``space.options(i)``), numpy
    arrays (``backend="numpy"``) or TensorFlow tensors (``"tf"``, differentiable).
    The channel count of every tensor is carried as a probability vector over the
    width values (identity passes the previous distribution on), decisions are
    independent, and every resource is the exact expectation over that
    distribution, so a one-hot ``probs`` gives the exact resources of that
    architecture. Returns ``model_size`` (bytes: int8 weights + int32 biases and
    constants + 12 B per quantisation channel, = :func:`helpers.resources.flash_bytes`'
    weights + biases + quant), ``working_memory`` (bytes: max over operators of the
    expected 16-B-aligned input + output + kernel scratch, SpArSe's working memory on
    a chain = the TFLM arena plan of the discrete chain), ``macs`` and ``ops`` (2 x
    MACs). With ``per_op`` also ``ops_wm``: the expected working memory of every
    operator. Taught in 04-micronets-dnas.
    """
    if backend not in ("numpy", "tf"):
        raise ValueError(f"backend must be 'numpy' or 'tf', got {backend!r}")
    B = _NP if backend == "numpy" else _TF
    if len(probs) != space.n_blocks + 1:
        raise ValueError(f"probs must hold {space.n_blocks + 1} vectors (one per node), got {len(probs)}")
    U = np.asarray(space.widths, np.float64)       # possible channel counts
    hw = space.spatial()
    H0, W0, C0 = space.input_shape
    k0, k = space.stem_kernel, space.kernel
    wm = []
    # stem conv: input tensor -> (h, w, c)
    p0 = probs[0]
    h, w = hw[0]
    P = p0                                          # distribution of the stream channels over U
    Ec = B.dot(P, B.const(U))
    in_b = float(_align(H0 * W0 * C0))
    wm.append(in_b + B.dot(P, B.const(_align(h * w * U))))
    macs = B.dot(P, B.const(h * w * k0 * k0 * C0 * U))
    size = B.dot(P, B.const(k0 * k0 * C0 * U + _BIAS_B * U + 2 * _QUANT_B * U)) + 2 * _QUANT_B  # + in/out act
    for b in range(space.n_blocks):
        opts = np.asarray(space.options(b + 1), np.float64)
        pb = probs[b + 1]
        skippable = space.skippable(b)
        hi, wi = hw[b]
        ho, wo = hw[b + 1]
        wmask = (opts > 0).astype(np.float64)              # 1 where the block exists
        p_exist = B.dot(pb, B.const(wmask))
        # option -> position in U (identity handled separately)
        M = np.zeros((len(opts), len(U)))
        for i, o in enumerate(opts):
            if o > 0:
                M[i, list(U).index(o)] = 1.0
        # depthwise: in (hi, wi, c), out (ho, wo, c); exists with p_exist
        dw_io = _align(hi * wi * U) + _align(ho * wo * U)
        wm.append(p_exist * B.dot(P, B.const(dw_io)))
        macs = macs + p_exist * B.dot(P, B.const(ho * wo * k * k * U))
        size = size + p_exist * (B.dot(P, B.const(k * k * U + _BIAS_B * U + 2 * _QUANT_B * U)) + _QUANT_B)
        # pointwise: in (ho, wo, c), out (ho, wo, w)
        Ew = B.dot(pb, B.const(opts))                       # E[w * exists]
        wm.append(p_exist * B.dot(P, B.const(_align(ho * wo * U)))
                  + B.dot(pb, B.const(_align(ho * wo * opts))))
        macs = macs + ho * wo * Ec * Ew
        size = size + Ec * Ew + B.dot(pb, B.const(_BIAS_B * opts + 2 * _QUANT_B * opts + _QUANT_B * wmask))
        # new stream distribution
        Pn = B.vecmat(pb, B.const(M))
        if skippable:
            Pn = Pn + pb[0] * P
        P = Pn
        Ec = B.dot(P, B.const(U))
    h, w = hw[-1]
    n = space.num_classes
    # MEAN: in (h, w, c) -> out (c,), int32 accumulator scratch 4c, 8-byte axis constant
    wm.append(B.dot(P, B.const(_align(h * w * U) + _align(U) + _align(4 * U))))
    size = size + 8 + _QUANT_B
    # FULLY_CONNECTED c -> n
    wm.append(B.dot(P, B.const(_align(U))) + float(_align(n)))
    macs = macs + Ec * n
    size = size + Ec * n + _BIAS_B * n + 2 * _QUANT_B * n + _QUANT_B
    out = {"model_size": size, "working_memory": B.max(wm), "macs": macs, "ops": 2 * macs}
    if per_op:
        out["ops_wm"] = wm
    return out


def exact_resources(space: DNASSpace, choices, plan: str = "reordered") -> dict:
    """The same four resources of the discrete architecture, from
    :func:`helpers.resources.profile` (the graph the converter emits): ``model_size``
    = weights + biases + quant of the flash estimate, ``working_memory`` = peak SRAM of
    ``plan`` (default ``"reordered"``: the maximum live bytes, which on a chain is
    SpArSe's max of input + output; ``"tflm"`` gives TFLM's greedy arena plan, which can
    be larger through fragmentation), ``macs``, ``ops``; plus ``flash_bytes`` (whole
    ``.tflite``) and ``tflm_peak_sram_bytes`` (TFLM's plan). Taught in 04-micronets-dnas."""
    p = resources.profile(to_arch(space, choices), space.input_shape, space.num_classes,
                          plan=plan, table=False)
    out = {"model_size": p.flash["weights"] + p.flash["biases"] + p.flash["quant"],
           "working_memory": p.peak_sram_bytes, "macs": p.macs, "ops": 2 * p.macs,
           "flash_bytes": p.flash_bytes}
    if plan != "tflm":
        g = resources.graph_from_layers(to_arch(space, choices).layers(space.input_shape,
                                                                        space.num_classes))
        out["tflm_peak_sram_bytes"] = resources.plan(g, "tflm").peak_sram_bytes
    else:
        out["tflm_peak_sram_bytes"] = p.peak_sram_bytes
    return out


def resource_targets(space: DNASSpace, target, *, scale: float = 1.0, ops: float | None = None) -> dict:
    """DNAS targets for one MCU: ``scale`` x the model's SRAM and flash budgets
    (:mod:`helpers.targets`, TFLM overhead reserved when the Target says so).

    ``working_memory`` = scale x ``sram_budget``; ``model_size`` = scale x
    ``flash_budget`` minus the part of the ``.tflite`` the penalty does not count
    (operator / tensor tables and header of the *largest* architecture: a safe
    margin); ``ops`` = ``ops`` (e.g. from a latency target through the fitted
    latency model), or no ops limit when None. Taught in 04-micronets-dnas."""
    t = target if isinstance(target, T.Target) else T.get(target, reserve="tflm")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    big = exact_resources(space, [max(o) for _, o in space.nodes])
    graph = big["flash_bytes"] - big["model_size"]
    out = {"working_memory": scale * t.sram_budget, "model_size": scale * t.flash_budget - graph}
    if ops is not None:
        if ops <= 0:
            raise ValueError(f"ops target must be positive, got {ops!r}")
        out["ops"] = float(ops)
    if out["model_size"] <= 0:
        raise ValueError(f"scale={scale} leaves no flash for the model on {t.name}")
    return out

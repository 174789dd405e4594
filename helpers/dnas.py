"""MicroNets-style differentiable NAS and the op-count-as-latency-proxy study.

Taught in 04-micronets-dnas. Two halves:

**Latency proxy** (MicroNets, Banbury et al. 2021, Sec. 4): sample models of one
backbone uniformly from its space (:func:`sample_backbone`: the DS-CNN keyword-spotting
backbone or a MobileNetV2 image backbone), convert each to int8, run it on the
emulated Cortex-M4 / M7 of :mod:`helpers.emulator` (exact instruction counts of the
int8 C kernels, cycles estimated from the core's timing table; :func:`latency_study`,
resumable through a JSON-lines store), then fit ``latency = a * ops + b`` per backbone
and target (:func:`fit_latency`: r², residual spread, Mops/s). Ops = 2 x MACs.

**DNAS** (MicroNets Sec. 5, FBNet / FBNetV2-style relaxation): a supernet over a
DS-CNN backbone (:class:`DNASSpace`: a stem convolution, ``n_blocks`` depthwise-
separable blocks, global average pooling, classifier) with one *decision node* per
searched layer: the stem's width, and for each block its pointwise width or, for
stride-1 blocks, *identity* (the block is skipped: depth search). Widths are
multiples of ``step`` (4 or 8). Every layer is computed at the maximum width and
masked to the chosen one (channel masking), the choice relaxed with Gumbel-softmax
(:class:`Supernet`). The loss adds penalties on the *expected* resources beyond
their targets: model size (int8 weights + int32 biases + quantisation parameters),
working memory (SpArSe: max over operators of input + output bytes, 16-byte
aligned, + kernel scratch) and ops, each computed exactly from the decision
probabilities (:func:`expected_resources`): channel counts are carried as full
probability vectors through the network, so for a one-hot choice the expectation *is*
the exact resource of that architecture (tested against :mod:`helpers.resources`).
:func:`discretize` takes the argmax (optionally repairing a violated target),
:func:`to_arch` gives the discrete :class:`helpers.spaces.GranularArch`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DNASSpace", "dscnn_space", "to_arch", "random_choices", "one_hot",
           "expected_resources", "exact_resources", "RESOURCES", "Supernet", "SearchResult",
           "search", "warmup", "discretize", "resource_targets", "BACKBONES",
           "sample_backbone", "LatencyStudy", "latency_study", "fit_latency", "LatencyFit",
           "emulate_latency", "retrain_and_deploy"]

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
    from helpers import spaces as S
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
    """One uniformly random option per node (the uniform prior over the space)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator")
    return [int(rng.choice(o)) for _, o in space.nodes]


def one_hot(space: DNASSpace, choices) -> list:
    """Probability vectors (one per node) putting all mass on ``choices``."""
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
    ``.tflite``) and ``tflm_peak_sram`` (TFLM's plan)."""
    from helpers import resources
    p = resources.profile(to_arch(space, choices), space.input_shape, space.num_classes,
                          plan=plan, table=False)
    out = {"model_size": p.flash["weights"] + p.flash["biases"] + p.flash["quant"],
           "working_memory": p.peak_sram, "macs": p.macs, "ops": 2 * p.macs,
           "flash_bytes": p.flash_bytes}
    if plan != "tflm":
        g = resources.graph_from_layers(to_arch(space, choices).layers(space.input_shape,
                                                                        space.num_classes))
        out["tflm_peak_sram"] = resources.plan(g, "tflm").peak_bytes
    else:
        out["tflm_peak_sram"] = p.peak_sram
    return out


def resource_targets(space: DNASSpace, target, *, scale: float = 1.0, ops: float | None = None) -> dict:
    """DNAS targets for one MCU: ``scale`` x the model's SRAM and flash budgets
    (:mod:`helpers.targets`, TFLM overhead reserved when the Target says so).

    ``working_memory`` = scale x ``sram_budget``; ``model_size`` = scale x
    ``flash_budget`` minus the part of the ``.tflite`` the penalty does not count
    (operator / tensor tables and header of the *largest* architecture: a safe
    margin); ``ops`` = ``ops`` (e.g. from a latency target through the fitted
    latency model), or no ops limit when None. Taught in 04-micronets-dnas."""
    from helpers import targets as T
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


# ============================================================================== supernet

class Supernet:
    """Weights of the max-width DS-CNN plus one architecture logit vector per node.

    ``__call__(x, gates, training)``: gates = one weight vector per node (Gumbel-softmax
    samples, or one-hot); each layer runs at ``space.max_width`` channels and is masked
    with ``sum_k gate_k * [channel < width_k]``; a block's identity option mixes the
    block's input back in: ``y = g_id * x + block(x) * mask``. The stream mask follows
    the same mixture, and the depthwise output is multiplied by it so that channels the
    discrete network does not have stay zero. Taught in 04-micronets-dnas.
    """

    def __init__(self, space: DNASSpace, seed: int = 0):
        import keras
        import tensorflow as tf
        from keras import layers as L
        self.space = space
        keras.utils.set_random_seed(int(seed))
        C = space.max_width
        inp = keras.Input(space.input_shape)
        self.stem = keras.Sequential([L.Conv2D(C, space.stem_kernel, space.stem_stride, "same",
                                               use_bias=False), L.BatchNormalization(momentum=0.9),
                                      L.ReLU()])
        self.dw, self.pw = [], []
        for b in range(space.n_blocks):
            self.dw.append(keras.Sequential([L.DepthwiseConv2D(space.kernel, space.strides[b], "same",
                                                               use_bias=False),
                                             L.BatchNormalization(momentum=0.9), L.ReLU()]))
            self.pw.append(keras.Sequential([L.Conv2D(C, 1, 1, "same", use_bias=False),
                                             L.BatchNormalization(momentum=0.9), L.ReLU()]))
        self.head = L.Dense(space.num_classes)
        # build
        x = self.stem(inp)
        for b in range(space.n_blocks):
            x = self.pw[b](self.dw[b](x))
        self.head(L.GlobalAveragePooling2D()(x))
        self.alpha = [tf.Variable(tf.zeros(len(o)), name=f"alpha_{n}") for n, o in space.nodes]
        ch = np.arange(C)
        self._masks = [tf.constant(np.stack([(ch < o).astype(np.float32) for o in opts]))
                       for _, opts in space.nodes]   # (n_options, C); identity row = zeros

    @property
    def weights(self) -> list:
        ws = self.stem.trainable_variables + self.head.trainable_variables
        for d, p in zip(self.dw, self.pw):
            ws += d.trainable_variables + p.trainable_variables
        return ws

    def all_weights(self) -> list:
        ws = self.stem.weights + self.head.weights
        for d, p in zip(self.dw, self.pw):
            ws += d.weights + p.weights
        return ws

    def get_state(self) -> list:
        return [w.numpy().copy() for w in self.all_weights()]

    def set_state(self, state) -> None:
        for w, v in zip(self.all_weights(), state):
            w.assign(v)

    def probs(self, backend: str = "numpy") -> list:
        import tensorflow as tf
        ps = [tf.nn.softmax(a) for a in self.alpha]
        return [p.numpy() for p in ps] if backend == "numpy" else ps

    def gates_for(self, choices) -> list:
        """One-hot gate vectors (float32) selecting ``choices``."""
        return [np.asarray(p, np.float32) for p in one_hot(self.space, choices)]

    def extract(self, choices, seed: int = 0):
        """The discrete Keras model of ``choices`` (:func:`helpers.spaces.build` of
        :func:`to_arch`) with the supernet's weights sliced into it; in inference mode it
        computes what the supernet computes with one-hot gates."""
        from helpers import spaces as S
        sp = self.space
        ch = sp.check_choices(choices)
        model = S.build(to_arch(sp, ch), sp.input_shape, sp.num_classes, seed=seed)

        def put(name, seq, cin, cout, depthwise=False):
            conv, bn = seq.layers[0], seq.layers[1]
            k = conv.get_weights()[0]
            k = k[:, :, :cout, :] if depthwise else k[:, :, :cin, :cout]
            model.get_layer(name).set_weights([k])
            model.get_layer(name + "_bn").set_weights([w[:cout] for w in bn.get_weights()])

        put("b0_l0_conv", self.stem, sp.input_shape[2], ch[0])
        c, bi = ch[0], 1
        for b in range(sp.n_blocks):
            if ch[b + 1] == 0:
                continue
            put(f"b{bi}_l0_dw", self.dw[b], c, c, depthwise=True)
            put(f"b{bi}_l1_conv1x1", self.pw[b], c, ch[b + 1])
            c, bi = ch[b + 1], bi + 1
        w, bias = self.head.get_weights()
        model.get_layer("classifier").set_weights([w[:c], bias])
        return model

    def __call__(self, x, gates, training: bool = False):
        import tensorflow as tf
        m = tf.linalg.matvec(self._masks[0], gates[0], transpose_a=True)
        x = self.stem(x, training=training) * m
        for b in range(self.space.n_blocks):
            g = gates[b + 1]
            y = self.dw[b](x, training=training) * m
            y = self.pw[b](y, training=training)
            mb = tf.linalg.matvec(self._masks[b + 1], g, transpose_a=True)
            if self.space.skippable(b):
                x = g[0] * x + y * mb
                m = g[0] * m + mb
            else:
                x, m = y * mb, mb
        return self.head(tf.reduce_mean(x, axis=[1, 2]))


def _gumbel(alpha, tau, gen):
    import tensorflow as tf
    u = gen.uniform(tf.shape(alpha), 1e-6, 1.0 - 1e-6)
    return tf.nn.softmax((alpha - tf.math.log(-tf.math.log(u))) / tau)


def _epoch_batches(n, batch_size, rng):
    """Shuffled full batches (the remainder is dropped: one traced shape, no retracing)."""
    order = rng.permutation(n)
    if n <= batch_size:
        return [order]
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def warmup(net: Supernet, data, epochs: int, *, lr: float = 3e-3, batch_size: int = 64,
           seed: int = 0, progress: bool = True) -> list:
    """Train the supernet weights only, with gates sampled uniformly (alpha = 0, tau = 1),
    so every sub-network learns before the architecture is optimised. Returns the mean
    loss per epoch. Taught in 04-micronets-dnas."""
    import keras
    import tensorflow as tf
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an int >= 0, got {epochs!r}")
    opt = keras.optimizers.Adam(lr)
    gen = tf.random.Generator.from_seed(seed)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    zeros = [tf.zeros_like(a) for a in net.alpha]

    @tf.function(reduce_retracing=True)
    def step(x, y):
        gates = [_gumbel(z, 1.0, gen) for z in zeros]
        with tf.GradientTape() as tape:
            loss = ce(y, net(x, gates, training=True))
        grads = tape.gradient(loss, net.weights)
        opt.apply_gradients(zip(grads, net.weights))
        return loss

    rng = np.random.default_rng(seed)
    losses = []
    it = range(epochs)
    if progress and epochs:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="warm-up")
    for _ in it:
        ls = [float(step(data.x_train[b], data.y_train[b]))
              for b in _epoch_batches(len(data.x_train), batch_size, rng)]
        losses.append(float(np.mean(ls)))
    return losses


@dataclass
class SearchResult:
    """One DNAS run: the learned probabilities, the chosen architecture and its
    resources. ``history``: one row per epoch (loss, CE, penalty, expected resources,
    tau, argmax choices). Taught in 04-micronets-dnas."""

    space: DNASSpace
    targets: dict
    penalty_weights: dict
    probs: list
    choices: list
    raw_choices: list
    repaired: int
    expected: dict
    exact: dict
    history: list = field(default_factory=list)
    seconds: float = 0.0
    name: str = ""

    @property
    def arch(self):
        return to_arch(self.space, self.choices)

    def fits_targets(self) -> dict:
        """Whether the discrete architecture meets each DNAS target (exact resources)."""
        return {k: self.exact[k] <= v for k, v in self.targets.items()}

    def table(self):
        """Per node: options, learned probabilities, argmax, final choice."""
        import pandas as pd
        rows = []
        for (n, opts), p, r, c in zip(self.space.nodes, self.probs, self.raw_choices, self.choices):
            rows.append({"node": n, "options": ["id" if o == 0 else o for o in opts],
                         "probs": [round(float(v), 3) for v in p], "argmax": r, "chosen": c})
        return pd.DataFrame(rows).set_index("node")

    def history_table(self):
        import pandas as pd
        return pd.DataFrame(self.history)

    def to_dict(self) -> dict:
        return {"name": self.name, "targets": dict(self.targets),
                "penalty_weights": dict(self.penalty_weights),
                "probs": [list(map(float, p)) for p in self.probs], "choices": list(self.choices),
                "raw_choices": list(self.raw_choices), "repaired": self.repaired,
                "expected": {k: float(v) for k, v in self.expected.items()},
                "exact": dict(self.exact), "history": list(self.history),
                "seconds": self.seconds, "space": self.space.to_dict(),
                "arch": self.arch.to_json()}

    def summary(self) -> str:
        fit = self.fits_targets()
        lines = [f"DNAS {self.name}: choices {self.choices} "
                 f"({'identity = 0; ' if self.space.skip else ''}repaired {self.repaired} step(s)), "
                 f"{self.seconds:.0f} s"]
        for k in RESOURCES:
            if k in self.targets or k in self.exact:
                t = self.targets.get(k)
                lines.append(f"  {k:15s} exact {self.exact[k]:>12,.0f}  expected "
                             f"{float(self.expected[k]):>12,.0f}  target "
                             + (f"{t:>12,.0f}  {'ok' if fit[k] else 'OVER'}" if t else "      (none)"))
        return "\n".join(lines)

    __str__ = summary


def discretize(space: DNASSpace, probs, targets: dict | None = None, max_steps: int = 100):
    """Argmax of each node; with ``targets``, while the exact resources of the argmax
    architecture exceed a target, move the node whose next smaller option keeps the most
    probability to that option (a greedy repair; counted in the result). Returns
    ``(choices, raw_choices, repair_steps)``. Taught in 04-micronets-dnas."""
    raw = [int(opts[int(np.argmax(p))]) for (_, opts), p in zip(space.nodes, probs)]
    ch = list(raw)
    steps = 0
    if targets:
        while True:
            ex = exact_resources(space, ch)
            if all(ex[k] <= v for k, v in targets.items() if k in RESOURCES):
                break
            if steps >= max_steps:
                raise ValueError(f"discretize: {max_steps} repair steps did not meet targets "
                                 f"{targets}; raise max_steps")
            best = None
            for i, ((_, opts), p) in enumerate(zip(space.nodes, probs)):
                j = opts.index(ch[i])
                if j == 0:
                    continue
                score = float(p[j - 1])
                if best is None or score > best[0]:
                    best = (score, i, opts[j - 1])
            if best is None:
                raise ValueError(f"no architecture in the space meets targets {targets}")
            ch[best[1]] = int(best[2])
            steps += 1
    return ch, raw, steps


def search(space: DNASSpace, data, targets: dict, *, epochs: int = 10,
           penalty_weights: dict | None = None, lr: float = 3e-3, arch_lr: float = 0.05,
           tau: tuple = (3.0, 0.3), batch_size: int = 64, seed: int = 0,
           net: Supernet | None = None, init_state=None, repair: bool = True,
           name: str = "", progress: bool = True) -> SearchResult:
    """Joint DNAS: every batch updates the supernet weights (Adam, ``lr``) and the
    architecture logits (Adam, ``arch_lr``) on cross-entropy of a Gumbel-softmax
    sample (temperature annealed geometrically from ``tau[0]`` to ``tau[1]``) plus
    ``sum_r lambda_r * relu(E[r] / target_r - 1)`` over the ``targets``
    (see :func:`expected_resources`; ``penalty_weights`` lambda per resource, default 5).
    ``net`` / ``init_state``: a supernet and weights to start from (shared warm-up);
    the logits start at 0. Then :func:`discretize` (with repair). Taught in
    04-micronets-dnas."""
    import keras
    import tensorflow as tf
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    bad = [k for k in targets if k not in RESOURCES]
    if bad:
        raise ValueError(f"targets keys must be among {RESOURCES}, got {bad}")
    lam = {k: 5.0 for k in RESOURCES}
    if penalty_weights:
        bad = [k for k in penalty_weights if k not in RESOURCES]
        if bad or any(v < 0 for v in penalty_weights.values()):
            raise ValueError(f"penalty_weights: keys among {RESOURCES}, values >= 0; got {penalty_weights}")
        lam.update({k: float(v) for k, v in penalty_weights.items()})
    t0 = time.time()
    net = net or Supernet(space, seed=seed)
    if init_state is not None:
        net.set_state(init_state)
    for a in net.alpha:
        a.assign(tf.zeros_like(a))
    key = (float(lr), float(arch_lr), int(seed))
    cache = getattr(net, "_search_step", None)
    if cache is None or cache[0] != key:
        # one traced step per supernet, reused by every search on it (targets are inputs)
        w_opt = keras.optimizers.Adam(lr)
        a_opt = keras.optimizers.Adam(arch_lr)
        gen = tf.random.Generator.from_seed(seed + 1)
        ce_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function(reduce_retracing=True)
        def step(x, y, t, tvec, lvec):
            with tf.GradientTape() as tape:
                gates = [_gumbel(a, t, gen) for a in net.alpha]
                ce = ce_fn(y, net(x, gates, training=True))
                r = expected_resources(space, [tf.nn.softmax(a) for a in net.alpha], backend="tf")
                pen = tf.reduce_sum(lvec * tf.nn.relu(tf.stack([r[k] for k in RESOURCES]) / tvec - 1.0))
                loss = ce + pen
            ws = net.weights
            grads = tape.gradient(loss, ws + net.alpha)
            w_opt.apply_gradients(zip(grads[:len(ws)], ws))
            a_opt.apply_gradients(zip(grads[len(ws):], net.alpha))
            return loss, ce, pen

        net._search_step = cache = (key, step, w_opt, a_opt, gen)
    _, step, w_opt, a_opt, gen = cache
    for opt in (w_opt, a_opt):      # fresh optimiser state for every search
        for v in opt.variables:
            if "learning_rate" not in v.path:
                v.assign(tf.zeros_like(v))
    gen.reset_from_seed(seed + 1)
    tvec = tf.constant([float(targets.get(k, np.inf)) for k in RESOURCES], tf.float32)
    lvec = tf.constant([lam[k] if k in targets else 0.0 for k in RESOURCES], tf.float32)
    rng = np.random.default_rng(seed)
    hist = []
    it = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"DNAS {name}".strip())
    for e in it:
        t = float(tau[0] * (tau[1] / tau[0]) ** (e / max(epochs - 1, 1)))
        vals = [step(data.x_train[b], data.y_train[b], tf.constant(t, tf.float32), tvec, lvec)
                for b in _epoch_batches(len(data.x_train), batch_size, rng)]
        vals = np.array([[float(v) for v in row] for row in vals])
        probs = net.probs()
        ex = expected_resources(space, probs)
        hist.append({"epoch": e + 1, "tau": t, "loss": vals[:, 0].mean(), "ce": vals[:, 1].mean(),
                     "penalty": vals[:, 2].mean(),
                     **{f"E_{k}": float(ex[k]) for k in RESOURCES},
                     "argmax": json.dumps([int(o[int(np.argmax(p))])
                                           for (_, o), p in zip(space.nodes, probs)])})
    probs = net.probs()
    ch, raw, steps = discretize(space, probs, targets if repair else None)
    ex = expected_resources(space, probs)
    return SearchResult(space, dict(targets), lam, probs, ch, raw, steps,
                        {k: float(v) for k, v in ex.items()}, exact_resources(space, ch), hist,
                        time.time() - t0, name)


# ======================================================================= latency study

#: Backbones of the latency-proxy study: name -> default input shape, classes.
BACKBONES = {"dscnn": ((49, 10, 1), 12), "mobilenetv2": ((32, 32, 3), 10)}


def sample_backbone(backbone: str, n: int, seed: int = 0, *, input_shape=None, num_classes=None,
                    max_width: int = 64, block_widths=(0.2, 0.3, 0.4, 0.5),
                    block_resolutions=(24, 28, 32)) -> list:
    """``n`` architectures drawn uniformly from one backbone's space (MicroNets' uniform
    prior). ``"dscnn"``: :func:`dscnn_space` choices (widths 8..``max_width``, identity
    blocks); ``"mobilenetv2"``: :class:`helpers.spaces.BlockArch` with widths from
    ``block_widths`` and resolutions from ``block_resolutions`` (kernels, expansions,
    depths from the default block space; the input is resolution x resolution x 3, so
    the model has no resize operator, unless ``input_shape`` is given). Returns
    ``[(arch, input_shape, num_classes)]``.
    Taught in 04-micronets-dnas."""
    from helpers import spaces as S
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {backbone!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    shp, nc = BACKBONES[backbone]
    shp = tuple(input_shape or shp)
    nc = int(num_classes or nc)
    rng = np.random.default_rng(seed)
    out = []
    if backbone == "dscnn":
        sp = dscnn_space(shp, nc, max_width=max_width, step=8)
        for _ in range(n):
            out.append((to_arch(sp, random_choices(sp, rng)), shp, nc))
    else:
        bs = S.BlockSpace(widths=tuple(block_widths), resolutions=tuple(block_resolutions))
        for _ in range(n):
            a = S.BlockArch.random(rng, bs)
            # the input has the sampled resolution (no resize operator in the model)
            out.append((a, (a.resolution, a.resolution, shp[2]) if input_shape is None else shp, nc))
    return out


def emulate_latency(tflite_bytes, target, x=None, seed: int = 0) -> dict:
    """Emulated inference of an int8 model on ``target`` (:func:`helpers.emulator.run`):
    instructions (exact), cycles and latency (estimated from the core's timing table),
    measured SRAM and flash of the C build, and per operator type ``instr_<OPCODE>`` /
    ``macs_<OPCODE>``. Taught in 04-micronets-dnas."""
    from helpers import emulator, tflite_io
    m = tflite_io.read(tflite_bytes)
    shape = m.tensors[m.inputs[0]].shape
    if x is None:
        x = np.random.default_rng(seed).integers(-128, 128, size=int(np.prod(shape))).astype(np.int8)
    r = emulator.run(tflite_bytes, x, target=target)
    out = {"instructions": int(r.instructions), "cycles": float(r.cycles),
           "latency_ms": float(r.latency_ms), "emu_sram_bytes": int(r.sram_bytes),
           "emu_flash_bytes": int(r.flash_bytes), "core": r.core}
    for o in r.per_op:      # per operator type: instructions and MACs (where the time goes)
        out[f"instr_{o['kind']}"] = out.get(f"instr_{o['kind']}", 0) + int(o["instructions"])
        out[f"macs_{o['kind']}"] = out.get(f"macs_{o['kind']}", 0) + int(o["macs"])
    return out


def _int8_random(arch, shape, nc, seed):
    from helpers import deploy, spaces as S
    model = S.build(arch, shape, nc, seed=seed)
    deploy.randomize_weights(model, seed)
    rep = np.random.default_rng(seed).normal(0, 1, (8,) + tuple(shape)).astype(np.float32)
    return deploy.to_tflite_int8(model, rep)


@dataclass
class LatencyStudy:
    """Emulated latencies of sampled models: one row per (model, target).
    Taught in 04-micronets-dnas."""

    rows: list

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    def fit(self):
        return fit_latency(self)

    def cost_per_mac(self):
        """Instructions per MAC by backbone, target and operator type (summed over the
        sampled models): why one backbone runs more ops per second than another."""
        import pandas as pd
        df = self.table()
        kinds = sorted(c[len("instr_"):] for c in df.columns if c.startswith("instr_"))
        rows = []
        for (bb, t), g in df.groupby(["backbone", "target"]):
            r = {"backbone": bb, "target": t}
            for k in kinds:
                m = g.get(f"macs_{k}", pd.Series(dtype=float)).fillna(0).sum()
                if m > 0:
                    r[k] = g[f"instr_{k}"].fillna(0).sum() / m
                    r[f"{k} MAC share"] = m / g["macs"].sum()
            rows.append(r)
        return pd.DataFrame(rows).set_index(["backbone", "target"])

    def to_dict(self) -> dict:
        return {"rows": list(self.rows)}

    def summary(self) -> str:
        df = self.table()
        if df.empty:
            return "latency study: no rows"
        return (f"latency study: {df['model'].nunique()} models x {df['target'].nunique()} targets, "
                f"backbones {sorted(df['backbone'].unique())}")

    __str__ = summary


def latency_study(samples: dict, targets=("stm32f446re", "stm32f746zg"), *, seed: int = 0,
                  store=None, progress: bool = True) -> LatencyStudy:
    """Emulate every sampled model on every target. ``samples``: ``{backbone: list from
    sample_backbone}``. Each model gets random (seeded) weights, is converted to int8
    (:func:`helpers.deploy.to_tflite_int8`) and run by :func:`emulate_latency`. With
    ``store`` (a folder) every finished row is appended to ``store/latency.jsonl`` and
    reused on a rerun (resume). Taught in 04-micronets-dnas."""
    from helpers import resources
    from helpers import targets as T
    tnames = [T.get(t).name for t in targets]
    done = {}
    path = None
    if store is not None:
        path = Path(store) / "latency.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    done[(r["arch_hash"], r["target"], r["seed"])] = r
    jobs = [(bb, i, a, shp, nc) for bb, lst in samples.items() for i, (a, shp, nc) in enumerate(lst)]
    it = jobs
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(jobs, desc="emulate")
    rows = []
    for bb, i, a, shp, nc in it:
        s = seed + i
        todo = [t for t in tnames if (a.hash, t, s) not in done]
        if todo:
            tfl = _int8_random(a, shp, nc, s)
            macs = resources.profile(tfl, table=False).macs
            for t in todo:
                r = {"backbone": bb, "model": f"{bb}-{i}", "arch_hash": a.hash, "seed": s,
                     "target": t, "macs": int(macs), "ops": 2 * int(macs), "tflite_bytes": len(tfl),
                     **emulate_latency(tfl, t, seed=s)}
                done[(a.hash, t, s)] = r
                if path is not None:
                    with path.open("a") as f:
                        f.write(json.dumps(r) + "\n")
        rows += [done[(a.hash, t, s)] for t in tnames]
    return LatencyStudy(rows)


@dataclass
class LatencyFit:
    """``latency_ms = a * Mops + b`` per (backbone, target): r², residual spread,
    Mops/s (= 1000 / a, the marginal throughput) and mean ops / latency."""

    rows: list

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows).set_index(["backbone", "target"])

    def get(self, backbone: str, target: str) -> dict:
        """The fit for ``backbone`` on ``target``; a target that was not emulated uses the
        fit of an emulated one with the same core and clock (e.g. F767ZI = F746ZG)."""
        for r in self.rows:
            if r["backbone"] == backbone and r["target"] == target:
                return r
        from helpers import targets as T
        try:
            want = T.get(target)
            for r in self.rows:
                t = T.get(r["target"])
                if r["backbone"] == backbone and (t.core, t.clock_hz) == (want.core, want.clock_hz):
                    return r
        except KeyError:
            pass
        raise KeyError(f"no fit for backbone={backbone!r}, target={target!r}; have "
                       f"{[(r['backbone'], r['target']) for r in self.rows]}")

    def ops_for_latency(self, backbone: str, target: str, latency_ms: float) -> float:
        """Ops the fitted model allows within ``latency_ms`` (the DNAS ops target)."""
        r = self.get(backbone, target)
        if latency_ms <= r["b_ms"]:
            raise ValueError(f"latency_ms={latency_ms} is below the fit's intercept {r['b_ms']:.2f} ms")
        return (latency_ms - r["b_ms"]) / r["a_ms_per_mop"] * 1e6

    def to_dict(self) -> dict:
        return {"rows": list(self.rows)}

    def summary(self) -> str:
        return "\n".join(f"{r['backbone']:12s} {r['target']:12s} r²={r['r2']:.4f}  "
                         f"latency = {r['a_ms_per_mop']:.3f} ms/Mop x ops + {r['b_ms']:.3f} ms, "
                         f"residual sd {r['resid_sd_pct']:.1f} %, {r['mops_per_s']:.1f} Mops/s "
                         f"(n={r['n']})" for r in self.rows)

    __str__ = summary


def fit_latency(study) -> LatencyFit:
    """Least-squares ``latency = a * ops + b`` per backbone and target of a
    :class:`LatencyStudy` (or its table). Taught in 04-micronets-dnas."""
    df = study.table() if hasattr(study, "table") else study
    rows = []
    for (bb, t), g in df.groupby(["backbone", "target"], sort=True):
        x = g["ops"].to_numpy(float) / 1e6
        y = g["latency_ms"].to_numpy(float)
        if len(g) >= 2 and np.ptp(x) > 0:
            a, b = np.polyfit(x, y, 1)
        else:
            a, b = (float(y.mean() / x.mean()) if x.mean() else float("nan")), 0.0
        pred = a * x + b
        res = y - pred
        ss = float(np.sum((y - y.mean()) ** 2))
        r2 = 1 - float(np.sum(res ** 2)) / ss if ss > 0 else float("nan")
        rows.append({"backbone": bb, "target": t, "n": int(len(g)), "a_ms_per_mop": float(a),
                     "b_ms": float(b), "r2": r2, "resid_sd_ms": float(res.std()),
                     "resid_sd_pct": float(100 * np.std(res / y)),
                     "max_abs_resid_pct": float(100 * np.max(np.abs(res / y))),
                     "mops_per_s": float(1000 / a) if a > 0 else float("nan"),
                     "mean_mops_per_s": float(np.mean(x / y * 1000))})
    return LatencyFit(rows)


# ====================================================================== retrain + deploy

def retrain_and_deploy(arch, data, target, *, epochs: int = 10, lr: float = 3e-3, seed: int = 0,
                       n_representative: int = 256, max_seconds: float | None = None,
                       progress: bool = True) -> dict:
    """Train a discrete architecture from scratch (:func:`helpers.train.fit`, Adam at
    ``lr``), convert it to int8, measure it in TFLite-Micro and on the emulated target.

    Returns a JSON-able dict: ``val_accuracy_float``, ``test_accuracy_int8`` (the int8
    file in the TFLite-Micro interpreter on the whole test split), ``arena_total_bytes`` /
    ``arena_head_bytes`` / ``arena_tail_bytes`` (TFLM's RecordingMicroAllocator; tail on a
    64-bit host), ``tflite_bytes`` (file size = flash of the model), ``macs`` / ``ops``
    (from the file), the emulated ``latency_ms`` / ``instructions`` / ``emu_sram_bytes``
    / ``emu_flash_bytes`` on ``target``, the target's ``sram_budget`` /
    ``flash_budget`` (TFLM overhead reserved) and ``fits`` (measured arena total and file
    size within them); plus ``train_seconds``. Taught in 04-micronets-dnas."""
    from helpers import deploy, resources, spaces as S, train
    from helpers import targets as T
    t = target if isinstance(target, T.Target) else T.get(target, reserve="tflm")
    t0 = time.time()
    model = S.build(arch, data.input_shape, data.num_classes, seed=seed)
    tr = train.fit(model, data, epochs, lr=lr, seed=seed, max_seconds=max_seconds, progress=progress)
    tfl = deploy.to_tflite_int8(model, data.x_train[:n_representative])
    arena = deploy.measure_arena(tfl)
    pred = deploy.tflm_predict(tfl, data.x_test)
    acc8 = float(np.mean(np.argmax(pred, axis=1) == data.y_test))
    prof = resources.profile(tfl, table=False)
    emu = emulate_latency(tfl, t.name, seed=seed)
    out = {"arch": arch.to_json(), "target": t.name, "val_accuracy_float": tr.val_accuracy[-1],
           "test_accuracy_int8": acc8, "arena_total_bytes": arena.total,
           "arena_head_bytes": arena.head, "arena_tail_bytes": arena.tail,
           "tflite_bytes": len(tfl), "macs": int(prof.macs), "ops": 2 * int(prof.macs),
           **emu, "sram_budget": t.sram_budget, "flash_budget": t.flash_budget,
           "fits_sram": arena.total <= t.sram_budget, "fits_flash": len(tfl) <= t.flash_budget,
           "epochs_run": tr.epochs_run, "train_seconds": tr.wall_seconds,
           "seconds": time.time() - t0}
    out["fits"] = bool(out["fits_sram"] and out["fits_flash"])
    out["tflite"] = tfl  # the deployed bytes (helpers.save_model hands them to 07-comparison)
    return out

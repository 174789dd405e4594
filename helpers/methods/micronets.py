"""MicroNets-style differentiable NAS: a DS-CNN supernet, expected-resource penalties, S/M/L models.

Taught in 04-micronets-dnas.

The latency proxy (op count vs emulated latency) is :mod:`helpers.methods.micronets_latency`.

**DNAS** (MicroNets Sec. 5, FBNet / FBNetV2-style relaxation): a supernet over a
DS-CNN backbone (:class:`DNASSpace`: a stem convolution, ``n_blocks`` depthwise-
separable blocks, global average pooling, classifier) with one *decision node* per
searched layer: the stem's width, and for each block its pointwise width or, for
stride-1 blocks, *identity* (the block is skipped: depth search). Widths are
multiples of ``step`` (4 or 8). Every layer is computed at the maximum width and
masked to the chosen one (channel masking), the choice relaxed with Gumbel-softmax
(:class:`DNASSupernet`). The loss adds penalties on the *expected* resources beyond
their targets: model size (int8 weights + int32 biases + quantisation parameters),
working memory (SpArSe: max over operators of input + output bytes, 16-byte
aligned, + kernel scratch) and ops, each computed exactly from the decision
probabilities (:func:`expected_resources`): channel counts are carried as full
probability vectors through the network, so for a one-hot choice the expectation *is*
the exact resource of that architecture (tested against :mod:`helpers.resources`).
:func:`discretize` takes the argmax (optionally repairing a violated target),
:func:`to_arch` gives the discrete :class:`helpers.spaces.GranularArch`.

May import: :mod:`helpers.spaces`, :mod:`helpers.targets`, :mod:`helpers.resources`,
:mod:`helpers.engine`, :mod:`helpers.deploy`, :mod:`helpers.train`, :mod:`helpers.methods.micronets_space`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from helpers import deploy, resources, tflite_io, train
from helpers import spaces as S
from helpers import targets as T
from helpers.engine import emulator
from helpers.methods.micronets_space import (RESOURCES, DNASSpace, dscnn_space, exact_resources,
                                             expected_resources, one_hot, random_choices,
                                             resource_targets, to_arch)

__all__ = ["DNASSpace", "dscnn_space", "to_arch", "random_choices", "one_hot", "binding_limit", "seed_accuracies",
           "expected_resources", "exact_resources", "RESOURCES", "DNASSupernet", "DNASResult",
           "search", "warmup", "discretize", "fill_up", "meet_latency", "resource_targets", "emulate_latency", "retrain_and_deploy"]

# ============================================================================== supernet

class DNASSupernet:
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


def warmup(net: DNASSupernet, data, epochs: int, *, lr: float = 3e-3, batch_size: int = 64,
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
class DNASResult:
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
    filled: int = 0

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
                "raw_choices": list(self.raw_choices), "repaired": self.repaired, "filled": self.filled,
                "expected": {k: float(v) for k, v in self.expected.items()},
                "exact": dict(self.exact), "history": list(self.history),
                "seconds": self.seconds, "space": self.space.to_dict(),
                "arch": self.arch.to_json()}

    def summary(self) -> str:
        fit = self.fits_targets()
        lines = [f"DNAS {self.name}: choices {self.choices} "
                 f"({'identity = 0; ' if self.space.skip else ''}repaired {self.repaired} step(s)" + (f", filled {self.filled}" if self.filled else "") + "), "
                 f"{self.seconds:.0f} s"]
        for k in RESOURCES:
            if k in self.targets or k in self.exact:
                t = self.targets.get(k)
                lines.append(f"  {k:15s} exact {self.exact[k]:>12,.0f}  expected "
                             f"{float(self.expected[k]):>12,.0f}  target "
                             + (f"{t:>12,.0f}  {'ok' if fit[k] else 'OVER'}" if t else "      (none)"))
        return "\n".join(lines)

    __str__ = summary


def _repair_step(space: DNASSpace, probs, ch) -> list | None:
    """One greedy repair step: the node whose next smaller option keeps the most probability
    moves to it. None when every node is already at its smallest option."""
    best = None
    for i, ((_, opts), p) in enumerate(zip(space.nodes, probs)):
        j = opts.index(ch[i])
        if j == 0:
            continue
        score = float(p[j - 1])
        if best is None or score > best[0]:
            best = (score, i, opts[j - 1])
    if best is None:
        return None
    out = list(ch)
    out[best[1]] = int(best[2])
    return out


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
            ch = _repair_step(space, probs, ch)
            if ch is None:
                raise ValueError(f"no architecture in the space meets targets {targets}")
            steps += 1
    return ch, raw, steps


def fill_up(space: DNASSpace, probs, choices, targets: dict) -> tuple[list, int]:
    """The greedy repair run backwards: while some node can move to its next larger option
    and the network still meets every target (exact resources), move the node whose next
    larger option has the most probability. The argmax of independent nodes can undershoot
    its targets far (every block near 50 % identity drops them all); this spends the budget
    left in the order the search learned. Returns ``(choices, fill_steps)``. Taught in
    04-micronets-dnas."""
    ch, steps = list(choices), 0
    while True:
        cands = []
        for i, ((_, opts), p) in enumerate(zip(space.nodes, probs)):
            j = opts.index(ch[i])
            if j + 1 < len(opts):
                cands.append((float(p[j + 1]), i, opts[j + 1]))
        for _, i, o in sorted(cands, key=lambda c: (-c[0], c[1])):
            trial = ch[:i] + [int(o)] + ch[i + 1:]
            ex = exact_resources(space, trial)
            if all(ex[k] <= v for k, v in targets.items() if k in RESOURCES):
                ch, steps = trial, steps + 1
                break
        else:
            return ch, steps


def meet_latency(result: DNASResult, target, latency_ms: float, *, seed: int = 0,
                 max_steps: int = 30) -> list[dict]:
    """Measure, before any retraining, the emulated latency of ``result``'s discrete
    architecture on ``target`` (int8 with random weights: the kernels' instruction counts do
    not depend on the weight values) and, while it exceeds ``latency_ms``, take one more greedy
    repair step (:func:`discretize`'s rule) and measure again. The ops target from a latency
    fit is a proxy; this makes the latency limit a measured one. Updates ``result.choices``,
    ``.repaired`` and ``.exact`` in place; returns one row per emulated architecture
    (``choices``, ``latency_ms``, ``ops``). Taught in 04-micronets-dnas."""
    if not latency_ms > 0:
        raise ValueError(f"latency_ms must be > 0, got {latency_ms!r}")
    space, ch, log = result.space, list(result.choices), []
    while True:
        tfl = _int8_random(to_arch(space, ch), space.input_shape, space.num_classes, seed)
        lat = emulate_latency(tfl, target, seed=seed)["latency_ms"]
        log.append({"choices": list(ch), "latency_ms": lat, "ops": exact_resources(space, ch)["ops"]})
        if lat <= latency_ms:
            break
        nxt = _repair_step(space, result.probs, ch) if len(log) <= max_steps else None
        if nxt is None:
            raise ValueError(f"meet_latency: {len(log)} architectures measured, the last at {lat:.1f} ms, "
                             f"none within {latency_ms} ms on {target}")
        ch = nxt
    result.repaired += len(log) - 1
    result.choices, result.exact = ch, exact_resources(space, ch)
    return log


def search(space: DNASSpace, data, targets: dict, *, epochs: int = 10,
           penalty_weights: dict | None = None, lr: float = 3e-3, arch_lr: float = 0.05,
           tau: tuple = (3.0, 0.3), batch_size: int = 64, seed: int = 0,
           net: DNASSupernet | None = None, init_state=None, repair: bool = True,
           fill: bool = False, name: str = "", progress: bool = True) -> DNASResult:
    """Joint DNAS: every batch updates the supernet weights (Adam, ``lr``) and the
    architecture logits (Adam, ``arch_lr``) on cross-entropy of a Gumbel-softmax
    sample (temperature annealed geometrically from ``tau[0]`` to ``tau[1]``) plus
    ``sum_r lambda_r * relu(E[r] / target_r - 1)`` over the ``targets``
    (see :func:`expected_resources`; ``penalty_weights`` lambda per resource, default 5).
    ``net`` / ``init_state``: a supernet and weights to start from (shared warm-up);
    the logits start at 0. Then :func:`discretize` (with repair) and, with ``fill``,
    :func:`fill_up` (counted in ``filled``). Taught in 04-micronets-dnas."""
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
    net = net or DNASSupernet(space, seed=seed)
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
    ch, filled = fill_up(space, probs, ch, targets) if fill else (ch, 0)
    ex = expected_resources(space, probs)
    return DNASResult(space, dict(targets), lam, probs, ch, raw, steps,
                        {k: float(v) for k, v in ex.items()}, exact_resources(space, ch), hist,
                        time.time() - t0, name, filled)


# ======================================================================= emulated latency

def emulate_latency(tflite_bytes, target, x=None, seed: int = 0) -> dict:
    """Emulated inference of an int8 model on ``target`` (:func:`helpers.engine.emulator.run`):
    instructions (exact), cycles and latency (estimated from the core's timing table),
    measured SRAM and flash of the C build, and per operator type ``instr_<OPCODE>`` /
    ``macs_<OPCODE>``. Taught in 04-micronets-dnas."""
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
    model = S.build(arch, shape, nc, seed=seed)
    deploy.randomize_weights(model, seed)
    rep = np.random.default_rng(seed).normal(0, 1, (8,) + tuple(shape)).astype(np.float32)
    return deploy.to_tflite_int8(model, rep)


# ====================================================================== retrain + deploy

def _train_int8(arch, data, epochs, *, lr, seed, n_representative, max_seconds=None, progress=False,
                cosine=False):
    """Train ``arch`` from scratch (Adam at ``lr``, with ``cosine`` decaying to 0), convert to
    int8: (training record, .tflite, TFLM test accuracy)."""
    model = S.build(arch, data.input_shape, data.num_classes, seed=seed)
    tr = train.fit(model, data, epochs, lr=lr, seed=seed, max_seconds=max_seconds, progress=progress,
                   cosine=cosine)
    tfl = deploy.to_tflite_int8(model, data.x_train[:n_representative])
    acc8 = float(np.mean(np.argmax(deploy.tflm_predict(tfl, data.x_test), axis=1) == data.y_test))
    return tr, tfl, acc8


def retrain_and_deploy(arch, data, target, *, epochs: int = 10, lr: float = 3e-3, seed: int = 0,
                       n_representative: int = 256, max_seconds: float | None = None,
                       progress: bool = True, cosine: bool = False) -> dict:
    """Train a discrete architecture from scratch (:func:`helpers.train.fit`, Adam at
    ``lr``; with ``cosine`` the rate decays to 0 along a cosine over ``epochs``), convert it to int8, measure it in TFLite-Micro and on the emulated target.

    Returns a JSON-able dict: ``val_accuracy_float``, ``test_accuracy_int8`` (the int8
    file in the TFLite-Micro interpreter on the whole test split), ``arena_total_bytes`` /
    ``arena_head_bytes`` / ``arena_tail_bytes`` (TFLM's RecordingMicroAllocator; tail on a
    64-bit host), ``tflite_bytes`` (file size = flash of the model), ``macs`` / ``ops``
    (from the file), the emulated ``latency_ms`` / ``instructions`` / ``emu_sram_bytes``
    / ``emu_flash_bytes`` on ``target``, the target's ``sram_budget`` /
    ``flash_budget`` (TFLM overhead reserved) and ``fits`` (measured arena total and file
    size within them); plus ``train_seconds``. Taught in 04-micronets-dnas."""
    t = target if isinstance(target, T.Target) else T.get(target, reserve="tflm")
    t0 = time.time()
    tr, tfl, acc8 = _train_int8(arch, data, epochs, lr=lr, seed=seed, n_representative=n_representative,
                                max_seconds=max_seconds, progress=progress, cosine=cosine)
    arena = deploy.measure_arena(tfl)
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


def binding_limit(measured: dict, latency_ms: float | None = None) -> tuple[str, float]:
    """The board limit a deployed model comes closest to: ``(name, % used)`` over
    ``"sram"`` (measured TFLM arena / SRAM budget), ``"flash"`` (.tflite / flash budget) and,
    with ``latency_ms``, ``"latency"`` (emulated latency / that target). ``measured``: a
    :func:`retrain_and_deploy` dict. Taught in 04-micronets-dnas."""
    use = {"sram": measured["arena_total_bytes"] / measured["sram_budget"],
           "flash": measured["tflite_bytes"] / measured["flash_budget"]}
    if latency_ms is not None:
        if not latency_ms > 0:
            raise ValueError(f"latency_ms must be > 0, got {latency_ms!r}")
        use["latency"] = measured["latency_ms"] / float(latency_ms)
    name = max(use, key=use.get)
    return name, float(100 * use[name])


def seed_accuracies(arch, data, *, epochs: int, seeds, lr: float = 3e-3, n_representative: int = 256,
                    progress: bool = False, cosine: bool = False) -> list[float]:
    """int8 test accuracy in TFLite-Micro of ``arch`` retrained from scratch once per seed
    (the recipe of :func:`retrain_and_deploy`, without its emulation): the sample behind an
    accuracy interval over seeds. Taught in 04-micronets-dnas."""
    return [_train_int8(arch, data, epochs, lr=lr, seed=int(s), n_representative=n_representative,
                        progress=progress, cosine=cosine)[2] for s in seeds]   # no seeds: an empty list

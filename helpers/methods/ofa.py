"""Once-for-All elastic supernet over the block space (TinyNAS stage 2).

One set of weights holds every network of a :class:`helpers.spaces.BlockSpace`
restricted to one width multiplier (the space TinyNAS stage 1 picked):

* **elastic kernel** 3/5/7: the 7x7 depthwise kernel is stored; a 5x5 kernel is its
  centre, passed through a learned 25x25 *kernel transformation* matrix shared by all
  channels of that layer, and a 3x3 kernel the centre of the transformed 5x5 through a
  9x9 matrix (OFA, Cai et al. 2020, Sec. 3.2);
* **elastic expansion** 3/4/6: the first ``cin * e`` expanded channels are used, after
  the channels have been **sorted by importance** (L1 norm of their projection
  weights, OFA's channel sorting) at the start of every expansion phase;
* **elastic depth** 2/3/4 per stage: the first ``d`` blocks of a stage run, the rest
  are skipped (they are residual, so skipping is the identity);
* **elastic resolution**: the input is resized to any resolution of the list.

Inside the supernet a subnet is expressed by masks (channel mask, kernel index,
block on/off), so one traced TensorFlow function per resolution serves every subnet.
Batch-norm statistics are never kept during training: for every subnet they are
**recalibrated** on training images before evaluation, as OFA does.
:meth:`Supernet.extract` builds the standalone ``spaces.build`` model of a subnet
and copies the sliced / transformed weights and recalibrated statistics into it (its
outputs equal the supernet's, tested).

Training is **progressive shrinking**: full network, then elastic kernel, then depth
(top two depths, then all), then expansion (top two, then all), with **in-place
distillation**: every step trains the full network on the labels and one sampled
subnet on the labels plus the full network's soft predictions. Each epoch is
checkpointed (``.npz``: weights, optimiser state, RNG state, history), so an
interrupted training resumes where it stopped.

:class:`AccuracyPredictor` (ridge regression or MLP on a one-hot encoding) is fitted
on subnets evaluated with inherited weights; the MCUNet evolution of
:mod:`helpers.search` then searches it under the target's SRAM and flash.

Taught in 05-once-for-all.

May import: :mod:`helpers.spaces`, :mod:`helpers.methods.ofa_predictor`. TensorFlow lazily.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import spaces
from helpers.methods.ofa_predictor import AccuracyPredictor, encode
from helpers.spaces import make_divisible

__all__ = ["Supernet", "Phase", "progressive_schedule", "no_ps_schedule", "SubnetSpace",
           "AccuracyPredictor", "encode", "TrainLog"]

BN_EPS = 1e-3  # keras.layers.BatchNormalization's default


# ============================================================================ schedule

@dataclass(frozen=True)
class Phase:
    """One training phase: the choices subnets are sampled from, for ``epochs`` epochs.

    ``sample=False`` trains the full network only (phase 1 of progressive shrinking).
    ``sort_channels``: sort expanded channels by importance when the phase starts.
    Taught in 05-once-for-all."""

    name: str
    epochs: int
    kernels: tuple
    expansions: tuple
    depths: tuple
    sample: bool = True
    sort_channels: bool = False


def progressive_schedule(space, epochs) -> list:
    """OFA progressive shrinking as a list of :class:`Phase`: full, elastic kernel,
    depth (top two, then all), expansion (top two, then all). ``epochs``: 6 ints (one
    per phase; 0 skips a phase). Taught in 05-once-for-all."""
    epochs = list(epochs)
    if len(epochs) != 6 or any(not isinstance(e, int) or e < 0 for e in epochs):
        raise ValueError(f"epochs must be 6 non-negative ints (full, kernel, depth-top2, "
                         f"depth-all, expand-top2, expand-all), got {epochs!r}")
    K, E, D = tuple(sorted(space.kernels)), tuple(sorted(space.expansions)), \
        tuple(sorted(space.depths))
    kmax, emax, dmax = (K[-1],), (E[-1],), (D[-1],)
    ph = [Phase("full", epochs[0], kmax, emax, dmax, sample=False),
          Phase("kernel", epochs[1], K, emax, dmax),
          Phase("depth-top2", epochs[2], K, emax, D[-2:]),
          Phase("depth-all", epochs[3], K, emax, D),
          Phase("expand-top2", epochs[4], K, E[-2:], D, sort_channels=True),
          Phase("expand-all", epochs[5], K, E, D, sort_channels=True)]
    return [p for p in ph if p.epochs > 0]


def no_ps_schedule(space, epochs) -> list:
    """The ablation: the same full-network warm-up, then every elastic dimension at once
    for the remaining epochs (``epochs`` as in :func:`progressive_schedule`; same total).
    Taught in 05-once-for-all."""
    ps = progressive_schedule(space, epochs)
    warm = [p for p in ps if p.name == "full"]
    rest = sum(p.epochs for p in ps if p.name != "full")
    out = list(warm)
    if rest:
        out.append(Phase("all-elastic", rest, tuple(sorted(space.kernels)),
                         tuple(sorted(space.expansions)), tuple(sorted(space.depths)),
                         sort_channels=True))
    return out


@dataclass
class TrainLog:
    """History of a supernet training: one row per epoch (phase, loss, seconds).
    Taught in 05-once-for-all.
    """

    rows: list = field(default_factory=list)

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    @property
    def seconds(self) -> float:
        return float(sum(r["seconds"] for r in self.rows))

    def summary(self) -> str:
        if not self.rows:
            return "no epochs trained"
        last = self.rows[-1]
        return (f"{len(self.rows)} epochs in {self.seconds:.0f} s; last phase {last['phase']}: "
                f"loss full {last['loss_full']:.3f}, subnet {last['loss_sub']:.3f}")

    __str__ = summary

    def to_dict(self) -> dict:
        return {"rows": list(self.rows)}


# ================================================================== subnet space adapter

class SubnetSpace:
    """The supernet's subnets as a search space for :mod:`helpers.search`
    (``random(rng)``, ``from_json``); architectures are BlockArch whose space has the
    supernet's single width and its resolutions. Taught in 05-once-for-all."""

    def __init__(self, block_space):
        self.space = block_space

    def random(self, rng):
        return spaces.BlockArch.random(rng, space=self.space)

    def from_json(self, s):
        return spaces.from_json(s) if isinstance(s, str) else spaces.from_dict(s)


# ============================================================================ supernet

def _glorot(rng, shape, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, size=shape).astype(np.float32)


class Supernet:
    """Elastic MobileNetV2 supernet (see the module docstring).

    ``space``: a :class:`helpers.spaces.BlockSpace` (its kernels / expansions / depths
    are the elastic choices); ``width``: the single width multiplier; ``resolutions``:
    the elastic input resolutions. ``directory``: where checkpoints go (None: no
    checkpoints). Taught in 05-once-for-all.
    """

    def __init__(self, space, width: float, resolutions, input_shape, num_classes, *,
                 seed: int = 0, directory=None, lr: float = 3e-3, kd_ratio: float = 1.0,
                 batch_size: int = 64):
        from dataclasses import replace
        if not isinstance(space, spaces.BlockSpace):
            raise ValueError(f"space must be a helpers.spaces.BlockSpace, got "
                             f"{type(space).__name__}")
        resolutions = tuple(sorted(int(r) for r in resolutions))
        if not resolutions or min(resolutions) < 4:
            raise ValueError(f"resolutions must be a non-empty list of ints >= 4, got "
                             f"{resolutions!r}")
        if not 0 < float(width) <= 4:
            raise ValueError(f"width must be in (0, 4], got {width!r}")
        if min(space.depths) < 1:
            raise ValueError(f"space.depths must be >= 1, got {space.depths}")
        if any(k % 2 == 0 for k in space.kernels):
            raise ValueError(f"space.kernels must be odd, got {space.kernels}")
        self.space = replace(space, widths=(float(width),), resolutions=resolutions)
        self.width = float(width)
        self.resolutions = resolutions
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.lr = float(lr)
        self.kd_ratio = float(kd_ratio)
        self.batch_size = int(batch_size)
        self.directory = Path(directory) if directory is not None else None
        self.kernels = tuple(sorted(space.kernels))
        self.kmax = self.kernels[-1]
        self.emax = max(space.expansions)
        self.dmax = max(space.depths)
        self.log = TrainLog()
        self._progress = {"done": []}  # finished (schedule tag, phase, epoch) keys
        self._fns = {}
        self._init_weights()

    # ------------------------------------------------------------------ structure
    def _init_weights(self):
        s = self.space
        rng = np.random.default_rng(self.seed)
        cin0 = self.input_shape[2]
        W = {}
        div = s.divisor
        c = make_divisible(s.stem[0] * self.width, div)
        W["stem"] = _glorot(rng, (3, 3, cin0, c), 9 * cin0, 9 * c)
        W["stem_bn_g"], W["stem_bn_b"] = np.ones(c, np.float32), np.zeros(c, np.float32)
        W["first_dw"] = _glorot(rng, (3, 3, c, 1), 9, 9)
        W["first_dw_bn_g"], W["first_dw_bn_b"] = np.ones(c, np.float32), np.zeros(c, np.float32)
        c1 = make_divisible(s.first_channels * self.width, div)
        W["first_project"] = _glorot(rng, (1, 1, c, c1), c, c1)
        W["first_project_bn_g"] = np.ones(c1, np.float32)
        W["first_project_bn_b"] = np.zeros(c1, np.float32)
        self.first_add = c1 == c
        self.blocks = []  # dicts: name, stage, index, cin, cout, stride, residual, cexp
        x = c1
        for si, (base, stride) in enumerate(s.stages):
            cout = make_divisible(base * self.width, div)
            for bi in range(self.dmax):
                cin = x
                st = stride if bi == 0 else 1
                res = st == 1 and cin == cout
                if bi >= min(s.depths) and not res:
                    raise ValueError("elastic depth needs residual blocks after the first "
                                     f"{min(s.depths)} of a stage")
                ce = cin * self.emax
                nm = f"s{si}b{bi}"
                W[nm + "_expand"] = _glorot(rng, (1, 1, cin, ce), cin, ce)
                W[nm + "_dw"] = _glorot(rng, (self.kmax, self.kmax, ce, 1), self.kmax ** 2,
                                        self.kmax ** 2)
                for k in self.kernels[:-1]:
                    W[nm + f"_T{k}"] = np.eye(k * k, dtype=np.float32)
                W[nm + "_project"] = _glorot(rng, (1, 1, ce, cout), ce, cout)
                for part, n in (("_expand", ce), ("_dw", ce), ("_project", cout)):
                    W[nm + part + "_bn_g"] = np.ones(n, np.float32)
                    W[nm + part + "_bn_b"] = np.zeros(n, np.float32)
                self.blocks.append({"name": nm, "stage": si, "index": bi, "cin": cin,
                                    "cout": cout, "stride": st, "residual": res, "cexp": ce})
                x = cout
        W["classifier"] = _glorot(rng, (x, self.num_classes), x, self.num_classes)
        W["classifier_b"] = np.zeros(self.num_classes, np.float32)
        self.names = list(W)
        self._np_init = W
        self._vars = None
        self.bn_names = (["stem", "first_dw", "first_project"] +
                         [b["name"] + p for b in self.blocks
                          for p in ("_expand", "_dw", "_project")])

    def _tf_vars(self):
        if self._vars is None:
            import tensorflow as tf
            self._vars = {n: tf.Variable(self._np_init[n], name=n) for n in self.names}
            self._m = {n: tf.Variable(np.zeros_like(self._np_init[n])) for n in self.names}
            self._v = {n: tf.Variable(np.zeros_like(self._np_init[n])) for n in self.names}
            self._t = tf.Variable(0.0)
        return self._vars

    def get_weights(self) -> dict:
        """Current weights as numpy arrays {name: array}."""
        if self._vars is None:
            return {k: v.copy() for k, v in self._np_init.items()}
        return {n: v.numpy() for n, v in self._vars.items()}

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self._np_init.values()))

    # ------------------------------------------------------------ configs and archs
    def full_arch(self, resolution: int | None = None):
        """The largest subnet (every block, largest kernel and expansion)."""
        r = max(self.resolutions) if resolution is None else int(resolution)
        return spaces.BlockArch(resolution=r, width=self.width, space=self.space,
                                stages=[[(self.emax, self.kmax)] * self.dmax
                                        for _ in self.space.stages])

    def sample_arch(self, rng, phase: Phase | None = None):
        """A random subnet within ``phase``'s choices (default: the whole space)."""
        if phase is None:
            return spaces.BlockArch.random(rng, space=self.space)
        r = int(rng.choice(self.resolutions))
        stages = [[(int(rng.choice(phase.expansions)), int(rng.choice(phase.kernels)))
                   for _ in range(int(rng.choice(phase.depths)))] for _ in self.space.stages]
        return spaces.BlockArch(resolution=r, width=self.width, stages=stages, space=self.space)

    def check_arch(self, arch):
        """Raise ValueError unless ``arch`` is a subnet of this supernet."""
        if getattr(arch, "space_name", "") != "block":
            raise ValueError(f"arch must be a BlockArch, got {type(arch).__name__}")
        if abs(float(arch.width) - self.width) > 1e-9:
            raise ValueError(f"arch width {arch.width} != supernet width {self.width}")
        if int(arch.resolution) not in self.resolutions:
            raise ValueError(f"arch resolution {arch.resolution}; allowed {self.resolutions}")
        if len(arch.stages) != len(self.space.stages):
            raise ValueError(f"arch has {len(arch.stages)} stages, supernet "
                             f"{len(self.space.stages)}")
        for st in arch.stages:
            if len(st) not in self.space.depths:
                raise ValueError(f"stage depth {len(st)}; allowed {self.space.depths}")
            for e, k in st:
                if e not in self.space.expansions or k not in self.kernels:
                    raise ValueError(f"block (expansion {e}, kernel {k}); allowed expansions "
                                     f"{self.space.expansions}, kernels {self.kernels}")
        if tuple(arch.space.stages) != tuple(self.space.stages) or \
                arch.space.stem != self.space.stem or \
                arch.space.first_channels != self.space.first_channels:
            raise ValueError("arch's macro-architecture (stem / stages) differs from the "
                             "supernet's")
        return arch

    def _cfg(self, arch):
        kidx, ech, act = [], [], []
        for b in self.blocks:
            st = arch.stages[b["stage"]]
            if b["index"] < len(st):
                e, k = st[b["index"]]
                kidx.append(self.kernels.index(k))
                ech.append(b["cin"] * e)
                act.append(1.0)
            else:
                kidx.append(len(self.kernels) - 1)
                ech.append(b["cexp"])
                act.append(0.0)
        return (np.asarray(kidx, np.int32), np.asarray(ech, np.int32),
                np.asarray(act, np.float32))

    # ---------------------------------------------------------------- forward pass
    def _kernels(self, V, name):
        """[len(kernels), kmax, kmax, C, 1]: every elastic kernel, zero-padded to kmax."""
        import tensorflow as tf
        out = {self.kmax: V[name + "_dw"]}
        cur = V[name + "_dw"]
        big = self.kmax
        for k in reversed(self.kernels[:-1]):
            o = (big - k) // 2
            crop = cur[o:o + k, o:o + k]                     # k, k, C, 1
            c = tf.shape(crop)[2]
            flat = tf.reshape(tf.transpose(crop, [2, 3, 0, 1]), [-1, k * k])  # C, k*k
            flat = tf.matmul(flat, V[name + f"_T{k}"], transpose_b=True)
            cur = tf.transpose(tf.reshape(flat, [c, 1, k, k]), [2, 3, 0, 1])
            out[k] = cur
            big = k
        padded = []
        for k in self.kernels:
            p = (self.kmax - k) // 2
            padded.append(tf.pad(out[k], [[p, p], [p, p], [0, 0], [0, 0]]))
        return tf.stack(padded)

    def _forward(self, V, x, kidx, ech, act, resolution, stats=None, collect=None,
                 kernels=None):
        """Logits of the subnet given by (kidx, ech, act) at ``resolution``.

        ``stats``: {bn name: (mean, var)} for inference; None: batch statistics
        (training), which are stored into ``collect`` when given."""
        import tensorflow as tf

        def bn(h, name):
            if stats is None:
                mean, var = tf.nn.moments(h, axes=[0, 1, 2])
                if collect is not None:
                    collect[name] = (mean, var)
            else:
                mean, var = stats[name]
            return tf.nn.batch_normalization(h, mean, var, V[name + "_bn_b"],
                                             V[name + "_bn_g"], BN_EPS)

        relu6 = lambda h: tf.clip_by_value(h, 0.0, 6.0)  # noqa: E731
        # resizing to the input's own size is the identity (half-pixel centres), so the
        # resize always runs and ``resolution`` can be a tensor: one trace serves all
        x = tf.image.resize(x, tf.stack([resolution, resolution]), method="bilinear",
                            antialias=False)
        h = tf.nn.conv2d(x, V["stem"], self.space.stem[1], "SAME")
        h = relu6(bn(h, "stem"))
        y = tf.nn.depthwise_conv2d(h, V["first_dw"], [1, 1, 1, 1], "SAME")
        y = relu6(bn(y, "first_dw"))
        y = tf.nn.conv2d(y, V["first_project"], 1, "SAME")
        y = bn(y, "first_project")
        h = h + y if self.first_add else y
        for i, b in enumerate(self.blocks):
            nm = b["name"]
            mask = tf.cast(tf.range(b["cexp"]) < ech[i], tf.float32)
            y = tf.nn.conv2d(h, V[nm + "_expand"], 1, "SAME")
            y = relu6(bn(y, nm + "_expand")) * mask
            kern = tf.gather(kernels[nm] if kernels else self._kernels(V, nm), kidx[i])
            s = b["stride"]
            y = tf.nn.depthwise_conv2d(y, kern, [1, s, s, 1], "SAME")
            y = relu6(bn(y, nm + "_dw")) * mask
            y = tf.nn.conv2d(y, V[nm + "_project"], 1, "SAME")
            y = bn(y, nm + "_project")
            if b["residual"]:
                h = h + act[i] * y
            else:
                h = y
        h = tf.reduce_mean(h, axis=[1, 2])
        return tf.matmul(h, V["classifier"]) + V["classifier_b"]

    def _signature(self):
        import tensorflow as tf
        n = len(self.blocks)
        return [tf.TensorSpec([None] + list(self.input_shape), tf.float32),
                tf.TensorSpec([n], tf.int32), tf.TensorSpec([n], tf.int32),
                tf.TensorSpec([n], tf.float32), tf.TensorSpec([], tf.int32)]

    def _fn(self, kind):
        """One traced function per kind ("full", "sub", "calib", "eval"); the subnet
        and the resolution are tensors, so no subnet ever retraces."""
        key = kind
        if key in self._fns:
            return self._fns[key]
        import tensorflow as tf
        V = self._tf_vars()
        names = self.names
        sig = self._signature()
        b1, b2, eps = 0.9, 0.999, 1e-7
        lr = self.lr
        kd = self.kd_ratio
        full = [tf.constant(a) for a in self._cfg(self.full_arch())]

        def ce(logits, y):
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

        def adam(loss, tape):
            grads = tape.gradient(loss, [V[n] for n in names])
            t = self._t.assign_add(1.0)
            b1p, b2p = tf.pow(b1, t), tf.pow(b2, t)
            for n, g in zip(names, grads):
                if g is None:
                    continue
                tf.raw_ops.ResourceApplyAdam(
                    var=V[n].handle, m=self._m[n].handle, v=self._v[n].handle,
                    beta1_power=b1p, beta2_power=b2p, lr=tf.constant(lr), beta1=tf.constant(b1),
                    beta2=tf.constant(b2), epsilon=tf.constant(eps), grad=g)

        if kind == "full":
            @tf.function(input_signature=sig + [tf.TensorSpec([None], tf.int64)])
            def f(x, kidx, ech, act, r, y):
                with tf.GradientTape() as tape:
                    lf = ce(self._forward(V, x, *full, r), y)
                adam(lf, tape)
                return lf, tf.constant(0.0)
        elif kind == "sub":
            @tf.function(input_signature=sig + [tf.TensorSpec([None], tf.int64)])
            def f(x, kidx, ech, act, r, y):
                with tf.GradientTape() as tape:
                    kern = {b["name"]: self._kernels(V, b["name"]) for b in self.blocks}
                    zf = self._forward(V, x, *full, r, kernels=kern)
                    lf = ce(zf, y)
                    zs = self._forward(V, x, kidx, ech, act, r, kernels=kern)
                    soft = tf.nn.softmax(tf.stop_gradient(zf))
                    ls = ce(zs, y) + kd * tf.reduce_mean(
                        tf.nn.softmax_cross_entropy_with_logits(soft, zs))
                    loss = lf + ls
                adam(loss, tape)
                return lf, ls
        elif kind == "calib":
            @tf.function(input_signature=sig)
            def f(x, kidx, ech, act, r):
                col = {}
                self._forward(V, x, kidx, ech, act, r, collect=col)
                return [col[n] for n in self.bn_names]
        elif kind == "eval":
            stat_sig = [(tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float32))
                        for _ in self.bn_names]

            @tf.function(input_signature=sig + [stat_sig])
            def f(x, kidx, ech, act, r, st):
                return self._forward(V, x, kidx, ech, act, r,
                                     stats=dict(zip(self.bn_names, st)))
        else:  # pragma: no cover
            raise AssertionError(kind)
        self._fns[key] = f
        return f

    # --------------------------------------------------------------- BN recalibration
    def calibrate(self, arch, x_calib, batch_size: int = 500) -> dict:
        """Batch-norm statistics of subnet ``arch`` over ``x_calib`` (OFA's BN
        recalibration): {bn name: (mean, var)} as numpy, averaged over batches of
        ``batch_size`` (mean of batch means; variance about the overall mean)."""
        self.check_arch(arch)
        cfg = self._cfg(arch) + (np.int32(arch.resolution),)
        f = self._fn("calib")
        x_calib = np.asarray(x_calib, np.float32)
        if len(x_calib) < 2:
            raise ValueError("x_calib needs at least 2 images")
        sums = None
        n_tot = 0
        for i in range(0, len(x_calib), batch_size):
            xb = x_calib[i:i + batch_size]
            out = f(xb, *cfg)
            n = len(xb)
            cur = [(m.numpy() * n, (v.numpy() + m.numpy() ** 2) * n) for m, v in out]
            sums = cur if sums is None else [(a + c, b + d) for (a, b), (c, d) in zip(sums, cur)]
            n_tot += n
        stats = {}
        for name, (s1, s2) in zip(self.bn_names, sums):
            mean = s1 / n_tot
            stats[name] = (mean.astype(np.float32),
                           np.maximum(s2 / n_tot - mean ** 2, 0).astype(np.float32))
        return stats

    def predict(self, arch, x, stats: dict, batch_size: int = 500) -> np.ndarray:
        """Logits of subnet ``arch`` with inherited weights and the given BN ``stats``."""
        self.check_arch(arch)
        cfg = self._cfg(arch) + (np.int32(arch.resolution),)
        f = self._fn("eval")
        st = [stats[n] for n in self.bn_names]
        x = np.asarray(x, np.float32)
        outs = [f(x[i:i + batch_size], *cfg, st).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.num_classes), np.float32)

    def evaluate(self, arch, x, y, x_calib) -> float:
        """Top-1 accuracy of ``arch`` with inherited weights after BN recalibration on
        ``x_calib``. Taught in 05-once-for-all."""
        stats = self.calibrate(arch, x_calib)
        return float(np.mean(self.predict(arch, x, stats).argmax(1) == np.asarray(y)))

    # --------------------------------------------------------------------- extraction
    def subnet_weights(self, arch, stats: dict) -> dict:
        """{keras layer name: [weights]} for ``spaces.build(arch, ...)``: sliced and
        kernel-transformed supernet weights plus the recalibrated BN statistics."""
        self.check_arch(arch)
        V = self._tf_vars()
        out = {}

        def bnw(name, n):
            m, v = stats[name]
            return [V[name + "_bn_g"].numpy()[:n], V[name + "_bn_b"].numpy()[:n], m[:n], v[:n]]

        out["stem"] = [V["stem"].numpy()]
        out["stem_bn"] = bnw("stem", V["stem"].shape[-1])
        out["first_dw"] = [V["first_dw"].numpy()]
        out["first_dw_bn"] = bnw("first_dw", V["first_dw"].shape[2])
        out["first_project"] = [V["first_project"].numpy()]
        out["first_project_bn"] = bnw("first_project", V["first_project"].shape[-1])
        for b in self.blocks:
            st = arch.stages[b["stage"]]
            if b["index"] >= len(st):
                continue
            e, k = st[b["index"]]
            nm, ce = b["name"], b["cin"] * e
            kern = self._kernels(V, nm)[self.kernels.index(k)].numpy()
            p = (self.kmax - k) // 2
            out[nm + "_expand"] = [V[nm + "_expand"].numpy()[:, :, :, :ce]]
            out[nm + "_expand_bn"] = bnw(nm + "_expand", ce)
            out[nm + "_dw"] = [kern[p:p + k, p:p + k, :ce, :]]
            out[nm + "_dw_bn"] = bnw(nm + "_dw", ce)
            out[nm + "_project"] = [V[nm + "_project"].numpy()[:, :, :ce, :]]
            out[nm + "_project_bn"] = bnw(nm + "_project", b["cout"])
        out["classifier"] = [V["classifier"].numpy(), V["classifier_b"].numpy()]
        return out

    def extract(self, arch, x_calib=None, stats: dict | None = None):
        """Standalone Keras model of subnet ``arch`` (``spaces.build``) carrying the
        inherited weights and BN statistics recalibrated on ``x_calib`` (or the given
        ``stats``). Taught in 05-once-for-all."""
        if stats is None:
            if x_calib is None:
                raise ValueError("extract needs x_calib (images for BN recalibration) or stats")
            stats = self.calibrate(arch, x_calib)
        model = spaces.build(arch, self.input_shape, self.num_classes)
        weights = self.subnet_weights(arch, stats)
        names = {l.name for l in model.layers}
        for lname, w in weights.items():
            if lname not in names:
                raise AssertionError(f"layer {lname} missing from spaces.build model")
            model.get_layer(lname).set_weights(w)
        return model

    # ----------------------------------------------------------------- channel sorting
    def sort_channels(self):
        """OFA channel sorting: reorder every block's expanded channels by the L1 norm
        of their projection weights (most important first), with their expand / depthwise
        weights, BN parameters and optimiser moments."""
        V = self._tf_vars()
        for b in self.blocks:
            nm = b["name"]
            imp = np.abs(V[nm + "_project"].numpy()).sum(axis=(0, 1, 3))
            order = np.argsort(-imp, kind="stable")
            for store in (self._vars, self._m, self._v):
                for n, ax in ((nm + "_expand", 3), (nm + "_expand_bn_g", 0),
                              (nm + "_expand_bn_b", 0), (nm + "_dw", 2), (nm + "_dw_bn_g", 0),
                              (nm + "_dw_bn_b", 0), (nm + "_project", 2)):
                    store[n].assign(np.take(store[n].numpy(), order, axis=ax))

    # --------------------------------------------------------------------- training
    def _ckpt_path(self, tag):
        return None if self.directory is None else self.directory / f"supernet-{tag}.npz"

    def _meta(self):
        return {"space": self.space.__repr__(), "width": self.width,
                "resolutions": list(self.resolutions), "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "seed": self.seed, "lr": self.lr,
                "kd_ratio": self.kd_ratio, "batch_size": self.batch_size}

    def save(self, path, extra: dict | None = None):
        """Write weights, optimiser state and training progress to ``path`` (atomic)."""
        V = self._tf_vars()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"w/{n}": V[n].numpy() for n in self.names}
        arrays.update({f"m/{n}": self._m[n].numpy() for n in self.names})
        arrays.update({f"v/{n}": self._v[n].numpy() for n in self.names})
        arrays["t"] = np.asarray(self._t.numpy())
        meta = {"meta": self._meta(), "progress": self._progress, "log": self.log.rows,
                **(extra or {})}
        arrays["json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    def load(self, path) -> dict:
        """Restore a checkpoint written by :meth:`save`; returns its metadata."""
        V = self._tf_vars()
        with np.load(path) as z:
            meta = json.loads(bytes(z["json"]).decode())
            if meta["meta"] != self._meta():
                raise ValueError(f"checkpoint {path} was written by a different supernet "
                                 f"configuration: {meta['meta']} != {self._meta()}")
            for n in self.names:
                V[n].assign(z[f"w/{n}"])
                self._m[n].assign(z[f"m/{n}"])
                self._v[n].assign(z[f"v/{n}"])
            self._t.assign(float(z["t"]))
        self._progress = meta["progress"]
        self.log = TrainLog(list(meta["log"]))
        return meta

    def train(self, x, y, schedule, *, tag: str = "ps", seed: int = 0,
              stop_after_epochs: int | None = None, progress: bool = True) -> TrainLog:
        """Train along ``schedule`` (list of :class:`Phase`) on (x, y), resuming from the
        checkpoint ``<directory>/supernet-<tag>.npz`` if there is one.

        Phases already finished are skipped; each finished epoch is checkpointed with
        the RNG state, so a resumed run continues the same sequence of batches and
        subnets. ``stop_after_epochs`` stops after that many newly trained epochs (used
        to test the resume). Taught in 05-once-for-all."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.int64)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError("x and y must be non-empty and of the same length")
        path = self._ckpt_path(tag)
        rng = np.random.default_rng([seed, 7])
        if path is not None and path.exists():
            meta = self.load(path)
            rng.bit_generator.state = meta["rng"]
        done = set(self._progress.get("done", []))
        bs = self.batch_size
        trained = 0
        for pi, ph in enumerate(schedule):
            for ep in range(ph.epochs):
                key = f"{tag}:{pi}:{ph.name}:{ep}"
                if key in done:
                    continue
                if stop_after_epochs is not None and trained >= stop_after_epochs:
                    return self.log
                if ep == 0 and ph.sort_channels:
                    self.sort_channels()
                t0 = time.time()
                order = rng.permutation(len(x))
                steps = range(0, len(x), bs)
                if progress:
                    from tqdm.auto import tqdm
                    steps = tqdm(steps, desc=f"{tag} {ph.name} epoch {ep + 1}/{ph.epochs}",
                                 leave=False, mininterval=10)
                lf_sum = ls_sum = 0.0
                n = 0
                for i in steps:
                    idx = order[i:i + bs]
                    if ph.sample:
                        arch = self.sample_arch(rng, ph)
                        f = self._fn("sub")
                    else:
                        arch = self.full_arch(int(rng.choice(self.resolutions)))
                        f = self._fn("full")
                    cfg = self._cfg(arch) + (np.int32(arch.resolution),)
                    lf, ls = f(x[idx], *cfg, y[idx])
                    lf_sum += float(lf)
                    ls_sum += float(ls)
                    n += 1
                self.log.rows.append({"tag": tag, "phase": ph.name, "epoch": ep + 1,
                                      "loss_full": lf_sum / n, "loss_sub": ls_sum / n,
                                      "seconds": time.time() - t0})
                done.add(key)
                self._progress["done"] = sorted(done)
                trained += 1
                if path is not None:
                    self.save(path, {"rng": rng.bit_generator.state})
        return self.log

    def copy(self, directory=None) -> "Supernet":
        """A new Supernet with the same settings and current weights / optimiser state
        (checkpoints under ``directory``)."""
        new = Supernet(self.space, self.width, self.resolutions, self.input_shape,
                       self.num_classes, seed=self.seed, directory=directory, lr=self.lr,
                       kd_ratio=self.kd_ratio, batch_size=self.batch_size)
        V = new._tf_vars()
        self._tf_vars()
        for n in self.names:
            V[n].assign(self._vars[n].numpy())
            new._m[n].assign(self._m[n].numpy())
            new._v[n].assign(self._v[n].numpy())
        new._t.assign(self._t.numpy())
        new.log = TrainLog([dict(r) for r in self.log.rows])
        new._progress = {"done": list(self._progress.get("done", []))}
        return new

    def summary(self) -> str:
        return (f"Supernet: width {self.width}, resolutions {list(self.resolutions)}, "
                f"kernels {self.kernels}, expansions {tuple(sorted(self.space.expansions))}, "
                f"depths {tuple(sorted(self.space.depths))} x {len(self.space.stages)} stages; "
                f"{self.n_params:,} shared parameters; {self.log.summary()}")

    __str__ = summary

    def to_dict(self) -> dict:
        return {**self._meta(), "n_params": self.n_params, "log": self.log.rows}

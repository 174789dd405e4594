"""Sparse variational dropout (SpVD; Molchanov, Ashukha & Vetrov, ICML 2017), the pruning of
SpArSe (Fedorov et al., 2019), for Keras 3 models: train, threshold, export with zeros.

Taught in 03-sparse-pruning. Every weight ``theta`` of a ``Conv2D``, ``DepthwiseConv2D`` and
``Dense`` layer gets a learned ``log_sigma2``; the posterior is ``N(theta, sigma^2)``, its
dropout rate ``alpha = sigma^2 / theta^2``. Training maximises the ELBO::

    loss = cross-entropy (batch mean) + kl_weight * sum_w KL(q(w) || p(w)) / N_train
    -KL ~= k1 * sigmoid(k2 + k3 * log_alpha) - 0.5 * log1p(exp(-log_alpha)) - k1
    k1, k2, k3 = 0.63576, 1.87320, 1.48695                   (Molchanov's approximation)

with the local reparameterisation trick (the pre-activation is sampled:
``mean = x * theta``, ``var = x^2 * sigma^2``). The KL pushes ``log_alpha`` up wherever the
data does not need a weight; a weight with ``log_alpha > 3`` (dropout rate above ~95%) is
noise and set to exactly zero (:data:`LOG_ALPHA_THRESHOLD`). :func:`train_spvd` starts from a
trained dense Keras model (SpArSe fine-tunes the same way), :func:`export` returns the normal
Keras model with those weights zero, so int8 conversion, :mod:`helpers.engine.sparse` and
TFLite-Micro apply unchanged. :func:`prune_to` ranks weights by ``log_alpha`` to reach a
given sparsity, and :func:`compare_with_magnitude` measures accuracy against non-zero
weights for SpVD and for magnitude pruning (:mod:`helpers.prune`, the baseline) at equal
sparsity on the same architecture.

May import: :mod:`helpers.train`, :mod:`helpers.prune` (TensorFlow / Keras lazily).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from helpers import prune as P
from helpers import train as T

__all__ = ["LOG_ALPHA_THRESHOLD", "K1", "K2", "K3", "kl_approx", "to_spvd", "SpVDResult",
           "train_spvd", "log_alphas", "export", "prune_to", "magnitude_prune_to",
           "nonzero_weights", "SparsityCurve", "compare_with_magnitude"]

#: Weights with log(alpha) above this are zeroed (Molchanov et al. 2017).
LOG_ALPHA_THRESHOLD = 3.0
K1, K2, K3 = 0.63576, 1.87320, 1.48695
_PRUNED = ("Conv2D", "DepthwiseConv2D", "Dense")


def kl_approx(log_alpha):
    """Molchanov's approximation of KL(q || log-uniform prior) per weight (NumPy), >= 0.
    Taught in 03-sparse-pruning."""
    la = np.asarray(log_alpha, np.float64)
    neg_kl = K1 / (1 + np.exp(-(K2 + K3 * la))) - 0.5 * np.log1p(np.exp(-la)) - K1
    return -neg_kl


# --------------------------------------------------------------------------------------
# Keras layers (made on first use: keras is imported lazily)
# --------------------------------------------------------------------------------------

_LAYERS: dict = {}


def _layer_classes():
    if _LAYERS:
        return _LAYERS
    import keras
    from keras import ops

    class _SpVD:
        """Mixin: ``log_sigma2`` per kernel weight, local reparameterisation when training."""

        def _add_log_sigma2(self, init):
            self.log_sigma2 = self.add_weight(
                name="log_sigma2", shape=tuple(self.kernel.shape),
                initializer=keras.initializers.Constant(init), trainable=True)
            self._noise = keras.random.SeedGenerator(self._spvd_seed)

        def log_alpha(self):
            la = self.log_sigma2 - ops.log(ops.square(self.kernel) + 1e-8)
            return ops.clip(la, -10.0, 10.0)

        def kl(self):
            la = self.log_alpha()
            neg = K1 * ops.sigmoid(K2 + K3 * la) - 0.5 * ops.log1p(ops.exp(-la)) - K1
            return -ops.sum(neg)

        def _masked_kernel(self):
            keep = ops.cast(self.log_alpha() < self._spvd_threshold, self.kernel.dtype)
            return self.kernel * keep

        def _sample(self, op, inputs):
            mu = op(inputs, self.kernel)
            var = op(ops.square(inputs), ops.exp(self.log_sigma2))
            eps = keras.random.normal(ops.shape(mu), seed=self._noise)
            return mu + ops.sqrt(var + 1e-8) * eps

        def _finish(self, out):
            if self.use_bias:
                out = out + self.bias
            return self.activation(out) if self.activation is not None else out

    def _make(base):
        def __init__(self, *a, spvd_seed=0, spvd_init=-8.0, spvd_threshold=LOG_ALPHA_THRESHOLD,
                     **kw):
            base.__init__(self, *a, **kw)
            self._spvd_seed, self._spvd_init = spvd_seed, spvd_init
            self._spvd_threshold = spvd_threshold

        def build(self, input_shape):
            base.build(self, input_shape)
            self._add_log_sigma2(self._spvd_init)
        return __init__, build

    class SpVDConv2D(_SpVD, keras.layers.Conv2D):
        """Conv2D with sparse variational dropout. Taught in 03-sparse-pruning."""
        __init__, build = _make(keras.layers.Conv2D)

        def call(self, inputs, training=None):
            op = self.convolution_op
            out = self._sample(op, inputs) if training else op(inputs, self._masked_kernel())
            return self._finish(out)

    class SpVDDepthwiseConv2D(_SpVD, keras.layers.DepthwiseConv2D):
        """DepthwiseConv2D with sparse variational dropout. Taught in 03-sparse-pruning."""
        __init__, build = _make(keras.layers.DepthwiseConv2D)

        def call(self, inputs, training=None):
            def op(x, k):
                return ops.depthwise_conv(x, k, strides=self.strides, padding=self.padding,
                                          dilation_rate=self.dilation_rate,
                                          data_format=self.data_format)
            out = self._sample(op, inputs) if training else op(inputs, self._masked_kernel())
            return self._finish(out)

    class SpVDDense(_SpVD, keras.layers.Dense):
        """Dense with sparse variational dropout. Taught in 03-sparse-pruning."""
        __init__, build = _make(keras.layers.Dense)

        def call(self, inputs, training=None):
            op = ops.matmul
            out = self._sample(op, inputs) if training else op(inputs, self._masked_kernel())
            return self._finish(out)

    _LAYERS.update({"Conv2D": SpVDConv2D, "DepthwiseConv2D": SpVDDepthwiseConv2D,
                    "Dense": SpVDDense})
    return _LAYERS


def _is_spvd(layer) -> bool:
    return hasattr(layer, "log_sigma2")


def to_spvd(model, *, seed: int = 0, init_log_sigma2: float = -8.0,
            threshold: float = LOG_ALPHA_THRESHOLD):
    """A copy of the functional Keras ``model`` whose Conv2D / DepthwiseConv2D / Dense layers
    carry a ``log_sigma2`` per weight (initialised to ``init_log_sigma2``), the trained
    weights copied over. Taught in 03-sparse-pruning."""
    import keras
    classes = _layer_classes()

    def clone(layer):
        cls = classes.get(type(layer).__name__)
        if cls is None or type(layer).__name__ not in _PRUNED:
            return layer.__class__.from_config(layer.get_config())
        return cls(**layer.get_config(), spvd_seed=seed + len(layer.name), spvd_init=init_log_sigma2,
                   spvd_threshold=threshold)

    out = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, out.layers):
        w = old.get_weights()
        if not w:
            continue
        if _is_spvd(new):
            new.set_weights(w + [new.get_weights()[-1]])
        else:
            new.set_weights(w)
    return out


def log_alphas(spvd_model) -> dict:
    """``{layer name: log_alpha array}`` (kernel shape) of an SpVD model.
    Taught in 03-sparse-pruning."""
    return {l.name: np.asarray(l.log_alpha()) for l in spvd_model.layers if _is_spvd(l)}


def _kernels(model) -> dict:
    return {l.name: l for l in model.layers if type(l).__name__ in _PRUNED}


def export(spvd_model, like, threshold: float = LOG_ALPHA_THRESHOLD, masks: dict | None = None):
    """The plain Keras model ``like`` (same architecture as the SpVD model's source) with the
    SpVD model's weights, every weight with ``log_alpha >= threshold`` (or outside ``masks``:
    ``{layer name: bool keep array}``) exactly zero. Taught in 03-sparse-pruning."""
    import keras
    out = keras.models.clone_model(like)
    la = log_alphas(spvd_model)
    src = {l.name: l for l in spvd_model.layers}
    for layer in out.layers:
        s = src.get(layer.name)
        if s is None or not s.get_weights():
            continue
        w = s.get_weights()
        if _is_spvd(s):
            w = w[:-1]
            keep = masks[layer.name] if masks is not None else la[layer.name] < threshold
            w[0] = np.where(keep, w[0], 0.0).astype(w[0].dtype)
        layer.set_weights(w)
    return out


def nonzero_weights(model) -> dict:
    """Kernel weights of the Conv2D / DepthwiseConv2D / Dense layers of a plain Keras model:
    ``weights``, ``nonzero``, ``sparsity`` (fraction zero; biases not counted).
    Taught in 03-sparse-pruning."""
    n = nz = 0
    for l in _kernels(model).values():
        k = np.asarray(l.kernel)
        n += k.size
        nz += int(np.count_nonzero(k))
    return {"weights": int(n), "nonzero": int(nz), "sparsity": 1.0 - nz / max(n, 1)}


@dataclass
class SpVDResult:
    """Outcome of :func:`train_spvd`: the pruned plain model's sparsity and accuracy, and the
    training history (per epoch: loss, KL, sparsity at the threshold). Taught in 03-sparse-pruning."""

    epochs: int
    kl_weight: float
    threshold: float
    weights: int
    nonzero: int
    sparsity: float
    val_accuracy: float
    wall_seconds: float
    history: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"SpVD, {self.epochs} epoch(s), kl_weight {self.kl_weight:g}: "
                f"{self.nonzero:,} of {self.weights:,} kernel weights non-zero "
                f"({self.sparsity:.1%} zeros at log alpha >= {self.threshold:g}); "
                f"val accuracy {self.val_accuracy:.4f} (float, pruned); {self.wall_seconds:.0f} s")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.history)


def train_spvd(model, data, *, epochs: int = 2, batch_size: int = 64, lr: float = 1e-3,
               lr_log_sigma2: float = 1e-2, kl_weight: float = 1.0, warmup: float = 0.5,
               init_log_sigma2: float = -8.0, threshold: float = LOG_ALPHA_THRESHOLD,
               seed: int = 0, progress: bool = False):
    """Fine-tune the trained dense Keras ``model`` with SpVD on ``data`` (a Dataset) and return
    ``(pruned, spvd_model, SpVDResult)``: ``pruned`` is the plain model with the weights
    above ``threshold`` zero (:func:`export`). ``kl_weight`` scales the KL term (1 = the ELBO),
    ramped linearly from 0 over the first ``warmup`` fraction of the steps; ``log_sigma2``
    learns with its own Adam rate ``lr_log_sigma2``. Taught in 03-sparse-pruning."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight!r}")
    if not 0 <= warmup <= 1:
        raise ValueError(f"warmup must be in [0, 1], got {warmup!r}")
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(int(seed))
    sm = to_spvd(model, seed=seed, init_log_sigma2=init_log_sigma2, threshold=threshold)
    sp_layers = [l for l in sm.layers if _is_spvd(l)]
    sig_vars = [l.log_sigma2 for l in sp_layers]
    sig_ids = {id(v) for v in sig_vars}
    w_vars = [v for v in sm.trainable_variables if id(v) not in sig_ids]
    opt_w = keras.optimizers.Adam(lr)
    opt_s = keras.optimizers.Adam(lr_log_sigma2)
    ce_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    n = len(data.x_train)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    total = steps_per_epoch * epochs
    ramp = max(int(warmup * total), 1)

    @tf.function(reduce_retracing=True)
    def step(x, y, klw):
        with tf.GradientTape() as tape:
            logits = sm(x, training=True)
            ce = ce_fn(y, logits)
            kl = tf.add_n([l.kl() for l in sp_layers])
            loss = ce + klw * kl / n
        g = tape.gradient(loss, w_vars + sig_vars)
        opt_w.apply_gradients(zip(g[:len(w_vars)], w_vars))
        opt_s.apply_gradients(zip(g[len(w_vars):], sig_vars))
        return ce, kl

    rng = np.random.default_rng(seed)
    t0 = time.time()
    hist = []
    it = 0
    ep_range = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        ep_range = tqdm(ep_range, desc="SpVD epochs", leave=False)
    for ep in ep_range:
        order = rng.permutation(n)
        ces, kls = [], []
        for b in range(steps_per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            klw = kl_weight * min(1.0, (it + 1) / ramp)
            ce, kl = step(tf.constant(data.x_train[idx]), tf.constant(data.y_train[idx]),
                          tf.constant(klw, tf.float32))
            ces.append(ce)
            kls.append(kl)
            it += 1
        la = np.concatenate([a.ravel() for a in log_alphas(sm).values()])
        hist.append({"epoch": ep + 1, "cross_entropy": float(np.mean([float(c) for c in ces])),
                     "kl": float(np.mean([float(k) for k in kls])),
                     "sparsity_at_threshold": float(np.mean(la >= threshold))})
    pruned = export(sm, model, threshold)
    nz = nonzero_weights(pruned)
    T.compile_model(pruned, lr)
    acc = T.accuracy(pruned, data.x_val, data.y_val)
    res = SpVDResult(epochs=epochs, kl_weight=float(kl_weight), threshold=float(threshold),
                     weights=nz["weights"], nonzero=nz["nonzero"], sparsity=nz["sparsity"],
                     val_accuracy=float(acc), wall_seconds=time.time() - t0, history=hist)
    return pruned, sm, res


def _global_keep(scores: dict, sparsity: float) -> dict:
    """Keep masks dropping the ``sparsity`` fraction of highest scores (all layers pooled)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    flat = np.concatenate([s.ravel() for s in scores.values()])
    k = int(np.ceil(sparsity * flat.size - 1e-9))    # at least the asked fraction
    if k == 0:
        return {n: np.ones(s.shape, bool) for n, s in scores.items()}
    order = np.argsort(-flat, kind="stable")
    drop = np.zeros(flat.size, bool)
    drop[order[:k]] = True
    out, i = {}, 0
    for n, s in scores.items():
        out[n] = ~drop[i:i + s.size].reshape(s.shape)
        i += s.size
    return out


def prune_to(spvd_model, like, sparsity: float):
    """Plain model with the ``sparsity`` fraction of kernel weights of highest ``log_alpha``
    (all layers pooled) zero. Taught in 03-sparse-pruning."""
    return export(spvd_model, like, masks=_global_keep(log_alphas(spvd_model), sparsity))


def prune_to_size(spvd_model, like, min_sparsity: float, max_nonzero: int, count) -> tuple:
    """``(model, sparsity)``: :func:`prune_to` at ``min_sparsity``, then further by ``log_alpha``
    until ``count(model)`` (the non-zero parameters, e.g. SpArSe's ``model_size(m).nonzero``) is at
    most ``max_nonzero``. Each kernel weight zeroed removes at most one non-zero parameter, so the
    sparsity grows by the excess over the kernel count per step. Raises ``ValueError`` when even
    the kernels all zero cannot meet the bound (biases and other parameters alone exceed it).
    Taught in 03-sparse-pruning."""
    n_kernel = nonzero_weights(like)["weights"]
    sparsity = float(min_sparsity)
    model = prune_to(spvd_model, like, sparsity)
    while True:
        nonzero = int(count(model))
        if nonzero <= max_nonzero:
            return model, sparsity
        nxt = sparsity + (nonzero - max_nonzero) / n_kernel
        if nxt >= 1.0:
            raise ValueError(f"prune_to_size: {nonzero} non-zero parameters at {sparsity:.1%} sparsity "
                             f"and {max_nonzero} allowed: not reachable by zeroing the {n_kernel} kernel weights")
        sparsity = nxt
        model = prune_to(spvd_model, like, sparsity)


def magnitude_prune_to(model, sparsity: float):
    """Copy of the plain ``model`` with the ``sparsity`` fraction of smallest-|w| kernel weights
    (all layers pooled, one shot) zero. Taught in 03-sparse-pruning."""
    import keras
    out = keras.models.clone_model(model)
    out.set_weights(model.get_weights())
    ks = _kernels(out)
    keep = _global_keep({n: -np.abs(np.asarray(l.kernel)) for n, l in ks.items()}, sparsity)
    for n, l in ks.items():
        w = l.get_weights()
        w[0] = np.where(keep[n], w[0], 0.0).astype(w[0].dtype)
        l.set_weights(w)
    return out


@dataclass
class SparsityCurve:
    """Accuracy against non-zero weights for SpVD and magnitude pruning at equal sparsity on one
    architecture (rows: method, target sparsity, achieved sparsity, non-zero, val accuracy).
    Taught in 03-sparse-pruning."""

    dense_val_accuracy: float
    weights: int
    rows: list = field(default_factory=list)
    spvd: dict = field(default_factory=dict)

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    def gap(self) -> dict:
        """Per target sparsity: SpVD val accuracy minus magnitude val accuracy."""
        t = self.table()
        piv = t.pivot_table(index="target_sparsity", columns="method", values="val_accuracy")
        return {float(s): float(r["spvd"] - r["magnitude"]) for s, r in piv.iterrows()}

    def summary(self) -> str:
        g = self.gap()
        parts = ", ".join(f"{s:.0%}: {d:+.3f}" for s, d in g.items())
        return (f"dense val accuracy {self.dense_val_accuracy:.4f} ({self.weights:,} kernel "
                f"weights); SpVD minus magnitude at equal sparsity: {parts}")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return asdict(self)


def compare_with_magnitude(model, data, sparsities=(0.5, 0.7, 0.8, 0.9), *, epochs: int = 2,
                           batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                           progress: bool = False, **spvd_kwargs) -> SparsityCurve:
    """SpVD vs magnitude pruning of the trained dense ``model`` at the same sparsities, both
    given ``epochs`` of training from the dense weights: SpVD once (then each sparsity ranks
    weights by ``log_alpha``, no retraining), magnitude once per sparsity (the
    :func:`helpers.prune.unstructured_pruning` cubic schedule, the baseline of this series).
    Validation accuracy of the float models. Taught in 03-sparse-pruning."""
    import keras
    for s in sparsities:
        if not 0.0 < s < 1.0:
            raise ValueError(f"sparsities must lie in (0, 1), got {s!r}")
    T.compile_model(model, lr)
    dense_acc = T.accuracy(model, data.x_val, data.y_val)
    pruned, sm, res = train_spvd(model, data, epochs=epochs, batch_size=batch_size, lr=lr,
                                 seed=seed, progress=progress, **spvd_kwargs)
    rows = [{"method": "spvd (log alpha >= 3)", "target_sparsity": float("nan"),
             "sparsity": res.sparsity, "nonzero": res.nonzero, "val_accuracy": res.val_accuracy}]
    for s in sparsities:
        m = prune_to(sm, model, s)
        T.compile_model(m, lr)
        nz = nonzero_weights(m)
        rows.append({"method": "spvd", "target_sparsity": float(s), "sparsity": nz["sparsity"],
                     "nonzero": nz["nonzero"], "val_accuracy": T.accuracy(m, data.x_val, data.y_val)})
    for s in sparsities:
        m = keras.models.clone_model(model)
        m.set_weights(model.get_weights())
        T.compile_model(m, lr)
        cb = P.unstructured_pruning(float(s), prune_last=True)
        T.fit(m, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, callbacks=[cb],
              progress=False)
        nz = nonzero_weights(m)
        rows.append({"method": "magnitude", "target_sparsity": float(s), "sparsity": nz["sparsity"],
                     "nonzero": nz["nonzero"], "val_accuracy": T.accuracy(m, data.x_val, data.y_val)})
    return SparsityCurve(dense_val_accuracy=float(dense_acc), weights=res.weights, rows=rows,
                         spvd=res.to_dict())

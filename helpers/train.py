"""Budgeted training and evaluation.

Taught in 00-overview. ``fit`` trains a Keras model on a :class:`helpers.data.Dataset`
for a number of epochs and/or a wall-clock budget, seeded, and returns a small
:class:`TrainResult` (curves, best validation accuracy, seconds). Models end in
logits (no softmax); the loss is sparse categorical cross-entropy from logits.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["TrainResult", "fit", "accuracy", "compile_model", "evaluate_arch", "ArchEvaluator",
           "release_graphs"]


class release_graphs:
    """Context manager: free the TF graphs that training inside it leaves behind.

    Every ``model.fit`` in Keras 3 on TensorFlow traces its train step, and the
    optimizer's gradient all-reduce (``tf.distribute`` replica context) is a
    ``tf.custom_gradient``: in graph mode TF registers its gradient function in a
    process-wide registry (``CustomGradient-<n>``) and never removes it. That
    function refers to the whole traced train step, so each trained model leaves its
    graph alive: measured 15-19 MB per search trial, 8 GB after about 950 trials of
    02's full preset (``scripts/trial_memory.py``). ``keras.backend.clear_session``
    does not touch that registry.

    On exit this removes the ``CustomGradient`` entries added inside the block and runs
    the garbage collector. Safe for models still in use: the removed functions are only
    needed to differentiate *through* an optimizer step, which Keras never does (the
    step's own gradients are computed when it is traced). Results are unchanged; only
    memory is returned. Used around every search trial (:mod:`helpers.search`).
    """

    def __enter__(self):
        self._reg = self._registry()
        self._before = set(self._reg) if self._reg is not None else set()
        return self

    @staticmethod
    def _registry():
        try:
            from tensorflow.python.framework import ops as _ops
            return _ops._gradient_registry._registry
        except (ImportError, AttributeError):  # another TF layout: nothing to release
            return None

    def __exit__(self, *exc):
        import gc

        if self._reg is not None:
            for k in [k for k in list(self._reg) if k not in self._before
                      and isinstance(k, str) and k.startswith("CustomGradient-")]:
                self._reg.pop(k, None)
        gc.collect()
        return False


@dataclass
class TrainResult:
    """What one training run produced. Taught in 00-overview."""

    epochs_run: int
    wall_seconds: float
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    stopped_by_budget: bool = False

    @property
    def best_val_accuracy(self) -> float:
        return max(self.val_accuracy) if self.val_accuracy else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["best_val_accuracy"] = self.best_val_accuracy
        return d

    def summary(self) -> str:
        return (f"{self.epochs_run} epoch(s) in {self.wall_seconds:.1f} s; "
                f"val accuracy {self.val_accuracy[-1] if self.val_accuracy else float('nan'):.4f} "
                f"(best {self.best_val_accuracy:.4f})" + (" [stopped by time budget]" if self.stopped_by_budget else ""))

    __str__ = summary


def compile_model(model, lr: float = 1e-3):
    """Adam + sparse categorical cross-entropy from logits, accuracy metric."""
    import keras

    # jit_compile=False: XLA compilation costs 30-60 s per new model on 2 CPU cores,
    # more than a search's short trainings gain from it.
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=False)
    return model


def fit(model, data, epochs: int = 1, *, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
        max_seconds: float | None = None, callbacks=None, progress: bool = True) -> TrainResult:
    """Train ``model`` on ``data`` (a Dataset) for ``epochs`` and at most ``max_seconds``.

    The data order is seeded; weights are whatever the model was built with (seed
    them with :func:`helpers.seed_everything` before building).
    """
    import keras

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    if not getattr(model, "compiled", False):
        compile_model(model, lr)

    t0 = time.time()
    budget_hit = {"flag": False}

    class _Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if max_seconds is not None and time.time() - t0 > max_seconds:
                budget_hit["flag"] = True
                self.model.stop_training = True

    cbs = [_Budget()] + list(callbacks or [])
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="epochs", leave=False)

        class _Bar(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                bar.update(1)
                bar.set_postfix(val_acc=f"{(logs or {}).get('val_accuracy', float('nan')):.3f}")
        cbs.append(_Bar())
    rng = np.random.default_rng(seed)
    hist = {"accuracy": [], "val_accuracy": [], "loss": []}
    epochs_run = 0
    for epoch in range(epochs):
        order = rng.permutation(len(data.x_train))
        h = model.fit(data.x_train[order], data.y_train[order], batch_size=batch_size, epochs=epoch + 1,
                      initial_epoch=epoch, validation_data=(data.x_val, data.y_val), shuffle=False,
                      callbacks=cbs, verbose=0)
        epochs_run += 1
        for k in hist:
            hist[k] += [float(v) for v in h.history.get(k, [])]
        if budget_hit["flag"]:
            break
    if progress:
        bar.close()
    return TrainResult(epochs_run, time.time() - t0, hist["accuracy"], hist["val_accuracy"], hist["loss"],
                       budget_hit["flag"])


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of a float Keras model (argmax of its outputs)."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


# ----------------------------------------------------------------------------------------------
# Evaluating one searched architecture (added for 02-aging-evolution)
# ----------------------------------------------------------------------------------------------
def _pruned_granular(arch, widths: dict):
    """Copy of a GranularArch with conv filters / dense units set to the pruned widths."""
    new = arch.copy()
    for bi, b in enumerate(new.blocks):
        for li, layer in enumerate(b.layers):
            if layer.type == "dwconv":
                continue
            name = f"b{bi}_l{li}_{layer.type}"
            if name in widths:
                layer.filters = int(widths[name])
    for di, d in enumerate(new.dense):
        if f"dense{di}" in widths:
            d.units = int(widths[f"dense{di}"])
    return new


def evaluate_arch(arch, data, epochs: int = 1, *, sparsity: float | None = None, seed: int = 0,
                  lr: float = 3e-3, batch_size: int = 64, max_seconds: float | None = None,
                  plan: str = "reordered", include_input: bool = False,
                  lr_decay: bool = False, return_model: bool = False) -> dict:
    """Train one searched architecture (optionally with structured pruning) and measure it.

    ``arch``: a :class:`helpers.spaces.GranularArch` or a :class:`helpers.search.Candidate`
    (its ``sparsity`` is used unless ``sparsity`` is given). The model is built with
    ``seed``, trained for ``epochs`` (one ``fit`` call, Adam at ``lr``, cosine-decayed to 0
    over the run if ``lr_decay``, data order seeded, at most ``max_seconds``) with μNAS's structured DPF pruning to ``sparsity`` when > 0 (cubic
    schedule reaching the target at 80 % of the steps, masks applied at the end; an
    architecture without a prunable convolution is trained dense, ``achieved_sparsity`` 0;
    hidden Dense layers are not pruned, so they stay within the space's unit bounds); the surviving channel counts are
    written back into the architecture (``pruned_arch``) and the resource objectives
    are those of that pruned architecture (:func:`helpers.search.arch_resources`, with
    ``plan`` and ``include_input``). Returns a JSON-able dict: ``error`` (1 − validation
    accuracy of the final, pruned model), ``val_accuracy``, ``peak_sram_bytes``,
    ``flash_bytes``, ``macs``, ``params``, ``tflite_bytes``, ``sparsity``,
    ``achieved_sparsity``, ``pruned_arch`` (JSON), ``loss_first``/``loss_last``,
    ``train_seconds``, ``epochs_run``; with ``return_model`` also ``model`` (the trained
    Keras model, masked, original widths). Taught in 02-aging-evolution.
    """
    import keras

    from helpers import prune, search, spaces

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    a = getattr(arch, "arch", arch)
    s = float(getattr(arch, "sparsity", 0.0) if sparsity is None else sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {s}")
    t0 = time.time()
    model = spaces.build(a, data.input_shape, data.num_classes, seed=seed)
    n = len(data.x_train)
    steps = epochs * (-(-n // batch_size))
    compile_model(model, keras.optimizers.schedules.CosineDecay(lr, steps) if lr_decay else lr)
    cbs = []
    pr = None
    # convolutions only: a pruned hidden Dense could fall below the space's minimum units
    dense_names = tuple(f"dense{i}" for i in range(len(getattr(a, "dense", []))))
    if s > 0 and prune.channel_groups(model, exclude=dense_names):  # else nothing prunable: dense
        pr = prune.structured_pruning(s, end_step=max(0, int(0.8 * steps) - 1), exclude=dense_names)
        cbs.append(pr)

    class _Budget(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if max_seconds is not None and time.time() - t0 > max_seconds:
                self.model.stop_training = True

    cbs.append(_Budget())
    order = np.random.default_rng(seed).permutation(n)
    h = model.fit(data.x_train[order], data.y_train[order], batch_size=batch_size, epochs=epochs,
                  shuffle=True, callbacks=cbs, verbose=0)
    val_acc = accuracy(model, data.x_val, data.y_val)
    pruned = a
    achieved = 0.0
    if pr is not None:
        survivors = prune.surviving_channels(model, pr.channel_masks)
        pruned = _pruned_granular(a, prune.pruned_widths(model, survivors))
        achieved = float(pr.sparsity)
    res = search.arch_resources(pruned, data.input_shape, data.num_classes, plan=plan,
                                include_input=include_input)
    loss = [float(v) for v in h.history.get("loss", [])]
    out = {"error": 1.0 - val_acc, "val_accuracy": val_acc, **res, "sparsity": s,
           "achieved_sparsity": achieved, "pruned_arch": pruned.to_json(),
           "loss_first": loss[0] if loss else float("nan"),
           "loss_last": loss[-1] if loss else float("nan"),
           "epochs_run": len(loss), "train_seconds": time.time() - t0}
    if return_model:
        out["model"] = model
    return out


_DATA_CACHE: dict = {}


class ArchEvaluator:
    """``evaluate(candidate, trial_seed) -> dict`` for the searches (picklable for workers).

    Loads ``dataset`` once per process (module cache; nothing big is pickled),
    takes a stratified subset of ``n_train`` / ``n_val`` examples (0 = all) and
    calls :func:`evaluate_arch` with ``epochs``, ``lr``, ``max_seconds``. Pruning
    follows each candidate's ``sparsity`` (set ``pruning=False`` to ignore it).
    Taught in 02-aging-evolution.
    """

    def __init__(self, dataset: str = "mnist", *, epochs: int = 1, n_train: int = 0, n_val: int = 0,
                 lr: float = 3e-3, batch_size: int = 64, max_seconds: float | None = None,
                 pruning: bool = True, data_seed: int = 0, plan: str = "reordered",
                 include_input: bool = False):
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        self.dataset, self.epochs, self.n_train, self.n_val = dataset, epochs, int(n_train), int(n_val)
        self.lr, self.batch_size, self.max_seconds = float(lr), int(batch_size), max_seconds
        self.pruning, self.data_seed = bool(pruning), int(data_seed)
        self.plan, self.include_input = plan, bool(include_input)

    def data(self):
        key = (self.dataset, self.n_train, self.n_val, self.data_seed)
        if key not in _DATA_CACHE:
            from helpers import data as _data

            ds = _data.load(self.dataset, seed=self.data_seed)
            ds = ds.subset(n_train=self.n_train or None, n_val=self.n_val or None,
                           seed=self.data_seed)
            _DATA_CACHE.clear()
            _DATA_CACHE[key] = ds
        return _DATA_CACHE[key]

    def __call__(self, cand, trial_seed: int) -> dict:
        return evaluate_arch(cand, self.data(), self.epochs,
                             sparsity=None if self.pruning else 0.0, seed=int(trial_seed) % (2**31),
                             lr=self.lr, batch_size=self.batch_size, max_seconds=self.max_seconds,
                             plan=self.plan, include_input=self.include_input)

"""Budgeted training and evaluation.

Taught in 00-overview. ``fit`` trains a Keras model on a :class:`helpers.data.Dataset`
for a number of epochs and/or a wall-clock budget, seeded, and returns a small
:class:`TrainResult` (curves, best validation accuracy, seconds). Models end in
logits (no softmax); the loss is sparse categorical cross-entropy from logits.

May import: :mod:`helpers.data`. TensorFlow lazily.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["TrainResult", "fit", "accuracy", "compile_model", "release_graphs"]


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
    Taught in 00-overview.
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

        removed = 0
        if self._reg is not None:
            for k in [k for k in list(self._reg) if k not in self._before
                      and isinstance(k, str) and k.startswith("CustomGradient-")]:
                self._reg.pop(k, None)
                removed += 1
        if removed:  # a full collection costs ~0.3 s once TF is imported: only when a graph was freed
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
    """Adam + sparse categorical cross-entropy from logits, accuracy metric.
    Taught in 00-overview.
    """
    import keras

    # jit_compile=False: XLA compilation costs 30-60 s per new model on 2 CPU cores,
    # more than a search's short trainings gain from it.
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=False)
    return model


def fit(model, data, epochs: int = 1, *, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
        max_seconds: float | None = None, callbacks=None, progress: bool = True,
        cosine: bool = False) -> TrainResult:
    """Train ``model`` on ``data`` (a Dataset) for ``epochs`` and at most ``max_seconds``.

    The data order is seeded; weights are whatever the model was built with (seed
    them with :func:`helpers.seed_everything` before building). ``cosine``: the learning
    rate falls from ``lr`` to 0 along a cosine over the ``epochs`` planned (the model must
    not be compiled yet). Taught in 00-overview.
    """
    import keras

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    if cosine and getattr(model, "compiled", False):
        raise ValueError("cosine=True needs an uncompiled model (its optimizer carries the schedule)")
    if not getattr(model, "compiled", False):
        steps = epochs * -(-len(data.x_train) // batch_size)
        compile_model(model, keras.optimizers.schedules.CosineDecay(lr, steps) if cosine else lr)

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
    """Top-1 accuracy of a float Keras model (argmax of its outputs). Taught in 00-overview."""
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))

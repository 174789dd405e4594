"""Structured and unstructured magnitude pruning for Keras 3 (TensorFlow backend).

Taught in 02-aging-evolution (structured, μNAS "Dynamic Pruning with
Feedback" by channel L2 norm, sparsity a searched variable) and
03-sparse-pruning (unstructured magnitude pruning, non-zero weight counts).

* :func:`sparsity_schedule` -- cubic ramp ``s_t = s_f + (s_i - s_f)(1 - t/T)^3``
  (Zhu & Gupta 2017; the exponent 3 of μNAS ``pruning.py``).
* :class:`Pruning` -- a ``keras.callbacks.Callback``; masks recomputed every
  ``update_every`` steps from the current (dense) weights.  With
  ``feedback=True`` (DPF, Lin et al. 2020, as in μNAS) the forward/backward
  pass of every batch uses the masked weights but the update is applied to
  the dense weights, so a pruned channel can come back; with
  ``feedback=False`` the mask is applied after every batch and pruned weights
  stay exactly zero.  At the end of training the masks are applied, so the
  returned model is the pruned one.  :func:`structured_pruning` /
  :func:`unstructured_pruning` build it with the usual defaults.
* :func:`channel_groups`, :func:`surviving_channels`, :func:`rebuild_pruned`
  -- which output channels of each Conv2D / Dense survive, and a smaller
  Keras model with only those channels and their trained weights (identical
  outputs), to re-measure resources.  :func:`pruned_widths` gives the new
  widths to write back into an architecture.
* :func:`count_nonzero` -- non-zero weights per layer (SpArSe model size).

Structured pruning contract (for the search spaces)
---------------------------------------------------
A *producer* (Conv2D with ``groups=1`` or Dense) can be pruned when its
output reaches the next Conv2D / Dense through a single path of channel-wise
layers (BatchNormalization, DepthwiseConv2D, activations with f(0) = 0,
pooling, padding, dropout, Flatten, global pooling) and never reaches a model
output, a merge (Add, Concatenate) or a reshape.  Its "channel" c is the
group: kernel[..., c], bias[c], and downstream the BN gamma/beta, depthwise
bias and (through Flatten) positions that channel feeds.  The callback zeroes
the whole group, so a pruned channel is exactly zero downstream and
:func:`rebuild_pruned` can remove it without changing any output.  Producers
feeding merges (the μNAS parallel branch) are left unpruned.

Imports no other module of the package (TensorFlow lazily).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["sparsity_schedule", "Pruning", "structured_pruning", "unstructured_pruning",
           "channel_groups", "surviving_channels", "rebuild_pruned", "pruned_widths",
           "count_nonzero", "ChannelGroup"]


def sparsity_schedule(step, *, final_sparsity: float, initial_sparsity: float = 0.0,
                      begin_step: int = 0, end_step: int) -> float:
    """Cubic sparsity ramp: ``s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0))**3``, clipped to [t0, t1].

    Taught in 02-aging-evolution.
    """
    for name, v in (("final_sparsity", final_sparsity), ("initial_sparsity", initial_sparsity)):
        if not (0.0 <= v < 1.0):
            raise ValueError(f"{name} must be in [0, 1); got {v}")
    if end_step < begin_step:
        raise ValueError(f"end_step ({end_step}) must be >= begin_step ({begin_step})")
    if step <= begin_step:
        return float(initial_sparsity) if end_step > begin_step else float(final_sparsity)
    if step >= end_step:
        return float(final_sparsity)
    frac = (step - begin_step) / (end_step - begin_step)
    return float(final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - frac) ** 3)


# ---------------------------------------------------------------------------
# graph analysis
# ---------------------------------------------------------------------------
_CHANNELWISE = ("BatchNormalization", "DepthwiseConv2D", "ReLU", "Activation", "LeakyReLU", "ELU",
                "Dropout", "SpatialDropout2D", "GaussianNoise", "MaxPooling2D", "AveragePooling2D",
                "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Flatten", "Identity")
_PRODUCERS = ("Conv2D", "Dense")


def _cls(layer) -> str:
    return type(layer).__name__


def _inbound_layers(layer):
    if len(layer._inbound_nodes) != 1:
        return None
    node = layer._inbound_nodes[0]
    return [t._keras_history[0] for t in node.input_tensors]


def _consumers(layer):
    return [n.operation for n in layer._outbound_nodes]


def _zero_preserving(fn) -> bool:
    import keras

    try:
        z = keras.ops.convert_to_numpy(fn(keras.ops.zeros((1, 4))))
    except Exception:
        return False
    return bool(np.all(z == 0))


def _is_producer(layer) -> bool:
    c = _cls(layer)
    if c == "Conv2D":
        return getattr(layer, "groups", 1) == 1 and layer.data_format == "channels_last"
    return c == "Dense"


@dataclasses.dataclass
class ChannelGroup:
    """A prunable producer and what each of its output channels drives.

    ``members``: list of (variable, positions) with positions an int array
    (n_channels, m): channel c owns ``variable[..., positions[c]]`` along the
    variable's last axis.  ``chain``: channel-wise layers up to ``consumer``.
    Taught in 02-aging-evolution.
    """

    producer: object
    chain: list
    consumer: object
    members: list

    @property
    def name(self) -> str:
        return self.producer.name

    @property
    def n_channels(self) -> int:
        return int(self.producer.kernel.shape[-1])

    def saliency(self) -> np.ndarray:
        """L2 norm of each output channel's kernel slice (μNAS saliency)."""
        k = np.asarray(self.producer.kernel.numpy())
        return np.linalg.norm(k.reshape(-1, k.shape[-1]), axis=0)


def _model_output_layers(model):
    return {t._keras_history[0].name for t in model.outputs}


def channel_groups(model, exclude=()) -> list[ChannelGroup]:
    """Producers of ``model`` that structured pruning may prune (see module contract).

    ``exclude``: layer names to leave unpruned.  Taught in 02-aging-evolution.
    """
    outs = _model_output_layers(model)
    groups = []
    for layer in model.layers:
        if not _is_producer(layer) or layer.name in exclude or layer.name in outs:
            continue
        if layer.activation is not None and not _zero_preserving(layer.activation):
            continue
        c = layer.kernel.shape[-1]
        pos = np.arange(c)[:, None]
        members = [(layer.kernel, pos)]
        if layer.use_bias:
            members.append((layer.bias, pos))
        chain, cur, ok, consumer = [], layer, True, None
        while True:
            if cur.name in outs:
                ok = False
                break
            nxt = _consumers(cur)
            if len(nxt) != 1:
                ok = False
                break
            n = nxt[0]
            ins = _inbound_layers(n)
            if ins is None or len(ins) != 1:
                ok = False
                break
            if _is_producer(n) and len(n._inbound_nodes) == 1:
                consumer = n
                break
            cname = _cls(n)
            if cname not in _CHANNELWISE:
                ok = False
                break
            if cname == "BatchNormalization":
                if n.axis not in (-1, len(n.input.shape) - 1):
                    ok = False
                    break
                members += [(v, pos) for v in (getattr(n, "gamma", None), getattr(n, "beta", None))
                            if v is not None]
            elif cname == "DepthwiseConv2D":
                m = int(n.depth_multiplier)
                pos = (pos[:, :, None] * m + np.arange(m)[None, None, :]).reshape(c, -1)
                if n.use_bias:
                    members.append((n.bias, pos))
                if n.activation is not None and not _zero_preserving(n.activation):
                    ok = False
                    break
            elif cname in ("ReLU", "Activation", "LeakyReLU", "ELU"):
                if not _zero_preserving(n):
                    ok = False
                    break
            elif cname == "Flatten":
                shp = n.input.shape[1:]
                spatial, ch = int(np.prod(shp[:-1])), int(shp[-1])
                pos = (np.arange(spatial)[None, :, None] * ch + pos[:, None, :]).reshape(c, -1)
            chain.append(n)
            cur = n
        if ok and consumer is not None:
            groups.append(ChannelGroup(layer, chain, consumer, members))
    return groups


def _unstructured_kernels(model, exclude=(), prune_last=False):
    outs = _model_output_layers(model)
    ks = []
    for layer in model.layers:
        if _cls(layer) in ("Conv2D", "DepthwiseConv2D", "Dense") and layer.name not in exclude:
            if layer.name in outs and not prune_last:
                continue
            ks.append(layer.kernel)
    return ks


# ---------------------------------------------------------------------------
# mask computation (numpy)
# ---------------------------------------------------------------------------
def _select_lowest(values: list[np.ndarray], sparsity: float, scope: str, keep_min: int) -> list[np.ndarray]:
    """Alive masks removing round(sparsity * N) lowest values (global) or per array (layer).

    Ties are broken by position (stable sort), so the count is exact; each
    array keeps at least ``keep_min`` entries.
    """
    if scope == "layer":
        out = []
        for v in values:
            n = v.size
            k = min(int(round(sparsity * n)), n - min(keep_min, n))
            alive = np.ones(n, bool)
            alive[np.argsort(v.ravel(), kind="stable")[:k]] = False
            out.append(alive.reshape(v.shape))
        return out
    flat = np.concatenate([v.ravel() for v in values])
    protected = np.zeros(flat.size, bool)
    if keep_min:
        off = 0
        for v in values:
            top = np.argsort(-v.ravel(), kind="stable")[:keep_min]
            protected[off + top] = True
            off += v.size
    k = min(int(round(sparsity * flat.size)), int((~protected).sum()))
    cand = np.flatnonzero(~protected)
    order = cand[np.argsort(flat[cand], kind="stable")][:k]
    alive = np.ones(flat.size, bool)
    alive[order] = False
    out, off = [], 0
    for v in values:
        out.append(alive[off:off + v.size].reshape(v.shape))
        off += v.size
    return out


def _member_mask(var, pos, alive_channels):
    shape = tuple(var.shape)
    m = np.ones(shape[-1], np.float32)
    dead = pos[~alive_channels].ravel()
    m[dead] = 0.0
    return np.broadcast_to(m, shape).astype(np.float32)


# ---------------------------------------------------------------------------
# the callback
# ---------------------------------------------------------------------------
def _make_pruning_class():
    import keras

    class Pruning(keras.callbacks.Callback):
        """Magnitude pruning callback with a cubic schedule (structured or unstructured).

        Args:
            target_sparsity: final fraction of channels (structured) or
                weights (unstructured) set to zero, in [0, 1).
            structured: prune whole output channels by kernel L2 norm.
            feedback: DPF (gradient through masked weights applied to dense
                weights); default True for structured (μNAS), False for
                unstructured (zeros stay zero during training).
            scope: "global" (one threshold over all prunable channels /
                weights, μNAS) or "layer" (each layer pruned to the target).
            initial_sparsity, begin_step, end_step: the schedule (steps are
                optimizer steps over the whole ``fit``); ``end_step`` defaults
                to the last step of ``fit``.
            update_every: recompute masks every this many steps (μNAS: 16).
            exclude: layer names not to prune.  prune_last: unstructured only,
                also prune the output layer (μNAS: no).

        After ``fit``: ``channel_masks`` (structured: producer name -> bool
        alive per channel), ``weight_masks`` (variable path -> bool array),
        ``sparsity`` (achieved fraction) and ``history`` (step, sparsity).
        Taught in 02-aging-evolution / 03-sparse-pruning.
        """

        def __init__(self, target_sparsity: float, *, structured: bool = True, feedback=None,
                     scope: str = "global", initial_sparsity: float = 0.0, begin_step: int = 0,
                     end_step: int | None = None, update_every: int = 16, exclude=(),
                     prune_last: bool = False):
            super().__init__()
            if not (0.0 <= target_sparsity < 1.0):
                raise ValueError(f"target_sparsity must be in [0, 1); got {target_sparsity}")
            if scope not in ("global", "layer"):
                raise ValueError(f"scope must be 'global' or 'layer'; got {scope!r}")
            if int(update_every) < 1:
                raise ValueError(f"update_every must be >= 1; got {update_every}")
            self.target_sparsity = float(target_sparsity)
            self.structured = bool(structured)
            self.feedback = self.structured if feedback is None else bool(feedback)
            self.scope = scope
            self.initial_sparsity = float(initial_sparsity)
            self.begin_step = int(begin_step)
            self.end_step = end_step
            self.update_every = int(update_every)
            self.exclude = tuple(exclude)
            self.prune_last = bool(prune_last)
            self.step = 0
            self.current_sparsity = self.initial_sparsity
            self.channel_masks: dict[str, np.ndarray] = {}
            self.weight_masks: dict[str, np.ndarray] = {}
            self.history: list[tuple[int, float]] = []
            self._vars: list = []
            self._masks: list = []
            self._dense = None
            self._training = False

        # ---- masks
        def _resolve(self):
            if self.structured:
                self.groups = channel_groups(self.model, exclude=self.exclude)
                if not self.groups:
                    raise ValueError("structured pruning found no prunable Conv2D/Dense layer "
                                     "(see helpers.prune module docstring for the contract)")
                self._vars = []
                for g in self.groups:
                    for v, _ in g.members:
                        if all(v is not w for w in self._vars):
                            self._vars.append(v)
            else:
                self._vars = _unstructured_kernels(self.model, self.exclude, self.prune_last)
                if not self._vars:
                    raise ValueError("unstructured pruning found no Conv2D/DepthwiseConv2D/Dense kernel")

        def _update_masks(self, sparsity):
            self.current_sparsity = float(sparsity)
            if self.structured:
                sal = [g.saliency() for g in self.groups]
                alive = _select_lowest(sal, sparsity, self.scope, keep_min=1)
                self.channel_masks = {g.name: a for g, a in zip(self.groups, alive)}
                masks = {id(v): np.ones(tuple(v.shape), np.float32) for v in self._vars}
                for g, a in zip(self.groups, alive):
                    for v, pos in g.members:
                        masks[id(v)] = masks[id(v)] * _member_mask(v, pos, a)
                self._masks = [masks[id(v)] for v in self._vars]
            else:
                vals = [np.abs(np.asarray(v.numpy())) for v in self._vars]
                alive = _select_lowest(vals, sparsity, self.scope, keep_min=1)
                self._masks = [a.astype(np.float32) for a in alive]
            self.weight_masks = {v.path: m != 0 for v, m in zip(self._vars, self._masks)}
            self.history.append((self.step, self.current_sparsity))

        def _apply(self):
            for v, m in zip(self._vars, self._masks):
                v.assign(np.asarray(v.numpy()) * m)

        def _cache(self):
            self._dense = [np.array(v.numpy()) for v in self._vars]

        def _restore_with_update(self):
            # dense += (what the optimiser did to the masked weights)
            for v, d, m in zip(self._vars, self._dense, self._masks):
                v.assign(d + (np.asarray(v.numpy()) - d * m))
            self._dense = None

        def _in_schedule(self):
            return self.begin_step <= self.step <= self._end

        # ---- keras hooks
        def on_train_begin(self, logs=None):
            spe = getattr(self.model, "steps_per_execution", 1) or 1
            if int(spe) != 1:
                raise ValueError(f"Pruning needs steps_per_execution=1 (got {spe}): masks are "
                                 "applied around every optimizer step")
            self._resolve()
            if self.end_step is None:
                steps, epochs = self.params.get("steps"), self.params.get("epochs")
                if not steps or not epochs:
                    raise ValueError("end_step must be given when fit() does not know the number "
                                     "of steps (dataset of unknown length)")
                self._end = max(self.begin_step, int(steps) * int(epochs) - 1)
            else:
                self._end = int(self.end_step)
            self._training = True
            if not self._masks or len(self._masks) != len(self._vars):
                self._update_masks(sparsity_schedule(self.step, final_sparsity=self.target_sparsity,
                                                     initial_sparsity=self.initial_sparsity,
                                                     begin_step=self.begin_step, end_step=self._end))

        def on_train_batch_begin(self, batch, logs=None):
            if self._in_schedule() and ((self.step - self.begin_step) % self.update_every == 0
                                        or self.step == self._end):
                self._update_masks(sparsity_schedule(
                    self.step, final_sparsity=self.target_sparsity,
                    initial_sparsity=self.initial_sparsity, begin_step=self.begin_step,
                    end_step=self._end))
            if self.feedback:
                self._cache()
            self._apply()

        def on_train_batch_end(self, batch, logs=None):
            if self.feedback:
                self._restore_with_update()
            else:
                self._apply()
            self.step += 1
            if logs is not None:
                logs["sparsity"] = self.current_sparsity

        def on_test_begin(self, logs=None):
            if self._training and self.feedback:  # validate the pruned model
                self._cache()
                self._apply()

        def on_test_end(self, logs=None):
            if self._training and self.feedback and self._dense is not None:
                for v, d in zip(self._vars, self._dense):
                    v.assign(d)
                self._dense = None

        def on_train_end(self, logs=None):
            self._training = False
            if not math.isclose(self.current_sparsity, self.target_sparsity):
                self._update_masks(self.target_sparsity)
            self._apply()

        @property
        def sparsity(self) -> float:
            """Achieved fraction of pruned channels (structured) or weights (unstructured)."""
            if self.structured:
                a = np.concatenate([m for m in self.channel_masks.values()]) if self.channel_masks else []
                return float(1.0 - np.mean(a)) if len(a) else 0.0
            tot = sum(m.size for m in self._masks)
            return float(sum((m == 0).sum() for m in self._masks) / tot) if tot else 0.0

    return Pruning


_LAZY: dict = {}


def __getattr__(name):  # PEP 562: keras imported on first use
    if name == "Pruning":
        if "Pruning" not in _LAZY:
            _LAZY["Pruning"] = _make_pruning_class()
        return _LAZY["Pruning"]
    raise AttributeError(f"module 'helpers.prune' has no attribute {name!r}")


def structured_pruning(target_sparsity: float, **kwargs):
    """μNAS structured DPF pruning callback (channel L2 norm, global, feedback, every 16 steps).

    Taught in 02-aging-evolution.
    """
    kwargs.setdefault("feedback", True)
    return __getattr__("Pruning")(target_sparsity, structured=True, **kwargs)


def unstructured_pruning(target_sparsity: float, **kwargs):
    """Magnitude pruning of individual weights; pruned weights stay exactly zero.

    Taught in 03-sparse-pruning.
    """
    kwargs.setdefault("feedback", False)
    return __getattr__("Pruning")(target_sparsity, structured=False, **kwargs)


# ---------------------------------------------------------------------------
# after training: survivors and the smaller model
# ---------------------------------------------------------------------------
def surviving_channels(model, channel_masks=None, exclude=()) -> dict[str, np.ndarray]:
    """Indices of the surviving output channels of every prunable producer.

    With ``channel_masks`` (``Pruning.channel_masks``) those masks are used;
    otherwise a channel is dead when every parameter of its group (kernel
    slice, bias, BN gamma/beta, depthwise bias) is exactly zero, i.e. when it
    is provably zero downstream.  At least one channel is kept per layer.
    Taught in 02-aging-evolution.
    """
    out = {}
    for g in channel_groups(model, exclude=exclude):
        if channel_masks is not None and g.name in channel_masks:
            alive = np.asarray(channel_masks[g.name], bool)
        else:
            alive = np.zeros(g.n_channels, bool)
            for v, pos in g.members:
                w = np.asarray(v.numpy())
                nz = np.any(w.reshape(-1, w.shape[-1]) != 0, axis=0)
                alive |= np.array([nz[p].any() for p in pos])
        if not alive.any():
            alive[int(np.argmax(g.saliency()))] = True
        out[g.name] = np.flatnonzero(alive)
    return out


def pruned_widths(model, survivors=None) -> dict[str, int]:
    """New width (filters / units) of each producer after structured pruning.
    Taught in 02-aging-evolution.
    """
    survivors = surviving_channels(model) if survivors is None else survivors
    return {k: int(len(v)) for k, v in survivors.items()}


_MERGES = ("Add", "Concatenate", "Average", "Maximum", "Minimum", "Multiply", "Subtract")


def rebuild_pruned(model, survivors=None):
    """A smaller Keras model without the dead channels, with the surviving trained weights.

    ``model``: a single-input, single-output functional or Sequential model of
    Conv2D, DepthwiseConv2D, BatchNormalization, Dense, channel-wise layers (see
    module docstring) and merges (Add, Concatenate, ...), each layer called once:
    chains and branched graphs such as the μNAS parallel branch.  Producers that
    feed a merge are never pruned (module contract), so merges see whole tensors.
    ``survivors``: from :func:`surviving_channels` (default: computed from the
    zero weights).  Outputs are identical to the masked model's.  Taught in
    02-aging-evolution; used for 03-sparse-pruning's branched models.
    """
    import keras

    survivors = surviving_channels(model) if survivors is None else survivors
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("rebuild_pruned supports single-input single-output models")
    inp = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype,
                      name=model.inputs[0]._keras_history[0].name)
    # old layer name -> (new output tensor, surviving indices along its last axis or None = all)
    made: dict = {}
    for layer in model.layers:
        c = _cls(layer)
        if c == "InputLayer":
            made[layer.name] = (inp, None)
            continue
        ins = _inbound_layers(layer)
        if ins is None:
            raise ValueError(f"rebuild_pruned needs every layer called once; {layer.name!r} ({c}) "
                             f"has {len(layer._inbound_nodes)} call sites")
        if any(i.name not in made for i in ins):
            raise ValueError(f"layer {layer.name!r} comes before its inputs in model.layers")
        cfg = layer.get_config()
        w = [np.asarray(v) for v in layer.get_weights()]
        if len(ins) > 1:
            if c not in _MERGES:
                raise ValueError(f"rebuild_pruned does not support multi-input layer {layer.name!r} ({c})")
            if any(made[i.name][1] is not None for i in ins):
                raise ValueError(f"merge {layer.name!r} receives pruned channels (the pruning contract "
                                 "leaves producers that feed merges unpruned)")
            new = type(layer).from_config(cfg)
            made[layer.name] = (new([made[i.name][0] for i in ins]), None)
            continue
        x, keep = made[ins[0].name]
        if _is_producer(layer):
            out_keep = survivors.get(layer.name)
            k = w[0]
            if keep is not None:
                k = np.take(k, keep, axis=-2)
            if out_keep is not None:
                k = k[..., out_keep]
                cfg["filters" if c == "Conv2D" else "units"] = int(len(out_keep))
            new_w = [k]
            if layer.use_bias:
                new_w.append(w[1] if out_keep is None else w[1][out_keep])
            keep = out_keep
        elif c == "DepthwiseConv2D":
            m = int(layer.depth_multiplier)
            k = w[0] if keep is None else w[0][:, :, keep, :]
            new_w = [k]
            out = None if keep is None else (keep[:, None] * m + np.arange(m)[None, :]).ravel()
            if layer.use_bias:
                new_w.append(w[1] if out is None else w[1][out])
            keep = out
        elif c == "BatchNormalization":
            if layer.axis not in (-1, len(layer.input.shape) - 1):
                raise ValueError(f"rebuild_pruned supports BatchNormalization on the last axis; "
                                 f"{layer.name!r} has axis={layer.axis}")
            new_w = w if keep is None else [a[keep] for a in w]
        elif c == "Flatten":
            shp = layer.input.shape[1:]
            if keep is not None:
                spatial, ch = int(np.prod(shp[:-1])), int(shp[-1])
                keep = (np.arange(spatial)[:, None] * ch + keep[None, :]).ravel()
            new_w = w
        elif c in _CHANNELWISE:
            new_w = w
        else:
            raise ValueError(f"rebuild_pruned does not support layer {layer.name!r} ({c}); supported: "
                             f"Conv2D, Dense, {', '.join(_CHANNELWISE)}, merges ({', '.join(_MERGES)})")
        new = type(layer).from_config(cfg)
        y = new(x)
        if new_w:
            new.set_weights(new_w)
        made[layer.name] = (y, keep)
    out_layer = model.outputs[0]._keras_history[0].name
    y, keep = made[out_layer]
    if keep is not None:  # pragma: no cover - outputs are never pruned (contract)
        raise ValueError("the model output lost channels")
    return keras.Model(inp, y, name=f"{model.name}_pruned")


def count_nonzero(model):
    """Non-zero weights per layer as a DataFrame (layer, class, weights, nonzero, sparsity).

    SpArSe's model size counts non-zero weights.  Taught in 03-sparse-pruning.
    """
    import pandas as pd

    rows = []
    for layer in model.layers:
        ws = [np.asarray(v.numpy()) for v in layer.trainable_weights]
        if not ws:
            continue
        n = int(sum(w.size for w in ws))
        nz = int(sum(np.count_nonzero(w) for w in ws))
        rows.append({"layer": layer.name, "class": _cls(layer), "weights": n, "nonzero": nz,
                     "sparsity": 1.0 - nz / n if n else 0.0})
    df = pd.DataFrame(rows, columns=["layer", "class", "weights", "nonzero", "sparsity"])
    return df

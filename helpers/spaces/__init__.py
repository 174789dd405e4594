"""Search spaces: architecture encodings -> layer lists -> Keras models.

Two spaces share one interface (plain data object, JSON round-trip, stable
``hash``, ``random(rng)``, ``mutate(rng)``, ``layers(input_shape, num_classes)``
and :func:`build`):

* :class:`GranularArch` - the muNAS granular space (Liberis et al. 2021): 1-10
  conv blocks of 1-3 layers (Conv2D, 1x1 Conv2D, depthwise Conv2D; kernel 3-7
  step 2; 1-128 filters; optional stride 2, 2x2 max pre-pool, batch-norm,
  ReLU), an optional parallel branch per block merged by Add, global or
  windowed average / max pooling, then 1-3 dense layers (hidden 10-256 units,
  the last one is the classifier). Bounds live in :class:`GranularSpace`.
* :class:`BlockArch` - MobileNetV2 inverted-residual stages as in MCUNet /
  Once-for-All: a stem, per-stage depth, per-block expansion and kernel, a width
  multiplier and an input resolution (the model resizes its input to it).
  Choices live in :class:`BlockSpace`.

``arch.layers(input_shape, num_classes)`` lowers an architecture to a list of
:class:`Layer` (one per Keras layer group: conv + BN + ReLU is one layer) with
every output shape. :func:`build` turns that list into a ``keras.Model``;
:func:`helpers.resources.profile` turns the same list into the TFLite graph the
converter would emit, so both always describe the same network. All
convolutions and pools use ``"same"`` padding, so every architecture is valid
for every input shape.

Taught in 01-search-space-cdf (block space) and 02-aging-evolution (granular
space and its morphisms).
Modules: :mod:`~helpers.spaces.granular` (μNAS), :mod:`~helpers.spaces.blocks` (MCUNet) and
:mod:`~helpers.spaces.common`; everything public is re-exported here, with :func:`from_json`
and :func:`build`. The bottom layer: imports no other part of the package (TensorFlow lazily,
in :func:`build`).
"""
from __future__ import annotations

import json
from typing import Any

from helpers.spaces.blocks import DEFAULT_BLOCK, BlockArch, BlockSpace, make_divisible
from helpers.spaces.common import GRANULAR_LAYER_TYPES, Layer
from helpers.spaces.granular import (DEFAULT_GRANULAR, Branch, ConvBlock, ConvLayer, DenseLayer,
                                     GranularArch, GranularSpace)

__all__ = ["Layer", "ConvLayer", "Branch", "ConvBlock", "DenseLayer", "GranularSpace",
           "GranularArch", "BlockSpace", "BlockArch", "build", "from_json", "from_dict",
           "make_divisible", "GRANULAR_LAYER_TYPES", "DEFAULT_BLOCK", "DEFAULT_GRANULAR"]

# ============================================================================ from json

def from_dict(d: dict):
    """Architecture from its ``to_dict()`` (the ``space`` key picks the class).
    Taught in 01-search-space-cdf.
    """
    kind = d.get("space") if isinstance(d, dict) else None
    if kind == "granular":
        return GranularArch.from_dict(d)
    if kind == "block":
        return BlockArch.from_dict(d)
    raise ValueError(f"architecture dict: 'space' must be 'granular' or 'block', got {kind!r}")


def from_json(s: str):
    """Architecture from its ``to_json()`` string. Taught in 02-aging-evolution."""
    try:
        d = json.loads(s)
    except json.JSONDecodeError as e:
        raise ValueError(f"architecture JSON does not parse: {e}") from e
    return from_dict(d)


# ================================================================================ build

def build(arch, input_shape, num_classes, seed: int | None = None):
    """Keras model of ``arch`` (GranularArch or BlockArch) for ``input_shape`` (H, W, C).

    The model outputs logits (no softmax). Conv layers followed by batch-norm
    have no bias (the converter folds BN into it); ReLU / ReLU6 are separate
    layers after BN and fused by the converter. ``seed`` fixes the weight
    initialisation. Taught in 02-aging-evolution.
    """
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers as L

    if not hasattr(arch, "layers"):
        raise ValueError(f"arch must be a GranularArch or BlockArch, got {type(arch).__name__}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    lay = arch.layers(input_shape, num_classes)
    t: dict[int, Any] = {}
    inp = keras.Input(shape=lay[0].shape, name="input")
    t[0] = inp
    for l in lay[1:]:
        p = l.params
        x = t[l.inputs[0]]
        if l.kind in ("conv", "dwconv"):
            if l.kind == "conv":
                x = L.Conv2D(p["filters"], p["kernel"], strides=p["stride"], padding="same",
                             use_bias=not p["bn"], name=l.name)(x)
            else:
                x = L.DepthwiseConv2D(p["kernel"], strides=p["stride"], padding="same",
                                      use_bias=not p["bn"], name=l.name)(x)
            if p["bn"]:
                x = L.BatchNormalization(momentum=0.9, name=l.name + "_bn")(x)
            if p["act"] == "relu":
                x = L.ReLU(name=l.name + "_relu")(x)
            elif p["act"] == "relu6":
                x = L.ReLU(6.0, name=l.name + "_relu6")(x)
        elif l.kind == "maxpool":
            x = L.MaxPooling2D(p["size"], padding="same", name=l.name)(x)
        elif l.kind == "avgpool":
            x = L.AveragePooling2D(p["size"], padding="same", name=l.name)(x)
        elif l.kind == "add":
            x = L.Add(name=l.name)([t[i] for i in l.inputs])
        elif l.kind == "gap":
            x = L.GlobalAveragePooling2D(name=l.name)(x)
        elif l.kind == "gmp":
            x = L.GlobalMaxPooling2D(name=l.name)(x)
        elif l.kind == "flatten":
            x = L.Flatten(name=l.name)(x)
        elif l.kind == "dense":
            x = L.Dense(p["units"], activation=p["act"], name=l.name)(x)
        elif l.kind == "resize":
            x = L.Resizing(p["height"], p["width"], interpolation="bilinear", name=l.name)(x)
        else:  # pragma: no cover
            raise AssertionError(l.kind)
        t[l.id] = x
    name = f"{arch.space_name}_{arch.hash}"
    return keras.Model(inp, t[lay[-1].id], name=name)

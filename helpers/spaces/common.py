"""What both search spaces share: argument checks, the layer list, the architecture mixin.

Taught in 02-aging-evolution. Imports no other module of the package.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

GRANULAR_LAYER_TYPES = ("conv", "conv1x1", "dwconv")


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def _check_input_shape(input_shape) -> tuple:
    try:
        shp = tuple(int(s) for s in input_shape)
    except TypeError:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if len(shp) != 3 or min(shp) < 1:
        raise ValueError(f"input_shape must be (height, width, channels) of positive ints, "
                         f"got {input_shape!r}")
    return shp


def _check_classes(num_classes) -> int:
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return int(num_classes)


# =============================================================================== layers

@dataclass
class Layer:
    """One Keras-level layer of a lowered architecture.

    ``kind``: ``input``, ``conv`` (Conv2D incl. 1x1), ``dwconv``, ``maxpool``,
    ``avgpool``, ``add``, ``gap`` (global average), ``gmp`` (global max),
    ``flatten``, ``dense`` or ``resize`` (bilinear). ``inputs``: ids of earlier
    layers; ``shape``: output shape without batch; ``params``: ``filters``,
    ``kernel``, ``stride``, ``bn``, ``act`` ("relu" / "relu6" / None),
    ``size`` (pool window), ``units``, ``height``/``width`` (resize). Taught in 02-aging-evolution.
    """

    id: int
    kind: str
    inputs: tuple
    shape: tuple
    params: dict = field(default_factory=dict)
    name: str = ""


def _same(n: int, s: int) -> int:
    return -(-n // s)


class _Net:
    """Tiny helper that appends layers with their output shapes."""

    def __init__(self, input_shape):
        self.layers: list[Layer] = [Layer(0, "input", (), tuple(input_shape), {}, "input")]

    def add(self, kind, inputs, shape, name, **params) -> int:
        lid = len(self.layers)
        self.layers.append(Layer(lid, kind, tuple(inputs), tuple(int(s) for s in shape),
                                 params, name))
        return lid

    def shape(self, lid):
        return self.layers[lid].shape

    def conv(self, x, filters, kernel, stride, bn, act, name):
        h, w, _ = self.shape(x)
        return self.add("conv", [x], (_same(h, stride), _same(w, stride), filters), name,
                        filters=int(filters), kernel=int(kernel), stride=int(stride),
                        bn=bool(bn), act=act)

    def dwconv(self, x, kernel, stride, bn, act, name):
        h, w, c = self.shape(x)
        return self.add("dwconv", [x], (_same(h, stride), _same(w, stride), c), name,
                        kernel=int(kernel), stride=int(stride), bn=bool(bn), act=act)

    def pool(self, x, kind, size, name):
        h, w, c = self.shape(x)
        return self.add(kind, [x], (_same(h, size), _same(w, size), c), name, size=int(size))


def _canon_json(d) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


class _ArchMixin:
    def to_json(self) -> str:
        """Canonical JSON string (round-trips through :func:`from_json`)."""
        return _canon_json(self.to_dict())

    @property
    def hash(self) -> str:
        """Stable 16-hex-digit hash of the canonical JSON (same across runs)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:16]

    def __hash__(self):
        return hash(self.to_json())

    def __eq__(self, other):
        return type(other) is type(self) and other.to_json() == self.to_json()


def _prod(shape) -> int:
    p = 1
    for v in shape:
        p *= int(v)
    return p

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
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["Layer", "ConvLayer", "Branch", "ConvBlock", "DenseLayer", "GranularSpace",
           "GranularArch", "BlockSpace", "BlockArch", "build", "from_json", "from_dict",
           "make_divisible", "GRANULAR_LAYER_TYPES"]

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
    ``size`` (pool window), ``units``, ``height``/``width`` (resize).
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


# ============================================================================ granular

@dataclass
class ConvLayer:
    """A granular-space convolution: ``type`` in conv / conv1x1 / dwconv.

    ``filters`` is ignored (0) for dwconv (depth multiplier 1); ``kernel`` is 1
    for conv1x1."""

    type: str = "conv"
    filters: int = 8
    kernel: int = 3
    stride: int = 1
    batch_norm: bool = True
    relu: bool = True

    def normalized(self) -> "ConvLayer":
        f = 0 if self.type == "dwconv" else int(self.filters)
        k = 1 if self.type == "conv1x1" else int(self.kernel)
        return replace(self, filters=f, kernel=k, stride=int(self.stride),
                       batch_norm=bool(self.batch_norm), relu=bool(self.relu))


@dataclass
class Branch:
    """A parallel branch over the block (same input, after the pre-pool), merged by Add.

    Its filters equal the block output channels and its stride the block's
    total stride, so the shapes always match."""

    type: str = "conv1x1"
    kernel: int = 1
    batch_norm: bool = True
    relu: bool = False

    def normalized(self) -> "Branch":
        k = 1 if self.type == "conv1x1" else int(self.kernel)
        return replace(self, kernel=k, batch_norm=bool(self.batch_norm), relu=bool(self.relu))


@dataclass
class ConvBlock:
    layers: list = field(default_factory=list)
    pool: bool = False
    branch: Branch | None = None


@dataclass
class DenseLayer:
    units: int = 32
    relu: bool = True


@dataclass(frozen=True)
class GranularSpace:
    """Bounds of the muNAS granular space (defaults = the paper's).

    Shrink them for quick experiments, e.g. ``GranularSpace(max_blocks=4,
    max_filters=16, max_units=32)``. ``p_branch``: probability that a sampled
    block has a parallel branch."""

    max_blocks: int = 10
    max_layers: int = 3
    min_filters: int = 1
    max_filters: int = 128
    kernels: tuple = (3, 5, 7)
    max_dense: int = 3          # dense layers including the classifier
    min_units: int = 10
    max_units: int = 256
    pool_sizes: tuple = (2, 3, 4, 5, 6)
    p_branch: float = 0.3

    def __post_init__(self):
        if not (1 <= self.max_blocks and 1 <= self.max_layers and
                1 <= self.min_filters <= self.max_filters and self.max_dense >= 1 and
                1 <= self.min_units <= self.max_units and self.kernels and self.pool_sizes):
            raise ValueError(f"GranularSpace bounds inconsistent: {self}")


DEFAULT_GRANULAR = GranularSpace()


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


@dataclass(eq=False)
class GranularArch(_ArchMixin):
    """A muNAS granular-space architecture (see module docstring).

    ``pooling``: "avg" or "max"; ``pool_size``: 0 for global pooling, else the
    window (= stride, "same" padding) before Flatten; ``dense``: hidden dense
    layers (0-2), the classifier with ``num_classes`` units is added by
    :meth:`layers`.
    """

    blocks: list
    pooling: str = "avg"
    pool_size: int = 0
    dense: list = field(default_factory=list)

    space_name = "granular"

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict:
        blocks = []
        for b in self.blocks:
            layers = []
            for l in b.layers:
                dw, pw = l.type == "dwconv", l.type == "conv1x1"
                layers.append({"type": l.type, "filters": 0 if dw else int(l.filters),
                               "kernel": 1 if pw else int(l.kernel), "stride": int(l.stride),
                               "batch_norm": bool(l.batch_norm), "relu": bool(l.relu)})
            br = b.branch
            blocks.append({"layers": layers, "pool": bool(b.pool),
                           "branch": None if br is None else {
                               "type": br.type,
                               "kernel": 1 if br.type == "conv1x1" else int(br.kernel),
                               "batch_norm": bool(br.batch_norm), "relu": bool(br.relu)}})
        return {"space": "granular", "blocks": blocks, "pooling": self.pooling,
                "pool_size": int(self.pool_size),
                "dense": [{"units": int(d.units), "relu": bool(d.relu)} for d in self.dense]}

    @classmethod
    def from_dict(cls, d: dict) -> "GranularArch":
        try:
            blocks = [ConvBlock(layers=[ConvLayer(**l) for l in b["layers"]], pool=b["pool"],
                                branch=Branch(**b["branch"]) if b.get("branch") else None)
                      for b in d["blocks"]]
            arch = cls(blocks=blocks, pooling=d["pooling"], pool_size=d["pool_size"],
                       dense=[DenseLayer(**x) for x in d["dense"]])
        except (KeyError, TypeError) as e:
            raise ValueError(f"granular architecture dict malformed ({e}): {d!r}") from e
        arch.validate()
        return arch

    def validate(self, space: GranularSpace | None = None) -> "GranularArch":
        """Raise ValueError if the architecture is outside ``space`` (default bounds)."""
        s = space or DEFAULT_GRANULAR
        if not 1 <= len(self.blocks) <= s.max_blocks:
            raise ValueError(f"blocks: {len(self.blocks)} blocks, allowed 1..{s.max_blocks}")
        for bi, b in enumerate(self.blocks):
            if not 1 <= len(b.layers) <= s.max_layers:
                raise ValueError(f"blocks[{bi}]: {len(b.layers)} layers, allowed "
                                 f"1..{s.max_layers}")
            for l in b.layers:
                if l.type not in GRANULAR_LAYER_TYPES:
                    raise ValueError(f"layer type {l.type!r} unknown; allowed "
                                     f"{GRANULAR_LAYER_TYPES}")
                if l.type != "dwconv" and not s.min_filters <= l.filters <= s.max_filters:
                    raise ValueError(f"filters={l.filters}, allowed "
                                     f"{s.min_filters}..{s.max_filters}")
                if l.type != "conv1x1" and l.kernel not in s.kernels:
                    raise ValueError(f"kernel={l.kernel}, allowed {s.kernels}")
                if l.stride not in (1, 2):
                    raise ValueError(f"stride={l.stride}, allowed 1 or 2")
            if b.branch is not None:
                if b.branch.type not in ("conv", "conv1x1"):
                    raise ValueError(f"branch type {b.branch.type!r}; allowed conv, conv1x1")
                if b.branch.type == "conv" and b.branch.kernel not in s.kernels:
                    raise ValueError(f"branch kernel={b.branch.kernel}, allowed {s.kernels}")
        if self.pooling not in ("avg", "max"):
            raise ValueError(f"pooling={self.pooling!r}; allowed 'avg', 'max'")
        if self.pool_size != 0 and self.pool_size not in s.pool_sizes:
            raise ValueError(f"pool_size={self.pool_size}; allowed 0 (global) or {s.pool_sizes}")
        if len(self.dense) > s.max_dense - 1:
            raise ValueError(f"dense: {len(self.dense)} hidden layers, allowed "
                             f"0..{s.max_dense - 1}")
        for d in self.dense:
            if not s.min_units <= d.units <= s.max_units:
                raise ValueError(f"dense units={d.units}, allowed {s.min_units}..{s.max_units}")
        return self

    # ------------------------------------------------------------- lowering
    def layers(self, input_shape, num_classes) -> list:
        """Lower to :class:`Layer` objects with output shapes (see :func:`build`)."""
        input_shape = _check_input_shape(input_shape)
        num_classes = _check_classes(num_classes)
        net = _Net(input_shape)
        x = 0
        for bi, b in enumerate(self.blocks):
            if b.pool:
                x = net.pool(x, "maxpool", 2, f"b{bi}_prepool")
            block_in = x
            total_stride = 1
            for li, l in enumerate(b.layers):
                act = "relu" if l.relu else None
                if l.type == "dwconv":
                    x = net.dwconv(x, l.kernel, l.stride, l.batch_norm, act, f"b{bi}_l{li}_dw")
                else:
                    k = 1 if l.type == "conv1x1" else l.kernel
                    x = net.conv(x, l.filters, k, l.stride, l.batch_norm, act,
                                 f"b{bi}_l{li}_{l.type}")
                total_stride *= l.stride
            if b.branch is not None:
                br = b.branch.normalized()
                k = 1 if br.type == "conv1x1" else br.kernel
                y = net.conv(block_in, net.shape(x)[2], k, total_stride, br.batch_norm,
                             "relu" if br.relu else None, f"b{bi}_branch")
                if net.shape(y) != net.shape(x):  # cannot happen with "same" padding
                    raise AssertionError((net.shape(y), net.shape(x)))
                x = net.add("add", [x, y], net.shape(x), f"b{bi}_add")
        if self.pool_size == 0:
            c = net.shape(x)[2]
            x = net.add("gap" if self.pooling == "avg" else "gmp", [x], (c,), "global_pool")
        else:
            x = net.pool(x, "avgpool" if self.pooling == "avg" else "maxpool", self.pool_size,
                         "pool")
            x = net.add("flatten", [x], (_prod(net.shape(x)),), "flatten")
        for di, d in enumerate(self.dense):
            x = net.add("dense", [x], (d.units,), f"dense{di}", units=int(d.units),
                        act="relu" if d.relu else None)
        net.add("dense", [x], (num_classes,), "classifier", units=num_classes, act=None)
        return net.layers

    # ------------------------------------------------------------- sampling
    @classmethod
    def random(cls, rng, space: GranularSpace | None = None) -> "GranularArch":
        """Uniformly sampled architecture within ``space`` (default: the paper's bounds).

        Taught in 02-aging-evolution."""
        rng = _check_rng(rng)
        s = space or DEFAULT_GRANULAR
        nb = int(rng.integers(1, s.max_blocks + 1))
        blocks = [_random_block(rng, s) for _ in range(nb)]
        return cls(blocks=blocks, pooling=str(rng.choice(["avg", "max"])),
                   pool_size=int(rng.choice((0,) + tuple(s.pool_sizes))),
                   dense=[DenseLayer(int(rng.integers(s.min_units, s.max_units + 1)), True)
                          for _ in range(int(rng.integers(0, s.max_dense)))])

    def copy(self) -> "GranularArch":
        return GranularArch.from_dict(self.to_dict())

    def mutate(self, rng, space: GranularSpace | None = None) -> "GranularArch":
        """One random muNAS morphism; returns a new, valid, different architecture.

        Morphisms: add / remove block, add / remove layer, change layer type,
        filters +-{1,3,5}, kernel +-2, toggle stride / batch-norm / ReLU / pre-pool,
        add / remove / change the parallel branch, change pooling type or window,
        add / remove a dense layer, dense units +-{1,3,5}. Taught in 02-aging-evolution.
        """
        rng = _check_rng(rng)
        s = space or DEFAULT_GRANULAR
        for _ in range(100):
            new = self.copy()
            name = _GRANULAR_MORPHS[int(rng.integers(len(_GRANULAR_MORPHS)))]
            if getattr(new, "_m_" + name)(rng, s) and new.to_json() != self.to_json():
                new.validate(s)
                new.last_mutation = name
                return new
        raise RuntimeError("no applicable mutation found")  # pragma: no cover

    # morphisms: return True if applied -----------------------------------------
    def _rand_layer(self, rng):
        bi = int(rng.integers(len(self.blocks)))
        li = int(rng.integers(len(self.blocks[bi].layers)))
        return self.blocks[bi], self.blocks[bi].layers[li]

    def _m_add_block(self, rng, s):
        if len(self.blocks) >= s.max_blocks:
            return False
        self.blocks.insert(int(rng.integers(len(self.blocks) + 1)), _random_block(rng, s))
        return True

    def _m_remove_block(self, rng, s):
        if len(self.blocks) <= 1:
            return False
        self.blocks.pop(int(rng.integers(len(self.blocks))))
        return True

    def _m_add_layer(self, rng, s):
        b = self.blocks[int(rng.integers(len(self.blocks)))]
        if len(b.layers) >= s.max_layers:
            return False
        b.layers.insert(int(rng.integers(len(b.layers) + 1)), _random_layer(rng, s))
        return True

    def _m_remove_layer(self, rng, s):
        b = self.blocks[int(rng.integers(len(self.blocks)))]
        if len(b.layers) <= 1:
            return False
        b.layers.pop(int(rng.integers(len(b.layers))))
        return True

    def _m_change_type(self, rng, s):
        _, l = self._rand_layer(rng)
        new = str(rng.choice([t for t in GRANULAR_LAYER_TYPES if t != l.type]))
        if l.type == "dwconv":
            l.filters = int(rng.integers(s.min_filters, s.max_filters + 1))
        if l.type == "conv1x1":
            l.kernel = int(rng.choice(s.kernels))
        l.type = new
        return True

    def _m_filters(self, rng, s):
        _, l = self._rand_layer(rng)
        if l.type == "dwconv":
            return False
        d = int(rng.choice([1, 3, 5])) * int(rng.choice([-1, 1]))
        l.filters = int(min(max(l.filters + d, s.min_filters), s.max_filters))
        return True

    def _m_kernel(self, rng, s):
        _, l = self._rand_layer(rng)
        if l.type == "conv1x1":
            return False
        ks = sorted(s.kernels)
        i = ks.index(l.kernel) + int(rng.choice([-1, 1]))
        l.kernel = ks[min(max(i, 0), len(ks) - 1)]
        return True

    def _m_stride(self, rng, s):
        _, l = self._rand_layer(rng)
        l.stride = 2 if l.stride == 1 else 1
        return True

    def _m_batch_norm(self, rng, s):
        _, l = self._rand_layer(rng)
        l.batch_norm = not l.batch_norm
        return True

    def _m_relu(self, rng, s):
        _, l = self._rand_layer(rng)
        l.relu = not l.relu
        return True

    def _m_prepool(self, rng, s):
        b = self.blocks[int(rng.integers(len(self.blocks)))]
        b.pool = not b.pool
        return True

    def _m_branch(self, rng, s):
        b = self.blocks[int(rng.integers(len(self.blocks)))]
        if b.branch is None:
            b.branch = _random_branch(rng, s)
        elif rng.random() < 0.5:
            b.branch = None
        else:
            nb = _random_branch(rng, s)
            if nb.normalized() == b.branch.normalized():
                return False
            b.branch = nb
        return True

    def _m_pooling(self, rng, s):
        if rng.random() < 0.5:
            self.pooling = "max" if self.pooling == "avg" else "avg"
        else:
            opts = [p for p in (0,) + tuple(s.pool_sizes) if p != self.pool_size]
            self.pool_size = int(rng.choice(opts))
        return True

    def _m_dense(self, rng, s):
        r = rng.random()
        if r < 1 / 3 and len(self.dense) < s.max_dense - 1:
            self.dense.insert(int(rng.integers(len(self.dense) + 1)),
                              DenseLayer(int(rng.integers(s.min_units, s.max_units + 1)), True))
        elif r < 2 / 3 and self.dense:
            self.dense.pop(int(rng.integers(len(self.dense))))
        elif self.dense:
            d = self.dense[int(rng.integers(len(self.dense)))]
            step = int(rng.choice([1, 3, 5])) * int(rng.choice([-1, 1]))
            d.units = int(min(max(d.units + step, s.min_units), s.max_units))
        else:
            return False
        return True


_GRANULAR_MORPHS = ("add_block", "remove_block", "add_layer", "remove_layer", "change_type",
                    "filters", "kernel", "stride", "batch_norm", "relu", "prepool", "branch",
                    "pooling", "dense")


def _random_layer(rng, s: GranularSpace) -> ConvLayer:
    t = str(rng.choice(GRANULAR_LAYER_TYPES))
    return ConvLayer(type=t,
                     filters=0 if t == "dwconv" else int(rng.integers(s.min_filters,
                                                                      s.max_filters + 1)),
                     kernel=1 if t == "conv1x1" else int(rng.choice(s.kernels)),
                     stride=int(rng.choice([1, 2])), batch_norm=bool(rng.random() < 0.5),
                     relu=bool(rng.random() < 0.7))


def _random_branch(rng, s: GranularSpace) -> Branch:
    t = str(rng.choice(["conv", "conv1x1"]))
    return Branch(type=t, kernel=1 if t == "conv1x1" else int(rng.choice(s.kernels)),
                  batch_norm=bool(rng.random() < 0.5), relu=bool(rng.random() < 0.3))


def _random_block(rng, s: GranularSpace) -> ConvBlock:
    nl = int(rng.integers(1, s.max_layers + 1))
    return ConvBlock(layers=[_random_layer(rng, s) for _ in range(nl)],
                     pool=bool(rng.random() < 0.3),
                     branch=_random_branch(rng, s) if rng.random() < s.p_branch else None)


def _prod(shape) -> int:
    p = 1
    for v in shape:
        p *= int(v)
    return p


# ================================================================================ block

def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNet channel rounding: nearest multiple of ``divisor``, >= divisor, never
    below 90% of ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return int(new)


@dataclass(frozen=True)
class BlockSpace:
    """Choices of the MobileNetV2 / OFA block space.

    ``stages``: (base output channels, stride of the first block) per searched
    stage; ``stem``: (channels, stride) of the 3x3 stem conv, followed by a fixed
    expansion-1 block with ``first_channels``. Channels scale with the width
    multiplier (rounded to multiples of 8).
    """

    kernels: tuple = (3, 5, 7)
    expansions: tuple = (3, 4, 6)
    depths: tuple = (2, 3, 4)
    widths: tuple = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    resolutions: tuple = (16, 20, 24, 28, 32, 36, 40, 44, 48)
    stem: tuple = (16, 2)
    first_channels: int = 16
    stages: tuple = ((24, 2), (40, 2), (80, 2), (96, 1))
    divisor: int = 8

    def __post_init__(self):
        if not (self.kernels and self.expansions and self.depths and self.widths and
                self.resolutions and self.stages):
            raise ValueError(f"BlockSpace: every choice list must be non-empty: {self}")


DEFAULT_BLOCK = BlockSpace()


@dataclass(eq=False)
class BlockArch(_ArchMixin):
    """An MCUNet / OFA-style architecture: ``resolution``, ``width`` multiplier and,
    per stage, a list of (expansion, kernel) blocks (its length is the depth)."""

    resolution: int
    width: float
    stages: list
    space: BlockSpace = DEFAULT_BLOCK

    space_name = "block"

    def to_dict(self) -> dict:
        d = {"space": "block", "resolution": int(self.resolution),
             "width": round(float(self.width), 4),
             "stages": [[[int(e), int(k)] for e, k in st] for st in self.stages]}
        if self.space != DEFAULT_BLOCK:  # the macro-architecture is part of the network
            d["block_space"] = {k: (list(map(list, v)) if k == "stages" else
                                    list(v) if isinstance(v, tuple) else v)
                                for k, v in asdict(self.space).items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BlockArch":
        try:
            sp = DEFAULT_BLOCK
            if d.get("block_space"):
                sp = BlockSpace(**{k: (tuple(map(tuple, v)) if k == "stages" else
                                       tuple(v) if isinstance(v, list) else v)
                                   for k, v in d["block_space"].items()})
            arch = cls(resolution=int(d["resolution"]), width=float(d["width"]),
                       stages=[[(int(e), int(k)) for e, k in st] for st in d["stages"]],
                       space=sp)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"block architecture dict malformed ({e}): {d!r}") from e
        if arch.resolution < 1 or not 0 < arch.width <= 4:
            raise ValueError(f"resolution must be >= 1 and width in (0, 4]; got {d!r}")
        return arch

    def validate(self) -> "BlockArch":
        """Raise ValueError if a choice is outside the architecture's ``space``."""
        s = self.space
        if len(self.stages) != len(s.stages):
            raise ValueError(f"stages: {len(self.stages)} given, the space has {len(s.stages)}")
        if self.width not in s.widths or self.resolution not in s.resolutions:
            raise ValueError(f"width={self.width} / resolution={self.resolution}; allowed "
                             f"widths {s.widths}, resolutions {s.resolutions}")
        for st in self.stages:
            if len(st) not in s.depths:
                raise ValueError(f"stage depth {len(st)}, allowed {s.depths}")
            for e, k in st:
                if e not in s.expansions or k not in s.kernels:
                    raise ValueError(f"block (expansion={e}, kernel={k}); allowed expansions "
                                     f"{s.expansions}, kernels {s.kernels}")
        return self

    def copy(self) -> "BlockArch":
        return BlockArch.from_dict(self.to_dict())

    def layers(self, input_shape, num_classes) -> list:
        """Lower to :class:`Layer` objects (resize, stem, inverted residuals, GAP, dense)."""
        s = self.space
        input_shape = _check_input_shape(input_shape)
        num_classes = _check_classes(num_classes)
        if len(self.stages) != len(s.stages):
            raise ValueError(f"stages: {len(self.stages)} given, the space has "
                             f"{len(s.stages)}")
        net = _Net(input_shape)
        x = 0
        r = int(self.resolution)
        if (input_shape[0], input_shape[1]) != (r, r):
            x = net.add("resize", [x], (r, r, input_shape[2]), "resize", height=r, width=r)
        div = s.divisor
        c = make_divisible(s.stem[0] * self.width, div)
        x = net.conv(x, c, 3, s.stem[1], True, "relu6", "stem")
        # fixed first block: depthwise 3x3 + linear 1x1 projection (expansion 1)
        c1 = make_divisible(s.first_channels * self.width, div)
        y = net.dwconv(x, 3, 1, True, "relu6", "first_dw")
        y = net.conv(y, c1, 1, 1, True, None, "first_project")
        x = net.add("add", [x, y], net.shape(y), "first_add") if c1 == c else y
        for si, (st, (base, stride)) in enumerate(zip(self.stages, s.stages)):
            cout = make_divisible(base * self.width, div)
            for bi, (e, k) in enumerate(st):
                cin = net.shape(x)[2]
                st_ = stride if bi == 0 else 1
                y = x
                if e != 1:
                    y = net.conv(y, cin * e, 1, 1, True, "relu6", f"s{si}b{bi}_expand")
                y = net.dwconv(y, k, st_, True, "relu6", f"s{si}b{bi}_dw")
                y = net.conv(y, cout, 1, 1, True, None, f"s{si}b{bi}_project")
                if st_ == 1 and cin == cout:
                    y = net.add("add", [x, y], net.shape(y), f"s{si}b{bi}_add")
                x = y
        x = net.add("gap", [x], (net.shape(x)[2],), "global_pool")
        net.add("dense", [x], (num_classes,), "classifier", units=num_classes, act=None)
        return net.layers

    @classmethod
    def random(cls, rng, space: BlockSpace | None = None, width: float | None = None,
               resolution: int | None = None) -> "BlockArch":
        """Uniform sample; fix ``width`` / ``resolution`` to sample one TinyNAS sub-space.

        Taught in 01-search-space-cdf."""
        rng = _check_rng(rng)
        s = space or DEFAULT_BLOCK
        w = float(rng.choice(s.widths)) if width is None else float(width)
        r = int(rng.choice(s.resolutions)) if resolution is None else int(resolution)
        stages = [[(int(rng.choice(s.expansions)), int(rng.choice(s.kernels)))
                   for _ in range(int(rng.choice(s.depths)))] for _ in s.stages]
        return cls(resolution=r, width=w, stages=stages, space=s)

    def mutate(self, rng, prob: float = 0.1,
               fix_width_resolution: bool = False) -> "BlockArch":
        """MCUNet / OFA evolution mutation: each gene (resolution, width, stage
        depth, block expansion and kernel) is resampled with probability ``prob``;
        at least one gene changes. Taught in 05-once-for-all."""
        rng = _check_rng(rng)
        if not 0 < prob <= 1:
            raise ValueError(f"prob must be in (0, 1], got {prob}")
        s = self.space
        for _ in range(1000):
            new = self.copy()
            if not fix_width_resolution:
                if rng.random() < prob:
                    new.resolution = int(rng.choice(s.resolutions))
                if rng.random() < prob:
                    new.width = float(rng.choice(s.widths))
            for si, st in enumerate(new.stages):
                if rng.random() < prob:
                    d = int(rng.choice(s.depths))
                    st = st[:d] + [(int(rng.choice(s.expansions)), int(rng.choice(s.kernels)))
                                   for _ in range(d - len(st))]
                st = [(int(rng.choice(s.expansions)) if rng.random() < prob else e,
                       int(rng.choice(s.kernels)) if rng.random() < prob else k) for e, k in st]
                new.stages[si] = st
            if new.to_json() != self.to_json():
                return new
        raise RuntimeError("mutation found no change; is the space a single point?")

    def crossover(self, other: "BlockArch", rng) -> "BlockArch":
        """Uniform crossover per gene with ``other`` (MCUNet evolution)."""
        rng = _check_rng(rng)
        pick = lambda a, b: a if rng.random() < 0.5 else b  # noqa: E731
        stages = [list(pick(a, b)) for a, b in zip(self.stages, other.stages)]
        if other.space != self.space:
            raise ValueError("crossover: both parents must come from the same BlockSpace")
        return BlockArch(resolution=pick(self.resolution, other.resolution),
                         width=pick(self.width, other.width), stages=stages, space=self.space)


# ============================================================================ from json

def from_dict(d: dict):
    """Architecture from its ``to_dict()`` (the ``space`` key picks the class)."""
    kind = d.get("space") if isinstance(d, dict) else None
    if kind == "granular":
        return GranularArch.from_dict(d)
    if kind == "block":
        return BlockArch.from_dict(d)
    raise ValueError(f"architecture dict: 'space' must be 'granular' or 'block', got {kind!r}")


def from_json(s: str):
    """Architecture from its ``to_json()`` string."""
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

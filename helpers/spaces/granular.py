"""μNAS's granular space: blocks of conv / 1x1 / depthwise layers, pooling, dense layers, morphisms.

Taught in 02-aging-evolution (the space and its morphisms). May import:
:mod:`helpers.spaces.common`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from helpers.spaces.common import (GRANULAR_LAYER_TYPES, _ArchMixin, _check_classes, _check_input_shape, _check_rng, _Net, _prod)

# ============================================================================ granular

@dataclass
class ConvLayer:
    """A granular-space convolution: ``type`` in conv / conv1x1 / dwconv.

    ``filters`` is ignored (0) for dwconv (depth multiplier 1); ``kernel`` is 1
    for conv1x1. Taught in 00-overview."""

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
    total stride, so the shapes always match. Taught in 03-sparse-pruning."""

    type: str = "conv1x1"
    kernel: int = 1
    batch_norm: bool = True
    relu: bool = False

    def normalized(self) -> "Branch":
        k = 1 if self.type == "conv1x1" else int(self.kernel)
        return replace(self, kernel=k, batch_norm=bool(self.batch_norm), relu=bool(self.relu))


@dataclass
class ConvBlock:
    """One block of the granular space: its layers, an optional 2x2 max pool and an optional
    parallel branch merged by ADD. Taught in 02-aging-evolution."""

    layers: list = field(default_factory=list)
    pool: bool = False
    branch: Branch | None = None


@dataclass
class DenseLayer:
    """One hidden fully-connected layer (``units``, ReLU or not). Taught in 02-aging-evolution."""

    units: int = 32
    relu: bool = True


@dataclass(frozen=True)
class GranularSpace:
    """Bounds of the muNAS granular space (defaults = the paper's).

    Shrink them for quick experiments, e.g. ``GranularSpace(max_blocks=4,
    max_filters=16, max_units=32)``. ``p_branch``: probability that a sampled
    block has a parallel branch. Taught in 02-aging-evolution."""

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


@dataclass(eq=False)
class GranularArch(_ArchMixin):
    """A muNAS granular-space architecture (see module docstring).

    ``pooling``: "avg" or "max"; ``pool_size``: 0 for global pooling, else the
    window (= stride, "same" padding) before Flatten; ``dense``: hidden dense
    layers (0-2), the classifier with ``num_classes`` units is added by
    :meth:`layers`. Taught in 00-overview.
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

"""MCUNet/TinyNAS's block space: MobileNetV2 inverted-residual blocks, width and resolution.

Taught in 01-search-space-cdf. May import: :mod:`helpers.spaces.common`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from helpers.spaces.common import (_ArchMixin, _check_classes,
                                   _check_input_shape, _check_rng, _Net)

# ================================================================================ block

def make_divisible(v: float, divisor: int = 8) -> int:
    """MobileNet channel rounding: nearest multiple of ``divisor``, >= divisor, never
    below 90% of ``v``. Taught in 01-search-space-cdf."""
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
    multiplier (rounded to multiples of 8). Taught in 05-once-for-all.
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
    per stage, a list of (expansion, kernel) blocks (its length is the depth).
    Taught in 01-search-space-cdf."""

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

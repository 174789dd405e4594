"""Co-design of TinyNAS stage 1 with patch-based inference (MCUNetV2, Lin et al. 2021).

The deployment schedule becomes part of the search: with ``deploy="patch"`` a sampled model's
SRAM figure is the lower of its layer-by-layer (in-place) peak and the peak of its best patch
schedule (:func:`helpers.resources.patch_plan.choose_schedule` under a MAC-overhead limit), so a
larger resolution or width fits the same board and the chosen space moves.

* :func:`patch_peak`: the patch-based peak of one architecture of :mod:`helpers.spaces`, with
  its input delivered at the space's resolution (the resize done by the camera / ISP, as in
  MCUNetV2: a patch stage cannot start with a resize), over a restricted schedule search
  (grids ``(2, 3, 4)``, the first ``max_splits`` valid split operators) to keep it ~0.15 s;
* :func:`rank_deploys` -> :class:`DeployRanking`: the same ``m`` samples per space ranked under
  each deployment;
* :func:`patch_only_arch`: the cheapest sampled model of a space that fits an SRAM budget only
  with patch-based inference (raises when none does);
* :func:`deploy_patch_only` -> :class:`PatchOnlyModel`: train it briefly, convert int8, measure
  its TFLite-Micro accuracy and arena head, its patch peak and MAC overhead, and check that the
  patch run is bit-exact with TFLite-Micro.

Taught in 01-search-space-cdf (Part 5). May import: :mod:`helpers.spaces`,
:mod:`helpers.resources`, :mod:`helpers.engine`, :mod:`helpers.deploy`, :mod:`helpers.train`,
:mod:`helpers.methods.tinynas`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from helpers import deploy as D
from helpers import spaces, train
from helpers.engine import patch as patch_engine
from helpers.methods import tinynas
from helpers.resources.graph import graph_from_layers
from helpers.resources.patch_plan import choose_schedule, valid_splits

__all__ = ["DEPLOYS", "patch_peak", "DeployRanking", "rank_deploys", "patch_only_arch",
           "resize_dataset", "PatchOnlyModel", "deploy_patch_only"]

#: The deployment schedules a search may assume.
DEPLOYS = ("layer", "patch")
_GRIDS = (2, 3, 4)


def _check_deploys(deploys) -> list:
    ds = [deploys] if isinstance(deploys, str) else list(deploys)
    bad = [d for d in ds if d not in DEPLOYS]
    if not ds or bad:
        raise ValueError(f"deploy {deploys!r}: allowed values {list(DEPLOYS)} (or a list of them)")
    return ds


def _check_overhead(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise ValueError(f"max_overhead must be a number >= 0 (0.2 = 20 % extra MACs), got {v!r}")


def patch_peak(arch, channels: int, num_classes: int, max_overhead: float = 0.2,
               grids=_GRIDS, max_splits: int = 8) -> dict | None:
    """Best patch schedule of ``arch`` with its input at (resolution, resolution, channels):
    dict peak_sram_bytes, macs, overhead, split, grid; ``None`` when no schedule of the
    restricted search is within ``max_overhead``. Taught in 01-search-space-cdf."""
    _check_overhead(max_overhead)
    r = int(arch.resolution)
    g = graph_from_layers(arch.layers((r, r, int(channels)), int(num_classes)))
    sp = valid_splits(g)[:max_splits]
    try:
        best = choose_schedule(g, max_overhead=max_overhead, grids=grids, splits=sp).best
    except ValueError:
        return None
    return {"peak_sram_bytes": best.peak_sram_bytes, "macs": best.macs, "overhead": best.overhead,
            "split": best.schedule.split, "grid": best.schedule.grid}


@dataclass
class DeployRanking:
    """One :class:`helpers.methods.tinynas.SpaceRanking` per deployment over the same samples.
    ``patch_checks``: samples given a patch schedule; ``seconds``: their cost.
    Taught in 01-search-space-cdf."""

    rankings: dict
    m: int
    max_overhead: float
    patch_checks: int
    patch_helped: int
    seconds: float

    def table(self):
        import pandas as pd
        rows = []
        for d, rk in self.rankings.items():
            top = rk.table().iloc[0]
            fit = rk.table()
            rows.append({"deploy": d, "best_width": rk.best[0], "best_resolution": rk.best[1],
                         "best_mean_mflops": float(top["mean_mflops"]),
                         "best_fit_rate": float(top["fit_rate"]),
                         "models_fitting": int(fit["n_fit"].sum()), "models": int(fit["n"].sum())})
        return pd.DataFrame(rows).set_index("deploy")

    def summary(self) -> str:
        parts = [f"{d}: w{rk.best[0]} x r{rk.best[1]} ({rk.best_mean_flops / 1e6:.2f} MFLOPs)"
                 for d, rk in self.rankings.items()]
        return (f"chosen space per deployment ({self.m} samples per space, patch overhead <= "
                f"{100 * self.max_overhead:.0f} %): " + "; ".join(parts)
                + f"; {self.patch_checks} samples planned with patches in {self.seconds:.1f} s, "
                f"{self.patch_helped} fit only that way")

    __str__ = summary

    def to_dict(self) -> dict:
        return {"m": self.m, "max_overhead": self.max_overhead, "patch_checks": self.patch_checks,
                "patch_helped": self.patch_helped, "seconds": self.seconds,
                "rankings": {d: rk.to_dict() for d, rk in self.rankings.items()}}


def rank_deploys(samples, sram_budget: int, flash_budget: int, deploys=DEPLOYS, *,
                 max_overhead: float = 0.2, m: int = 20, min_fit_rate: float = 0.0,
                 channels: int | None = None, progress: bool = True) -> DeployRanking:
    """Rank the spaces of ``samples`` (:func:`tinynas.sample_spaces`) under each deployment
    in ``deploys``, on the first ``m`` samples of every space. For ``"patch"`` a sample that
    does not fit layer by layer (and whose flash estimate is within 2 KB of the budget or
    below) is planned with :func:`patch_peak`; its SRAM figure becomes the lower peak (samples
    that already fit keep theirs: the fit decision cannot change). Taught in
    01-search-space-cdf."""
    ds = _check_deploys(deploys)
    _check_overhead(max_overhead)
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= samples.m:
        raise ValueError(f"m must be an int in [1, {samples.m}] (samples per space), got {m!r}")
    ch = int(channels or samples.input_shape[-1])
    df = samples.profiles.groupby(["width", "resolution"], sort=True).head(m).reset_index(drop=True)
    out, checks, helped, secs = {}, 0, 0, 0.0
    for d in ds:
        sub = df.copy()
        if d == "patch":
            t0 = time.perf_counter()
            need = np.flatnonzero((sub["peak_sram_bytes"].to_numpy() > sram_budget)
                                  & (sub["flash_bytes"].to_numpy() <= flash_budget + 2048))
            col = sub.columns.get_loc("peak_sram_bytes")
            for i in tinynas._progress(need, progress, desc="patch plans", leave=False):
                p = patch_peak(spaces.from_json(sub["arch"].iat[i]), ch, samples.num_classes,
                               max_overhead)
                if p is not None and p["peak_sram_bytes"] < sub.iat[i, col]:
                    helped += p["peak_sram_bytes"] <= sram_budget
                    sub.iat[i, col] = p["peak_sram_bytes"]
            checks, secs = len(need), time.perf_counter() - t0
        s = dataclasses.replace(samples, profiles=sub, m=m)
        out[d] = tinynas.rank_spaces(s, int(sram_budget), int(flash_budget),
                                     min_fit_rate=min_fit_rate)
    return DeployRanking(out, m, float(max_overhead), checks, int(helped), secs)


def patch_only_arch(width: float, resolution: int, channels: int, num_classes: int,
                    sram_budget: int, flash_budget: int, *, n: int = 20, max_overhead: float = 0.2,
                    seed: int = 0, space=None):
    """The sampled model of space (``width``, ``resolution``) with the fewest MACs whose
    layer-by-layer in-place peak is above ``sram_budget`` but whose patch-based peak fits it
    (flash within ``flash_budget``), of ``n`` seeded samples. Returns (arch, patch dict).
    Raises ValueError when none of them qualifies. Taught in 01-search-space-cdf."""
    _check_overhead(max_overhead)
    rng = np.random.default_rng([seed, int(round(float(width) * 1000)), int(resolution)])
    shape = (int(resolution), int(resolution), int(channels))
    best = None
    for _ in range(int(n)):
        a = spaces.BlockArch.random(rng, space=space or spaces.BlockSpace(), width=float(width),
                                    resolution=int(resolution))
        fp = tinynas.fast_profile(a, shape, num_classes)
        if fp.peak_sram_bytes <= sram_budget or fp.flash_bytes > flash_budget:
            continue
        p = patch_peak(a, channels, num_classes, max_overhead)
        if p is None or p["peak_sram_bytes"] > sram_budget:
            continue
        if best is None or fp.macs < best[1]["layer_macs"]:
            best = (a, dict(p, layer_peak_sram_bytes=fp.peak_sram_bytes, layer_macs=fp.macs))
    if best is None:
        raise ValueError(f"no model of space (width={width}, resolution={resolution}) among {n} "
                         f"samples fits {sram_budget:,} B SRAM only with patch-based inference "
                         f"(max_overhead={max_overhead}); try a larger resolution or width")
    return best


def resize_dataset(ds, resolution: int):
    """A copy of Dataset ``ds`` with images resized (bilinear) to ``resolution`` square, as a
    camera would deliver them. Taught in 01-search-space-cdf."""
    import tensorflow as tf
    r = int(resolution)

    def rs(x):
        return np.concatenate([tf.image.resize(x[i:i + 512], (r, r)).numpy()
                               for i in range(0, len(x), 512)]).astype(np.float32)
    return dataclasses.replace(ds, x_train=rs(ds.x_train), x_val=rs(ds.x_val),
                               x_test=rs(ds.x_test), source=ds.source + f" (resized to {r}x{r})")


@dataclass
class PatchOnlyModel:
    """A trained model that fits a board's SRAM only with patch-based inference, measured.
    Taught in 01-search-space-cdf."""

    arch_json: str
    sram_budget: int
    test_accuracy_int8: float
    n_test: int
    tflm_arena_head_bytes: int
    layer_peak_sram_bytes: int
    patch_peak_sram_bytes: int
    split: int
    grid: int
    mac_overhead: float
    macs: int
    flash_bytes: int
    bit_exact: bool
    train_seconds: float

    @property
    def fits_only_with_patch(self) -> bool:
        return self.tflm_arena_head_bytes > self.sram_budget >= self.patch_peak_sram_bytes

    def summary(self) -> str:
        return (f"int8 test accuracy {self.test_accuracy_int8:.4f} (TFLM, {self.n_test} images); "
                f"SRAM budget {self.sram_budget:,} B: TFLM arena head {self.tflm_arena_head_bytes:,} B, "
                f"patch peak {self.patch_peak_sram_bytes:,} B ({self.grid}x{self.grid} to op "
                f"{self.split}, +{100 * self.mac_overhead:.1f} % MACs); fits only with patches: "
                f"{self.fits_only_with_patch}; patch run bit-exact with TFLM: {self.bit_exact}")

    __str__ = summary

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"fits_only_with_patch": self.fits_only_with_patch}

    def figures(self, prefix: str = "patch_only_model") -> dict:
        """Flat figures for ``helpers.record``."""
        return {f"{prefix}_test_accuracy_int8": self.test_accuracy_int8,
                f"{prefix}_tflm_arena_head_bytes": self.tflm_arena_head_bytes,
                f"{prefix}_patch_peak_sram_bytes": self.patch_peak_sram_bytes,
                f"{prefix}_mac_overhead": self.mac_overhead,
                f"{prefix}_macs": self.macs,
                f"{prefix}_flash_bytes": self.flash_bytes,
                f"{prefix}_sram_budget_bytes": self.sram_budget,
                f"{prefix}_fits_only_with_patch": self.fits_only_with_patch,
                f"{prefix}_bit_exact": self.bit_exact}


def deploy_patch_only(arch, data, sram_budget: int, epochs: int = 1, *, max_overhead: float = 0.2,
                      seed: int = 0, lr: float = 3e-3, batch_size: int = 64) -> PatchOnlyModel:
    """Train ``arch`` on ``data`` (already at its resolution, :func:`resize_dataset`), convert
    int8, measure TFLM test accuracy and arena head, plan its patch schedule on the ``.tflite``
    and run it (Python engine) against TFLite-Micro on the first test image.
    Taught in 01-search-space-cdf."""
    import keras
    _check_overhead(max_overhead)
    r = int(arch.resolution)
    if tuple(data.input_shape[:2]) != (r, r):
        raise ValueError(f"data input {data.input_shape} must be at the arch resolution {r} "
                         f"(use resize_dataset)")
    keras.utils.set_random_seed(seed)
    with train.release_graphs():
        model = spaces.build(arch, data.input_shape, data.num_classes, seed=seed)
        model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=False)
        h = train.fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                      progress=False)
        tfl = D.to_tflite_int8(model, data.x_train[:128])
        del model
        keras.backend.clear_session()
    logits = D.tflm_predict(tfl, data.x_test)
    acc = float(np.mean(np.argmax(logits, -1) == data.y_test))
    head = D.measure_arena(tfl).head
    best = choose_schedule(tfl, max_overhead=max_overhead, grids=_GRIDS).best
    x = D.quantize_input(tfl, data.x_test[:1])
    ref = D.reference_outputs(tfl, x, engine="tflm").ravel()
    out = patch_engine.run(tfl, x, best.schedule).output.ravel()
    fp = tinynas.fast_profile(arch, data.input_shape, data.num_classes)
    return PatchOnlyModel(arch.to_json(), int(sram_budget), acc, len(data.x_test), int(head),
                          int(fp.peak_sram_bytes), int(best.peak_sram_bytes), best.schedule.split,
                          best.schedule.grid, float(best.overhead), int(best.base_macs), len(tfl),
                          bool(np.array_equal(out, ref)), float(h.wall_seconds))

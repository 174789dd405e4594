"""TinyNAS stage 1 (MCUNet, Lin et al. 2020): rank whole search spaces before searching.

A *space* is one (width multiplier, input resolution) pair of the MobileNetV2-style
block space (:class:`helpers.spaces.BlockSpace`). For each space we sample ``m``
architectures (the paper: m = 1000), keep those whose peak SRAM (TinyEngine's
``"inplace"`` plan) and flash fit the target, and look at the distribution of their
FLOPs: the space whose *fitting* models have the largest mean FLOPs is picked, on the
premise that, under the same memory budget, more computation means higher accuracy.
MCUNet counts FLOPs as multiply-accumulates; so do we (``macs``).

Profiling 81 spaces x 1000 networks with :func:`helpers.resources.profile` costs ~7 ms
each (most of it replays the ``.tflite`` flatbuffer to get the exact file size), so
this module has a **fast profiler** (:func:`fast_profile`): MACs, parameters and the
in-place peak SRAM are computed exactly from the architecture's layer list (a chain
scan; identical to ``resources.profile(..., plan="inplace")``, checked in the tests
and in the notebook), and flash = exact weights + biases + quantisation parameters +
a linear model of the flatbuffer's graph tables calibrated on exact profiles
(:func:`calibrate_flash`, error stated). :func:`rank_spaces` re-profiles exactly
every model whose estimate lies within the calibrated error of a budget, so the fit
decisions are the exact ones.

Taught in 01-search-space-cdf.

May import: :mod:`helpers.spaces`, :mod:`helpers.resources`, :mod:`helpers.train`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from helpers import resources, spaces, train

__all__ = ["FastProfile", "FlashModel", "fast_profile", "calibrate_flash", "SpaceSamples",
           "sample_spaces", "SpaceRanking", "rank_spaces", "rank_by_mean_flops",
           "choice_sweep", "profiling_rate", "fitting_archs", "train_archs", "TrainedArch"]

_ALIGN = 16


def _a(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _progress(it, progress, **kw):
    if not progress:
        return it
    from tqdm.auto import tqdm
    return tqdm(it, mininterval=5, **kw)


# ========================================================================= fast profile

@dataclass
class FastProfile:
    """Resources of one block-space architecture from :func:`fast_profile`.

    ``peak_sram_bytes`` (in-place plan), ``macs`` and ``params`` are exact; ``flash_bytes``
    is an estimate (``flash_exact`` False) unless re-profiled exactly.
    Taught in 01-search-space-cdf."""

    macs: int
    params: int
    peak_sram_bytes: int
    flash_bytes: int
    flash_known: int           # weights + biases + quantisation bytes (exact part)
    features: tuple            # what the flash graph-table model uses
    flash_exact: bool = False

    def to_dict(self) -> dict:
        return {"macs": self.macs, "params": self.params, "peak_sram_bytes": self.peak_sram_bytes,
                "flash_bytes": self.flash_bytes, "flash_exact": self.flash_exact}

    def summary(self) -> str:
        return (f"MACs {self.macs:,}  params {self.params:,}  peak SRAM (inplace) "
                f"{self.peak_sram_bytes:,} B  flash {'' if self.flash_exact else '~'}"
                f"{self.flash_bytes:,} B")

    __str__ = summary


@dataclass
class FlashModel:
    """Linear model of the ``.tflite`` bytes that are not weights, biases or
    quantisation parameters (flatbuffer tables, alignment), fitted on exact profiles.

    ``max_error`` / ``rmse``: bytes, on the calibration set. Taught in 01-search-space-cdf."""

    coef: tuple
    max_error: float
    rmse: float
    n: int

    def predict(self, known: int, features: tuple) -> int:
        return int(round(known + float(np.dot(self.coef, (1.0,) + tuple(features)))))

    def to_dict(self) -> dict:
        return {"coef": list(self.coef), "max_error_bytes": self.max_error,
                "rmse_bytes": self.rmse, "n": self.n}

    def summary(self) -> str:
        return (f"flash model: calibrated on {self.n} exact profiles, max error "
                f"{self.max_error:.0f} B, RMSE {self.rmse:.0f} B")

    __str__ = summary


#: used when no calibration was run: a model that always defers to the exact profiler
#: near a budget (large error bound).
_UNCALIBRATED = FlashModel(coef=(64.0, 427.0, 213.0, -44.0, 340.0, 0.8), max_error=4096.0,
                           rmse=float("nan"), n=0)


def fast_profile(arch, input_shape, num_classes, flash_model: FlashModel | None = None
                 ) -> FastProfile:
    """MACs, params, in-place peak SRAM (exact) and flash (estimate) of a BlockArch.

    No TensorFlow, no flatbuffer: a single pass over ``arch.layers(...)``.
    The peak SRAM mirrors :func:`helpers.resources.plan` with ``"inplace"`` for
    chain graphs (the block space): tensors 16-byte aligned, network input and output
    included, MEAN's int32 scratch, a depthwise convolution whose input has no other
    consumer and is not smaller than its output writes over that input with one extra
    output channel of scratch. Taught in 01-search-space-cdf.
    """
    if not hasattr(arch, "layers") or getattr(arch, "space_name", "") != "block":
        raise ValueError(f"fast_profile: arch must be a helpers.spaces.BlockArch, got "
                         f"{type(arch).__name__}")
    L = arch.layers(input_shape, num_classes)
    n = len(L)
    size = [0] * n
    ncons = [0] * n
    for l in L:
        s = 1
        for v in l.shape:
            s *= int(v)
        size[l.id] = s
        for i in l.inputs:
            ncons[i] += 1
    root = list(range(n))
    inpl = [False] * n
    macs = params = w = b = pad = 0
    q = 12  # the network input's quantisation parameters
    n_conv = n_dw = n_add = n_resize = 0
    for l in L[1:]:
        p = l.params
        kind = l.kind
        if kind == "conv" or kind == "dwconv":
            cin = L[l.inputs[0]].shape[2]
            k = p["kernel"]
            ho, wo, co = l.shape
            ww = co * k * k * cin if kind == "conv" else k * k * co
            macs += ho * wo * ww
            params += ww + co
            w += ww
            b += 4 * co
            q += 24 * co + 12
            pad += _a(ww) - ww
            if kind == "conv":
                n_conv += 1
            else:
                n_dw += 1
                x = l.inputs[0]
                if ncons[x] == 1 and size[l.id] <= size[x] and l.id != n - 1:
                    inpl[l.id] = True
                    root[l.id] = root[x]
        elif kind == "dense":
            nin = L[l.inputs[0]].shape[0]
            u = p["units"]
            macs += nin * u
            params += nin * u + u
            w += nin * u
            b += 4 * u
            q += 24 * u + 12
            pad += _a(nin * u) - nin * u
        elif kind in ("add", "gap", "resize"):
            q += 12
            if kind == "add":
                n_add += 1
            elif kind == "gap":
                b += 8
            else:
                b += 8
                n_resize += 1
        else:
            raise ValueError(f"fast_profile: layer kind {kind!r} is not in the block space")
    # peak SRAM along the (unique) chain order
    last = {}
    for l in L:
        for i in l.inputs:
            r = root[i]
            if last.get(r, -1) < l.id:
                last[r] = l.id
    last[root[n - 1]] = n + 1
    bufs = [(i, _a(size[i])) for i in range(n) if root[i] == i]
    peak = 0
    for l in L[1:]:
        o = l.id
        live = 0
        for bi, bs in bufs:
            if bi < o and last.get(bi, -1) >= o:
                live += bs
        if inpl[o]:
            live += _a(l.shape[0] * l.shape[1])
        else:
            live += _a(size[o])
        if l.kind == "gap":
            live += _a(4 * l.shape[0])
        if live > peak:
            peak = live
    known = w + b + q
    feats = (n_conv, n_dw, n_add, n_resize, pad)
    fm = flash_model or _UNCALIBRATED
    return FastProfile(macs=macs, params=params, peak_sram_bytes=peak,
                       flash_bytes=fm.predict(known, feats), flash_known=known, features=feats)


def _exact(arch, input_shape, num_classes):
    return resources.profile(arch, input_shape, num_classes, plan="inplace", table=False)


def calibrate_flash(input_shape, num_classes, n: int = 60, *, space=None, seed: int = 0,
                    archs=None) -> FlashModel:
    """Fit :class:`FlashModel` on ``n`` random architectures profiled exactly.

    Taught in 01-search-space-cdf."""
    if archs is None:
        if not isinstance(n, int) or n < 8:
            raise ValueError(f"n must be an int >= 8 (calibration profiles), got {n!r}")
        rng = np.random.default_rng(seed)
        archs = [spaces.BlockArch.random(rng, space=space) for _ in range(n)]
    X, y = [], []
    for a in archs:
        fp = fast_profile(a, input_shape, num_classes)
        ex = _exact(a, input_shape, num_classes)
        X.append((1.0,) + tuple(fp.features))
        y.append(ex.flash_bytes - fp.flash_known)
    X, y = np.asarray(X, float), np.asarray(y, float)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    err = X @ coef - y
    return FlashModel(coef=tuple(float(c) for c in coef), max_error=float(np.abs(err).max()),
                      rmse=float(np.sqrt(np.mean(err ** 2))), n=len(y))


def profiling_rate(archs, input_shape, num_classes, how: str = "fast",
                   flash_model: FlashModel | None = None) -> float:
    """Architectures profiled per minute (single process, wall clock) by
    ``how`` = "fast" (:func:`fast_profile`) or "exact" (``resources.profile``, in-place
    plan, no per-layer table). Taught in 01-search-space-cdf."""
    if how not in ("fast", "exact"):
        raise ValueError(f"how must be 'fast' or 'exact', got {how!r}")
    archs = list(archs)
    if not archs:
        raise ValueError("archs must be a non-empty list of BlockArch")
    t0 = time.perf_counter()
    for a in archs:
        if how == "fast":
            fast_profile(a, input_shape, num_classes, flash_model)
        else:
            _exact(a, input_shape, num_classes)
    return 60.0 * len(archs) / (time.perf_counter() - t0)


# ============================================================================ sampling

@dataclass
class SpaceSamples:
    """``m`` sampled architectures per (width, resolution) space with their fast profiles.

    ``profiles``: DataFrame with columns width, resolution, arch (JSON), macs, params,
    peak_sram_bytes, flash_bytes, flash_exact. Taught in 01-search-space-cdf."""

    profiles: object
    input_shape: tuple
    num_classes: int
    m: int
    flash_model: FlashModel
    seconds: float
    seed: int

    @property
    def spaces(self) -> list:
        df = self.profiles
        return sorted(set(zip(df["width"], df["resolution"])))

    def summary(self) -> str:
        return (f"{len(self.spaces)} spaces x {self.m} architectures = {len(self.profiles):,} "
                f"profiled in {self.seconds:.1f} s "
                f"({60 * len(self.profiles) / max(self.seconds, 1e-9):,.0f}/min); "
                + self.flash_model.summary())

    __str__ = summary

    def table(self):
        return self.profiles

    def to_dict(self) -> dict:
        return {"n_spaces": len(self.spaces), "m": self.m, "n": len(self.profiles),
                "seconds": self.seconds, "flash_model": self.flash_model.to_dict()}


def sample_spaces(widths, resolutions, m: int, input_shape, num_classes, *, space=None,
                  seed: int = 0, flash_model: FlashModel | None = None,
                  progress: bool = True) -> SpaceSamples:
    """Sample ``m`` architectures in every (width, resolution) space and fast-profile them.

    ``space`` (a :class:`helpers.spaces.BlockSpace`) gives the per-block choices; the
    width and resolution of each sample are fixed to the space's. The samples of a
    space depend only on ``seed`` and the space, not on the grid.
    Taught in 01-search-space-cdf."""
    import pandas as pd
    widths, resolutions = list(widths), list(resolutions)
    if not widths or any(not 0 < float(w) <= 4 for w in widths):
        raise ValueError(f"widths must be a non-empty list of multipliers in (0, 4], "
                         f"got {widths!r}")
    if not resolutions or any(int(r) != r or r < 1 for r in resolutions):
        raise ValueError(f"resolutions must be a non-empty list of positive ints, "
                         f"got {resolutions!r}")
    if not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be a positive int (architectures per space), got {m!r}")
    sp = space or spaces.BlockSpace()
    t0 = time.perf_counter()
    fm = flash_model or calibrate_flash(input_shape, num_classes, space=sp, seed=seed)
    rows = []
    grid = [(float(w), int(r)) for w in widths for r in resolutions]
    for w, r in _progress(grid, progress, desc="spaces", leave=False):
        rng = np.random.default_rng([seed, int(round(w * 1000)), r])
        for _ in range(m):
            a = spaces.BlockArch.random(rng, space=sp, width=w, resolution=r)
            fp = fast_profile(a, input_shape, num_classes, fm)
            rows.append((w, r, a.to_json(), fp.macs, fp.params, fp.peak_sram_bytes,
                         fp.flash_bytes, False))
    df = pd.DataFrame(rows, columns=["width", "resolution", "arch", "macs", "params",
                                     "peak_sram_bytes", "flash_bytes", "flash_exact"])
    return SpaceSamples(df, tuple(input_shape), int(num_classes), m, fm,
                        time.perf_counter() - t0, seed)


# ============================================================================= ranking

def rank_by_mean_flops(flops_by_space: dict) -> list:
    """Spaces ordered best first by the mean FLOPs of their fitting models.

    ``flops_by_space``: {space: FLOPs of the models that fit}. A space where nothing
    fits ranks last (ties keep the given order). Taught in 01-search-space-cdf."""
    def key(item):
        v = np.asarray(item[1], float)
        return -v.mean() if v.size else math.inf
    return [k for k, _ in sorted(flops_by_space.items(), key=key)]


@dataclass
class SpaceRanking:
    """Spaces ranked by the mean FLOPs of their fitting models (MCUNet Fig. 3 logic).

    ``table()``: one row per space, best first: width, resolution, n, n_fit, fit_rate,
    mean_mflops (fitting models), median_mflops, p10/p90. ``best``: (width,
    resolution). ``flops``: {space: MACs of fitting models}. Taught in
    01-search-space-cdf."""

    rows: object
    flops: dict
    sram_budget: int
    flash_budget: int
    exact_checks: int

    @property
    def best(self) -> tuple:
        r = self.rows.iloc[0]
        return float(r["width"]), int(r["resolution"])

    @property
    def best_mean_flops(self) -> float:
        return float(self.rows.iloc[0]["mean_mflops"]) * 1e6

    def table(self):
        return self.rows

    def summary(self) -> str:
        w, r = self.best
        if not bool(self.rows.iloc[0]["eligible"]):
            return (f"budgets: SRAM {self.sram_budget:,} B, flash {self.flash_budget:,} B: "
                    f"no space has enough fitting models")
        return (f"budgets: SRAM {self.sram_budget:,} B, flash {self.flash_budget:,} B; best "
                f"space width {w} x resolution {r}: {int(self.rows.iloc[0]['n_fit'])}/"
                f"{int(self.rows.iloc[0]['n'])} fit, mean {self.best_mean_flops / 1e6:.2f} "
                f"MFLOPs; {self.exact_checks} near-budget models re-profiled exactly")

    __str__ = summary

    def to_dict(self) -> dict:
        return {"best_width": self.best[0], "best_resolution": self.best[1],
                "best_mean_flops": self.best_mean_flops, "sram_budget": self.sram_budget,
                "flash_budget": self.flash_budget, "exact_checks": self.exact_checks,
                "rows": self.rows.to_dict("records")}


def _fits(samples: SpaceSamples, sram_budget: int, flash_budget: int, exact: bool):
    df = samples.profiles
    sram_ok = df["peak_sram_bytes"].to_numpy() <= sram_budget
    fl = df["flash_bytes"].to_numpy()
    margin = samples.flash_model.max_error * 2 + 64
    checks = 0
    if exact:
        near = np.flatnonzero(sram_ok & (np.abs(fl - flash_budget) <= margin) &
                              ~df["flash_exact"].to_numpy())
        if len(near):
            col = df.columns.get_loc("flash_bytes")
            colx = df.columns.get_loc("flash_exact")
            for i in near:
                a = spaces.from_json(df.iat[i, df.columns.get_loc("arch")])
                df.iat[i, col] = _exact(a, samples.input_shape, samples.num_classes).flash_bytes
                df.iat[i, colx] = True
            checks = len(near)
            fl = df["flash_bytes"].to_numpy()
    return sram_ok & (fl <= flash_budget), checks


def rank_spaces(samples: SpaceSamples, sram_budget: int, flash_budget: int, *,
                exact: bool = True, min_fit_rate: float = 0.0) -> SpaceRanking:
    """Rank the sampled spaces under the budgets (bytes): keep the models whose peak
    SRAM and flash fit, rank spaces by the mean FLOPs (MACs) of those.

    ``exact``: re-profile with ``resources.profile`` every model whose flash estimate
    is within twice the calibrated error of ``flash_budget`` (the SRAM figure is
    already exact). ``min_fit_rate``: spaces where a smaller fraction of the samples
    fits are ranked after all others (0 = the paper's rule; a mean over 1-2 survivors
    is noise, and a search there would reject almost every candidate).
    Taught in 01-search-space-cdf."""
    import pandas as pd
    if not 0 <= min_fit_rate < 1:
        raise ValueError(f"min_fit_rate must be in [0, 1), got {min_fit_rate!r}")
    for nm, v in (("sram_budget", sram_budget), ("flash_budget", flash_budget)):
        if not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{nm} must be a positive number of bytes, got {v!r}")
    fit, checks = _fits(samples, int(sram_budget), int(flash_budget), exact)
    df = samples.profiles.assign(fit=fit)
    flops, rows = {}, []
    for (w, r), g in df.groupby(["width", "resolution"], sort=True):
        f = g.loc[g["fit"], "macs"].to_numpy(float)
        flops[(float(w), int(r))] = f
        rows.append({"width": float(w), "resolution": int(r), "n": len(g), "n_fit": len(f),
                     "fit_rate": len(f) / len(g),
                     "mean_mflops": f.mean() / 1e6 if len(f) else float("nan"),
                     "median_mflops": float(np.median(f)) / 1e6 if len(f) else float("nan"),
                     "p10_mflops": float(np.percentile(f, 10)) / 1e6 if len(f) else float("nan"),
                     "p90_mflops": float(np.percentile(f, 90)) / 1e6 if len(f) else float("nan")})
    eligible = {k: v for k, v in flops.items() if len(v) and len(v) / samples.m >= min_fit_rate}
    order = rank_by_mean_flops(eligible)
    order += rank_by_mean_flops({k: v for k, v in flops.items() if k not in eligible})
    by = {(r["width"], r["resolution"]): r for r in rows}
    table = pd.DataFrame([by[k] for k in order])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["eligible"] = [k in eligible for k in order]
    return SpaceRanking(table.reset_index(drop=True), flops, int(sram_budget),
                        int(flash_budget), checks)


def choice_sweep(samples: SpaceSamples, sram_budgets, flash_budgets, *, exact: bool = True,
                 min_fit_rate: float = 0.0, progress: bool = True):
    """The chosen space for every (SRAM, flash) budget pair (MCUNet Fig. 12 logic).

    Returns a DataFrame: sram_budget, flash_budget, best_width, best_resolution,
    best_mean_mflops, n_fit (of the best space). Taught in 01-search-space-cdf."""
    import pandas as pd
    out = []
    pairs = [(int(s), int(f)) for s in sram_budgets for f in flash_budgets]
    for s, f in _progress(pairs, progress, desc="budgets", leave=False):
        rk = rank_spaces(samples, s, f, exact=exact, min_fit_rate=min_fit_rate)
        top = rk.rows.iloc[0]
        ok = bool(top["eligible"])
        out.append({"sram_budget": s, "flash_budget": f,
                    "best_width": float(top["width"]) if ok else float("nan"),
                    "best_resolution": int(top["resolution"]) if ok else -1,
                    "best_mean_mflops": float(top["mean_mflops"]) if ok else float("nan"),
                    "n_fit": int(top["n_fit"])})
    return pd.DataFrame(out)


def fitting_archs(samples: SpaceSamples, width: float, resolution: int, n: int,
                  sram_budget: int, flash_budget: int, *, seed: int = 0) -> list:
    """``n`` architectures drawn (seeded, without replacement) from the fitting samples
    of one space; fewer if fewer fit. Taught in 01-search-space-cdf."""
    fit, _ = _fits(samples, int(sram_budget), int(flash_budget), True)
    df = samples.profiles
    sel = np.flatnonzero(fit & (df["width"].to_numpy() == float(width)) &
                         (df["resolution"].to_numpy() == int(resolution)))
    if not len(sel):
        raise ValueError(f"no sampled model of space (width={width}, resolution={resolution}) "
                         f"fits SRAM {sram_budget} B / flash {flash_budget} B")
    rng = np.random.default_rng(seed)
    pick = rng.choice(sel, size=min(n, len(sel)), replace=False)
    return [spaces.from_json(df["arch"].iat[i]) for i in sorted(pick)]


# ============================================================================ training

@dataclass
class TrainedArch:
    """One architecture trained from scratch by :func:`train_archs`.
    Taught in 01-search-space-cdf.
    """

    arch_json: str
    group: str
    macs: int
    val_accuracy: float
    test_accuracy: float
    seconds: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def train_archs(archs, data, epochs: int, *, group: str = "", seed: int = 0, lr: float = 3e-3,
                batch_size: int = 64, progress: bool = True) -> list:
    """Train each architecture from scratch (``spaces.build`` + ``train.fit``), one after
    the other, and return :class:`TrainedArch` rows (test accuracy on ``data.x_test``).

    Taught in 01-search-space-cdf (space-quality claim) and 05-once-for-all (scratch
    baselines)."""
    import keras
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")  # one predict function per new model is expected
    out = []
    for i, a in enumerate(_progress(list(archs), progress, desc=f"train {group}".strip(),
                                    leave=False)):
        keras.utils.set_random_seed(seed + i)
        with train.release_graphs():
            model = spaces.build(a, data.input_shape, data.num_classes, seed=seed + i)
            # XLA compilation of each new model costs more than a short training run
            model.compile(optimizer=keras.optimizers.Adam(lr),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"], jit_compile=False)
            h = train.fit(model, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed + i,
                          progress=False)
            acc = train.accuracy(model, data.x_test, data.y_test)
            fp = fast_profile(a, data.input_shape, data.num_classes)
            out.append(TrainedArch(a.to_json(), group, fp.macs, h.val_accuracy[-1], acc,
                                   h.wall_seconds))
            del model
            keras.backend.clear_session()
    return out

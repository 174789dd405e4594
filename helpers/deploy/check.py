"""Checking our resource model and kernels against TFLite-Micro on sampled models.

Taught in 06-deployment (the agreement and bit-exactness checks). May import:
:mod:`helpers.spaces`, :mod:`helpers.resources`, :mod:`helpers.deploy.convert`,
:mod:`helpers.deploy.tflm`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from helpers import resources, spaces
from helpers import spaces as S
from helpers.deploy.convert import to_tflite_int8
from helpers.deploy.tflm import measure_arena

# ----------------------------------------------------------------------------- checking

def randomize_weights(model, seed: int = 0) -> None:
    """Give a freshly built Keras model trained-looking parameters, in place.

    Biases ~ N(0, 0.1) and batch-norm statistics / affine parameters away from
    their identity initialisation. Untrained models have all-zero biases, which
    the converter may drop, so checks of a deployed size use this first. Taught in 06-deployment.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        cls = type(layer).__name__
        new = []
        if cls == "BatchNormalization":
            names = [w.path.split("/")[-1] for w in layer.weights]
            for nm, w in zip(names, ws):
                if nm in ("gamma", "moving_variance"):
                    new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
                else:
                    new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype))
        else:
            for w in ws:
                new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype) if w.ndim == 1 else w)
        layer.set_weights(new)


def check_against_tflm(arch, input_shape, num_classes, seed: int = 0, n_samples: int = 4,
                       keep_bytes: bool = False) -> dict:
    """Build ``arch``, convert it to int8, run TFLite-Micro, compare with the estimate.

    The slow path behind the agreement checks (:func:`agreement`). Returns a
    dict with the estimated ("tflm" plan) and measured arena head, the flash
    estimate and the file size, the "reordered" / "inplace" estimates, and
    whether the operator sequence the estimator predicted matches the file. Taught in 06-deployment.
    """
    model = spaces.build(arch, input_shape, num_classes, seed=seed)
    randomize_weights(model, seed)
    rng = np.random.default_rng(seed)
    rep = rng.standard_normal((n_samples,) + tuple(input_shape)).astype(np.float32)
    b = to_tflite_int8(model, rep)
    measured = measure_arena(b, isolate=False, invoke=True)
    g_est = resources.graph_from_layers(arch.layers(input_shape, num_classes))
    g_file = resources.graph_from_tflite(b)
    sig = lambda g: [(op.opcode, tuple(g.tensors[op.outputs[0]].shape)) for op in g.ops]  # noqa
    est = resources.plan(g_est, "tflm").peak_sram_bytes
    flash = resources.flash_bytes(g_est)
    payload = len(b) - resources.FLASH_FIXED_OVERHEAD
    out = {"hash": arch.hash, "arch": arch.to_dict(),
           "head_estimate": est, "head_measured": measured.head,
           "head_match": est == measured.head,
           "head_from_file_plan": resources.plan(g_file, "tflm").peak_sram_bytes,
           "reordered": resources.plan(g_est, "reordered").peak_sram_bytes,
           "inplace": resources.plan(g_est, "inplace").peak_sram_bytes,
           "flash_estimate": flash["total"], "file_bytes": len(b),
           "flash_rel_error": abs(flash["total"] - len(b)) / max(payload, 1),
           "ops_match": sig(g_file) == sig(g_est), "n_ops": len(g_file.ops),
           "branched": any(op.opcode == "ADD" for op in g_file.ops),
           "macs": g_est.macs, "tail_measured": measured.tail}
    if keep_bytes:
        out["tflite"] = b
    return out


#: Search spaces of the TFLM agreement check: the real spaces' structure, shrunk so
#: a model converts in about a second (28x28x1 for granular, 32x32x3 for block).
def agreement_spaces():
    """(GranularSpace, BlockSpace, granular input shape, block input shape) of the
    agreement check. Taught in 06-deployment."""
    gs = spaces.GranularSpace(max_blocks=5, max_filters=16, max_units=32, p_branch=0.5)
    bs = spaces.BlockSpace(widths=(0.2, 0.3, 0.4, 0.5), resolutions=(16, 20, 24, 28, 32, 36),
                           stem=(8, 2), first_channels=8, stages=((16, 2), (24, 2), (32, 2)))
    return gs, bs, (28, 28, 1), (32, 32, 3)


@dataclass
class AgreementReport:
    """Outcome of :func:`agreement`: per-architecture rows and the counts.
    Taught in 06-deployment.
    """

    space: str
    n: int
    seed: int
    head_agree: int
    flash_within_1pct: int
    flash_exact: int
    ops_agree: int
    branched: int
    reordered_le_tflm: int
    reordered_lt_tflm_branched: int
    rows: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.space}: TFLM arena head estimate == measured for {self.head_agree}/"
                f"{self.n}; flash within 1% for {self.flash_within_1pct}/{self.n} (exact "
                f"{self.flash_exact}/{self.n}); operator sequence {self.ops_agree}/{self.n}; "
                f"branched {self.branched}; reordered <= tflm {self.reordered_le_tflm}/{self.n}, "
                f"< on {self.reordered_lt_tflm_branched} branched; {self.seconds:.0f} s")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


def agreement(space: str = "granular", n: int = 10, seed: int = 0,
              progress: bool = True) -> AgreementReport:
    """Estimate vs TFLite-Micro on ``n`` random architectures of ``space``.

    ``space``: "granular" or "block" (the shrunk spaces of
    :func:`agreement_spaces`). Every architecture is built, given random
    trained-looking weights, converted with :func:`to_tflite_int8` and measured
    with the interpreter. Taught in 06-deployment; run by
    ``scripts/check_tflm_agreement.py`` and tests/test_resources.py.
    """
    import time
    if space not in ("granular", "block"):
        raise ValueError(f"space={space!r}; allowed 'granular', 'block'")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    gs, bs, gshape, bshape = agreement_spaces()
    rng = np.random.default_rng(seed)
    rows = []
    t0 = time.time()
    it = range(n)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"TFLM agreement ({space})")
    for i in it:
        if space == "granular":
            arch, shape = spaces.GranularArch.random(rng, gs), gshape
        else:
            arch, shape = spaces.BlockArch.random(rng, bs), bshape
        rows.append(check_against_tflm(arch, shape, 10, seed=seed * 100003 + i))
    return AgreementReport(
        space=space, n=n, seed=seed,
        head_agree=sum(r["head_match"] for r in rows),
        flash_within_1pct=sum(r["flash_rel_error"] <= 0.01 for r in rows),
        flash_exact=sum(r["flash_estimate"] == r["file_bytes"] for r in rows),
        ops_agree=sum(r["ops_match"] for r in rows),
        branched=sum(r["branched"] for r in rows),
        reordered_le_tflm=sum(r["reordered"] <= r["head_estimate"] for r in rows),
        reordered_lt_tflm_branched=sum(r["branched"] and r["reordered"] < r["head_estimate"]
                                       for r in rows),
        rows=rows, seconds=time.time() - t0)
# --------------------------------------------------------------------------------------
# A sampled test set (both search spaces), for bit-exactness checks
# --------------------------------------------------------------------------------------

#: Size presets of :func:`sample_models`: granular-space bounds, input size, block-space
#: widths and resolutions.
SAMPLE_PRESETS = {
    "tiny": dict(granular=dict(max_blocks=3, max_layers=2, max_filters=12, max_units=24,
                               max_dense=2), hw=12, widths=(0.2, 0.3), resolutions=(16, 20)),
    "small": dict(granular=dict(max_blocks=5, max_layers=3, max_filters=32, max_units=64,
                                max_dense=3), hw=16, widths=(0.2, 0.3, 0.4, 0.5),
                  resolutions=(16, 20, 24, 28, 32)),
}


def sample_models(n: int, seed: int = 0, size: str = "tiny", spaces=("granular", "block"),
                  num_classes: int = 10, progress: bool = True, cache_dir=None) -> list:
    """``n`` int8 .tflite models sampled alternately from the search spaces of
    :mod:`helpers.spaces` (granular muNAS space and MobileNetV2 block space), with
    random weights and a random representative set. Returns a list of
    ``(name, tflite_bytes)``. ``size``: ``"tiny"`` (CI) or ``"small"``. With
    ``cache_dir`` each converted model is kept there and reused (the i-th model depends
    only on ``seed``, ``size``, ``spaces`` and ``i``). Taught in 06-deployment (the
    bit-exactness check)."""

    if size not in SAMPLE_PRESETS:
        raise ValueError(f"size must be one of {list(SAMPLE_PRESETS)}, got {size!r}")
    bad = [s for s in spaces if s not in ("granular", "block")]
    if bad or not spaces:
        raise ValueError(f"spaces must be a non-empty subset of ('granular', 'block'), got {spaces!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pre = SAMPLE_PRESETS[size]
    gspace = S.GranularSpace(**pre["granular"])
    rng = np.random.default_rng(seed)
    out = []
    it = range(n)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="sample_models")
    for i in it:
        kind = spaces[i % len(spaces)]
        s = int(rng.integers(1 << 31))
        r = np.random.default_rng(s)
        path = None
        if cache_dir is not None:
            tag = f"{size}-{seed}-{'_'.join(spaces)}-{num_classes}-{i}"
            path = Path(cache_dir) / f"{tag}.tflite"
            if path.exists() and path.with_suffix(".name").exists():
                out.append((path.with_suffix(".name").read_text(), path.read_bytes()))
                continue
        if kind == "granular":
            arch = S.GranularArch.random(r, gspace)
            ch = int(r.choice([1, 3]))
            shape = (pre["hw"], pre["hw"], ch)
        else:
            arch = S.BlockArch.random(r, width=float(r.choice(pre["widths"])),
                                      resolution=int(r.choice(pre["resolutions"])))
            shape = (arch.resolution, arch.resolution, 3)
        model = S.build(arch, shape, num_classes, seed=s)
        rep = r.normal(0, 1, (8,) + shape).astype(np.float32)
        item = (f"{kind}-{i}-{arch.hash[:8]}", to_tflite_int8(model, rep))
        if path is not None:  # atomic writes: several test processes may share the cache
            import os
            path.parent.mkdir(parents=True, exist_ok=True)
            for dst, data in ((path, item[1]), (path.with_suffix(".name"), item[0].encode())):
                tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, dst)
        out.append(item)
    return out

"""Reference models (DS-CNN, MobileNetV2-style) and models recorded by earlier notebooks.

Taught in 06-deployment. May import: :mod:`helpers.run`, :mod:`helpers.spaces`,
:mod:`helpers.deploy.convert`.
"""
from __future__ import annotations

import os
from pathlib import Path

from helpers import run as _run
from helpers.run import latest_run
from helpers import spaces as S

# ----------------------------------------------------------------------------- 06-deployment
# Reference models and recorded models (appended for notebook 06-deployment).

#: Built-in reference models of :func:`reference_model` (name -> description).
REFERENCE_MODELS = {
    "ds-cnn": "DS-CNN (MLPerf Tiny KWS reference shape, Zhang et al. 2017): a 3x3 stride-2 "
              "conv with 64 x width filters, 4 x (3x3 depthwise + 1x1 conv of 64 x width), "
              "global average pooling, dense classifier; BN + ReLU everywhere. MLPerf's first "
              "conv is 10x4; here 3x3, the largest the granular space of helpers.spaces allows "
              "on a 10-wide input",
    "mobilenetv2-0.35": "MobileNetV2-style (Sandler et al. 2018) at width multiplier "
                        "0.35 x width: 3x3 stride-2 stem, an expansion-1 block, then 4 stages "
                        "(24, 40, 80, 96 base channels; strides 2, 2, 2, 1) of two inverted "
                        "residual blocks (expansion 6, 3x3 depthwise), GAP, dense classifier; "
                        "the model of scripts/bench_emulator.py and docs/emulator.md",
}


class RecordedModelError(ValueError):
    """A ``MODEL="run:..."`` spec names a model that no run folder holds.
    Taught in 06-deployment.
    """


def reference_arch(name: str, input_shape, width: float | None = None):
    """Architecture of a built-in reference model (no TensorFlow needed).

    ``name``: one of :data:`REFERENCE_MODELS` - ``"ds-cnn"`` (a
    :class:`helpers.spaces.GranularArch`) or ``"mobilenetv2-0.35"`` (a
    :class:`helpers.spaces.BlockArch`; needs a square input, whose side becomes the
    resolution, because a resize op would not run in the int8 kernels of
    :mod:`helpers.engine.kernels`). ``width`` scales the model relative to its name
    (default 1.0): ds-cnn has ``round(64 * width)`` filters, mobilenetv2-0.35 the
    width multiplier ``0.35 * width``. Taught in 06-deployment.
    """

    if not isinstance(name, str) or name.lower() not in REFERENCE_MODELS:
        raise ValueError(f"MODEL / name={name!r} is not a reference model; allowed: "
                         f"{sorted(REFERENCE_MODELS)} (or 'run:NN-name[.label]' for a recorded one)")
    name = name.lower()
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (H, W, C) with positive sizes, got {input_shape!r}")
    w = 1.0 if width is None else width
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 2:
        raise ValueError(f"width must be a number in (0, 2] (scale relative to the named "
                         f"model), got {width!r}")
    w = float(w)
    if name == "ds-cnn":
        f = max(1, int(round(64 * w)))
        blocks = [S.ConvBlock([S.ConvLayer("conv", filters=f, kernel=3, stride=2)])]
        blocks += [S.ConvBlock([S.ConvLayer("dwconv", kernel=3),
                                S.ConvLayer("conv1x1", filters=f)]) for _ in range(4)]
        return S.GranularArch(blocks=blocks, pooling="avg", dense=[])
    if shape[0] != shape[1]:
        raise ValueError(f"mobilenetv2-0.35 needs a square input (H == W, used as the "
                         f"resolution); got input_shape {shape}. Use 'ds-cnn' for this dataset "
                         f"or a square one (e.g. mnist)")
    return S.BlockArch(resolution=shape[0], width=round(0.35 * w, 4),
                       stages=[[(6, 3), (6, 3)] for _ in range(4)])


def reference_model(name: str, input_shape, num_classes: int, width: float | None = None,
                    seed: int = 0):
    """``(arch, keras_model)`` of a built-in reference model (see :func:`reference_arch`),
    built with :func:`helpers.spaces.build` (logits output, seeded initial weights).
    Train it, or give it random trained-looking weights with :func:`randomize_weights`
    for resource measurements. Taught in 06-deployment."""

    arch = reference_arch(name, input_shape, width)
    return arch, S.build(arch, tuple(int(d) for d in input_shape), num_classes, seed=seed)


def parse_model_spec(spec: str) -> tuple:
    """Split a notebook ``MODEL`` value: ``("reference", name)`` for a built-in name or
    ``("run", notebook, label)`` for ``"run:NN-name"`` / ``"run:NN-name.label"``
    (label defaults to ``"best"``). Raises ValueError naming the allowed forms.
    Taught in 06-deployment."""
    import re as _re

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"MODEL must be a string, got {spec!r}")
    s = spec.strip()
    if s.lower() in REFERENCE_MODELS:
        return ("reference", s.lower())
    m = _re.match(r"^run:([0-9]{2}-[a-z0-9-]+)(?:\.([a-z0-9_-]+))?$", s)
    if m:
        return ("run", m.group(1), m.group(2) or "best")
    raise ValueError(f"MODEL={spec!r}: allowed a reference model {sorted(REFERENCE_MODELS)} or "
                     f"'run:NN-name[.label]' (a model saved by helpers.save_model, e.g. "
                     f"'run:02-aging-evolution')")


def recorded_model(spec: str, runs=None) -> tuple:
    """The ``.tflite`` bytes a notebook saved with :func:`helpers.save_model`.

    ``spec``: ``"run:NN-name"`` or ``"run:NN-name.label"`` (label ``best`` by
    default). Looked up in ``runs`` (a run folder or a list of them) or, by
    default, the current run folder (``$TINYNAS_RUN_DIR``, when set) and then the
    latest folder under ``runs/`` (:func:`helpers.runner.latest_run`), via
    :func:`helpers.load_models`. Returns ``(tflite_bytes, folder)``; raises
    :class:`RecordedModelError` saying where it looked and what it found.
    Taught in 06-deployment.
    """


    kind, *rest = parse_model_spec(spec)
    if kind != "run":
        raise ValueError(f"recorded_model: spec must be 'run:NN-name[.label]', got {spec!r}")
    notebook, label = rest
    if runs is None:
        folders = []
        if os.environ.get(_run.RUN_DIR_ENV):
            folders.append(Path(os.environ[_run.RUN_DIR_ENV]))
        try:
            folders.append(latest_run())
        except FileNotFoundError:
            pass
    else:
        folders = [Path(runs)] if isinstance(runs, (str, os.PathLike)) else [Path(r) for r in runs]
    seen = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        models = _run.load_models(folder)
        seen[str(folder)] = sorted(f"{nb}.{lb}" for nb, lbs in models.items() for lb in lbs)
        if label in models.get(notebook, {}):
            return models[notebook][label], folder
    raise RecordedModelError(
        f"MODEL={spec!r}: no {notebook}.{label}.tflite found; looked in "
        f"{[str(f) for f in folders] or 'no run folder (runs/ is empty)'}; models there: "
        f"{seen or 'none'}. Run notebook {notebook} first (it saves its model with "
        f"helpers.save_model), or use a reference model {sorted(REFERENCE_MODELS)}")

"""Standard test models ("bring your own model"): the MLPerf Tiny reference architectures and
TFLite-Micro's example models at their published shapes, with seeded weights, converted the
way users convert them.

Taught in 06-deployment. :func:`build` returns the ``.tflite`` bytes of one model of
:data:`NAMES`, converted with ``tf.lite.TFLiteConverter.from_keras_model`` (the plain
converter users call: dynamic batch, so a Keras ``Flatten`` / ``Reshape`` leaves the
SHAPE / STRIDED_SLICE / PACK / RESHAPE tail) with int8 internals and either int8 I/O
(``io="int8"``) or the float I/O wrapper the converter adds by default (``io="float"``:
QUANTIZE first, DEQUANTIZE last). Weights are drawn from a NumPy generator seeded by
``seed`` (no global randomness) and calibration uses a short seeded set, so the bytes are a
function of (name, io, seed, TensorFlow version); they are cached on disk under the
package's temp cache (``<tmp>/tinynas-zoo``). The weights are random, not trained: these
models test op coverage, resources and bit-exactness, not accuracy.

:func:`check` runs one model in our Python interpreter, TFLite-Micro and (optionally) the
emulated C and says what runs and what is bit-exact.

TensorFlow is imported lazily. May import: :mod:`helpers.tflite_io`, :mod:`helpers.engine`,
:mod:`helpers.deploy.convert`, :mod:`helpers.deploy.tflm`.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from helpers import tflite_io
from helpers.deploy.convert import _quiet_fds
from helpers.deploy.tflm import reference_outputs
from helpers.engine import emulator, interpreter

__all__ = ["NAMES", "DESCRIPTIONS", "IOS", "build", "input_shape", "cache_dir", "calibration", "convert", "check"]

#: Model name -> what it is (architecture and source of the published shape).
DESCRIPTIONS = {
    "ds-cnn-kws": "MLPerf Tiny KWS DS-CNN (Zhang et al. 2017; MLPerf Tiny v0.5): 49x10x1 MFCC "
                  "input, 10x4 stride-2 conv of 64 filters, 4 x (3x3 depthwise + 1x1 conv 64), "
                  "BN + ReLU, 25x5 average pool, flatten, dense 12, softmax",
    "resnet8": "MLPerf Tiny image classification ResNet-8 (CIFAR-10 32x32x3): 3x3 conv 16, "
               "three residual stacks (16, 32, 64 filters; strides 1, 2, 2; 1x1 projection "
               "shortcuts), 8x8 average pool, flatten, dense 10, softmax",
    "mobilenetv1-vww": "MLPerf Tiny visual wake words MobileNetV1-0.25 at 96x96x3: 3x3 "
                       "stride-2 conv 8, 13 depthwise-separable blocks (16 .. 256 channels), "
                       "3x3 average pool, flatten, dense 2, softmax",
    "fc-autoencoder": "MLPerf Tiny anomaly detection FC autoencoder: 640 inputs, dense "
                      "128-128-128-128-8-128-128-128-128 (BN + ReLU), dense 640 output",
    "micro-speech": "TFLite-Micro micro_speech tiny_conv: 1960 (49x40) input, reshape to "
                    "49x40x1, 10x8 stride-2 conv of 8 filters + ReLU, flatten, dense 4, softmax",
    "person-detection": "TFLite-Micro person_detection MobileNetV1-0.25 at 96x96x1 (grayscale): "
                        "the VWW body, 3x3 average pool, 1x1 conv to 2 classes, reshape, softmax",
}
#: The model names :func:`build` accepts.
NAMES = tuple(DESCRIPTIONS)
#: The I/O types :func:`build` accepts.
IOS = ("int8", "float")

_INPUT_SHAPES = {"ds-cnn-kws": (49, 10, 1), "resnet8": (32, 32, 3), "mobilenetv1-vww": (96, 96, 3),
                 "fc-autoencoder": (640,), "micro-speech": (1960,),
                 "person-detection": (96, 96, 1)}
#: Version of the builders below; part of the cache key.
_VERSION = 2


def input_shape(name: str) -> tuple:
    """Input shape (without batch) of zoo model ``name``. Taught in 06-deployment."""
    return _INPUT_SHAPES[_check_name(name)]


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in DESCRIPTIONS:
        raise KeyError(f"zoo model name={name!r} is unknown; allowed: {list(NAMES)}")
    return name


def cache_dir() -> Path:
    """Folder where :func:`build` keeps converted models. Taught in 06-deployment."""
    d = Path(tempfile.gettempdir()) / "tinynas-zoo"
    d.mkdir(parents=True, exist_ok=True)
    return d


# ----------------------------------------------------------------------------- architectures

def _keras_model(name: str):
    import keras
    from keras import layers as L

    shape = _INPUT_SHAPES[name]
    inp = keras.Input(shape)

    def cbr(x, f, k, s=1):
        x = L.Conv2D(f, k, strides=s, padding="same", use_bias=False)(x)
        return L.ReLU()(L.BatchNormalization()(x))

    def dws(x, f, s=1):
        x = L.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        return cbr(x, f, 1)

    def mobilenet_body(x):
        x = cbr(x, 8, 3, 2)
        for f, s in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1),
                     (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]:
            x = dws(x, f, s)
        return x

    if name == "ds-cnn-kws":
        x = cbr(inp, 64, (10, 4), 2)
        for _ in range(4):
            x = dws(x, 64)
        x = L.AveragePooling2D(pool_size=(25, 5))(x)
        x = L.Dense(12)(L.Flatten()(x))
        out = L.Softmax()(x)
    elif name == "resnet8":
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(inp)))
        for f, s in [(16, 1), (32, 2), (64, 2)]:
            y = L.ReLU()(L.BatchNormalization()(L.Conv2D(f, 3, strides=s, padding="same")(x)))
            y = L.BatchNormalization()(L.Conv2D(f, 3, padding="same")(y))
            if s != 1:
                x = L.Conv2D(f, 1, strides=s, padding="same")(x)
            x = L.ReLU()(L.Add()([x, y]))
        x = L.AveragePooling2D(pool_size=8)(x)
        x = L.Dense(10)(L.Flatten()(x))
        out = L.Softmax()(x)
    elif name == "mobilenetv1-vww":
        x = mobilenet_body(inp)
        x = L.AveragePooling2D(pool_size=3)(x)
        x = L.Dense(2)(L.Flatten()(x))
        out = L.Softmax()(x)
    elif name == "fc-autoencoder":
        x = inp
        for u in (128, 128, 128, 128, 8, 128, 128, 128, 128):
            x = L.ReLU()(L.BatchNormalization()(L.Dense(u)(x)))
        out = L.Dense(640)(x)
    elif name == "micro-speech":
        x = L.Reshape((49, 40, 1))(inp)
        x = L.Conv2D(8, (10, 8), strides=2, padding="same", activation="relu")(x)
        x = L.Dense(4)(L.Flatten()(x))
        out = L.Softmax()(x)
    else:  # person-detection
        x = mobilenet_body(inp)
        x = L.AveragePooling2D(pool_size=3)(x)
        x = L.Conv2D(2, 1)(x)
        x = L.Reshape((2,))(x)
        out = L.Softmax()(x)
    return keras.Model(inp, out, name=name.replace("-", "_"))


def _seed_weights(model, seed: int) -> None:
    """Every weight from one NumPy generator: kernels He-normal, biases N(0, 0.1), BN
    statistics and affine parameters away from identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":
            names = [w.path.split("/")[-1] for w in layer.weights]
            new = [rng.uniform(0.5, 1.5, w.shape) if nm in ("gamma", "moving_variance")
                   else rng.normal(0, 0.1, w.shape) for nm, w in zip(names, ws)]
        else:
            new = []
            for w in ws:
                if w.ndim == 1:
                    new.append(rng.normal(0, 0.1, w.shape))
                else:
                    fan_in = int(np.prod(w.shape[:-1])) if type(layer).__name__ != \
                        "DepthwiseConv2D" else int(np.prod(w.shape[:2]))
                    new.append(rng.normal(0, np.sqrt(2.0 / max(fan_in, 1)), w.shape))
        layer.set_weights([np.asarray(a, dtype=w.dtype) for a, w in zip(new, ws)])


def calibration(name: str, seed: int = 0, n: int = 8) -> np.ndarray:
    """The seeded calibration set :func:`build` converts with: ``n`` standard-normal samples
    of the model's input shape, ``(n, *shape)`` float32. Taught in 06-deployment."""
    rng = np.random.default_rng([int(seed), 1])
    return rng.standard_normal((n,) + input_shape(name)).astype(np.float32)


# ----------------------------------------------------------------------------- conversion

def convert(model, rep: np.ndarray, io: str = "int8", fast: bool = False) -> bytes:
    """Convert a Keras ``model`` the way users do: ``TFLiteConverter.from_keras_model``
    (dynamic batch), int8 internals calibrated on ``rep`` (``(N, *shape)`` floats), int8 or
    float (``io``) input and output; names stripped. ``fast=True`` converts the same traced
    graph (dynamic batch, frozen weights) with ``from_concrete_functions``, skipping the
    SavedModel export (for tests). Taught in 06-deployment."""
    if io not in IOS:
        raise ValueError(f"io={io!r}: allowed {list(IOS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    rep = np.asarray(rep, np.float32)

    def gen():
        for i in range(rep.shape[0]):
            yield [rep[i:i + 1]]

    if fast:
        # the graph from_keras_model converts (dynamic batch, frozen weights) without its
        # SavedModel export: same operators, a few times faster
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2)
        spec = tf.TensorSpec((None,) + tuple(int(d) for d in model.inputs[0].shape[1:]),
                             tf.float32)
        fn = tf.function(lambda x: model(x, training=False))
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function(spec))
        conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    else:
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io == "int8":
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    import logging
    import warnings
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        with _quiet_fds(), warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            return tflite_io.canonical_bytes(bytes(conv.convert()))
    finally:
        absl_logger.setLevel(level)


def build(name: str, io: str = "int8", seed: int = 0, cache: bool = True) -> bytes:
    """The ``.tflite`` bytes of zoo model ``name`` (one of :data:`NAMES`).

    ``io="int8"``: int8 input and output; ``io="float"``: float32 input and output around
    int8 internals (the plain converter's default: a QUANTIZE first and a DEQUANTIZE
    last). ``seed`` draws the weights and the calibration set (:func:`calibration`).
    Tensor names and signature defs are stripped (:func:`helpers.tflite_io.canonical_bytes`;
    TFLite-Micro never reads them, and Keras' layer counters would make the bytes differ
    from one build to the next); operators, tensors and constants are the converter's.
    Converted once per (name, io, seed, TensorFlow version) and cached in
    :func:`cache_dir` (``cache=False`` rebuilds and does not write). Taught in
    06-deployment.
    """
    _check_name(name)
    if io not in IOS:
        raise ValueError(f"io={io!r}: allowed {list(IOS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    key = hashlib.sha1(repr((name, io, int(seed), tf.__version__, _VERSION)).encode()
                       ).hexdigest()[:12]
    path = cache_dir() / f"{name}-{io}-s{int(seed)}-{key}.tflite"
    if cache and path.is_file():
        b = path.read_bytes()
        try:
            tflite_io.read(b)
            return b
        except Exception:  # a torn write: rebuild
            pass
    model = _keras_model(name)
    _seed_weights(model, int(seed))
    b = convert(model, calibration(name, int(seed)), io)
    if cache:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(b)
        os.replace(tmp, path)
    return b


def check(name: str, io: str = "int8", seed: int = 0, emulate: bool = True,
          target: str = "stm32f746zg") -> dict:
    """Run zoo model ``name`` on one seeded input in TFLite-Micro, in
    :func:`helpers.engine.interpreter.run` (``tflm`` plan) and, with ``emulate``, in the
    emulated C (:func:`helpers.engine.emulator.run`, ``inplace`` plan, DSP kernels, on
    ``target``). Returns a flat dict: ``runs_python``, ``bit_exact_python``, ``emulated``,
    ``bit_exact_emulated``, ``cycles`` (estimated, None when not emulated), ``error`` (the
    first failure, "" when none). Taught in 06-deployment."""
    b = build(name, io=io, seed=seed)
    m = tflite_io.read(b)
    tin = m.tensors[m.inputs[0]]
    rng = np.random.default_rng([int(seed), 2])
    x = rng.standard_normal(tuple(tin.shape)).astype(np.float32)
    if tin.dtype == np.int8:
        x = np.clip(np.round(x / tin.scale[0]) + tin.zero_point[0], -128, 127).astype(np.int8)
    ref = reference_outputs(b, x, engine="tflm")
    row = {"model": name, "io": io, "runs_python": False, "bit_exact_python": False,
           "emulated": False, "bit_exact_emulated": False, "cycles": None, "error": ""}
    try:
        y = interpreter.run(b, x).output
        row["runs_python"] = True
        row["bit_exact_python"] = bool(np.array_equal(y.reshape(ref.shape), ref))
    except Exception as e:  # reported, not raised: this is a coverage check
        row["error"] = f"python: {type(e).__name__}: {e}"
    if emulate:
        try:
            r = emulator.run(b, x, target=target)
            row["emulated"] = True
            row["bit_exact_emulated"] = bool(np.array_equal(r.output.reshape(ref.shape), ref))
            row["cycles"] = float(r.cycles)
        except Exception as e:
            row["error"] = row["error"] or f"emulator: {type(e).__name__}: {e}"
    return row

"""int8 TFLite conversion of a Keras model, and int8 input quantisation.

Taught in 00-overview and 06-deployment. :func:`to_tflite_int8` is full-integer conversion
(int8 weights, activations, input and output), batch fixed to 1 so every shape is static.
TensorFlow is imported lazily. May import: :mod:`helpers.tflite_io`.
"""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from helpers import tflite_io

# ----------------------------------------------------------------------------- conversion

def _representative(representative_data, input_shape):
    if callable(representative_data):
        return representative_data
    data = representative_data
    if hasattr(data, "as_numpy_iterator"):
        data = [np.asarray(d[0] if isinstance(d, (tuple, list)) else d)
                for d in data.as_numpy_iterator()]
    arr = np.asarray(data, dtype=np.float32) if not isinstance(data, list) else None
    if arr is not None:
        if arr.shape == tuple(input_shape):
            arr = arr[None]
        if arr.ndim != len(input_shape) + 1 or tuple(arr.shape[1:]) != tuple(input_shape):
            raise ValueError(f"representative_data: expected samples of shape "
                             f"{tuple(input_shape)} (array (N, *shape)), got array {arr.shape}")
        samples = [arr[i:i + 1] for i in range(arr.shape[0])]
    else:
        samples = [np.asarray(d, np.float32).reshape((1,) + tuple(input_shape)) for d in data]
    if not samples:
        raise ValueError("representative_data: empty; give at least one sample")

    def gen():
        for s in samples:
            yield [s]
    return gen


def to_tflite_int8(model, representative_data, strip: bool = True) -> bytes:
    """Full-integer int8 conversion of a Keras model; returns the ``.tflite`` bytes.

    Weights int8 (per-channel for conv / depthwise / dense), biases int32,
    activations int8, and an int8 input and output. The batch dimension is fixed
    to 1 and the weights frozen, so shapes are static (Flatten becomes one
    RESHAPE, no shape arithmetic). Batch-norm is folded into the preceding
    convolution and ReLU / ReLU6 fused by the converter. ``representative_data``: array ``(N, *input_shape)`` of float
    samples (a few hundred real ones for accuracy; a handful is enough for
    resource checks), a list of samples, a ``tf.data`` dataset or a generator
    function yielding ``[batch]`` lists.

    ``strip=True`` (default) removes what TFLite-Micro never reads - tensor and
    subgraph names and the signature defs - and re-serialises the flatbuffer with
    every constant buffer 16-byte aligned (like TF's ``strip_strings`` tool). The
    names otherwise cost tens of bytes per tensor and depend on Keras' global
    layer counters, so only the stripped file has a size that can be predicted
    from the architecture (:func:`helpers.resources.profile` ``flash_bytes``).

    Taught in 06-deployment.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    gen = _representative(representative_data, input_shape)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    # Trace with batch 1 and freeze the weights into constants: static shapes, and
    # ~5x faster than from_keras_model (which exports a SavedModel first). The
    # converted graph is the same (checked: identical operators, tensors, scales).
    import logging
    absl_logger = logging.getLogger("absl")
    absl_level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "deprecated conversion path" notice
    fn = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(
        fn.get_concrete_function(tf.TensorSpec((1,) + input_shape, tf.float32)))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    import warnings
    try:
        with _quiet_fds(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            out = conv.convert()
    finally:
        absl_logger.setLevel(absl_level)
    return strip_strings(bytes(out)) if strip else bytes(out)


def strip_strings(tflite_bytes) -> bytes:
    """Drop tensor / subgraph names and signature defs and re-serialise canonically
    (constants first, 16-byte aligned buffers, see
    :func:`helpers.tflite_io.canonical_bytes`). Runs identically in TFLite-Micro.
    Taught in 00-overview.
    """
    return tflite_io.canonical_bytes(tflite_bytes)


class _quiet_fds:
    """Silence C-level stdout/stderr chatter (TF converter) unless it fails."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = (os.dup(1), os.dup(2))
        os.dup2(self._tmp.fileno(), 1)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, et, ev, tb):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        os.close(self._saved[0])
        os.close(self._saved[1])
        if et is not None:
            self._tmp.seek(0)
            text = self._tmp.read().decode(errors="replace")[-4000:]
            sys.stderr.write(text)
        self._tmp.close()
        return False


def quantize_input(tflite_bytes, x) -> np.ndarray:
    """Float samples ``x`` -> the model's int8 input (its scale and zero point), as
    :func:`tflm_predict` does. Taught in 06-deployment."""
    parsed = tflite_io.read(tflite_bytes)
    tin = parsed.tensors[parsed.inputs[0]]
    s = float(tin.scale[0]) if tin.scale.size else 1.0
    z = int(tin.zero_point[0]) if tin.zero_point.size else 0
    return np.clip(np.round(np.asarray(x, np.float64) / s) + z, -128, 127).astype(np.int8)

"""helpers.engine.kernels: int8 reference kernels bit-exact with TFLite-Micro / TFLite, and the
arena interpreter under every memory plan (tflm, reordered, inplace).

CI part: 7 small Keras models covering every supported op (conv, depthwise with
multiplier 1 and 2, pointwise, residual add, average / max pooling, mean, reduce-max,
fully connected, reshape, softmax) plus 2 models sampled from the search spaces.
Slow part (``--run-slow``): 24 models sampled from both search spaces.
"""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from helpers.engine import kernels as K
from helpers import deploy
from helpers.engine import interpreter
from helpers import tflite_io

CACHE = Path(tempfile.gettempdir()) / "tinynas-test-models-v1"


# ------------------------------------------------------------------ test models

def _convert(model, shape, seed):
    from helpers import deploy
    rep = np.random.default_rng(seed).normal(0, 1, (8,) + shape).astype(np.float32)
    return deploy.to_tflite_int8(model, rep)


def _keras_model(i):
    """Hand-built models: each op family and option appears at least once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(100 + i)
    if i == 0:   # MobileNetV2-style block with residual add, GAP, softmax
        shape = (12, 12, 3)
        inp = keras.Input(shape)
        x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(inp)
        h = L.Conv2D(24, 1, activation="relu6")(x)
        h = L.DepthwiseConv2D(3, padding="same", activation="relu6")(h)
        h = L.Conv2D(8, 1)(h)
        x = L.Add()([x, h])
        x = L.GlobalAveragePooling2D()(x)
        out = L.Dense(5, activation="softmax")(x)
    elif i == 1:  # valid padding, 5x5, stride 2 depthwise, multiplier 2, avg pool, flatten
        shape = (16, 16, 1)
        inp = keras.Input(shape)
        x = L.Conv2D(6, 5, padding="valid", activation="relu")(inp)
        x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
        x = L.AveragePooling2D(3, strides=2, padding="same")(x)
        x = L.Flatten()(x)
        out = L.Dense(7)(x)
    elif i == 2:  # max pool valid, BN (folded), two dense layers
        shape = (10, 10, 2)
        inp = keras.Input(shape)
        x = L.Conv2D(12, 3, padding="same", use_bias=False)(inp)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
        x = L.MaxPooling2D(2)(x)
        x = L.DepthwiseConv2D(5, strides=2, padding="same", activation="relu")(x)
        x = L.Flatten()(x)
        x = L.Dense(16, activation="relu")(x)
        out = L.Dense(4)(x)
    elif i == 3:  # global max pool (REDUCE_MAX), odd sizes, stride-2 same padding
        shape = (11, 9, 3)
        inp = keras.Input(shape)
        x = L.Conv2D(5, 3, strides=2, padding="same", activation="relu")(inp)
        x = L.MaxPooling2D(3, strides=1, padding="same")(x)
        x = L.GlobalMaxPooling2D()(x)
        out = L.Dense(3, activation="softmax")(x)
    elif i == 4:  # two stride-1 in-place candidates and a residual at full resolution
        shape = (16, 16, 4)
        inp = keras.Input(shape)
        x = L.Conv2D(16, 1, activation="relu6")(inp)
        h = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
        h = L.DepthwiseConv2D(5, strides=2, padding="same", activation="relu6")(h)
        h = L.Conv2D(16, 1)(h)
        y = L.Conv2D(16, 1, strides=2)(x)
        x = L.Add()([y, h])
        x = L.AveragePooling2D(2)(x)
        x = L.Flatten()(x)
        out = L.Dense(10)(x)
    elif i == 5:  # 7x7 kernel, channel counts not multiples of 4 (DSP tails)
        shape = (14, 14, 1)
        inp = keras.Input(shape)
        x = L.Conv2D(7, 7, strides=2, padding="same", activation="relu")(inp)
        x = L.Conv2D(9, 3, padding="same", activation="relu")(x)
        x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = L.GlobalAveragePooling2D()(x)
        out = L.Dense(6, activation="softmax")(x)
    elif i == 6:  # no activation anywhere, dense straight from the input
        shape = (6, 6, 2)
        inp = keras.Input(shape)
        x = L.Conv2D(3, 1)(inp)
        x = L.Flatten()(x)
        out = L.Dense(5)(x)
    else:
        raise IndexError(i)
    return _convert(keras.Model(inp, out), shape, i)


N_KERAS = 7


def keras_models():
    """The hand-built models as (name, bytes), cached on disk between test files."""
    out = []
    for i in range(N_KERAS):
        p = CACHE / f"keras-{i}.tflite"
        if not p.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")
            tmp.write_bytes(_keras_model(i))
            os.replace(tmp, p)   # atomic: parallel test runs share the cache
        out.append((f"keras-{i}", p.read_bytes()))
    return out


def space_models(n=2, size="tiny", seed=0):
    return deploy.sample_models(n, seed=seed, size=size, progress=False, cache_dir=CACHE / "spaces")


def sample_input(b, seed=0):
    m = tflite_io.read(b)
    shape = m.tensors[m.inputs[0]].shape
    return np.clip(np.random.default_rng(seed).normal(0, 50, shape), -128, 127).astype(np.int8)


def tflm_all_tensors(b, x):
    """Every tensor of the TFLite-Micro run (preserve-all mode) and its output."""
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(
        b, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    it.set_input(x, 0)
    it.invoke()
    m = tflite_io.read(b)
    tensors = {op.outputs[0]: np.asarray(it.GetTensor(op.outputs[0], 0)["tensor_data"]).ravel()
               for op in m.ops}
    return tensors, np.asarray(it.get_output(0))


def check_model(b, seeds=(0, 1), plans=("tflm", "reordered", "inplace")):
    """Every intermediate tensor equals TFLM's (no-sharing layout), and the output of
    every memory plan equals TFLM's. Returns the number of ops compared."""
    m = tflite_io.read(b)
    for seed in seeds:
        x = sample_input(b, seed)
        ref, ref_out = tflm_all_tensors(b, x)
        it = interpreter.Interpreter(b, plan=None)
        it.invoke(x)
        for op in m.ops:
            got = it._view(op.outputs[0])
            assert np.array_equal(got, ref[op.outputs[0]]), \
                f"op {op.index} {op.opcode} differs from TFLite-Micro (max |d| = " \
                f"{np.abs(got.astype(int) - ref[op.outputs[0]].astype(int)).max()})"
        for plan in plans:
            r = interpreter.run(b, x, plan=plan, check_live=True)
            assert np.array_equal(r.output.ravel(), ref_out.ravel()), f"plan {plan}"
    return len(m.ops)


# ------------------------------------------------------------------ arithmetic units

def test_quantize_multiplier_matches_frexp_rules():
    assert K.quantize_multiplier(0.0) == (0, 0)
    assert K.quantize_multiplier(0.5) == (1 << 30, 0)
    assert K.quantize_multiplier(1.0) == (1 << 30, 1)
    m, s = K.quantize_multiplier(0.0123)
    assert (1 << 30) <= m < (1 << 31) and abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-9
    # rounding q*2^31 up to exactly 2^31 renormalises
    m, s = K.quantize_multiplier(np.nextafter(1.0, 0.0))
    assert (m, s) == (1 << 30, 1)
    assert K.quantize_multiplier(2.0 ** -40) == (0, 0)   # shift < -31 flushes to zero


def _mbqm_scalar(x, m, s):
    """Straight transcription of TFLite's double-rounding MultiplyByQuantizedMultiplier."""
    ls, rs = max(s, 0), max(-s, 0)
    a = x * (1 << ls)
    ab = a * m
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    hi = int((ab + nudge) / (1 << 31)) if abs(ab + nudge) < 2 ** 52 else \
        (ab + nudge) // (1 << 31) if ab + nudge >= 0 else -((-(ab + nudge)) // (1 << 31))
    mask = (1 << rs) - 1
    rem = hi & mask
    thr = (mask >> 1) + (1 if hi < 0 else 0)
    return (hi >> rs) + (1 if rem > thr else 0)


def test_multiply_by_quantized_multiplier_vectorised_equals_scalar():
    rng = np.random.default_rng(0)
    x = rng.integers(-(1 << 20), 1 << 20, 400)
    m = rng.integers(1 << 30, (1 << 31) - 1, 400)
    s = rng.integers(-12, 2, 400)
    got = K.multiply_by_quantized_multiplier(x, m, s, "double")
    want = [_mbqm_scalar(int(a), int(b), int(c)) for a, b, c in zip(x, m, s)]
    assert got.tolist() == want
    single = K.multiply_by_quantized_multiplier(x, m, s, "single")
    assert np.abs(single - got).max() <= 1 and np.any(single != got)  # the variants differ


def test_activation_ranges():
    assert K.activation_range("NONE", 0.1, 3) == (-128, 127)
    assert K.activation_range("RELU", 0.1, -5) == (-5, 127)
    assert K.activation_range("RELU6", 0.05, -128) == (-128, -8)
    with pytest.raises(K.UnsupportedOpError, match="RELU6"):
        K.activation_range("TANH", 0.1, 0)


# ------------------------------------------------------------------ bit-exactness

@pytest.mark.parametrize("i", range(N_KERAS))
def test_keras_models_bit_exact_with_tflm_every_tensor_every_plan(i):
    name, b = keras_models()[i]
    assert check_model(b) >= 3


def test_space_models_bit_exact_ci():
    for name, b in space_models(2):
        check_model(b, seeds=(0,))


def test_tflite_reference_interpreter_agrees_on_non_fc_tensors():
    """tf.lite.Interpreter with the reference kernels gives the same tensors except that
    per-channel FULLY_CONNECTED may differ by 1 (TFLite computes that multiplier
    differently from TFLite-Micro; we follow TFLite-Micro)."""
    import tensorflow as tf
    name, b = keras_models()[0]
    m = tflite_io.read(b)
    x = sample_input(b)
    it = tf.lite.Interpreter(
        model_content=b, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    ours = interpreter.Interpreter(b, plan=None)
    ours.invoke(x)
    for op in m.ops:
        ref = it.get_tensor(op.outputs[0]).ravel()
        got = ours._view(op.outputs[0])
        tol = 1 if op.opcode in ("FULLY_CONNECTED", "SOFTMAX") else 0
        assert np.abs(ref.astype(int) - got.astype(int)).max() <= tol, op.opcode


def test_inplace_plan_really_runs_in_place_and_is_smaller():
    name, b = keras_models()[4]
    x = sample_input(b)
    r_tflm = interpreter.run(b, x, plan="tflm")
    r_in = interpreter.run(b, x, plan="inplace")
    assert np.array_equal(r_tflm.output, r_in.output)
    inplace_ops = [o for o in r_in.per_op if o["inplace"]]
    assert inplace_ops, "the inplace plan ran no depthwise op in place"
    assert all(o["out_offset"] == o["in_offsets"][0] for o in inplace_ops)
    from helpers import resources
    assert resources.plan_tflite(b, "inplace").peak_sram_bytes < resources.plan_tflite(b, "tflm").peak_sram_bytes


def test_broken_plan_is_caught():
    """An arena layout that overwrites a live tensor raises instead of passing silently."""
    name, b = keras_models()[0]
    m = tflite_io.read(b)
    it = interpreter.Interpreter(b, plan=None)
    add = next(op for op in m.ops if op.opcode == "ADD")
    skip_src = add.inputs[0]                        # residual input, still needed by ADD
    victim_writer = next(op for op in m.ops if op.index == add.index - 1)
    it.plan.offsets[victim_writer.outputs[0]] = it.plan.offsets[skip_src]
    with pytest.raises((AssertionError, ValueError), match="overwritten|overlaps"):
        it.invoke(sample_input(b))


def test_python_kernels_fast_enough():
    import time
    name, b = keras_models()[4]
    x = sample_input(b)
    interpreter.run(b, x, plan="inplace")
    t = time.perf_counter()
    interpreter.run(b, x, plan="inplace")
    assert time.perf_counter() - t < 1.0


def test_bad_inputs_raise_clear_errors():
    name, b = keras_models()[6]
    with pytest.raises(ValueError, match="int8"):
        interpreter.run(b, np.zeros((1, 6, 6, 2), np.float32))
    with pytest.raises(ValueError, match="elements"):
        interpreter.run(b, np.zeros((1, 5, 5, 2), np.int8))
    with pytest.raises(ValueError, match="rounding"):
        K.multiply_by_quantized_multiplier(1, 1 << 30, 0, "triple")
    with pytest.raises(ValueError, match="size"):
        deploy.sample_models(1, size="huge")


@pytest.mark.slow
def test_24_space_models_bit_exact_every_plan():
    models = space_models(24, size="small", seed=1)
    kinds = {name.split("-")[0] for name, _ in models}
    assert kinds == {"granular", "block"} and len(models) >= 20
    n_ops = 0
    for name, b in models:
        n_ops += check_model(b, seeds=(0, 1))
    assert n_ops > 200

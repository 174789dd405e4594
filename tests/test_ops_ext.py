"""Operator coverage beyond the core int8 kernels (helpers.engine.kernels_ext, the C in
csrc/tn_kernels_ext.c): every op bit-exact with TFLite-Micro, in the Python interpreter and
in the emulated C, for small Keras models converted the way users convert (float I/O and
int8 I/O); unsupported ops fail at prepare time naming the operator; the TFLM reference
path feeds the model's input type and grows its arena."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import tflite_io
from helpers.deploy import reference_outputs, tflm_predict, zoo
from helpers.engine import emulator, interpreter, kernels_ext
from helpers.engine.kernels import UnsupportedOpError


def _tflm(b, x):
    return reference_outputs(b, x, engine="tflm")


def _inputs(b, rng, scale=2.0):
    m = tflite_io.read(b)
    tin = m.tensors[m.inputs[0]]
    x = (scale * rng.standard_normal(tin.shape)).astype(np.float32)
    if tin.dtype == np.int8:
        x = np.clip(np.round(x / tin.scale[0]) + tin.zero_point[0], -128, 127).astype(np.int8)
    return x


def _ops(b):
    return [o.opcode for o in tflite_io.read(b).ops]


def _keras_models():
    import keras
    from keras import layers as L
    i = keras.Input((8, 8, 4))
    x = L.Conv2D(8, 3, padding="same")(i)
    x = L.Conv2D(4, 3)(L.ZeroPadding2D(((1, 2), (0, 1)))(x))
    yield "pad", keras.Model(i, x)
    i = keras.Input((16,))
    x = L.Dense(32)(i)
    acts = [L.Activation(a)(x) for a in ("sigmoid", "tanh", "hard_swish")]
    yield "act", keras.Model(i, L.Concatenate()(acts))
    i = keras.Input((8, 8, 4))
    a, b = L.Conv2D(8, 1)(i), L.Conv2D(8, 3, padding="same")(i)
    c = L.Concatenate()([a, b])
    se = L.Dense(16, activation="sigmoid")(L.GlobalAveragePooling2D()(c))
    y = L.Multiply()([c, L.Reshape((1, 1, 16))(se)])          # broadcasting MUL
    y = L.Concatenate()([y, L.Multiply()([a, b])])           # same-shape MUL
    yield "catmul", keras.Model(i, L.Flatten()(y))
    i = keras.Input((6, 6, 4))
    x = L.Activation("sigmoid")(L.Conv2D(8, 1)(i))
    x = keras.ops.multiply(x, np.linspace(-1, 2, 8).astype(np.float32))   # MUL by a constant
    x = keras.ops.pad(x, [[0, 0], [1, 0], [0, 2], [0, 0]], constant_values=0.75)  # PADV2
    yield "padv2", keras.Model(i, L.Conv2D(4, 3)(x))
    i = keras.Input((8, 8, 6))
    x = L.Conv2D(8, 1)(i)
    yield "slice", keras.Model(i, L.Conv2D(4, 1)(x[:, 1:7:2, ::-1, 3:]))  # STRIDED_SLICE
    i = keras.Input((256,))
    yield "probe", keras.Model(i, L.Reshape((16, 16))(i))    # QUANTIZE / DEQUANTIZE probe


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    out = {}
    for name, model in _keras_models():
        shape = tuple(model.inputs[0].shape[1:])
        rep = rng.standard_normal((8,) + shape).astype(np.float32)
        for io in zoo.IOS:
            if name == "probe" and io == "int8":
                continue
            out[name, io] = zoo.convert(model, rep, io, fast=True)
    return out


@pytest.fixture(scope="module")
def unary_models():
    """int8-I/O models that are one elementwise op on the input, at two input scales."""
    import keras
    from keras import layers as L
    out = {}
    for act, op in (("sigmoid", "LOGISTIC"), ("tanh", "TANH"), ("hard_swish", "HARD_SWISH")):
        for s in (0.3, 6.0):
            i = keras.Input((256,))
            m = keras.Model(i, L.Activation(act)(i))
            rep = (s * np.random.default_rng(1).standard_normal((8, 256))).astype(np.float32)
            out[op, s] = zoo.convert(m, rep, "int8", fast=True)
    return out


EXPECTED_OPS = {"pad": {"PAD"}, "act": {"LOGISTIC", "TANH", "HARD_SWISH", "QUANTIZE",
                                        "CONCATENATION"},
                "catmul": {"MUL", "CONCATENATION", "SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"},
                "padv2": {"PADV2", "MUL", "LOGISTIC"}, "probe": {"QUANTIZE", "DEQUANTIZE"},
                "slice": {"STRIDED_SLICE"}}


@pytest.mark.parametrize("name", ["pad", "act", "catmul", "padv2", "slice"])
@pytest.mark.parametrize("io", zoo.IOS)
def test_python_interpreter_bit_exact_with_tflm(models, name, io):
    b = models[name, io]
    assert EXPECTED_OPS[name] <= set(_ops(b))
    if io == "float":
        assert _ops(b)[0] == "QUANTIZE" and _ops(b)[-1] == "DEQUANTIZE"
    rng = np.random.default_rng(5)
    for scale in (0.5, 3.0):  # inside and beyond the calibration range (saturation)
        x = _inputs(b, rng, scale)
        ref = _tflm(b, x)
        got = interpreter.run(b, x).output
        assert got.dtype == ref.dtype == (np.float32 if io == "float" else np.int8)
        assert np.array_equal(got.reshape(ref.shape), ref)


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH", "HARD_SWISH"])
def test_unary_ops_exhaustive_over_int8(unary_models, op):
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    for s in (0.3, 6.0):
        b = unary_models[op, s]
        assert op in _ops(b)
        ref = _tflm(b, x)
        assert np.array_equal(interpreter.run(b, x).output.reshape(ref.shape), ref), (op, s)
        # the output is not trivially constant: the test can fail
        assert len(np.unique(ref)) > 20


def test_float_quantize_at_every_decision_boundary(models):
    """The float probe is QUANTIZE -> (reshape) -> DEQUANTIZE: its output identifies the
    quantised level, so floats just below and at each of the 255 thresholds check
    AffineQuantize's rounding exactly, and the emulated C's threshold search as well."""
    b = models["probe", "float"]
    m = tflite_io.read(b)
    tin, tq = m.tensors[m.inputs[0]], m.tensors[m.ops[0].outputs[0]]
    scale, zp = float(tq.scale[0]), int(tq.zero_point[0])
    thr = kernels_ext._quantize_thresholds(scale, zp)
    assert np.all(np.diff(thr) >= 0) and thr.size == 255
    at = kernels_ext._key_to_float(np.append(thr, thr[-1] + 7))
    below = kernels_ext._key_to_float(np.append(thr - 1, thr[0] - 7))
    q_at = kernels_ext.quantize_float(at[:255], scale, zp)
    q_below = kernels_ext.quantize_float(below[:255], scale, zp)
    assert np.array_equal(q_at.astype(int), np.arange(-127, 128))
    assert np.array_equal(q_below.astype(int), np.arange(-128, 127))
    build = emulator.build(b, plan="tflm")
    for x in (at, below):
        x = x.reshape(tin.shape).astype(np.float32)
        ref = _tflm(b, x)
        assert np.array_equal(interpreter.run(b, x).output.reshape(ref.shape), ref)
        assert np.array_equal(emulator.run(build, x).output.reshape(ref.shape), ref)


@pytest.mark.parametrize("name,io", [("act", "int8"), ("catmul", "float"), ("pad", "int8"),
                                     ("padv2", "float"), ("slice", "float")])
def test_emulated_c_bit_exact_with_tflm(models, name, io):
    b = models[name, io]
    x = _inputs(b, np.random.default_rng(7), 3.0)
    ref = _tflm(b, x)
    r = emulator.run(b, x)
    assert r.output.dtype == ref.dtype
    assert np.array_equal(r.output.reshape(ref.shape), ref)
    assert r.instructions > 0


def test_emulated_unary_luts(unary_models):
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    b = unary_models["HARD_SWISH", 6.0]
    ref = _tflm(b, x)
    assert np.array_equal(emulator.run(b, x).output.reshape(ref.shape), ref)


def test_emulated_zoo_model_in_ci():
    b = zoo.build("micro-speech", io="float", seed=0)
    x = _inputs(b, np.random.default_rng(0), 1.0)
    ref = _tflm(b, x)
    r = emulator.run(b, x)
    assert np.array_equal(r.output.reshape(ref.shape), ref)
    assert np.array_equal(interpreter.run(b, x).output.reshape(ref.shape), ref)
    assert 1e6 < r.cycles < 1e8


def test_unsupported_op_fails_at_prepare_naming_op_and_index():
    import keras
    from keras import layers as L
    i = keras.Input((8, 8, 2))
    x = L.Conv2D(4, 3, padding="same")(i)
    y = L.Subtract()([x, L.Conv2D(4, 1)(i)])
    b = zoo.convert(keras.Model(i, y), np.random.default_rng(0).standard_normal((4, 8, 8, 2)),
                    "int8", fast=True)
    idx = _ops(b).index("SUB")
    with pytest.raises(UnsupportedOpError, match=rf"operator {idx} is SUB"):
        interpreter.prepare(b)
    with pytest.raises(UnsupportedOpError, match=rf"operator {idx} is SUB"):
        emulator.build(b)


def test_tflm_reference_path_respects_dtype_and_grows_the_arena():
    b = zoo.build("micro-speech", io="float", seed=0)
    x = np.random.default_rng(0).standard_normal((2, 1960)).astype(np.float32)
    y = tflm_predict(b, x, arena_size=1024)          # far too small: grown and retried
    assert y.shape == (2, 4) and y.dtype == np.float32
    assert np.allclose(y.sum(axis=1), 1.0, atol=0.05)  # softmax probabilities
    ref = reference_outputs(b, x[0], engine="tflm")
    assert np.array_equal(ref.reshape(-1), y[0])
    with pytest.raises(ValueError, match="float32 input"):
        tflm_predict(b, x.astype(np.int8))
    bi = zoo.build("micro-speech", io="int8", seed=0)
    yi = tflm_predict(bi, x, dequantize=False, arena_size=1024)
    assert yi.dtype == np.int8 and yi.shape == (2, 4)


def test_resource_model_accepts_the_float_io_wrapper(models):
    from helpers import resources
    b = models["probe", "float"]
    m = tflite_io.require_int8(b)          # float activations of the wrapper only
    g = resources.graph_from_tflite(b)
    tin, tout = m.inputs[0], m.outputs[0]
    assert g.tensors[tin].nbytes == 4 * 256 and g.tensors[tout].nbytes == 4 * 256
    # the float input (1024 B) and the int8 tensor QUANTIZE writes (256 B) are live together
    assert resources.plan_tflite(b, plan="tflm").peak_sram_bytes >= 4 * 256 + 256

"""helpers.engine.sparse / sparse_weights: the row-compressed weight format (encode, decode,
byte cost), NumPy kernels that skip zeros and the generated C (``weights="sparse"``), each
bit-exact with TFLite-Micro running the same model dense; flash and emulated cycles measured
against the dense build.

Models: small Keras models with 80% / 60% of their weights zeroed before conversion (cached
on disk like tests/test_kernels.py's models).
"""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from helpers.engine import codegen, interpreter
from helpers.engine import sparse as S
from helpers.engine import sparse_weights as SW

CACHE = Path(tempfile.gettempdir()) / "tinynas-test-models-v1" / "sparse"


def _build(i):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers as L
    from helpers import deploy
    keras.utils.set_random_seed(200 + i)
    rng = np.random.default_rng(i)
    if i == 0:   # every sparse op: padded / strided conv, 1x1, depthwise in place and x2, FC
        shape, frac = (12, 12, 3), 0.8
        inp = keras.Input(shape)
        x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
        x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = L.Conv2D(24, 1, activation="relu")(x)
        x = L.DepthwiseConv2D(3, strides=2, padding="valid", depth_multiplier=2)(x)
        x = L.Flatten()(x)
        x = L.Dense(32, activation="relu")(x)
        out = L.Dense(5)(x)
    else:        # 5x5 valid conv, a dense layer with rows longer than 255 (gap fillers)
        shape, frac = (14, 14, 2), 0.6
        inp = keras.Input(shape)
        x = L.Conv2D(8, 5, activation="relu6")(inp)
        x = L.DepthwiseConv2D(5, padding="same", activation="relu")(x)
        x = L.Flatten()(x)
        out = L.Dense(6)(x)
    m = keras.Model(inp, out)
    for layer in m.layers:
        ws = layer.get_weights()
        if ws:
            k = ws[0]
            k[rng.random(k.shape) < frac] = 0
            if i == 1 and isinstance(layer, L.Dense):
                k[5:700] = 0     # a run of zeros longer than 255 in every row
            layer.set_weights([k] + ws[1:])
    rep = rng.normal(0, 1, (8,) + shape).astype(np.float32)
    return deploy.to_tflite_int8(m, rep)


@pytest.fixture(scope="module")
def models():
    out = []
    for i in range(2):
        p = CACHE / f"sparse-{i}.tflite"
        if not p.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f"{p.name}.{os.getpid()}.tmp")
            tmp.write_bytes(_build(i))
            os.replace(tmp, p)
        out.append(p.read_bytes())
    return out


def _inputs(b, n, seed=0):
    from helpers import tflite_io
    m = tflite_io.read(b)
    shape = tuple(m.tensors[m.inputs[0]].shape)
    return np.random.default_rng(seed).integers(-128, 128, (n,) + shape).astype(np.int8)


# ------------------------------------------------------------------ the format

def test_encode_decode_round_trip_and_byte_cost():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (7, 600)).astype(np.int8)
    w[rng.random(w.shape) < 0.9] = 0
    w[3, :] = 0                       # an empty row
    w[4, 1:599] = 0                   # gap of 598 = 255 + 255 + 88: two fillers
    w[4, 0], w[4, 599] = 5, -7
    sw = SW.encode(w)
    assert np.array_equal(SW.decode(sw), w)
    fillers = sw.val.size - np.count_nonzero(w)
    assert sw.cnt[3] == 0 and sw.cnt[4] == 4          # 2 weights + 2 fillers
    assert fillers >= 2
    assert sw.nbytes == 2 * 7 + 2 * (np.count_nonzero(w) + fillers)
    assert sw.dense_bytes == 7 * 600
    assert abs(sw.sparsity - (1 - np.count_nonzero(w) / w.size)) < 1e-12


def test_bad_input_raises_one_clear_error(models):
    with pytest.raises(ValueError, match="int8"):
        SW.encode(np.zeros((2, 3), np.int16))
    with pytest.raises(ValueError, match="2-D"):
        SW.encode(np.zeros(3, np.int8))
    with pytest.raises(ValueError, match="weights must be"):
        codegen.generate_c(models[0], weights="compressed")
    with pytest.raises(ValueError, match="mode must be"):
        SW.choose(interpreter.prepare(models[0])[0], "sometimes")
    with pytest.raises(ValueError, match="int8"):
        S.run(models[0], np.zeros((12, 12, 3), np.float32))


def test_choose_keeps_dense_when_sparse_is_not_smaller(models):
    spec = interpreter.prepare(models[0])[0]
    dense = spec.consts["w"].copy()
    spec.consts["w"] = np.ones_like(dense)           # fully dense: 2 B per weight > 1 B
    assert SW.choose(spec, "auto") is None
    assert SW.choose(spec, "always") is not None
    spec.consts["w"] = dense
    assert SW.choose(spec, "auto") is not None       # 80% zeros: smaller


# ------------------------------------------------------------------ Python kernels

def _tflm(b, x):
    return S._tflm_output(b, x).ravel()


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_python_sparse_kernels_are_bit_exact_with_tflm(models, mode):
    for b in models:
        ls = S.layers(b, mode)
        assert {r["kind"] for r in ls if r["stored"] == "sparse"} >= {"CONV_2D", "FULLY_CONNECTED",
                                                                    "DEPTHWISE_CONV_2D"}
        for x in _inputs(b, 3):
            r = S.run(b, x, mode)
            assert np.array_equal(r.output.ravel(), _tflm(b, x))


def test_model_sparsity_counts_the_zeroed_weights(models):
    s0, s1 = S.model_sparsity(models[0]), S.model_sparsity(models[1])
    # 80% of float weights zeroed (int8 rounding may zero a few more): measured 79.9%
    assert 0.78 <= s0["sparsity"] <= 0.85, s0
    # 60% zeroed plus inputs 5..699 of the (800, 6) dense kernel: 1 - 0.4 * (1 - 0.85 * 4800
    # / 5400) = 90.2% expected, measured 90.9%
    assert 0.88 <= s1["sparsity"] <= 0.93, s1


# ------------------------------------------------------------------ generated C, emulated

def test_emulated_sparse_build_is_bit_exact_smaller_and_faster(models):
    b = models[0]
    c = S.compare_dense(b, _inputs(b, 2), target="stm32f746zg", plan="inplace", kernels="dsp")
    assert c.bit_exact_python and c.bit_exact_emulated_dense and c.bit_exact_emulated_sparse
    assert c.sparse_weights_bytes == sum(r["stored_bytes"] for r in c.layers)
    assert c.dense_weights_bytes == c.weights
    # measured at 79.8% zeros: weights 7,696 -> 3,392 B (0.44 = the byte-cost formula
    # 2 * density + 2 * rows / weights, no fillers), image 18,116 -> ~8,600 B, cycles ~361k ->
    # ~245k (against the DSP dense kernels)
    rows = sum(r["rows"] for r in c.layers)
    formula = 2 * (1 - c.sparsity) + 2 * rows / c.weights
    assert abs(c.sparse_weights_bytes / c.dense_weights_bytes - formula) < 0.005
    assert 0.40 <= c.sparse_weights_bytes / c.dense_weights_bytes <= 0.48
    assert c.dense_flash_bytes - c.sparse_flash_bytes >= c.dense_weights_bytes - c.sparse_weights_bytes
    assert 1.2 <= c.speedup <= 1.8, c.summary()
    assert "bit-exact" in c.summary() and len(c.table()) == 6


def test_emulated_sparse_all_layers_plain_kernels_tflm_plan(models):
    b = models[1]
    c = S.compare_dense(b, _inputs(b, 2, seed=1), target="stm32f746zg", plan="tflm",
                        kernels="plain", mode="always")
    assert c.bit_exact, c.summary()
    assert all(r["stored"] == "sparse" for r in c.layers)
    assert c.sparse_cycles < c.dense_cycles, c.summary()

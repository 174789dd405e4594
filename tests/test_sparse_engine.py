"""helpers.engine.sparse / sparse_weights: the row-compressed ("gap") and bitmask weight
formats (encode, decode, byte cost), the per-layer choice, NumPy kernels that skip zeros and
the generated C (``weights="sparse"`` / ``"sparse-all"`` / ``"bitmask"``), each bit-exact
with TFLite-Micro running the same model dense; flash and emulated cycles measured against
the dense build.

Models: small Keras models with 80% / 60% / 50% of their weights zeroed before conversion
(cached on disk like tests/test_kernels.py's models).
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
    if i in (0, 2):  # every sparse op: padded / strided conv, 1x1, depthwise in place and x2, FC
        shape, frac = (12, 12, 3), 0.8 if i == 0 else 0.5
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
    for i in range(3):
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


@pytest.mark.parametrize("mode", ["auto", "always", "bitmask"])
def test_python_sparse_kernels_are_bit_exact_with_tflm(models, mode):
    for b in models[:2]:
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
    c = S.compare_dense(b, _inputs(b, 2), target="stm32f746zg", plan="inplace", kernels="dsp",
                        mode="always")
    assert c.bit_exact_python and c.bit_exact_emulated_dense and c.bit_exact_emulated_sparse
    assert c.sparse_weights_bytes == sum(r["stored_bytes"] for r in c.layers)
    assert c.dense_weights_bytes == c.weights
    assert {r["format"] for r in c.layers} == {"gap"}
    # measured at 79.8% zeros, row-compressed everywhere: weights 7,696 -> 3,392 B (0.44 = the
    # byte-cost formula 2 * density + 2 * rows / weights, no fillers), image 18,116 -> ~8,600 B,
    # cycles ~361k -> ~245k (against the DSP dense kernels)
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


# ------------------------------------------------------------------ the bitmask format

def test_bitmask_encode_decode_round_trip_edge_cases_and_byte_cost():
    rng = np.random.default_rng(1)
    for rows, cols in [(6, 13), (4, 8), (3, 1), (5, 600), (2, 9)]:
        w = rng.integers(-128, 128, (rows, cols)).astype(np.int8)
        w[rng.random(w.shape) < 0.5] = 0
        w[0] = 0                                          # an all-zero row
        w[1] = rng.integers(1, 128, cols)                 # a fully dense row
        bw = SW.encode(w, "bitmask")
        assert isinstance(bw, SW.BitmaskWeights) and bw.fmt == "bitmask"
        assert np.array_equal(SW.decode(bw), w)
        nnz = np.count_nonzero(w)
        assert bw.row_bytes == -(-cols // 8) and bw.mask.shape == (rows, bw.row_bytes)
        assert bw.nbytes == rows * bw.row_bytes + nnz == bw.mask.size + bw.val.size
        assert bw.nnz == nnz and bw.dense_bytes == rows * cols
        assert not bw.mask[0].any() and bw.val.size == nnz
        full = np.unpackbits(bw.mask, axis=1, bitorder="little")
        assert full[1, :cols].all() and not full[:, cols:].any()   # LSB first, zero padding
    # bit j % 8 of byte j // 8: column 9 of a 13-column row is byte 1, bit 1
    w = np.zeros((1, 13), np.int8)
    w[0, 9], w[0, 0] = -3, 7
    bw = SW.encode_bitmask(w)
    assert bw.mask.tolist() == [[1, 2]] and bw.val.tolist() == [7, -3]
    bad = SW.BitmaskWeights(rows=1, cols=13, mask=np.array([[1, 0x82]], np.uint8),
                            val=np.array([7, -3, 1], np.int8))
    with pytest.raises(ValueError, match="padding bit"):
        SW.decode(bad)
    bad.mask = np.array([[1, 2]], np.uint8)
    with pytest.raises(ValueError, match="3 values"):
        SW.decode(bad)
    with pytest.raises(ValueError, match="fmt must be"):
        SW.encode(w, "csr")


def test_choose_picks_the_smallest_format_bitmask_at_half_zeros(models):
    rng = np.random.default_rng(2)
    for spec in interpreter.prepare(models[0]):
        if spec.kind not in SW.SPARSE_OPS:
            continue
        w = rng.integers(-128, 128, spec.consts["w"].shape).astype(np.int8)
        w[rng.random(w.shape) < 0.5] = 0
        spec.consts["w"] = w
        sizes = SW.format_bytes(spec)
        got = SW.choose(spec, "auto")
        assert got is not None and got.fmt == "bitmask", (spec.kind, sizes)
        assert got.nbytes == min(sizes.values()) < sizes["dense"]
        assert SW.choose(spec, "always").fmt == SW.choose(spec, "gap").fmt == "gap"
        assert SW.choose(spec, "bitmask").fmt == "bitmask" and SW.choose(spec, "never") is None
    # the 50%-zeros model: every layer bitmask, the generated weights about 37% smaller
    ls = S.layers(models[2])
    assert [r["format"] for r in ls] == ["bitmask"] * len(ls) and len(ls) == 6
    dense = codegen.generate_c(models[2], weights="dense").weight_bytes
    gen = codegen.generate_c(models[2], weights="sparse")
    assert gen.weight_bytes == sum(r["bitmask_bytes"] for r in ls) < dense
    assert 0.55 <= gen.weight_bytes / dense <= 0.70, (gen.weight_bytes, dense)
    assert "tn_bitmask_t" in gen.source and "tn_sparse_t" not in gen.source
    assert {o["weights"] for o in gen.ops if o["kind"] in SW.SPARSE_OPS} == {"bitmask"}
    # mixed: model 1's long zero runs make its FC row-compressed, its convolutions bitmask
    assert [r["format"] for r in S.layers(models[1])] == ["bitmask", "bitmask", "gap"]


def test_python_bitmask_kernels_match_the_dense_kernels_per_layer(models):
    for b in (models[0], models[2]):
        vals = {}
        m_in = interpreter.prepare(b)
        x = _inputs(b, 1, seed=3)[0]
        vals[m_in[0].x[0]] = x.ravel()
        kinds = set()
        for s in m_in:
            xs = [np.asarray(vals[t]).reshape(shp) for t, shp in zip(s.x, s.in_shapes)]
            y = interpreter._apply(s, xs)
            if s.kind in SW.SPARSE_OPS:
                bw = SW.choose(s, "bitmask")
                assert np.array_equal(SW.apply_sparse(s, bw, xs[0]), y), (s.index, s.kind)
                kinds.add(s.kind)
            vals[s.y] = np.asarray(y, np.int8).ravel()
        assert kinds == set(SW.SPARSE_OPS)


def test_emulated_bitmask_build_at_half_zeros_is_bit_exact_and_smaller(models):
    b = models[2]
    c = S.compare_dense(b, _inputs(b, 2, seed=2), target="stm32f746zg", plan="inplace",
                        kernels="dsp")
    assert c.bit_exact, c.summary()
    assert {r["format"] for r in c.layers} == {"bitmask"} and "6 bitmask" in c.summary()
    assert c.sparse_weights_bytes == sum(r["rows"] * -(-r["cols"] // 8) + r["nonzero"]
                                         for r in c.layers)
    # measured at 50.3% zeros: weights 7,696 -> 4,834 B, image 18,116 -> 10,056 B, cycles
    # ~361k -> ~377k (the DSP dense kernels do two MACs an instruction)
    assert c.sparse_weights_bytes / c.dense_weights_bytes <= 0.66
    assert c.dense_flash_bytes - c.sparse_flash_bytes >= 0.8 * (c.dense_weights_bytes
                                                                - c.sparse_weights_bytes)
    assert c.sparse_cycles < 1.3 * c.dense_cycles, c.summary()


def test_emulated_mixed_formats_plain_kernels_tflm_plan(models):
    b = models[1]
    c = S.compare_dense(b, _inputs(b, 2, seed=4), target="stm32f746zg", plan="tflm",
                        kernels="plain")
    assert c.bit_exact, c.summary()
    assert [r["format"] for r in c.layers] == ["bitmask", "bitmask", "gap"]
    assert c.sparse_weights_bytes == sum(r["stored_bytes"] for r in c.layers) < \
        min(sum(r["gap_bytes"] for r in c.layers), sum(r["bitmask_bytes"] for r in c.layers))
    c2 = S.compare_dense(b, _inputs(b, 1, seed=5), target="stm32f746zg", plan="tflm",
                         kernels="plain", mode="bitmask")
    assert c2.bit_exact and {r["format"] for r in c2.layers} == {"bitmask"}, c2.summary()

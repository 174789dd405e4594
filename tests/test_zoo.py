"""Tests of helpers.deploy.zoo: the standard test models build at their published shapes,
with the I/O types asked for, deterministically, cached, and run in TFLite-Micro."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from helpers import tflite_io
from helpers.deploy import zoo

FAST = ["micro-speech", "ds-cnn-kws"]


def _io(b):
    m = tflite_io.read(b)
    return m, m.tensors[m.inputs[0]], m.tensors[m.outputs[0]]


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("io", zoo.IOS)
def test_zoo_model_shapes_and_io(name, io):
    b = zoo.build(name, io=io, seed=0)
    m, tin, tout = _io(b)
    assert tuple(tin.shape[1:]) == zoo.input_shape(name)
    want = np.int8 if io == "int8" else np.float32
    assert np.dtype(tin.dtype) == want and np.dtype(tout.dtype) == want
    ops = Counter(op.opcode for op in m.ops)
    if io == "float":
        assert m.ops[0].opcode == "QUANTIZE" and m.ops[-1].opcode == "DEQUANTIZE"
    else:
        assert "QUANTIZE" not in ops and "DEQUANTIZE" not in ops
    if name == "ds-cnn-kws":
        assert ops["CONV_2D"] == 5 and ops["DEPTHWISE_CONV_2D"] == 4
        assert tuple(tout.shape[1:]) == (12,)
        # the 10x4 stride-2 first conv with 64 filters, as MLPerf Tiny's KWS model
        w = m.tensors[m.ops[[o.opcode for o in m.ops].index("CONV_2D")].inputs[1]]
        assert tuple(w.shape) == (64, 10, 4, 1)
    else:
        assert ops["CONV_2D"] == 1 and tuple(tout.shape[1:]) == (4,)
    # the dynamic-batch Reshape tail of the plain converter
    assert ops["SHAPE"] >= 1 and ops["STRIDED_SLICE"] >= 1 and ops["PACK"] >= 1


def test_zoo_is_cached_and_deterministic():
    a = zoo.build("micro-speech", "int8", seed=3)
    b = zoo.build("micro-speech", "int8", seed=3, cache=False)
    c = zoo.build("micro-speech", "int8", seed=4)
    assert a == b
    ma, mc = tflite_io.read(a), tflite_io.read(c)
    wa = [t.data for t in ma.tensors if t.data is not None and t.data.size > 100]
    wc = [t.data for t in mc.tensors if t.data is not None and t.data.size > 100]
    assert len(wa) == len(wc) and not all(np.array_equal(x, y) for x, y in zip(wa, wc))
    assert np.array_equal(zoo.calibration("resnet8", 1), zoo.calibration("resnet8", 1))


def test_zoo_bad_input():
    with pytest.raises(KeyError, match="allowed"):
        zoo.build("resnet-9")
    with pytest.raises(ValueError, match="io="):
        zoo.build("resnet8", io="uint8")
    with pytest.raises(ValueError, match="seed"):
        zoo.build("resnet8", seed=-1)


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.NAMES)
@pytest.mark.parametrize("io", zoo.IOS)
def test_every_zoo_model_builds_and_runs_in_tflm(name, io):
    from tflite_micro.python.tflite_micro import runtime
    b = zoo.build(name, io=io, seed=0)
    m, tin, tout = _io(b)
    assert tuple(tin.shape[1:]) == zoo.input_shape(name)
    it = runtime.Interpreter.from_bytes(b, arena_size=4 << 20)
    it.set_input(np.zeros(tin.shape, np.dtype(tin.dtype)), 0)
    it.invoke()
    y = np.array(it.get_output(0))
    assert y.shape == tuple(tout.shape)


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("io", zoo.IOS)
def test_fast_zoo_models_bit_exact_in_python(name, io):
    row = zoo.check(name, io=io, emulate=False)
    assert row["runs_python"] and row["bit_exact_python"], row


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.NAMES)
@pytest.mark.parametrize("io", zoo.IOS)
def test_every_zoo_model_bit_exact_in_python_and_emulated_c(name, io):
    row = zoo.check(name, io=io, emulate=True)
    assert row["bit_exact_python"] and row["bit_exact_emulated"], row
    assert 1e5 < row["cycles"] < 1e9


@pytest.mark.parametrize("name,io", [("micro-speech", "float"), ("micro-speech", "int8")] +
                         [pytest.param(n, io, marks=pytest.mark.slow) for n in zoo.NAMES
                          for io in zoo.IOS if n != "micro-speech"])
def test_zoo_arena_estimate_equals_tflm(name, io):
    from helpers import resources
    from helpers.deploy import measure_arena
    b = zoo.build(name, io=io, seed=0)
    assert measure_arena(b, isolate=False).head == resources.plan_tflite(b, "tflm").peak_sram_bytes

"""helpers.tflite_io on corrupt files: TFLiteFormatError or success, never another exception.

Deterministic mutants (seeded byte flips, truncations, uint32 offsets / lengths
overwritten with huge or negative values, zeroed regions) of small int8 models
converted in the session fixture, plus a float model for :func:`require_int8`.
"""
import os
import sys
import time

import numpy as np
import pytest

from helpers import tflite_io
from helpers.tflite_io import reader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_tflite_io import TINY_ARCH as _ARCH  # noqa: E402


@pytest.fixture(scope="session")
def models():
    """{"int8": stripped int8 bytes, "int8_names": unstripped (names, signature defs),
    "float": the same network converted without quantisation}."""
    from helpers import deploy, spaces
    model = spaces.build(spaces.GranularArch.from_dict(_ARCH), (16, 16, 2), 5, seed=1)
    deploy.randomize_weights(model, 1)
    rep = np.random.default_rng(0).standard_normal((4, 16, 16, 2)).astype(np.float32)
    out = {"int8": deploy.to_tflite_int8(model, rep),
           "int8_names": deploy.to_tflite_int8(model, rep, strip=False)}
    import logging

    import tensorflow as tf
    logging.getLogger("absl").setLevel(logging.ERROR)
    fn = tf.function(lambda x: model(x, training=False))
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function(tf.TensorSpec((1, 16, 16, 2), tf.float32))])
    out["float"] = bytes(conv.convert())
    return out


def mutants(b: bytes, n: int, seed: int):
    """``n`` deterministic corruptions of ``b``: (kind, bytes)."""
    rng = np.random.default_rng(seed)
    big = [0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, len(b), len(b) - 4, 0x10000000]
    for k in range(n):
        a = bytearray(b)
        kind = ("flip", "truncate", "huge_u32", "zero", "random_i32")[k % 5]
        if kind == "flip":
            for pos in rng.integers(0, len(a), size=int(rng.integers(1, 9))):
                a[pos] = int(rng.integers(256))
        elif kind == "truncate":
            a = a[: int(rng.integers(0, len(a)))]
        elif kind == "huge_u32":  # an aligned uint32 (offset / length / index) made huge
            pos = int(rng.integers(0, len(a) - 4)) & ~3
            a[pos:pos + 4] = int(rng.choice(big)).to_bytes(4, "little")
        elif kind == "zero":
            pos = int(rng.integers(0, len(a)))
            ln = int(rng.integers(1, 64))
            a[pos:pos + ln] = bytes(len(a[pos:pos + ln]))
        else:  # any int32, negative ones included
            pos = int(rng.integers(0, len(a) - 4)) & ~3
            a[pos:pos + 4] = int(rng.integers(-2 ** 31, 2 ** 31)).to_bytes(4, "little", signed=True)
        yield kind, bytes(a)


def _clean(fn, data) -> str:
    """Run ``fn(data)``: "ok" or "format error"; anything else fails the test."""
    try:
        fn(data)
        return "ok"
    except tflite_io.TFLiteFormatError:  # TFLiteNotInt8Error is a subclass
        return "format error"


@pytest.mark.parametrize("which,n,seed", [("int8", 200, 1), ("int8_names", 150, 2)])
def test_mutants_parse_or_raise_format_error(models, which, n, seed):
    """read / validate / check_operators / require_int8: success or TFLiteFormatError;
    canonical_bytes on a sample of the readable mutants."""
    outcomes = {"ok": 0, "format error": 0}
    for j, (kind, m) in enumerate(mutants(models[which], n, seed)):
        t0 = time.perf_counter()
        try:
            res = _clean(tflite_io.read, m)
            outcomes[res] += 1
            _clean(tflite_io.validate, m)
            _clean(tflite_io.require_int8, m)
            if res == "ok" and j % 4 == 0:
                _clean(tflite_io.canonical_bytes, m)
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{which} mutant {j} ({kind}): {type(e).__name__}: {e}")
        # bounded work: a corrupt length never makes the reader loop over the file's size
        assert time.perf_counter() - t0 < 2.0, f"{which} mutant {j} ({kind}) too slow"
    # both outcomes occur, so the mutants are neither all harmless nor all fatal
    assert outcomes["ok"] > 0 and outcomes["format error"] > 0, outcomes


def test_profile_of_mutants(models):
    """helpers.resources.profile behind require_int8 (where it should be wired in):
    success, a TFLiteFormatError, or resources' own ValueError for an operator it does
    not model - never an IndexError / KeyError / unpacking error of a half-valid graph."""
    from helpers import resources
    profiled = 0
    for j, (kind, m) in enumerate(mutants(models["int8"], 120, 3)):
        try:
            tflite_io.require_int8(m)
        except tflite_io.TFLiteFormatError:
            continue
        try:
            resources.profile(m)
            profiled += 1
        except tflite_io.TFLiteFormatError:
            pass
        except ValueError as e:
            if type(e) is not ValueError or "values to unpack" in str(e):
                pytest.fail(f"mutant {j} ({kind}): {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"mutant {j} ({kind}): {type(e).__name__}: {e}")
    assert profiled > 0


def _u32_at(b: bytes, pos: int) -> int:
    return int.from_bytes(b[pos:pos + 4], "little")


def test_huge_vector_length_is_refused_without_allocating(models):
    """A vector length beyond the file (the Model.buffers vector) names the field."""
    b = models["int8"]
    r = reader._Reader(b)
    root = r.table(_u32_at(b, 0), "root")
    start, n = root.vector(reader._F_MODEL_BUFFERS, 4, "buffers")
    for length in (len(b) // 4, 0x7FFFFFFF, 0xFFFFFFFF):  # each just too long or absurd
        bad = bytearray(b)
        bad[start - 4:start] = length.to_bytes(4, "little")
        with pytest.raises(tflite_io.TFLiteFormatError, match="buffers.*runs past the end"):
            tflite_io.read(bytes(bad))
    assert 0 < n < len(b) // 4  # the intact length was fine


def test_absurd_tensor_shape_is_refused(models):
    """A shape dimension made huge is refused (planners would allocate it)."""
    b = models["int8"]
    m = tflite_io.read(b)
    act = next(t for t in m.tensors if not t.is_constant and len(t.shape) == 4)
    # locate that tensor's shape vector: 4 little-endian int32 equal to its shape
    pattern = np.asarray(act.shape, "<i4").tobytes()
    pos = b.find(len(act.shape).to_bytes(4, "little") + pattern)
    assert pos > 0
    bad = bytearray(b)
    bad[pos + 8:pos + 12] = (2 ** 31 - 1).to_bytes(4, "little")
    with pytest.raises(tflite_io.TFLiteFormatError, match="MAX_TENSOR_ELEMENTS"):
        tflite_io.read(bytes(bad))
    bad[pos + 8:pos + 12] = (-3).to_bytes(4, "little", signed=True)
    with pytest.raises(tflite_io.TFLiteFormatError, match="negative"):
        tflite_io.read(bytes(bad))


def test_bad_utf8_name_is_a_format_error(models):
    b = models["int8"]
    pos = b.find(b"CONVERSION_METADATA")
    assert pos > 0
    bad = bytearray(b)
    bad[pos + 3] = 0xD0
    with pytest.raises(tflite_io.TFLiteFormatError, match="UTF-8"):
        tflite_io.read(bytes(bad))


def test_float_model_is_refused_by_require_int8(models):
    f = tflite_io.read(models["float"])
    assert f.tensor_types.get("FLOAT32", 0) > 0 and any(t.is_float for t in f.tensors)
    with pytest.raises(tflite_io.TFLiteNotInt8Error, match="float model.*must be int8-quantised") as e:
        tflite_io.require_int8(models["float"], "helpers.resources.profile")
    assert "helpers.resources.profile" in str(e.value) and "to_tflite_int8" in str(e.value)
    assert isinstance(e.value, tflite_io.TFLiteFormatError) and isinstance(e.value, ValueError)
    m = tflite_io.require_int8(models["int8"])
    assert not any(t.is_float for t in m.tensors) and m.tensor_types["INT8"] > 0


def test_reader_matches_the_schema_object_api(models):
    """The bounds-checked reader returns what the flatbuffers object API reads."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    for which in ("int8", "int8_names", "float"):
        b = models[which]
        ref = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(b, 0))
        m = tflite_io.read(b)
        sg = ref.subgraphs[0]
        assert m.inputs == list(sg.inputs) and m.outputs == list(sg.outputs)
        assert m.num_subgraphs == len(ref.subgraphs) and m.version == ref.version
        assert m.metadata_names == [md.name.decode() for md in ref.metadata or []]
        assert len(m.tensors) == len(sg.tensors) and len(m.ops) == len(sg.operators)
        for t, rt in zip(m.tensors, sg.tensors):
            assert t.shape == tuple(rt.shape) and t.type_name == tflite_io._tensor_type_name(rt.type)
            assert t.buffer == rt.buffer and t.name == (rt.name or b"").decode()
            q = rt.quantization
            if q is not None and q.scale is not None:
                assert np.array_equal(t.scale, q.scale) and np.array_equal(t.zero_point, q.zeroPoint)
                assert t.quantized_dimension == q.quantizedDimension
            data = ref.buffers[rt.buffer].data if rt.buffer else None
            if data is not None and len(data):
                assert t.data.tobytes() == np.asarray(data, np.uint8).tobytes()
            else:
                assert t.data is None
        for op, ro in zip(m.ops, sg.operators):
            assert op.inputs == list(ro.inputs) and op.outputs == list(ro.outputs)
            oc = ref.operatorCodes[ro.opcodeIndex]
            assert op.builtin_code == max(oc.builtinCode, oc.deprecatedBuiltinCode)
            assert op.options == tflite_io._options_dict(ro.builtinOptions)

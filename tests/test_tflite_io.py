"""helpers.tflite_io: parsing, clear errors on corrupt bytes, canonical writer sizes."""
import flatbuffers
import numpy as np
import pytest

from helpers import tflite_io


#: the architecture of :func:`tiny_tflite` (shared with test_tflite_fuzz)
TINY_ARCH = {
        "space": "granular", "pooling": "avg", "pool_size": 0,
        "dense": [{"units": 12, "relu": True}],
        "blocks": [
            {"layers": [{"type": "conv", "filters": 6, "kernel": 3, "stride": 2,
                         "batch_norm": True, "relu": True}], "pool": False, "branch": None},
            {"layers": [{"type": "dwconv", "filters": 0, "kernel": 3, "stride": 1,
                         "batch_norm": False, "relu": True},
                        {"type": "conv1x1", "filters": 8, "kernel": 1, "stride": 1,
                         "batch_norm": True, "relu": False}],
             "pool": True, "branch": {"type": "conv1x1", "kernel": 1, "batch_norm": True,
                                      "relu": False}}]}


@pytest.fixture(scope="module")
def tiny_tflite():
    """A small int8 model with conv, depthwise, pool, add, mean and dense."""
    from helpers import deploy, spaces
    arch = spaces.GranularArch.from_dict(TINY_ARCH)
    model = spaces.build(arch, (16, 16, 2), 5, seed=1)
    deploy.randomize_weights(model, 1)
    rep = np.random.default_rng(0).standard_normal((4, 16, 16, 2)).astype(np.float32)
    return deploy.to_tflite_int8(model, rep)


def test_read_structure(tiny_tflite):
    m = tflite_io.read(tiny_tflite)
    ops = [op.opcode for op in m.ops]
    assert ops[0] == "CONV_2D" and ops[-1] == "FULLY_CONNECTED"
    assert {"DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD", "MEAN"} <= set(ops)
    tin = m.tensors[m.inputs[0]]
    assert tin.shape == (1, 16, 16, 2) and tin.dtype == np.int8 and tin.data is None
    assert m.tensors[m.outputs[0]].shape == (1, 5)
    conv = m.ops[0]
    assert conv.options["padding"] == "SAME"
    assert conv.options["stride_w"] == 2 and conv.options["stride_h"] == 2
    assert conv.options["fused_activation_function"] == "RELU"
    w = m.tensors[conv.inputs[1]]
    assert w.shape == (6, 3, 3, 2) and w.dtype == np.int8 and w.data.shape == (6, 3, 3, 2)
    assert w.scale.shape == (6,) and w.zero_point.shape == (6,)  # per-channel
    b = m.tensors[conv.inputs[2]]
    assert b.dtype == np.int32 and b.data.shape == (6,)
    dw = next(op for op in m.ops if op.opcode == "DEPTHWISE_CONV_2D")
    assert dw.options["depth_multiplier"] == 1
    assert m.tensors[dw.inputs[1]].quantized_dimension == 3
    assert m.producer(conv.outputs[0]) == 0 and m.consumers(m.inputs[0]) == [0]
    assert "CONV_2D" in m.summary()


def test_corrupt_bytes_raise_value_error(tiny_tflite):
    b = tiny_tflite
    for bad in (b"", b"\x00" * 8, b[:100], b"XXXX" + b[4:], b[:4] + b"ABCD" + b[8:],
                (10 ** 6).to_bytes(4, "little") + b[4:]):
        with pytest.raises(tflite_io.TFLiteFormatError):
            tflite_io.read(bad)
    with pytest.raises(ValueError):  # TFLiteFormatError is a ValueError
        tflite_io.read(b[: len(b) // 2])
    with pytest.raises(TypeError):
        tflite_io.read(12345)


def test_random_corruption_never_crashes(tiny_tflite):
    """Flipped bytes either still parse or raise the clear ValueError - nothing else."""
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(60):
        arr = bytearray(tiny_tflite)
        for pos in rng.integers(8, min(len(arr), 2000), size=4):
            arr[pos] = int(rng.integers(256))
        try:
            tflite_io.read(bytes(arr))
            outcomes["ok"] += 1
        except ValueError:
            outcomes["error"] += 1
    assert outcomes["ok"] + outcomes["error"] == 60


def test_canonical_layout_and_exact_size(tiny_tflite):
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    # to_tflite_int8 output is already canonical: re-canonicalising is the identity
    assert tflite_io.canonical_bytes(tiny_tflite) == tiny_tflite
    m = tflite_io.read(tiny_tflite)
    assert all(t.name == "" for t in m.tensors)
    # constants first, activations on the empty buffer 0
    first_act = next(t.index for t in m.tensors if not t.is_constant)
    assert all(not t.is_constant for t in m.tensors[first_act:])
    assert all(t.buffer == 0 for t in m.tensors if not t.is_constant)
    # constant payloads 16-byte aligned in the file
    mt = fb.Model.GetRootAsModel(tiny_tflite, 0)
    base = np.frombuffer(tiny_tflite, np.uint8).ctypes.data
    for i in range(mt.BuffersLength()):
        buf = mt.Buffers(i)
        if buf.DataLength():
            start = buf.DataAsNumpy().ctypes.data - base
            assert start % 16 == 0, (i, start)
    # the size-only builder replays the serialisation exactly
    mo = fb.ModelT.InitFromObj(mt)
    real = flatbuffers.Builder(1024)
    tflite_io.pack_model(mo, real)
    assert len(real.Output()) == tflite_io.packed_size(mo) == len(tiny_tflite)


def test_opcode_name():
    assert tflite_io.opcode_name(3) == "CONV_2D"
    assert tflite_io.opcode_name(4) == "DEPTHWISE_CONV_2D"
    assert tflite_io.opcode_name(9) == "FULLY_CONNECTED"

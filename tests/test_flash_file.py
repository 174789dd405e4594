"""helpers.resources.flash_file_breakdown / device_image: every byte of a foreign .tflite
attributed, the parts checked against independent counts, the device image run in
TFLite-Micro, and every builtin operator profiled without "not modelled"."""
import flatbuffers
import numpy as np
import pytest

from helpers import resources as R
from helpers import tflite_io


@pytest.fixture(scope="module")
def converted():
    """A converter file as users get it: names, signature defs, converter metadata."""
    import keras

    from helpers import deploy
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(8, 1)(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, x)
    for w in model.weights:  # non-zero, distinct biases: no buffer de-duplication
        w.assign(np.random.default_rng(len(w.name)).normal(0, 0.3, w.shape).astype("float32"))
    rep = np.random.default_rng(0).normal(size=(8, 12, 12, 3)).astype("float32")
    return deploy.to_tflite_int8(model, rep, strip=False)


def _with_min_max(b: bytes) -> tuple[bytes, int]:
    """The same model with per-tensor min/max arrays on every activation (as older
    converters and QAT exports write them). Returns (bytes, number of tensors given them)."""
    fb = tflite_io._schema()
    m = fb.ModelT.InitFromPackedBuf(b, 0)
    n = 0
    for t in m.subgraphs[0].tensors:
        data = m.buffers[t.buffer].data
        if t.quantization is not None and (data is None or len(data) == 0):
            t.quantization.min = np.array([-1.5], np.float32)
            t.quantization.max = np.array([2.5], np.float32)
            n += 1
    bld = flatbuffers.Builder(len(b) + 4096)
    tflite_io.pack_model(m, bld)
    return bytes(bld.Output()), n


def test_every_byte_attributed_and_parts_match_independent_counts(converted):
    b = converted
    f = R.flash_file_breakdown(b)
    assert f["total"] == len(b) == sum(f[p] for p in R.FILE_PARTS)
    assert f["unattributed"] == 0
    m = tflite_io.read(b)
    # names: each string is a 4-byte length + bytes + NUL; plus the subgraph name "main"
    names = sum(4 + len(t.name.encode()) + 1 for t in m.tensors) + 4 + len("main") + 1
    assert f["names"] == names
    consts = {t.buffer: t for t in m.tensors if t.is_constant}
    assert f["weights"] == sum(t.nbytes for t in consts.values() if t.type_name == "INT8")
    assert f["biases"] == sum(t.nbytes for t in consts.values() if t.type_name != "INT8")
    assert f["metadata"] > 16 + 96 and set(m.metadata_names) >= {"min_runtime_version"}
    assert f["signature_defs"] > 0 and f["description"] == 4 + len(m.description) + 1
    # padding is alignment only: under 16 B per constant buffer + 4 per table/vector
    assert f["padding"] < 16 * len(consts) + 4 * (len(m.tensors) * 3 + len(m.ops) * 3) + 64


def test_min_max_arrays_are_reported_by_name(converted):
    b, n = _with_min_max(converted)
    assert n >= 6
    f = R.flash_file_breakdown(b)
    assert f["total"] == len(b) and f["unattributed"] == 0
    assert f["quant_min_max"] == n * 2 * (4 + 4)  # two 1-float vectors per tensor
    assert R.profile(b).flash_bytes == len(b)


def test_device_image_runs_identically_in_tflm(converted):
    from helpers import deploy
    b, _ = _with_min_max(converted)
    f = R.flash_file_breakdown(b)
    img = R.device_image(b)
    assert len(img) == f["device_image_bytes"] < len(b)
    # it drops what the breakdown names, plus the 4-byte references to it and their
    # vtable slots (name, min, max per tensor) and some alignment
    nt = len(tflite_io.read(b).tensors)
    slack = len(b) - f["not_on_device"] - len(img)
    assert 0 <= slack <= 3 * 8 * nt + f["padding"] + 64, slack
    g = R.flash_file_breakdown(img)
    assert g["names"] == g["quant_min_max"] == g["signature_defs"] == g["description"] == 0
    x = np.random.default_rng(1).integers(-128, 128, size=(4, 12, 12, 3), dtype=np.int8)
    a = deploy.tflm_predict(b, x, dequantize=False)
    c = deploy.tflm_predict(img, x, dequantize=False)
    assert np.array_equal(a, c)
    assert deploy.measure_arena(img).head == deploy.measure_arena(b).head
    p = R.profile(b)
    assert "device image" in p.summary() and f"{len(img):,}" in p.summary()


def _one_op_model(code: int) -> bytes:
    """A .tflite with one operator ``code`` over int8 tensors (shapes that the rank checks
    of the conv-family kernels accept)."""
    fb = tflite_io._schema()
    name = tflite_io.opcode_name(code)
    m = fb.ModelT()
    m.version = 3
    oc = fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    if name == "CUSTOM":
        oc.customCode = "MyOp"
    m.operatorCodes = [oc]

    def tensor(shape, typ=9, buf=0):
        t = fb.TensorT()
        t.shape, t.type, t.buffer = np.array(shape, np.int32), typ, buf
        q = fb.QuantizationParametersT()
        q.scale, q.zeroPoint = np.array([0.1], np.float32), np.array([0], np.int64)
        t.quantization = q
        return t

    def buffer(nbytes):
        bb = fb.BufferT()
        bb.data = np.ones(nbytes, np.uint8) if nbytes else None
        return bb

    fc = name == "FULLY_CONNECTED"
    x = tensor((1, 4, 4, 4) if not fc else (1, 4))
    w = tensor((4, 1, 1, 4) if not fc else (4, 4), 9, 2)
    bias = tensor((4,), 2, 3)
    y = tensor((1, 4, 4, 4) if not fc else (1, 4))
    tensors = [x, tensor((4,), 2, 1), w, bias, y]
    ins = [0, 2, 3] if name != "TRANSPOSE_CONV" else [1, 2, 0, 3]
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array(ins, np.int32), np.array([4], np.int32)
    opts = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
            "TRANSPOSE_CONV": "TransposeConvOptions"}.get(name)
    if opts:
        o = getattr(fb, opts + "T")()
        for k in ("strideW", "strideH", "filterWidth", "filterHeight", "depthMultiplier"):
            if hasattr(o, k):
                setattr(o, k, 1)
        op.builtinOptionsType, op.builtinOptions = getattr(fb.BuiltinOptions, opts), o
    elif name == "RESHAPE":
        o = fb.ReshapeOptionsT()
        o.newShape = np.array([1, 4, 4, 4], np.int32)
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.ReshapeOptions, o
    elif name == "CUSTOM":
        op.customOptions = np.arange(1, 9, dtype=np.uint8)
    sg = fb.SubGraphT()
    sg.tensors, sg.operators = tensors, [op]
    sg.inputs, sg.outputs = np.array([0], np.int32), np.array([4], np.int32)
    m.subgraphs = [sg]
    m.buffers = [buffer(0), buffer(16), buffer(16), buffer(16)]
    bld = flatbuffers.Builder(4096)
    tflite_io.pack_model(m, bld)
    return bytes(bld.Output())


def test_every_builtin_operator_is_profiled_from_a_file():
    """A file is its own flash model: no builtin operator raises "not modelled"."""
    codes = sorted(tflite_io._enum_names("BuiltinOperator"))
    assert len(codes) > 150
    profiled = 0
    for code in codes:
        b = _one_op_model(code)
        f = R.flash_file_breakdown(b)
        assert f["total"] == len(b) and f["unattributed"] == 0, tflite_io.opcode_name(code)
        p = R.profile(b)
        assert p.flash_bytes == len(b) and p.layers[0]["opcode"].startswith(tflite_io.opcode_name(code))
        name = tflite_io.opcode_name(code)
        assert p.peak_sram_bytes >= (32 if name == "FULLY_CONNECTED" else 128), name  # in + out
        profiled += 1
    assert profiled == len(codes)
    # the from-architecture path keeps its operator list and names the operator
    g = R.graph_from_tflite(_one_op_model(25))  # SOFTMAX
    with pytest.raises(ValueError, match="SOFTMAX not modelled"):
        R.flash_bytes(g)


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(tflite_io.TFLiteFormatError):
        R.flash_file_breakdown(b"not a tflite file at all, just text")
    with pytest.raises(ValueError, match="tflite_bytes"):
        R.flash_file_breakdown(12345)
    p = tmp_path / "m.tflite"
    p.write_bytes(_one_op_model(3))
    assert R.flash_file_breakdown(str(p))["total"] == p.stat().st_size

"""helpers.deploy: int8 conversion, TFLite-Micro arena measurement, prediction, errors."""
import flatbuffers
import numpy as np
import pytest

from helpers import deploy, resources, spaces, tflite_io

ARCH = {"space": "granular", "pooling": "avg", "pool_size": 0,
        "dense": [{"units": 16, "relu": True}],
        "blocks": [{"layers": [{"type": "conv", "filters": 8, "kernel": 3, "stride": 2,
                                "batch_norm": True, "relu": True}],
                    "pool": False, "branch": None},
                   {"layers": [{"type": "dwconv", "filters": 0, "kernel": 3, "stride": 1,
                                "batch_norm": True, "relu": True},
                               {"type": "conv1x1", "filters": 8, "kernel": 1, "stride": 1,
                                "batch_norm": True, "relu": False}],
                    "pool": False, "branch": {"type": "conv1x1", "kernel": 1,
                                              "batch_norm": False, "relu": False}}]}


@pytest.fixture(scope="module")
def converted():
    arch = spaces.GranularArch.from_dict(ARCH)
    model = spaces.build(arch, (20, 20, 1), 4, seed=3)
    deploy.randomize_weights(model, 3)
    x = np.random.default_rng(0).standard_normal((64, 20, 20, 1)).astype(np.float32)
    return arch, model, x, deploy.to_tflite_int8(model, x[:16])


def test_int8_io_and_arena(converted):
    arch, model, x, b = converted
    m = tflite_io.read(b)
    assert m.tensors[m.inputs[0]].dtype == np.int8 and m.tensors[m.outputs[0]].dtype == np.int8
    rep = deploy.measure_arena(b)  # isolated child process
    rep2 = deploy.measure_arena(b, isolate=False)
    assert rep.head == rep2.head and rep.total == rep.head + rep.tail
    assert rep.head == resources.profile(arch, (20, 20, 1), 4).peak_sram_bytes
    assert rep.head == resources.plan_tflite(b).peak_sram_bytes
    assert len(b) == resources.profile(arch, (20, 20, 1), 4).flash_bytes
    assert "head" in rep.summary() and rep.to_dict()["head"] == rep.head


def test_tflm_predict_matches_keras(converted):
    arch, model, x, b = converted
    y_keras = model(x, training=False).numpy()
    y_tflm = deploy.tflm_predict(b, x)
    assert y_tflm.shape == y_keras.shape
    scale = float(np.abs(y_keras).max())
    assert np.abs(y_tflm - y_keras).max() < 0.1 * scale  # int8 quantisation error
    agree = np.mean(y_tflm.argmax(1) == y_keras.argmax(1))
    assert agree >= 0.85, agree
    raw = deploy.tflm_predict(b, x[:3], dequantize=False)
    assert raw.dtype == np.int8
    with pytest.raises(ValueError, match="shape"):
        deploy.tflm_predict(b, np.zeros((2, 5, 5, 1), np.float32))


def test_bad_models_raise_clear_errors(converted):
    _, _, _, b = converted
    with pytest.raises(tflite_io.TFLiteFormatError):
        deploy.measure_arena(b[:200])
    with pytest.raises(tflite_io.TFLiteFormatError):
        deploy.measure_arena(b"not a model at all, clearly")
    with pytest.raises(ValueError, match="arena_size"):
        deploy.measure_arena(b, arena_size=0)
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    # an operator TFLM does not have
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(b, 0))
    m.operatorCodes[0].builtinCode = m.operatorCodes[0].deprecatedBuiltinCode = 69  # TILE
    bld = flatbuffers.Builder(1024)
    tflite_io.pack_model(m, bld)
    with pytest.raises(deploy.TFLMError, match="TILE"):
        deploy.measure_arena(bytes(bld.Output()))
    # a structurally valid file the interpreter rejects (tensor shapes inconsistent)
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(b, 0))
    conv = m.subgraphs[0].operators[0]
    m.subgraphs[0].tensors[conv.inputs[1]].shape = np.array([8, 3, 3, 5], np.int32)
    m.subgraphs[0].tensors[conv.inputs[1]].buffer = 0  # weights now a missing input
    bld = flatbuffers.Builder(1024)
    tflite_io.pack_model(m, bld)
    with pytest.raises(deploy.TFLMError):
        deploy.measure_arena(bytes(bld.Output()))


def test_representative_data_validation(converted):
    _, model, _, _ = converted
    with pytest.raises(ValueError, match="representative_data"):
        deploy.to_tflite_int8(model, np.zeros((4, 7, 7, 1), np.float32))
    with pytest.raises(ValueError, match="representative_data"):
        deploy.to_tflite_int8(model, [])

"""helpers.deploy.tflm_tail: TFLite-Micro's persistent tail modelled from its structures; the
64-bit model checked against the tail measured on this host, the 32-bit one smaller.
"""
import numpy as np
import pytest

from helpers import deploy
from helpers.deploy import tflm_tail as T


@pytest.fixture(scope="module")
def models():
    out = {}
    for name, shape in (("mobilenetv2-0.35", (32, 32, 3)), ("ds-cnn", (49, 10, 1))):
        _, model = deploy.reference_model(name, shape, 10, seed=0)
        deploy.randomize_weights(model, 0)
        out[name] = deploy.to_tflite_int8(
            model, np.random.default_rng(0).normal(0, 1, (8,) + shape).astype(np.float32))
    return out


def test_struct_layouts_follow_c_alignment():
    # 64-bit sizes the host's RecordingMicroAllocator reports per allocation
    assert T.struct_size("TfLiteEvalTensor", 8)[0] == 24
    assert T.struct_size("TfLiteTensor", 8)[0] == 64
    assert T.struct_size("NodeAndRegistration", 8)[0] == 64
    # 32-bit: pointers and size_t halve
    assert T.struct_size("TfLiteEvalTensor", 4)[0] == 12
    assert T.struct_size("TfLiteTensor", 4)[0] == 40
    assert T.struct_size("NodeAndRegistration", 4)[0] == 32
    assert T.struct_size("OpDataAdd", 4) == T.struct_size("OpDataAdd", 8)   # no pointers
    with pytest.raises(ValueError, match="ptr"):
        T.struct_size("TfLiteNode", 2)


def test_host_model_matches_the_measured_tail_and_32_bit_is_smaller(models):
    for name, b in models.items():
        rep = deploy.measure_arena(b)
        c = T.check_against_host(b, rep)
        assert abs(c["tail_host_model_error"]) < 0.02, (name, c)     # measured <= 0.1 %
        m64, m32 = T.tail_model(b, 8), T.tail_model(b, 4)
        # the itemised parts equal the allocator's own per-category report
        used = {ln.split("'")[1]: int(ln.split("used ")[1].split()[0]) for ln in rep.lines
                if "used" in ln}
        assert m64.eval_tensors == used["TfLiteEvalTensor data"]
        assert m64.node_and_registration == used["NodeAndRegistration struct"]
        assert abs(m64.persistent_buffers - used["Persistent buffer data"]) <= 64
        assert 0.6 * m64.total < m32.total < m64.total
        assert c["total_mcu32_model_bytes"] == rep.head + m32.total


def test_bad_pointer_width_raises(models):
    with pytest.raises(ValueError, match="ptr_bytes"):
        T.tail_model(models["ds-cnn"], 2)

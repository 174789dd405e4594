"""helpers.spaces: encodings, JSON round-trip, hashes, sampling, morphisms, build."""
import json

import numpy as np
import pytest

from helpers import spaces
from helpers.spaces import BlockArch, BlockSpace, GranularArch, GranularSpace, granular


FIXED = {"space": "granular", "pooling": "max", "pool_size": 2,
         "dense": [{"units": 16, "relu": True}],
         "blocks": [{"layers": [{"type": "conv", "filters": 4, "kernel": 5, "stride": 2,
                                 "batch_norm": True, "relu": True}],
                     "pool": False, "branch": {"type": "conv", "kernel": 3,
                                               "batch_norm": False, "relu": False}},
                    {"layers": [{"type": "dwconv", "filters": 0, "kernel": 3, "stride": 1,
                                 "batch_norm": False, "relu": True}],
                     "pool": True, "branch": None}]}


def test_json_round_trip_and_stable_hash():
    a = GranularArch.from_dict(FIXED)
    assert spaces.from_json(a.to_json()) == a
    assert json.loads(a.to_json()) == json.loads(json.dumps(a.to_dict(), sort_keys=True))
    # the hash is a pure function of the canonical JSON: same value in every run
    assert a.hash == "294ddd708421e526"
    rng = np.random.default_rng(3)
    for _ in range(50):
        g = GranularArch.random(rng)
        assert spaces.from_json(g.to_json()) == g and spaces.from_json(g.to_json()).hash == g.hash
        b = BlockArch.random(rng)
        assert spaces.from_json(b.to_json()) == b
    small = BlockSpace(stages=((16, 2), (24, 2)), widths=(0.5,), resolutions=(24,))
    b = BlockArch.random(rng, small)
    assert spaces.from_json(b.to_json()).space == small


def test_bad_input_raises():
    with pytest.raises(ValueError):
        spaces.from_dict({"space": "nope"})
    with pytest.raises(ValueError):
        spaces.from_json("{not json")
    bad = json.loads(json.dumps(FIXED))
    bad["blocks"][0]["layers"][0]["kernel"] = 4
    with pytest.raises(ValueError, match="kernel"):
        GranularArch.from_dict(bad)
    with pytest.raises(ValueError, match="input_shape"):
        GranularArch.from_dict(FIXED).layers((28, 28), 10)
    with pytest.raises(ValueError, match="num_classes"):
        GranularArch.from_dict(FIXED).layers((28, 28, 1), 0)
    with pytest.raises(TypeError, match="rng"):
        GranularArch.random(42)


def _check_layers(layers, input_shape, num_classes):
    assert layers[0].shape == tuple(input_shape)
    assert layers[-1].kind == "dense" and layers[-1].shape == (num_classes,)
    for l in layers[1:]:
        assert all(i < l.id for i in l.inputs)
        assert all(s >= 1 for s in l.shape)
        if l.kind == "add":
            assert layers[l.inputs[0]].shape == layers[l.inputs[1]].shape == l.shape


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (49, 10, 1), (5, 5, 2)])
def test_random_and_mutations_are_valid(shape):
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        a = GranularArch.random(rng)
        a.validate()
        _check_layers(a.layers(shape, 10), shape, 10)
        for _ in range(5):
            b = a.mutate(rng)
            assert b != a
            b.validate()
            _check_layers(b.layers(shape, 10), shape, 10)
            seen.add(b.last_mutation)
            a = b
    assert seen == set(granular._GRANULAR_MORPHS)  # every morphism is exercised
    for _ in range(30):
        b = BlockArch.random(rng)
        b.validate()
        _check_layers(b.layers(shape, 10), shape, 10)
        m = b.mutate(rng)
        assert m != b
        m.validate()
        c = b.crossover(m, rng)
        c.validate()


def test_granular_bounds_respected():
    rng = np.random.default_rng(1)
    s = GranularSpace(max_blocks=3, max_layers=2, max_filters=8, max_units=20, max_dense=2)
    for _ in range(200):
        a = GranularArch.random(rng, s)
        for _ in range(3):
            a = a.mutate(rng, s)
        a.validate(s)
        assert 1 <= len(a.blocks) <= 3 and len(a.dense) <= 1
        assert all(l.filters <= 8 for b in a.blocks for l in b.layers)


def test_block_space_structure():
    b = BlockArch(resolution=24, width=0.5, stages=[[(6, 3), (3, 5)], [(4, 7)] * 3,
                                                     [(3, 3)] * 4, [(6, 5)] * 2])
    layers = b.layers((32, 32, 3), 10)
    assert layers[1].kind == "resize" and layers[1].shape == (24, 24, 3)
    assert b.layers((24, 24, 3), 10)[1].kind == "conv"  # no resize when it matches
    kinds = [l.kind for l in layers]
    assert kinds.count("dwconv") == 1 + 2 + 3 + 4 + 2
    dws = [l for l in layers if l.kind == "dwconv"][1:]
    assert [l.params["kernel"] for l in dws] == [3, 5] + [7] * 3 + [3] * 4 + [5] * 2
    # residual adds: every non-first block of a stage, plus the fixed first block
    assert kinds.count("add") == 1 + 1 + 2 + 3 + 1
    exp = [l for l in layers if l.name.endswith("_expand")]
    assert exp[0].params["filters"] == spaces.make_divisible(16 * 0.5) * 6
    assert spaces.make_divisible(24 * 0.2) == 8 and spaces.make_divisible(40 * 0.5) == 24


def test_build_matches_layers():
    from helpers import resources
    a = GranularArch.from_dict(FIXED)
    m = spaces.build(a, (28, 28, 1), 10, seed=0)
    assert tuple(m.output_shape) == (None, 10)
    # learned parameters after BN folding = Keras kernels + biases (+ BN shift as bias)
    p = resources.profile(a, input_shape=(28, 28, 1), num_classes=10)
    keras_params = 0
    for layer in m.layers:
        cls = type(layer).__name__
        if cls in ("Conv2D", "DepthwiseConv2D", "Dense"):
            w = layer.get_weights()
            keras_params += w[0].size + (w[0].shape[-1] if cls != "DepthwiseConv2D"
                                         else w[0].shape[-2])
    assert p.params == keras_params
    b = BlockArch.random(np.random.default_rng(2))
    mb = spaces.build(b, (32, 32, 3), 7)
    assert tuple(mb.output_shape) == (None, 7)

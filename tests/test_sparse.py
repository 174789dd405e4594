"""helpers.methods.sparse (SpArSe objectives, parametrisation) and helpers.search.oracles.BayesianOracle."""
import json

import numpy as np
import pytest

from helpers import resources as R
from helpers import search
from helpers.methods import sparse as SP
from helpers import spaces as S


def _arch(blocks, pool_size=0, pooling="avg", dense=()):
    return S.GranularArch(blocks=[S.ConvBlock(layers=[S.ConvLayer(*l) for l in b[0]], pool=b[1],
                                              branch=b[2] if len(b) > 2 else None) for b in blocks],
                          pooling=pooling, pool_size=pool_size,
                          dense=[S.DenseLayer(u, True) for u in dense])


# ------------------------------------------------------------------ f3: working memory
def test_working_memory_chain_known_answer():
    # 8x8x1 -> conv 4 (3x3, s1): in 64 + out 256 = 320; GAP: 256 + 4; dense: 4 + 10
    a = _arch([([("conv", 4, 3, 1, True, True)], False)])
    wm = SP.working_memory(a, (8, 8, 1), 10)
    assert [r["working_bytes"] for r in wm.layers] == [320, 260, 14]
    assert wm.peak == 320 and wm.argmax == 0
    # stride 2 + pre-pool: maxpool 64 -> 16 (80); conv s2 on 4x4x1 -> 2x2x6: 16 + 24 = 40
    a = _arch([([("conv", 6, 3, 2, False, True)], True)], pool_size=2, dense=(12,))
    wm = SP.working_memory(a, (8, 8, 1), 10)
    # maxpool 80, conv 40, avgpool 24 -> 6 (30), reshape 6 -> 6 is dropped (1x1xC),
    # dense 6 -> 12 (18), classifier 12 -> 10 (22)
    assert [r["working_bytes"] for r in wm.layers] == [80, 40, 30, 18, 22]
    assert wm.peak == 80


def test_working_memory_branch_and_tflite_agree():
    # a parallel branch: the ADD reads two 8x8x3 tensors (192 + 192) and writes 192 -> 576
    a = _arch([([("conv", 3, 3, 1, True, True)], False, S.Branch("conv1x1", 1, False, False))])
    wm = SP.working_memory(a, (8, 8, 2), 4)
    add = [r for r in wm.layers if r["opcode"] == "ADD"][0]
    assert add["working_bytes"] == 3 * 192
    assert wm.peak == 3 * 192
    # the exact TFLM plan of the same graph is larger: the ADD's inputs and output
    # plus the graph input kept alive until the branch runs, 16-byte aligned
    assert R.profile(a, (8, 8, 2), 4).peak_sram_bytes >= wm.peak
    # same model from a Graph and from a layer list
    g = R.graph_from_layers(a.layers((8, 8, 2), 4))
    assert SP.working_memory(g).peak == wm.peak
    with pytest.raises(ValueError, match="input_shape"):
        SP.working_memory(a)


# ------------------------------------------------------------------ f2: model size
def test_model_size_keras_known_answer():
    keras = pytest.importorskip("keras")
    inp = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", use_bias=False, name="c_conv")(inp)
    x = keras.layers.BatchNormalization(name="c_conv_bn")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(3, name="fc")(x)
    m = keras.Model(inp, out)
    k = np.ones((3, 3, 1, 2), np.float32)
    k[:, :, :, 1] = 0.0          # channel 1 pruned ...
    k[0, 0, 0, 0] = 0.0          # ... and one weight of channel 0
    m.get_layer("c_conv").set_weights([k])
    # BN: gamma (1, 0), beta (0.5, 0) -> folded bias (0.5, 0); channel 1 is zero after folding
    m.get_layer("c_conv_bn").set_weights([np.array([1.0, 0.0]), np.array([0.5, 0.0]),
                                          np.zeros(2), np.ones(2)])
    w = np.zeros((32, 3), np.float32)
    w[:5, 0] = 1.0
    m.get_layer("fc").set_weights([w, np.array([0.0, 1.0, 2.0], np.float32)])
    ms = SP.model_size(m)
    # conv: 8 non-zero weights + 1 bias; dense: 5 weights + 2 biases
    assert ms.nonzero == 8 + 1 + 5 + 2
    assert ms.dense == 18 + 2 + 96 + 3
    # index overhead: conv kernel 18 weights, 8 nz: bitmap 3 + 8 = 11 < 18; dense 96 weights,
    # 5 nz: 12 + 5 = 17; biases stored as their non-zeros
    assert ms.indexed == 11 + 1 + 17 + 2
    assert ms.index_overhead == 3 + 12
    with pytest.raises(ValueError, match="model_size"):
        SP.model_size("not a model")


def test_arch_model_size_matches_profile_params():
    a = _arch([([("conv", 4, 3, 2, True, True), ("dwconv", 0, 3, 1, True, True)], False)],
              pool_size=2, dense=(12,))
    ms = SP.arch_model_size(a, (12, 12, 1), 10)
    assert ms.nonzero == R.profile(a, (12, 12, 1), 10).params


def test_pruning_masks_survive_int8_conversion():
    """Zeros stay zero through training and int8 conversion, and the .tflite count is exact."""
    keras = pytest.importorskip("keras")
    from helpers import deploy, prune, tflite_io, train

    rng = np.random.default_rng(0)
    a = _arch([([("conv", 6, 3, 2, True, True), ("dwconv", 0, 3, 1, False, True)], False)],
              pool_size=2, dense=(16,))
    m = S.build(a, (12, 12, 1), 4, seed=0)
    x = rng.random((256, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    cb = prune.unstructured_pruning(0.7, update_every=2, prune_last=True)
    train.compile_model(m, 3e-3)
    m.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[cb])
    assert cb.sparsity == pytest.approx(0.7, abs=0.01)
    b = deploy.to_tflite_int8(m, x[:32])
    t = tflite_io.read(b)
    consts = {op.opcode + str(i): t.tensors[op.inputs[1]].data
              for i, op in enumerate(t.ops) if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                              "FULLY_CONNECTED")}
    kz = {l.name: np.asarray(l.get_weights()[0]) == 0 for l in m.layers
          if type(l).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")}
    conv = [v for k, v in consts.items() if k.startswith("CONV_2D")][0]           # (cout, h, w, cin)
    dw = [v for k, v in consts.items() if k.startswith("DEPTHWISE")][0]          # (1, h, w, c)
    fcs = [v for k, v in consts.items() if k.startswith("FULLY")]                 # (units, n)
    assert np.all(conv[np.transpose(kz["b0_l0_conv"], (3, 0, 1, 2))] == 0)
    assert np.all(dw[np.transpose(kz["b0_l1_dw"], (3, 0, 1, 2))] == 0)
    assert np.all(fcs[0][kz["dense0"].T] == 0)
    n_pruned = sum(int(v.sum()) for v in kz.values())
    assert n_pruned > 0
    # int8 count <= float count (tiny weights may round to 0) and within 2 %
    ms8, msf = SP.model_size(b), SP.model_size(m)
    assert ms8.dense == msf.dense
    assert msf.nonzero * 0.98 <= ms8.nonzero <= msf.nonzero
    # the pre-training formula for unstructured pruning predicts the float count
    cand = SP.SparseCandidate(a, 0.7, False, 3e-3)
    est = SP.candidate_resources(cand, (12, 12, 1), 4, exact=False)["model_size"]
    assert abs(est - msf.nonzero) <= 0.01 * msf.dense
    # SpArSe working memory of the deployed file = that of the architecture
    assert SP.working_memory(b).peak == SP.working_memory(a, (12, 12, 1), 4).peak


# ------------------------------------------------------------------ parametrisation
def test_space_encoding_round_trip_and_mutation_stays_inside():
    sp = SP.SparseSpace()
    hp = sp.hyperparameters()
    names = {h.name for h in hp.space}
    rng = np.random.default_rng(1)
    for _ in range(200):
        c = sp.random(rng)
        v = sp.to_values(c)
        assert set(v) <= names
        assert sp.from_values(v).to_json() == c.to_json()
        assert sp.from_json(c.to_json()) == c
        m = c.mutate(rng)
        assert m.to_json() != c.to_json()
        assert sp.from_values(sp.to_values(m)) == m          # still representable
        assert sp.sparsity[0] <= m.sparsity <= sp.sparsity[1]
    with pytest.raises(ValueError, match="sparsity"):
        SP.SparseSpace(sparsity=(0.5, 1.0))


def test_apply_widths():
    a = _arch([([("conv", 8, 3, 2, True, True), ("dwconv", 0, 3, 1, True, True)], False)],
              dense=(20,))
    p = SP.apply_widths(a, {"b0_l0_conv": 3, "dense0": 7, "classifier": 10})
    assert p.blocks[0].layers[0].filters == 3 and p.dense[0].units == 7
    assert a.blocks[0].layers[0].filters == 8  # original untouched


# ------------------------------------------------------------------ scalarisation / BO
def test_lambdas_simplex_and_chebyshev():
    rng = np.random.default_rng(0)
    lam = np.array([SP.lambdas_simplex(rng, 3) for _ in range(2000)])
    assert np.allclose(lam.sum(1), 1) and (lam >= 0).all()
    assert np.allclose(lam.mean(0), 1 / 3, atol=0.02)       # uniform on the simplex
    assert SP.chebyshev_simplex([0.5, 2.0, 1.0], [0.5, 0.25, 0.25]) == pytest.approx(0.5)


def _fake(sp):
    def res(c):
        return SP.candidate_resources(c, (28, 28, 1), 10, exact=False)

    def ev(c, seed):
        r = res(c)
        return {"error": 0.02 + 5.0 / (r["params_dense"] + 50) + 0.1 * c.sparsity ** 3,
                "model_size": r.get("model_size", int(r["params_dense"] * (1 - c.sparsity))),
                "working_memory": r["working_memory"]}
    return res, ev


BOUNDS = {"error": 0.05, "model_size": 2867, "working_memory": 2048}


def test_bo_fresh_scalarisation_per_proposal_and_resume(tmp_path):
    sp = SP.SparseSpace()
    res, ev = _fake(sp)
    kw = dict(bounds=BOUNDS, num_initial_points=4, pool_size=48, progress=False, seed=3)
    full = search.bayesian_optimization(sp, ev, res, budget=9, directory=tmp_path / "a", **kw)
    st = json.loads((tmp_path / "a" / "oracle.json").read_text())["tinynas"]["extra"]["lambda_history"]
    bo = full.completed[full.completed.origin == "bo"]
    assert len(bo) == 5 and len(st) == 5
    lams = np.array([h["lambdas"] for h in st])
    assert np.allclose(lams.sum(1), 1)
    assert len({tuple(np.round(x, 12)) for x in lams}) == len(lams)   # a fresh λ every proposal
    assert [h["after_trials"] for h in st] == [4, 5, 6, 7, 8]
    assert all(h["pool"] > 0 for h in st)
    # BO proposals passed the resource screen: none over the working-memory bound
    assert (bo.working_memory <= BOUNDS["working_memory"]).all()
    assert full.completed.key.nunique() == 9
    # interrupted after 6 trials and resumed: the same proposals
    search.bayesian_optimization(sp, ev, res, budget=6, directory=tmp_path / "b", **kw)
    part = search.bayesian_optimization(sp, ev, res, budget=9, directory=tmp_path / "b", **kw)
    assert list(part.completed.arch) == list(full.completed.arch)


def test_bo_rejects_a_space_without_encoding(tmp_path):
    class Plain:
        def random(self, rng):
            return S.GranularArch.random(rng)

    with pytest.raises(ValueError, match="hyperparameters"):
        search.bayesian_optimization(Plain(), lambda a, s: {}, bounds=BOUNDS, budget=2,
                                     directory=tmp_path / "x", progress=False,
                                     arch_from_json=S.from_json)


@pytest.mark.slow
def test_bo_lbfgs_acquisition_runs(tmp_path):
    """keras-tuner's own populate_space (L-BFGS-B over the relaxed box); minutes on 62 dims."""
    sp = SP.SparseSpace()
    res, ev = _fake(sp)
    r = search.bayesian_optimization(sp, ev, res, bounds=BOUNDS, budget=5, num_initial_points=3,
                                     acquisition="lbfgs", directory=tmp_path / "l", progress=False)
    assert len(r.completed) == 5
    assert (r.completed.origin == "bo").sum() == 2
    st = json.loads((tmp_path / "l" / "oracle.json").read_text())["tinynas"]["extra"]["lambda_history"]
    assert len(st) >= 2


def test_pruned_widths_below_space_minimum_still_measurable():
    a = _arch([([("conv", 8, 3, 2, True, True)], False)], dense=(20,))
    p = SP.apply_widths(a, {"dense0": 6, "b0_l0_conv": 1})
    back = SP.arch_from_dict_unchecked(p.to_json())
    assert back.dense[0].units == 6
    assert SP.working_memory(back, (28, 28, 1), 10).peak == 784 + 196


def _ev_module_level(c, seed):  # picklable for worker processes
    r = SP.candidate_resources(c, (28, 28, 1), 10, exact=False)
    return {"error": 0.02 + 5.0 / (r["params_dense"] + 50), "model_size": r.get("model_size", r["params_dense"]),
            "working_memory": r["working_memory"]}


@pytest.mark.slow
def test_bo_two_workers_loopback(tmp_path):
    """BO in keras-tuner's chief/worker mode: every trial recorded once, both workers used (~30 s)."""
    import functools
    sp = SP.SparseSpace()
    res = functools.partial(SP.candidate_resources, input_shape=(28, 28, 1), num_classes=10, exact=False)
    out = search.bayesian_optimization(sp, _ev_module_level, res, bounds=BOUNDS, budget=8,
                                       num_initial_points=3, pool_size=32, directory=tmp_path / "w",
                                       workers=2, progress=False)
    c = out.completed
    assert len(c) == 8 and c.trial_id.nunique() == 8 and c.key.nunique() == 8
    assert set(c.worker) == {"worker0", "worker1"}
    assert (c.origin == "bo").sum() == 5


def _ev_jitter(c, seed):  # module level (picklable); timing that differs run to run, on purpose
    import os
    import time
    slow = os.environ.get("KERASTUNER_TUNER_ID") == "worker0"   # the other worker runs ahead and must wait
    time.sleep((0.8 if slow else 0.0) + 0.3 * int.from_bytes(os.urandom(2), "little") / 65535)
    return _ev_module_level(c, seed)


def test_bo_two_workers_deterministic_with_lag(tmp_path):
    """2 workers with random delays propose what a sequential run with lag 2 proposes (~40 s)."""
    import functools
    sp = SP.SparseSpace()
    res = functools.partial(SP.candidate_resources, input_shape=(28, 28, 1), num_classes=10, exact=False)
    kw = dict(bounds=BOUNDS, num_initial_points=3, pool_size=24, progress=False, seed=5)
    par = search.bayesian_optimization(sp, _ev_jitter, res, budget=8, directory=tmp_path / "par", workers=2, **kw)
    seq = search.bayesian_optimization(sp, _ev_module_level, res, budget=8, directory=tmp_path / "seq", lag=2, **kw)
    one = search.bayesian_optimization(sp, _ev_module_level, res, budget=8, directory=tmp_path / "one", **kw)

    def proposals(r):
        c = r.completed.sort_values("trial_id")
        return list(zip(c.trial_id, c.arch, c.origin))

    assert proposals(par) == proposals(seq)
    assert sum(o == "bo" for _, _, o in proposals(par)) == 5
    assert proposals(one) != proposals(seq)                 # lag 1 (one worker) sees one more trial
    assert json.loads((tmp_path / "par" / "search_config.json").read_text())["algo_kwargs"]["lag"] == 2
    assert json.loads((tmp_path / "one" / "search_config.json").read_text())["algo_kwargs"]["lag"] == 1
    with pytest.raises(ValueError, match="lag"):
        search.bayesian_optimization(sp, _ev_module_level, res, budget=2, directory=tmp_path / "bad", lag=0, **kw)
    # a store made before lag existed resumes as it was made (no lag, no waiting)
    cfg_path = tmp_path / "one" / "search_config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["algo_kwargs"]["lag"]
    cfg_path.write_text(json.dumps(cfg))
    more = search.bayesian_optimization(sp, _ev_module_level, res, budget=9, directory=tmp_path / "one", **kw)
    assert proposals(more)[:8] == proposals(one) and len(more.completed) == 9
    assert "lag" not in json.loads(cfg_path.read_text())["algo_kwargs"]

"""helpers.methods.micronets: the relaxation's expected resources are exact for one-hot choices (against
helpers.resources on the same discrete architecture), are true expectations for the linear
resources, the supernet with one-hot gates computes the discrete network, the search's
penalty pushes the expected resources under their targets, discretisation / repair, the
latency fit, and clear errors. The emulated latency study itself is marked slow.
"""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import resources, targets
from helpers.methods import micronets
from helpers.methods import micronets_latency
from helpers.methods import micronets as dnas

SPACES = [
    dnas.dscnn_space((49, 10, 1), 12, max_width=64, step=8, n_blocks=4),        # KWS, all stride 1
    dnas.dscnn_space((28, 28, 1), 10, max_width=32, step=8, n_blocks=3),        # image, stride-2 block
    dnas.dscnn_space((49, 10, 1), 12, max_width=24, step=4, n_blocks=2),        # step 4
]


@pytest.mark.parametrize("space", SPACES, ids=["kws", "image", "step4"])
def test_one_hot_expected_resources_equal_exact_resources(space):
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(25):
        ch = dnas.random_choices(space, rng)
        e = dnas.expected_resources(space, dnas.one_hot(space, ch))
        arch = dnas.to_arch(space, ch)
        p = resources.profile(arch, space.input_shape, space.num_classes, plan="reordered", table=False)
        assert e["macs"] == pytest.approx(p.macs, abs=1e-6)
        assert e["ops"] == pytest.approx(2 * p.macs, abs=1e-6)
        assert e["model_size"] == pytest.approx(
            p.flash["weights"] + p.flash["biases"] + p.flash["quant"], abs=1e-6)
        assert e["working_memory"] == pytest.approx(p.peak_sram_bytes, abs=1e-6)
        checked += 1
    # the largest and smallest corners too
    for ch in ([max(o) for _, o in space.nodes], [min(o) for _, o in space.nodes]):
        e = dnas.expected_resources(space, dnas.one_hot(space, ch))
        x = dnas.exact_resources(space, ch)
        for k in dnas.RESOURCES:
            assert e[k] == pytest.approx(x[k], abs=1e-6), (ch, k)
    assert checked == 25


def test_working_memory_is_tflm_lower_bound():
    """SpArSe working memory = max live bytes of the chain <= TFLM's greedy arena plan."""
    space = SPACES[0]
    rng = np.random.default_rng(1)
    for _ in range(15):
        x = dnas.exact_resources(space, dnas.random_choices(space, rng))
        assert x["working_memory"] <= x["tflm_peak_sram_bytes"]


def test_linear_resources_are_true_expectations_over_the_product_distribution():
    space = dnas.dscnn_space((49, 10, 1), 12, max_width=16, step=8, n_blocks=2)
    rng = np.random.default_rng(2)
    probs = [rng.dirichlet(np.ones(len(o))) for _, o in space.nodes]
    want = {"macs": 0.0, "model_size": 0.0}
    total = 0.0
    for combo in itertools.product(*[range(len(o)) for _, o in space.nodes]):
        w = float(np.prod([p[i] for p, i in zip(probs, combo)]))
        ch = [space.options(n)[i] for n, i in enumerate(combo)]
        x = dnas.exact_resources(space, ch)
        for k in want:
            want[k] += w * x[k]
        total += w
    assert total == pytest.approx(1.0)
    e = dnas.expected_resources(space, probs)
    for k in want:
        assert e[k] == pytest.approx(want[k], rel=1e-9)


def test_tf_backend_matches_numpy_and_has_gradients():
    import tensorflow as tf
    space = SPACES[0]
    alpha = [tf.Variable(tf.random.stateless_normal([len(o)], seed=[i, 0])) for i, (_, o) in
             enumerate(space.nodes)]
    with tf.GradientTape() as tape:
        ps = [tf.nn.softmax(a) for a in alpha]
        e_tf = dnas.expected_resources(space, ps, backend="tf")
        obj = e_tf["ops"] + e_tf["working_memory"] + e_tf["model_size"]
    grads = tape.gradient(obj, alpha)
    e_np = dnas.expected_resources(space, [p.numpy().astype(np.float64) for p in ps])
    for k in dnas.RESOURCES:
        assert float(e_tf[k]) == pytest.approx(e_np[k], rel=1e-5)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_supernet_with_one_hot_gates_equals_extracted_discrete_model():
    space = dnas.dscnn_space((49, 10, 1), 12, max_width=24, step=8, n_blocks=3)
    net = micronets.DNASSupernet(space, seed=0)
    rng = np.random.default_rng(0)
    for v in net.all_weights():   # non-trivial batch-norm statistics / affine parameters
        if any(s in v.path for s in ("moving", "gamma", "beta")):
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
    x = rng.normal(size=(4, 49, 10, 1)).astype("float32")
    for ch in ([24, 0, 16, 8], [8, 24, 0, 0], [16, 16, 24, 24]):
        a = net(x, net.gates_for(ch), training=False).numpy()
        b = net.extract(ch)(x, training=False).numpy()
        assert np.abs(a - b).max() < 1e-4, ch


def test_search_penalty_pushes_expected_ops_under_target_and_is_deterministic():
    space = dnas.dscnn_space((49, 10, 1), 12, max_width=16, step=8, n_blocks=2)
    rng = np.random.default_rng(0)
    d = SimpleNamespace(x_train=rng.normal(size=(128, 49, 10, 1)).astype("float32"),
                        y_train=rng.integers(0, 12, 128))
    uniform = dnas.expected_resources(space, [np.ones(len(o)) / len(o) for _, o in space.nodes])
    tgt = {"ops": 0.5 * uniform["ops"]}
    net = micronets.DNASSupernet(space, seed=0)
    state = net.get_state()
    r1 = dnas.search(space, d, tgt, epochs=6, penalty_weights={"ops": 20.0}, arch_lr=0.2,
                     net=net, init_state=state, progress=False)
    assert r1.expected["ops"] < 0.8 * uniform["ops"]
    assert r1.history[-1]["E_ops"] < r1.history[0]["E_ops"]
    assert r1.exact["ops"] <= tgt["ops"] and all(r1.fits_targets().values())
    r2 = dnas.search(space, d, tgt, epochs=6, penalty_weights={"ops": 20.0}, arch_lr=0.2,
                     net=net, init_state=state, progress=False)
    assert r2.choices == r1.choices
    np.testing.assert_allclose(np.concatenate(r2.probs), np.concatenate(r1.probs), rtol=1e-5)


def test_discretize_repairs_an_argmax_over_target():
    space = SPACES[0]
    biggest = [max(o) for _, o in space.nodes]
    probs = [np.linspace(0.1, 1.0, len(o)) / np.linspace(0.1, 1.0, len(o)).sum() for _, o in space.nodes]
    full = dnas.exact_resources(space, biggest)
    tgt = {"working_memory": 0.5 * full["working_memory"], "ops": 0.3 * full["ops"]}
    ch, raw, steps = dnas.discretize(space, probs, tgt)
    assert raw == biggest and steps > 0
    x = dnas.exact_resources(space, ch)
    assert x["working_memory"] <= tgt["working_memory"] and x["ops"] <= tgt["ops"]
    with pytest.raises(ValueError, match="no architecture"):
        dnas.discretize(space, probs, {"ops": 10})


def test_resource_targets_scale_with_the_board():
    space = SPACES[0]
    s = dnas.resource_targets(space, "stm32f446re", scale=0.25, ops=1e6)
    m = dnas.resource_targets(space, "stm32f746zg", scale=0.25)
    t = targets.get("stm32f446re", reserve="tflm")
    assert s["working_memory"] == 0.25 * t.sram_budget
    assert 0 < s["model_size"] < 0.25 * t.flash_budget
    assert m["working_memory"] > s["working_memory"] and "ops" not in m and s["ops"] == 1e6


def test_fit_latency_recovers_a_line_and_inverts_it():
    import pandas as pd
    rng = np.random.default_rng(0)
    ops = rng.uniform(1e5, 5e6, 30)
    rows = [{"backbone": "dscnn", "target": "stm32f746zg", "ops": o,
             "latency_ms": 10.0 * o / 1e6 + 2.0 + rng.normal(0, 0.2)} for o in ops]
    fit = micronets_latency.fit_latency(pd.DataFrame(rows))
    r = fit.get("dscnn", "stm32f746zg")
    assert r["a_ms_per_mop"] == pytest.approx(10.0, rel=0.02)
    assert r["b_ms"] == pytest.approx(2.0, abs=0.3)
    assert 0.99 < r["r2"] <= 1.0 and r["mops_per_s"] == pytest.approx(100, rel=0.02)
    # same core and clock -> the F746ZG fit serves the F767ZI
    assert fit.get("dscnn", "stm32f767zi") is r
    assert fit.ops_for_latency("dscnn", "stm32f767zi", 52.0) == pytest.approx(5e6, rel=0.03)
    with pytest.raises(KeyError):
        fit.get("dscnn", "stm32f446re")
    with pytest.raises(ValueError, match="intercept"):
        fit.ops_for_latency("dscnn", "stm32f746zg", 1.0)


def test_bad_arguments_raise_clearly():
    with pytest.raises(ValueError, match="step"):
        dnas.dscnn_space((49, 10, 1), 12, step=5)
    with pytest.raises(ValueError, match="max_width"):
        dnas.dscnn_space((49, 10, 1), 12, max_width=60, step=8)
    space = SPACES[1]
    with pytest.raises(ValueError, match="not allowed"):
        dnas.to_arch(space, [8, 8, 0, 8])          # block 1 has stride 2: no identity
    with pytest.raises(ValueError, match="one value per decision node"):
        dnas.to_arch(space, [8, 8])
    with pytest.raises(ValueError, match="scale"):
        dnas.resource_targets(space, "stm32f446re", scale=0)
    with pytest.raises(KeyError, match="TARGET must be one of"):
        dnas.resource_targets(space, "stm32f999")
    with pytest.raises(ValueError, match="targets keys"):
        dnas.search(space, None, {"latency": 1.0})
    with pytest.raises(ValueError, match="backbone"):
        micronets_latency.sample_backbone("resnet", 3)
    with pytest.raises(ValueError, match="backend"):
        dnas.expected_resources(space, dnas.one_hot(space, [8, 8, 8, 8]), backend="torch")


def test_sample_backbone_is_seeded_and_uniform_over_the_space():
    a = [x[0].hash for x in micronets_latency.sample_backbone("dscnn", 6, seed=3)]
    b = [x[0].hash for x in micronets_latency.sample_backbone("dscnn", 6, seed=3)]
    c = [x[0].hash for x in micronets_latency.sample_backbone("mobilenetv2", 4, seed=3)]
    assert a == b and len(set(a)) > 1 and len(set(c)) > 1


def test_sample_backbone_samples_the_searched_depth():
    # the latency fit must come from the space that is searched: n_blocks reaches the DS-CNNs
    deep = micronets_latency.sample_backbone("dscnn", 12, seed=0, n_blocks=6)
    blocks = [len(arch.blocks) - 1 for arch, _, _ in deep]          # minus the stem
    assert max(blocks) > 4 and all(b <= 6 for b in blocks)
    assert all(len(arch.blocks) - 1 <= 4 for arch, _, _ in micronets_latency.sample_backbone("dscnn", 12, seed=0))


@pytest.mark.slow
def test_latency_study_emulates_and_resumes(tmp_path):
    samples = {"dscnn": micronets_latency.sample_backbone("dscnn", 3, seed=0, max_width=32)}
    st = micronets_latency.latency_study(samples, ["stm32f446re"], store=tmp_path, progress=False)
    df = st.table()
    assert len(df) == 3 and (df["instructions"] > df["macs"]).all()
    fit = micronets_latency.fit_latency(st).get("dscnn", "stm32f446re")
    assert fit["r2"] > 0.9
    again = micronets_latency.latency_study(samples, ["stm32f446re"], store=tmp_path, progress=False)
    assert again.rows == st.rows   # read back from the store, nothing re-emulated


def _result_at(space, choices, probs):
    return dnas.DNASResult(space, {}, {}, probs, list(choices), list(choices), 0, {},
                           dnas.exact_resources(space, choices))


def test_meet_latency_repairs_until_the_emulated_latency_is_within_target():
    space = dnas.dscnn_space((49, 10, 1), 12, max_width=16, step=8, n_blocks=2)
    biggest = [max(o) for _, o in space.nodes]
    probs = [np.full(len(o), 1 / len(o)) for _, o in space.nodes]
    start = dnas.emulate_latency(dnas._int8_random(dnas.to_arch(space, biggest), space.input_shape, 12, 0),
                                 "stm32f446re")["latency_ms"]
    r = _result_at(space, biggest, probs)
    log = dnas.meet_latency(r, "stm32f446re", 0.8 * start)
    assert log[0]["latency_ms"] == pytest.approx(start) and len(log) >= 2
    assert log[-1]["latency_ms"] <= 0.8 * start < log[-2]["latency_ms"]
    assert r.choices == log[-1]["choices"] != biggest and r.repaired == len(log) - 1
    assert r.exact == dnas.exact_resources(space, r.choices)
    # already within target: one measurement, nothing changed
    r2 = _result_at(space, biggest, probs)
    assert len(dnas.meet_latency(r2, "stm32f446re", 2 * start)) == 1 and r2.choices == biggest
    with pytest.raises(ValueError, match="none within"):
        dnas.meet_latency(_result_at(space, biggest, probs), "stm32f446re", 1e-3)
    with pytest.raises(ValueError, match="latency_ms"):
        dnas.meet_latency(r2, "stm32f446re", 0)


def test_retrain_recipe_decays_the_learning_rate_to_zero_along_a_cosine():
    import keras
    from helpers import train
    from helpers import spaces as S
    rng = np.random.default_rng(0)
    d = SimpleNamespace(x_train=rng.normal(size=(96, 49, 10, 1)).astype("float32"),
                        y_train=rng.integers(0, 12, 96), x_val=rng.normal(size=(16, 49, 10, 1)).astype("float32"),
                        y_val=rng.integers(0, 12, 16))
    space = dnas.dscnn_space((49, 10, 1), 12, max_width=16, step=8, n_blocks=1)
    model = S.build(dnas.to_arch(space, [8, 8]), (49, 10, 1), 12, seed=0)
    train.fit(model, d, 2, lr=3e-3, batch_size=32, cosine=True, progress=False)
    sched = model.optimizer._learning_rate
    assert isinstance(sched, keras.optimizers.schedules.CosineDecay)
    assert float(sched(0)) == pytest.approx(3e-3) and float(sched(6)) == pytest.approx(0.0, abs=1e-9)
    assert float(sched(3)) == pytest.approx(1.5e-3, rel=1e-5)       # 2 epochs x 3 batches: halfway
    with pytest.raises(ValueError, match="uncompiled"):
        train.fit(model, d, 1, cosine=True, progress=False)


def test_fill_up_spends_the_budget_left_in_probability_order_and_stays_within_targets():
    space = SPACES[0]
    narrow = [min(o for o in opts if o > 0) for _, opts in space.nodes]
    lowest = [opts[0] for _, opts in space.nodes]          # stem at its narrowest, every block identity
    probs = []
    for k, (_, opts) in enumerate(space.nodes):            # later blocks are more likely to stay
        p = np.full(len(opts), 0.01)
        p[0] = 0.5
        if len(opts) > 1:
            p[1] = 0.1 * k
        probs.append(p / p.sum())
    tgt = {"ops": 0.9 * dnas.exact_resources(space, narrow)["ops"]}
    ch, n = dnas.fill_up(space, probs, lowest, tgt)
    assert n > 0 and dnas.exact_resources(space, ch)["ops"] <= tgt["ops"]
    ids = [i for i, c in enumerate(ch[1:], 1) if c == 0]
    assert ids and ids == list(range(1, len(ids) + 1))     # the least likely blocks (the first) stay dropped
    for i, (_, opts) in enumerate(space.nodes):            # maximal: no single step up still fits
        j = opts.index(ch[i])
        if j + 1 < len(opts):
            up = ch[:i] + [opts[j + 1]] + ch[i + 1:]
            assert dnas.exact_resources(space, up)["ops"] > tgt["ops"]
    assert dnas.fill_up(space, probs, ch, tgt) == (ch, 0)

"""Tests for helpers.prune: schedule, structured DPF callback + rebuild, unstructured masks."""
import numpy as np
import pytest

from helpers import prune as P


def test_cubic_schedule_values():
    kw = dict(final_sparsity=0.8, initial_sparsity=0.2, begin_step=10, end_step=110)
    assert P.sparsity_schedule(0, **kw) == pytest.approx(0.2)
    assert P.sparsity_schedule(10, **kw) == pytest.approx(0.2)
    assert P.sparsity_schedule(60, **kw) == pytest.approx(0.8 + (0.2 - 0.8) * 0.5 ** 3)
    assert P.sparsity_schedule(35, **kw) == pytest.approx(0.8 - 0.6 * 0.75 ** 3)
    assert P.sparsity_schedule(110, **kw) == pytest.approx(0.8)
    assert P.sparsity_schedule(500, **kw) == pytest.approx(0.8)
    s = [P.sparsity_schedule(t, **kw) for t in range(0, 120)]
    assert np.all(np.diff(s) >= 0)
    with pytest.raises(ValueError, match="final_sparsity"):
        P.sparsity_schedule(0, final_sparsity=1.0, end_step=10)


def _chain_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU()(x)
    x = L.Conv2D(6, 1, activation="relu", name="c2")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(10, activation="relu", name="d1")(x)
    out = L.Dense(3, name="out")(x)
    m = keras.Model(inp, out)
    m.compile(optimizer=keras.optimizers.Adam(1e-2),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8, 8, 3)).astype("float32"), rng.integers(0, 3, n)


def test_channel_groups_contract():
    m = _chain_model()
    g = {gr.name: gr for gr in P.channel_groups(m)}
    assert set(g) == {"c1", "c2", "d1"}  # the output layer is never pruned
    assert g["c1"].consumer.name == "c2" and g["c2"].consumer.name == "d1"
    # c2's channel 1 feeds the Flatten positions s*6 + 1 of d1's input
    km = [pos for v, pos in g["c2"].members if v.path.endswith("c2/kernel")][0]
    assert km[1].tolist() == [1]


def test_structured_dpf_masks_and_rebuild():
    m = _chain_model()
    x, y = _data()
    cb = P.structured_pruning(0.5, update_every=2)
    m.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[cb])
    n_total = 8 + 6 + 10
    pruned = sum(int((~a).sum()) for a in cb.channel_masks.values())
    assert abs(pruned - 0.5 * n_total) <= 1  # target within one channel
    assert cb.sparsity == pytest.approx(pruned / n_total)
    assert cb.history[0][1] == pytest.approx(0.0) and cb.history[-1][1] == pytest.approx(0.5)
    # masks honoured: every parameter of a dead channel's group is exactly zero
    groups = {g.name: g for g in P.channel_groups(m)}
    for name, alive in cb.channel_masks.items():
        for v, pos in groups[name].members:
            w = np.asarray(v.numpy())
            assert np.all(w[..., pos[~alive].ravel()] == 0), (name, v.path)
    surv = P.surviving_channels(m)
    assert {k: v.tolist() for k, v in surv.items()} == \
        {k: np.flatnonzero(a).tolist() for k, a in cb.channel_masks.items()}
    small = P.rebuild_pruned(m, surv)
    assert small.get_layer("c1").filters == len(surv["c1"])
    assert small.get_layer("d1").units == len(surv["d1"])
    assert small.count_params() < m.count_params()
    xt = np.random.default_rng(5).normal(size=(16, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(small.predict(xt, verbose=0), m.predict(xt, verbose=0),
                               rtol=1e-4, atol=1e-4)
    assert P.pruned_widths(m) == {k: len(v) for k, v in surv.items()}


def test_structured_feedback_keeps_dense_weights():
    # DPF: between batches the masked channels keep (and update) their dense
    # weights, so a channel can come back; at the end of fit they are zeroed.
    import keras

    m = _chain_model(1)
    x, y = _data(seed=1)
    cb = P.structured_pruning(0.5, update_every=1, scope="layer")
    dense_masked = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            dead = ~cb.channel_masks["c1"]
            dense_masked.append(float(np.abs(m.get_layer("c1").kernel.numpy()[..., dead]).sum()))

    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb, Watch()])
    assert min(dense_masked[1:]) > 0
    for name, alive in cb.channel_masks.items():
        assert int((~alive).sum()) == round(0.5 * len(alive))  # per-layer: exact
    assert not m.get_layer("c1").kernel.numpy()[..., ~cb.channel_masks["c1"]].any()


def test_unstructured_zeros_stay_zero():
    import keras

    m = _chain_model(2)
    x, y = _data(seed=2)
    cb = P.unstructured_pruning(0.7, update_every=2)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # after the pruning callback ran: pruned weights are exact zeros
            for v in cb._vars:
                mk = cb.weight_masks[v.path]
                seen.append(np.count_nonzero(np.asarray(v.numpy())[~mk]))

    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb, Watch()])
    assert sum(seen) == 0 and len(seen) == 8 * len(cb._vars)
    ks = [v for v in cb._vars]
    n = sum(int(np.prod(v.shape)) for v in ks)
    zeros = sum(int((np.asarray(v.numpy()) == 0).sum()) for v in ks)
    assert abs(zeros - round(0.7 * n)) <= 1
    assert "out/kernel" not in cb.weight_masks  # output layer kept dense (μNAS default)
    df = P.count_nonzero(m)
    row = df.set_index("layer").loc["c1"]
    k1 = m.get_layer("c1")
    assert row.nonzero == np.count_nonzero(k1.kernel.numpy()) + np.count_nonzero(k1.bias.numpy())


def test_bad_inputs():
    with pytest.raises(ValueError, match="target_sparsity"):
        P.structured_pruning(1.5)
    with pytest.raises(ValueError, match="scope"):
        P.unstructured_pruning(0.5, scope="net")


def test_rebuild_branched_granular_model():
    # a μNAS block with a parallel branch: the Add's producers stay whole, the first conv is
    # pruned; the rebuilt graph drops its dead channels and computes the same function
    from helpers import spaces

    L, B = spaces.ConvLayer, spaces.ConvBlock
    arch = spaces.GranularArch([B([L("conv", 8, 3, 2), L("conv", 6, 3, 1)], branch=spaces.Branch("conv1x1")),
                                B([L("conv", 10, 3, 2)])], "avg", 0, [spaces.DenseLayer(12)])
    m = spaces.build(arch, (12, 12, 1), 4, seed=0)
    m.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 12, 12, 1)).astype("float32"), rng.integers(0, 4, 64)
    cb = P.structured_pruning(0.5, update_every=2)
    m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    surv = P.surviving_channels(m)
    assert any(len(v) < m.get_layer(k).kernel.shape[-1] for k, v in surv.items())  # something was pruned
    small = P.rebuild_pruned(m, surv)
    assert any(type(l).__name__ == "Add" for l in small.layers)
    assert small.count_params() < m.count_params()
    np.testing.assert_allclose(small.predict(x[:8], verbose=0), m.predict(x[:8], verbose=0), rtol=1e-4, atol=1e-4)

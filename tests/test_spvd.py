"""helpers.spvd: sparse variational dropout (Molchanov et al. 2017) on Keras models - the KL
approximation, the SpVD layers and export to a plain model with zeros, training on a tiny
MNIST-like set (scikit-learn digits, offline) to > 50% zeros at the dense model's accuracy,
int8 conversion of the pruned model, and the SpVD-vs-magnitude comparison at equal sparsity.
"""
import numpy as np
import pytest

from helpers import data as D
from helpers import spvd
from helpers import train as T


def test_kl_approximation_is_positive_and_falls_with_log_alpha():
    la = np.linspace(-8, 10, 50)
    kl = spvd.kl_approx(la)
    assert np.all(kl > 0)
    assert np.all(np.diff(kl) < 0)
    assert kl[-1] < 0.01 and kl[0] > 2.5     # ~ -k1 + 0.5 * log1p(exp(8)) at -8: 3.36


def _model(d, seed=0):
    import keras
    from keras import layers as L
    keras.utils.set_random_seed(seed)
    inp = keras.Input(d.input_shape)
    x = L.Conv2D(8, 3, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    x = L.MaxPooling2D(2)(x)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.ReLU()(x)
    x = L.Conv2D(16, 1)(x)
    x = L.ReLU()(x)
    x = L.Flatten()(x)
    out = L.Dense(d.num_classes)(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def digits():
    return D.load_cached("digits")


@pytest.fixture(scope="module")
def dense(digits):
    m = _model(digits)
    T.fit(m, digits, epochs=8, lr=3e-3, seed=0, progress=False)
    return m


def test_spvd_copy_predicts_like_the_source_and_export_prunes_by_threshold(digits):
    m = _model(digits, seed=1)
    sm = spvd.to_spvd(m, init_log_sigma2=-8.0)
    x = digits.x_val[:16]
    # inference uses theta masked at log alpha >= 3; with sigma^2 = e^-8 only weights with
    # |theta| < e^-5.5 = 0.004 are masked, so outputs stay within a small tolerance
    a, b = np.asarray(m(x)), np.asarray(sm(x, training=False))
    assert np.abs(a - b).max() < 0.05
    la = spvd.log_alphas(sm)
    assert set(la) == {l.name for l in m.layers if type(l).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")}
    out = spvd.export(sm, m, threshold=-100.0)            # every weight above: all zero
    assert spvd.nonzero_weights(out)["nonzero"] == 0
    out = spvd.export(sm, m, threshold=100.0)             # none: the source weights
    assert np.array_equal(np.asarray(out(x)), a)
    for s in (0.3, 0.75):
        assert abs(spvd.nonzero_weights(spvd.prune_to(sm, m, s))["sparsity"] - s) < 1e-3
        assert abs(spvd.nonzero_weights(spvd.magnitude_prune_to(m, s))["sparsity"] - s) < 1e-3


def test_bad_arguments_raise_one_clear_error(digits, dense):
    with pytest.raises(ValueError, match="epochs"):
        spvd.train_spvd(dense, digits, epochs=0)
    with pytest.raises(ValueError, match="kl_weight"):
        spvd.train_spvd(dense, digits, kl_weight=-1)
    with pytest.raises(ValueError, match="sparsity"):
        spvd.magnitude_prune_to(dense, 1.0)
    with pytest.raises(ValueError, match="sparsities"):
        spvd.compare_with_magnitude(dense, digits, sparsities=(0.0,))


def test_spvd_prunes_more_than_half_at_the_dense_accuracy_and_deploys_int8(digits, dense):
    from helpers import deploy
    from helpers.engine import sparse as ES
    dense_acc = T.accuracy(dense, digits.x_test, digits.y_test)
    pruned, sm, res = spvd.train_spvd(dense, digits, epochs=6, kl_weight=10.0, seed=0)
    # measured (seed 0): 64.8% of 2,832 kernel weights zero; test accuracy within 1 point
    assert res.sparsity > 0.55, res.summary()
    acc = T.accuracy(pruned, digits.x_test, digits.y_test)
    assert acc >= dense_acc - 0.03, (acc, dense_acc)
    assert res.history[-1]["sparsity_at_threshold"] > res.history[0]["sparsity_at_threshold"]
    tfl = deploy.to_tflite_int8(pruned, digits.x_train[:200])
    ms = ES.model_sparsity(tfl)
    assert ms["sparsity"] >= res.sparsity - 0.01           # zeros survive conversion (BN folded)
    acc8 = float(np.mean(np.argmax(deploy.tflm_predict(tfl, digits.x_test), -1) == digits.y_test))
    assert acc8 >= dense_acc - 0.04, (acc8, dense_acc)
    print(f"dense test {dense_acc:.4f}; SpVD {res.sparsity:.3f} zeros, float {acc:.4f}, int8 {acc8:.4f}")


def test_sparsity_curve_gap_and_plot():
    import matplotlib
    matplotlib.use("Agg")
    from helpers import plots
    rows = [{"method": "spvd (log alpha >= 3)", "target_sparsity": float("nan"), "sparsity": 0.6,
             "nonzero": 40, "val_accuracy": 0.9},
            {"method": "spvd", "target_sparsity": 0.5, "sparsity": 0.5, "nonzero": 50, "val_accuracy": 0.92},
            {"method": "spvd", "target_sparsity": 0.8, "sparsity": 0.8, "nonzero": 20, "val_accuracy": 0.80},
            {"method": "magnitude", "target_sparsity": 0.5, "sparsity": 0.5, "nonzero": 50, "val_accuracy": 0.90},
            {"method": "magnitude", "target_sparsity": 0.8, "sparsity": 0.8, "nonzero": 20, "val_accuracy": 0.85}]
    c = spvd.SparsityCurve(dense_val_accuracy=0.93, weights=100, rows=rows)
    g = c.gap()
    assert set(g) == {0.5, 0.8}
    assert abs(g[0.5] - 0.02) < 1e-9 and abs(g[0.8] + 0.05) < 1e-9
    ax = plots.sparsity_curve(c)
    assert len(ax.lines) == 4                              # two curves, the star, the dense line
    assert "+0.020" in c.summary()


@pytest.mark.slow
def test_compare_with_magnitude_prunes_both_to_the_same_sparsity(digits, dense):
    c = spvd.compare_with_magnitude(dense, digits, sparsities=(0.5, 0.7, 0.85), epochs=6,
                                    kl_weight=10.0, seed=0)
    t = c.table()
    for s in (0.5, 0.7, 0.85):
        got = t[t.target_sparsity == s].sparsity.to_numpy()
        assert len(got) == 2 and np.all(np.abs(got - s) < 0.01), t
    # measured (seed 0): SpVD minus magnitude +-0.03 at 50-70%, -0.125 at 85% (SpVD ranks
    # beyond its own 65% without retraining; magnitude fine-tunes at every point)
    assert all(abs(d) < 0.2 for s, d in c.gap().items() if s <= 0.7), c.summary()


def test_prune_to_size_meets_a_parameter_bound_the_minimum_sparsity_misses(digits):
    from helpers.methods import sparse as SP
    m = _model(digits, seed=2)
    sm = spvd.to_spvd(m, init_log_sigma2=-8.0)
    count = lambda model: SP.model_size(model).nonzero  # noqa: E731
    at_half = count(spvd.prune_to(sm, m, 0.5))
    bound = at_half - 40                                   # 50 % zero is not enough
    model, s = spvd.prune_to_size(sm, m, 0.5, bound, count)
    assert count(model) <= bound < at_half and s > 0.5
    assert count(spvd.prune_to(sm, m, s - 2 / spvd.nonzero_weights(m)["weights"])) > bound  # close to the least
    model, s = spvd.prune_to_size(sm, m, 0.5, at_half, count)  # met already: the minimum, unchanged
    assert s == 0.5 and count(model) == at_half
    with pytest.raises(ValueError, match="not reachable"):
        spvd.prune_to_size(sm, m, 0.5, 0, count)           # the biases alone exceed it

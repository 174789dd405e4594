"""Datasets, offline first: MNIST, Fashion-MNIST, digits, CIFAR-10 and the synthetic keyword set.

Modules: :mod:`~helpers.data.loaders` (:func:`load`, :class:`Dataset`, every source, the
provenance each loader reports; see ``data/README.md``), :mod:`~helpers.data.kws` (the
synthetic keyword-spotting generator and MFCC features) and :mod:`~helpers.data.errors`.
The loaders' public names are re-exported here: ``from helpers import data; data.load("mnist")``.
Taught in 00-overview. The bottom layer: imports no other part of the package.
"""
from __future__ import annotations

from helpers.data import kws
from helpers.data.errors import DatasetUnavailableError, UnknownDatasetError
from helpers.data.loaders import (CACHE_DIR, DATA_DIR, Dataset, fingerprint, input_spec, load,
                                  load_cached, names, stratified_split)

__all__ = ["Dataset", "load", "load_cached", "names", "UnknownDatasetError",
           "DatasetUnavailableError", "stratified_split", "input_spec", "fingerprint", "DATA_DIR", "CACHE_DIR",
           "kws"]

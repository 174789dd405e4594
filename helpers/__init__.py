"""tinyNAS notebooks support package.

One module per concept (see README): data, targets, spaces, resources, train,
search, prune, deploy, kernels, emulator, plots. Import the module you need,
e.g. ``from helpers import data``; nothing heavy (TensorFlow) is imported here.
"""
from helpers.run import load_figures, record, seed_everything  # noqa: F401

__version__ = "0.1.0"

"""tinyNAS notebooks support package.

One module per concept (see README): data, targets, spaces, resources, train,
search, prune, deploy, kernels, emulator, plots. Import the module you need,
e.g. ``from helpers import data``; nothing heavy (TensorFlow) is imported here.
"""
import os as _os
import warnings as _warnings

# Quiet TensorFlow's C++ logging and tqdm's "no ipywidgets" notice before anything imports them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_warnings.filterwarnings("ignore", message="IProgress not found")

from helpers.run import HandOff, load_figures, load_models, record, save_model, seed_everything  # noqa: E402,F401

__version__ = "0.1.0"

"""tinyNAS notebooks support package.

One module per concept (see README): data, targets, spaces, resources, train,
search, prune, deploy, kernels, emulator, plots. Import the module you need,
e.g. ``from helpers import data``; nothing heavy (TensorFlow) is imported here. Under the
portable arithmetic (``TINYNAS_EIGEN_CACHES`` set) TensorFlow's libraries are loaded, not imported,
to pin Eigen's cache sizes (``helpers.arithmetic.pin_eigen_caches``).
"""
import os as _os
import warnings as _warnings

# Quiet TensorFlow's C++ logging and tqdm's "no ipywidgets" notice before anything imports them.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_warnings.filterwarnings("ignore", message="IProgress not found")

# The portable arithmetic's last pin (helpers.arithmetic.pin_eigen_caches): with TINYNAS_EIGEN_CACHES
# set, Eigen in TensorFlow's libraries sizes its blocks for those caches, not this CPU's. It loads
# those libraries (half a second), without importing TensorFlow; unset, nothing happens.
from helpers.arithmetic import pin_eigen_caches_if_asked as _pin  # noqa: E402

_pin()

from helpers.run import HandOff, load_figures, load_models, record, save_model, seed_everything  # noqa: E402,F401

__version__ = "0.1.0"

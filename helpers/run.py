"""Run bookkeeping shared by every notebook: seeds, the run folder, recorded figures.

Taught in 00-overview. Every notebook ends with one call to :func:`record`, which
writes its key figures as JSON into the current run folder (set by the papermill
runner through the ``TINYNAS_RUN_DIR`` environment variable) and shows them as the
notebook's last output, both as ``application/json`` and as a readable table, so the
tests, ``make run`` and notebook 07 read numbers, never printed text.

The bottom layer: imports no other module of the package.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

RUN_DIR_ENV = "TINYNAS_RUN_DIR"
_NAME_RE = re.compile(r"^[0-9]{2}-[a-z0-9-]+$")


def seed_everything(seed: int) -> None:
    """Fix Python, NumPy and (if installed) TensorFlow/Keras seeds.

    TensorFlow op determinism is enabled too, so CPU training repeats bit for bit
    for the same seed, data order and thread count. Results can still vary across
    machines with different CPU instruction sets (oneDNN kernels) or TF versions.
    Taught in 00-overview.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    try:
        import keras
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TF is a dependency
        return
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes.

    Search workers are child processes, so the difference of two readings around a
    search is its CPU cost on every core (wall time times cores in use, not wall time).
    Taught in 02-aging-evolution.
    """
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_dir(create: bool = True) -> Path:
    """The current run folder: ``$TINYNAS_RUN_DIR``, else ``runs/interactive``.

    ``runs/`` is resolved from the repository root (the parent of ``notebooks/``)
    when the working directory is ``notebooks/``. Taught in 02-aging-evolution.
    """
    env = os.environ.get(RUN_DIR_ENV)
    if env:
        path = Path(env)
    else:
        root = Path.cwd()
        if root.name == "notebooks":
            root = root.parent
        path = root / "runs" / "interactive"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _check_value(key: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) or hasattr(value, "__float__"):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            return None if math.isnan(v) else v
        # numpy integers come through __float__; keep them integral
        if hasattr(value, "dtype") and getattr(value.dtype, "kind", "f") in "iu":
            return int(value)
        return v
    raise ValueError(
        f"figure {key!r} must be a number, string, bool or None, got {type(value).__name__}; "
        "record flat figures with units in their names (e.g. peak_sram_bytes)")


def record(notebook: str, figures: Mapping[str, Any], *, handoff: "HandOff | None" = None,
           display: bool = True) -> Path:
    """Write a notebook's key figures to ``<run_dir>/<notebook>.json`` and show them.

    ``notebook`` is the notebook's name without extension (``"00-overview"``);
    ``figures`` is a flat mapping of names (with units, e.g. ``peak_sram_bytes``)
    to plain numbers, strings, bools or None. A notebook that saved models for 07-comparison
    (:func:`save_model`) must describe them with ``handoff`` (a :class:`HandOff`, validated
    here: its ``models`` are exactly the labels saved in the run folder); it is stored beside
    the figures and read back by :func:`load_handoffs`. Returns the JSON path.
    Taught in 00-overview (figures) and 02-aging-evolution (hand-off).
    """
    if not isinstance(notebook, str) or not _NAME_RE.match(notebook):
        raise ValueError(f"notebook must be a name like '00-overview', got {notebook!r}")
    if not isinstance(figures, Mapping) or not figures:
        raise ValueError("figures must be a non-empty mapping of name -> value")
    clean = {}
    for key, value in figures.items():
        if not isinstance(key, str) or not re.match(r"^[a-z][a-z0-9_]*$", key):
            raise ValueError(f"figure name {key!r} must be snake_case (letters, digits, _)")
        clean[key] = _check_value(key, value)
    saved = sorted(p.name[len(notebook) + 1:-len(".tflite")]
                   for p in run_dir().glob(f"{notebook}.*.tflite"))
    if handoff is not None:
        if not isinstance(handoff, HandOff):
            raise TypeError(f"handoff must be a helpers.run.HandOff, got {type(handoff).__name__}")
        handoff.validate()
        if sorted(handoff.models) != saved:
            raise ValueError(f"handoff.models {sorted(handoff.models)} must be the labels of the models "
                             f"saved with helpers.save_model for {notebook!r} in {run_dir()}: {saved}")
    elif saved:
        raise ValueError(f"{notebook} saved models {saved} for 07-comparison but records no handoff: "
                         "pass handoff=helpers.run.HandOff(...) to helpers.record")
    path = run_dir() / f"{notebook}.json"
    payload = {"notebook": notebook, "figures": clean}
    if handoff is not None:
        payload["handoff"] = handoff.to_dict()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    if display:
        try:
            from IPython import get_ipython
            from IPython.display import display as ipy_display
        except ImportError:  # pragma: no cover
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            ipy_display({"application/json": payload,
                         "text/plain": format_figures(clean),
                         "text/markdown": _markdown_table(clean)}, raw=True)
        else:
            print(format_figures(clean))
    return path


@dataclass(frozen=True)
class HandOff:
    """What a notebook hands to 07-comparison with the models it saved: one typed record.

    07 measures every saved model itself (:func:`helpers.deploy.measure_deployed`: TFLM
    accuracy, arena, flash, emulated latency); the hand-off says what the measurement cannot:
    the ``method``, the ``dataset`` (task) the models were trained on, the ``target`` they were
    searched for (a board name or the bounds in words), the search's cost (``trials``: trained
    or evaluated candidates, 0 for no search; ``search_cpu_minutes``) and its ``hypervolume``
    (None when the method has none), and the ``models`` (labels passed to :func:`save_model`).
    Taught in 02-aging-evolution; read in 07-comparison.
    """

    method: str
    dataset: str
    target: str
    trials: int
    search_cpu_minutes: float
    hypervolume: float | None = None
    models: tuple = ("best",)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is not of its kind."""
        for name in ("method", "dataset", "target"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"HandOff.{name} must be a non-empty string, got {v!r}")
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 0:
            raise ValueError(f"HandOff.trials must be an int >= 0, got {self.trials!r}")
        c = self.search_cpu_minutes
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c < 0:
            raise ValueError(f"HandOff.search_cpu_minutes must be a number >= 0, got {c!r}")
        h = self.hypervolume
        if h is not None and (isinstance(h, bool) or not isinstance(h, (int, float))
                              or not math.isfinite(h) or h < 0):
            raise ValueError(f"HandOff.hypervolume must be a number >= 0 or None, got {h!r}")
        if (not isinstance(self.models, (tuple, list)) or not self.models
                or not all(isinstance(m, str) and re.match(r"^[a-z0-9_-]+$", m) for m in self.models)):
            raise ValueError(f"HandOff.models must be a non-empty list of model labels, got {self.models!r}")

    def to_dict(self) -> dict:
        """A JSON-able dict (``models`` as a list). Taught in 07-comparison."""
        d = asdict(self)
        d["trials"], d["search_cpu_minutes"] = int(self.trials), float(self.search_cpu_minutes)
        d["hypervolume"] = None if self.hypervolume is None else float(self.hypervolume)
        d["models"] = list(self.models)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "HandOff":
        """The record back from :meth:`to_dict`; a missing or extra field is an error.
        Taught in 07-comparison."""
        names = {f for f in cls.__dataclass_fields__}
        missing, extra = names - set(d), set(d) - names
        if missing or extra:
            raise ValueError(f"hand-off record has missing fields {sorted(missing)} / unknown fields "
                             f"{sorted(extra)}; re-run the notebook that wrote it")
        h = cls(**{**d, "models": tuple(d["models"])})
        h.validate()
        return h


def load_handoffs(run: str | os.PathLike) -> dict[str, HandOff]:
    """``{notebook: HandOff}`` of every notebook of a run folder that handed models on.
    Taught in 07-comparison."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run folder {str(run)!r} does not exist")
    out = {}
    for path in sorted(run.glob("[0-9][0-9]-*.json")):
        data = json.loads(path.read_text())
        if "handoff" in data:
            out[data["notebook"]] = HandOff.from_dict(data["handoff"])
    return out


def format_figures(figures: Mapping[str, Any]) -> str:
    """A two-column plain-text table of figures. Taught in 00-overview."""
    width = max(len(k) for k in figures) if figures else 0
    lines = []
    for key, value in figures.items():
        if isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)


def _markdown_table(figures: Mapping[str, Any]) -> str:
    rows = ["| figure | value |", "|---|---|"]
    for key, value in figures.items():
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        rows.append(f"| `{key}` | {text} |")
    return "\n".join(rows)


def save_model(notebook: str, tflite_bytes: bytes, *, label: str = "best") -> Path:
    """Save a notebook's deployed int8 model as ``<run_dir>/<notebook>.<label>.tflite``.

    Search notebooks save their best feasible model this way, so notebook
    07-comparison measures every method's result with one harness (TFLite-Micro
    arena, flash, emulated latency, int8 accuracy on the same test set).
    Taught in 02-aging-evolution.
    """
    if not isinstance(notebook, str) or not _NAME_RE.match(notebook):
        raise ValueError(f"notebook must be a name like '02-aging-evolution', got {notebook!r}")
    if not re.match(r"^[a-z0-9_-]+$", label):
        raise ValueError(f"label must be lower-case letters, digits, _ or -, got {label!r}")
    if not isinstance(tflite_bytes, (bytes, bytearray)) or len(tflite_bytes) < 8:
        raise ValueError("tflite_bytes must be the bytes of a .tflite model")
    path = run_dir() / f"{notebook}.{label}.tflite"
    path.write_bytes(bytes(tflite_bytes))
    return path


def load_models(run: str | os.PathLike) -> dict[str, dict[str, bytes]]:
    """Every ``NN-name.<label>.tflite`` of a run folder: ``{notebook: {label: bytes}}``.
    Taught in 00-overview.
    """
    out: dict[str, dict[str, bytes]] = {}
    for path in sorted(Path(run).glob("[0-9][0-9]-*.*.tflite")):
        notebook, label = path.name[:-len(".tflite")].split(".", 1)
        out.setdefault(notebook, {})[label] = path.read_bytes()
    return out


def load_figures(run: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read every ``NN-name.json`` of a run folder: ``{notebook: figures}``.
    Taught in 00-overview.
    """
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run folder {str(run)!r} does not exist")
    out = {}
    for path in sorted(run.glob("[0-9][0-9]-*.json")):
        data = json.loads(path.read_text())
        out[data["notebook"]] = data["figures"]
    return out


#: The repository's run folders (``make run`` writes ``runs/<timestamp>-<preset>/``).
RUNS = Path(__file__).resolve().parent.parent / "runs"


def latest_run(runs: Path | None = None) -> Path:
    """The most recent run folder under ``runs/`` (by name, which starts with a timestamp).

    Taught in the README (``helpers.runner table``) and 06-deployment (recorded models)."""
    runs = Path(runs) if runs is not None else RUNS
    cands = sorted(p for p in Path(runs).glob("*") if p.is_dir() and p.name != "interactive")
    if not cands:
        raise FileNotFoundError(f"no run folders under {runs}; run `make run` first")
    return cands[-1]

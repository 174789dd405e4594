"""int8 TFLite conversion and the TensorFlow Lite Micro interpreter (first part).

* :func:`to_tflite_int8` - full-integer conversion of a Keras model (int8 weights,
  activations, input and output), batch fixed to 1 so every shape is static and
  the converter folds shape arithmetic away (no SHAPE / PACK ops in the file).
* :func:`measure_arena` - builds the ``tflite-micro`` Python interpreter on the
  bytes and returns the arena it allocated (:class:`ArenaReport`: total, head =
  the non-persistent activation plan, tail = persistent host structures).
* :func:`tflm_predict` - runs the deployed int8 model on data (for the accuracy
  of what actually ships).

Taught in 06-deployment. TensorFlow is imported lazily (only by
:func:`to_tflite_int8`); the interpreter comes from the pinned ``tflite-micro``
pre-release (``0.dev20261023182759``), which is built with the *reference*
kernels (no CMSIS-NN), so scratch-buffer requests are those of the reference
kernels.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from helpers import tflite_io

__all__ = ["to_tflite_int8", "measure_arena", "tflm_predict", "ArenaReport", "TFLMError",
           "DEFAULT_ARENA_BYTES", "TFLM_OPS", "strip_strings", "randomize_weights",
           "check_against_tflm", "agreement_spaces", "AgreementReport", "agreement",
           "RecordedModelError", "reference_arch", "reference_model", "parse_model_spec",
           "recorded_model", "quantize_input", "REFERENCE_MODELS"]

#: Arena handed to the interpreter when measuring (the plan uses what it needs).
DEFAULT_ARENA_BYTES = 16 << 20

#: Builtin operators registered by the tflite-micro Python interpreter that our
#: search spaces emit (checked before running so an unsupported op gives a clear error).
TFLM_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE", "REDUCE_MAX",
    "RELU", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX",
    "SQUEEZE", "STRIDED_SLICE", "SUM", "TRANSPOSE", "LOGISTIC", "HARD_SWISH", "SUB",
    "SHAPE", "PACK", "UNPACK", "SPLIT", "SPLIT_V", "EXPAND_DIMS", "TANH", "MAXIMUM", "MINIMUM",
    "LEAKY_RELU", "PRELU", "MIRROR_PAD", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
    "TRANSPOSE_CONV", "GATHER", "SLICE", "ARG_MAX", "ARG_MIN", "L2_NORMALIZATION", "LOG_SOFTMAX",
    "DIV", "SQRT", "RSQRT", "ABS", "EXP", "LOG", "NEG", "SQUARE", "SQUARED_DIFFERENCE",
})


class TFLMError(ValueError):
    """The TFLite-Micro interpreter rejected a model (unsupported op, bad arena, corrupt file)."""


@dataclass
class ArenaReport:
    """What TFLite-Micro's RecordingMicroAllocator reported for one model.

    ``head`` is the non-persistent section: the greedy memory plan of every
    activation tensor (inputs and outputs included) and kernel scratch buffer.
    ``tail`` is the persistent section (TfLiteEvalTensor structs, node
    registrations, per-channel quantisation multipliers, ...) measured with
    64-bit host structures, so it is larger than on a 32-bit MCU. ``lines``
    keeps the interpreter's own report.
    """

    total: int
    head: int
    tail: int
    lines: list = field(default_factory=list)
    model_bytes: int = 0

    def summary(self) -> str:
        return (f"TFLM arena: total {self.total} B = head {self.head} B (activation plan) "
                f"+ tail {self.tail} B (persistent, 64-bit host); model {self.model_bytes} B")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- conversion

def _representative(representative_data, input_shape):
    if callable(representative_data):
        return representative_data
    data = representative_data
    if hasattr(data, "as_numpy_iterator"):
        data = [np.asarray(d[0] if isinstance(d, (tuple, list)) else d)
                for d in data.as_numpy_iterator()]
    arr = np.asarray(data, dtype=np.float32) if not isinstance(data, list) else None
    if arr is not None:
        if arr.shape == tuple(input_shape):
            arr = arr[None]
        if arr.ndim != len(input_shape) + 1 or tuple(arr.shape[1:]) != tuple(input_shape):
            raise ValueError(f"representative_data: expected samples of shape "
                             f"{tuple(input_shape)} (array (N, *shape)), got array {arr.shape}")
        samples = [arr[i:i + 1] for i in range(arr.shape[0])]
    else:
        samples = [np.asarray(d, np.float32).reshape((1,) + tuple(input_shape)) for d in data]
    if not samples:
        raise ValueError("representative_data: empty; give at least one sample")

    def gen():
        for s in samples:
            yield [s]
    return gen


def to_tflite_int8(model, representative_data, strip: bool = True) -> bytes:
    """Full-integer int8 conversion of a Keras model; returns the ``.tflite`` bytes.

    Weights int8 (per-channel for conv / depthwise / dense), biases int32,
    activations int8, and an int8 input and output. The batch dimension is fixed
    to 1 and the weights frozen, so shapes are static (Flatten becomes one
    RESHAPE, no shape arithmetic). Batch-norm is folded into the preceding
    convolution and ReLU / ReLU6 fused by the converter. ``representative_data``: array ``(N, *input_shape)`` of float
    samples (a few hundred real ones for accuracy; a handful is enough for
    resource checks), a list of samples, a ``tf.data`` dataset or a generator
    function yielding ``[batch]`` lists.

    ``strip=True`` (default) removes what TFLite-Micro never reads - tensor and
    subgraph names and the signature defs - and re-serialises the flatbuffer with
    every constant buffer 16-byte aligned (like TF's ``strip_strings`` tool). The
    names otherwise cost tens of bytes per tensor and depend on Keras' global
    layer counters, so only the stripped file has a size that can be predicted
    from the architecture (:func:`helpers.resources.profile` ``flash_bytes``).

    Taught in 06-deployment.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    gen = _representative(representative_data, input_shape)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)
    # Trace with batch 1 and freeze the weights into constants: static shapes, and
    # ~5x faster than from_keras_model (which exports a SavedModel first). The
    # converted graph is the same (checked: identical operators, tensors, scales).
    import logging
    absl_logger = logging.getLogger("absl")
    absl_level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # "deprecated conversion path" notice
    fn = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(
        fn.get_concrete_function(tf.TensorSpec((1,) + input_shape, tf.float32)))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    import warnings
    try:
        with _quiet_fds(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            out = conv.convert()
    finally:
        absl_logger.setLevel(absl_level)
    return strip_strings(bytes(out)) if strip else bytes(out)


def strip_strings(tflite_bytes) -> bytes:
    """Drop tensor / subgraph names and signature defs and re-serialise canonically
    (constants first, 16-byte aligned buffers, see
    :func:`helpers.tflite_io.canonical_bytes`). Runs identically in TFLite-Micro.
    """
    return tflite_io.canonical_bytes(tflite_bytes)


class _quiet_fds:
    """Silence C-level stdout/stderr chatter (TF converter) unless it fails."""

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = (os.dup(1), os.dup(2))
        os.dup2(self._tmp.fileno(), 1)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, et, ev, tb):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        os.close(self._saved[0])
        os.close(self._saved[1])
        if et is not None:
            self._tmp.seek(0)
            text = self._tmp.read().decode(errors="replace")[-4000:]
            sys.stderr.write(text)
        self._tmp.close()
        return False


# ----------------------------------------------------------------------------- TFLM

class _capture_fd2:
    """Capture what C/C++ code writes to file descriptor 2 (TFLM's MicroPrintf)."""

    def __enter__(self):
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        self.text = ""
        return self

    def __exit__(self, et, ev, tb):
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode(errors="replace")
        self._tmp.close()
        return False


_ALLOC_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def _check_supported(model: tflite_io.TFLiteModel) -> None:
    bad = sorted({op.opcode for op in model.ops if op.opcode not in TFLM_OPS})
    if bad:
        raise TFLMError(f"tflite_bytes: operator(s) {bad} are not in the TFLite-Micro op set "
                        f"used here (supported: {sorted(TFLM_OPS)})")


def _interpreter(tflite_bytes: bytes, arena_size: int):
    from tflite_micro.python.tflite_micro import runtime
    with _capture_fd2() as cap:
        try:
            it = runtime.Interpreter.from_bytes(bytes(tflite_bytes), arena_size=int(arena_size))
            err = None
        except RuntimeError as e:
            it, err = None, e
    if err is not None:
        raise TFLMError(f"TFLite-Micro could not prepare the model: {err}; interpreter said: "
                        f"{cap.text.strip()[-1000:] or '(nothing)'}") from err
    return it


def _parse_report(text: str, model_bytes: int) -> ArenaReport:
    vals = {k: int(v) for k, v in _ALLOC_RE.findall(text)}
    if not {"total", "head", "tail"} <= vals.keys():
        raise TFLMError(f"could not read the arena report from TFLite-Micro output: "
                        f"{text.strip()[-500:]!r}")
    lines = [ln.strip() for ln in text.splitlines() if "RecordingMicroAllocator" in ln]
    return ArenaReport(total=vals["total"], head=vals["head"], tail=vals["tail"], lines=lines,
                       model_bytes=model_bytes)


def _measure_inprocess(tflite_bytes: bytes, arena_size: int, invoke: bool) -> ArenaReport:
    it = _interpreter(tflite_bytes, arena_size)
    if invoke:
        d = it.get_input_details(0)
        it.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
        it.invoke()
    with _capture_fd2() as cap:
        it.print_allocations()
    return _parse_report(cap.text, len(tflite_bytes))


_CHILD = r"""
import sys, json
from helpers import deploy
b = sys.stdin.buffer.read()
try:
    r = deploy._measure_inprocess(b, int(sys.argv[1]), sys.argv[2] == '1')
    print(json.dumps({"ok": r.to_dict()}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"""


def measure_arena(tflite_bytes, arena_size: int = DEFAULT_ARENA_BYTES, isolate: bool = True,
                  invoke: bool = True) -> ArenaReport:
    """Run the TFLite-Micro interpreter on ``tflite_bytes`` and report its arena.

    The bytes are first parsed in Python (:func:`helpers.tflite_io.read`), so a
    corrupt file raises :class:`~helpers.tflite_io.TFLiteFormatError` and an op
    outside the supported set raises :class:`TFLMError`. With ``isolate=True``
    (default) the interpreter runs in a child process, so even a model that
    crashes the C++ code surfaces as :class:`TFLMError`; ``isolate=False`` is
    faster (no process start) for bytes you just produced with
    :func:`to_tflite_int8`. ``invoke`` runs one inference on zeros before
    reading the report (the head does not change; it checks the model runs).

    Taught in 06-deployment.
    """
    if isinstance(tflite_bytes, (str, os.PathLike)):
        with open(tflite_bytes, "rb") as f:
            tflite_bytes = f.read()
    if not isinstance(arena_size, (int, np.integer)) or arena_size <= 0:
        raise ValueError(f"arena_size must be a positive int of bytes, got {arena_size!r}")
    parsed = tflite_io.read(tflite_bytes)
    _check_supported(parsed)
    tflite_bytes = bytes(tflite_bytes)
    if not isolate:
        return _measure_inprocess(tflite_bytes, int(arena_size), invoke)
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(int(arena_size)),
                           "1" if invoke else "0"], input=tflite_bytes, capture_output=True,
                          env=env, timeout=600)
    out = proc.stdout.decode(errors="replace").strip().splitlines()
    msg = json.loads(out[-1]) if out and out[-1].startswith("{") else None
    if proc.returncode != 0 or msg is None:
        raise TFLMError(f"TFLite-Micro interpreter process died (exit code {proc.returncode}) "
                        f"on this model: {proc.stderr.decode(errors='replace').strip()[-800:]}")
    if "error" in msg:
        raise TFLMError(msg["error"])
    return ArenaReport(**msg["ok"])


def tflm_predict(tflite_bytes, x, dequantize: bool = True, arena_size: int = DEFAULT_ARENA_BYTES,
                 progress: bool = False) -> np.ndarray:
    """Run the deployed int8 model on ``x`` with the TFLite-Micro interpreter.

    ``x``: float samples ``(N, *input_shape)`` (quantised with the model's input
    scale / zero point) or already-int8 samples. Returns the outputs, one row per
    sample: dequantised floats (``dequantize=True``) or the raw int8 values.
    Use ``argmax`` of the result for the accuracy of what ships.

    Taught in 06-deployment.
    """
    parsed = tflite_io.read(tflite_bytes)
    _check_supported(parsed)
    tin = parsed.tensors[parsed.inputs[0]]
    tout = parsed.tensors[parsed.outputs[0]]
    x = np.asarray(x)
    shape = tuple(tin.shape[1:])
    if x.shape == shape:
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"x: expected samples of shape {shape} (array (N, *shape)), "
                         f"got {x.shape}")
    xq = x if x.dtype == np.int8 else quantize_input(parsed, x)
    it = _interpreter(bytes(tflite_bytes), arena_size)
    outs = []
    rng = range(xq.shape[0])
    if progress:
        from tqdm.auto import tqdm
        rng = tqdm(rng, desc="tflm_predict")
    for i in rng:
        it.set_input(xq[i:i + 1], 0)
        it.invoke()
        outs.append(np.array(it.get_output(0)).reshape(-1))
    y = np.stack(outs) if outs else np.zeros((0,) + tuple(tout.shape[1:]))
    if dequantize and tout.scale.size:
        y = (y.astype(np.float32) - float(tout.zero_point[0])) * float(tout.scale[0])
    return y


# ----------------------------------------------------------------------------- checking

def randomize_weights(model, seed: int = 0) -> None:
    """Give a freshly built Keras model trained-looking parameters, in place.

    Biases ~ N(0, 0.1) and batch-norm statistics / affine parameters away from
    their identity initialisation. Untrained models have all-zero biases, which
    the converter may drop, so checks of a deployed size use this first.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        cls = type(layer).__name__
        new = []
        if cls == "BatchNormalization":
            names = [w.path.split("/")[-1] for w in layer.weights]
            for nm, w in zip(names, ws):
                if nm in ("gamma", "moving_variance"):
                    new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
                else:
                    new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype))
        else:
            for w in ws:
                new.append(rng.normal(0, 0.1, w.shape).astype(w.dtype) if w.ndim == 1 else w)
        layer.set_weights(new)


def check_against_tflm(arch, input_shape, num_classes, seed: int = 0, n_samples: int = 4,
                       keep_bytes: bool = False) -> dict:
    """Build ``arch``, convert it to int8, run TFLite-Micro, compare with the estimate.

    The slow path behind the agreement checks (:func:`agreement`). Returns a
    dict with the estimated ("tflm" plan) and measured arena head, the flash
    estimate and the file size, the "reordered" / "inplace" estimates, and
    whether the operator sequence the estimator predicted matches the file.
    """
    from helpers import resources, spaces
    model = spaces.build(arch, input_shape, num_classes, seed=seed)
    randomize_weights(model, seed)
    rng = np.random.default_rng(seed)
    rep = rng.standard_normal((n_samples,) + tuple(input_shape)).astype(np.float32)
    b = to_tflite_int8(model, rep)
    measured = measure_arena(b, isolate=False, invoke=True)
    g_est = resources.graph_from_layers(arch.layers(input_shape, num_classes))
    g_file = resources.graph_from_tflite(b)
    sig = lambda g: [(op.opcode, tuple(g.tensors[op.outputs[0]].shape)) for op in g.ops]  # noqa
    est = resources.plan(g_est, "tflm").peak_bytes
    flash = resources.flash_bytes(g_est)
    payload = len(b) - resources.FLASH_FIXED_OVERHEAD
    out = {"hash": arch.hash, "arch": arch.to_dict(),
           "head_estimate": est, "head_measured": measured.head,
           "head_match": est == measured.head,
           "head_from_file_plan": resources.plan(g_file, "tflm").peak_bytes,
           "reordered": resources.plan(g_est, "reordered").peak_bytes,
           "inplace": resources.plan(g_est, "inplace").peak_bytes,
           "flash_estimate": flash["total"], "file_bytes": len(b),
           "flash_rel_error": abs(flash["total"] - len(b)) / max(payload, 1),
           "ops_match": sig(g_file) == sig(g_est), "n_ops": len(g_file.ops),
           "branched": any(op.opcode == "ADD" for op in g_file.ops),
           "macs": g_est.macs, "tail_measured": measured.tail}
    if keep_bytes:
        out["tflite"] = b
    return out


#: Search spaces of the TFLM agreement check: the real spaces' structure, shrunk so
#: a model converts in about a second (28x28x1 for granular, 32x32x3 for block).
def agreement_spaces():
    """(GranularSpace, BlockSpace, granular input shape, block input shape) of the
    agreement check."""
    from helpers import spaces
    gs = spaces.GranularSpace(max_blocks=5, max_filters=16, max_units=32, p_branch=0.5)
    bs = spaces.BlockSpace(widths=(0.2, 0.3, 0.4, 0.5), resolutions=(16, 20, 24, 28, 32, 36),
                           stem=(8, 2), first_channels=8, stages=((16, 2), (24, 2), (32, 2)))
    return gs, bs, (28, 28, 1), (32, 32, 3)


@dataclass
class AgreementReport:
    """Outcome of :func:`agreement`: per-architecture rows and the counts."""

    space: str
    n: int
    seed: int
    head_agree: int
    flash_within_1pct: int
    flash_exact: int
    ops_agree: int
    branched: int
    reordered_le_tflm: int
    reordered_lt_tflm_branched: int
    rows: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.space}: TFLM arena head estimate == measured for {self.head_agree}/"
                f"{self.n}; flash within 1% for {self.flash_within_1pct}/{self.n} (exact "
                f"{self.flash_exact}/{self.n}); operator sequence {self.ops_agree}/{self.n}; "
                f"branched {self.branched}; reordered <= tflm {self.reordered_le_tflm}/{self.n}, "
                f"< on {self.reordered_lt_tflm_branched} branched; {self.seconds:.0f} s")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


def agreement(space: str = "granular", n: int = 10, seed: int = 0,
              progress: bool = True) -> AgreementReport:
    """Estimate vs TFLite-Micro on ``n`` random architectures of ``space``.

    ``space``: "granular" or "block" (the shrunk spaces of
    :func:`agreement_spaces`). Every architecture is built, given random
    trained-looking weights, converted with :func:`to_tflite_int8` and measured
    with the interpreter. Taught in 06-deployment; run by
    ``scripts/check_tflm_agreement.py`` and tests/test_resources.py.
    """
    import time
    from helpers import spaces
    if space not in ("granular", "block"):
        raise ValueError(f"space={space!r}; allowed 'granular', 'block'")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    gs, bs, gshape, bshape = agreement_spaces()
    rng = np.random.default_rng(seed)
    rows = []
    t0 = time.time()
    it = range(n)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"TFLM agreement ({space})")
    for i in it:
        if space == "granular":
            arch, shape = spaces.GranularArch.random(rng, gs), gshape
        else:
            arch, shape = spaces.BlockArch.random(rng, bs), bshape
        rows.append(check_against_tflm(arch, shape, 10, seed=seed * 100003 + i))
    return AgreementReport(
        space=space, n=n, seed=seed,
        head_agree=sum(r["head_match"] for r in rows),
        flash_within_1pct=sum(r["flash_rel_error"] <= 0.01 for r in rows),
        flash_exact=sum(r["flash_estimate"] == r["file_bytes"] for r in rows),
        ops_agree=sum(r["ops_match"] for r in rows),
        branched=sum(r["branched"] for r in rows),
        reordered_le_tflm=sum(r["reordered"] <= r["head_estimate"] for r in rows),
        reordered_lt_tflm_branched=sum(r["branched"] and r["reordered"] < r["head_estimate"]
                                       for r in rows),
        rows=rows, seconds=time.time() - t0)


# ----------------------------------------------------------------------------- 06-deployment
# Reference models and recorded models (appended for notebook 06-deployment).

#: Built-in reference models of :func:`reference_model` (name -> description).
REFERENCE_MODELS = {
    "ds-cnn": "DS-CNN (MLPerf Tiny KWS reference shape, Zhang et al. 2017): a 3x3 stride-2 "
              "conv with 64 x width filters, 4 x (3x3 depthwise + 1x1 conv of 64 x width), "
              "global average pooling, dense classifier; BN + ReLU everywhere. MLPerf's first "
              "conv is 10x4; here 3x3, the largest the granular space of helpers.spaces allows "
              "on a 10-wide input",
    "mobilenetv2-0.35": "MobileNetV2-style (Sandler et al. 2018) at width multiplier "
                        "0.35 x width: 3x3 stride-2 stem, an expansion-1 block, then 4 stages "
                        "(24, 40, 80, 96 base channels; strides 2, 2, 2, 1) of two inverted "
                        "residual blocks (expansion 6, 3x3 depthwise), GAP, dense classifier; "
                        "the model of scripts/bench_emulator.py and docs/emulator.md",
}


class RecordedModelError(ValueError):
    """A ``MODEL="run:..."`` spec names a model that no run folder holds."""


def reference_arch(name: str, input_shape, width: float | None = None):
    """Architecture of a built-in reference model (no TensorFlow needed).

    ``name``: one of :data:`REFERENCE_MODELS` - ``"ds-cnn"`` (a
    :class:`helpers.spaces.GranularArch`) or ``"mobilenetv2-0.35"`` (a
    :class:`helpers.spaces.BlockArch`; needs a square input, whose side becomes the
    resolution, because a resize op would not run in the int8 kernels of
    :mod:`helpers.kernels`). ``width`` scales the model relative to its name
    (default 1.0): ds-cnn has ``round(64 * width)`` filters, mobilenetv2-0.35 the
    width multiplier ``0.35 * width``. Taught in 06-deployment.
    """
    from helpers import spaces as S

    if not isinstance(name, str) or name.lower() not in REFERENCE_MODELS:
        raise ValueError(f"MODEL / name={name!r} is not a reference model; allowed: "
                         f"{sorted(REFERENCE_MODELS)} (or 'run:NN-name[.label]' for a recorded one)")
    name = name.lower()
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (H, W, C) with positive sizes, got {input_shape!r}")
    w = 1.0 if width is None else width
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 2:
        raise ValueError(f"width must be a number in (0, 2] (scale relative to the named "
                         f"model), got {width!r}")
    w = float(w)
    if name == "ds-cnn":
        f = max(1, int(round(64 * w)))
        blocks = [S.ConvBlock([S.ConvLayer("conv", filters=f, kernel=3, stride=2)])]
        blocks += [S.ConvBlock([S.ConvLayer("dwconv", kernel=3),
                                S.ConvLayer("conv1x1", filters=f)]) for _ in range(4)]
        return S.GranularArch(blocks=blocks, pooling="avg", dense=[])
    if shape[0] != shape[1]:
        raise ValueError(f"mobilenetv2-0.35 needs a square input (H == W, used as the "
                         f"resolution); got input_shape {shape}. Use 'ds-cnn' for this dataset "
                         f"or a square one (e.g. mnist)")
    return S.BlockArch(resolution=shape[0], width=round(0.35 * w, 4),
                       stages=[[(6, 3), (6, 3)] for _ in range(4)])


def reference_model(name: str, input_shape, num_classes: int, width: float | None = None,
                    seed: int = 0):
    """``(arch, keras_model)`` of a built-in reference model (see :func:`reference_arch`),
    built with :func:`helpers.spaces.build` (logits output, seeded initial weights).
    Train it, or give it random trained-looking weights with :func:`randomize_weights`
    for resource measurements. Taught in 06-deployment."""
    from helpers import spaces as S

    arch = reference_arch(name, input_shape, width)
    return arch, S.build(arch, tuple(int(d) for d in input_shape), num_classes, seed=seed)


def parse_model_spec(spec: str) -> tuple:
    """Split a notebook ``MODEL`` value: ``("reference", name)`` for a built-in name or
    ``("run", notebook, label)`` for ``"run:NN-name"`` / ``"run:NN-name.label"``
    (label defaults to ``"best"``). Raises ValueError naming the allowed forms."""
    import re as _re

    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"MODEL must be a string, got {spec!r}")
    s = spec.strip()
    if s.lower() in REFERENCE_MODELS:
        return ("reference", s.lower())
    m = _re.match(r"^run:([0-9]{2}-[a-z0-9-]+)(?:\.([a-z0-9_-]+))?$", s)
    if m:
        return ("run", m.group(1), m.group(2) or "best")
    raise ValueError(f"MODEL={spec!r}: allowed a reference model {sorted(REFERENCE_MODELS)} or "
                     f"'run:NN-name[.label]' (a model saved by helpers.save_model, e.g. "
                     f"'run:02-aging-evolution')")


def recorded_model(spec: str, runs=None) -> tuple:
    """The ``.tflite`` bytes a notebook saved with :func:`helpers.save_model`.

    ``spec``: ``"run:NN-name"`` or ``"run:NN-name.label"`` (label ``best`` by
    default). Looked up in ``runs`` (a run folder or a list of them) or, by
    default, the current run folder (``$TINYNAS_RUN_DIR``, when set) and then the
    latest folder under ``runs/`` (:func:`helpers.runner.latest_run`), via
    :func:`helpers.load_models`. Returns ``(tflite_bytes, folder)``; raises
    :class:`RecordedModelError` saying where it looked and what it found.
    Taught in 06-deployment.
    """
    from pathlib import Path

    from helpers import run as _run

    kind, *rest = parse_model_spec(spec)
    if kind != "run":
        raise ValueError(f"recorded_model: spec must be 'run:NN-name[.label]', got {spec!r}")
    notebook, label = rest
    if runs is None:
        folders = []
        if os.environ.get(_run.RUN_DIR_ENV):
            folders.append(Path(os.environ[_run.RUN_DIR_ENV]))
        try:
            from helpers.runner import latest_run
            folders.append(latest_run())
        except FileNotFoundError:
            pass
    else:
        folders = [Path(runs)] if isinstance(runs, (str, os.PathLike)) else [Path(r) for r in runs]
    seen = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        models = _run.load_models(folder)
        seen[str(folder)] = sorted(f"{nb}.{lb}" for nb, lbs in models.items() for lb in lbs)
        if label in models.get(notebook, {}):
            return models[notebook][label], folder
    raise RecordedModelError(
        f"MODEL={spec!r}: no {notebook}.{label}.tflite found; looked in "
        f"{[str(f) for f in folders] or 'no run folder (runs/ is empty)'}; models there: "
        f"{seen or 'none'}. Run notebook {notebook} first (it saves its model with "
        f"helpers.save_model), or use a reference model {sorted(REFERENCE_MODELS)}")


def quantize_input(tflite_bytes, x) -> np.ndarray:
    """Float samples ``x`` -> the model's int8 input (its scale and zero point), as
    :func:`tflm_predict` does. Taught in 06-deployment."""
    parsed = tflite_io.read(tflite_bytes)
    tin = parsed.tensors[parsed.inputs[0]]
    s = float(tin.scale[0]) if tin.scale.size else 1.0
    z = int(tin.zero_point[0]) if tin.zero_point.size else 0
    return np.clip(np.round(np.asarray(x, np.float64) / s) + z, -128, 127).astype(np.int8)

"""The TensorFlow Lite Micro interpreter: arena measurement, int8 inference, reference outputs.

Taught in 06-deployment. :func:`measure_arena` builds the ``tflite-micro`` Python interpreter
on the bytes and returns the arena it allocated (:class:`ArenaReport`: total, head = the
non-persistent activation plan, tail = persistent 64-bit host structures; TFLM prints these
only to the C-level stderr, so fd 2 is captured). :func:`tflm_predict` runs the deployed int8
model on data. The interpreter comes from the pinned ``tflite-micro`` pre-release, built with
the *reference* kernels (no CMSIS-NN). May import: :mod:`helpers.tflite_io`,
:mod:`helpers.deploy.convert`.
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
from helpers.deploy.convert import quantize_input

__all__ = ["measure_arena", "tflm_predict", "ArenaReport", "TFLMError", "DEFAULT_ARENA_BYTES",
           "TFLM_OPS", "reference_outputs"]

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
    """The TFLite-Micro interpreter rejected a model (unsupported op, bad arena, corrupt file).
    Taught in 06-deployment.
    """


@dataclass
class ArenaReport:
    """What TFLite-Micro's RecordingMicroAllocator reported for one model.

    ``head`` is the non-persistent section: the greedy memory plan of every
    activation tensor (inputs and outputs included) and kernel scratch buffer.
    ``tail`` is the persistent section (TfLiteEvalTensor structs, node
    registrations, per-channel quantisation multipliers, ...) measured with
    64-bit host structures, so it is larger than on a 32-bit MCU. ``lines``
    keeps the interpreter's own report. Taught in 06-deployment.
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


#: Largest arena the grow-and-retry of :func:`_interpreter_fit` tries.
_MAX_ARENA_BYTES = 256 << 20


def _interpreter_fit(tflite_bytes: bytes, arena_size: int = DEFAULT_ARENA_BYTES):
    """An interpreter whose arena fits the model: ``arena_size`` first, then 4x larger up to
    256 MiB while TFLM fails to prepare it (a too small arena shows as "Failed to resize
    buffer", "Failed to allocate tail memory" or "Too many buffers"); the error of the
    largest arena is raised if none works, any other error at once."""
    size = int(arena_size)
    while True:
        try:
            return _interpreter(tflite_bytes, size)
        except TFLMError as e:
            small = any(w in str(e) for w in ("Failed to resize buffer", "Failed to allocate",
                                               "Too many buffers", "arena"))
            if not small:
                raise
            if size >= _MAX_ARENA_BYTES:
                raise TFLMError(f"{e} (arena grown up to {size} B)") from e
            size = min(size * 4, _MAX_ARENA_BYTES)


def _model_input(parsed, x, what: str = "x") -> np.ndarray:
    """``x`` as the model input's type: float32 for a float-input model (fed as is), int8
    for an int8 one (floats quantised with the input scale / zero point)."""
    tin = parsed.tensors[parsed.inputs[0]]
    x = np.asarray(x)
    if tin.dtype == np.float32:
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{what}: this model has a float32 input (the converter's float "
                             f"I/O wrapper); pass float samples, got {x.dtype}")
        return x.astype(np.float32)
    return x if x.dtype == np.int8 else quantize_input(parsed, x)


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
from helpers.deploy import tflm
b = sys.stdin.buffer.read()
try:
    r = tflm._measure_inprocess(b, int(sys.argv[1]), sys.argv[2] == '1')
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
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
    scale / zero point) or already-int8 samples; a model with a float input (the plain
    converter's float I/O wrapper) is fed the float samples as they are. Returns the
    outputs, one row per sample: dequantised floats (``dequantize=True``) or the raw int8
    values (a float-output model: its float outputs). The arena grows (4x, up to
    256 MiB) when ``arena_size`` is too small.
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
    xq = _model_input(parsed, x)
    it = _interpreter_fit(bytes(tflite_bytes), arena_size)
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
    if dequantize and tout.scale.size and tout.dtype == np.int8:
        y = (y.astype(np.float32) - float(tout.zero_point[0])) * float(tout.scale[0])
    return y


def reference_outputs(tflite_bytes, x, engine: str = "tflite") -> np.ndarray:
    """Output of an official interpreter on ``x`` of the model input's type (int8, or
    float32 for a float-I/O model): ``engine="tflite"`` (tf.lite.Interpreter with the
    reference kernels, no delegate), ``"tflite-default"`` (tf.lite.Interpreter as built,
    XNNPACK included) or ``"tflm"`` (tflite-micro, arena grown until the model fits).
    Taught in 06-deployment."""
    m = tflite_io.read(tflite_bytes)
    tin = m.tensors[m.inputs[0]]
    x = np.asarray(x, np.float32 if tin.dtype == np.float32 else np.int8)
    if engine == "tflm":
        it = _interpreter_fit(bytes(tflite_bytes))
        it.set_input(x.reshape(tin.shape), 0)
        it.invoke()
        return np.array(it.get_output(0))
    if engine in ("tflite", "tflite-default"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        kw = {}
        if engine == "tflite":
            kw["experimental_op_resolver_type"] = tf.lite.experimental.OpResolverType.BUILTIN_REF
        it = tf.lite.Interpreter(model_content=bytes(tflite_bytes), **kw)
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], x.reshape(d["shape"]))
        it.invoke()
        return np.array(it.get_tensor(it.get_output_details()[0]["index"]))
    raise ValueError(f"engine must be 'tflite', 'tflite-default' or 'tflm', got {engine!r}")

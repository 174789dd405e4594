"""The bounds-checked ``.tflite`` reader: a flatbuffer into plain Python objects (no TensorFlow).

``read(tflite_bytes)`` returns a :class:`TFLiteModel` holding the tensors,
operators and subgraph inputs/outputs of the main subgraph, with constant data
as numpy arrays and quantisation parameters per tensor. It is what the memory
planners in :mod:`helpers.resources`, the int8 kernels in :mod:`helpers.engine.kernels`
and the emulator harness work from.

Taught in 06-deployment (reading the converted model before running it).

The parser uses the flatbuffers schema module bundled with ``tflite-micro``
(pure Python, imported in ~0.3 s); TensorFlow is not imported. Corrupt or
truncated bytes raise :class:`TFLiteFormatError` (a ``ValueError``) naming the
problem instead of crashing.

Imports no other module of the package.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TFLiteFormatError", "TFLiteNotInt8Error", "TFLiteTensor", "TFLiteOp", "TFLiteModel",
           "read", "validate", "check_operators", "require_int8", "opcode_name", "DTYPES",
           "MAX_TENSOR_ELEMENTS"]


class TFLiteFormatError(ValueError):
    """The bytes are not a readable TFLite flatbuffer (corrupt, truncated, wrong file).
    Taught in 06-deployment.
    """


def _schema():
    # Lazy import keeps ``import helpers.tflite_io`` cheap.
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    return fb


# TensorType enum value -> numpy dtype (None: no numpy equivalent).
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "object",
               6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64",
               11: "complex128", 12: "uint64", 15: "uint32", 16: "uint16"}
DTYPES = {k: np.dtype(v) for k, v in _TYPE_NAMES.items()}
_PACKED = {17: "INT4", 19: "INT2", 20: "UINT4"}  # sub-byte types: data kept as raw uint8

_enum_cache: dict[str, dict[int, str]] = {}


def _enum_names(cls_name: str) -> dict[int, str]:
    if cls_name not in _enum_cache:
        cls = getattr(_schema(), cls_name)
        _enum_cache[cls_name] = {v: k for k, v in vars(cls).items()
                                 if not k.startswith("_") and isinstance(v, int)}
    return _enum_cache[cls_name]


def opcode_name(builtin_code: int) -> str:
    """Name of a ``BuiltinOperator`` code, e.g. ``3 -> "CONV_2D"``. Taught in 06-deployment."""
    return _enum_names("BuiltinOperator").get(int(builtin_code), f"UNKNOWN_{builtin_code}")


@dataclass
class TFLiteTensor:
    """One tensor of the main subgraph.

    ``data`` is the constant value (numpy array of ``dtype`` and ``shape``) or
    ``None`` for a tensor computed at run time (activations, inputs, outputs).
    ``scale`` / ``zero_point`` are 1-D arrays (length 1 per-tensor, or one per
    channel along ``quantized_dimension``); empty when not quantised. Taught in 06-deployment.
    """

    index: int
    name: str
    shape: tuple
    dtype: np.dtype
    scale: np.ndarray
    zero_point: np.ndarray
    quantized_dimension: int = 0
    data: np.ndarray | None = None
    buffer: int = 0
    is_variable: bool = False
    type_name: str = ""

    @property
    def nbytes(self) -> int:
        """Bytes of one instance of this tensor (product of shape x itemsize)."""
        n = int(np.prod(self.shape, dtype=np.int64)) if len(self.shape) else 1
        if self.type_name in ("INT4", "UINT4"):
            return (n + 1) // 2
        if self.type_name == "INT2":
            return (n + 3) // 4
        return n * self.dtype.itemsize

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def is_float(self) -> bool:
        """A floating-point tensor (float16/32/64): the model is not int8-quantised."""
        return self.type_name in _FLOAT_TYPES

    def __repr__(self) -> str:
        kind = "const" if self.is_constant else "act"
        return (f"TFLiteTensor({self.index}, {self.name!r}, shape={self.shape}, "
                f"{self.type_name or self.dtype}, {kind})")


@dataclass
class TFLiteOp:
    """One operator: ``opcode`` like ``"CONV_2D"``, tensor indices (``-1`` = absent
    optional input) and ``options``, the builtin options as a dict with snake_case
    keys and enum values as names (``padding="SAME"``,
    ``fused_activation_function="RELU"``); ``options_type`` names their table
    (``"Conv2DOptions"``, empty when the operator has none). Taught in 06-deployment."""

    index: int
    opcode: str
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)
    version: int = 1
    builtin_code: int = -1
    custom_code: str | None = None
    options_type: str = ""  # the BuiltinOptions union member, e.g. "Conv2DOptions"

    def __repr__(self) -> str:
        return f"TFLiteOp({self.index}, {self.opcode}, in={self.inputs}, out={self.outputs})"


@dataclass
class TFLiteModel:
    """A parsed ``.tflite`` model (main subgraph 0).

    Attributes: ``tensors``, ``ops`` (in the file's execution order),
    ``inputs`` / ``outputs`` (subgraph io tensor indices), ``num_subgraphs``,
    ``buffer_bytes`` (bytes of every constant buffer), ``size`` (file bytes),
    ``description``, ``metadata_names``. Taught in 06-deployment.
    """

    tensors: list
    ops: list
    inputs: list
    outputs: list
    num_subgraphs: int = 1
    version: int = 3
    description: str = ""
    size: int = 0
    buffer_bytes: int = 0
    metadata_names: list = field(default_factory=list)

    @property
    def tensor_types(self) -> dict:
        """``{type name: number of tensors}``, e.g. ``{"INT8": 20, "INT32": 4}``."""
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.type_name] = out.get(t.type_name, 0) + 1
        return out

    def consumers(self, tensor_index: int) -> list:
        """Indices of ops that read ``tensor_index``."""
        return [op.index for op in self.ops if tensor_index in op.inputs]

    def producer(self, tensor_index: int) -> int | None:
        """Index of the op writing ``tensor_index`` (None for inputs / constants)."""
        for op in self.ops:
            if tensor_index in op.outputs:
                return op.index
        return None

    def summary(self) -> str:
        lines = [f"TFLite model: {len(self.ops)} ops, {len(self.tensors)} tensors, "
                 f"{self.size} bytes ({self.buffer_bytes} in constant buffers)",
                 f"inputs {self.inputs} outputs {self.outputs}"]
        for op in self.ops:
            shapes = [self.tensors[i].shape if i >= 0 else None for i in op.inputs]
            outs = [self.tensors[i].shape for i in op.outputs]
            lines.append(f"  {op.index:3d} {op.opcode:<22s} {shapes} -> {outs}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"ops": [{"index": o.index, "opcode": o.opcode, "inputs": list(o.inputs),
                         "outputs": list(o.outputs), "options": dict(o.options)}
                        for o in self.ops],
                "tensors": [{"index": t.index, "name": t.name, "shape": list(t.shape),
                             "dtype": t.type_name, "constant": t.is_constant}
                            for t in self.tensors],
                "inputs": list(self.inputs), "outputs": list(self.outputs),
                "size": self.size, "buffer_bytes": self.buffer_bytes}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


_ENUM_FIELDS = {"padding": "Padding",
                "fused_activation_function": "ActivationFunctionType",
                "weights_format": "FullyConnectedOptionsWeightsFormat",
                "lsh_projection_type": "LSHProjectionType",
                "combiner_type": "CombinerType",
                "mode": "MirrorPadMode",
                "out_data_type": None, "output_type": None, "in_data_type": None,
                "quantized_bias_type": None}


def _options_dict(opt) -> dict:
    if opt is None:
        return {}
    out: dict[str, Any] = {}
    for k, v in vars(opt).items():
        key = _snake(k)
        enum_cls = _ENUM_FIELDS.get(key, "")
        if enum_cls is None and isinstance(v, (int, np.integer)):
            v = _tensor_type_name(int(v))
        elif enum_cls:
            try:
                v = _enum_names(enum_cls).get(int(v), int(v))
            except AttributeError:
                v = int(v)
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, (np.floating,)):
            v = float(v)
        elif hasattr(v, "__dict__") and not isinstance(v, (str, bytes)):
            v = _options_dict(v)
        out[key] = v
    return out


def _tensor_type_name(code: int) -> str:
    return _enum_names("TensorType").get(code, f"TYPE_{code}")


def validate(tflite_bytes) -> None:
    """Cheap structural checks before handing bytes to a C++ interpreter.

    Raises :class:`TFLiteFormatError` naming the first problem: wrong type,
    too short, missing ``TFL3`` identifier, root table offset out of range,
    or a flatbuffer that does not parse / has tensor or buffer indices out of
    range (checked by a full :func:`read`). Taught in 02-aging-evolution.
    """
    read(tflite_bytes)


def _check_header(buf: bytes) -> None:
    if len(buf) < 16:
        raise TFLiteFormatError(f"tflite_bytes: only {len(buf)} bytes, too short for a TFLite "
                                "flatbuffer (need at least 16)")
    ident = bytes(buf[4:8])
    if ident != b"TFL3":
        raise TFLiteFormatError(f"tflite_bytes: file identifier is {ident!r}, expected b'TFL3' "
                                "(not a TFLite flatbuffer, or corrupt)")
    root = int.from_bytes(buf[0:4], "little")
    if root < 8 or root + 4 > len(buf):
        raise TFLiteFormatError(f"tflite_bytes: root table offset {root} outside the "
                                f"{len(buf)}-byte buffer (truncated or corrupt)")


def read(tflite_bytes, subgraph: int = 0) -> TFLiteModel:
    """Parse a ``.tflite`` flatbuffer (bytes, bytearray, or a path) into a :class:`TFLiteModel`.

    Taught in 06-deployment. Every offset, vector length and string read from the
    file is bounds-checked against the file (see :class:`_Reader`), so corrupt or
    truncated bytes raise :class:`TFLiteFormatError` (``ValueError``) naming the
    field, never ``IndexError`` / ``struct.error`` / ``UnicodeDecodeError``, and no
    allocation exceeds the file's own size. A bad ``subgraph`` raises ``ValueError``.
    """
    if isinstance(tflite_bytes, TFLiteModel):
        return tflite_bytes
    if isinstance(tflite_bytes, str) or hasattr(tflite_bytes, "__fspath__"):
        with open(tflite_bytes, "rb") as f:
            tflite_bytes = f.read()
    if isinstance(tflite_bytes, memoryview):
        tflite_bytes = tflite_bytes.tobytes()
    if not isinstance(tflite_bytes, (bytes, bytearray)):
        raise TypeError(f"tflite_bytes must be bytes, bytearray or a path, got "
                        f"{type(tflite_bytes).__name__}")
    buf = bytes(tflite_bytes)
    _check_header(buf)
    r = _Reader(buf)
    try:
        root = r.table(int.from_bytes(buf[0:4], "little"), "the root Model table")
        subgraphs = root.tables(_F_MODEL_SUBGRAPHS, "Model.subgraphs")
    except TFLiteFormatError:
        raise
    except Exception as e:  # defensive: the checks above should leave nothing else
        raise TFLiteFormatError(f"tflite_bytes: flatbuffer does not parse "
                                f"({type(e).__name__}: {e}); corrupt or truncated file") from e
    if not subgraphs:
        raise TFLiteFormatError("tflite_bytes: model has no subgraphs")
    if isinstance(subgraph, bool) or not isinstance(subgraph, (int, np.integer)) \
            or not (0 <= subgraph < len(subgraphs)):
        raise ValueError(f"subgraph={subgraph!r} out of range; model has {len(subgraphs)} "
                         f"subgraph(s) (allowed 0..{len(subgraphs) - 1})")
    try:
        return _convert(r, root, subgraphs, int(subgraph))
    except TFLiteFormatError:
        raise
    except Exception as e:  # defensive (MemoryError included): never leak another type
        raise TFLiteFormatError(f"tflite_bytes: inconsistent model structure "
                                f"({type(e).__name__}: {e})") from e


# Field ids of the TFLite schema (tensorflow/lite/schema/schema.fbs); a field's
# vtable slot is 4 + 2 * id. Flatbuffers schemas never renumber fields.
_F_MODEL_VERSION, _F_MODEL_OPCODES, _F_MODEL_SUBGRAPHS, _F_MODEL_DESCRIPTION, \
    _F_MODEL_BUFFERS, _F_MODEL_METADATA = 0, 1, 2, 3, 4, 6
_F_SG_TENSORS, _F_SG_INPUTS, _F_SG_OUTPUTS, _F_SG_OPERATORS = 0, 1, 2, 3
_F_T_SHAPE, _F_T_TYPE, _F_T_BUFFER, _F_T_NAME, _F_T_QUANT, _F_T_VARIABLE = 0, 1, 2, 3, 4, 5
_F_Q_SCALE, _F_Q_ZERO_POINT, _F_Q_DIM = 2, 3, 6
_F_OP_OPCODE, _F_OP_INPUTS, _F_OP_OUTPUTS, _F_OP_OPTIONS_TYPE, _F_OP_OPTIONS = 0, 1, 2, 3, 4
_F_OC_DEPRECATED, _F_OC_CUSTOM, _F_OC_VERSION, _F_OC_BUILTIN = 0, 1, 2, 3
_F_BUF_DATA, _F_BUF_OFFSET, _F_BUF_SIZE = 0, 1, 2
_F_MD_NAME = 0

#: Largest tensor :func:`read` accepts, in elements. TFLite's C API counts tensor
#: elements and bytes in 32-bit ints, so a bigger shape can only come from a corrupt file
#: (and would make every planner / kernel allocate absurd amounts).
MAX_TENSOR_ELEMENTS = 2 ** 31 - 1


class _Reader:
    """Bounds-checked primitive reads of one flatbuffer (little-endian)."""

    __slots__ = ("buf", "n")

    def __init__(self, buf: bytes):
        self.buf, self.n = buf, len(buf)

    def need(self, pos: int, size: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise TFLiteFormatError(f"tflite_bytes: {what} at byte {pos} (+{size}) lies outside "
                                    f"the {self.n}-byte file (truncated or corrupt)")

    def uint(self, pos: int, size: int, what: str, signed: bool = False) -> int:
        self.need(pos, size, what)
        return int.from_bytes(self.buf[pos:pos + size], "little", signed=signed)

    def table(self, pos: int, what: str) -> "_Table":
        return _Table(self, pos, what)


class _Table:
    """One flatbuffer table with its vtable checked; accessors check every field."""

    __slots__ = ("r", "pos", "vt", "vt_len", "what")

    def __init__(self, r: _Reader, pos: int, what: str):
        self.r, self.pos, self.what = r, pos, what
        soff = r.uint(pos, 4, f"{what} (table start)", signed=True)
        self.vt = pos - soff
        self.vt_len = r.uint(self.vt, 2, f"{what} (vtable)")
        tbl_len = r.uint(self.vt + 2, 2, f"{what} (vtable)")
        if self.vt_len < 4 or self.vt_len % 2:
            raise TFLiteFormatError(f"tflite_bytes: {what}: vtable size {self.vt_len} is invalid "
                                    "(must be even and at least 4)")
        r.need(self.vt, self.vt_len, f"{what} (vtable)")
        r.need(pos, max(tbl_len, 4), f"{what} (table body)")

    def _field(self, fid: int) -> int:
        slot = 4 + 2 * fid
        if slot >= self.vt_len:
            return 0
        return self.r.uint(self.vt + slot, 2, f"{self.what} (vtable)")

    def scalar(self, fid: int, size: int, default: int = 0, signed: bool = False,
               name: str = "") -> int:
        off = self._field(fid)
        if not off:
            return default
        return self.r.uint(self.pos + off, size, f"{self.what}.{name or fid}", signed=signed)

    def _target(self, fid: int, name: str) -> int | None:
        off = self._field(fid)
        if not off:
            return None
        p = self.pos + off
        return p + self.r.uint(p, 4, f"{self.what}.{name} (offset)")

    def table(self, fid: int, name: str) -> "_Table | None":
        p = self._target(fid, name)
        return None if p is None else _Table(self.r, p, f"{self.what}.{name}")

    def union_pos(self, fid: int, name: str) -> int | None:
        """Position of a union member table (checked like a table)."""
        p = self._target(fid, name)
        if p is not None:
            _Table(self.r, p, f"{self.what}.{name}")
        return p

    def vector(self, fid: int, elem: int, name: str) -> tuple[int, int] | None:
        """(start, length) of a vector field; ``length * elem`` must fit in the file."""
        p = self._target(fid, name)
        if p is None:
            return None
        n = self.r.uint(p, 4, f"{self.what}.{name} (length)")
        if n * elem > self.r.n - (p + 4):
            raise TFLiteFormatError(f"tflite_bytes: {self.what}.{name}: vector of {n} elements "
                                    f"x {elem} bytes at byte {p} runs past the end of the "
                                    f"{self.r.n}-byte file (truncated or corrupt)")
        return p + 4, n

    def array(self, fid: int, dtype, name: str, copy: bool = True) -> np.ndarray | None:
        """A scalar vector field as a numpy array (``None`` when absent)."""
        dt = np.dtype(dtype).newbyteorder("<")
        v = self.vector(fid, dt.itemsize, name)
        if v is None:
            return None
        a = np.frombuffer(self.r.buf, dt, count=v[1], offset=v[0])
        return a.astype(np.dtype(dtype)) if copy else a

    def tables(self, fid: int, name: str) -> list:
        """A vector of tables (each element checked)."""
        v = self.vector(fid, 4, name)
        if v is None:
            return []
        start, n = v
        out = []
        for j in range(n):
            p = start + 4 * j
            out.append(_Table(self.r, p + self.r.uint(p, 4, f"{self.what}.{name}[{j}]"),
                              f"{self.what}.{name}[{j}]"))
        return out

    def string(self, fid: int, name: str) -> str | None:
        v = self.vector(fid, 1, name)
        if v is None:
            return None
        raw = self.r.buf[v[0]:v[0] + v[1]]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TFLiteFormatError(f"tflite_bytes: {self.what}.{name} is not valid UTF-8 "
                                    f"({e.reason} at byte {v[0] + e.start}); corrupt file") from e


def _options(r: _Reader, op: _Table, k: int) -> tuple[dict, str]:
    """The builtin options of operator ``k`` as (dict, union member name); see :class:`TFLiteOp`."""
    utype = op.scalar(_F_OP_OPTIONS_TYPE, 1, name="builtin_options_type")
    pos = op.union_pos(_F_OP_OPTIONS, "builtin_options")
    if not utype or pos is None:
        return {}, ""
    import flatbuffers.table

    tname = _enum_names("BuiltinOptions").get(utype, f"OPTIONS_{utype}")
    try:  # the schema's object API, on a table whose header is checked
        opt = _schema().BuiltinOptionsCreator(utype, flatbuffers.table.Table(r.buf, pos))
        return _options_dict(opt), tname
    except Exception as e:  # a field inside the options table is out of range
        raise TFLiteFormatError(f"tflite_bytes: operator {k}: builtin options (type {utype}) "
                                f"do not parse ({type(e).__name__}: {e}); corrupt file") from e


def _shape(t: _Table, i: int) -> tuple:
    a = t.array(_F_T_SHAPE, np.int32, "shape")
    shape = tuple(int(s) for s in a) if a is not None else ()
    n = 1
    for s in shape:
        if s < 0:
            raise TFLiteFormatError(f"tflite_bytes: tensor {i} has shape {shape} with a negative "
                                    "dimension (corrupt file)")
        n *= s
        if n > MAX_TENSOR_ELEMENTS:
            raise TFLiteFormatError(f"tflite_bytes: tensor {i} has shape {shape}, more than "
                                    f"MAX_TENSOR_ELEMENTS={MAX_TENSOR_ELEMENTS} elements "
                                    "(corrupt file)")
    return shape


def _convert(r: _Reader, root: _Table, subgraphs: list, subgraph: int) -> TFLiteModel:
    sg = subgraphs[subgraph]
    buffers = root.tables(_F_MODEL_BUFFERS, "buffers")
    opcodes = root.tables(_F_MODEL_OPCODES, "operator_codes")

    spans: list = []  # (start, size) of each buffer's bytes in the file, or None
    buffer_bytes = 0
    for bi, b in enumerate(buffers):
        v = b.vector(_F_BUF_DATA, 1, "data")
        if v is not None and v[1]:
            spans.append(v)
            buffer_bytes += v[1]
            continue
        off = b.scalar(_F_BUF_OFFSET, 8, name="offset")
        size = b.scalar(_F_BUF_SIZE, 8, name="size")
        buffer_bytes += size
        if off > 1 and size:
            if off + size > r.n:
                raise TFLiteFormatError(f"tflite_bytes: buffer {bi} spans bytes "
                                        f"[{off}, {off + size}) beyond the {r.n}-byte file")
            spans.append((off, size))
        else:
            spans.append(None)
    copies: dict[int, np.ndarray] = {}  # one copy per buffer: allocations <= file size

    def buffer_data(bi: int):
        if bi <= 0:
            return None  # buffer 0 is the conventional empty sentinel
        if bi >= len(buffers):
            raise TFLiteFormatError(f"tflite_bytes: tensor refers to buffer {bi} but the model "
                                    f"has {len(buffers)} buffers")
        if spans[bi] is None:
            return None
        if bi not in copies:
            start, size = spans[bi]
            copies[bi] = np.frombuffer(r.buf, np.uint8, count=size, offset=start).copy()
        return copies[bi]

    tensors = []
    for i, t in enumerate(sg.tables(_F_SG_TENSORS, "tensors")):
        shape = _shape(t, i)
        ttype = t.scalar(_F_T_TYPE, 1, signed=True, name="type")
        tname = _tensor_type_name(ttype)
        dtype = DTYPES.get(ttype, np.dtype("uint8"))
        q = t.table(_F_T_QUANT, "quantization")
        sc = q.array(_F_Q_SCALE, np.float32, "scale") if q is not None else None
        zp = q.array(_F_Q_ZERO_POINT, np.int64, "zero_point") if q is not None else None
        scale = sc if sc is not None else np.asarray([], np.float32)
        zp = zp if zp is not None else np.asarray([], np.int64)
        qdim = q.scalar(_F_Q_DIM, 4, signed=True, name="quantized_dimension") if q is not None else 0
        bi = t.scalar(_F_T_BUFFER, 4, name="buffer")
        name = t.string(_F_T_NAME, "name") or ""
        raw = buffer_data(bi)
        data = None
        if raw is not None:
            if ttype in _PACKED or dtype == np.dtype("object"):
                data = raw
            else:
                n = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if raw.size != n * dtype.itemsize:
                    raise TFLiteFormatError(
                        f"tflite_bytes: tensor {i} ({name!r}) shape {shape} {tname} needs "
                        f"{n * dtype.itemsize} bytes but its buffer holds {raw.size}")
                data = raw.view(dtype).reshape(shape)
        tensors.append(TFLiteTensor(index=i, name=name, shape=shape, dtype=dtype, scale=scale,
                                    zero_point=zp, quantized_dimension=qdim, data=data,
                                    buffer=bi, type_name=tname,
                                    is_variable=bool(t.scalar(_F_T_VARIABLE, 1,
                                                              name="is_variable"))))
    nt = len(tensors)

    def check_idx(tbl: _Table, fid: int, field_name: str, what: str) -> list:
        a = tbl.array(fid, np.int32, field_name, copy=False)
        out = [int(v) for v in (a if a is not None else [])]
        for v in out:
            if v < -1 or v >= nt:
                raise TFLiteFormatError(f"tflite_bytes: {what} refers to tensor {v}, but the "
                                        f"subgraph has {nt} tensors")
        return out

    codes = []
    for j, oc in enumerate(opcodes):
        code = max(oc.scalar(_F_OC_BUILTIN, 4, signed=True, name="builtin_code"),
                   oc.scalar(_F_OC_DEPRECATED, 1, signed=True, name="deprecated_builtin_code"))
        codes.append((code, oc.string(_F_OC_CUSTOM, "custom_code"),
                      oc.scalar(_F_OC_VERSION, 4, default=1, signed=True, name="version")))
    ops = []
    for k, o in enumerate(sg.tables(_F_SG_OPERATORS, "operators")):
        oi = o.scalar(_F_OP_OPCODE, 4, name="opcode_index")
        if not (0 <= oi < len(codes)):
            raise TFLiteFormatError(f"tflite_bytes: operator {k} has opcode index "
                                    f"{oi}, model has {len(codes)} operator codes")
        code, custom, version = codes[oi]
        cname = opcode_name(code)
        if cname == "CUSTOM" and custom:
            cname = f"CUSTOM:{custom}"
        opts, opts_type = _options(r, o, k)
        ops.append(TFLiteOp(index=k, opcode=cname,
                            inputs=check_idx(o, _F_OP_INPUTS, "inputs", f"operator {k}"),
                            outputs=check_idx(o, _F_OP_OUTPUTS, "outputs", f"operator {k} outputs"),
                            options=opts, version=version, builtin_code=code,
                            custom_code=custom, options_type=opts_type))
    meta = [md.string(_F_MD_NAME, "name") or ""
            for md in root.tables(_F_MODEL_METADATA, "metadata")]
    return TFLiteModel(tensors=tensors, ops=ops,
                       inputs=check_idx(sg, _F_SG_INPUTS, "inputs", "subgraph inputs"),
                       outputs=check_idx(sg, _F_SG_OUTPUTS, "outputs", "subgraph outputs"),
                       num_subgraphs=len(subgraphs),
                       version=root.scalar(_F_MODEL_VERSION, 4, name="version"),
                       description=root.string(_F_MODEL_DESCRIPTION, "description") or "",
                       size=r.n, buffer_bytes=buffer_bytes, metadata_names=meta)


# ============================================================= int8-only entry points
#
# ``read`` accepts any TFLite model. Code that only understands full-integer int8
# models (the profiler's graph IR, the int8 kernels) calls :func:`require_int8` on
# the parsed model first: a float model then fails with one clear message instead
# of reporting nonsense (a float32 weight counted as a 4-byte "bias").

class TFLiteNotInt8Error(TFLiteFormatError):
    """The file parses, but it is not a full-integer int8-quantised model (e.g. float32).
    Taught in 06-deployment.
    """


#: Rank of (input, filter, output) each kernel's Prepare insists on (TFLite-Micro
#: reference kernels: conv.cc, depthwise_conv.cc, fully_connected.cc, pooling.cc).
_RANKS = {"CONV_2D": (4, 4, 4), "DEPTHWISE_CONV_2D": (4, 4, 4), "TRANSPOSE_CONV": (None, 4, 4),
          "FULLY_CONNECTED": (None, 2, None), "AVERAGE_POOL_2D": (4, None, 4),
          "MAX_POOL_2D": (4, None, 4)}
_MIN_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3,
               "AVERAGE_POOL_2D": 1, "MAX_POOL_2D": 1, "ADD": 2, "MUL": 2, "SUB": 2,
               "MEAN": 2, "SUM": 2, "REDUCE_MAX": 2, "REDUCE_MIN": 2, "RESHAPE": 1,
               "SOFTMAX": 1, "CONCATENATION": 1, "PAD": 2}
#: Options table each of these operators' kernels reads (padding, strides, ...).
_OPTIONS = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
            "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
            "TRANSPOSE_CONV": "TransposeConvOptions"}
_FLOAT_TYPES = ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16", "COMPLEX64", "COMPLEX128")


def check_operators(model) -> TFLiteModel:
    """Check what every planner and kernel takes for granted about the operators.

    ``model``: bytes, a path or a :class:`TFLiteModel`. Each operator must have a
    builtin code this schema knows (or be ``CUSTOM``), at least one output, no
    absent (``-1``) output, the inputs and options table its kernel reads, and the tensor ranks the
    TFLite-Micro reference kernels require (4-D conv / depthwise / pool tensors,
    2-D fully-connected weights with no zero dimension). Returns the parsed model;
    raises :class:`TFLiteFormatError` naming the operator otherwise. Taught in 06-deployment.
    """
    m = read(model)
    known = _enum_names("BuiltinOperator")
    for op in m.ops:
        where = f"operator {op.index} ({op.opcode})"
        if op.builtin_code not in known:
            raise TFLiteFormatError(f"tflite_bytes: {where} has builtin code {op.builtin_code}, "
                                    f"not an operator of the TFLite schema (corrupt file?)")
        if not op.outputs or -1 in op.outputs:
            raise TFLiteFormatError(f"tflite_bytes: {where} has outputs {op.outputs}; every "
                                    "operator writes at least one tensor")
        need = _MIN_INPUTS.get(op.opcode, 0)
        present = [i for i in op.inputs[:need] if i >= 0]
        if len(present) < need:
            raise TFLiteFormatError(f"tflite_bytes: {where} has inputs {op.inputs}; its kernel "
                                    f"reads at least {need}")
        if op.opcode in _OPTIONS and op.options_type != _OPTIONS[op.opcode]:
            raise TFLiteFormatError(f"tflite_bytes: {where} has options "
                                    f"{op.options_type or 'none'}; its kernel reads "
                                    f"{_OPTIONS[op.opcode]}")
        ranks = _RANKS.get(op.opcode)
        if ranks is None:
            continue
        r_in, r_filt, r_out = ranks
        checks = [("input", op.inputs[0] if op.opcode != "TRANSPOSE_CONV" else op.inputs[2], r_in),
                  ("output", op.outputs[0], r_out)]
        if r_filt is not None:
            checks.append(("filter", op.inputs[1], r_filt))
        for role, ti, rank in checks:
            shape = m.tensors[ti].shape
            if rank is not None and len(shape) != rank:
                raise TFLiteFormatError(f"tflite_bytes: {where}: {role} tensor {ti} has shape "
                                        f"{shape}; the kernel needs {rank} dimensions")
            if role == "filter" and 0 in shape:
                raise TFLiteFormatError(f"tflite_bytes: {where}: filter tensor {ti} has shape "
                                        f"{shape} with a zero dimension")
    return m


def require_int8(model, what: str = "this function") -> TFLiteModel:
    """Parse ``model`` and insist that it is a full-integer int8-quantised model.

    ``model``: bytes, a path or a :class:`TFLiteModel`; ``what`` names the caller in
    the message (e.g. ``"helpers.resources.profile"``). Raises
    :class:`TFLiteNotInt8Error` when any tensor is floating point (a float model:
    its weights would be counted as 4-byte "biases" and its activations as int8),
    except the activations of the float I/O wrapper the plain converter adds (the
    float input of a QUANTIZE, the float output of a DEQUANTIZE; 4 bytes each),
    and :class:`TFLiteFormatError` when :func:`check_operators` finds an operator
    the int8 planners and kernels cannot handle. Returns the parsed model. Taught in 06-deployment.
    """
    m = check_operators(model)
    # the float I/O wrapper of the plain converter (a float input QUANTIZEd, a float output
    # DEQUANTIZEd) is int8 inside: its float activations are allowed
    wrap = {t for op in m.ops if op.opcode == "QUANTIZE" for t in op.inputs[:1]}
    wrap |= {t for op in m.ops if op.opcode == "DEQUANTIZE" for t in op.outputs[:1]}
    floats = [t for t in m.tensors if t.type_name in _FLOAT_TYPES
              and not (t.index in wrap and not t.is_constant)]
    if floats:
        kinds = sorted({t.type_name for t in floats})
        consts = sum(t.is_constant for t in floats)
        eg = floats[0]
        raise TFLiteNotInt8Error(
            f"{what} needs a full-integer int8-quantised .tflite, but this is a float model "
            f"(it must be int8-quantised): "
            f"{len(floats)} of its {len(m.tensors)} tensors are {'/'.join(kinds)} "
            f"({consts} constant, e.g. tensor {eg.index} shape {eg.shape}). Convert the Keras "
            f"model with helpers.deploy.to_tflite_int8(model, representative_data).")
    return m

"""TFLite-Micro's persistent arena ("tail") modelled from its structures, at 32-bit and 64-bit.

Taught in 06-deployment (Part "Patch-based inference"). :func:`helpers.deploy.tflm.measure_arena`
measures the tail on this 64-bit host, where every pointer and ``size_t`` is 8 bytes; on a 32-bit
MCU they are 4. :func:`tail_model` rebuilds the tail from the structures TFLite-Micro allocates
there (read in the tflite-micro sources: ``TfLiteEvalTensor``, the static-memory ``TfLiteTensor``
and ``TfLiteNode`` of ``tensorflow/lite/core/c/common.h``, ``NodeAndRegistration``,
``TfLiteAffineQuantization``, and the reference kernels' ``OpDataConv``, ``OpDataAdd``,
``OpDataFullyConnected``, ``OpDataReduce``, ``OpDataPooling``, ``SoftmaxParams`` plus their
per-channel multiplier / shift arrays), laid out with C's alignment rules at a chosen pointer
width, plus the builtin op options (:data:`BUILTIN_DATA`). The allocator's own objects are not
itemised: :data:`FIXED_WORDS` counts them in pointer-sized words, calibrated once on the host.
:func:`check_against_host` compares the 64-bit model with the measured tail (the model's error).
May import: :mod:`helpers.tflite_io`, :mod:`helpers.deploy.tflm`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from helpers import tflite_io
from helpers.deploy.tflm import measure_arena

__all__ = ["TailModel", "tail_model", "struct_size", "STRUCTS", "OP_DATA", "BUILTIN_DATA",
           "FIXED_WORDS",
           "check_against_host"]

# field codes: p = pointer, z = size_t, i = int / int32 / enum / float, b = bool / uint8,
# h = int16 / uint16, d = double, (name) = a nested struct of STRUCTS
STRUCTS = {
    "TfLitePaddingValues": "iiii",
    "TfLiteQuantization": "ip",                      # type, void* params
    "TfLiteQuantizationParams": "ii",                # float scale, int32 zero_point
    "TfLiteEvalTensor": "ppi",                       # data, dims, type
    "TfLiteTensor": ["TfLiteQuantization", "TfLiteQuantizationParams", "p", "p", "z", "i", "i",
                     "b"],                           # TF_LITE_STATIC_MEMORY layout
    "TfLiteNode": "pppppp" "i",                      # inputs, outputs, intermediates, user_data,
                                                     # builtin_data, custom data, its size
    "NodeAndRegistration": ["TfLiteNode", "p"],
    "TfLiteAffineQuantization": "ppi",
    "OpDataConv": ["TfLitePaddingValues", "iiiii", "pp", "iii", "ii"],   # + compression indices
    "OpDataAdd": ["b", "iiiiiiiiiiii", "ii"],
    "OpDataFullyConnected": ["iiiiiiii", "i", "pp", "b", "ii"],
    "OpDataReduce": "iiiiiiiiiii",
    "OpDataPooling": ["TfLitePaddingValues", "iiii"],
    "SoftmaxParams": ["d", "iiiiiii", "ppppp"],
    "StridedSliceParams": ["b", "iiiii", "b", "iiiii", "b", "iiiii", "hhhhh", "b"],
}

#: Per-op persistent allocations of the reference kernels: (OpData struct, per-channel arrays).
OP_DATA = {
    "CONV_2D": ("OpDataConv", 2),
    "DEPTHWISE_CONV_2D": ("OpDataConv", 2),
    "FULLY_CONNECTED": ("OpDataFullyConnected", 2),
    "ADD": ("OpDataAdd", 0),
    "MEAN": ("OpDataReduce", 0),
    "SUM": ("OpDataReduce", 0),
    "REDUCE_MAX": ("OpDataReduce", 0),
    "AVERAGE_POOL_2D": ("OpDataPooling", 0),
    "MAX_POOL_2D": ("OpDataPooling", 0),
    "SOFTMAX": ("SoftmaxParams", 0),
    "RESHAPE": (None, 0),
    "SHAPE": (None, 0),
    "PACK": (None, 0),
    "STRIDED_SLICE": ("StridedSliceParams", 0),
}

#: Builtin op options (``builtin_op_data.h``, parsed into the persistent arena; no pointers).
BUILTIN_DATA = {
    "CONV_2D": "iiiiiii", "DEPTHWISE_CONV_2D": "iiiiiii", "FULLY_CONNECTED": ["ii", "bb", "i"],
    "ADD": ["i", "b"], "MEAN": "b", "SUM": "b", "REDUCE_MAX": "b",
    "AVERAGE_POOL_2D": ["iiiiii", "TfLitePaddingValues"],
    "MAX_POOL_2D": ["iiiiii", "TfLitePaddingValues"], "SOFTMAX": "i", "RESHAPE": "iiiiiiiii",
    "STRIDED_SLICE": ["iiiii", "b"], "PACK": "ii", "SHAPE": "i",
}

#: The allocator's own objects (MicroAllocator, GreedyMemoryPlanner, the persistent and
#: non-persistent buffer allocators, MicroBuiltinDataAllocator, subgraph allocations), not
#: itemised: pointer-sized words, calibrated on the host (median residual of 7 models after
#: all itemised parts: 512 B at 8-byte pointers). Assumed to halve at 32-bit; the 32-bit figure
#: is uncertain by at most these 256 B.
FIXED_WORDS = 64

#: Persistent buffers are aligned to MicroArenaBufferAlignment() (16 B) on both widths.
ARENA_ALIGN = 16


def struct_size(name_or_fields, ptr: int) -> tuple[int, int]:
    """(size, alignment) of a C struct of :data:`STRUCTS` at pointer width ``ptr`` bytes
    (4 on a 32-bit MCU, 8 on a 64-bit host). Taught in 06-deployment."""
    if ptr not in (4, 8):
        raise ValueError(f"ptr must be 4 (32-bit) or 8 (64-bit) bytes, got {ptr!r}")
    fields = STRUCTS.get(name_or_fields, [name_or_fields]) if isinstance(name_or_fields, str) \
        else name_or_fields
    off, al = 0, 1
    for f in fields:
        if f in STRUCTS:
            items = [struct_size(f, ptr)]
        else:
            items = [{"p": (ptr, ptr), "z": (ptr, ptr), "i": (4, 4), "b": (1, 1),
                      "h": (2, 2), "d": (8, 8)}[c] for c in f]
        for s, a in items:
            off = (off + a - 1) // a * a + s
            al = max(al, a)
    return (off + al - 1) // al * al, al


def _up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


@dataclass
class TailModel:
    """The modelled TFLite-Micro tail of one model at one pointer width (bytes per part).
    Taught in 06-deployment."""

    ptr_bytes: int
    eval_tensors: int
    persistent_tensors: int
    quantization: int
    persistent_buffers: int
    node_and_registration: int
    fixed: int
    parts: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return (self.eval_tensors + self.persistent_tensors + self.quantization +
                self.persistent_buffers + self.node_and_registration + self.fixed)

    def summary(self) -> str:
        return (f"TFLM tail model ({8 * self.ptr_bytes}-bit): {self.total:,} B = eval tensors "
                f"{self.eval_tensors} + I/O TfLiteTensors {self.persistent_tensors} + "
                f"quantization {self.quantization} + kernel persistent buffers "
                f"{self.persistent_buffers} + NodeAndRegistration {self.node_and_registration} "
                f"+ op options and allocator objects {self.fixed}")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        return d


def tail_model(tflite_bytes, ptr_bytes: int = 4, compression: bool = True) -> TailModel:
    """TFLite-Micro's persistent arena for ``tflite_bytes`` with ``ptr_bytes``-byte pointers
    (4: 32-bit MCU, 8: 64-bit host). ``compression``: kernels built with
    ``USE_TFLM_COMPRESSION`` (two more ints in OpDataConv / OpDataFullyConnected; the pinned
    tflite-micro wheel is built with it: its measured persistent-buffer bytes match only so).
    Taught in 06-deployment."""
    if ptr_bytes not in (4, 8):
        raise ValueError(f"ptr_bytes must be 4 (32-bit MCU) or 8 (64-bit host), got {ptr_bytes!r}")
    m = tflite_io.read(tflite_bytes)

    def sz(name):
        fields = list(STRUCTS[name])
        if not compression and name in ("OpDataConv", "OpDataFullyConnected"):
            fields = fields[:-1]
        return struct_size(fields, ptr_bytes)[0]

    n_t, n_ops = len(m.tensors), len(m.ops)
    ev = n_t * sz("TfLiteEvalTensor")
    io = [t for t in list(m.inputs) + list(m.outputs)]
    pt = len(io) * sz("TfLiteTensor")
    # each I/O TfLiteTensor: a TfLiteAffineQuantization + its zero-point TfLiteIntArray
    # (int size + one int per channel); scales point into the flatbuffer
    q = sum(sz("TfLiteAffineQuantization") + 4 + 4 * max(1, m.tensors[t].zero_point.size)
            for t in io)
    bufs = []
    # MicroInterpreter's input and output TfLiteTensor* arrays
    bufs += [len(m.inputs) * ptr_bytes, len(m.outputs) * ptr_bytes]
    missing = sorted({op.opcode for op in m.ops if op.opcode not in OP_DATA})
    if missing:
        raise ValueError(f"tflite_bytes: no OpData model for {missing}; modelled ops: "
                         f"{sorted(OP_DATA)}")
    for op in m.ops:
        name, arrays = OP_DATA[op.opcode]
        if name:
            bufs.append(sz(name))
        if arrays:
            w = m.tensors[op.inputs[1]]
            ch = int(w.scale.size) if op.opcode != "FULLY_CONNECTED" or w.scale.size > 1 else 1
            if op.opcode == "DEPTHWISE_CONV_2D":
                ch = int(m.tensors[op.outputs[0]].shape[-1])
            elif op.opcode == "CONV_2D":
                ch = int(w.shape[0])
            elif w.scale.size <= 1:
                ch = 0      # per-tensor FULLY_CONNECTED allocates no per-channel arrays
            bufs += [4 * ch] * arrays if ch else []
    pb = sum(_up(b, ARENA_ALIGN) for b in bufs)
    nr = _up(n_ops * sz("NodeAndRegistration"), ARENA_ALIGN)
    fixed = FIXED_WORDS * ptr_bytes + sum(_up(struct_size(BUILTIN_DATA[op.opcode], ptr_bytes)[0], 4)
                                          for op in m.ops if op.opcode in BUILTIN_DATA)
    return TailModel(ptr_bytes=ptr_bytes, eval_tensors=ev,
                     persistent_tensors=pt, quantization=q, persistent_buffers=pb,
                     node_and_registration=nr, fixed=fixed,
                     parts={"n_tensors": n_t, "n_ops": n_ops, "n_persistent_buffers": len(bufs),
                            "persistent_requested": sum(bufs)})


def check_against_host(tflite_bytes, report=None) -> dict:
    """The 64-bit model beside the host measurement (``report``: an
    :class:`~helpers.deploy.tflm.ArenaReport`, measured if omitted): modelled and measured tail,
    the relative error, and the 32-bit tail. Taught in 06-deployment."""
    if report is None:
        report = measure_arena(tflite_bytes)
    m64 = tail_model(tflite_bytes, 8)
    m32 = tail_model(tflite_bytes, 4)
    return {"tail_host_measured_bytes": int(report.tail), "tail_host_model_bytes": m64.total,
            "tail_host_model_error": m64.total / report.tail - 1.0,
            "tail_mcu32_model_bytes": m32.total, "head_bytes": int(report.head),
            "total_mcu32_model_bytes": int(report.head) + m32.total}

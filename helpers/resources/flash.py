"""The flash model: the bytes of the int8 ``.tflite`` the converter would write for a graph.

Taught in 00-overview (what flash means). The graph is serialised through the flatbuffer object
API with the converter's conventions; :func:`flash_bytes` splits the result into weights,
biases and overhead. May import: :mod:`helpers.resources.graph`, :mod:`helpers.tflite_io`.
"""
from __future__ import annotations

from helpers import tflite_io
from helpers.tflite_io import _enum_names
from helpers.resources.graph import Graph, Node, Tensor

# ================================================================================ flash

#: Converter metadata kept in the file: name -> payload bytes (TF 2.21 converter).
CONVERTER_METADATA = (("min_runtime_version", 16), ("CONVERSION_METADATA", 96))
#: Operator versions the converter writes for int8 models (only "== 1" changes the size).
OP_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "MAX_POOL_2D": 2,
               "AVERAGE_POOL_2D": 2, "ADD": 2, "MEAN": 2, "REDUCE_MAX": 2, "RESHAPE": 1,
               "RESIZE_BILINEAR": 3}
_FUSED = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
_PADDING = {"SAME": 0, "VALID": 1}


def _options_t(fb, op: Node):
    """(BuiltinOptions type, options object) the converter writes for ``op``."""
    o = op.options
    act = _FUSED[o.get("fused_activation_function", "NONE")]
    if op.opcode == "CONV_2D":
        t = fb.Conv2DOptionsT()
        t.padding, t.strideW, t.strideH = _PADDING[o["padding"]], o["stride_w"], o["stride_h"]
        t.fusedActivationFunction = act
        return fb.BuiltinOptions.Conv2DOptions, t
    if op.opcode == "DEPTHWISE_CONV_2D":
        t = fb.DepthwiseConv2DOptionsT()
        t.padding, t.strideW, t.strideH = _PADDING[o["padding"]], o["stride_w"], o["stride_h"]
        t.depthMultiplier, t.fusedActivationFunction = o.get("depth_multiplier", 1), act
        return fb.BuiltinOptions.DepthwiseConv2DOptions, t
    if op.opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        t = fb.Pool2DOptionsT()
        t.padding, t.strideW, t.strideH = _PADDING[o["padding"]], o["stride_w"], o["stride_h"]
        t.filterWidth, t.filterHeight = o["filter_width"], o["filter_height"]
        t.fusedActivationFunction = act
        return fb.BuiltinOptions.Pool2DOptions, t
    if op.opcode == "FULLY_CONNECTED":
        t = fb.FullyConnectedOptionsT()
        t.fusedActivationFunction = act
        t.keepNumDims = bool(o.get("keep_num_dims", False))
        return fb.BuiltinOptions.FullyConnectedOptions, t
    if op.opcode == "ADD":
        t = fb.AddOptionsT()
        t.fusedActivationFunction = act
        return fb.BuiltinOptions.AddOptions, t
    if op.opcode in ("MEAN", "REDUCE_MAX"):
        t = fb.ReducerOptionsT()
        t.keepDims = bool(o.get("keep_dims", False))
        return fb.BuiltinOptions.ReducerOptions, t
    if op.opcode == "RESIZE_BILINEAR":
        t = fb.ResizeBilinearOptionsT()
        t.alignCorners = bool(o.get("align_corners", False))
        t.halfPixelCenters = bool(o.get("half_pixel_centers", True))
        return fb.BuiltinOptions.ResizeBilinearOptions, t
    if op.opcode == "RESHAPE":
        return 0, None
    raise ValueError(f"flash model: operator {op.opcode} not modelled")


_CODES: dict = {}


def _builtin_code(opcode: str) -> int:
    if not _CODES:
        _CODES.update({v: k for k, v in _enum_names("BuiltinOperator").items()})
    return _CODES[opcode]


def _tensor_t(fb, t: Tensor, quant: bool):
    import numpy as np
    tt = fb.TensorT()
    tt.shape = np.asarray(t.shape, np.int32)
    tt.type = 9 if t.itemsize == 1 else 2
    tt.hasRank = True
    tt.buffer = 1 if t.const else 0
    if quant:
        q = fb.QuantizationParametersT()
        n = t.channels or 1
        q.scale = np.zeros(n, np.float32)
        q.zeroPoint = np.zeros(n, np.int64)
        q.quantizedDimension = t.qdim
        tt.quantization = q
    return tt


def _operator_t(fb, op: Node, cidx: dict, remap: dict):
    import numpy as np
    ot = fb.OperatorT()
    ot.opcodeIndex = cidx[op.opcode]
    ot.inputs = np.asarray([remap.get(i, 0) if i >= 0 else -1 for i in op.inputs], np.int32)
    ot.outputs = np.asarray([remap.get(i, 0) for i in op.outputs], np.int32)
    ot.builtinOptionsType, ot.builtinOptions = _options_t(fb, op)
    return ot


def _model_t(g: Graph):
    """The canonical ``ModelT`` (see helpers.tflite_io.canonical_model_t) of ``g``,
    with placeholder payloads: what helpers.deploy.to_tflite_int8 would write."""
    import numpy as np
    fb = tflite_io._schema()
    # canonical tensor order: constants by first use, then the rest in index order
    order, seen = [], set()
    for op in g.ops:
        for i in op.inputs:
            if i >= 0 and g.tensors[i].const and i not in seen:
                seen.add(i)
                order.append(i)
    order += [t.index for t in g.tensors if t.const and t.index not in seen]
    order += [t.index for t in g.tensors if not t.const]
    remap = {old: new for new, old in enumerate(order)}
    m = fb.ModelT()
    m.version = 3
    m.description = "MLIR Converted."
    codes, cidx = [], {}
    for op in g.ops:
        if op.opcode not in cidx:
            code = _builtin_code(op.opcode)
            oc = fb.OperatorCodeT()
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.builtinCode = code
            oc.version = OP_VERSIONS.get(op.opcode, 2)
            cidx[op.opcode] = len(codes)
            codes.append(oc)
    m.operatorCodes = codes
    Stub = tflite_io.PackStub
    buffers = [tflite_io.fb_buffer(None)]
    tensors = []
    for old in order:
        t = g.tensors[old]
        quant = (t.itemsize == 1 or t.channels)
        sig = ("T", len(t.shape), t.itemsize, t.const, (t.channels or 1) if quant else 0,
               t.qdim)
        tensors.append(Stub(sig, lambda t=t, quant=quant: _tensor_t(fb, t, quant)))
        if t.const:
            buffers.append(Stub(("B",), tflite_io._schema().BufferT, raw=t.nbytes))
    ops = []
    for op in g.ops:
        typ, opt = _options_t(fb, op)
        key = ("O", cidx[op.opcode] != 0, len(op.inputs), len(op.outputs), typ,
               tuple(sorted(vars(opt).items())) if opt is not None else None)
        ops.append(Stub(key, lambda op=op: _operator_t(fb, op, cidx, remap)))
    sg = fb.SubGraphT()
    sg.tensors, sg.operators = tensors, ops
    sg.inputs = np.asarray([remap[i] for i in g.inputs], np.int32)
    sg.outputs = np.asarray([remap[i] for i in g.outputs], np.int32)
    m.subgraphs = [sg]
    meta = []
    for name, nbytes in CONVERTER_METADATA:
        md = fb.MetadataT()
        md.name = name
        md.buffer = len(buffers)
        buffers.append(tflite_io.fb_buffer(nbytes))
        meta.append(md)
    m.metadata = meta
    m.buffers = buffers
    return m


def flash_bytes(g: Graph) -> dict:
    """Size of the int8 ``.tflite`` that :func:`helpers.deploy.to_tflite_int8` writes.

    Computed by replaying the flatbuffer serialisation of the converter's graph
    (same tensors, quantisation vectors, operator options, 16-byte aligned
    buffers) without writing bytes, so it is exact when ``g`` mirrors the file.
    Parts: ``weights`` (int8), ``biases`` (int32, incl. small int32 constants),
    ``quant`` (per-channel scale float32 + zero point int64 of every quantised
    tensor), ``overhead`` (:data:`FLASH_FIXED_OVERHEAD`: header, converter
    metadata, description), ``graph`` (the rest: tensor / operator tables, shapes,
    vtables, alignment); ``total`` = file size. Taught in 00-overview.
    """
    weights = sum(t.nbytes for t in g.tensors if t.const and t.itemsize == 1)
    biases = sum(t.nbytes for t in g.tensors if t.const and t.itemsize != 1)
    quant = sum(12 * (t.channels or 1) for t in g.tensors if t.itemsize == 1 or t.channels)
    total = tflite_io.packed_size(_model_t(g))
    graph = total - weights - biases - quant - FLASH_FIXED_OVERHEAD
    return {"weights": weights, "biases": biases, "quant": quant, "graph": graph,
            "overhead": FLASH_FIXED_OVERHEAD, "total": total}


def _fixed_overhead() -> int:
    g = Graph(tensors=[], ops=[], inputs=[], outputs=[])
    return tflite_io.packed_size(_model_t(g))


#: Bytes of every ``.tflite`` from helpers.deploy.to_tflite_int8 that do not depend on
#: the network: flatbuffer header and root tables, description, the converter's
#: metadata (min_runtime_version, CONVERSION_METADATA). Computed once at import
#: (size of the same file with no tensors and no operators).
FLASH_FIXED_OVERHEAD = _fixed_overhead()


# ===================================================================== a file's own bytes
#
# A .tflite IS its own flash model: every byte of the flatbuffer is walked and attributed
# to the part that owns it (tables with their vtables, vectors, strings), following the
# TFLite schema (tensorflow/lite/schema/schema.fbs: Model, SubGraph, Tensor, Operator,
# QuantizationParameters, Buffer, Metadata, SignatureDef). Bytes that no object owns are
# alignment padding (zeros written by the flatbuffers builder) or, if not zero, reported
# as "unattributed", so that the parts always add up to the file size.

#: Parts of a file's breakdown (:func:`flash_file_breakdown`), in report order. Those in
#: :data:`NOT_ON_DEVICE` are not needed by TFLite-Micro to run the model.
FILE_PARTS = ("weights", "biases", "quant", "graph", "names", "quant_min_max", "metadata",
              "signature_defs", "description", "padding", "unattributed")
#: Parts a device does not need: tensor / subgraph names, quantisation min/max arrays,
#: metadata (except ``OfflineMemoryAllocation``, which TFLM reads), signature defs, the
#: description string.
NOT_ON_DEVICE = ("names", "quant_min_max", "metadata", "signature_defs", "description")
#: Metadata entries TFLite-Micro reads (kept in the deployable image).
DEVICE_METADATA = ("OfflineMemoryAllocation",)
# vector / string fields of builtin options tables (schema.fbs): options name -> {field: kind}
_OPTION_VECTORS = {"ReshapeOptions": {0: 4}, "SqueezeOptions": {0: 4},
                   "ConcatEmbeddingsOptions": {1: 4, 2: 4}, "StableHLOCompositeOptions": {0: "s"}}


class _FileMap:
    """Byte ownership of one flatbuffer: ``part[i]`` = index in FILE_PARTS (-1: nobody)."""

    def __init__(self, buf: bytes):
        import numpy as np
        self.b = buf
        self.part = np.full(len(buf), -1, np.int8)
        self.codes = {p: i for i, p in enumerate(FILE_PARTS)}

    def u(self, pos: int, n: int = 4, signed: bool = False) -> int:
        if pos < 0 or pos + n > len(self.b):
            raise tflite_io.TFLiteFormatError(f"tflite_bytes: offset {pos} outside the file "
                                              f"({len(self.b)} B); corrupt or truncated")
        return int.from_bytes(self.b[pos:pos + n], "little", signed=signed)

    def mark(self, start: int, n: int, part: str) -> None:
        seg = self.part[start:start + n]
        seg[seg < 0] = self.codes[part]  # first owner wins (shared vtables)

    def table(self, pos: int, part: str) -> "_FileTable":
        vt = pos - self.u(pos, 4, signed=True)
        vsize, osize = self.u(vt, 2), self.u(vt + 2, 2)
        self.mark(pos, osize, part)
        self.mark(vt, vsize, part)
        return _FileTable(self, pos, vt, vsize)


class _FileTable:
    def __init__(self, fm: _FileMap, pos: int, vt: int, vsize: int):
        self.fm, self.pos, self.vt, self.vsize = fm, pos, vt, vsize

    def field(self, fid: int) -> int | None:
        o = 4 + 2 * fid
        if o >= self.vsize:
            return None
        off = self.fm.u(self.vt + o, 2)
        return self.pos + off if off else None

    def scalar(self, fid: int, n: int = 4, default: int = 0) -> int:
        p = self.field(fid)
        return default if p is None else self.fm.u(p, n)

    def target(self, fid: int) -> int | None:
        p = self.field(fid)
        return None if p is None else p + self.fm.u(p)

    def vector(self, fid: int, elem: int, part: str) -> tuple[int, int] | None:
        """Mark vector ``fid`` (``elem`` bytes per element) as ``part``: (data start, length)."""
        p = self.target(fid)
        if p is None:
            return None
        n = self.fm.u(p)
        self.fm.mark(p, 4 + n * elem, part)
        return p + 4, n

    def string(self, fid: int, part: str) -> str | None:
        p = self.target(fid)
        if p is None:
            return None
        n = self.fm.u(p)
        self.fm.mark(p, 4 + n + 1, part)
        return self.fm.b[p + 4:p + 4 + n].decode("utf-8", "replace")

    def tables(self, fid: int, part: str) -> list:
        v = self.vector(fid, 4, part)
        if v is None:
            return []
        start, n = v
        return [self.fm.table(start + 4 * i + self.fm.u(start + 4 * i), part) for i in range(n)]

    def sub(self, fid: int, part: str) -> "_FileTable | None":
        p = self.target(fid)
        return None if p is None else self.fm.table(p, part)


def _walk_tensor(t: _FileTable, buffer_part: dict) -> None:
    t.vector(0, 4, "graph")                     # shape
    t.string(3, "names")                        # name
    t.vector(7, 4, "graph")                     # shape_signature
    q = t.sub(4, "quant")                       # QuantizationParameters
    if q is not None:
        q.vector(0, 4, "quant_min_max")
        q.vector(1, 4, "quant_min_max")
        q.vector(2, 4, "quant")                 # scale (float32)
        q.vector(3, 8, "quant")                 # zero_point (int64)
        d = q.sub(5, "quant")                   # details union (CustomQuantization)
        if d is not None:
            d.vector(0, 1, "quant")
    sp = t.sub(6, "graph")                      # SparsityParameters (nested parts: graph)
    if sp is not None:
        sp.vector(0, 4, "graph")
        sp.vector(1, 4, "graph")
        for dm in sp.tables(2, "graph"):
            for fid in (2, 4):                  # array_segments / array_indices unions
                u = dm.sub(fid, "graph")
                if u is not None:
                    u.vector(0, {1: 4, 2: 2, 3: 1}.get(dm.scalar(fid - 1, 1), 4), "graph")
    for vt in t.tables(9, "graph"):             # variant_tensors
        vt.vector(0, 4, "graph")
    ttype = t.scalar(1, 1)
    buffer_part.setdefault(t.scalar(2), "weights" if ttype == 9 else "biases")


def flash_file_breakdown(tflite_bytes) -> dict:
    """Every byte of a ``.tflite`` attributed to the part that owns it (exact, no TensorFlow).

    ``tflite_bytes``: bytes or a path. Parts (:data:`FILE_PARTS`): ``weights`` (constant
    buffers of int8 tensors), ``biases`` (other constant buffers: int32 biases, shapes,
    axes), ``quant`` (per-channel scale float32 + zero point int64 vectors and their
    tables), ``graph`` (root, operator codes, subgraph / tensor / operator tables, shapes,
    options, buffer tables and the length prefixes of buffers), ``names`` (tensor and
    subgraph names), ``quant_min_max`` (the converter's float min/max arrays),
    ``metadata`` (metadata tables, names and payload buffers, ``metadata_buffer``),
    ``signature_defs``, ``description``, ``padding`` (zero bytes no object owns: alignment)
    and ``unattributed`` (non-zero bytes no object owns; 0 for converter files). Their sum
    is ``total`` == the file size, always. ``device_image_bytes`` = size of
    :func:`device_image`, the same model without the parts a device does not need
    (:data:`NOT_ON_DEVICE`; TFLM runs it identically); ``not_on_device`` = their bytes.
    Every builtin operator is handled (a file is its own flash model). Taught in
    06-deployment (bring your own model).
    """
    buf = _file_bytes(tflite_bytes)
    tflite_io.validate(buf)
    try:
        return _breakdown(buf)
    except tflite_io.TFLiteFormatError:
        raise
    except Exception as e:  # a file that reads but whose byte map does not add up
        raise tflite_io.TFLiteFormatError(f"tflite_bytes: flatbuffer layout not walkable "
                                          f"({type(e).__name__}: {e}); corrupt file?") from e


def _breakdown(buf: bytes) -> dict:
    fm = _FileMap(buf)
    fm.mark(0, 8, "graph")                      # root offset + "TFL3"
    root = fm.table(fm.u(0), "graph")
    for oc in root.tables(1, "graph"):
        oc.string(1, "graph")                   # custom_code
    buffer_part: dict[int, str] = {}
    option_names = _enum_names("BuiltinOptions")
    option2_names = _enum_names("BuiltinOptions2") if hasattr(tflite_io._schema(),
                                                                  "BuiltinOptions2") else {}
    for sg in root.tables(2, "graph"):
        for t in sg.tables(0, "graph"):
            _walk_tensor(t, buffer_part)
        sg.vector(1, 4, "graph")
        sg.vector(2, 4, "graph")
        for op in sg.tables(3, "graph"):
            for fid in (1, 2, 7, 8):            # inputs, outputs, mutating_variable_inputs, intermediates
                op.vector(fid, 1 if fid == 7 else 4, "graph")
            op.vector(5, 1, "graph")            # custom_options
            for tfid, ofid, names in ((3, 4, option_names), (11, 12, option2_names)):
                o = op.sub(ofid, "graph")
                if o is None:
                    continue
                for vfid, kind in _OPTION_VECTORS.get(names.get(op.scalar(tfid, 1), ""), {}).items():
                    if kind == "s":
                        o.string(vfid, "graph")
                    else:
                        o.vector(vfid, kind, "graph")
        sg.string(4, "names")
    root.string(3, "description")
    meta_buffers = {}
    for md in root.tables(6, "metadata"):
        name = md.string(0, "metadata")
        meta_buffers[md.scalar(1)] = name
    root.vector(5, 4, "metadata")              # metadata_buffer
    for sd in root.tables(7, "signature_defs"):
        for fid in (0, 1):
            for tm in sd.tables(fid, "signature_defs"):
                tm.string(0, "signature_defs")
        sd.string(2, "signature_defs")
        sd.string(3, "signature_defs")
    for bi, b in enumerate(root.tables(4, "graph")):
        part = buffer_part.get(bi, "biases")
        if bi in meta_buffers and meta_buffers[bi] not in DEVICE_METADATA:
            part = "metadata"
        p = b.target(0)
        if p is not None:
            n = fm.u(p)
            fm.mark(p, 4, "graph")
            fm.mark(p + 4, n, part)
        off, size = b.scalar(1, 8), b.scalar(2, 8)
        if off > 1 and size:                    # data stored after the flatbuffer
            fm.mark(off, size, part)
    import numpy as np
    free = fm.part < 0
    raw = np.frombuffer(buf, np.uint8)
    fm.part[free & (raw == 0)] = fm.codes["padding"]
    fm.part[free & (raw != 0)] = fm.codes["unattributed"]
    counts = np.bincount(fm.part.astype(np.int64), minlength=len(FILE_PARTS))
    out = {p: int(counts[i]) for i, p in enumerate(FILE_PARTS)}
    out["total"] = int(counts.sum())
    out["not_on_device"] = sum(out[p] for p in NOT_ON_DEVICE)
    out["device_image_bytes"] = len(_device_image(buf))
    return out


def _file_bytes(x) -> bytes:
    if isinstance(x, (str,)) or hasattr(x, "__fspath__"):
        with open(x, "rb") as f:
            return f.read()
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise ValueError(f"tflite_bytes: expected .tflite bytes or a path, got {type(x).__name__}")


def device_image(tflite_bytes) -> bytes:
    """The ``.tflite`` a device needs: the same model re-serialised without tensor / subgraph
    names, quantisation min/max arrays, signature defs, the description and metadata other
    than :data:`DEVICE_METADATA` (their buffers emptied, indices kept). Tensor order,
    buffers (16-byte aligned) and operators are kept, so TFLite-Micro plans and runs it
    identically. Its size is the "deployable image" figure. Taught in 06-deployment.
    """
    buf = _file_bytes(tflite_bytes)
    tflite_io.validate(buf)
    try:
        return _device_image(buf)
    except Exception as e:  # noqa: BLE001 - the object API on a corrupt but readable file
        raise tflite_io.TFLiteFormatError(f"tflite_bytes: cannot re-serialise the model "
                                          f"({type(e).__name__}: {e}); corrupt file?") from e


def _device_image(buf: bytes) -> bytes:
    import flatbuffers
    fb = tflite_io._schema()
    m = fb.ModelT.InitFromPackedBuf(buf, 0)
    m.description = None
    m.signatureDefs = None
    for sg in m.subgraphs or []:
        sg.name = None
        for t in sg.tensors or []:
            t.name = None
            if t.quantization is not None:
                t.quantization.min = t.quantization.max = None
    keep = []
    for md in m.metadata or []:
        name = md.name.decode() if isinstance(md.name, bytes) else md.name
        if name in DEVICE_METADATA:
            keep.append(md)
        elif m.buffers and 0 <= md.buffer < len(m.buffers):
            m.buffers[md.buffer].data = None
    m.metadata = keep or None
    m.metadataBuffer = None
    b = flatbuffers.Builder(len(buf) + 1024)
    tflite_io.pack_model(m, b)
    return bytes(b.Output())

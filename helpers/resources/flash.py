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

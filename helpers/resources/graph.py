"""The graph IR of the resource model, per-op MACs and scratch, and its two front ends.

Taught in 00-overview and 06-deployment. A :class:`Graph` (int8 tensors and TFLite operators)
is built either from an architecture's layers without TensorFlow (:func:`graph_from_layers`,
mirroring what the TFLite converter emits) or from a real ``.tflite`` file
(:func:`graph_from_tflite`). May import: :mod:`helpers.tflite_io`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from helpers import tflite_io

__all__ = ["Tensor", "Node", "Graph", "PLANS", "KERNELS_ASSUMED", "ALIGN", "graph_from_tflite",
           "graph_from_layers", "op_macs", "kernel_scratch"]

#: TFLite-Micro's kBufferAlignment (MicroArenaBufferAlignment()).
ALIGN = 16
PLANS = ("tflm", "reordered", "inplace")

#: Scratch buffers requested in Prepare by the reference int8 kernels of the pinned
#: tflite-micro build (no CMSIS-NN). Ops not listed request none.
KERNELS_ASSUMED = {
    "CONV_2D": "reference int8 conv (tensorflow/lite/micro/kernels/conv.cc): no scratch",
    "DEPTHWISE_CONV_2D": "reference int8 depthwise_conv: no scratch",
    "FULLY_CONNECTED": "reference int8 fully_connected: no scratch",
    "MEAN": "reduce_common.cc PrepareMeanOrSum: int32 accumulator, 4 x output elements",
    "SUM": "reduce_common.cc PrepareMeanOrSum: int32 accumulator, 4 x output elements",
    "REDUCE_MAX": "reduce_common.cc PrepareMax: 4 x input rank + 4 x number of axes",
    "MAX_POOL_2D": "reference pooling: no scratch",
    "AVERAGE_POOL_2D": "reference pooling: no scratch",
    "ADD": "reference add: no scratch",
    "RESHAPE": "reshape: output is its own buffer (copy), no scratch",
    "RESIZE_BILINEAR": "reference resize_bilinear: no scratch",
}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _prod(shape) -> int:
    p = 1
    for s in shape:
        p *= int(s)
    return p


# ============================================================================ graph IR

@dataclass(slots=True)
class Tensor:
    """A tensor of the graph IR. ``nbytes`` is unaligned; constants are not planned.
    Taught in 00-overview.
    """

    index: int
    shape: tuple
    itemsize: int = 1
    const: bool = False
    name: str = ""
    nbytes: int = 0
    channels: int = 0  # quantisation channels (per-channel weights / biases), 0 = per-tensor
    value: tuple | None = None  # small int32 constants (axes, shapes): their values
    qdim: int = 0  # quantized dimension of per-channel constants

    def __post_init__(self):
        if not self.nbytes:
            self.nbytes = _prod(self.shape) * self.itemsize


@dataclass(slots=True)
class Node:
    """An operator: TFLite ``opcode``, tensor indices, options, kernel scratch
    requests (bytes, in request order), MACs and learned parameters. Taught in 00-overview."""

    index: int
    opcode: str
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)
    scratch: list = field(default_factory=list)
    macs: int = 0
    params: int = 0
    name: str = ""


@dataclass
class Graph:
    """Operators in execution (file) order over int8 tensors; see module docstring.
    Taught in 00-overview.
    """

    tensors: list
    ops: list
    inputs: list
    outputs: list
    name: str = ""

    def consumers(self) -> dict:
        cons: dict[int, list] = {t.index: [] for t in self.tensors}
        for op in self.ops:
            for t in op.inputs:
                if t >= 0 and op.index not in cons[t]:
                    cons[t].append(op.index)
        return cons

    def producers(self) -> dict:
        return {t: op.index for op in self.ops for t in op.outputs}

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)

    def planned(self) -> list:
        """Tensor indices TFLM puts in the arena (non-constant, non-empty), in index order."""
        return [t.index for t in self.tensors if not t.const and t.nbytes > 0]


# ---------------------------------------------------------------- per-op scratch and MACs

def kernel_scratch(opcode: str, in_shapes: list, out_shapes: list) -> list:
    """Scratch bytes the reference int8 kernel of ``opcode`` requests (request order).
    Taught in 00-overview.
    """
    if opcode in ("MEAN", "SUM"):
        return [4 * _prod(out_shapes[0])]
    if opcode in ("REDUCE_MAX", "REDUCE_MIN"):
        axis = in_shapes[1] if len(in_shapes) > 1 and in_shapes[1] is not None else (1,)
        return [4 * len(in_shapes[0]), 4 * _prod(axis)]
    return []


def op_macs(opcode: str, in_shapes: list, out_shapes: list, options: dict | None = None) -> int:
    """Multiply-accumulates of one operator (conv, depthwise, dense; 0 for the rest).
    Taught in 00-overview.
    """
    if opcode == "CONV_2D":
        _, ho, wo, co = out_shapes[0]
        co_, kh, kw, ci = in_shapes[1]
        return ho * wo * co * kh * kw * ci
    if opcode == "DEPTHWISE_CONV_2D":
        _, ho, wo, co = out_shapes[0]
        _, kh, kw, _ = in_shapes[1]
        return ho * wo * co * kh * kw
    if opcode == "FULLY_CONNECTED":
        units, n = in_shapes[1]
        batch = _prod(out_shapes[0]) // units
        return batch * units * n
    return 0


# ------------------------------------------------------------------------ from .tflite

def graph_from_tflite(model) -> Graph:
    """Graph IR of a ``.tflite`` (bytes, path or :class:`helpers.tflite_io.TFLiteModel`).
    Int8 models, also with float I/O (non-constant float tensors); a float model (float
    constants) raises :class:`helpers.tflite_io.TFLiteNotInt8Error`. Taught in 02-aging-evolution.
    """
    try:
        m = tflite_io.require_int8(model, "helpers.resources (profile, plan_tflite)")
    except tflite_io.TFLiteNotInt8Error:
        # float I/O around int8 internals (QUANTIZE first, DEQUANTIZE last) is planned as
        # is (float32 activations are 4 bytes); float constants mean a float model
        m = tflite_io.check_operators(model)
        if any(t.is_float and t.is_constant for t in m.tensors):
            raise
    tensors = [Tensor(index=t.index, shape=tuple(t.shape), itemsize=t.dtype.itemsize,
                      const=t.is_constant or t.is_variable, name=t.name, nbytes=t.nbytes,
                      channels=int(t.scale.size) if t.scale.size > 1 else 0)
               for t in m.tensors]
    ops = []
    for op in m.ops:
        ins = [m.tensors[i].shape if i >= 0 else None for i in op.inputs]
        outs = [m.tensors[i].shape for i in op.outputs]
        params = sum(_prod(m.tensors[i].shape) for i in op.inputs[1:]
                     if i >= 0 and m.tensors[i].is_constant and op.opcode in _LEARNED)
        ops.append(Node(index=op.index, opcode=op.opcode, inputs=list(op.inputs),
                        outputs=list(op.outputs), options=dict(op.options),
                        scratch=kernel_scratch(op.opcode, ins, outs),
                        macs=op_macs(op.opcode, ins, outs, op.options), params=params))
    return Graph(tensors=tensors, ops=ops, inputs=list(m.inputs), outputs=list(m.outputs),
                 name="tflite")


_LEARNED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


# ============================================================== arch -> converter graph

_ACT = {None: "NONE", "relu": "RELU", "relu6": "RELU6"}


def _converter_layers(layers) -> list:
    """Insert the extra ops the converter adds, as virtual layers.

    An ADD of two 1x1xC tensors (C > 1) gets its second operand reshaped to (C,)
    (a broadcasting add); the RESHAPE is emitted right after that operand.
    """
    from copy import copy
    out = list(layers)
    for i, l in enumerate(layers):
        if l.kind == "add" and all(tuple(layers[j].shape[:2]) == (1, 1) for j in l.inputs) \
                and layers[l.inputs[1]].shape[-1] > 1:
            src = l.inputs[1]
            v = copy(layers[src])
            v.id, v.kind, v.inputs = len(out), "squeeze", (src,)
            v.shape, v.params, v.name = (layers[src].shape[-1],), {}, l.name + "_reshape"
            out.append(v)
            nl = copy(l)
            nl.inputs = (l.inputs[0], v.id) + tuple(l.inputs[2:])
            out[i] = nl
    return out


def _converter_order(layers) -> list:
    """Operator order the TFLite converter emits for a Keras functional graph.

    Observed behaviour (checked on the agreement sets): a post-order depth-first
    walk from the output that visits a layer's inputs last-to-first.
    """
    seen = set()
    order = []
    stack = [(_output_layer(layers), False)]
    while stack:
        lid, expanded = stack.pop()
        if expanded:
            order.append(lid)
            continue
        if lid in seen:
            continue
        seen.add(lid)
        stack.append((lid, True))
        # push inputs first-to-last so that the last input is visited first
        for i in layers[lid].inputs:
            if i not in seen:
                stack.append((i, False))
    return [lid for lid in order if layers[lid].kind != "input"]


def _output_layer(layers) -> int:
    used = {i for l in layers for i in l.inputs}
    outs = [l.id for l in layers if l.id not in used and l.kind != "input"]
    return outs[-1] if outs else layers[-1].id


def graph_from_layers(layers, name: str = "") -> Graph:
    """Graph IR the TFLite converter would emit for the Keras model of ``layers``.

    ``layers`` is :meth:`helpers.spaces.GranularArch.layers` (or BlockArch's)
    output. No TensorFlow involved; see :func:`profile`. Taught in 00-overview.
    """
    tensors: list[Tensor] = []

    consts: dict = {}

    def new(shape, itemsize=1, const=False, channels=0, value=None, qdim=0):
        if value is not None:  # the converter merges identical int32 constants
            key = (tuple(shape), tuple(value))
            if key in consts:
                return consts[key]
        t = Tensor(index=len(tensors), shape=tuple(shape), itemsize=itemsize, const=const,
                   channels=channels, value=None if value is None else tuple(value), qdim=qdim)
        tensors.append(t)
        if value is not None:
            consts[(tuple(shape), tuple(value))] = t.index
        return t.index

    out_lid = layers[-1].id
    layers = _converter_layers(layers)
    out_t = {}
    inp = layers[0]
    out_t[inp.id] = new((1,) + tuple(inp.shape))
    ops: list[Node] = []
    for lid in _converter_order(layers):
        l = layers[lid]
        p = l.params
        x = out_t[l.inputs[0]]
        xs = tensors[x].shape
        oshape = (1,) + tuple(l.shape)
        opts: dict[str, Any] = {}
        ins = [x]
        scratch: list = []
        macs = params = 0
        if l.kind == "conv":
            k, f, cin = p["kernel"], p["filters"], xs[3]
            w = new((f, k, k, cin), 1, True, f)
            b = new((f,), 4, True, f)
            ins += [w, b]
            opcode = "CONV_2D"
            opts = {"padding": "SAME", "stride_w": p["stride"], "stride_h": p["stride"],
                    "fused_activation_function": _ACT[p["act"]]}
            macs = oshape[1] * oshape[2] * f * k * k * cin
            params = f * k * k * cin + f
        elif l.kind == "dwconv":
            k, c = p["kernel"], xs[3]
            w = new((1, k, k, c), 1, True, c, qdim=3)
            b = new((c,), 4, True, c)
            ins += [w, b]
            opcode = "DEPTHWISE_CONV_2D"
            opts = {"padding": "SAME", "stride_w": p["stride"], "stride_h": p["stride"],
                    "depth_multiplier": 1, "fused_activation_function": _ACT[p["act"]]}
            macs = oshape[1] * oshape[2] * c * k * k
            params = k * k * c + c
        elif l.kind in ("maxpool", "avgpool"):
            opcode = "MAX_POOL_2D" if l.kind == "maxpool" else "AVERAGE_POOL_2D"
            opts = {"padding": "SAME", "stride_w": p["size"], "stride_h": p["size"],
                    "filter_width": p["size"], "filter_height": p["size"],
                    "fused_activation_function": "NONE"}
        elif l.kind == "add":
            ins = [out_t[i] for i in l.inputs]
            opcode = "ADD"
            opts = {"fused_activation_function": "NONE"}
        elif l.kind in ("gap", "gmp"):
            ins += [new((2,), 4, True, value=(1, 2))]
            opcode = "MEAN" if l.kind == "gap" else "REDUCE_MAX"
            opts = {"keep_dims": False}
            scratch = kernel_scratch(opcode, [xs, (2,)], [oshape])
        elif l.kind == "flatten":
            if _prod(xs[1:-1]) == 1:
                # the converter drops a RESHAPE before FULLY_CONNECTED that keeps the
                # last dimension (1x1xC -> C): the FC reads the 4-D tensor directly
                out_t[lid] = x
                continue
            ins += [new((2,), 4, True, value=(1, _prod(xs[1:])))]
            opcode = "RESHAPE"
        elif l.kind == "dense":
            n, u = _prod(xs[1:]), p["units"]
            w = new((u, n), 1, True, u)
            b = new((u,), 4, True, u)
            ins += [w, b]
            opcode = "FULLY_CONNECTED"
            opts = {"fused_activation_function": _ACT[p["act"]], "keep_num_dims": False,
                    "weights_format": "DEFAULT"}
            macs = n * u
            params = n * u + u
        elif l.kind == "squeeze":
            oshape = tuple(l.shape)  # rank 1, no batch dimension
            ins += [new((1,), 4, True, value=(l.shape[-1],))]
            opcode = "RESHAPE"
        elif l.kind == "resize":
            ins += [new((2,), 4, True, value=(p["height"], p["width"]))]
            opcode = "RESIZE_BILINEAR"
            opts = {"align_corners": False, "half_pixel_centers": True}
        else:
            raise ValueError(f"layer kind {l.kind!r} unknown")
        y = new(oshape)
        out_t[lid] = y
        ops.append(Node(index=len(ops), opcode=opcode, inputs=ins, outputs=[y], options=opts,
                        scratch=scratch, macs=macs, params=params, name=l.name))
    return Graph(tensors=tensors, ops=ops, inputs=[out_t[inp.id]],
                 outputs=[out_t[out_lid]], name=name)

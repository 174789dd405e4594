"""C emission of the operators of :mod:`helpers.engine.kernels_ext` (``csrc/tn_kernels_ext.c``).

Taught in 06-deployment. :func:`emit` turns one prepared :class:`OpSpec` of an extra
operator into its constant declarations and its kernel call, at the tensors' planned arena
offsets; :func:`helpers.engine.codegen.generate_c` calls it for every kind in
:data:`KINDS`. Float QUANTIZE / DEQUANTIZE and the int8 lookup tables are emitted as
integer constants (no floating point in the generated C). May import:
:mod:`helpers.engine.kernels_ext`.
"""
from __future__ import annotations

import numpy as np

from helpers.engine import kernels_ext as X

__all__ = ["KINDS", "emit"]

#: Operator kinds :func:`emit` handles.
KINDS = X.EXT_OPS


def _arr(ctype: str, name: str, values) -> str:
    vals = [str(int(v)) for v in np.asarray(values).ravel()] or ["0"]
    rows = ",\n  ".join(", ".join(vals[i:i + 24]) for i in range(0, len(vals), 24))
    return f"static const {ctype} {name}[{len(vals)}] = {{\n  {rows}\n}};\n"


def _int32(v: int) -> str:
    v = int(v)
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def _dims4(shape) -> list:
    s = [int(d) for d in shape]
    return [1] * (4 - len(s)) + s


def _strides4(shape, out4) -> list:
    """Element strides of a tensor of ``shape`` broadcast to the 4-D output ``out4``."""
    d = _dims4(shape)
    st, acc = [0] * 4, 1
    for i in range(3, -1, -1):
        st[i] = 0 if d[i] == 1 and out4[i] != 1 else acc
        acc *= d[i]
    return st


def emit(s, pre: str, off, nbytes) -> tuple:
    """``(declarations, call)`` of operator spec ``s``; ``pre`` prefixes its constants,
    ``off(t)`` / ``nbytes(t)`` give tensor ``t``'s arena offset and size. Taught in
    06-deployment."""
    p, k = s.params, s.kind
    y = f"tn_arena + {off(s.y)}"
    if k == "STRIDED_SLICE" and "runs" in p:
        ish = [1] * (4 - len(s.in_shapes[0])) + [int(d) for d in s.in_shapes[0]]
        j = lambda v: ", ".join(str(int(a)) for a in v)  # noqa: E731
        st, sp, ln = zip(*p["runs"])
        return ([f"static const tn_slice_t {pre}_p = {{{{{j(ish)}}}, {{{j(st)}}}, {{{j(sp)}}}, "
                 f"{{{j(ln)}}}}};\n"], f"tn_slice_s8(&{pre}_p, tn_arena + {off(s.x[0])}, {y});")
    if k in X.FOLDED_OPS:
        raw = np.ascontiguousarray(p["value"]).view(np.int8)
        return ([f"/* op {s.index}: {k} folded at prepare time */", _arr("int8_t", f"{pre}_v", raw)],
                f"tn_store_const({y}, {pre}_v, {raw.size});")
    x0 = f"tn_arena + {off(s.x[0])}" if s.x else None
    if k == "QUANTIZE":
        n = int(np.prod(s.out_shape))
        if p["mode"] == "float":
            return ([_arr("int32_t", f"{pre}_thr", [_int32(v) for v in p["thr"]])],
                    f"tn_quantize_f32_s8({n}, {pre}_thr, (const int32_t *)({x0}), {y});")
        return ([_arr("int8_t", f"{pre}_lut", p["lut"])], f"tn_lut_s8({n}, {pre}_lut, {x0}, {y});")
    if k in X.UNARY_OPS:
        n = int(np.prod(s.out_shape))
        return ([_arr("int8_t", f"{pre}_lut", p["lut"])], f"tn_lut_s8({n}, {pre}_lut, {x0}, {y});")
    if k == "DEQUANTIZE":
        n = int(np.prod(s.out_shape))
        return ([_arr("int32_t", f"{pre}_tab", [_int32(v) for v in p["table_bits"]])],
                f"tn_dequantize_s8_f32({n}, {pre}_tab, {x0}, (int32_t *)({y}));")
    if k in ("PAD", "PADV2"):
        rank = len(s.in_shapes[0])
        pb = [0] * (4 - rank) + [int(a) for a in p["pads"][:, 0]]
        i4, o4 = _dims4(s.in_shapes[0]), _dims4(s.out_shape)
        j = lambda v: ", ".join(str(int(a)) for a in v)  # noqa: E731
        return ([f"static const tn_pad_t {pre}_p = {{{{{j(i4)}}}, {{{j(o4)}}}, {{{j(pb)}}}, "
                 f"{int(p['value'])}}};\n"], f"tn_pad_s8(&{pre}_p, {x0}, {y});")
    if k == "CONCATENATION":
        ax = p["axis"]
        outer = int(np.prod(s.out_shape[:ax]))
        inner = [int(np.prod(shp[ax:])) for shp in s.in_shapes]
        ptrs = ", ".join(f"tn_arena + {off(t)}" for t in s.x)
        return ([_arr("int32_t", f"{pre}_inner", inner),
                 f"static const int8_t *const {pre}_in[{len(s.x)}] = {{{ptrs}}};\n"],
                f"tn_concat_s8({len(s.x)}, {outer}, {pre}_in, {pre}_inner, {y});")
    if k == "MUL":
        o4 = _dims4(s.out_shape)
        decls, args, xs = [], [], iter(s.x)
        for j in range(2):
            if f"in{j}" in s.consts:
                decls.append(_arr("int8_t", f"{pre}_c{j}", s.consts[f"in{j}"]))
                args.append(f"{pre}_c{j}")
            else:
                args.append(f"tn_arena + {off(next(xs))}")
        sa, sb = _strides4(p["a_shape"], o4), _strides4(p["b_shape"], o4)
        j = lambda v: ", ".join(str(int(a)) for a in v)  # noqa: E731
        decls.append(f"static const tn_mul_t {pre}_p = {{{{{j(o4)}}}, {{{j(sa)}}}, {{{j(sb)}}}, "
                     f"{-p['a_zp']}, {-p['b_zp']}, {p['out_zp']}, {p['mult']}, {p['shift']}, "
                     f"{p['act_min']}, {p['act_max']}}};\n")
        return decls, f"tn_mul_s8(&{pre}_p, {args[0]}, {args[1]}, {y});"
    raise ValueError(f"op {s.index}: {k} has no C emission")  # pragma: no cover

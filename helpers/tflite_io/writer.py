"""The canonical ``.tflite`` writer and its exact size simulation.

Taught in 06-deployment (why our ``.tflite`` bytes are reproducible) and 00-overview (the
flash model counts the bytes this writer would emit). ``canonical_bytes`` re-serialises a
model in a canonical layout; ``SizeBuilder`` / ``PackStub`` replay the same flatbuffers calls
without writing bytes, so the size of a model described only by shapes is exact.
May import: :mod:`helpers.tflite_io.reader`.
"""
from __future__ import annotations

import numpy as np

from helpers.tflite_io.reader import TFLiteFormatError, _schema, read

# ===================================================================== canonical writer
#
# ``canonical_bytes`` re-serialises a model in a canonical layout (used by
# helpers.deploy.to_tflite_int8): names and signature defs dropped, constant
# tensors first (in order of first use), then the non-constant tensors in their
# original relative order (which TFLM's planner tie-breaking depends on), one
# buffer per distinct constant payload (16-byte aligned), every non-constant tensor
# on the empty buffer 0, operator codes in order of first use. ``SizeBuilder``
# replays the same flatbuffers calls without writing bytes, so the size of a model
# described only by shapes (helpers.resources.flash_bytes) is exact.

class SizeBuilder:
    """Duck-typed ``flatbuffers.Builder`` that only tracks the size (fast, no bytes).

    Mirrors the Python flatbuffers builder's alignment, default-skipping and
    vtable de-duplication exactly, for the calls the TFLite schema's ``Pack``
    methods make. Taught in 06-deployment.
    """

    __slots__ = ("off", "minalign", "vtables", "cur", "obj_end", "n_elems", "forceDefaults",
                 "log")

    def __init__(self, initialSize=0):
        self.log = None
        self.off = 0
        self.minalign = 1
        self.vtables = {}
        self.cur = None
        self.obj_end = 0
        self.n_elems = 0
        self.forceDefaults = False

    def Offset(self):
        return self.off

    def Prep(self, size, additional):
        if size > self.minalign:
            self.minalign = size
        self.off += (-(self.off + additional)) & (size - 1)

    def _prepend(self, w):
        self.off += (-self.off) & (w - 1)
        if w > self.minalign:
            self.minalign = w
        self.off += w

    # scalars
    def PrependBool(self, x): self._prepend(1)
    def PrependByte(self, x): self._prepend(1)
    def PrependUint8(self, x): self._prepend(1)
    def PrependInt8(self, x): self._prepend(1)
    def PrependUint16(self, x): self._prepend(2)
    def PrependInt16(self, x): self._prepend(2)
    def PrependUint32(self, x): self._prepend(4)
    def PrependInt32(self, x): self._prepend(4)
    def PrependFloat32(self, x): self._prepend(4)
    def PrependUint64(self, x): self._prepend(8)
    def PrependInt64(self, x): self._prepend(8)
    def PrependFloat64(self, x): self._prepend(8)
    def PrependUOffsetTRelative(self, off): self._prepend(4)
    def PrependSOffsetTRelative(self, off): self._prepend(4)

    def _slot(self, w, slot, x, d):
        if x != d or (self.forceDefaults and d is not None):
            self._prepend(w)
            self.cur[slot] = self.off

    def PrependBoolSlot(self, o, x, d): self._slot(1, o, x, d)
    def PrependByteSlot(self, o, x, d): self._slot(1, o, x, d)
    def PrependUint8Slot(self, o, x, d): self._slot(1, o, x, d)
    def PrependInt8Slot(self, o, x, d): self._slot(1, o, x, d)
    def PrependUint16Slot(self, o, x, d): self._slot(2, o, x, d)
    def PrependInt16Slot(self, o, x, d): self._slot(2, o, x, d)
    def PrependUint32Slot(self, o, x, d): self._slot(4, o, x, d)
    def PrependInt32Slot(self, o, x, d): self._slot(4, o, x, d)
    def PrependFloat32Slot(self, o, x, d): self._slot(4, o, x, d)
    def PrependUint64Slot(self, o, x, d): self._slot(8, o, x, d)
    def PrependInt64Slot(self, o, x, d): self._slot(8, o, x, d)
    def PrependFloat64Slot(self, o, x, d): self._slot(8, o, x, d)

    def PrependUOffsetTRelativeSlot(self, o, x, d):
        if x != d or self.forceDefaults:
            self._prepend(4)
            self.cur[o] = self.off

    def StartVector(self, elem, n, alignment):
        self.n_elems = n
        self.Prep(4, elem * n)
        self.Prep(alignment, elem * n)
        return self.off

    def EndVector(self, numElems=None):
        self.off += 4
        return self.off

    def RawVector(self, nbytes, alignment):
        """A byte vector of ``nbytes`` aligned to ``alignment`` (like pack_buffer)."""
        self.StartVector(1, nbytes, alignment)
        self.off += nbytes
        return self.EndVector()

    def CreateString(self, s, encoding="utf-8", errors="strict"):
        n = len(s.encode(encoding) if isinstance(s, str) else s)
        self.Prep(4, n + 1)
        self.off += n + 1
        return self.EndVector()

    def CreateByteVector(self, x):
        self.Prep(4, len(x))
        self.off += len(x)
        return self.EndVector()

    def CreateNumpyVector(self, x):
        self.StartVector(x.itemsize, x.size, x.dtype.alignment)
        self.off += x.itemsize * x.size
        return self.EndVector()

    def StartObject(self, n):
        self.cur = [0] * n
        self.obj_end = self.off

    def EndObject(self):
        self._prepend(4)  # soffset to the vtable
        obj = self.off
        key = []
        trim = True
        for e in reversed(self.cur):
            if e == 0:
                if trim:
                    continue
            else:
                e = obj - e
                trim = False
            key.append(e)
        key.append(obj - self.obj_end)
        key = tuple(key)
        known = key in self.vtables
        if self.log is not None:
            self.log.append((key, known))
        if not known:
            for _ in range(len(key) + 1):  # field offsets + object size + vtable size
                self._prepend(2)
            self.vtables[key] = self.off
        self.cur = None
        return obj

    def Finish(self, root, file_identifier=None):
        self.Prep(self.minalign, 4 + (4 if file_identifier is not None else 0))
        if file_identifier is not None:
            self.Prep(4, 4)
            self.off += 4
        self._prepend(4)
        return self.off

    def ForceDefaults(self, f):
        self.forceDefaults = f


def _pack_buffer(self, builder):
    """BufferT.Pack with the data vector 16-byte aligned (TFLM reads int32 biases
    in place)."""
    fb = _schema()
    data = None
    if self.data is not None:
        if isinstance(builder, SizeBuilder):
            n = self.data if isinstance(self.data, int) else len(self.data)
            data = builder.RawVector(n, 16)
        else:
            raw = np.asarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head = builder.head - len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            data = builder.EndVector()
    fb.BufferStart(builder)
    if data is not None:
        fb.BufferAddData(builder, data)
    fb.BufferAddOffset(builder, self.offset)
    fb.BufferAddSize(builder, self.size)
    return fb.BufferEnd(builder)


def pack_model(model_t, builder) -> None:
    """``ModelT.Pack`` + ``Finish`` with 16-byte aligned buffers, on a real
    ``flatbuffers.Builder`` or a :class:`SizeBuilder`. Taught in 06-deployment."""
    fb = _schema()
    saved = fb.BufferT.Pack
    fb.BufferT.Pack = _pack_buffer
    try:
        builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    finally:
        fb.BufferT.Pack = saved


def canonical_model_t(model_t):
    """Rewrite a ``ModelT`` (object API) into the canonical layout, in place.

    See the comment above :class:`SizeBuilder`. Only subgraph 0 is supported
    when the model has one subgraph; multi-subgraph models are returned with
    names stripped but otherwise unchanged. Taught in 06-deployment.
    """
    for sg in model_t.subgraphs or []:
        sg.name = None
        for t in sg.tensors or []:
            t.name = None
    model_t.signatureDefs = None
    if not model_t.subgraphs or len(model_t.subgraphs) != 1:
        return model_t
    sg = model_t.subgraphs[0]
    bufs = model_t.buffers or []

    def data_of(t):
        b = bufs[t.buffer] if 0 < t.buffer < len(bufs) else None
        if b is None or b.data is None or len(b.data) == 0:
            return None
        return np.asarray(b.data, np.uint8)

    tensors = sg.tensors or []
    is_const = [data_of(t) is not None for t in tensors]
    order = []
    seen = set()
    for op in sg.operators or []:
        for i in op.inputs if op.inputs is not None else []:
            if i >= 0 and is_const[i] and i not in seen:
                seen.add(i)
                order.append(int(i))
    order += [i for i in range(len(tensors)) if is_const[i] and i not in seen]
    order += [i for i in range(len(tensors)) if not is_const[i]]
    remap = {old: new for new, old in enumerate(order)}
    new_bufs = [fb_buffer(None)]
    payload_idx: dict[bytes, int] = {}
    new_tensors = []
    for old in order:
        t = tensors[old]
        d = data_of(t)
        if d is None:
            t.buffer = 0
        else:
            key = d.tobytes()
            if key not in payload_idx:
                payload_idx[key] = len(new_bufs)
                new_bufs.append(fb_buffer(d))
            t.buffer = payload_idx[key]
        q = t.quantization
        if q is not None and q.scale is None and q.zeroPoint is None and q.min is None \
                and q.max is None and q.details is None:
            t.quantization = None
        new_tensors.append(t)
    sg.tensors = new_tensors
    rm = lambda v: None if v is None else [remap[int(i)] if i >= 0 else -1 for i in v]  # noqa
    for op in sg.operators or []:
        op.inputs = rm(op.inputs)
        op.outputs = rm(op.outputs)
        if op.intermediates is not None:
            op.intermediates = rm(op.intermediates)
    sg.inputs = rm(sg.inputs)
    sg.outputs = rm(sg.outputs)
    # operator codes in order of first use
    codes = model_t.operatorCodes or []
    used = []
    for op in sg.operators or []:
        if op.opcodeIndex not in used:
            used.append(op.opcodeIndex)
    cmap = {old: new for new, old in enumerate(used)}
    model_t.operatorCodes = [codes[i] for i in used]
    for op in sg.operators or []:
        op.opcodeIndex = cmap[op.opcodeIndex]
    # metadata buffers at the end
    for md in model_t.metadata or []:
        b = bufs[md.buffer]
        md.buffer = len(new_bufs)
        new_bufs.append(b)
    model_t.buffers = new_bufs
    return model_t


def fb_buffer(data):
    """A ``BufferT`` holding ``data`` (uint8 array, an int = size only, or None).
    Taught in 06-deployment.
    """
    b = _schema().BufferT()
    b.data = data
    return b


def canonical_bytes(tflite_bytes) -> bytes:
    """Canonical, name-stripped re-serialisation of a ``.tflite`` (see above).
    Taught in 06-deployment.
    """
    import flatbuffers
    read(tflite_bytes)  # clear error on corrupt input
    fb = _schema()
    try:  # the object API reads fields read() does not (signature defs, sparsity, ...)
        m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytes(tflite_bytes), 0))
        canonical_model_t(m)
    except Exception as e:
        raise TFLiteFormatError(f"tflite_bytes: flatbuffer does not parse "
                                f"({type(e).__name__}: {e}); corrupt or truncated file") from e
    bld = flatbuffers.Builder(len(tflite_bytes) + 1024)
    pack_model(m, bld)
    return bytes(bld.Output())


def packed_size(model_t) -> int:
    """Exact size of ``pack_model(model_t)`` without writing it. Taught in 06-deployment."""
    sb = SizeBuilder()
    pack_model(model_t, sb)
    return sb.off


# ------------------------------------------------------------ fast size simulation
# Packing the object API through SizeBuilder is exact but costs ~0.1 ms per
# tensor. The byte-level events a table's Pack emits depend only on which fields
# are present (not on offsets), so they are recorded once per signature and
# replayed with plain arithmetic.

class _RecBuilder:
    """Records the builder calls of a Pack method as events."""

    def __init__(self):
        self.events = []
        self.forceDefaults = False

    def Offset(self):
        return 1 << 20

    def _ev(self, *e):
        self.events.append(e)
        return 1 << 20

    def Prep(self, size, additional): return self._ev("prep", size, additional)

    def __getattr__(self, name):  # Prepend<Type>(x) / Prepend<Type>Slot(o, x, d)
        if name.startswith("Prepend") and name.endswith("Slot"):
            w = _WIDTH[name[7:-4]]

            def slot(o, x, d, _w=w):
                if x != d or (self.forceDefaults and d is not None):
                    self._ev("slot", _w, o)
            return slot
        if name.startswith("Prepend"):
            w = _WIDTH[name[7:]]
            return lambda x, _w=w: self._ev("pre", _w)
        raise AttributeError(name)

    def StartVector(self, elem, n, alignment): return self._ev("svec", elem * n, alignment)
    def EndVector(self, numElems=None): return self._ev("evec")
    def CreateNumpyVector(self, x): return self._ev("vec", x.itemsize * x.size, x.dtype.alignment)

    def CreateString(self, s, encoding="utf-8", errors="strict"):
        n = len(s.encode(encoding) if isinstance(s, str) else s)
        return self._ev("str", n)

    def CreateByteVector(self, x): return self._ev("bvec", len(x))
    def RawVector(self, nbytes, alignment): return self._ev("vec", nbytes, alignment)
    def StartObject(self, n): return self._ev("start", n)
    def EndObject(self): return self._ev("end")


_WIDTH = {"Bool": 1, "Byte": 1, "Uint8": 1, "Int8": 1, "Uint16": 2, "Int16": 2,
          "Uint32": 4, "Int32": 4, "Float32": 4, "Uint64": 8, "Int64": 8, "Float64": 8,
          "UOffsetTRelative": 4, "SOffsetTRelative": 4}


def _replay(sb: "SizeBuilder", events) -> int:
    off = sb.off
    for e in events:
        k = e[0]
        if k == "slot":
            w = e[1]
            off += (-off) & (w - 1)
            off += w
            sb.cur[e[2]] = off
            if w > sb.minalign:
                sb.minalign = w
        elif k == "pre":
            w = e[1]
            off += (-off) & (w - 1)
            off += w
            if w > sb.minalign:
                sb.minalign = w
        elif k == "vec":
            n, a = e[1], e[2]
            off += (-(off + n)) & 3
            off += (-(off + n)) & (a - 1)
            off += n + 4
            if a > sb.minalign:
                sb.minalign = a
            if sb.minalign < 4:
                sb.minalign = 4
        elif k == "start":
            sb.cur = [0] * e[1]
            sb.obj_end = off
        elif k == "end":
            sb.off = off
            sb.EndObject()
            off = sb.off
        else:  # rare events: fall back to the SizeBuilder methods
            sb.off = off
            if k == "prep":
                sb.Prep(e[1], e[2])
            elif k == "svec":
                sb.Prep(4, e[1])
                sb.Prep(e[2], e[1])
            elif k == "evec":
                sb.EndVector()
            elif k == "str":
                sb.CreateString(b"x" * e[1])
            elif k == "bvec":
                sb.CreateByteVector(b"x" * e[1])
            off = sb.off
    sb.off = off
    return off


_TRACES: dict = {}
_MEMO: dict = {}


class PackStub:
    """Stands in for a schema object in a ModelT packed by :class:`SizeBuilder`:
    ``make()`` builds the real object (only the first time a signature is seen);
    its Pack events are cached under ``sig``. ``raw`` (bytes of a buffer payload)
    is emitted first, as a 16-byte aligned vector. Taught in 06-deployment."""

    __slots__ = ("sig", "make", "raw")

    def __init__(self, sig, make, raw=None):
        self.sig, self.make, self.raw = sig, make, raw

    def Pack(self, builder):
        if not isinstance(builder, SizeBuilder):
            raise TypeError("PackStub only packs into a SizeBuilder")
        if self.raw is not None:
            builder.RawVector(self.raw, 16)
        vt = builder.vtables
        mkey = (self.sig, builder.off & 15)
        entries = _MEMO.get(mkey)
        if entries is not None:
            for conds, delta, new_keys, align in entries:
                for k, known in conds:
                    if (k in vt) != known:
                        break
                else:
                    builder.off += delta
                    for k in new_keys:
                        vt[k] = 1
                    if align > builder.minalign:
                        builder.minalign = align
                    return builder.off
        tr = _TRACES.get(self.sig)
        if tr is None:
            rec = _RecBuilder()
            obj = self.make()
            if self.raw is not None:
                _pack_buffer_table(obj, rec, has_data=True)
            else:
                obj.Pack(rec)
            ev = tuple(rec.events)
            align = max([4] + [e[1] for e in ev if e[0] in ("slot", "pre")] +
                        [e[2] for e in ev if e[0] in ("vec", "svec")])
            tr = _TRACES[self.sig] = (ev, align)
        ev, align = tr
        off0 = builder.off
        builder.log = []
        _replay(builder, ev)
        conds = tuple(builder.log)
        builder.log = None
        _MEMO.setdefault(mkey, []).append(
            (conds, builder.off - off0, tuple(k for k, known in conds if not known), align))
        return builder.off


def _pack_buffer_table(obj, builder, has_data):
    fb = _schema()
    fb.BufferStart(builder)
    if has_data:
        fb.BufferAddData(builder, 1 << 20)
    fb.BufferAddOffset(builder, obj.offset)
    fb.BufferAddSize(builder, obj.size)
    return fb.BufferEnd(builder)

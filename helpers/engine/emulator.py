"""Cortex-M emulation: generate C from a .tflite model, build it for a Cortex-M4/M7 with
``ziglang``'s clang, and run the ELF under the ``unicorn`` instruction-level emulator.

Taught in 06-deployment. What it measures, with no board:

* **instructions**, exactly, in total and per operator (markers between ops), by
  counting translated blocks with a block hook and decoding each block's Thumb-2
  instructions once (Unicorn's per-instruction hook skips ``IT`` instructions, so it
  is not used);
* **cycles**, *estimated* from a per-instruction-class Cortex-M4 timing table
  (:data:`CYCLES_M4`, Cortex-M4 TRM figures; branches use the exact taken / not-taken
  outcome recorded from block transitions). Error band and what is not modelled:
  see :data:`CYCLE_MODEL_NOTES`. The Cortex-M7 figure is a rougher heuristic;
* **SRAM** = static data (``.data`` + ``.bss``) + arena + stack high-water (the stack is
  painted before the run and scanned after it);
* **flash** = text + rodata + data initialisers, read from the ELF's sections;
* the **output**, compared bit for bit with TFLite / TFLite-Micro by the tests.

Public API::

    build(tflite_bytes, target="stm32f746zg", plan="inplace", kernels="dsp") -> Build
    run(build_or_tflite_bytes, input, ...) -> EmulationResult
    generate_c(tflite_bytes, plan="inplace", kernels="dsp") -> str
    export_c_array(tflite_bytes, name) -> str
    compile_c(sources, target, out_dir, ...) -> Path           (any C program)
    run_elf(elf_path, target, ...) -> ElfRun                    (any ELF built with our runtime)

Modules of :mod:`helpers.engine`: :mod:`~.kernels` (int8 NumPy kernels),
:mod:`~.interpreter` (arena interpreter), :mod:`~.codegen` (C generation),
:mod:`~.toolchain` (compiler, linker script), :mod:`~.elf`, :mod:`~.thumb` (decoding and
cycle tables) and this module (unicorn runs). May import all of them,
:mod:`helpers.targets` and :mod:`helpers.tflite_io`.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from helpers.engine.codegen import KERNELS, GeneratedC, export_c_array, generate_c
from helpers.engine.elf import ElfImage, read_elf
from helpers.engine.patch import generate_c as _patch_generate_c
from helpers.engine.thumb import _CLASSES, CYCLE_MODEL_NOTES, CYCLES_M4, CYCLES_M7, classify_block
from helpers.engine.toolchain import (CSRC, DEFAULT_STACK_RESERVE, FLASH_BASE, SRAM_BASE,
                                      STACK_PAINT, EmulationError, LinkError,
                                      ModelDoesNotFitError, ToolchainError, _target, compile_c,
                                      linker_script)

__all__ = [
    "ToolchainError", "LinkError", "ModelDoesNotFitError", "EmulationError",
    "CYCLES_M4", "CYCLES_M7", "CYCLE_MODEL_NOTES", "CSRC", "KERNELS",
    "compile_c", "linker_script", "read_elf", "ElfImage", "run_elf", "ElfRun",
    "classify_block", "Build", "EmulationResult", "build", "run", "generate_c", "GeneratedC",
    "export_c_array",
]


# --------------------------------------------------------------------------------------
# Running an ELF under unicorn
# --------------------------------------------------------------------------------------

@dataclass
class ElfRun:
    """Raw result of :func:`run_elf`: instruction and cycle counts per marker segment,
    memory high-water marks and the final memory image accessor. Taught in 06-deployment."""

    instructions: int
    cycles_m4: float
    cycles_m7: float
    segments: list            # per marker id: dict(id, instructions, cycles_m4, cycles_m7, classes)
    classes: dict             # class -> executed count (inference window)
    stack_bytes: int          # stack high-water (painted region scan)
    static_sram_bytes: int
    arena_bytes: int
    flash_bytes: int
    startup_instructions: int
    marker_instructions: int
    blocks: int               # distinct translated blocks executed
    block_executions: int
    memory: dict = field(default_factory=dict, repr=False)  # name -> bytes read after run

    @property
    def sram_bytes(self) -> int:
        return self.static_sram_bytes + self.arena_bytes + self.stack_bytes


def _add_block_hook(uc, fn):
    """Install ``fn(uc_handle, address, size, user_data)`` as a block hook.

    Registers a raw ctypes callback with ``uc_hook_add`` (about 2x less overhead per
    block than unicorn's wrapped ``hook_add``); falls back to ``hook_add``. Returns an
    object that must stay alive while emulating."""
    import ctypes
    from unicorn import UC_HOOK_BLOCK
    try:
        from unicorn.unicorn_py3 import unicorn as _U
        cfunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                                 ctypes.c_void_p)(fn)
        handle = _U.uc_hook_h()
        status = _U.uclib.uc_hook_add(uc._uch, ctypes.byref(handle), UC_HOOK_BLOCK,
                                      ctypes.cast(cfunc, ctypes.c_void_p), ctypes.c_void_p(0),
                                      ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status == 0:
            return (cfunc, handle)
    except (ImportError, AttributeError):
        pass
    return uc.hook_add(UC_HOOK_BLOCK, fn)


def run_elf(elf_path, target, *, writes: dict | None = None, reads: dict | None = None,
            timeout_s: float = 600.0, flash_line_bytes: int = 0) -> ElfRun:
    """Run an ELF built by :func:`compile_c` (with the runtime) on ``target``'s core.

    ``writes``: {symbol_or_address: bytes} written when the program reaches ``tn_ready``
    (after startup), e.g. the model input into the arena. ``reads``: {name: (symbol_or_
    address, nbytes)} read back at ``tn_done``. Instructions between ``tn_ready`` and
    ``tn_done`` are counted exactly and split at each ``tn_marker(id)`` call.
    ``flash_line_bytes`` > 0 also counts, per segment, the data reads from flash and the
    flash line fetches (a read outside the line of the previous flash data read: a
    one-line buffer, no data cache). Taught in 06-deployment.
    """
    from unicorn import Uc, UcError, UC_ARCH_ARM, UC_MODE_THUMB, UC_MODE_MCLASS, UC_HOOK_BLOCK
    from unicorn import arm_const as A

    t = _target(target)
    img = read_elf(elf_path)
    cpu = {"cortex-m4": A.UC_CPU_ARM_CORTEX_M4, "cortex-m7": A.UC_CPU_ARM_CORTEX_M7}[t.core]
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(cpu)
    page = 0x1000
    flash_map = (t.flash_bytes + page - 1) // page * page
    sram_map = (t.sram_bytes + page - 1) // page * page
    uc.mem_map(FLASH_BASE, flash_map)
    uc.mem_map(SRAM_BASE, sram_map)
    flash_img = bytearray(flash_map)
    for paddr, _vaddr, blob, _memsz in img.segments:
        if not blob:
            continue
        uc.mem_write(paddr, bytes(blob))
        if FLASH_BASE <= paddr < FLASH_BASE + flash_map:
            flash_img[paddr - FLASH_BASE:paddr - FLASH_BASE + len(blob)] = blob
    # Paint everything above the statics and arena: only the stack may touch it.
    paint_lo = img.sym("_sstack_reserve")
    stack_top = img.sym("_estack")
    uc.mem_write(paint_lo, bytes([STACK_PAINT]) * (stack_top - paint_lo))

    ready, marker, done = img.sym("tn_ready") & ~1, img.sym("tn_marker") & ~1, img.sym("tn_done") & ~1
    vec = img.sym("tn_vectors")
    sp0, reset = struct.unpack_from("<II", flash_img, vec - FLASH_BASE)

    def addr_of(x):
        return img.sym(x) if isinstance(x, str) else int(x)

    # ---- phase 1: startup to tn_ready (counted separately)
    startup = {}

    def hb_startup(uc_, address, size, ud):
        k = (address << 12) | size
        startup[k] = startup.get(k, 0) + 1

    uc.reg_write(A.UC_ARM_REG_SP, sp0)
    h = uc.hook_add(UC_HOOK_BLOCK, hb_startup)
    try:
        uc.emu_start(reset | 1, ready, timeout=int(timeout_s * 1e6), count=50_000_000)
    except UcError as e:
        raise EmulationError(f"startup faulted at pc={uc.reg_read(A.UC_ARM_REG_PC):#x}: {e}") from e
    uc.hook_del(h)
    if uc.reg_read(A.UC_ARM_REG_PC) & ~1 != ready:
        raise EmulationError("startup did not reach tn_ready")
    for k, v in (writes or {}).items():
        uc.mem_write(addr_of(k), bytes(v))

    # ---- phase 2: inference, counting transitions between blocks
    segs = [{}]                 # segment 0 = before the first marker
    marker_ids = [None]
    cur = segs[0]
    prev = 0

    def hb(_uc, address, size, _ud):
        nonlocal cur, prev
        k = (address << 12) | size
        if address == marker:
            cur = {}
            segs.append(cur)
            marker_ids.append(uc.reg_read(A.UC_ARM_REG_R0))
            fl.append([0, 0])
        tk = (prev << 44) | k
        cur[tk] = cur.get(tk, 0) + 1
        prev = k

    fl = [[0, 0]]  # per segment: flash data reads, flash line fetches
    last_line = [-1]
    if flash_line_bytes:
        from unicorn import UC_HOOK_MEM_READ

        def hr(_uc, _access, address, _size, _value, _ud):
            c = fl[-1]
            c[0] += 1
            line = address // flash_line_bytes
            if line != last_line[0]:
                c[1] += 1
                last_line[0] = line
        uc.hook_add(UC_HOOK_MEM_READ, hr, None, FLASH_BASE, FLASH_BASE + flash_map - 1)
    keep = _add_block_hook(uc, hb)
    try:
        uc.emu_start(ready | 1, done, timeout=int(timeout_s * 1e6))
    except UcError as e:
        raise EmulationError(f"program faulted at pc={uc.reg_read(A.UC_ARM_REG_PC):#x} "
                             f"(marker {marker_ids[-1]}): {e}") from e
    del keep
    pc = uc.reg_read(A.UC_ARM_REG_PC) & ~1
    if pc != done:
        raise EmulationError(f"program stopped at pc={pc:#x} before tn_done (timeout {timeout_s}s)")

    cache: dict = {}

    def stats(k):
        s = cache.get(k)
        if s is None:
            a, size = k >> 12, k & 0xFFF
            code = bytes(flash_img[a - FLASH_BASE:a - FLASH_BASE + size]) if \
                FLASH_BASE <= a < FLASH_BASE + flash_map else bytes(uc.mem_read(a, size))
            s = classify_block(code, a)
            cache[k] = s
        return s

    def cost(prev_k, k, n):
        """Add the branch cost of the *previous* block given that k followed it."""
        if not prev_k:
            return 0.0, 0.0
        br = stats(prev_k)["branch"]
        if br is None:
            return 0.0, 0.0
        kind, fall, _target_addr = br
        taken = (k >> 12) != fall or kind in ("uncond", "call", "indirect", "pop_pc")
        if taken:
            return CYCLES_M4["branch_taken"] * n, CYCLES_M7["branch_taken"] * n
        return CYCLES_M4["branch_not_taken"] * n, CYCLES_M7["branch_not_taken"] * n

    seg_out = []
    tot_cls = {c: 0 for c in _CLASSES}
    total_i = total_c4 = total_c7 = 0.0
    marker_instr = 0
    block_exec = 0
    for sid, seg, fc in zip(marker_ids, segs, fl):
        si = 0
        c4 = c7 = 0.0
        cls = {c: 0 for c in _CLASSES}
        for tk, n in seg.items():
            k = tk & ((1 << 44) - 1)
            prev_k = tk >> 44
            s = stats(k)
            b4, b7 = cost(prev_k, k, n)
            block_exec += n
            if (k >> 12) == marker:
                # marker bodies are harness overhead: excluded, but their exit branch cost too
                marker_instr += s["instructions"] * n
                continue
            if prev_k and (prev_k >> 12) == marker:
                b4 = b7 = 0.0
            si += s["instructions"] * n
            c4 += s["cycles_fixed"] * n + b4
            c7 += s["cycles_fixed_m7"] * n + b7
            for c, v in s["classes"].items():
                if v:
                    cls[c] += v * n
        seg_out.append({"id": sid, "instructions": int(si), "cycles_m4": c4, "cycles_m7": c7,
                        "classes": cls, "flash_reads": fc[0], "flash_line_fetches": fc[1]})
        total_i += si
        total_c4 += c4
        total_c7 += c7
        for c, v in cls.items():
            tot_cls[c] += v
    # the final block (tn_done) ends the run: its branch cost was never added; fine.
    startup_i = sum(stats(k)["instructions"] * n for k, n in startup.items())

    # ---- stack high-water: lowest painted byte that changed
    region = bytes(uc.mem_read(paint_lo, stack_top - paint_lo))
    arr = np.frombuffer(region, np.uint8)
    touched = np.nonzero(arr != STACK_PAINT)[0]
    stack_bytes = int(stack_top - (paint_lo + touched[0])) if len(touched) else 0
    if len(touched) and touched[0] == 0:
        raise EmulationError(f"the stack reached the bottom of its {stack_top - paint_lo} B "
                             f"region (it may have overwritten the arena); build with a larger "
                             f"stack_reserve")
    mem = {}
    for name, (where, nbytes) in (reads or {}).items():
        mem[name] = bytes(uc.mem_read(addr_of(where), int(nbytes)))
    return ElfRun(instructions=int(total_i), cycles_m4=float(total_c4), cycles_m7=float(total_c7),
                  segments=seg_out, classes=tot_cls, stack_bytes=stack_bytes,
                  static_sram_bytes=img.static_sram_bytes, arena_bytes=img.arena_bytes,
                  flash_bytes=img.flash_bytes, startup_instructions=int(startup_i),
                  marker_instructions=int(marker_instr), blocks=len(cache),
                  block_executions=int(block_exec), memory=mem)


# --------------------------------------------------------------------------------------
# Build and run a model
# --------------------------------------------------------------------------------------

@dataclass
class Build:
    """A model compiled for one target: the ELF plus the layout to run it.
    Taught in 06-deployment.
    """

    elf: str
    c_file: str
    target: str
    core: str
    clock_hz: int
    sram_bytes: int
    flash_bytes_total: int
    generated: GeneratedC = field(repr=False)
    stack_reserve: int = DEFAULT_STACK_RESERVE

    def _t(self):
        return _target({"name": self.target, "core": self.core, "clock_hz": self.clock_hz,
                        "sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes_total})


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "tinynas-emulator"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build(tflite_bytes, target="stm32f746zg", plan: str = "inplace", kernels: str = "dsp",
          out_dir=None, stack_reserve: int = DEFAULT_STACK_RESERVE, opt: str = "-O2",
          schedule=None, weights: str = "dense") -> Build:
    """Generate C for the model (:func:`generate_c`) and compile it with the kernels and
    runtime for ``target`` (a :mod:`helpers.targets` name, Target, or dict). Raises
    :class:`ModelDoesNotFitError` when the model does not fit the target's flash or SRAM.
    ``schedule``: a :class:`helpers.resources.patch_plan.PatchSchedule` (or ``(split, grid)``)
    runs the first stage patch by patch (:func:`helpers.engine.patch.generate_c`; ``plan``
    is then unused). ``weights="sparse"``: each layer in the smallest of dense,
    row-compressed and bitmask; ``"sparse-all"`` / ``"bitmask"``: every CONV / DEPTHWISE / FC
    layer in that format (:mod:`~.sparse_weights`; not combined with ``schedule``).
    Taught in 06-deployment."""
    t = _target(target)
    if schedule is not None and weights != "dense":
        raise ValueError(f"weights={weights!r} with a patch schedule: sparse weights run layer by layer only")
    gen = generate_c(tflite_bytes, plan=plan, kernels=kernels, weights=weights) if schedule is None else \
        _patch_generate_c(tflite_bytes, schedule, kernels=kernels)
    key = hashlib.sha1(gen.source.encode() + repr((t, stack_reserve, opt)).encode()).hexdigest()[:12]
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
    else:  # a fresh folder per build: concurrent builds never share files
        d = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=_cache_dir()))
    c_file = d / "model.c"
    c_file.write_text(gen.source)
    srcs = [c_file, CSRC / "tn_kernels.c", CSRC / "tn_kernels_ext.c"] + (
        [CSRC / "tn_kernels_dsp.c"] if kernels == "dsp" else [])
    srcs += [CSRC / "tn_sparse.c"] if weights != "dense" else []
    if '#include "tn_int4.h"' in gen.source:  # 4-bit filters (helpers.engine.int4)
        srcs.append(CSRC / "tn_int4.c")
    elf = compile_c(srcs, t, d, opt=opt, stack_reserve=stack_reserve, name="model")
    return Build(elf=str(elf), c_file=str(c_file), target=t.name, core=t.core,
                 clock_hz=t.clock_hz, sram_bytes=t.sram_bytes, flash_bytes_total=t.flash_bytes,
                 generated=gen, stack_reserve=stack_reserve)


@dataclass
class EmulationResult:
    """One emulated inference (MLTK-profiler style: summary, per-op table, dict).

    Measured: ``output`` (int8), ``instructions`` (exact), ``sram`` parts, ``flash_bytes``.
    Estimated: ``cycles`` (from the per-class timing table of the target's core; M4 table
    documented in :data:`CYCLE_MODEL_NOTES`, M7 a rougher heuristic) and ``latency_ms``.
    Taught in 06-deployment.
    """

    output: np.ndarray
    target: str
    core: str
    plan: str
    kernels: str
    instructions: int
    cycles: float
    cycles_m4: float
    latency_ms: float
    macs: int
    flash_bytes: int
    static_sram_bytes: int
    arena_bytes: int
    stack_bytes: int
    plan_peak_bytes: int
    col_bytes: int
    per_op: list = field(default_factory=list)
    classes: dict = field(default_factory=dict)
    #: with ``run(..., flash_wait_states=True)``: the target's documented flash wait states
    #: charged once per flash line fetched by a data read (see :func:`run`); else 0 / None
    flash_stall_cycles: float = 0.0
    latency_ms_with_flash: float | None = None

    @property
    def sram_bytes(self) -> int:
        """Measured SRAM = static data (.data + .bss) + arena + stack high-water."""
        return self.static_sram_bytes + self.arena_bytes + self.stack_bytes

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions / max(self.macs, 1)

    def summary(self) -> str:
        return "\n".join([
            f"Emulated {self.core} ({self.target}), plan '{self.plan}', {self.kernels} kernels",
            f"  instructions {self.instructions:,} (exact) for {self.macs:,} MACs "
            f"= {self.instructions_per_mac:.2f} instr/MAC",
            f"  cycles ~{self.cycles:,.0f} (estimate; see CYCLE_MODEL_NOTES) "
            f"= ~{self.latency_ms:.2f} ms at the target clock",
            f"  SRAM {self.sram_bytes:,} B measured = static {self.static_sram_bytes:,} "
            f"(incl. im2col {self.col_bytes:,}) + arena {self.arena_bytes:,} "
            f"(plan peak {self.plan_peak_bytes:,}) + stack {self.stack_bytes:,}",
            f"  flash {self.flash_bytes:,} B (text + rodata + data)"])

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output"] = self.output.tolist()
        d["sram_bytes"] = self.sram_bytes
        d["instructions_per_mac"] = self.instructions_per_mac
        return d

    def table(self):
        """Per-operator table: instructions, estimated cycles, MACs, instr/MAC."""
        import pandas as pd
        df = pd.DataFrame(self.per_op)
        if len(df):
            df["instr_per_mac"] = df["instructions"] / df["macs"].where(df["macs"] > 0)
        return df


def run(model, x, target="stm32f746zg", plan: str = "inplace", kernels: str = "dsp",
        timeout_s: float = 600.0, schedule=None, flash_wait_states: bool = False) -> EmulationResult:
    """Emulate one inference of ``model`` (a :class:`Build`, or .tflite bytes which are
    built first with :func:`build`) on int8 input ``x``.

    ``flash_wait_states=True`` (targets with documented ``flash_wait_states``) also counts
    the data reads from flash (weights, constants) and charges the target's wait states
    once per flash line fetched (``flash_line_bytes``, one-line buffer, no data-cache hits:
    an upper bound of data stalls; instruction fetches assumed served by the ART / I-cache,
    the kernels being small loops): ``flash_stall_cycles``, ``latency_ms_with_flash`` and a
    per-op ``flash_stall_cycles``. Taught in 06-deployment."""
    b = model if isinstance(model, Build) else build(model, target=target, plan=plan,
                                                      kernels=kernels, schedule=schedule)
    g = b.generated
    x = np.asarray(x)
    in_dt = np.dtype(g.input_dtype)
    if in_dt == np.float32 and np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    elif x.dtype != in_dt:
        raise ValueError(f"x must be {in_dt} (the model input's type; for int8 quantise with "
                         f"the model's input scale and zero point first), got {x.dtype}")
    if x.nbytes != g.input_bytes:
        raise ValueError(f"x has {x.size} values; the model input {g.input_shape} needs "
                         f"{g.input_bytes // in_dt.itemsize}")
    img = read_elf(b.elf)
    arena = img.sym("tn_arena")
    tt = b._t()
    if flash_wait_states:
        try:  # the named board, with its documented memory facts (helpers.targets)
            named = _target(b.target)
            if (named.core, named.flash_bytes, named.sram_bytes) == (tt.core, tt.flash_bytes,
                                                                      tt.sram_bytes):
                tt = named
        except (KeyError, ValueError):
            pass
    ws = getattr(tt, "flash_wait_states", None) if flash_wait_states else None
    r = run_elf(b.elf, tt, writes={arena + g.input_offset: x.tobytes()},
                reads={"out": (arena + g.output_offset, g.output_bytes)}, timeout_s=timeout_s,
                flash_line_bytes=int(getattr(tt, "flash_line_bytes", 0) or 0) if ws else 0)
    out = np.frombuffer(r.memory["out"], np.dtype(g.output_dtype)).reshape(g.output_shape).copy()
    segs = {s["id"]: s for s in r.segments if s["id"] is not None}
    per_op = []
    macs = 0
    for pos, o in enumerate(g.ops):
        s = segs.get(pos, {"instructions": 0, "cycles_m4": 0.0, "cycles_m7": 0.0, "classes": {}})
        macs += o["macs"]
        cyc = s["cycles_m4"] if b.core == "cortex-m4" else s["cycles_m7"]
        per_op.append({"pos": pos, "op": o["op"], "kind": o["kind"], "inplace": o["inplace"],
                       "macs": o["macs"], "instructions": s["instructions"],
                       "cycles": cyc, "cycles_m4": s["cycles_m4"],
                       "mul": s["classes"].get("mul", 0), "load": s["classes"].get("load", 0),
                       "store": s["classes"].get("store", 0),
                       "flash_reads": s.get("flash_reads", 0),
                       "flash_stall_cycles": float((ws or 0) * s.get("flash_line_fetches", 0))})
    # the inference = the op segments (excludes the few instructions before the first
    # marker and after the last one, and the marker calls themselves)
    instructions = int(sum(o["instructions"] for o in per_op))
    cycles = float(sum(o["cycles"] for o in per_op))
    cycles_m4 = float(sum(o["cycles_m4"] for o in per_op))
    arena_sym = img.symbols.get("tn_arena", (0, 0))[1] or g.arena_bytes
    static = img.static_sram_bytes
    return EmulationResult(output=out, target=b.target, core=b.core, plan=g.plan,
                           kernels=g.kernels, instructions=instructions, cycles=cycles,
                           cycles_m4=cycles_m4, latency_ms=cycles / b.clock_hz * 1e3,
                           macs=macs, flash_bytes=img.flash_bytes, static_sram_bytes=static,
                           arena_bytes=int(arena_sym), stack_bytes=r.stack_bytes,
                           plan_peak_bytes=g.plan_peak_bytes, col_bytes=g.col_bytes,
                           per_op=per_op, classes=r.classes,
                           flash_stall_cycles=sum(o["flash_stall_cycles"] for o in per_op),
                           latency_ms_with_flash=None if ws is None else
                           (cycles + sum(o["flash_stall_cycles"] for o in per_op)) / b.clock_hz * 1e3)

"""Cortex-M harness: generate C from a .tflite model, build it for a Cortex-M4/M7 with
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
"""
from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "ToolchainError", "LinkError", "ModelDoesNotFitError", "EmulationError",
    "CYCLES_M4", "CYCLES_M7", "CYCLE_MODEL_NOTES", "CSRC",
    "compile_c", "linker_script", "read_elf", "ElfImage", "run_elf", "ElfRun",
    "classify_block", "Build", "EmulationResult", "build", "run", "generate_c",
    "export_c_array",
]

CSRC = Path(__file__).with_name("csrc")
FLASH_BASE = 0x08000000
SRAM_BASE = 0x20000000
STACK_PAINT = 0xA5
DEFAULT_STACK_RESERVE = 4096


class ToolchainError(RuntimeError):
    """The C compiler (``python -m ziglang cc``) is missing or failed to compile."""


class LinkError(ToolchainError):
    """The link failed for another reason than the model not fitting."""


class ModelDoesNotFitError(ValueError):
    """The program does not fit the target's flash or SRAM (the link failed)."""


class EmulationError(RuntimeError):
    """The emulated program faulted or did not reach ``tn_done``."""


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------

_CORES = ("cortex-m4", "cortex-m7")


@dataclass(frozen=True)
class _T:
    name: str
    core: str
    clock_hz: int
    sram_bytes: int
    flash_bytes: int


def _target(target) -> _T:
    """Accept a name (helpers.targets.get), a Target-like object or a dict."""
    if isinstance(target, str):
        from helpers import targets as _targets
        target = _targets.get(target)
    if isinstance(target, dict):
        missing = [k for k in ("name", "core", "clock_hz", "sram_bytes", "flash_bytes")
                   if k not in target]
        if missing:
            raise ValueError(f"target dict is missing fields {missing}")
        t = _T(str(target["name"]), str(target["core"]), int(target["clock_hz"]),
               int(target["sram_bytes"]), int(target["flash_bytes"]))
    else:
        try:
            t = _T(str(target.name), str(target.core), int(target.clock_hz),
                   int(target.sram_bytes), int(target.flash_bytes))
        except AttributeError as e:
            raise ValueError(f"target must be a name, a helpers.targets.Target or a dict with "
                             f"name, core, clock_hz, sram_bytes, flash_bytes; got {target!r}") from e
    if t.core not in _CORES:
        raise ValueError(f"target core must be one of {list(_CORES)}, got {t.core!r}")
    return t


# --------------------------------------------------------------------------------------
# Toolchain
# --------------------------------------------------------------------------------------

_TRIPLES = {"cortex-m4": ("thumb-freestanding-eabi", "cortex_m4"),
            "cortex-m7": ("thumb-freestanding-eabihf", "cortex_m7")}


def _zig_cmd() -> list:
    try:
        import ziglang  # noqa: F401
    except ImportError as e:  # pragma: no cover - ziglang is in requirements.txt
        raise ToolchainError("the C compiler comes from the 'ziglang' PyPI package "
                             "(pip install ziglang); it is not installed") from e
    return [sys.executable, "-m", "ziglang", "cc"]


def _zig_env() -> dict:
    env = dict(os.environ)
    # zig keeps a compile cache; keep it out of the user's home when that is read-only.
    cache = Path(tempfile.gettempdir()) / "tinynas-zig-cache"
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache))
    env.setdefault("ZIG_LOCAL_CACHE_DIR", str(cache))
    return env


def linker_script(target, stack_reserve: int = DEFAULT_STACK_RESERVE) -> str:
    """The linker script for ``target``: FLASH and RAM regions of the target's sizes,
    and ``stack_reserve`` bytes kept free for the stack (the link fails otherwise)."""
    t = _target(target)
    if stack_reserve < 0:
        raise ValueError(f"stack_reserve must be >= 0, got {stack_reserve}")
    text = (CSRC / "link.ld.in").read_text()
    for k, v in {"NAME": t.name, "CORE": t.core, "FLASH": str(t.flash_bytes),
                 "SRAM": str(t.sram_bytes), "STACK": str(int(stack_reserve))}.items():
        text = text.replace(f"@{k}@", v)
    return text


_OVERFLOW_RE = re.compile(r"section '([^']+)' will not fit in region '(\w+)': overflowed by (\d+) bytes")


def compile_c(sources, target, out_dir, *, defines: dict | None = None, opt: str = "-O2",
              stack_reserve: int = DEFAULT_STACK_RESERVE, include_runtime: bool = True,
              name: str = "program") -> Path:
    """Compile and link C ``sources`` (paths) for ``target``'s core into ``out_dir/name.elf``.

    Uses ``python -m ziglang cc -target thumb-freestanding-eabi -mcpu=cortex_m4|m7``,
    freestanding (no libc), with :func:`linker_script`. The runtime
    (``csrc/tn_runtime.c``: startup, ``tn_ready`` / ``tn_marker`` / ``tn_done``) is added
    unless ``include_runtime=False``; the program must define ``int tn_main(void)``.
    Raises :class:`ModelDoesNotFitError` when the image does not fit flash or SRAM.
    """
    t = _target(target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    triple, cpu = _TRIPLES[t.core]
    ld = out_dir / f"{name}.ld"
    ld.write_text(linker_script(t, stack_reserve))
    elf = out_dir / f"{name}.elf"
    srcs = [str(Path(s)) for s in sources]
    if include_runtime:
        srcs.append(str(CSRC / "tn_runtime.c"))
    cmd = _zig_cmd() + ["-target", triple, f"-mcpu={cpu}", opt, "-g0", "-fomit-frame-pointer", "-ffreestanding",
                        "-fno-builtin", "-nostdlib", "-fno-exceptions", "-fno-unwind-tables",
                        "-fno-asynchronous-unwind-tables", "-Wall", "-Wno-unused-function",
                        f"-I{CSRC}", "-T", str(ld), "-Wl,--gc-sections", "-ffunction-sections",
                        "-fdata-sections", "-Wl,-e,Reset_Handler",
                        "-o", str(elf)]
    for k, v in (defines or {}).items():
        cmd.append(f"-D{k}" if v is None else f"-D{k}={v}")
    cmd += srcs
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_zig_env())
    if proc.returncode != 0:
        msg = proc.stderr + proc.stdout
        over = _OVERFLOW_RE.findall(msg)
        if over:
            parts = "; ".join(f"section {s} overflows {r} by {n} bytes" for s, r, n in over)
            region = {r for _, r, _ in over}
            raise ModelDoesNotFitError(
                f"the program does not fit target {t.name!r} ({t.sram_bytes:,} B SRAM, "
                f"{t.flash_bytes:,} B flash, {stack_reserve:,} B reserved for the stack): "
                f"{parts}. " + ("Too much SRAM (static data + arena + stack reserve). "
                                if "RAM" in region else "") +
                ("Too much flash (code + weights). " if "FLASH" in region else "") +
                "Choose a smaller model, another plan, or a larger target.")
        if "ld.lld" in msg or "undefined symbol" in msg:
            raise LinkError(f"link failed for {t.name}:\n{msg[-4000:]}")
        raise ToolchainError(f"compilation failed ({' '.join(cmd[:8])} ...):\n{msg[-4000:]}")
    return elf


# --------------------------------------------------------------------------------------
# ELF reading (32-bit little-endian ARM; no external tools)
# --------------------------------------------------------------------------------------

@dataclass
class ElfImage:
    """What the harness needs from an ELF: loadable segments, sections and symbols."""

    path: str
    entry: int
    segments: list          # (paddr, vaddr, bytes, memsz)
    sections: dict          # name -> (addr, size, type, flags)
    symbols: dict           # name -> (value, size)

    def sym(self, name: str) -> int:
        if name not in self.symbols:
            raise EmulationError(f"symbol {name!r} not found in {self.path}; was the program "
                                 f"linked with helpers/csrc/tn_runtime.c?")
        return self.symbols[name][0]

    def section_size(self, *names) -> int:
        return sum(self.sections[n][1] for n in names if n in self.sections)

    @property
    def flash_bytes(self) -> int:
        """text + rodata + data initialisers (+ vector table, exception index)."""
        return self.section_size(".isr_vector", ".text", ".rodata", ".ARM.exidx", ".data")

    @property
    def static_sram_bytes(self) -> int:
        """.data + .bss (statics other than the arena)."""
        return self.section_size(".data", ".bss")

    @property
    def arena_bytes(self) -> int:
        return self.section_size(".tn_arena")


def read_elf(path) -> ElfImage:
    """Parse an ARM ELF32 file (segments, sections, symbols)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ValueError(f"{path} is not a 32-bit little-endian ELF file")
    (e_entry, e_phoff, e_shoff) = struct.unpack_from("<III", data, 24)
    (e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from("<HHHHH", data, 42)
    segs = []
    for i in range(e_phnum):
        p_type, p_off, p_vaddr, p_paddr, p_filesz, p_memsz, _, _ = struct.unpack_from(
            "<8I", data, e_phoff + i * e_phentsize)
        if p_type == 1:
            segs.append((p_paddr, p_vaddr, data[p_off:p_off + p_filesz], p_memsz))
    shdrs = [struct.unpack_from("<10I", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    shstr = shdrs[e_shstrndx]

    def cstr(off):
        end = data.index(b"\0", off)
        return data[off:end].decode()

    sections, symbols = {}, {}
    for sh in shdrs:
        name = cstr(shstr[4] + sh[0])
        sections[name] = (sh[3], sh[5], sh[1], sh[2])
    for sh in shdrs:
        if sh[1] == 2:  # SHT_SYMTAB
            strtab = shdrs[sh[6]]
            for k in range(sh[5] // 16):
                st_name, st_value, st_size, st_info, _, _ = struct.unpack_from(
                    "<IIIBBH", data, sh[4] + 16 * k)
                if st_name:
                    symbols[cstr(strtab[4] + st_name)] = (st_value, st_size)
    return ElfImage(str(path), e_entry, segs, sections, symbols)


# --------------------------------------------------------------------------------------
# Thumb-2 decoding into instruction classes, and the cycle tables
# --------------------------------------------------------------------------------------

#: Cortex-M4 cycles per instruction class (ARM Cortex-M4 TRM r0p1, table 3-1), zero wait
#: states. ``P`` (pipeline refill after a taken branch) is 1-3 cycles; we use 2.
#: ``N`` = number of registers for LDM/STM/PUSH/POP.
CYCLES_M4 = {
    "alu": 1,            # MOV, ADD, LSL, CMP, logical, extend, bitfield, SSAT/USAT, parallel add
    "mul": 1,            # MUL, MLA, MLS, SMULxy, SMLAxy, SMLAD/SMUAD, SMMUL ... (single cycle)
    "mul_long": 1,       # SMULL, UMULL, SMLAL, UMLAL, SMLALD (1 cycle on M4)
    "div": 7,            # SDIV/UDIV: 2-12, data dependent; mid value
    "load": 2,           # LDR/LDRB/LDRH/LDRSB/LDRSH: 2, or 1 when pipelined after a load/store
    "load_pipelined": 1,
    "store": 1,          # STR*: 1 (write buffer; 2 when followed by a dependent load, not modelled)
    "load_dual": 3,      # LDRD/STRD: 1 + N with N = 2
    "multiple": 1,       # LDM/STM/PUSH/POP: 1 + N (N added per register)
    "branch_taken": 3,   # B, BL, BX, CBZ taken, POP {pc}: 1 + P, P = 2
    "branch_not_taken": 1,
    "it": 1,             # IT (can fold to 0 on silicon)
    "nop": 1,
    "other": 1,          # system, hints, anything unclassified
    "fpu": 1,            # not used by our kernels
}

#: Rough Cortex-M7 heuristic (dual issue, 6-stage pipeline, branch prediction): about
#: half the cost of simple ALU / multiply instructions, loads 1 when from TCM, predicted
#: loop branches cheap. Much rougher than the M4 table; use for ordering, not timing.
CYCLES_M7 = {"alu": 0.6, "mul": 1, "mul_long": 1, "div": 7, "load": 1, "load_pipelined": 1,
             "store": 1, "load_dual": 2, "multiple": 1, "branch_taken": 2,
             "branch_not_taken": 1, "it": 0.5, "nop": 0.5, "other": 1, "fpu": 1}

CYCLE_MODEL_NOTES = (
    "Cycle estimate = sum over executed instructions of a per-class cost (CYCLES_M4, from "
    "the ARM Cortex-M4 Technical Reference Manual, table 3-1), with branches costed by "
    "their recorded outcome (taken 1+P with P=2, not taken 1), loads costed 1 when they "
    "directly follow another load/store in the same block (address/data phase pipelining), "
    "LDM/STM/PUSH/POP 1+N. Not modelled: flash wait states and the ART/cache, the 1-3 "
    "cycle spread of P (alignment and width of the branch target), data-dependent SDIV "
    "(2-12, costed 7), IT folding, store-buffer stalls, interrupts. Expected error band on "
    "a zero-wait-state Cortex-M4 (code and data in 0-WS memory): about +/-15% (branch "
    "refill P alone spans -1..+1 cycle per taken branch); on boards running from flash "
    "with wait states the real count is higher (up to ~+30%). Not validated against a "
    "board in this project. The Cortex-M7 figure (CYCLES_M7) is a rougher heuristic for a "
    "dual-issue core: treat it as +/-40%.")

_CLASSES = ("alu", "mul", "mul_long", "div", "load", "store", "load_dual", "multiple",
            "branch", "it", "nop", "other", "fpu")


def _decode_one(hw1: int, hw2: int):
    """Classify one Thumb / Thumb-2 instruction.

    Returns (length_bytes, class, extra) where class is one of ``_CLASSES`` and extra is
    the register count for LDM/STM/PUSH/POP (and +1 if it loads PC), or for branches a
    tuple (kind, target) with kind 'uncond' | 'cond' | 'indirect' | 'call' | 'cbz'.
    """
    top5 = hw1 >> 11
    if top5 in (0b11101, 0b11110, 0b11111):
        return (4,) + _decode32(hw1, hw2)
    # ---- 16-bit
    op6 = hw1 >> 10
    if (hw1 >> 14) == 0b00:          # shift, add, sub, move, compare
        return 2, "alu", 0
    if op6 == 0b010000:               # data processing (incl. MULS)
        if ((hw1 >> 6) & 0xF) == 0b1101:
            return 2, "mul", 0
        return 2, "alu", 0
    if op6 == 0b010001:               # special data / branch exchange
        if ((hw1 >> 8) & 3) == 3:     # BX / BLX
            return 2, "branch", ("call" if hw1 & 0x80 else "indirect", None)
        if ((hw1 >> 8) & 3) == 2 and (hw1 & 0x87) == 0x87:  # MOV pc, rX
            return 2, "branch", ("indirect", None)
        return 2, "alu", 0
    if (hw1 >> 11) == 0b01001:        # LDR literal
        return 2, "load", 0
    if (hw1 >> 12) == 0b0101:         # load/store register offset
        opB = (hw1 >> 9) & 7
        return 2, ("store" if opB in (0, 1, 2) else "load"), 0
    if (hw1 >> 13) == 0b011 or (hw1 >> 12) in (0b1000, 0b1001):  # imm offset, SP-relative
        return 2, ("load" if hw1 & 0x0800 else "store"), 0
    if (hw1 >> 12) == 0b1010:         # ADR, ADD SP
        return 2, "alu", 0
    if (hw1 >> 12) == 0b1011:         # miscellaneous
        sub = (hw1 >> 8) & 0xF
        if sub in (0b0001, 0b0011, 0b1001, 0b1011):  # CBZ / CBNZ
            imm = ((hw1 >> 9) & 1) << 6 | ((hw1 >> 3) & 0x1F) << 1
            return 2, "branch", ("cbz", imm)
        if sub in (0b0100, 0b0101):   # PUSH
            return 2, "multiple", bin(hw1 & 0x1FF).count("1")
        if sub in (0b1100, 0b1101):   # POP (bit 8 = pc)
            n = bin(hw1 & 0x1FF).count("1")
            if hw1 & 0x100:
                return 2, "branch", ("pop_pc", n)
            return 2, "multiple", n
        if sub == 0b1111:
            return 2, ("it" if hw1 & 0xF else "nop"), 0
        if sub == 0b1110:             # BKPT
            return 2, "other", 0
        return 2, "alu", 0            # ADD/SUB SP, extend, REV, CPS
    if (hw1 >> 12) == 0b1100:         # LDM / STM
        return 2, "multiple", bin(hw1 & 0xFF).count("1")
    if (hw1 >> 12) == 0b1101:         # conditional branch, UDF, SVC
        cond = (hw1 >> 8) & 0xF
        if cond >= 0b1110:
            return 2, "other", 0
        imm = hw1 & 0xFF
        if imm & 0x80:
            imm -= 0x100
        return 2, "branch", ("cond", imm * 2 + 4)
    if (hw1 >> 11) == 0b11100:        # B unconditional
        imm = hw1 & 0x7FF
        if imm & 0x400:
            imm -= 0x800
        return 2, "branch", ("uncond", imm * 2 + 4)
    return 2, "other", 0


def _decode32(hw1: int, hw2: int):
    op1 = (hw1 >> 11) & 3
    op2 = (hw1 >> 4) & 0x7F
    if op1 == 0b01:
        if (op2 & 0b1100100) == 0b0000000:     # load/store multiple
            n = bin(hw2 & 0xFFFF).count("1")
            if (hw1 >> 4) & 1 and hw2 & 0x8000:  # LDM with PC
                return "branch", ("pop_pc", n)
            return "multiple", n
        if (op2 & 0b1100100) == 0b0000100:     # load/store dual, exclusive, table branch
            if (hw1 & 0xFFF0) == 0xE8D0 and (hw2 & 0xFFE0) == 0xF000:
                return "branch", ("indirect", None)   # TBB/TBH
            if (op2 & 0b0010010) in (0b0000010, 0b0010000, 0b0010010) or (op2 >> 3) & 1:
                return "load_dual", 2
            return ("load" if (hw1 >> 4) & 1 else "store"), 0
        if (op2 & 0b1100000) == 0b0100000:     # data processing (shifted register)
            return "alu", 0
        return "fpu", 0                          # coprocessor
    if op1 == 0b10:
        if hw2 & 0x8000:                         # branches and miscellaneous control
            op = (hw2 >> 12) & 7
            s = (hw1 >> 10) & 1
            j1, j2 = (hw2 >> 13) & 1, (hw2 >> 11) & 1
            if op & 0b101 == 0b101:             # BL
                i1, i2 = 1 - (j1 ^ s), 1 - (j2 ^ s)
                imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
                if s:
                    imm -= 1 << 25
                return "branch", ("call", imm + 4)
            if op & 0b101 == 0b001:             # B.W
                i1, i2 = 1 - (j1 ^ s), 1 - (j2 ^ s)
                imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
                if s:
                    imm -= 1 << 25
                return "branch", ("uncond", imm + 4)
            if op & 0b101 == 0b000:
                cond = (hw1 >> 6) & 0xF
                if cond < 0b1110:                # B<c>.W
                    imm = (s << 20) | (j2 << 19) | (j1 << 18) | ((hw1 & 0x3F) << 12) | ((hw2 & 0x7FF) << 1)
                    if s:
                        imm -= 1 << 21
                    return "branch", ("cond", imm + 4)
                return "other", 0                 # MSR/MRS/hints/barriers
            return "other", 0
        return "alu", 0                          # data processing (modified / plain immediate)
    # op1 == 0b11
    if (op2 & 0b1110001) == 0b0000000:          # store single
        return "store", 0
    if (op2 & 0b1100111) in (0b0000001, 0b0000011, 0b0000101):  # load byte/half/word
        return "load", 0
    if (op2 & 0b1110000) == 0b0100000:          # data processing (register)
        return "alu", 0
    if (op2 & 0b1111000) == 0b0110000:          # multiply, MLA, SMLAD, SMLAxy ...
        return "mul", 0
    if (op2 & 0b1111000) == 0b0111000:          # long multiply, divide
        if op2 & 0b0000111 in (0b001, 0b011):    # SDIV (0111001) / UDIV (0111011)
            return "div", 0
        return "mul_long", 0
    if op2 & 0b1000000:
        return "fpu", 0
    return "other", 0


def classify_block(code: bytes, address: int = 0):
    """Decode a block of Thumb-2 code. Returns a dict with ``instructions``, ``classes``
    (class -> count), ``cycles_fixed`` (M4 cycles of everything but the final branch),
    ``cycles_fixed_m7`` and ``branch`` ((kind, fall_through_address, target) or None for
    a block that does not end in a branch)."""
    n = len(code)
    i = 0
    classes = {c: 0 for c in _CLASSES}
    cyc4 = 0.0
    cyc7 = 0.0
    prev_mem = False
    branch = None
    count = 0
    while i < n:
        hw1 = code[i] | (code[i + 1] << 8)
        hw2 = (code[i + 2] | (code[i + 3] << 8)) if i + 3 < n else 0
        length, cls, extra = _decode_one(hw1, hw2)
        count += 1
        classes[cls] += 1
        is_mem = cls in ("load", "store")
        if cls == "load":
            cyc4 += CYCLES_M4["load_pipelined"] if prev_mem else CYCLES_M4["load"]
            cyc7 += CYCLES_M7["load"]
        elif cls == "multiple":
            cyc4 += CYCLES_M4["multiple"] + extra
            cyc7 += CYCLES_M7["multiple"] + extra * 0.5
        elif cls == "branch":
            kind, arg = extra
            if kind == "pop_pc":
                cyc4 += 1 + arg  # 1 + N, plus the refill below
                cyc7 += 1 + arg * 0.5
            elif kind == "call":
                pass
            if i + length >= n:
                target = None
                if kind in ("cond", "uncond", "call") and arg is not None:
                    target = address + i + arg
                elif kind == "cbz":
                    target = address + i + 4 + arg
                branch = (kind, address + i + length, target)
            else:  # a branch in the middle of a block (should not happen): cost as taken
                cyc4 += CYCLES_M4["branch_taken"]
                cyc7 += CYCLES_M7["branch_taken"]
        else:
            cyc4 += CYCLES_M4[cls]
            cyc7 += CYCLES_M7[cls]
        prev_mem = is_mem
        i += length
    return {"instructions": count, "classes": classes, "cycles_fixed": cyc4,
            "cycles_fixed_m7": cyc7, "branch": branch}


# --------------------------------------------------------------------------------------
# Running an ELF under unicorn
# --------------------------------------------------------------------------------------

@dataclass
class ElfRun:
    """Raw result of :func:`run_elf`: instruction and cycle counts per marker segment,
    memory high-water marks and the final memory image accessor."""

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
            timeout_s: float = 600.0) -> ElfRun:
    """Run an ELF built by :func:`compile_c` (with the runtime) on ``target``'s core.

    ``writes``: {symbol_or_address: bytes} written when the program reaches ``tn_ready``
    (after startup), e.g. the model input into the arena. ``reads``: {name: (symbol_or_
    address, nbytes)} read back at ``tn_done``. Instructions between ``tn_ready`` and
    ``tn_done`` are counted exactly and split at each ``tn_marker(id)`` call.
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
        tk = (prev << 44) | k
        cur[tk] = cur.get(tk, 0) + 1
        prev = k

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
    for sid, seg in zip(marker_ids, segs):
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
                        "classes": cls})
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
# Code generation: .tflite -> one C file (TinyEngine-style straight-line program)
# --------------------------------------------------------------------------------------

KERNELS = ("plain", "dsp")


def _c_array(ctype: str, name: str, values, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    if not vals:
        vals = ["0"]
    body = ",\n  ".join(", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line))
    return f"static const {ctype} {name}[{len(vals)}] = {{\n  {body}\n}};\n"


@dataclass
class GeneratedC:
    """C source of one model plus the layout the host needs to run it."""

    source: str
    plan: str
    kernels: str
    arena_bytes: int
    plan_peak_bytes: int
    input_offset: int
    input_bytes: int
    input_shape: tuple
    output_offset: int
    output_bytes: int
    output_shape: tuple
    col_bytes: int
    ops: list                # per marker position: dict(op, kind, macs, inplace)
    weight_bytes: int


def generate_c(tflite_bytes, plan: str = "inplace", kernels: str = "dsp") -> GeneratedC:
    """Generate one C file for ``tflite_bytes``: weights, biases, multipliers and op
    parameters as ``const`` arrays (flash), one static arena of the plan's size (SRAM)
    with every tensor at the plan's offset, and ``tn_main()``: a straight-line sequence of
    kernel calls with a ``tn_marker(i)`` before op ``i`` (in the spirit of TinyEngine's
    generated code). ``plan``: ``"tflm"``, ``"reordered"``, ``"inplace"`` (or a plan
    object); ``kernels``: ``"plain"`` or ``"dsp"``. Taught in 06-deployment."""
    from helpers import kernels as K
    from helpers import tflite_io

    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {list(KERNELS)}, got {kernels!r}")
    if isinstance(plan, str) and plan not in ("tflm", "reordered", "inplace", "naive"):
        raise ValueError(f"plan must be one of ['tflm', 'reordered', 'inplace'], got {plan!r}")
    m = tflite_io.read(tflite_bytes)
    specs = {s.index: s for s in K.prepare(tflite_bytes)}
    pl = K._get_plan(tflite_bytes, plan)
    plan_name = getattr(pl, "name", str(plan))
    arena = K._plan_arena_bytes(pl)
    scratch = {int(o): (int(off), int(sz)) for o, off, sz in (getattr(pl, "scratch", []) or [])}
    dsp = kernels == "dsp"
    out = ["/* Generated by helpers.emulator.generate_c: do not edit.",
           f" * {len(pl.order)} operators, memory plan '{plan_name}' (arena {arena} B), "
           f"{kernels} kernels. */",
           '#include "tn_kernels.h"', "",
           "void tn_ready(void);", "void tn_marker(uint32_t id);", "",
           f"#define TN_ARENA_BYTES {max(arena, 4)}",
           '__attribute__((section(".tn_arena"), aligned(16))) int8_t tn_arena[TN_ARENA_BYTES];',
           ""]
    calls = []
    ops = []
    col_bytes = 0
    weight_bytes = 0

    def off(t):
        return int(pl.offsets[t])

    def nbytes(t):
        return m.tensors[t].nbytes

    for pos, oi in enumerate(pl.order):
        s = specs[oi]
        p = s.params
        pre = f"op{oi}"
        inplace = False
        x0 = s.x[0]
        if s.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            ih, iw, ic = s.in_shapes[0]
            oh, ow, oc = s.out_shape
            w = s.consts["w"]
            bias = s.consts["bias"].astype(np.int64)
            inplace = s.kind == "DEPTHWISE_CONV_2D" and off(s.y) == off(x0)
            out.append(f"/* op {oi}: {s.kind} {s.in_shapes[0]} -> {s.out_shape}, "
                       f"k {p['kh']}x{p['kw']} s {p['sh']} {'in place' if inplace else ''} */")
            out.append(_c_array("int8_t", f"{pre}_w", w))
            weight_bytes += w.size
            if dsp and s.kind == "CONV_2D":
                wsum = w.reshape(oc, -1).astype(np.int64).sum(axis=1)
                bias = bias + (-p["in_zp"]) * wsum
                if np.any(np.abs(bias) >= 2 ** 31):
                    raise ValueError(f"op {oi}: folded bias overflows int32")
                ksize = p["kh"] * p["kw"] * ic
                if not (p["kh"] == 1 and p["kw"] == 1 and p["pt"] == 0 and p["pl"] == 0):
                    col_bytes = max(col_bytes, ksize)
            out.append(_c_array("int32_t", f"{pre}_b", bias))
            out.append(_c_array("int32_t", f"{pre}_m", p["mult"]))
            out.append(_c_array("int32_t", f"{pre}_s", p["shift"]))
            dm = p.get("depth_multiplier", 1)
            out.append(f"static const tn_conv_t {pre}_p = {{{ih}, {iw}, {ic}, {oh}, {ow}, {oc}, "
                       f"{p['kh']}, {p['kw']}, {p['sh']}, {p['sw']}, {p['dh']}, {p['dw']}, "
                       f"{p['pt']}, {p['pl']}, {dm}, {-p['in_zp']}, {p['out_zp']}, "
                       f"{p['act_min']}, {p['act_max']}}};\n")
            args = f"&{pre}_p, tn_arena + {off(x0)}, {pre}_w, {pre}_b, {pre}_m, {pre}_s"
            if inplace:
                if oi not in scratch:
                    raise ValueError(f"plan {plan_name!r} runs op {oi} in place but has no "
                                     f"scratch buffer for it")
                so, ssz = scratch[oi]
                if ssz < oh * ow:
                    raise ValueError(f"plan scratch for op {oi} is {ssz} B, needs {oh * ow}")
                calls.append(f"tn_dwconv_inplace_s8({args}, tn_arena + {so});")
            elif s.kind == "CONV_2D":
                calls.append(f"tn_conv2d_s8_dsp({args}, tn_arena + {off(s.y)}, tn_col);" if dsp
                             else f"tn_conv2d_s8({args}, tn_arena + {off(s.y)});")
            else:
                calls.append(f"tn_dwconv_s8{'_dsp' if dsp else ''}({args}, tn_arena + {off(s.y)});")
        elif s.kind == "FULLY_CONNECTED":
            n, = s.in_shapes[0]
            co, = s.out_shape
            if p["w_zp"] != 0:
                raise ValueError(f"op {oi}: FULLY_CONNECTED with a weight zero point is not "
                                 f"supported by the C kernels")
            w = s.consts["w"]
            bias = s.consts["bias"].astype(np.int64)
            if dsp:
                bias = bias + (-p["in_zp"]) * w.astype(np.int64).sum(axis=1)
            out.append(f"/* op {oi}: FULLY_CONNECTED {n} -> {co} */")
            out.append(_c_array("int8_t", f"{pre}_w", w))
            weight_bytes += w.size
            out.append(_c_array("int32_t", f"{pre}_b", bias))
            out.append(_c_array("int32_t", f"{pre}_m", p["mult"]))
            out.append(_c_array("int32_t", f"{pre}_s", p["shift"]))
            if dsp:
                calls.append(f"tn_fc_s8_dsp({n}, {co}, tn_arena + {off(x0)}, {pre}_w, {pre}_b, "
                             f"{p['out_zp']}, {pre}_m, {pre}_s, {p['act_min']}, {p['act_max']}, "
                             f"tn_arena + {off(s.y)});")
            else:
                calls.append(f"tn_fc_s8({n}, {co}, tn_arena + {off(x0)}, {pre}_w, {pre}_b, "
                             f"{-p['in_zp']}, {p['out_zp']}, {pre}_m, {pre}_s, {p['act_min']}, "
                             f"{p['act_max']}, tn_arena + {off(s.y)});")
        elif s.kind == "ADD":
            n = int(np.prod(s.out_shape))
            out.append(f"static const tn_add_t {pre}_p = {{{n}, {-p['a_zp']}, {-p['b_zp']}, "
                       f"{p['out_zp']}, {p['left_shift']}, {p['a_mult']}, {p['a_shift']}, "
                       f"{p['b_mult']}, {p['b_shift']}, {p['out_mult']}, {p['out_shift']}, "
                       f"{p['act_min']}, {p['act_max']}}};\n")
            calls.append(f"tn_add_s8(&{pre}_p, tn_arena + {off(s.x[0])}, tn_arena + "
                         f"{off(s.x[1])}, tn_arena + {off(s.y)});")
        elif s.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            ih, iw, c = s.in_shapes[0]
            oh, ow, _ = s.out_shape
            out.append(f"static const tn_pool_t {pre}_p = {{{ih}, {iw}, {c}, {oh}, {ow}, "
                       f"{p['kh']}, {p['kw']}, {p['sh']}, {p['sw']}, {p['pt']}, {p['pl']}, "
                       f"{p['act_min']}, {p['act_max']}}};\n")
            fn = "tn_avgpool_s8" if s.kind == "AVERAGE_POOL_2D" else "tn_maxpool_s8"
            calls.append(f"{fn}(&{pre}_p, tn_arena + {off(x0)}, tn_arena + {off(s.y)});")
        elif s.kind == "MEAN":
            ih, iw, c = s.in_shapes[0]
            out.append(f"static const tn_mean_t {pre}_p = {{{ih * iw}, {c}, {p['in_zp']}, "
                       f"{p['out_zp']}, {p['mult_n']}, {p['shift_n']}}};\n")
            calls.append(f"tn_mean_s8(&{pre}_p, tn_arena + {off(x0)}, tn_arena + {off(s.y)});")
        elif s.kind == "REDUCE_MAX":
            ih, iw, c = s.in_shapes[0]
            calls.append(f"tn_reduce_max_s8({ih * iw}, {c}, tn_arena + {off(x0)}, "
                         f"tn_arena + {off(s.y)});")
        elif s.kind == "RESHAPE":
            calls.append(f"tn_copy_s8(tn_arena + {off(s.y)}, tn_arena + {off(x0)}, {nbytes(s.y)});")
        elif s.kind == "SOFTMAX":
            rows, n = s.in_shapes[0]
            out.append(f"static const tn_softmax_t {pre}_p = {{{rows}, {n}, {p['beta_mult']}, "
                       f"{p['beta_shift']}, {p['diff_min']}}};\n")
            calls.append(f"tn_softmax_s8(&{pre}_p, tn_arena + {off(x0)}, tn_arena + {off(s.y)});")
        else:  # pragma: no cover - prepare() rejects unsupported ops
            raise ValueError(f"op {oi}: {s.kind} not supported by the C generator")
        if not inplace and s.kind != "RESHAPE":
            yo, yn = off(s.y), nbytes(s.y)
            for t in s.x:
                a, n_ = off(t), nbytes(t)
                if a < yo + yn and yo < a + n_:
                    raise ValueError(f"plan {plan_name!r}: op {oi} ({s.kind}) output overlaps "
                                     f"its input tensor {t}; only depthwise ops run in place")
        ops.append({"op": oi, "kind": s.kind, "macs": int(s.macs), "inplace": inplace})
    if dsp:
        out.append(f"static int8_t tn_col[{max(col_bytes, 4)}];  /* im2col of one output pixel */\n")
    out.append("int tn_main(void) {")
    out.append("  tn_ready();")
    for pos, c in enumerate(calls):
        out.append(f"  tn_marker({pos}); {c}")
    out.append(f"  tn_marker({len(calls)});")
    out.append("  return 0;\n}\n")
    tin, tout = m.inputs[0], m.outputs[0]
    return GeneratedC(source="\n".join(out), plan=plan_name, kernels=kernels, arena_bytes=arena,
                      plan_peak_bytes=int(getattr(pl, "peak_bytes", arena)),
                      input_offset=off(tin), input_bytes=nbytes(tin),
                      input_shape=tuple(m.tensors[tin].shape), output_offset=off(tout),
                      output_bytes=nbytes(tout), output_shape=tuple(m.tensors[tout].shape),
                      col_bytes=col_bytes if dsp else 0, ops=ops, weight_bytes=int(weight_bytes))


# --------------------------------------------------------------------------------------
# Build and run a model
# --------------------------------------------------------------------------------------

@dataclass
class Build:
    """A model compiled for one target: the ELF plus the layout to run it."""

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
        return _T(self.target, self.core, self.clock_hz, self.sram_bytes, self.flash_bytes_total)


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "tinynas-emulator"
    d.mkdir(parents=True, exist_ok=True)
    return d


def build(tflite_bytes, target="stm32f746zg", plan: str = "inplace", kernels: str = "dsp",
          out_dir=None, stack_reserve: int = DEFAULT_STACK_RESERVE, opt: str = "-O2") -> Build:
    """Generate C for the model (:func:`generate_c`) and compile it with the kernels and
    runtime for ``target`` (a :mod:`helpers.targets` name, Target, or dict). Raises
    :class:`ModelDoesNotFitError` when the model does not fit the target's flash or SRAM.
    Taught in 06-deployment."""
    t = _target(target)
    gen = generate_c(tflite_bytes, plan=plan, kernels=kernels)
    key = hashlib.sha1(gen.source.encode() + repr((t, stack_reserve, opt)).encode()).hexdigest()[:12]
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
    else:  # a fresh folder per build: concurrent builds never share files
        d = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=_cache_dir()))
    c_file = d / "model.c"
    c_file.write_text(gen.source)
    srcs = [c_file, CSRC / "tn_kernels.c"] + ([CSRC / "tn_kernels_dsp.c"] if kernels == "dsp" else [])
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
        timeout_s: float = 600.0) -> EmulationResult:
    """Emulate one inference of ``model`` (a :class:`Build`, or .tflite bytes which are
    built first with :func:`build`) on int8 input ``x``. Taught in 06-deployment."""
    b = model if isinstance(model, Build) else build(model, target=target, plan=plan,
                                                      kernels=kernels)
    g = b.generated
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"x must be int8 (quantise with the model's input scale and zero "
                         f"point first), got {x.dtype}")
    if x.size != g.input_bytes:
        raise ValueError(f"x has {x.size} values; the model input {g.input_shape} needs "
                         f"{g.input_bytes}")
    img = read_elf(b.elf)
    arena = img.sym("tn_arena")
    r = run_elf(b.elf, b._t(), writes={arena + g.input_offset: x.astype(np.int8).tobytes()},
                reads={"out": (arena + g.output_offset, g.output_bytes)}, timeout_s=timeout_s)
    out = np.frombuffer(r.memory["out"], np.int8).reshape(g.output_shape).copy()
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
                       "store": s["classes"].get("store", 0)})
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
                           per_op=per_op, classes=r.classes)


# --------------------------------------------------------------------------------------
# Plain C array export (for TFLite-Micro users)
# --------------------------------------------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def export_c_array(tflite_bytes, name: str = "g_model") -> str:
    """The .tflite file as a C source defining ``const unsigned char name[]`` (16-byte
    aligned, as TFLite-Micro requires) and ``const unsigned int name_len``, like
    ``xxd -i``. Taught in 06-deployment."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"name must be a C identifier (letters, digits, _; not starting with "
                         f"a digit), got {name!r}")
    if isinstance(tflite_bytes, (str, os.PathLike)):
        tflite_bytes = Path(tflite_bytes).read_bytes()
    from helpers import tflite_io
    tflite_io.read(tflite_bytes)  # raises TFLiteFormatError on corrupt bytes
    data = bytes(tflite_bytes)
    lines = [f"/* {name}: TFLite flatbuffer, {len(data)} bytes. Generated by "
             f"helpers.emulator.export_c_array. */",
             "#include <stdint.h>", "",
             "#ifdef __GNUC__", f"__attribute__((aligned(16)))", "#endif",
             f"const unsigned char {name}[] = {{"]
    for i in range(0, len(data), 12):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + 12]) + ",")
    lines.append("};")
    lines.append(f"const unsigned int {name}_len = {len(data)};")
    return "\n".join(lines) + "\n"

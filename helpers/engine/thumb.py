"""Thumb-2 decoding into instruction classes, and the Cortex-M cycle tables.

Taught in 06-deployment (how emulated instructions become estimated cycles). Pure Python;
imports no other module.
"""
from __future__ import annotations

# --------------------------------------------------------------------------------------
# Thumb-2 decoding into instruction classes, and the cycle tables
# --------------------------------------------------------------------------------------

#: Cortex-M4 cycles per instruction class, every entry from the ARM Cortex-M4 Technical
#: Reference Manual (r0p1, DDI 0439, section 3.3.1 table 3-1 "Cortex-M4 instruction set
#: summary"), zero wait states; nothing here is fitted to a measured latency. Where the TRM
#: gives a range the middle is used: ``P`` (pipeline refill after a taken branch, "1-3
#: cycles" depending on target alignment and width) = 2; SDIV/UDIV "2-12" = 7. ``N`` =
#: number of registers for LDM/STM/PUSH/POP (1 + N). Memory wait states are not in this
#: table: the board's flash wait states (helpers.targets, from the STM32 reference manuals)
#: are charged separately by ``emulator.run(..., flash_wait_states=True)``.
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
#: loop branches cheap. ARM publishes no per-instruction cycle table for the Cortex-M7
#: (its TRM, DDI 0489, gives none), so these values are NOT documented facts: a heuristic
#: for ordering models, not timing.
CYCLES_M7 = {"alu": 0.6, "mul": 1, "mul_long": 1, "div": 7, "load": 1, "load_pipelined": 1,
             "store": 1, "load_dual": 2, "multiple": 1, "branch_taken": 2,
             "branch_not_taken": 1, "it": 0.5, "nop": 0.5, "other": 1, "fpu": 1}

CYCLE_MODEL_NOTES = (
    "Cycle estimate = sum over executed instructions of a per-class cost (CYCLES_M4, from "
    "the ARM Cortex-M4 Technical Reference Manual, table 3-1), with branches costed by "
    "their recorded outcome (taken 1+P with P=2, not taken 1), loads costed 1 when they "
    "directly follow another load/store in the same block (address/data phase pipelining), "
    "LDM/STM/PUSH/POP 1+N, all at zero wait states. Optionally (emulator.run(..., "
    "flash_wait_states=True)) the board's documented flash wait states are charged once per "
    "flash line fetched by a data read (no data-cache hits). Not modelled: the ART data "
    "cache, the 1-3 cycle spread of P, data-dependent SDIV (2-12, costed 7), IT folding, "
    "store-buffer stalls, interrupts. Measured against the MLPerf Tiny v0.5 reference "
    "latencies on the NUCLEO-L4R5ZI (TFLite-Micro + CMSIS-NN; results/20261202-latency-"
    "honesty): estimate / published 0.48-0.66 at zero wait states, 0.70-0.88 with the flash "
    "wait states; part of that gap is the different software. The Cortex-M7 figure "
    "(CYCLES_M7) is a heuristic (ARM publishes no M7 cycle table): rank models with it.")

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
    a block that does not end in a branch). Taught in 06-deployment."""
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

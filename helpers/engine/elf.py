"""Reading a 32-bit little-endian ARM ELF (sections, symbols) with no external tools.

Taught in 06-deployment (flash and static SRAM of a build). Imports no other module.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from helpers.engine.toolchain import EmulationError

# --------------------------------------------------------------------------------------
# ELF reading (32-bit little-endian ARM; no external tools)
# --------------------------------------------------------------------------------------

@dataclass
class ElfImage:
    """What the harness needs from an ELF: loadable segments, sections and symbols.
    Taught in 06-deployment.
    """

    path: str
    entry: int
    segments: list          # (paddr, vaddr, bytes, memsz)
    sections: dict          # name -> (addr, size, type, flags)
    symbols: dict           # name -> (value, size)

    def sym(self, name: str) -> int:
        if name not in self.symbols:
            raise EmulationError(f"symbol {name!r} not found in {self.path}; was the program "
                                 f"linked with helpers/engine/csrc/tn_runtime.c?")
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
    """Parse an ARM ELF32 file (segments, sections, symbols). Taught in 06-deployment."""
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

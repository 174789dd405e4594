"""The C toolchain for Cortex-M: ``ziglang``'s clang, our linker script, and its errors.

Taught in 06-deployment. :func:`compile_c` builds any C program with our runtime
(``csrc/``) for a Cortex-M4 or M7 target; a program that does not fit the target's flash or
SRAM fails with :class:`ModelDoesNotFitError`. May import: :mod:`helpers.targets`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers.targets import Target, as_target

CSRC = Path(__file__).with_name("csrc")
FLASH_BASE = 0x08000000
SRAM_BASE = 0x20000000
STACK_PAINT = 0xA5
DEFAULT_STACK_RESERVE = 4096

class ToolchainError(RuntimeError):
    """The C compiler (``python -m ziglang cc``) is missing or failed to compile.
    Taught in 06-deployment.
    """


class LinkError(ToolchainError):
    """The link failed for another reason than the model not fitting. Taught in 06-deployment."""


class ModelDoesNotFitError(ValueError):
    """The program does not fit the target's flash or SRAM (the link failed).
    Taught in 06-deployment.
    """


class EmulationError(RuntimeError):
    """The emulated program faulted or did not reach ``tn_done``. Taught in 06-deployment."""




# --------------------------------------------------------------------------------------
# Toolchain
# --------------------------------------------------------------------------------------

_CORES = ("cortex-m4", "cortex-m7")


def _target(target) -> Target:
    """A Cortex-M4/M7 :class:`helpers.targets.Target` from a name, a Target or a dict."""
    t = as_target(target)
    if t.core not in _CORES:
        raise ValueError(f"target core must be one of {list(_CORES)}, got {t.core!r}")
    return t


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
    and ``stack_reserve`` bytes kept free for the stack (the link fails otherwise).
    Taught in 06-deployment."""
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
    Taught in 06-deployment.
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

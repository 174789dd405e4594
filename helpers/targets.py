"""MCU targets: core, clock, SRAM and flash, each with its source.

Taught in 00-overview. ``get("stm32f746")`` returns a :class:`Target`; names are
case-insensitive and a few aliases are accepted (``stm32f746`` = ``stm32f746zg``).
``reserve="tflm"`` subtracts TensorFlow Lite Micro's runtime overhead as MicroNets
measured it (4 KB SRAM, 37 KB flash), so ``sram_budget`` / ``flash_budget`` are what
the model itself may use. KB = 1024 bytes throughout.

The bottom layer: imports no other module of the package.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["Target", "get", "names", "table", "UnknownTargetError", "RESERVES"]

KB = 1024
MB = 1024 * 1024


class UnknownTargetError(KeyError):
    """Raised for a target name that is not one of :func:`names`. Taught in 00-overview."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class Target:
    """One microcontroller board. Taught in 00-overview."""

    name: str
    board: str
    core: str            # "cortex-m4" or "cortex-m7"
    clock_hz: int
    sram_bytes: int
    flash_bytes: int
    source: str
    used_by: str = ""
    reserve: str = "none"
    reserved_sram_bytes: int = 0
    reserved_flash_bytes: int = 0
    flash_wait_states: int | None = None   # at clock_hz, from the reference manual (None: not known)
    flash_line_bytes: int = 0              # bytes one flash read returns to the CPU side
    memory_source: str = ""

    @property
    def sram_budget(self) -> int:
        """SRAM the model may use after the reserved runtime overhead."""
        return self.sram_bytes - self.reserved_sram_bytes

    @property
    def flash_budget(self) -> int:
        """Flash the model may use after the reserved runtime overhead."""
        return self.flash_bytes - self.reserved_flash_bytes

    def fits(self, sram_bytes: int, flash_bytes: int) -> bool:
        """Whether a model with this peak SRAM and flash fits the budgets."""
        return sram_bytes <= self.sram_budget and flash_bytes <= self.flash_budget

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(sram_budget=self.sram_budget, flash_budget=self.flash_budget)
        return d

    def __str__(self) -> str:
        return (f"{self.board} ({self.core}, {self.clock_hz / 1e6:.0f} MHz): "
                f"{self.sram_bytes // KB} KB SRAM, {self.flash_bytes // KB} KB flash"
                + (f"; reserve {self.reserve}: model budget {self.sram_budget:,} B SRAM, "
                   f"{self.flash_budget:,} B flash" if self.reserve != "none" else ""))


_ANCHORS = "MCUNet (Lin et al. 2020) / MicroNets (Banbury et al. 2021) as listed in shared/anchors.md"
_TARGETS = {
    "stm32f412": Target("stm32f412", "STM32F412", "cortex-m4", 100_000_000, 256 * KB, 1 * MB,
                        "ST datasheet DS11139 (STM32F412xE/G); board used by " + _ANCHORS, "MCUNet"),
    "stm32f446re": Target("stm32f446re", "STM32F446RE", "cortex-m4", 180_000_000, 128 * KB, 512 * KB,
                          "ST datasheet DS10693 (STM32F446xC/E); " + _ANCHORS, "MicroNets S"),
    "stm32f746zg": Target("stm32f746zg", "STM32F746ZG", "cortex-m7", 216_000_000, 320 * KB, 1 * MB,
                          "ST datasheet DS10916 (STM32F745xx/746xx); " + _ANCHORS,
                          "MCUNet default, MicroNets M"),
    "stm32f767zi": Target("stm32f767zi", "STM32F767ZI", "cortex-m7", 216_000_000, 512 * KB, 2 * MB,
                          "ST datasheet DS11532 (STM32F765xx/767xx); " + _ANCHORS, "MicroNets L"),
    "stm32h743": Target("stm32h743", "STM32H743", "cortex-m7", 480_000_000, 512 * KB, 2 * MB,
                        "ST datasheet DS12110 (STM32H743xI; 512 KB AXI SRAM counted, as MCUNet does); "
                        + _ANCHORS, "MCUNet, TinyEngine"),
    "nucleo-l4r5zi": Target("nucleo-l4r5zi", "NUCLEO-L4R5ZI", "cortex-m4", 120_000_000, 640 * KB, 2 * MB,
                            "ST datasheet DS12023 (STM32L4R5xx); MLPerf Tiny v0.5 reference platform",
                            "MLPerf Tiny reference"),
    "nrf52840": Target("nrf52840", "nRF52840", "cortex-m4", 64_000_000, 256 * KB, 1 * MB,
                       "Nordic nRF52840 Product Specification v1.7 (Arm Cortex-M4F, 64 MHz)",
                       "Arduino Nano 33 BLE Sense (TinyML courses)"),
}
#: Flash read latency at each board's clock (documented, not fitted): wait states from the
#: reference manual's "number of wait states according to CPU clock (HCLK) frequency" table
#: at 2.7-3.6 V (L4+: range 1 boost mode), and the width of one flash read (F4: 128-bit
#: flash interface; L4+: 64-bit; F7: the Cortex-M7 L1 cache line, 32 B).
_MEMORY = {
    "stm32f412": (3, 16, "RM0402 (STM32F412) flash access control: 3 WS for 90 < HCLK <= 100 MHz; "
                         "128-bit flash reads, ART accelerator"),
    "stm32f446re": (5, 16, "RM0390 (STM32F446) table 5: 5 WS for 150 < HCLK <= 180 MHz; 128-bit "
                           "flash reads, ART accelerator"),
    "stm32f746zg": (7, 32, "RM0385 (STM32F75x/74x) table 5: 7 WS for 210 < HCLK <= 216 MHz; Cortex-M7 "
                           "TRM: 32-byte L1 cache lines (4 KB I / 4 KB D cache)"),
    "stm32f767zi": (7, 32, "RM0410 (STM32F76x/77x) table 7: 7 WS for 210 < HCLK <= 216 MHz; Cortex-M7 "
                           "TRM: 32-byte L1 cache lines (16 KB I / 16 KB D cache)"),
    "nucleo-l4r5zi": (5, 8, "RM0432 (STM32L4+) table 12: 5 WS for 100 < HCLK <= 120 MHz in range 1 "
                            "boost mode; 64-bit flash reads, ART accelerator (instruction cache, "
                            "prefetch)"),
}
_TARGETS = {k: replace(t, flash_wait_states=_MEMORY[k][0], flash_line_bytes=_MEMORY[k][1],
                       memory_source=_MEMORY[k][2]) if k in _MEMORY else t
            for k, t in _TARGETS.items()}
_ALIASES = {"stm32f746": "stm32f746zg", "f746": "stm32f746zg", "stm32f446": "stm32f446re",
            "f446": "stm32f446re", "stm32f767": "stm32f767zi", "f767": "stm32f767zi",
            "f412": "stm32f412", "h743": "stm32h743", "stm32l4r5zi": "nucleo-l4r5zi",
            "l4r5": "nucleo-l4r5zi", "nrf52": "nrf52840"}

RESERVES = {
    "none": (0, 0, "nothing reserved"),
    "tflm": (4 * KB, 37 * KB,
             "TensorFlow Lite Micro runtime overhead, 4 KB SRAM + 37 KB flash: published "
             "(MicroNets, Banbury et al. 2021)"),
}


def names() -> list[str]:
    """Canonical target names. Taught in 00-overview."""
    return list(_TARGETS)


def get(name: str, reserve: str = "none") -> Target:
    """The :class:`Target` called ``name`` (case-insensitive; aliases accepted).

    ``reserve`` is ``"none"`` or ``"tflm"`` (subtract TFLM's runtime overhead from
    the budgets). Taught in 00-overview.
    """
    if isinstance(name, Target):
        target = name
    else:
        key = str(name).strip().lower().replace("_", "-")
        key = _ALIASES.get(key, key)
        if key not in _TARGETS:
            raise UnknownTargetError(
                f"unknown target {name!r}; TARGET must be one of {names()} "
                f"(aliases: {sorted(_ALIASES)})")
        target = _TARGETS[key]
    if reserve not in RESERVES:
        raise ValueError(f"reserve must be one of {list(RESERVES)}, got {reserve!r}")
    sram, flash, _ = RESERVES[reserve]
    return replace(target, reserve=reserve, reserved_sram_bytes=sram, reserved_flash_bytes=flash)


def as_target(target) -> Target:
    """A :class:`Target` from a name (see :func:`get`), a ``Target`` or a dict / object with
    ``name``, ``core``, ``clock_hz``, ``sram_bytes`` and ``flash_bytes`` (a custom board).

    Taught in 06-deployment (the emulator takes any of them).
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, str):
        return get(target)
    fields = ("name", "core", "clock_hz", "sram_bytes", "flash_bytes")
    if isinstance(target, dict):
        missing = [k for k in fields if k not in target]
        if missing:
            raise ValueError(f"target dict is missing fields {missing}")
        get_ = target.__getitem__
    else:
        missing = [k for k in fields if not hasattr(target, k)]
        if missing:
            raise ValueError(f"target must be a name, a helpers.targets.Target or a dict with "
                             f"{', '.join(fields)}; got {target!r}")
        get_ = lambda k: getattr(target, k)  # noqa: E731
    return Target(name=str(get_("name")), board=str(get_("name")), core=str(get_("core")),
                  clock_hz=int(get_("clock_hz")), sram_bytes=int(get_("sram_bytes")),
                  flash_bytes=int(get_("flash_bytes")), source="custom target")


def table(reserve: str = "none"):
    """All targets as a pandas DataFrame (KB columns, clock in MHz, source).
    Taught in 00-overview.
    """
    import pandas as pd

    rows = []
    for n in names():
        t = get(n, reserve)
        rows.append({"target": t.name, "board": t.board, "core": t.core,
                     "clock_MHz": t.clock_hz / 1e6, "SRAM_KB": t.sram_bytes / KB,
                     "flash_KB": t.flash_bytes / KB,
                     "model_SRAM_budget_KB": t.sram_budget / KB,
                     "model_flash_budget_KB": t.flash_budget / KB,
                     "used_by": t.used_by, "source": t.source})
    return pd.DataFrame(rows).set_index("target")

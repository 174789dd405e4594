"""The profiler command: ``python -m helpers.profile MODEL.tflite --target stm32f746zg``.

Taught in 06-deployment (Part "Bring your own model"). For any int8 ``.tflite`` (also with
the converter's float I/O wrapper) it prints whether the model fits the target's SRAM and
flash and by how much, and a per-layer table (operator, output shape, MACs, parameters,
live SRAM at that operator under the memory plan, and with ``--emulate`` the emulated
cycles and milliseconds of each operator when the engine supports the op set); ``--csv`` /
``--json`` write the table / the whole report. :func:`profile_model` is the same as a
function (a :class:`ModelReport`). Peak SRAM is the plan's layout end (``tflm``: TFLite-Micro's
arena head, measured equal on the standard models; TFLM's persistent tail is not included);
flash is the file's size, every byte attributed (:func:`helpers.resources.flash_file_breakdown`),
beside the deployable image without names, min/max arrays, metadata and signature defs.

May import: every layer below (here :mod:`helpers.resources`, :mod:`helpers.targets`,
:mod:`helpers.tflite_io`, :mod:`helpers.engine`).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import resources, targets, tflite_io
from helpers.engine import emulator
from helpers.engine.kernels import UnsupportedOpError

__all__ = ["ModelReport", "profile_model", "main", "ProfileInputError"]


class ProfileInputError(ValueError):
    """A model file or option the profiler cannot use (missing, not a .tflite, unknown
    target); its message is the one line the command prints. Taught in 06-deployment."""


@dataclass
class ModelReport:
    """What :func:`profile_model` measured for one model on one target.

    ``profile``: the :class:`helpers.resources.Profile`; ``target``: the
    :class:`helpers.targets.Target`; ``sram_bytes`` / ``flash_bytes``: peak SRAM of the
    plan and the file size; ``sram_margin_bytes`` / ``flash_margin_bytes``: budget minus
    need (negative: does not fit by that much); ``emulation``: the
    :class:`helpers.engine.emulator.EmulationResult` or ``None``; ``emulation_note``: why
    not emulated. Taught in 06-deployment.
    """

    name: str
    profile: object
    target: object
    sram_bytes: int
    flash_bytes: int
    sram_margin_bytes: int
    flash_margin_bytes: int
    emulation: object = None
    emulation_note: str = ""
    rows: list = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.sram_margin_bytes >= 0 and self.flash_margin_bytes >= 0

    def summary(self) -> str:
        t, p = self.target, self.profile

        def verdict(need, margin, budget, what):
            if margin >= 0:
                return (f"fits: {margin:,} B ({margin / budget:.1%}) of {budget:,} B {what} left")
            return f"DOES NOT FIT: {-margin:,} B over the {budget:,} B {what} budget"

        fl = p.flash
        lines = [f"{self.name}: {len(p.layers)} operators, {p.macs:,} MACs, {p.params:,} parameters",
                 f"target  {t}",
                 f"SRAM    {self.sram_bytes:>10,} B peak (plan '{p.plan}', activations + scratch; "
                 f"lower bound {p.memory_plan.lower_bound_bytes:,} B) -> "
                 + verdict(self.sram_bytes, self.sram_margin_bytes, t.sram_budget, "SRAM"),
                 f"flash   {self.flash_bytes:>10,} B file -> "
                 + verdict(self.flash_bytes, self.flash_margin_bytes, t.flash_budget, "flash"),
                 f"        = {p._flash_parts()}"]
        if "device_image_bytes" in fl:
            lines.append(f"        deployable image {fl['device_image_bytes']:,} B (without the "
                         f"{fl['not_on_device']:,} B a device does not need: names, min/max, "
                         f"metadata, signature defs, description)")
        if self.emulation is not None:
            e = self.emulation
            lines.append(f"emulated {e.cycles:,.0f} cycles = {e.latency_ms:.2f} ms at "
                         f"{t.clock_hz / 1e6:.0f} MHz ({e.kernels} kernels; estimate, see "
                         f"docs/emulator.md for its measured error)")
            if e.latency_ms_with_flash is not None:
                lines.append(f"         + flash wait states ({t.flash_wait_states} WS, "
                             f"{e.flash_stall_cycles:,.0f} stall cycles) = "
                             f"{e.latency_ms_with_flash:.2f} ms")
        elif self.emulation_note:
            lines.append(f"emulation: {self.emulation_note}")
        lines.append("verdict: " + ("FITS" if self.fits else "DOES NOT FIT") + f" {t.name}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def table(self):
        """Per-operator pandas DataFrame (op, opcode, output_shape, macs, params,
        live_sram_bytes, and cycles / ms when emulated)."""
        import pandas as pd
        return pd.DataFrame(self.rows).set_index("op")

    def to_dict(self) -> dict:
        d = {"name": self.name, "target": self.target.to_dict(), "fits": self.fits,
             "sram_bytes": self.sram_bytes, "flash_bytes": self.flash_bytes,
             "sram_margin_bytes": self.sram_margin_bytes,
             "flash_margin_bytes": self.flash_margin_bytes,
             "lower_bound_sram_bytes": self.profile.memory_plan.lower_bound_bytes,
             "plan": self.profile.plan, "macs": self.profile.macs, "params": self.profile.params,
             "flash": dict(self.profile.flash), "layers": [dict(r) for r in self.rows],
             "emulation_note": self.emulation_note}
        if self.emulation is not None:
            e = self.emulation
            d["emulation"] = {"cycles": e.cycles, "latency_ms": e.latency_ms,
                              "instructions": e.instructions, "kernels": e.kernels,
                              "flash_stall_cycles": e.flash_stall_cycles,
                              "latency_ms_with_flash": e.latency_ms_with_flash}
        return d


def _read(model) -> tuple[bytes, str]:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "model"
    p = Path(model)
    if not p.is_file():
        raise ProfileInputError(f"{p}: no such file")
    b = p.read_bytes()
    try:
        tflite_io.validate(b)
    except tflite_io.TFLiteFormatError as e:
        raise ProfileInputError(f"{p}: not a .tflite model ({e})") from None
    return b, p.name


def profile_model(model, target: str = "stm32f746zg", plan: str = "tflm", reserve: str = "none",
                  emulate: bool = False, kernels: str = "dsp", seed: int = 0,
                  flash_wait_states: bool = False) -> ModelReport:
    """Profile a ``.tflite`` (path or bytes) for ``target`` (see :func:`helpers.targets.names`).

    ``plan``: memory plan (:data:`helpers.resources.PLANS`); ``reserve``: "none" or "tflm"
    (subtract TFLM's runtime overhead from the budgets); ``emulate``: also build the model
    with the series' C engine and emulate one inference on a seeded random input (per-op
    cycles; skipped with a note when an operator is outside the engine's set);
    ``flash_wait_states``: also charge the board's documented flash wait states per flash
    line read (slower emulation; see :func:`helpers.engine.emulator.run`). Raises
    :class:`ProfileInputError` naming the problem. Taught in 06-deployment.
    """
    b, name = _read(model)
    try:
        t = targets.get(target, reserve)
    except targets.UnknownTargetError:
        raise ProfileInputError(f"unknown target {target!r}; targets: "
                                f"{', '.join(targets.names())}") from None
    if plan not in resources.PLANS:
        raise ProfileInputError(f"unknown plan {plan!r}; plans: {', '.join(resources.PLANS)}")
    try:
        p = resources.profile(b, plan=plan)
    except tflite_io.TFLiteFormatError as e:
        raise ProfileInputError(f"{name}: {e}") from None
    sram, flash = p.peak_sram_bytes, len(b)
    em, note = None, ""
    if emulate:
        em, note = _emulate(b, t, plan, kernels, seed, flash_wait_states)
    cyc = {}
    stall = {}
    if em is not None:
        for o in em.per_op:
            cyc[o["op"]] = o["cycles"]
            stall[o["op"]] = o.get("flash_stall_cycles", 0.0)
    rows = []
    for r in p.layers:
        row = {"op": r["op"], "opcode": r["opcode"], "output_shape": "x".join(map(str, r["output_shape"])),
               "macs": r["macs"], "params": r["params"], "live_sram_bytes": r["live_bytes"]}
        if em is not None:
            row["cycles"] = round(float(cyc.get(r["op"], 0.0)))
            row["ms"] = round(row["cycles"] / t.clock_hz * 1e3, 4)
            if em.latency_ms_with_flash is not None:
                row["flash_stall_cycles"] = round(float(stall.get(r["op"], 0.0)))
        rows.append(row)
    return ModelReport(name=name, profile=p, target=t, sram_bytes=sram, flash_bytes=flash,
                       sram_margin_bytes=t.sram_budget - sram,
                       flash_margin_bytes=t.flash_budget - flash, emulation=em,
                       emulation_note=note, rows=rows)


def _emulate(b: bytes, t, plan: str, kernels: str, seed: int, flash_ws: bool = False):
    m = tflite_io.read(b)
    tin = m.tensors[m.inputs[0]]
    rng = np.random.default_rng(seed)
    if tin.type_name == "INT8":
        x = rng.integers(-128, 128, size=tin.shape, dtype=np.int8)
    else:
        x = rng.normal(size=tin.shape).astype(np.float32)
    try:
        return emulator.run(b, x, target=t.name, plan=plan, kernels=kernels,
                            flash_wait_states=flash_ws), ""
    except UnsupportedOpError as e:
        return None, f"not emulated ({e})"
    except emulator.ModelDoesNotFitError as e:
        return None, f"not emulated: the C build does not fit ({e})"


def main(argv=None) -> int:
    """The command line (see module docstring); returns the exit status (0 fits, 1 does
    not fit, 2 bad input). Taught in 06-deployment."""
    ap = argparse.ArgumentParser(prog="python -m helpers.profile",
                                 description="Profile a .tflite for a microcontroller target.")
    ap.add_argument("model", help="the .tflite file")
    ap.add_argument("--target", default="stm32f746zg",
                    help=f"one of: {', '.join(targets.names())} (default stm32f746zg)")
    ap.add_argument("--plan", default="tflm", help=f"memory plan: {', '.join(resources.PLANS)}")
    ap.add_argument("--reserve", default="none", choices=list(targets.RESERVES),
                    help="subtract TFLM's runtime overhead from the budgets ('tflm')")
    ap.add_argument("--emulate", action="store_true", help="emulate one inference (per-op cycles)")
    ap.add_argument("--kernels", default="dsp", choices=["dsp", "plain"])
    ap.add_argument("--flash-wait-states", action="store_true",
                    help="with --emulate: charge the board's documented flash wait states")
    ap.add_argument("--csv", metavar="FILE", help="write the per-layer table as CSV")
    ap.add_argument("--json", metavar="FILE", help="write the whole report as JSON")
    a = ap.parse_args(argv)
    try:
        rep = profile_model(a.model, target=a.target, plan=a.plan, reserve=a.reserve,
                            emulate=a.emulate, kernels=a.kernels,
                            flash_wait_states=a.flash_wait_states)
    except ProfileInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import pandas as pd
    print(rep.summary())
    print()
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(rep.table().to_string())
    if a.csv:
        rep.table().to_csv(a.csv)
    if a.json:
        Path(a.json).write_text(json.dumps(rep.to_dict(), indent=1, default=str))
    return 0 if rep.fits else 1


if __name__ == "__main__":
    sys.exit(main())

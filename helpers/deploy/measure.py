"""One way to measure a deployed int8 model, for every notebook and method: :func:`measure_deployed`.

Taught in 00-overview and 07-comparison. It runs the ``.tflite`` in TFLite-Micro on test data
(int8 accuracy of what actually ships), measures the TFLM arena (head and total), puts our
``tflm`` and ``inplace`` plan estimates beside it, and emulates the build on the target's core.
May import: :mod:`helpers.targets`, :mod:`helpers.resources`, :mod:`helpers.engine`,
:mod:`helpers.deploy.convert`, :mod:`helpers.deploy.tflm`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from helpers import resources, targets
from helpers.deploy.convert import quantize_input
from helpers.deploy.tflm import ArenaReport, measure_arena, tflm_predict
from helpers.engine import emulator


@dataclass
class Deployed:
    """What :func:`measure_deployed` measured on one int8 model (SiliconLabs-MLTK-style result).

    ``figures`` is the flat dict of figures (recorded as they are), ``arena`` the TFLM
    :class:`~helpers.deploy.tflm.ArenaReport`; :meth:`summary` prints them, :meth:`to_dict`
    returns a copy of the figures. Taught in 07-comparison.
    """

    target: str | None
    figures: dict[str, Any] = field(default_factory=dict)
    arena: ArenaReport | None = field(default=None, repr=False)

    def __getitem__(self, key):
        return self.figures[key]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.figures)

    def summary(self) -> str:
        f = self.figures
        lines = [f"deployed int8 model{' on ' + self.target if self.target else ''}:",
                 f"  test accuracy (TFLM, {f['test_samples']} samples): {f['test_accuracy_int8']:.4f}",
                 f"  TFLM arena head / total: {f['tflm_arena_head_bytes']:,} / "
                 f"{f['tflm_arena_total_bytes']:,} B (estimate tflm {f['peak_sram_tflm_estimate_bytes']:,} B,"
                 f" inplace {f['peak_sram_inplace_bytes']:,} B)",
                 f"  flash (.tflite): {f['flash_bytes']:,} B, MACs {f['macs']:,}, params {f['params']:,}",
                 ]
        if "fits_target" in f:
            lines.append(f"  fits the target: {f['fits_target']}")
        if "emulated_latency_ms" in f:
            lines.append(f"  emulated: {f['emulated_instructions']:,} instructions, "
                         f"{f['emulated_latency_ms']:.2f} ms estimated")
        elif "emulated_error" in f:
            lines.append(f"  emulation: {f['emulated_error']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def measure_deployed(tflite_bytes: bytes, data, target=None, *, n_test: int | None = None,
                     emulate: bool = True, progress: bool = False) -> Deployed:
    """Measure one deployed int8 model the same way for every method.

    Returns a :class:`Deployed` whose ``figures`` hold: int8 test accuracy in TFLite-Micro (on ``n_test`` test
    samples, all by default), the TFLM arena head/total, the ``tflm`` and ``inplace``
    plan estimates, ``.tflite`` bytes, MACs, and (``emulate``) the emulated build on
    ``target``'s core with the ``inplace`` plan and DSP kernels: instructions,
    estimated cycles and ms at the target's clock, and measured SRAM.
    Without a ``target`` there is no ``fits_target`` and no emulation. ``progress`` shows
    the TFLM inference progress. Taught in 02-aging-evolution and 07-comparison.
    """
    if target is None and emulate:
        raise ValueError("measure_deployed: emulate=True needs a target (a helpers.targets name)")
    tgt = targets.get(target, reserve="tflm") if target is not None else None
    x, y = data.x_test, data.y_test
    if n_test:
        x, y = x[:n_test], y[:n_test]
    t0 = time.time()
    logits = tflm_predict(tflite_bytes, x, progress=progress)
    out = {"test_accuracy_int8": float(np.mean(logits.argmax(axis=1) == y)), "test_samples": int(len(y))}
    arena = measure_arena(tflite_bytes)
    out.update(tflm_arena_head_bytes=arena.head, tflm_arena_total_bytes=arena.total)
    p_tflm = resources.profile(tflite_bytes, plan="tflm", table=False)
    p_inpl = resources.profile(tflite_bytes, plan="inplace", table=False)
    out.update(peak_sram_tflm_estimate_bytes=p_tflm.peak_sram_bytes, peak_sram_inplace_bytes=p_inpl.peak_sram_bytes,
               flash_bytes=len(tflite_bytes), macs=p_tflm.macs, params=p_tflm.params)
    if tgt is not None:
        out["fits_target"] = bool(tgt.fits(arena.total, len(tflite_bytes)))
    if emulate:
        try:
            em = emulator.run(tflite_bytes, quantize_input(tflite_bytes, x[:1])[0], target=tgt,
                              plan="inplace", kernels="dsp")
            out.update(emulated_instructions=int(em.instructions), emulated_cycles=int(em.cycles),
                       emulated_latency_ms=float(em.latency_ms), emulated_sram_bytes=int(em.sram_bytes),
                       emulated_flash_bytes=int(em.flash_bytes))
        except Exception as exc:  # a model our engine cannot build: say so in the table
            out["emulated_error"] = f"{type(exc).__name__}: {exc}"[:200]
    out["measure_seconds"] = time.time() - t0
    return Deployed(target=tgt.name if tgt else None, figures=out, arena=arena)


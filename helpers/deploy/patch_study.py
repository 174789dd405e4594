"""One model through every memory strategy: TFLite-Micro head and 32-bit total, our layer-by-layer
and in-place plans, patch-based inference; bit-exactness and (optionally) emulated cost of each.

Taught in 06-deployment (Part "Patch-based inference"). :func:`study` measures TFLite-Micro's
arena on the host and models its 32-bit tail (:mod:`helpers.deploy.tflm_tail`), plans the model
three ways (:func:`helpers.resources.plan_tflite`, :func:`helpers.resources.patch_plan.
choose_schedule`), runs the patch schedule in the Python engine against TFLite-Micro, and with
``emulate=True`` builds and emulates the ``tflm``-plan, ``inplace`` and patch builds
(:func:`helpers.engine.emulator.run`). May import: :mod:`helpers.resources`,
:mod:`helpers.engine`, :mod:`helpers.deploy.tflm`, :mod:`helpers.deploy.tflm_tail`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from helpers.deploy.tflm import measure_arena, reference_outputs
from helpers.deploy.tflm_tail import tail_model
from helpers.engine import emulator, patch
from helpers.resources import plan_tflite
from helpers.resources.patch_plan import choose_schedule

__all__ = ["PatchStudy", "study", "BUILDS"]


@dataclass
class PatchStudy:
    """Peak SRAM of each strategy for one model (bytes), the chosen patch schedule, its
    recompute overhead, bit-exactness, and emulated instructions / latency where emulated.
    Taught in 06-deployment."""

    name: str
    macs: int
    tflm_head: int
    tflm_total_host: int
    tflm_tail_host: int
    tflm_tail_mcu32: int
    tflm_tail_host_model: int
    layer_by_layer: int
    inplace: int
    patch: int
    split: int
    grid: int
    overhead: float
    bit_exact_python: bool
    choice: object = field(repr=False, default=None)
    emulated: dict = field(default_factory=dict)   # build -> dict(exact, instructions, ms, sram)

    @property
    def tflm_total_mcu32(self) -> int:
        return self.tflm_head + self.tflm_tail_mcu32

    @property
    def head_over_patch(self) -> float:
        return self.tflm_head / self.patch

    def rows(self) -> list:
        out = [("TFLM arena head (measured)", self.tflm_head, "tflm"),
               ("TFLM total, 32-bit MCU (head + modelled tail)", self.tflm_total_mcu32, None),
               ("ours layer by layer (tflm plan)", self.layer_by_layer, "tflm"),
               ("ours in-place depthwise", self.inplace, "inplace"),
               (f"ours patch-based ({self.grid}x{self.grid} to op {self.split})", self.patch,
                "patch")]
        return out

    def table(self):
        import pandas as pd
        recs = []
        for label, b, build in self.rows():
            e = self.emulated.get(build, {}) if build and label.startswith("ours") else {}
            recs.append({"strategy": label, "peak_sram_bytes": b,
                         "x_below_tflm_head": self.tflm_head / b,
                         "instructions": e.get("instructions"), "latency_ms": e.get("ms"),
                         "bit_exact": e.get("exact", self.bit_exact_python if build == "patch"
                                        else None)})
        return pd.DataFrame(recs).set_index("strategy")

    def summary(self) -> str:
        return (f"{self.name}: TFLM head {self.tflm_head:,} B, 32-bit total {self.tflm_total_mcu32:,}"
                f" B; ours layer-by-layer {self.layer_by_layer:,}, in-place {self.inplace:,}, "
                f"patch {self.patch:,} B ({self.head_over_patch:.2f}x below the head; "
                f"{self.grid}x{self.grid} patches to op {self.split}, "
                f"+{100 * self.overhead:.1f} % MACs); bit-exact {self.bit_exact_python}")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "name", "macs", "tflm_head", "tflm_total_host", "tflm_tail_host", "tflm_tail_mcu32",
            "tflm_tail_host_model", "layer_by_layer", "inplace", "patch", "split", "grid",
            "overhead", "bit_exact_python", "emulated")} | {"tflm_total_mcu32": self.tflm_total_mcu32}


BUILDS = ("tflm", "inplace", "patch")


def study(tflite_bytes, x, name: str = "model", target="stm32f746zg", emulate: bool = False,
          max_overhead: float = 0.2, kernels: str = "dsp", builds=BUILDS) -> PatchStudy:
    """Every memory strategy for one int8 model on int8 input ``x`` (see module docstring);
    ``emulate=True`` emulates ``builds`` (of ``"tflm"`` plan, ``"inplace"`` plan, ``"patch"``).
    Taught in 06-deployment."""
    bad = [b for b in builds if b not in BUILDS]
    if bad:
        raise ValueError(f"builds {bad} unknown; allowed: {list(BUILDS)}")
    x = np.asarray(x)
    rep = measure_arena(tflite_bytes)
    ref = reference_outputs(tflite_bytes, x, engine="tflm").ravel()
    plans = {p: plan_tflite(tflite_bytes, p) for p in ("tflm", "inplace")}
    choice = choose_schedule(tflite_bytes, max_overhead=max_overhead)
    best = choice.best
    pr = patch.run(tflite_bytes, x, best.schedule)
    st = PatchStudy(name=name, macs=best.base_macs, tflm_head=rep.head, tflm_total_host=rep.total,
                    tflm_tail_host=rep.tail, tflm_tail_mcu32=tail_model(tflite_bytes, 4).total,
                    tflm_tail_host_model=tail_model(tflite_bytes, 8).total,
                    layer_by_layer=plans["tflm"].peak_sram_bytes,
                    inplace=plans["inplace"].peak_sram_bytes, patch=best.peak_sram_bytes,
                    split=best.schedule.split, grid=best.schedule.grid, overhead=best.overhead,
                    bit_exact_python=bool(np.array_equal(pr.output.ravel(), ref)), choice=choice)
    if emulate:
        for build, kw in (("tflm", {"plan": "tflm"}), ("inplace", {"plan": "inplace"}),
                          ("patch", {"schedule": best.schedule})):
            if build not in builds:
                continue
            e = emulator.run(tflite_bytes, x, target, kernels=kernels, **kw)
            st.emulated[build] = {"exact": bool(np.array_equal(e.output.ravel(), ref)),
                                  "instructions": e.instructions, "ms": e.latency_ms,
                                  "sram": e.sram_bytes}
    return st

"""MicroNets' 4-bit weights on the searched models: flash saved, accuracy lost, cycles paid.

Taught in 04-micronets-dnas (MicroNets, Banbury et al. 2021, deploy some models with 4-bit
weights and 8-bit activations). :func:`int4_deploy` takes a deployed int8 ``.tflite``,
rounds its filters to 16 levels with :func:`helpers.engine.int4.quantize_model_int4`
(post-training, no fine-tune), and measures both files the same way: accuracy of the test
split in the TFLite-Micro interpreter (which runs INT4 filters), ``.tflite`` size, and an
emulated inference on the board (flash and SRAM of the C image, estimated cycles), with the
emulated output compared bit for bit with TFLM's. :class:`Int4Study` collects S / M / L.
May import: :mod:`helpers.stats`, :mod:`helpers.deploy`, :mod:`helpers.engine`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from helpers import deploy, stats
from helpers.engine import emulator, int4

__all__ = ["int4_deploy", "Int4Study", "int4_study"]


def int4_deploy(tflite_int8, data, target, *, ops=("CONV_2D", "FULLY_CONNECTED"), seed: int = 0,
                n_boot: int = 2000) -> dict:
    """Measure a deployed int8 model against its 4-bit-filter copy on ``data``'s test split
    and the emulated ``target``. Returns a JSON-able dict (plus ``tflite_int4`` bytes):
    accuracies and their paired difference with a bootstrap interval over test samples,
    ``.tflite`` / weights bytes, TFLM arena heads (TFLM unpacks an int4 filter into an
    arena scratch buffer), emulated flash, SRAM, latency of both, and
    ``emulated_bit_exact`` (emulated int4 output == TFLM's on one input).
    Taught in 04-micronets-dnas."""
    r4 = int4.quantize_model_int4(tflite_int8, ops=ops)
    y = np.asarray(data.y_test)
    ok8 = np.argmax(deploy.tflm_predict(tflite_int8, data.x_test), axis=1) == y
    ok4 = np.argmax(deploy.tflm_predict(r4.tflite, data.x_test), axis=1) == y
    d = stats.diff_ci(ok4.astype(float), ok8.astype(float), paired=True, n=n_boot, seed=seed)
    x = deploy.quantize_input(tflite_int8, data.x_test[:1])
    ref = deploy.reference_outputs(r4.tflite, x, engine="tflm")
    e4 = emulator.run(r4.tflite, x, target=target)
    e8 = emulator.run(tflite_int8, x, target=target)
    a8, a4 = deploy.measure_arena(tflite_int8), deploy.measure_arena(r4.tflite)
    return {"target": str(target), "layers_int4": sum(r["int4"] for r in r4.layers),
            "layers": len(r4.layers), "test_accuracy_int8": float(ok8.mean()),
            "test_accuracy_int4": float(ok4.mean()), "accuracy_change": d.estimate,
            "accuracy_change_low": d.low, "accuracy_change_high": d.high, "n_test": int(y.size),
            "tflite_bytes_int8": r4.flash_bytes_int8, "tflite_bytes_int4": r4.flash_bytes_int4,
            "weights_bytes_int8": r4.weights_bytes_int8, "weights_bytes_int4": r4.weights_bytes_int4,
            "emu_flash_bytes_int8": int(e8.flash_bytes), "emu_flash_bytes_int4": int(e4.flash_bytes),
            "emu_sram_bytes_int8": int(e8.sram_bytes), "emu_sram_bytes_int4": int(e4.sram_bytes),
            "arena_head_bytes_int8": int(a8.head), "arena_head_bytes_int4": int(a4.head),
            "latency_ms_int8": float(e8.latency_ms), "latency_ms_int4": float(e4.latency_ms),
            "emulated_bit_exact": bool(np.array_equal(e4.output.reshape(ref.shape), ref)),
            "max_rel_rms_error": max([r["rel_rms_error"] for r in r4.layers if r["int4"]] or [0.0]),
            "tflite_int4": r4.tflite}


@dataclass
class Int4Study:
    """:func:`int4_deploy` of several models (label -> dict). Taught in 04-micronets-dnas."""

    results: dict = field(default_factory=dict)

    def table(self):
        import pandas as pd
        cols = ["target", "layers_int4", "test_accuracy_int8", "test_accuracy_int4",
                "accuracy_change", "accuracy_change_low", "accuracy_change_high",
                "tflite_bytes_int8", "tflite_bytes_int4", "weights_bytes_int8",
                "weights_bytes_int4", "emu_flash_bytes_int8", "emu_flash_bytes_int4",
                "emu_sram_bytes_int8", "emu_sram_bytes_int4", "arena_head_bytes_int8",
                "arena_head_bytes_int4", "latency_ms_int8",
                "latency_ms_int4", "emulated_bit_exact"]
        return pd.DataFrame({k: {c: v[c] for c in cols} for k, v in self.results.items()}).T

    def summary(self) -> str:
        lines = []
        for k, v in self.results.items():
            lines.append(f"{k}: .tflite {v['tflite_bytes_int8']:,} -> {v['tflite_bytes_int4']:,} B "
                         f"({100 * (1 - v['tflite_bytes_int4'] / v['tflite_bytes_int8']):.1f} % "
                         f"smaller), accuracy {v['test_accuracy_int8']:.4f} -> "
                         f"{v['test_accuracy_int4']:.4f} (change {v['accuracy_change']:+.4f}, 95 % "
                         f"[{v['accuracy_change_low']:+.4f}, {v['accuracy_change_high']:+.4f}]), "
                         f"latency {v['latency_ms_int8']:.2f} -> {v['latency_ms_int4']:.2f} ms, "
                         f"emulated bit-exact {v['emulated_bit_exact']}")
        return "\n".join(lines) or "int4 study: no models"

    __str__ = summary

    def to_dict(self) -> dict:
        return {k: {c: x for c, x in v.items() if c != "tflite_int4"} for k, v in self.results.items()}


def int4_study(models: dict, data, targets: dict, *, ops=("CONV_2D", "FULLY_CONNECTED"),
               seed: int = 0) -> Int4Study:
    """:func:`int4_deploy` for each ``{label: int8 tflite bytes}`` on ``targets[label]``.
    Taught in 04-micronets-dnas."""
    missing = [k for k in models if k not in targets]
    if missing:
        raise KeyError(f"targets: no board for models {missing}; have {sorted(targets)}")
    return Int4Study({k: int4_deploy(b, data, targets[k], ops=ops, seed=seed)
                      for k, b in models.items()})

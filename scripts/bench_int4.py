"""Measure 4-bit filters (helpers.engine.int4): the numbers quoted in docs/emulator.md.

    .venv/bin/python scripts/bench_int4.py               # flash / SRAM / cycles, ~1 min
    .venv/bin/python scripts/bench_int4.py --accuracy    # + trained DS-CNNs on KWS, ~8 min

Flash and cycles: the DS-CNN reference model (helpers.deploy.reference_model, random
weights), int8 against its 4-bit copy (conv + FC filters, then all filters), emulated on
a Cortex-M4 (F446RE) and a Cortex-M7 (F746ZG), output checked against TFLite-Micro.
Accuracy: two DS-CNN architectures of 04's space trained 10 epochs on the (synthetic
when offline) keyword set, int8 against 4-bit (post-training rounding), TFLM accuracy on
the test split with a paired bootstrap interval of the change.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def flash_and_cycles():
    from helpers import deploy
    from helpers.deploy import models, tflm
    from helpers.engine import emulator, int4
    _, m = models.reference_model("ds-cnn", (49, 10, 1), 12)
    deploy.randomize_weights(m, 0)
    b = deploy.to_tflite_int8(m, np.random.default_rng(0).normal(0, 1, (8, 49, 10, 1)).astype(np.float32))
    x = np.random.default_rng(1).integers(-128, 128, (1, 49, 10, 1)).astype(np.int8)
    for ops in (("CONV_2D", "FULLY_CONNECTED"), int4.INT4_OPS):
        r = int4.quantize_model_int4(b, ops=ops)
        print(ops, r.summary())
        ref = tflm.reference_outputs(r.tflite, x, engine="tflm")
        for t in ("stm32f446re", "stm32f746zg"):
            e8, e4 = emulator.run(b, x, target=t), emulator.run(r.tflite, x, target=t)
            print(f"  {t}: image flash {e8.flash_bytes:,} -> {e4.flash_bytes:,} B "
                  f"({100 * (e4.flash_bytes / e8.flash_bytes - 1):+.1f} %), SRAM {e8.sram_bytes:,} -> "
                  f"{e4.sram_bytes:,} B, cycles {e8.cycles:,.0f} -> {e4.cycles:,.0f} "
                  f"({100 * (e4.cycles / e8.cycles - 1):+.1f} %), bit-exact with TFLM "
                  f"{np.array_equal(e4.output.reshape(ref.shape), ref)}")


def accuracy():
    from helpers import data
    from helpers.methods import micronets, micronets_int4
    ds = data.load("kws", seed=0, n_per_class=150)
    sp = micronets.dscnn_space(ds.input_shape, ds.num_classes, max_width=64, step=8, n_blocks=4)
    for ch in ([64, 64, 64, 64, 64], [32, 32, 0, 32, 32]):
        m = micronets.retrain_and_deploy(micronets.to_arch(sp, ch), ds, "stm32f746zg", epochs=10,
                                         seed=0, progress=False)
        for ops in (("CONV_2D", "FULLY_CONNECTED"), ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")):
            v = micronets_int4.int4_deploy(m["tflite"], ds, "stm32f746zg", ops=ops, seed=0)
            v.pop("tflite_int4")
            print(ch, ops, json.dumps(v))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accuracy", action="store_true", help="also train two models (minutes)")
    a = ap.parse_args()
    flash_and_cycles()
    if a.accuracy:
        accuracy()

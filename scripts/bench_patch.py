"""Measure patch-based inference (issue #21) on a MobileNetV2-0.35-style model and the VWW model.

    .venv/bin/python scripts/bench_patch.py                       # r144, memory + Python check
    .venv/bin/python scripts/bench_patch.py --emulate             # + the three emulated builds (minutes)
    .venv/bin/python scripts/bench_patch.py --resolution 96 --vww --out runs/patch.json

For each model: TFLite-Micro's measured arena head and host tail, the modelled 32-bit tail, our
layer-by-layer (tflm plan), in-place and patch-based peak SRAM, the chosen split and grid under
--max-overhead, the recompute overhead, bit-exactness of the Python patch run against TFLite-Micro
and, with --emulate, instructions / estimated latency / bit-exactness of the emulated builds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=144)
    ap.add_argument("--max-overhead", type=float, default=0.2)
    ap.add_argument("--target", default="stm32f746zg")
    ap.add_argument("--emulate", action="store_true")
    ap.add_argument("--vww", action="store_true", help="also the MLPerf Tiny VWW MobileNetV1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from helpers import deploy
    from helpers.deploy import patch_study, zoo
    r = a.resolution
    rng = np.random.default_rng(a.seed)
    _, model = deploy.reference_model("mobilenetv2-0.35", (r, r, 3), 10, seed=a.seed)
    deploy.randomize_weights(model, a.seed)
    models = {f"mobilenetv2-0.35 r{r}": (
        deploy.to_tflite_int8(model, rng.normal(0, 1, (8, r, r, 3)).astype(np.float32)), (r, r, 3))}
    if a.vww:
        models["mobilenetv1-vww r96"] = (zoo.build("mobilenetv1-vww", io="int8", seed=a.seed),
                                         (96, 96, 3))
    out = {}
    for name, (b, shape) in models.items():
        x = rng.integers(-128, 128, (1,) + shape).astype(np.int8)
        t = time.time()
        st = patch_study.study(b, x, name, target=a.target, emulate=a.emulate,
                               max_overhead=a.max_overhead)
        print(st.summary())
        print(st.table().to_string())
        print(f"[{time.time() - t:.1f} s]\n")
        out[name] = st.to_dict()
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()

"""Measure the emulated Cortex-M builds: the numbers quoted in docs/emulator.md.

    .venv/bin/python scripts/bench_emulator.py                  # MobileNetV2-style model
    .venv/bin/python scripts/bench_emulator.py --out runs/emu   # + JSON and CSV there
    .venv/bin/python scripts/bench_emulator.py --resolution 64 --width 0.5

For one MobileNetV2-style model (helpers.spaces.BlockArch, random weights) it reports,
for every plan x kernel variant on a Cortex-M4 target and on a Cortex-M7 target:
bit-exactness against TFLite-Micro, exact instructions (total and per MAC),
estimated cycles, measured SRAM (static + arena + stack) beside the plan and the
TFLite-Micro arena, flash, and the harness's own wall time; it runs each build twice
to check that instruction counts are deterministic.
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
    ap.add_argument("--resolution", type=int, default=48)
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default="stm32f412,stm32f746zg")
    ap.add_argument("--out", default=None, help="folder for bench.json / bench.csv")
    a = ap.parse_args(argv)

    import pandas as pd
    from helpers import deploy, resources
    from helpers import deploy
    from helpers.engine import interpreter
    from helpers.engine import emulator as E
    from helpers.engine import kernels as K
    from helpers import spaces as S

    arch = S.BlockArch(resolution=a.resolution, width=a.width,
                       stages=[[(6, 3), (6, 3)]] * 4)
    shape = (a.resolution, a.resolution, 3)
    t0 = time.perf_counter()
    model = S.build(arch, shape, 10, seed=a.seed)
    rng = np.random.default_rng(a.seed)
    b = deploy.to_tflite_int8(model, rng.normal(0, 1, (8,) + shape).astype(np.float32))
    print(f"model: BlockArch r{a.resolution} w{a.width} (MobileNetV2-style, e6 k3, 2 blocks "
          f"per stage), {len(b):,} B .tflite, converted in {time.perf_counter() - t0:.1f} s")
    x = np.clip(rng.normal(0, 50, (1,) + shape), -128, 127).astype(np.int8)
    ref = deploy.reference_outputs(b, x, "tflm").ravel()
    macs = sum(s.macs for s in interpreter.prepare(b))
    arena = deploy.measure_arena(b, isolate=False)
    plans = {p: resources.plan_tflite(b, p) for p in ("tflm", "reordered", "inplace")}
    print(f"MACs {macs:,}; {arena.summary()}")
    for p, pl in plans.items():
        py = interpreter.run(b, x, plan=p)
        print(f"plan {p:9s}: peak {pl.peak_sram_bytes:,} B, layout {pl.arena_bytes:,} B; python "
              f"kernels bit-exact: {np.array_equal(py.output.ravel(), ref)}")

    rows = []
    for tgt in a.targets.split(","):
        for plan in ("tflm", "inplace"):
            for kern in ("plain", "dsp"):
                t = time.perf_counter()
                bd = E.build(b, tgt, plan=plan, kernels=kern)
                t_build = time.perf_counter() - t
                t = time.perf_counter()
                r = E.run(bd, x)
                t_run = time.perf_counter() - t
                r2 = E.run(bd, x)
                rows.append({
                    "target": tgt, "core": r.core, "plan": plan, "kernels": kern,
                    "bit_exact": bool(np.array_equal(r.output.ravel(), ref)),
                    "deterministic": r.instructions == r2.instructions and r.cycles == r2.cycles,
                    "instructions": r.instructions, "instr_per_mac": round(r.instructions_per_mac, 2),
                    "cycles_est": round(r.cycles), "ms_est": round(r.latency_ms, 2),
                    "sram_measured": r.sram_bytes, "static": r.static_sram_bytes,
                    "im2col": r.col_bytes, "arena": r.arena_bytes, "stack": r.stack_bytes,
                    "plan_peak": r.plan_peak_bytes, "tflm_arena_head": arena.head,
                    "tflm_arena_total": arena.total,
                    "tflm_total_over_sram": round(arena.total / r.sram_bytes, 2),
                    "flash": r.flash_bytes, "build_s": round(t_build, 2), "run_s": round(t_run, 2)})
                print(f"{tgt:12s} {plan:8s} {kern:5s} exact={rows[-1]['bit_exact']} "
                      f"det={rows[-1]['deterministic']} {r.instructions:>11,} instr "
                      f"{r.instructions_per_mac:6.2f}/MAC ~{r.latency_ms:7.2f} ms  SRAM "
                      f"{r.sram_bytes:,} (static {r.static_sram_bytes} + arena "
                      f"{r.arena_bytes:,} + stack {r.stack_bytes})  flash {r.flash_bytes:,}  "
                      f"[{t_run:.1f} s]")
    df = pd.DataFrame(rows)
    per_kind = []
    for kern in ("plain", "dsp"):
        r = E.run(E.build(b, "stm32f412", plan="tflm", kernels=kern), x)
        t = r.table()
        g = t.groupby("kind")[["instructions", "macs"]].sum()
        g["instr_per_mac"] = (g["instructions"] / g["macs"].where(g["macs"] > 0)).round(2)
        g["kernels"] = kern
        per_kind.append(g.reset_index())
    kinds = pd.concat(per_kind)
    print("\nper operator kind (stm32f412, tflm plan):")
    print(kinds.pivot(index="kind", columns="kernels", values="instr_per_mac").to_string())
    print("\n" + df.to_string(index=False))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / "bench.csv", index=False)
        (out / "bench.json").write_text(json.dumps({
            "model": {"resolution": a.resolution, "width": a.width, "macs": macs,
                      "tflite_bytes": len(b)},
            "plans": {p: {"peak": pl.peak_sram_bytes, "layout": pl.arena_bytes} for p, pl in plans.items()},
            "tflm_arena": arena.to_dict(), "rows": rows,
            "per_kind": kinds.to_dict(orient="records")}, indent=1, default=str))
        print(f"wrote {out}/bench.json and bench.csv")
    return 0 if df.bit_exact.all() and df.deterministic.all() else 1


if __name__ == "__main__":
    raise SystemExit(main())

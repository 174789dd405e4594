#!/usr/bin/env python
"""Benchmark helpers.resources.profile on random architectures (no TensorFlow).

Prints profiles per second (CPU time of this process, one core) for each search
space and memory plan. Searches need >= 10,000 per minute (< 6 ms each).

Usage: .venv/bin/python scripts/bench_profile.py [--n 500] [--seed 0] [--input 32 32 3]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=500, help="architectures per space")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--input", type=int, nargs=3, default=[32, 32, 3], metavar=("H", "W", "C"))
    ap.add_argument("--classes", type=int, default=10)
    args = ap.parse_args(argv)

    import numpy as np
    from helpers import resources, spaces

    rng = np.random.default_rng(args.seed)
    shape = tuple(args.input)
    sets = {"granular (muNAS bounds)": [spaces.GranularArch.random(rng) for _ in range(args.n)],
            "block (MCUNet/OFA)": [spaces.BlockArch.random(rng) for _ in range(args.n)]}
    print(f"input {shape}, {args.n} random architectures per space, "
          f"'tensorflow' imported: {'tensorflow' in sys.modules}")
    worst = float("inf")
    for name, archs in sets.items():
        for plan in resources.PLANS:
            resources.profile(archs[0], shape, args.classes, plan=plan)  # warm caches
            t0, w0 = time.process_time(), time.perf_counter()
            for a in archs:
                resources.profile(a, shape, args.classes, plan=plan, table=False)
            cpu = (time.process_time() - t0) / len(archs)
            wall = (time.perf_counter() - w0) / len(archs)
            rate = 60.0 / cpu
            worst = min(worst, rate)
            print(f"{name:26s} plan={plan:10s} {cpu * 1e3:6.2f} ms/profile (cpu), "
                  f"{wall * 1e3:6.2f} ms wall -> {1 / cpu:7.0f} profiles/s, {rate:9.0f}/min")
    print(f"slowest: {worst:.0f} profiles per minute on one core "
          f"({'OK' if worst >= 10000 else 'BELOW'} the 10,000/min target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

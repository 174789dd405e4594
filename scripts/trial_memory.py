"""Resident memory of one process that evaluates many search trials in a row.

Trains ``--trials`` random candidates of 02's (``--kind ae``) or 03's (``--kind sparse``)
default space with the notebooks' per-trial evaluator, in this one process, and prints
the process's RSS every ``--every`` trials. A long search's worker does exactly this, so
RSS growing per trial is what limits a full-preset run. Example::

    .venv/bin/python scripts/trial_memory.py --kind ae --trials 200 --n-train 1000

Prints one line per checkpoint and, at the end, the growth per trial (MB) fitted over
the second half of the run (the first trials warm up TF's caches).
"""
from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=("ae", "sparse"), default="ae")
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clear", action="store_true",
                    help="keras.backend.clear_session() and gc.collect() after each trial")
    ap.add_argument("--release", action="store_true",
                    help="wrap each trial in helpers.train.release_graphs() (what the searches do)")
    a = ap.parse_args(argv)

    import keras
    from helpers import search, spaces, train
    from helpers.methods import munas
    from helpers.methods import sparse as SP
    from helpers.methods import sparse_eval as SE
    keras.utils.set_random_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    if a.kind == "ae":
        space = munas.ArchSpace(spaces.GranularArch, spaces.GranularSpace(max_blocks=4, max_filters=32,
                                                                            max_units=64),
                                 sparsity=(0.0, 0.8))
        evaluate = munas.ArchEvaluator("mnist", epochs=1, n_train=a.n_train, n_val=a.n_val)
    else:
        space = SP.SparseSpace()
        evaluate = SE.SparseEvaluator("mnist", epochs=1, n_train=a.n_train, n_val=a.n_val)
    evaluate.data()
    print(f"kind {a.kind}, {a.trials} trials of {a.n_train} images; start RSS {rss_mb():.0f} MB", flush=True)
    xs, ys = [], []
    t0 = time.time()
    for i in range(1, a.trials + 1):
        cand = space.random(rng)
        if a.release:
            with train.release_graphs():
                evaluate(cand, i)
        else:
            evaluate(cand, i)
        if a.clear:  # what Keras recommends; measured not enough (README)
            keras.backend.clear_session()
            gc.collect()
        if i % a.every == 0:
            r = rss_mb()
            xs.append(i)
            ys.append(r)
            print(f"trial {i:4d}  RSS {r:7.0f} MB  {time.time() - t0:6.0f} s", flush=True)
    h = len(xs) // 2
    if len(xs) - h >= 2:
        slope = np.polyfit(xs[h:], ys[h:], 1)[0]
        print(f"growth over the second half: {slope:.2f} MB per trial (pid {os.getpid()})")


if __name__ == "__main__":
    main()

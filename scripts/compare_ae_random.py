"""Aging evolution vs random search at equal budget, over several seeds (issue 5, "Done means").

Runs both searches of notebook 02 (same space, evaluator, resources, bounds, budget) for each
seed and writes the hypervolume pairs to a JSON file. Each search keeps its trial store under
``--out``, so an interrupted comparison resumes. The defaults are notebook 02's (seed 0 is
its published search). Example (about 4 minutes per seed on 2 cores with 2 workers):

    .venv/bin/python scripts/compare_ae_random.py --seeds 0 1 2 --out runs/compare02
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", type=int, default=60, help="trained candidates per search")
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--sample", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-val", type=int, default=2000)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--search-error-bound", type=float, default=0.3)
    p.add_argument("--max-sparsity", type=float, default=0.5, help="0: no pruning")
    p.add_argument("--max-blocks", type=int, default=4)
    p.add_argument("--max-filters", type=int, default=32)
    p.add_argument("--max-units", type=int, default=64)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--out", default="runs/compare02")
    p.add_argument("--json", default=None, help="result file (default: OUT/compare_ae_random.json)")
    a = p.parse_args(argv)

    from helpers import data, search, spaces, train
    from helpers.methods import munas

    ds = data.load(a.dataset, seed=0)
    bounds = {"error": a.search_error_bound, "peak_sram_bytes": 2500, "weights_bytes": 4500,
              "macs": 30_000_000}
    gspace = spaces.GranularSpace(max_blocks=a.max_blocks, max_filters=a.max_filters,
                                  max_units=a.max_units)
    space = munas.ArchSpace(spaces.GranularArch, gspace,
                             sparsity=(0.0, a.max_sparsity) if a.max_sparsity > 0 else None)
    measure = munas.ArchResources(ds.input_shape, ds.num_classes, plan="reordered")
    pairs = []
    for seed in a.seeds:
        evaluate = munas.ArchEvaluator(a.dataset, epochs=a.epochs, n_train=a.n_train,
                                       n_val=a.n_val, lr=a.lr, batch_size=a.batch_size, pruning=a.max_sparsity > 0,
                                       data_seed=seed)
        row = {"seed": seed}
        for algo in ("aging_evolution", "random_search"):
            kw = dict(population_size=a.population, sample_size=a.sample) if algo == "aging_evolution" else {}
            t0 = time.time()
            r = search.run_search(algo, space, evaluate, measure, bounds=bounds, budget=a.budget,
                                  seed=seed, directory=os.path.join(a.out, f"seed{seed}", algo),
                                  workers=a.workers, progress=True, **kw)
            c = r.completed
            row[algo] = {"hypervolume": r.hypervolume, "trained": int(len(c)),
                         "feasible": int(c.feasible.astype(bool).sum()),
                         "rejected": int(len(r.rejected)),
                         "best_error": None if r.best is None else float(r.best["error"]),
                         "seconds": time.time() - t0}
        row["aging_beats_random"] = row["aging_evolution"]["hypervolume"] > row["random_search"]["hypervolume"]
        pairs.append(row)
        print(f"seed {seed}: hypervolume aging {row['aging_evolution']['hypervolume']:.5f} "
              f"vs random {row['random_search']['hypervolume']:.5f}", flush=True)
    out = {"settings": vars(a), "bounds": bounds, "pairs": pairs,
           "aging_wins": sum(r["aging_beats_random"] for r in pairs), "seeds": len(pairs)}
    path = a.json or os.path.join(a.out, "compare_ae_random.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"aging evolution wins {out['aging_wins']}/{out['seeds']}; written {path}")
    return out


if __name__ == "__main__":
    main()

"""Accuracy of fixed DS-CNNs on the keyword set against their op count, over seeds (issue 19).

Notebook 04 needs S < M < L in accuracy to be visible; this measures where capacity still buys
accuracy on the (offline, synthetic) keyword set at a given data size, so the default latency
targets can put S, M and L there. Each architecture (widths of the stem and of every block, as
in ``helpers.methods.micronets.dscnn_space``; 0 = identity) is retrained from scratch once per
seed with notebook 04's recipe (``micronets.seed_accuracies``: Adam from 3e-3 with a cosine
decay, int8, TFLite-Micro test accuracy) and printed with its exact op count. Example (about 2-4
minutes per model on 2 cores; the logs in ``results/20261202-kws-capacity/`` came from these
commands, at a constant learning rate of 3e-3: the cosine decay came later):

    .venv/bin/python scripts/kws_capacity.py 150 15 0,1,2 '{"S":[24,24,24,16,32],"M":[40,48,48,40,64]}'
    .venv/bin/python scripts/kws_capacity.py 150 15 0,1,2 '{"L96":[64,96,96,96,96]}' 96 4
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> None:
    import numpy as np

    import helpers
    from helpers import data
    from helpers.methods import micronets

    a = sys.argv[1:] if argv is None else argv
    if len(a) < 4:
        raise SystemExit("usage: kws_capacity.py N_PER_CLASS EPOCHS SEEDS(0,1,2) "
                         "'{\"name\": [widths]}' [MAX_WIDTH=64] [N_BLOCKS=4]")
    npc, epochs, seeds = int(a[0]), int(a[1]), [int(x) for x in a[2].split(",")]
    archs = json.loads(a[3])
    mw = int(a[4]) if len(a) > 4 else 64
    nb = int(a[5]) if len(a) > 5 else 4
    helpers.seed_everything(0)
    ds = data.load("kws", seed=0, n_per_class=npc)
    space = micronets.dscnn_space(ds.input_shape, ds.num_classes, max_width=mw, step=8, n_blocks=nb)
    for name, ch in archs.items():
        arch = micronets.to_arch(space, ch)
        t0 = time.time()
        acc = micronets.seed_accuracies(arch, ds, epochs=epochs, seeds=seeds)
        r = micronets.exact_resources(space, ch)
        print(name, ch, f"Mops {r['ops'] / 1e6:.2f}", "acc", np.round(acc, 4),
              f"mean {np.mean(acc):.4f}", f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()

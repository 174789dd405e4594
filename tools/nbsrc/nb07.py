import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from build import NOTEBOOKS, build
NAV = "[← 06 Deployment](06-deployment.ipynb) · **07 Comparison** · [Contents](../README.md#the-notebooks)"
cells = [
("md", f"""
# 07 · The survey's comparison, measured

{NAV}

The survey (van Kempen, Section III) could only compare MCUNet, μNAS, SpArSe, MicroNets and
Once-for-All through each paper's own numbers, on different tasks, boards and engines
("unfortunately no comparisons with either of the other papers are available"). This notebook
does what it could not: it takes the best model each method found **in this run** (notebooks
02–06 save them), and measures all of them with one harness on one task and one target: int8
accuracy in the TFLite-Micro interpreter on the same test set, the TFLM arena, our memory
plans, flash, MACs, and the latency of our generated C on an emulated Cortex-M. The papers'
published figures sit beside it, labelled as such.

*Runs in about 1 minute on a 2-core machine (33 s measured in a whole `make run`; measuring only, the searches ran in 02–06).*
"""),
("md", """
**Goals**
1. One table and one Pareto plot: every method's best model, measured the same way.
2. Search cost beside the result: CPU-minutes and trials of each search.
3. The papers' published figures beside ours, with an honest account of why they differ.
4. The survey's Table I (frameworks per paper) with a row for this project.

Which run: `RUN_DIR` names a run folder; empty means *this* run (when `make run` executes
02–06 before 07), else, per method, the latest run under `runs/` that saved its model (the
committed copy of this notebook compares the runs that produced the committed notebooks
02–06). If no run has any model, the search notebooks are executed here first with the
`FALLBACK_PRESET` parameters, so the notebook always has methods to compare. A method whose
model is of another task (MicroNets runs on keyword spotting by default) is flagged in the table;
with `SAME_TASK_PRESET` set to a preset name it is executed again here on `TASK` with that
preset's parameters (04 on the whole MNIST with `default`: about 20 minutes on 2 cores, measured
up to its retraining: warm-up 1.8 min, 3.6 min per target's search).
"""),
("code", """
RUN_DIR = ""            # empty: this run, else the latest run with saved models
TASK = "mnist"          # the task the comparison is made on
TARGET = "stm32f746"    # latency and fit are measured for this MCU
N_TEST = 0              # 0: the whole test set for the int8 accuracy
EMULATE = True          # emulate each model on TARGET's core (seconds per model)
FALLBACK_PRESET = "smoke"
SAME_TASK_PRESET = ""    # a preset name: rerun here on TASK each method whose model is of another task (empty: flag it)
SEED = 0
""", "parameters"),
("code", """
# Every parameter checked before any work: a value outside its rule stops here, named.
from helpers import params as P, runner

presets = sorted(p.stem for p in runner.PRESETS.glob("*.yaml"))
P.check(globals(), {
    "RUN_DIR": P.Str(),
    "TASK": P.Dataset(),
    "TARGET": P.Target(),
    "N_TEST": P.Int(min=0),
    "EMULATE": P.Bool(),
    "FALLBACK_PRESET": P.Choice(presets),
    "SAME_TASK_PRESET": P.Choice(["", *presets]),
    "SEED": P.Seed(),
})
"""),
("code", """
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import helpers
from helpers import compare, data, plots, runner, targets

helpers.seed_everything(SEED)
t_start = time.time()
target = targets.get(TARGET, reserve="tflm")
ds = data.load(TASK, seed=SEED)
print(target)
print(ds.describe().splitlines()[1])
"""),
("md", """
## Part 1 · Which run, and what it holds
"""),
("code", """
here = helpers.run.run_dir()
sources = compare.resolve_run(RUN_DIR, here)
if not sources:                          # nothing anywhere: run the searches here, one shared preset
    print(f"no saved models in any run: executing the search notebooks with preset {FALLBACK_PRESET!r}")
    for path, params, _ in runner.resolve(FALLBACK_PRESET, ",".join(compare.METHODS)):
        runner.execute(path, here, params)
    sources = compare.resolve_run("", here)
if SAME_TASK_PRESET:                     # e.g. MicroNets (04) ran on keyword spotting: run it on TASK too
    for nb, folder in compare.other_task_methods(sources, TASK).items():
        path = runner.select(nb)[0]
        params = dict(runner.resolve(SAME_TASK_PRESET, nb)[0][1], TASK=TASK)
        print(f"{nb} ran on another task in {folder.name}: executing it on {TASK} with {params}")
        sources[nb] = here / f"same-task-{nb}"
        runner.execute(path, sources[nb], params)
missing = compare.missing_methods(sources)
for nb in compare.METHODS:
    print(f"{nb:20s} <- {sources[nb].name if nb in sources else '(none)'}")
print("methods without a saved model:", ", ".join(missing) or "none")
"""),
("md", """
## Part 2 · Every method's best model, measured the same way

For each saved model: int8 accuracy in TFLite-Micro on the test set of its task, the arena
TFLite-Micro allocates (head = activation plan, total = head + persistent tail measured on a
64-bit host), our `tflm` plan estimate beside it (it must equal the head) and the `inplace`
plan (TinyEngine-style), the `.tflite` bytes, MACs, and our generated C on an emulated
Cortex-M (`inplace` plan, DSP kernels): cycles are *estimated* from a Cortex-M4 timing table
(at zero wait states; measured 0.48-0.66x the published MLPerf Tiny reference latencies on a
Cortex-M4 board; the Cortex-M7 figure is a heuristic, see docs/emulator.md).
"""),
("code", """
rows = compare.collect(sources, ds, TARGET, n_test=N_TEST or None, emulate=EMULATE)
table = compare.comparison(rows, TASK)
table
"""),
("code", """
# NBVAL_CHECK_OUTPUT
cols = ["method", "same_task", "test_accuracy_int8", "tflm_arena_head_bytes", "peak_sram_tflm_estimate_bytes",
        "peak_sram_inplace_bytes", "flash_bytes", "macs"]
print(table[[c for c in cols if c in table.columns]].to_string(index=False) if len(table) else "no models")
if len(table):
    exact = (table["peak_sram_tflm_estimate_bytes"] == table["tflm_arena_head_bytes"]).all()
    print("tflm plan estimate == measured arena head for every model:", bool(exact))
"""),
("code", """
if len(table):
    plots.comparison_pareto(table, sram="tflm_arena_head_bytes", title=f"{TASK} on {target.board}: best model per method");
"""),
("md", """
**Search cost.** Trials, CPU-minutes (the search's own processes and workers, from the notebooks'
records) and hypervolume. Hypervolumes are comparable only inside one notebook, where the
objectives and bounds are the same: aging evolution vs random search (02), Bayesian optimisation
vs aging evolution (03). Random search deploys no model of its own, so it appears here only.
"""),
("code", """
costs = compare.search_costs(sources)
costs
"""),
("md", """
## Part 3 · Beside the papers

Published figures, each on the paper's own task, board and engine (from `shared/anchors.md`).
They are not our measurements and are not comparable number for number: the tasks differ
(ImageNet, CIFAR-10, Speech Commands vs our offline MNIST / synthetic keyword set), the budgets
differ by orders of magnitude (μNAS: about 23 GPU-days; here: CPU-minutes), and the engines
differ (TFLM + CMSIS-NN on boards vs our interpreter measurement and emulated C).
"""),
("code", """
compare.published_table()
"""),
("code", """
for line in compare.discussion(table, TASK):
    print("-", line)
"""),
("md", """
## Part 4 · The survey's Table I, with this project

Frameworks used by each paper (• used, ◦ comparisons only), and what this project uses.
"""),
("code", """
compare.frameworks_table()
"""),
("code", """
out = helpers.run.run_dir()
table.to_csv(out / "comparison.csv", index=False)
(out / "comparison.txt").write_text(f"== comparison ({TASK}, {target.name})\\n"
                                    + (table[[c for c in cols if c in table.columns] + ["emulated_latency_ms", "search_cpu_minutes"]
                                              if "emulated_latency_ms" in table.columns else cols].to_string(index=False)
                                       if len(table) else "no models") + "\\n\\n== search cost\\n"
                                    + (costs.to_string(index=False) if len(costs) else "no searches recorded") + "\\n")
figures = {"task": TASK, "target": target.name, "methods_compared": int(len(table)),
           "methods_missing": len(missing), "wall_seconds": time.time() - t_start}
for row in table.to_dict("records"):
    slug = compare.slug(row["method"])
    for key in ("test_accuracy_int8", "tflm_arena_head_bytes", "flash_bytes", "macs", "emulated_latency_ms",
                "search_cpu_minutes"):
        if row.get(key) is not None and row.get(key) == row.get(key):
            figures[f"{slug}_{key}"] = row[key]
helpers.record("07-comparison", figures)
"""),
("md", f"""
**Which figures can move between reruns with the same seed:** wall-clock times and CPU-minutes
always; accuracies only if TensorFlow's CPU kernels differ (other CPU instruction sets or TF
versions). Resource figures (arena, flash, MACs, instructions) are functions of the saved models
and repeat exactly.

{NAV}
"""),
]
build(NOTEBOOKS + "/07-comparison.ipynb", cells)

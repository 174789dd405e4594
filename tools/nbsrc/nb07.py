import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from build import NOTEBOOKS, build
NAV = "[← 06 Deployment](06-deployment.ipynb) · **07 Comparison** · [Contents](../README.md#the-notebooks)"
cells = [
("md", f"""
# 07 · The survey's comparison, measured on equal terms

{NAV}

The survey (van Kempen, Section III) could only compare MCUNet, μNAS, SpArSe, MicroNets and
Once-for-All through each paper's own numbers, on different tasks, boards, budgets and
engines ("unfortunately no comparisons with either of the other papers are available"). This
notebook runs **every method under one protocol** (`helpers.protocol`): the same task and
data, the same target MCU and limits, the same search objectives, the same budget in
CPU-seconds (a supernet's training is charged to it), the same seeds. Every method's
finalists are then trained the same way, converted to int8 and measured by one harness
(TFLite-Micro accuracy, arena head and total, flash, emulated latency on the target), and the
differences between methods are judged against their spread over seeds.

*Runs in about 6 minutes on a 2-core machine at its defaults (MNIST, one seed, 45 CPU-seconds
per search; 408 s measured under the portable arithmetic beside another notebook). The full preset (both tasks, 3 seeds, 120 CPU-seconds per search)
is committed under `results/20261202-full/` and shown in Part 5.*
"""),
("md", """
**Goals**
1. One protocol: task, target and limits, objectives and reference point, budget, seeds.
2. Every method (random search, μNAS aging evolution, SpArSe BO, MicroNets DNAS, OFA) run
   under it, its finalists deployed and measured the same way.
3. A table with mean and spread over seeds, anytime curves, the deployed Pareto fronts.
4. The survey's qualitative claims judged on these measurements, with intervals.
5. The papers' published figures beside ours, labelled.
"""),
("code", """
TASKS = ["mnist"]        # "mnist" (μNAS/SpArSe-class limits) and/or "kws" (MicroNets-S class, STM32F446RE)
METHODS = ["random", "aging_evolution", "bayesian_optimization", "dnas", "ofa"]
SEEDS = [0]              # one job per task, method and seed
BUDGET_CPU_S = 45        # CPU-seconds per search (supernet training included)
FINALISTS = 2            # models of each job's front that are trained, deployed and measured
OVERRIDES = {}           # other protocol fields for every task, e.g. {"epochs_final": 1}
WORKERS = 2              # jobs at a time, each in its own process with one TensorFlow thread
JOBS_DIR = ""            # where job records go (empty: this run's folder; relative: to the project root)
RECORDED = "results/20261202-full/jobs"   # a committed full run shown in Part 5 (relative to the project root; empty: none)
SPARSE_RESULT = "results/20261203-default/03-sparse-pruning.json"   # 03's recorded figures: its deployed model, weights dense vs sparse on our engine (empty: skip)
SEED = 0                 # seed of the bootstrap intervals (the jobs' seeds are SEEDS)
""", "parameters"),
("code", """
# Every parameter checked before any work: a value outside its rule stops here, named.
from helpers import params as P, protocol as PR

P.check(globals(), {
    "TASKS": P.ListOf(P.Choice(list(PR.TASKS)), min_len=1, unique=True),
    "METHODS": P.ListOf(P.Choice(list(PR.METHODS)), min_len=1, unique=True),
    "SEEDS": P.ListOf(P.Seed(), min_len=1, unique=True),
    "BUDGET_CPU_S": P.Float(min=0, min_open=True),
    "FINALISTS": P.Int(min=1),
    "OVERRIDES": P.DictOf(P.Satisfies(lambda v: isinstance(v, (int, float)), "a number")),
    "WORKERS": P.Int(min=1),
    "JOBS_DIR": P.Str(),
    "RECORDED": P.Str(),
    "SPARSE_RESULT": P.Str(),
    "SEED": P.Seed(),
})
protocols = [PR.protocol(t, budget_cpu_s=float(BUDGET_CPU_S), seeds=tuple(SEEDS), finalists=FINALISTS, **OVERRIDES)
             for t in TASKS]   # raises on an unknown field or a value out of range
"""),
("code", """
import time
from pathlib import Path

import pandas as pd

import helpers
from helpers import compare

helpers.seed_everything(SEED)
t_start = time.time()
ROOT = Path(helpers.__file__).resolve().parents[1]     # the project root: relative paths start there
jobs_dir = (ROOT / JOBS_DIR) if JOBS_DIR else helpers.run.run_dir() / "07-comparison"
recorded = (ROOT / RECORDED) if RECORDED else None
"""),
("md", """
## Part 1 · The protocol

Limits are the search bounds of every method and the feasibility test of every deployed
model: the TFLite-Micro arena head (the activation plan, as the searches estimate it
byte-exactly), the `.tflite` size, MACs (the latency limit as a search can afford to see it)
and the emulated latency (checked on the deployed models). Hypervolumes are over (int8 test
error, arena head / SRAM limit, flash / flash limit) of each job's feasible deployed models,
reference point (1, 1, 1), so they compare across methods.
"""),
("code", """
for p in protocols:
    print(p.describe(), "\\n")
pd.DataFrame([{"method": PR.method_label(m), "paper": PR.METHODS[m][1]} for m in METHODS])
"""),
("md", """
## Part 2 · Every method, every seed

One job per (task, method, seed), `WORKERS` at a time, each in its own process; a job's record
is written as soon as it ends, so an interrupted run resumes here. A job that raises is recorded
with its error (shown in the table), the others go on.
"""),
("code", """
records = PR.run_all(protocols, METHODS, jobs_dir, workers=WORKERS)
print(f"{len(records)} jobs, {sum('error' in r for r in records)} failed; "
      f"{sum(r['wall_s'] for r in records) / 60:.1f} job-minutes of wall time")
"""),
("md", """
## Part 3 · The table: mean and spread over seeds

`best int8 acc`: the best TFLite-Micro int8 test accuracy among a job's feasible deployed
models; `HV`: the hypervolume of its feasible deployed models; both as mean, min and max over
seeds. `search CPU-s` shows each search's real cost (a search stops at the first trial after its
budget, so it overshoots by at most one trial).
"""),
("code", """
summary = PR.summary_table(records)
summary.drop(columns="id").round(4)
"""),
("code", """
deployed = PR.deployed_table(records)
deployed.round(4)
"""),
("md", """
## Part 4 · Anytime curves and deployed fronts

The anytime curve is each method's best accuracy *by its own estimate during the search*
(short training for random, aging evolution and BO; inherited weights for OFA; DNAS has one
result, the short-training score of its discrete network), median over seeds with the min-max
band. The fronts are measured: every deployed model of every seed.
"""),
("code", """
PR.plot(records);
"""),
("md", """
## Part 5 · Claims, with their intervals

Each claim over methods is judged on the seeds' values (a Welch t interval over seeds, 95 %: a
percentile bootstrap of 3 values per method is too narrow); a share of deployed models carries the
exact binomial (Clopper-Pearson) interval, and the SRAM ratio over deployed models a bootstrap over them. "held" or
"did not hold" only when the interval excludes the null, else "undecided at this budget". With
one seed there is no interval, and every claim is undecided. Then the methods' order by
hypervolume in each seed, and whether it changed.
"""),
("code", """
print("\\n".join(PR.report(records, seed=SEED)))
"""),
("md", """
### The full preset, recorded

The same protocol on both tasks with 3 seeds and 120 CPU-seconds per search (`make run
PRESET=full NB=07`, 70 minutes measured on a 2-core machine shared with other work), its job
records committed under `RECORDED`.
Loaded here, not rerun.
"""),
("code", """
full = PR.load_records(recorded) if recorded is not None and recorded.is_dir() else []
if full:
    print(f"{len(full)} recorded jobs; budget {sorted({r['protocol']['budget_cpu_s'] for r in full})} CPU-s, "
          f"seeds {sorted({r['seed'] for r in full})}; {sum('error' in r for r in full)} failed")
    display(PR.summary_table(full).drop(columns="id").round(4))
else:
    print("no recorded full run at", repr(RECORDED))
"""),
("code", """
if full:
    PR.plot(full)
    print("\\n".join(PR.report(full, seed=SEED)));
"""),
("md", """
## Part 6 · Beside the papers

Published figures, each on the paper's own task, board and engine (from `shared/anchors.md`).
They are not our measurements and are not comparable number for number: the tasks differ
(ImageNet, CIFAR-10, Speech Commands vs our offline MNIST / synthetic keyword set), the budgets
differ by orders of magnitude (μNAS: about 23 GPU-days; here: CPU-minutes), and the engines
differ (TFLM + CMSIS-NN on boards vs our interpreter measurement and emulated C).
"""),
("code", """
compare.published_table()
"""),
("md", """
**The survey's Table I**, frameworks used by each paper (• used, ◦ comparisons only), and what
this project uses.
"""),
("code", """
compare.frameworks_table()
"""),
("md", """
**SpArSe's zeros on a microcontroller.** The survey lists SpArSe with no framework: TFLite-Micro
stores every weight, zero or not, so a pruned model's flash saving exists only on paper. Our
engine stores a layer's weights compressed when that is smaller (`helpers.engine.sparse`). The
protocol above trains every finalist the same way, dense, so this is shown on 03's deployed,
pruned model, as 03 recorded it (`SPARSE_RESULT`): the same model built for the same MCU with
its weights dense and sparse, flash measured from the linked image, cycles emulated, outputs
compared with TFLite-Micro.
"""),
("code", """
if SPARSE_RESULT:
    sparse_tab = compare.sparse_engine_table(ROOT / SPARSE_RESULT)
    print(sparse_tab.attrs["summary"])
sparse_tab.round(3) if SPARSE_RESULT else None
"""),
("code", """
figures = {"tasks": ",".join(TASKS), "jobs": len(records), "jobs_failed": sum("error" in r for r in records),
           "budget_cpu_s": float(BUDGET_CPU_S), "seeds": len(SEEDS), "wall_seconds": time.time() - t_start}
for row in summary.to_dict("records"):
    key = f"{row['task']}_{row['id']}"
    for col, name in (("best int8 acc mean", "best_acc_mean"), ("HV mean", "hv_mean"),
                      ("trials (mean)", "trials_mean"), ("search CPU-s (mean)", "search_cpu_s_mean")):
        if row[col] == row[col]:
            figures[f"{key}_{name}"] = row[col]
for i, v in enumerate(PR.claims(records, seed=SEED)):
    figures[f"claim_{i}_verdict"] = v.word
helpers.record("07-comparison", figures)
"""),
("md", f"""
**What can move between reruns with the same seeds:** CPU times, and therefore how many trials
fit in a budget (a faster or busier machine gets more or fewer), and with them the models found;
accuracies also with TensorFlow's CPU kernels. That is why every verdict rests on the spread
over seeds, never on one run. Resource figures of a given model (arena, flash, MACs,
instructions) repeat exactly.

{NAV}
"""),
]
build(NOTEBOOKS + "/07-comparison.ipynb", cells)

import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from build import NOTEBOOKS, build
NAV = ("[← 03 SpArSe pruning](03-sparse-pruning.ipynb) · [Contents](../README.md#the-notebooks) · "
       "**04 MicroNets DNAS** · [05 Once-for-all →](05-once-for-all.ipynb)")
cells = [
("md", f"""
# 04 · Op count as a latency proxy, and differentiable NAS with resource terms (MicroNets)

{NAV}

MicroNets (Banbury et al., *MicroNets: Neural Network Architectures for Deploying TinyML
Applications on Commodity Microcontrollers*, MLSys 2021) made two points that this notebook
reproduces. First, **within one backbone, latency on a microcontroller is linear in the op
count** (they measured 0.95 < r² < 0.99 on STM32 boards with TFLite-Micro), so ops can stand in
for latency during a search. Second, a **differentiable NAS** (DNAS) over per-layer width and
depth, whose loss adds the *expected* model size, working memory and op count beyond their
targets, finds small / medium / large keyword-spotting models for three boards in one go. Here
latency comes from the Cortex-M emulator of `helpers.engine.emulator` (instruction-exact int8 kernels,
estimated cycles), never from a formula of the op count, and every searched model is retrained,
converted to int8 and measured in the real TensorFlow-Lite-Micro interpreter. Last, MicroNets'
**4-bit weights**: the three models' filters are rounded to 16 levels (TFLite's `INT4` tensors,
run by TFLite-Micro and, bit for bit, by our emulated C kernels) and flash, latency and accuracy
are measured against the int8 files.

**Scale of this run.** The default preset divides the boards' SRAM and flash by 16 for the DNAS
targets (`RESOURCE_SCALE = 0.0625`: the synthetic task is small, and a short run cannot train
board-sized networks), sets latency targets (18 / 16 / 40 ms) that put S, M and L at about 0.3,
0.8 and 2.7 Mops, where capacity still buys accuracy on 150 clips per class (measured before
choosing them, 3 seeds each, `scripts/kws_capacity.py`, logs in `results/20261202-kws-capacity/`:
DS-CNNs of 0.29 / 0.76 / 2.66 / 9.39 Mops reached 46.0 / 61.5 / 71.6 / 72.0 % on average, so
beyond about 2.7 Mops this set rewards data, not capacity), retrains each model with 3 seeds, and
fits the latency proxy on 8 models per backbone (emulating one model
costs ~2 s of CPU for DS-CNN, ~7 s for MobileNetV2, per target, conversion included: 30 models
per backbone would add ~9 CPU-minutes to a 3-minute notebook), so its r² intervals are wide.
The `full` preset uses the boards' real budgets (`RESOURCE_SCALE = 1`, TFLM overhead reserved as
published), a supernet of 96 channels × 6 blocks whose largest network exceeds every latency target,
2,000 clips per class, latency targets of 90 / 60 / 100 ms inside the range of the sampled models
(S, M, L near 3.2, 4.5 and 9.3 Mops: MicroNets' published 16.4 / 30.6 / 129 Mops would take hours per
epoch on 2 cores) and 30 latency models per backbone sampled from the searched space; its executed
notebook and figures are committed in `results/20261202-full-04/` (there, retrained with a cosine
learning-rate decay, latency binds all three models at 96–99 % of their targets and L reaches 90.35 % on
the synthetic set, one seed).

*Runs in about 4 minutes on a 2-core machine (4.1 min measured for the committed outputs under the portable arithmetic beside another notebook).*
"""),
("md", """
**Goals**
1. Sample models from one backbone, emulate them on a Cortex-M4 and a Cortex-M7, and fit
   `latency = a · ops + b`: read r², the residual spread and the Mops/s of each backbone.
2. Know the DNAS supernet: one *decision node* per searched layer (width in multiples of 8, or
   *identity* to drop a block), relaxed with Gumbel-softmax; implement the expected resources
   of a relaxed layer and check that they are **exact** for a one-hot choice.
3. Turn each board's SRAM, flash and a latency target into DNAS targets and run the search
   three times (S, M, L).
4. Emulate each discrete model before retraining and repair it until it meets its latency
   target; see where dropping a block (identity) pays.
5. Retrain the three discrete models and check them **measured**: int8 accuracy, TFLM arena,
   flash and emulated latency against the board, and which limit binds each model.
6. Round the three models' filters to 4 bits and measure what MicroNets' sub-byte weights buy
   (flash) and cost (accuracy, cycles).

**Constraints, stated up front** (TFLM runtime overhead reserved as MicroNets measured it,
4 KB SRAM + 37 KB flash, published (MicroNets, 2021)):

| model | board | core, clock | SRAM / flash for the model |
|---|---|---|---|
| S | STM32F446RE | Cortex-M4, 180 MHz | 124 KB / 475 KB |
| M | STM32F746ZG | Cortex-M7, 216 MHz | 316 KB / 987 KB |
| L | STM32F767ZI | Cortex-M7, 216 MHz | 508 KB / 2011 KB |

Keyword spotting here runs on a **synthetic** speech set when Google Speech Commands cannot be
downloaded (offline machines): accuracies are then *accuracies on synthetic speech*, not
comparable to MicroNets' 95–96 %.
"""),
("code", """
TASK = "kws"                 # "kws" (MicroNets' flagship), "mnist" or "fashion_mnist"
TARGETS = {"S": "stm32f446re", "M": "stm32f746zg", "L": "stm32f767zi"}
LATENCY_MS = {"S": 18.0, "M": 16.0, "L": 40.0}    # latency target per model -> ops target (Part 3)
RESOURCE_SCALE = 0.0625      # DNAS targets: this fraction of the SRAM and flash budget of each board
MAX_WIDTH = 64               # widest layer of the supernet (channels)
WIDTH_STEP = 8               # width granularity (4 or 8)
N_BLOCKS = 4                 # depthwise-separable blocks (each can become identity)
N_PER_CLASS = 150            # kws: training clips per class (synthetic set)
N_TRAIN = 0                  # subset of the training split (0: all)
N_TEST = 0                   # subset of the test split (0: all)
LATENCY_BACKBONES = ["dscnn", "mobilenetv2"]
LATENCY_TARGETS = ["stm32f446re", "stm32f746zg"]   # one Cortex-M4, one Cortex-M7
N_LATENCY_MODELS = 8         # sampled models per backbone
EPOCHS_WARMUP = 4            # supernet weights only, random sub-networks (shared by S, M, L)
EPOCHS_SEARCH = 8            # joint weights + architecture epochs per target
EPOCHS_RETRAIN = 15          # training of each discrete model from scratch
LR_COSINE = False            # retraining: learning rate 3e-3 constant (False) or decaying to 0 along a cosine
RETRAIN_SEEDS = [0, 1, 2]    # S / M / L retrained once per seed: accuracy with its interval over seeds
LAMBDA_SIZE = 5.0            # penalty weights (per unit of relative excess over the target)
LAMBDA_MEM = 5.0
LAMBDA_OPS = 5.0
ARCH_LR = 0.05
DEPTH_OPS_FRACTION = 0.8     # depth-search demo: ops target, a fraction of the narrowest full-depth network
SEED = 0
""", "parameters"),
("code", """
# Every parameter checked before any work (TARGETS before the latency study): a value
# outside its rule, or parameters that do not fit together, stop here, named.
from helpers import params as P
from helpers.methods import micronets_latency

weight = P.Float(min=0)
P.check(globals(), {
    "TASK": P.Dataset(),
    "TARGETS": P.DictOf(P.Target(), min_len=1),
    "LATENCY_MS": P.DictOf(P.Float(min=0, min_open=True), min_len=1),
    "RESOURCE_SCALE": P.Float(min=0, max=1, min_open=True),
    "MAX_WIDTH": P.Int(min=4),
    "WIDTH_STEP": P.Choice([4, 8]),
    "N_BLOCKS": P.Int(min=1),
    "N_PER_CLASS": P.Int(min=1),
    "N_TRAIN": P.Int(min=0),
    "N_TEST": P.Int(min=0),
    "LATENCY_BACKBONES": P.ListOf(P.Choice(list(micronets_latency.BACKBONES)), min_len=1, unique=True),
    "LATENCY_TARGETS": P.ListOf(P.Target(), min_len=1, unique=True),
    "N_LATENCY_MODELS": P.Int(min=2),             # a straight-line fit needs two points
    "EPOCHS_WARMUP": P.Int(min=0),
    "EPOCHS_SEARCH": P.Int(min=1),
    "EPOCHS_RETRAIN": P.Int(min=1),
    "LR_COSINE": P.Bool(),
    "RETRAIN_SEEDS": P.ListOf(P.Seed(), min_len=1, unique=True),
    "LAMBDA_SIZE": weight,
    "LAMBDA_MEM": weight,
    "LAMBDA_OPS": weight,
    "ARCH_LR": P.Float(min=0, min_open=True),
    "DEPTH_OPS_FRACTION": P.Float(min=0, max=1, min_open=True),
    "SEED": P.Seed(),
})
P.require(MAX_WIDTH % WIDTH_STEP == 0, "MAX_WIDTH", MAX_WIDTH, f"must be a multiple of WIDTH_STEP = {WIDTH_STEP}")
P.require(set(TARGETS) <= set(LATENCY_MS), "LATENCY_MS", LATENCY_MS,
          f"must give a latency for every model of TARGETS {sorted(TARGETS)}")
P.require("dscnn" in LATENCY_BACKBONES, "LATENCY_BACKBONES", LATENCY_BACKBONES,
          "must include 'dscnn' (its latency fit gives the ops target of each model)")
unfitted = micronets_latency.unfitted_targets(TARGETS.values(), LATENCY_TARGETS)
P.require(not unfitted, "TARGETS", TARGETS, f"boards {unfitted} share no core and clock with "
          f"LATENCY_TARGETS {LATENCY_TARGETS}, so no latency fit gives their ops target")
"""),
("code", """
import json, time
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import helpers
from helpers import data, plots, resources, stats, targets
from helpers.methods import micronets, micronets_int4, micronets_latency

helpers.seed_everything(SEED)
t_start = time.time()
store = helpers.run.run_dir() / "04-micronets-dnas"          # trial store: rerun resumes
kw = {"n_per_class": N_PER_CLASS} if TASK == "kws" else {}
ds = data.load(TASK, seed=SEED, **kw)
if N_TRAIN or N_TEST:
    ds = ds.subset(n_train=N_TRAIN or None, n_test=N_TEST or None, seed=SEED)
INPUT, CLASSES = ds.input_shape, ds.num_classes
ON = " on synthetic speech" if "SYNTHETIC" in ds.source else ""
print(ds.describe())
"""),
("md", """
## Part 1 · Is the op count a latency proxy?

MicroNets sampled models *uniformly from one backbone's search space*, ran them on the boards,
and found latency ≈ a · ops + b with r² between 0.95 and 0.99; the slope differs between
backbones (KWS models ran ~40 % more ops per second than CIFAR-10 ones on the same board).
We do the same with two backbones: the **DS-CNN** keyword-spotting backbone searched below, and
a **MobileNetV2** image backbone (`helpers.spaces.BlockArch`, CIFAR-shaped 32×32×3 input).
Each model gets random int8 weights (latency does not depend on their values), and is
compiled to C and run on an emulated Cortex-M4 (F446RE, 180 MHz) and Cortex-M7 (F746ZG,
216 MHz). The instruction count is exact; cycles are *estimated* from the core's timing table
(see `helpers.engine.emulator.CYCLE_MODEL_NOTES`), so the latency here is an emulator estimate, not a
board measurement, but it is never computed from the op count.
"""),
("code", """
samples = {bb: micronets_latency.sample_backbone(bb, N_LATENCY_MODELS, seed=SEED,
                                    **({"input_shape": INPUT, "num_classes": CLASSES,
                                        "max_width": MAX_WIDTH, "n_blocks": N_BLOCKS} if bb == "dscnn" else {}))
           for bb in LATENCY_BACKBONES}
c_emu = helpers.run.cpu_seconds()
study = micronets_latency.latency_study(samples, LATENCY_TARGETS, seed=SEED, store=store)
emu_cpu_per_model = (helpers.run.cpu_seconds() - c_emu) / max(sum(map(len, samples.values())), 1)
print(f"emulation cost: {emu_cpu_per_model:.1f} CPU s per model ({len(LATENCY_TARGETS)} targets; "
      f"0 when every row came from the store)")
lat_fit = micronets_latency.fit_latency(study)
print(lat_fit)
study.table()[["model", "target", "ops", "instructions", "cycles", "latency_ms"]].head(6)
"""),
("code", """
plots.latency_vs_ops(study, lat_fit)
plots.latency_residuals(study, lat_fit);
"""),
("code", """
# check: the fit against the published range, and the backbones' throughput per op
fits = lat_fit.table()
print(fits[["n", "r2", "resid_sd_pct", "max_abs_resid_pct", "mops_per_s"]].round(3))
print("published (MicroNets, 2021): 0.95 < r² < 0.99 on F446RE / F746ZG (TFLM + CMSIS-NN)")
# each claim with its sample: a bootstrap over the sampled models (rows (Mops, ms) resampled together)
lat_rows = {k: np.column_stack([g["ops"] / 1e6, g["latency_ms"]]).astype(float)
            for k, g in study.table().groupby(["backbone", "target"], sort=True)}
lat_verdicts = {}
for (bb, t), xy in lat_rows.items():
    lat_verdicts[f"r2_{bb}_{t}"] = stats.verdict(
        stats.r2_ci(xy[:, 0], xy[:, 1], seed=SEED), null=0.95,
        claim=f"latency linear in ops, r² above 0.95 (MicroNets' lower end), {bb} on {t}")
slope = lambda xy: np.polyfit(xy[:, 0], xy[:, 1], 1)[0] if np.ptp(xy[:, 0]) > 0 else np.nan   # ms per Mop
if {"dscnn", "mobilenetv2"} <= set(LATENCY_BACKBONES):
    for t in LATENCY_TARGETS:
        ratio = lat_fit.get("dscnn", t)["mops_per_s"] / lat_fit.get("mobilenetv2", t)["mops_per_s"]
        print(f"{t}: DS-CNN runs {100 * (ratio - 1):+.0f} % ops/s vs MobileNetV2 "
              f"(published: KWS ~40 % faster per op than CIFAR-10, MicroNets 2021)")
        # ratio of per-op latencies (slopes): MobileNetV2's ms per Mop over DS-CNN's = DS-CNN's speed-up per op
        ci = stats.ratio_ci(lat_rows[("mobilenetv2", t)], lat_rows[("dscnn", t)], stat=slope, seed=SEED)
        lat_verdicts[f"dscnn_speedup_per_op_{t}"] = stats.verdict(
            ci, null=1.0, claim=f"DS-CNN (KWS) runs faster per op than MobileNetV2 on {t} (ops/s ratio)")
        print(f"  published ~1.40 is {'inside' if ci.low <= 1.4 <= ci.high else 'outside'} the 95 % interval "
              f"[{ci.low:.2f}, {ci.high:.2f}]")
for v in lat_verdicts.values():
    print(v.summary())
assert all(0 <= r <= 1 for r in fits["r2"].dropna())
"""),
("code", """
# where the time goes: emulated instructions per MAC by operator type (and its share of the MACs)
study.cost_per_mac().round(2)
"""),
("md", """
Read the table before trusting an ops target. In these int8 C kernels a depthwise convolution
costs several times more instructions per MAC than a 1x1 convolution with enough channels, and
narrow layers cost more per MAC than wide ones. So latency is linear in ops only as long as the
*mix* of operators stays similar, which is what "within one backbone" buys; the residual spread
is what is left of the mix. MicroNets found KWS models ~40 % faster per op than CIFAR-10 ones
(CMSIS-NN kernels on real boards); compare with the Mops/s ratio printed above for our kernels.

Both verdicts above carry their sample: `N_LATENCY_MODELS` sampled models per backbone, resampled
(each model's ops and latency together) 2,000 times to give a 95 % interval of the r² and of the
ratio of the fitted per-op latencies (`helpers.stats.r2_ci`, `ratio_ci`). A claim is decided only
when its interval excludes the null (r² 0.95, ratio 1), otherwise it is *undecided at this budget*:
with 8 models the r² interval is wide, more models (the `full` preset) narrow it, and under 5
models there is no interval at all (a resample of 3 models fits a line almost perfectly).
"""),
("md", """
The residual spread is the error you accept when a search uses ops instead of latency: read
it as "an op-count target of X Mops means a latency of a·X + b ms, give or take that much".
Part 3 uses exactly this inversion to turn a latency target into an ops target.

## Part 2 · The supernet and its decision nodes

The backbone is DS-CNN (Zhang et al. 2017, MicroNets' KWS backbone): a stem convolution, then
`N_BLOCKS` depthwise-separable blocks (3×3 depthwise + 1×1 pointwise), global average pooling
and a classifier. Each **decision node** picks one option:

* the stem's width, from `WIDTH_STEP, 2·WIDTH_STEP, …, MAX_WIDTH`;
* each block's pointwise width from the same list, **or identity** (the block disappears:
  that is the depth search).

The supernet computes every layer at `MAX_WIDTH` channels and multiplies the output by a mask
`Σ_k g_k · [channel < width_k]`, where `g` is a Gumbel-softmax sample of the node's logits α
(FBNetV2-style channel masking); identity mixes the block input back in, `y = g_id·x +
block(x)·mask`. One forward pass therefore trains all widths at once.
"""),
("code", """
# NBVAL_CHECK_OUTPUT
space = micronets.dscnn_space(INPUT, CLASSES, max_width=MAX_WIDTH, step=WIDTH_STEP, n_blocks=N_BLOCKS)
print(space)
biggest = [max(o) for _, o in space.nodes]
print("largest architecture:", biggest, micronets.exact_resources(space, biggest))
"""),
("md", """
### Implement: the expected resources of a relaxed layer

The penalties need resources that are differentiable in the node probabilities. Carry each
tensor's channel count as a **probability vector** over the width values (identity passes the
previous vector on). For a pointwise layer with input distribution `P_in` (over widths `u`)
and its own node probabilities `p` (over options `o`, identity = 0), decisions being
independent:

* MACs: `E[H·W·c_in·c_out] = H·W · (P_in·u) · (p·o)`;
* working memory (SpArSe: input + output bytes of the operator, 16-byte aligned as TFLM
  allocates): `P(block exists)·(P_in·align(H·W·u)) + p·align(H·W·o)`;
* the next tensor's distribution: `p` mapped onto the widths, plus `p_identity · P_in`.

For a one-hot `p` these *are* the exact numbers, which is what makes the relaxation honest.
"""),
("code", """
rng = np.random.default_rng(SEED)
probs = [rng.dirichlet(np.ones(len(o))) for _, o in space.nodes]     # some relaxed state
U = np.array(space.widths, float)
H, W = space.spatial()[1]
P_in = probs[0]                                  # stem width distribution
p, o = probs[1], np.array(space.options(1), float)
exists = p[o > 0].sum()
macs_pw = H * W * (P_in @ U) * (p @ o)
align = lambda n: (n + 15) // 16 * 16
wm_pw = exists * (P_in @ align(H * W * U)) + p @ align(H * W * o)
per_op = micronets.expected_resources(space, probs, per_op=True)["ops_wm"]
print(f"block 0 pointwise: E[MACs] = {macs_pw:,.0f}, E[working memory] = {wm_pw:,.0f} B "
      f"(helpers: {per_op[2]:,.0f} B)")
assert np.isclose(wm_pw, per_op[2])
"""),
("code", """
# NBVAL_CHECK_OUTPUT
# check: expected resources of a one-hot choice == exact resources of that architecture
rng = np.random.default_rng(SEED)
for _ in range(5):
    ch = micronets.random_choices(space, rng)
    e = micronets.expected_resources(space, micronets.one_hot(space, ch))
    x = micronets.exact_resources(space, ch)      # helpers.resources on the converter's graph
    same = all(np.isclose(e[k], x[k]) for k in micronets.RESOURCES)
    print(f"{str(ch):24s} size {x['model_size']:>7,} B  WM {x['working_memory']:>6,} B  "
          f"ops {x['ops']:>10,}  expected == exact: {same}  (TFLM greedy arena {x['tflm_peak_sram_bytes']:,} B)")
    assert same
"""),
("md", """
The last column is a reminder that SpArSe's working memory (max over operators of input +
output) is a *lower bound* on TFLite-Micro's arena: TFLM's greedy planner can fragment the arena
above it. We penalise working memory during the search and check the arena by measurement in
Part 5.
"""),
("code", """
# check: with one-hot gates the supernet computes exactly the discrete network
helpers.seed_everything(SEED)
c0 = helpers.run.cpu_seconds()
net = micronets.DNASSupernet(space, seed=SEED)
ch = micronets.random_choices(space, np.random.default_rng(SEED + 1))
x = ds.x_val[:8]
diff = np.abs(net(x, net.gates_for(ch)).numpy() - net.extract(ch)(x, training=False).numpy()).max()
print(f"choices {ch}: max |supernet - extracted discrete model| = {diff:.2e}")
assert diff < 1e-4
"""),
("md", """
## Part 3 · Targets for three boards

MicroNets sized S / M / L for the F446RE, F746ZG and F767ZI. Their boards have *a lot* of memory
for our small (synthetic) task: a DS-CNN of 64 channels needs ~16 KB of working memory and
~40 KB of flash, far below even the F446RE's 124 KB / 475 KB. If we used the full budgets,
nothing would bind and S, M and L would be the same network. So the DNAS targets are
**`RESOURCE_SCALE` × each board's budget** (same fraction for every board, so the three
targets keep the boards' ratios 1 : 2.5 : 4 in SRAM), and the model-size target also
leaves room for the parts of the `.tflite` the penalty does not count (operator tables,
header). The **ops target** comes from a latency target through the Part 1 fit of this
backbone on the board's core: `ops = (latency − b) / a`. The discrete models are then checked
against the **full** budgets, measured.
"""),
("code", """
rows, TGT = [], {}
for lab, board in TARGETS.items():
    t = targets.get(board, reserve="tflm")
    ops_t = lat_fit.ops_for_latency("dscnn", t.name, LATENCY_MS[lab])
    TGT[lab] = micronets.resource_targets(space, t, scale=RESOURCE_SCALE, ops=ops_t)
    rows.append({"model": lab, "board": t.board, "SRAM budget B": t.sram_budget,
                 "flash budget B": t.flash_budget, "latency target ms": LATENCY_MS[lab],
                 "DNAS working memory B": TGT[lab]["working_memory"],
                 "DNAS model size B": TGT[lab]["model_size"], "DNAS Mops": ops_t / 1e6})
pd.DataFrame(rows).set_index("model").round(1)
"""),
("md", """
## Part 4 · The search

The loss of every batch is cross-entropy of a Gumbel-softmax sample plus
`Σ_r λ_r · max(0, E[r] / target_r − 1)` for r ∈ {model size, working memory, ops}; weights
and logits are updated together (Adam), the temperature anneals from 3 to 0.3. First the
supernet weights are warmed up with uniformly random sub-networks (shared by the three
searches), then each target gets its own search from those weights. At the end each node takes
its most probable option; if the argmax network still exceeds a target (the expectation met
it, the mode may not), a greedy repair moves one node at a time to its next smaller option.
"""),
("code", """
helpers.seed_everything(SEED)
c0 = helpers.run.cpu_seconds()
net = micronets.DNASSupernet(space, seed=SEED)
warm_loss = micronets.warmup(net, ds, EPOCHS_WARMUP, seed=SEED)
warm = net.get_state()
print("warm-up loss per epoch:", np.round(warm_loss, 3))
LAMBDA = {"model_size": LAMBDA_SIZE, "working_memory": LAMBDA_MEM, "ops": LAMBDA_OPS}
found = {}
for lab in TARGETS:
    found[lab] = micronets.search(space, ds, TGT[lab], epochs=EPOCHS_SEARCH, penalty_weights=LAMBDA,
                             arch_lr=ARCH_LR, seed=SEED, net=net, init_state=warm, name=lab)
    print(found[lab])
search_cpu = helpers.run.cpu_seconds() - c0           # warm-up + the three searches
"""),
("code", """
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
plots.dnas_history(found, ax=axes[0])
plots.dnas_probs(found[list(found)[0]], ax=axes[1]);
"""),
("code", """
# check: each discrete architecture meets its DNAS targets (exact resources)
for lab, r in found.items():
    print(lab, r.choices, "meets targets:", r.fits_targets(), f"(argmax {r.raw_choices}, {r.repaired} repair steps)")
    assert all(r.fits_targets().values())
"""),
("md", """
### The latency limit, measured before retraining

The ops target came from a straight-line fit, and a network on the fit's line can still run a
little over its latency target. Latency does not depend on the weight values (the kernels'
instruction counts are the same for any int8 weights), so each discrete architecture is
converted with random weights and emulated on its board *before* it is retrained; while it is
over its latency target, the same greedy repair takes one more step and the new network is
emulated again (`micronets.meet_latency`).
"""),
("code", """
lat_log = {lab: micronets.meet_latency(r, TARGETS[lab], LATENCY_MS[lab], seed=SEED) for lab, r in found.items()}
for lab, log in lat_log.items():
    print(lab, " -> ".join(f"{row['latency_ms']:.1f} ms ({row['ops'] / 1e6:.2f} Mops)" for row in log),
          f"| target {LATENCY_MS[lab]} ms, {len(log) - 1} latency repair step(s), final {found[lab].choices}")
    assert log[-1]["latency_ms"] <= LATENCY_MS[lab]
"""),
("md", """
### Depth search: where the identity option pays

At the S / M / L targets the searches of the committed runs kept every block: narrowing layers
met the targets (read the identity column below). Identity has to pay once the ops target
falls below the **narrowest full-depth network** (every layer at its smallest width): no width
choice meets it, only dropping blocks does. One more search from the same warm-up, with S's
memory targets and `DEPTH_OPS_FRACTION` × that network's ops, shows which blocks the DNAS drops.
The argmax of independent nodes overshoots here: each block ends near even odds between
identity and its narrowest width, and the argmax of every one is identity. So this search also
*fills up* (`micronets.fill_up`, the repair run backwards): while a node's next larger option
still fits, the most probable such move is taken, and the blocks the search was least sure to
drop come back first.
"""),
("code", """
narrowest = [min(o for o in opts if o > 0) for _, opts in space.nodes]
narrow_ops = micronets.exact_resources(space, narrowest)["ops"]
depth_tgt = {**TGT[list(TARGETS)[0]], "ops": DEPTH_OPS_FRACTION * narrow_ops}
depth = micronets.search(space, ds, depth_tgt, epochs=EPOCHS_SEARCH, penalty_weights=LAMBDA,
                         arch_lr=ARCH_LR, seed=SEED, net=net, init_state=warm, name="depth", fill=True)
depth_id_argmax = [i for i, c in enumerate(depth.raw_choices[1:], 1) if c == 0]
depth_id = [i for i, c in enumerate(depth.choices[1:], 1) if c == 0]
print(f"narrowest full-depth network {narrowest}: {narrow_ops / 1e6:.3f} Mops; "
      f"ops target {depth_tgt['ops'] / 1e6:.3f} Mops")
print(f"DNAS argmax {depth.raw_choices}: identity blocks {depth_id_argmax or 'none'}; after "
      f"{depth.repaired} repair and {depth.filled} fill step(s) {depth.choices} "
      f"({depth.exact['ops'] / 1e6:.3f} Mops), identity blocks {depth_id or 'none'}")
assert depth.exact["ops"] <= depth_tgt["ops"] and depth_id      # only dropping blocks meets this target
depth.table().T
"""),
("md", """
## Part 5 · Retrain, deploy, measure

MicroNets retrains the discrete networks from scratch. Each one is trained for
`EPOCHS_RETRAIN` epochs (Adam at 3e-3; with `LR_COSINE` the rate decays to 0 along a cosine,
which the `full` preset uses: with 2,000 clips per class its S / M / L reached 89.0 / 89.6 /
90.4 % against 86.6 / 87.8 / 89.5 % at a constant rate, one seed each, while at the default's 150
clips per class the decay lowered the 3-seed means from 43 / 62 / 72 % to 30 / 51 / 68 %; the
runs are listed in `results/20261202-full-04/README.md`), converted to int8, run in the TFLite-Micro interpreter (accuracy on the whole test split, arena measured by TFLM's recording allocator) and emulated on its own board.
"""),
("code", """
measured = {}
for lab, r in found.items():
    measured[lab] = micronets.retrain_and_deploy(r.arch, ds, TARGETS[lab], epochs=EPOCHS_RETRAIN, seed=SEED,
                                                 cosine=LR_COSINE)
    m = measured[lab]
    helpers.save_model("04-micronets-dnas", m["tflite"], label=lab.lower())  # for 07-comparison
    print(f"{lab}: int8 test accuracy{ON} {m['test_accuracy_int8']:.4f}, arena {m['arena_total_bytes']:,} B, "
          f"flash {m['tflite_bytes']:,} B, {m['ops'] / 1e6:.2f} Mops, emulated {m['latency_ms']:.1f} ms")
"""),
("code", """
table = pd.DataFrame({lab: {
    "board": TARGETS[lab], "choices": str(found[lab].choices),
    f"int8 test accuracy{ON}": m["test_accuracy_int8"],
    "TFLM arena (measured) B": m["arena_total_bytes"], "SRAM budget B": m["sram_budget"],
    "working memory (SpArSe est.) B": found[lab].exact["working_memory"],
    "flash = .tflite (measured) B": m["tflite_bytes"], "flash budget B": m["flash_budget"],
    "Mops": m["ops"] / 1e6, "Mops target": TGT[lab]["ops"] / 1e6,
    "latency emulated ms": m["latency_ms"], "latency target ms": LATENCY_MS[lab],
    "latency from ops fit ms": lat_fit.get("dscnn", TARGETS[lab])["a_ms_per_mop"] * m["ops"] / 1e6
                               + lat_fit.get("dscnn", TARGETS[lab])["b_ms"],
    "tightest DNAS target (% used)": "{} ({:.0f} %)".format(*max(
        ((k, 100 * found[lab].exact[k] / v) for k, v in TGT[lab].items()), key=lambda kv: kv[1])),
    "binding board limit (% used)": "{} ({:.0f} %)".format(*micronets.binding_limit(m, LATENCY_MS[lab])),
    "identity blocks": str([i for i, c in enumerate(found[lab].choices[1:], 1) if c == 0]),
    "fits board (measured)": m["fits"]} for lab, m in measured.items()})
table
"""),
("md", """
Estimates beside measurements: the SpArSe working memory used by the search, and
`helpers.resources`' replica of TFLM's greedy planner, against the arena *head* TFLM measures
(the activation plan; the total adds TFLM's persistent structures, which on this 64-bit host
are larger than on the 32-bit MCU); and the latency predicted by the Part 1 ops fit against the
emulated latency of the deployed file. SpArSe's working memory is a lower bound of the arena:
the greedy planner places buffers largest first and can leave holes.
"""),
("code", """
# check: every model fits its board, measured; S < M < L in ops
for lab, m in measured.items():
    wm, plan_est, head = found[lab].exact["working_memory"], found[lab].exact["tflm_peak_sram_bytes"], m["arena_head_bytes"]
    lat_err = 100 * (table.loc["latency from ops fit ms", lab] - m["latency_ms"]) / m["latency_ms"]
    print(f"{lab}: fits SRAM {m['fits_sram']}, flash {m['fits_flash']} | arena head measured {head:,} B: "
          f"SpArSe working memory {wm:,} B ({100 * (wm - head) / head:+.1f} %), TFLM-plan estimate "
          f"{plan_est:,} B ({100 * (plan_est - head) / head:+.1f} %) | ops-fit latency vs emulated {lat_err:+.1f} %")
ops = [measured[lab]["ops"] for lab in TARGETS]
print("ops S < M < L:", ops[0] < ops[1] < ops[2], [f"{o / 1e6:.2f}M" for o in ops])
binding = {lab: micronets.binding_limit(m, LATENCY_MS[lab]) for lab, m in measured.items()}
for lab, (lim, pct) in binding.items():
    print(f"{lab}: binding board limit {lim} at {pct:.0f} % of it "
          f"({'within' if pct >= 85 else 'NOT within'} 15 % of a limit); identity blocks "
          f"{[i for i, c in enumerate(found[lab].choices[1:], 1) if c == 0] or 'none'}")
assert all(m["fits"] for m in measured.values())
"""),
("md", """
### S < M < L in accuracy, over seeds

One training run per model says little: retraining the same network with another seed moves
its accuracy by a few points on this small synthetic set. Each discrete model is therefore
retrained from scratch once per seed of `RETRAIN_SEEDS` (the deployed model above is the `SEED`
run; the others are converted to int8 and measured in TFLite-Micro the same way, without the
emulation), and each step of the ranking is a verdict on the difference of mean accuracy with a
Welch t interval over those seeds (`stats.welch_ci`; a bootstrap of 3 values per model would be too narrow).
"""),
("code", """
acc_seeds = {lab: {SEED: m["test_accuracy_int8"]} for lab, m in measured.items()}
for lab, r in found.items():
    more = [s for s in RETRAIN_SEEDS if s != SEED]
    acc_seeds[lab].update(zip(more, micronets.seed_accuracies(r.arch, ds, epochs=EPOCHS_RETRAIN, seeds=more,
                                                                cosine=LR_COSINE)))
acc_arr = {lab: np.array([a[s] for s in sorted(a)]) for lab, a in acc_seeds.items()}
labs = list(TARGETS)
acc_verdicts = {f"accuracy_{a.lower()}_lt_{b.lower()}": stats.verdict(
    stats.welch_ci(acc_arr[b], acc_arr[a]), claim=f"{b} is more accurate than {a}{ON} (int8, over seeds)")
    for a, b in zip(labs, labs[1:])}
for v in acc_verdicts.values():
    print(v.summary())
pd.DataFrame({lab: {"seeds": len(x), "mean": x.mean(), "min": x.min(), "max": x.max(), "Mops": measured[lab]["ops"] / 1e6}
              for lab, x in acc_arr.items()}).T.round(4)
"""),
("code", """
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
labs = list(measured)
for i, (key, bud, name) in enumerate([("arena_total_bytes", "sram_budget", "SRAM (arena)"),
                                      ("tflite_bytes", "flash_budget", "flash (.tflite)")]):
    axes[0].bar(np.arange(len(labs)) + 0.38 * i, [100 * measured[l][key] / measured[l][bud] for l in labs],
                0.38, label=name)
axes[0].set_xticks(np.arange(len(labs)) + 0.19)
axes[0].set_xticklabels([f"{l}\\n{TARGETS[l]}" for l in labs])
axes[0].set_ylabel("% of the board's budget (measured)"); axes[0].legend(); axes[0].set_title("memory used")
mops = [measured[l]["ops"] / 1e6 for l in labs]
mean = np.array([acc_arr[l].mean() for l in labs])
span = np.array([[mean[i] - acc_arr[l].min(), acc_arr[l].max() - mean[i]] for i, l in enumerate(labs)]).T
axes[1].errorbar(mops, mean, yerr=span, fmt="o", capsize=4)
for l, x, y in zip(labs, mops, mean):
    axes[1].annotate(l, (x, y))
axes[1].set_xlabel("Mops"); axes[1].set_ylabel(f"int8 test accuracy{ON}")
axes[1].set_title(f"S / M / L: mean and range over {len(acc_arr[labs[0]])} seeds");
"""),
("md", """
## Part 6 · 4-bit weights (MicroNets' sub-byte quantisation)

MicroNets deploys some models with 4-bit weights and 8-bit activations. TFLite stores such a
filter as an `INT4` tensor, two values per byte (element 2i in the low nibble); TFLite-Micro
runs it by unpacking to int8, so the arithmetic is the int8 one on 16-level weights. Here the
retrained int8 files are rounded after training, no fine-tune: each output channel of every
convolution gets the scale `max(max w / 7, −min w / 8)` (the fully connected layer one scale for
the tensor, which is what TFLM accepts), and its int32 bias is re-quantised to the new scale.
Our generated C keeps the filter packed in flash and expands 8 weights with one shift, two masks
and four `SXTB16` (`helpers/engine/csrc/tn_int4.c`).
"""),
("code", """
from helpers.engine import int4
q, scale = int4.round_to_int4(np.array([[0.31, -0.12, 0.07, -0.40]]), axis=0)   # one channel
print("16 levels:", q, "scale", scale, "-> packed", [hex(b) for b in int4.pack_int4(q)])
q4 = micronets_int4.int4_study({lab: m["tflite"] for lab, m in measured.items()}, ds, TARGETS, seed=SEED)
print(q4)
q4.table()
"""),
("code", """
# NBVAL_CHECK_OUTPUT
# check: the emulated 4-bit C equals TFLite-Micro bit for bit, and the files got smaller
for lab, v in q4.results.items():
    print(lab, "emulated == TFLM:", v["emulated_bit_exact"],
          "| .tflite smaller:", v["tflite_bytes_int4"] < v["tflite_bytes_int8"])
    assert v["emulated_bit_exact"] and v["tflite_bytes_int4"] < v["tflite_bytes_int8"]
"""),
("md", """
Read the accuracy change with its interval (a paired bootstrap over the test clips): post-training
rounding to 16 levels is a coarse step, and MicroNets trained their 4-bit models quantisation-aware.
The flash saved is the filters' half; biases stay int32 and the operator tables are unchanged, so
small models save less than half. The cycles column is the price of unpacking nibbles in our
kernels; TFLM's reference kernels unpack a filter into an arena scratch buffer instead, so its
arena head grows by the largest int8 filter (compare the two arena columns), while our packed C
kernels need no such buffer (the emulated SRAM columns).

**Published, for comparison** (MicroNets 2021, real Speech Commands, CMSIS-NN kernels, real
boards; not our measurements): KWS-S 95.3 %, 102 KB flash, 53.2 KB SRAM, 16.4 Mops, 0.250 s
on F446RE; KWS-M 95.8 %, 163 KB, 103.3 KB, 30.6 Mops; KWS-L 96.5 %, 612 KB, 208.8 KB, 129 Mops.
Our models are much smaller because `RESOURCE_SCALE` shrinks the targets for a short run on a
small synthetic task; the `full` preset uses the whole budgets and a wider supernet.
"""),
("code", """
fig_r2 = {f"r2_{r['backbone']}_{r['target']}": r["r2"] for r in lat_fit.rows}
fig_r2.update({f"mops_per_s_{r['backbone']}_{r['target']}": r["mops_per_s"] for r in lat_fit.rows})
fig_r2.update({f"resid_sd_pct_{r['backbone']}_{r['target']}": r["resid_sd_pct"] for r in lat_fit.rows})
for key, v in lat_verdicts.items():                   # intervals, n, verdicts (r²: the estimate is recorded above)
    fig_r2.update({f: x for f, x in v.to_figures(key).items() if f not in fig_r2})
figs = {}
for lab, m in measured.items():
    k = lab.lower()
    figs.update({f"{k}_board": TARGETS[lab], f"{k}_test_accuracy_int8": m["test_accuracy_int8"],
                 f"{k}_arena_total_bytes": m["arena_total_bytes"], f"{k}_arena_head_bytes": m["arena_head_bytes"],
                 f"{k}_tflite_bytes": m["tflite_bytes"], f"{k}_mops": m["ops"] / 1e6,
                 f"{k}_latency_emulated_ms": m["latency_ms"], f"{k}_sram_budget_bytes": m["sram_budget"],
                 f"{k}_flash_budget_bytes": m["flash_budget"], f"{k}_fits_board": m["fits"],
                 f"{k}_target_working_memory_bytes": TGT[lab]["working_memory"],
                 f"{k}_target_model_size_bytes": TGT[lab]["model_size"],
                 f"{k}_target_mops": TGT[lab]["ops"] / 1e6, f"{k}_latency_target_ms": LATENCY_MS[lab],
                 f"{k}_architecture": json.dumps(found[lab].choices)})
helpers.record("04-micronets-dnas", {
    "task": TASK, "data_source_synthetic": "SYNTHETIC" in ds.source,
    **fig_r2, **figs,
    "all_fit_boards": all(m["fits"] for m in measured.values()),
    **{f"{lab.lower()}_binding_limit": b[0] for lab, b in binding.items()},
    **{f"{lab.lower()}_binding_pct_used": b[1] for lab, b in binding.items()},
    **{f"{lab.lower()}_identity_blocks": sum(c == 0 for c in found[lab].choices[1:]) for lab in found},
    **{f"{lab.lower()}_latency_repair_steps": len(log) - 1 for lab, log in lat_log.items()},
    **{f"{lab.lower()}_latency_before_repair_ms": log[0]["latency_ms"] for lab, log in lat_log.items()},
    "depth_narrowest_full_depth_mops": narrow_ops / 1e6, "depth_target_mops": depth_tgt["ops"] / 1e6,
    "depth_identity_blocks_argmax": len(depth_id_argmax), "depth_identity_blocks": len(depth_id),
    "depth_repair_steps": depth.repaired, "depth_fill_steps": depth.filled,
    "depth_mops": depth.exact["ops"] / 1e6, "depth_architecture": json.dumps(depth.choices),
    **{f"{lab.lower()}_test_accuracy_int8_seeds_{k}": f(x) for lab, x in acc_arr.items()
       for k, f in (("mean", np.mean), ("min", np.min), ("max", np.max), ("n", len))},
    **{f: x for k, v in acc_verdicts.items() for f, x in v.to_figures(k).items()},
    "accuracy_s_lt_m_lt_l": all(v.held for v in acc_verdicts.values()),
    **{f"{lab.lower()}_{k}": v[k] for lab, v in q4.results.items()
       for k in ("test_accuracy_int4", "tflite_bytes_int4", "weights_bytes_int4", "weights_bytes_int8",
                 "latency_ms_int4", "emu_flash_bytes_int4", "emu_flash_bytes_int8",
                 "emu_sram_bytes_int4", "arena_head_bytes_int4")},
    **{f"{lab.lower()}_int4_accuracy_change{s}": v[f"accuracy_change{s}"] for lab, v in q4.results.items()
       for s in ("", "_low", "_high")},
    **{f"{lab.lower()}_int4_flash_saving_pct": 100 * (1 - v["tflite_bytes_int4"] / v["tflite_bytes_int8"])
       for lab, v in q4.results.items()},
    "int4_emulated_bit_exact": all(v["emulated_bit_exact"] for v in q4.results.values()),
    "latency_emulation_cpu_seconds_per_model": emu_cpu_per_model,
    "ops_s_lt_m_lt_l": bool(ops[0] < ops[1] < ops[2]),
    "latency_models_per_backbone": N_LATENCY_MODELS, "resource_scale": RESOURCE_SCALE,
    "search_cpu_minutes": search_cpu / 60,            # hand-off key read by 07-comparison
    "wall_seconds": time.time() - t_start,
}, handoff=helpers.HandOff(
    method="Differentiable NAS (MicroNets)", dataset=TASK, target=", ".join(f"{k}: {v}" for k, v in TARGETS.items()),
    trials=len(found), search_cpu_minutes=search_cpu / 60, hypervolume=None,
    models=tuple(lab.lower() for lab in measured)))
"""),
("md", f"""
**What to take away.** Within one backbone the emulated latency follows the op count closely
(read the r² and residuals above), but the slope depends on the backbone, so an ops target only
means a latency target *for that backbone*. The relaxation is exact at the corners: the expected
resources of a one-hot choice are the real resources of that network, so penalising them pushes
the search toward networks that really fit; the argmax still needs a check (and sometimes a
repair), and the TFLM arena sits above SpArSe's working memory, which is why the final numbers
are measured. Whether a larger model is also a more accurate one is a claim like any other:
the S / M / L ranking above carries its interval over `RETRAIN_SEEDS`, and on this synthetic set
it holds only where capacity still pays (see the header). The `full` preset runs the whole
budgets (`RESOURCE_SCALE = 1`), a wider and deeper supernet and longer training.

{NAV}
"""),
]
build(NOTEBOOKS + "/04-micronets-dnas.ipynb", cells)

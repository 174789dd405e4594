import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from build import NOTEBOOKS, build
NAV = ("[← 00 Overview](00-overview.ipynb) · [Contents](../README.md#the-notebooks) · **01 Search-space CDF** · "
       "[02 Aging evolution →](02-aging-evolution.ipynb)")
cells = [
("md", f"""
# 01 · Search-space CDF: TinyNAS stage 1

{NAV}

Before searching for a network, MCUNet (Lin et al., *MCUNet: Tiny Deep Learning on IoT Devices*,
NeurIPS 2020) searches for the **search space**. A space is one (width multiplier, input resolution)
pair of a MobileNetV2-style block space. For each space TinyNAS samples m networks (m = 1000),
keeps those that fit the MCU's SRAM and flash, and looks at the cumulative distribution (CDF) of
their FLOPs: the space whose *fitting* models have the largest mean FLOPs wins, on the premise that
under the same memory budget more computation buys more accuracy. This notebook reproduces that
procedure (the paper's Figures 3 and 12) on MNIST-sized inputs upsampled to 16–48 px, then
**tests the premise** by training a handful of sampled models from the chosen space and from a
low-ranked one.

*Runs in about 6 minutes on a 2-core machine (6.1 min measured for the committed outputs under the portable arithmetic beside another notebook; the earlier native publish took 17.6 min, most of it training the patch-only model of Part 5, which a smaller `PATCH_N_TRAIN` shortens).*
"""),
("md", """
**Goals**
1. Profile thousands of architectures without building them (MACs, flash, peak SRAM under TinyEngine's in-place plan), and check the fast profiler against the exact one.
2. Rank the width × resolution grid by the FLOPs CDF of the models that fit; pick the space.
3. See how the choice moves with the memory budget (real boards, and a sweep as in MCUNet's Figure 12).
4. Test the claim "better space → better accuracy" on our task with trained models.

**Constraints, stated up front.** Default budget: **32 KB peak SRAM and 256 KB flash** for the model
(a small-MCU budget, *not* one of our boards: on 28×28 inputs every network of this block space fits
an STM32F746's 320 KB SRAM, so the real boards, shown in Part 3, all pick the largest space).
Peak SRAM is the `"inplace"` plan (TinyEngine's in-place depthwise on the best operator order), flash
is the int8 `.tflite` size. FLOPs here are multiply-accumulates, as MCUNet counts them.
"""),
("code", """
DATASET = "mnist"            # "mnist" or "fashion_mnist"
WIDTHS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
RESOLUTIONS = [16, 20, 24, 28, 32, 36, 40, 44, 48]
M = 200                      # architectures sampled per space (paper: 1000)
SRAM_KB = 32                 # model budgets in KB (1 KB is 1024 B)
FLASH_KB = 256
MIN_FIT_RATE = 0.1           # spaces where fewer samples fit rank last; 0 for the paper's rule
BOARDS = ["stm32f412", "stm32f746", "stm32h743"]
SWEEP_SRAM_KB = [16, 24, 32, 48, 64]
SWEEP_FLASH_KB = [128, 256, 512, 1024]
N_MODELS = 4                 # trained per compared space
LOW_RANK_FRACTION = 0.75     # the "poor" space: this far down the eligible ranking
EPOCHS = 2
N_TRAIN = 4000               # 0: the whole training split
N_VAL = 1000                 # validation images used during training (0: all)
N_TEST = 2000                # 0: the whole test split
DEPLOY = ["layer", "patch"]  # Part 5: deployment schedules the space selection assumes
PATCH_MAX_OVERHEAD = 0.2     # largest recompute overhead of a patch schedule (extra MACs / MACs)
PATCH_M = 50                 # samples per space planned with patch schedules in Part 5 (at most M)
PATCH_BOARD = "stm32f412"    # the 256 KB board the patch-only model of Part 5 must fit
PATCH_WIDTH = 0.7            # space of the patch-only model (width multiplier)
PATCH_RESOLUTION = 112       # and its input resolution
PATCH_EPOCHS = 1
PATCH_N_TRAIN = 4000         # training images of the patch-only model
PATCH_N_TEST = 500           # its int8 test images (TFLite-Micro)
SEED = 0
""", "parameters"),
("code", """
# Every parameter checked before any work: a value outside its rule stops here, named.
from helpers import params as P

kb = P.Float(min=0, min_open=True)
P.check(globals(), {
    "DATASET": P.Dataset(),
    "WIDTHS": P.ListOf(P.Float(min=0, max=4, min_open=True), min_len=1, unique=True),
    "RESOLUTIONS": P.ListOf(P.Int(min=1), min_len=1, unique=True),
    "M": P.Int(min=1),
    "SRAM_KB": kb,
    "FLASH_KB": kb,
    "MIN_FIT_RATE": P.Float(min=0, max=1, max_open=True),
    "BOARDS": P.ListOf(P.Target(), min_len=1),
    "SWEEP_SRAM_KB": P.ListOf(kb, min_len=1),
    "SWEEP_FLASH_KB": P.ListOf(kb, min_len=1),
    "N_MODELS": P.Int(min=1),
    "LOW_RANK_FRACTION": P.Float(min=0, max=1),
    "EPOCHS": P.Int(min=1),
    "N_TRAIN": P.Int(min=0),
    "N_VAL": P.Int(min=0),
    "N_TEST": P.Int(min=0),
    "DEPLOY": P.ListOf(P.Choice(["layer", "patch"]), min_len=1, unique=True),
    "PATCH_MAX_OVERHEAD": P.Float(min=0),
    "PATCH_M": P.Int(min=1),
    "PATCH_BOARD": P.Target(),
    "PATCH_WIDTH": P.Float(min=0, max=4, min_open=True),
    "PATCH_RESOLUTION": P.Int(min=8),
    "PATCH_EPOCHS": P.Int(min=1),
    "PATCH_N_TRAIN": P.Int(min=1),
    "PATCH_N_TEST": P.Int(min=1),
    "SEED": P.Seed(),
})
P.require(PATCH_M <= M, "PATCH_M", PATCH_M, f"must be <= M = {M}")
"""),
("code", """
import time
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import helpers
from helpers import data, plots, resources, spaces, stats, targets
from helpers.methods import tinynas

helpers.seed_everything(SEED)
t_start = time.time()
ds = data.load(DATASET, seed=SEED)
ds = ds.subset(n_train=N_TRAIN or None, n_val=N_VAL or None, n_test=N_TEST or None, seed=SEED)
INPUT, CLASSES = ds.input_shape, ds.num_classes
SRAM_BUDGET, FLASH_BUDGET = SRAM_KB * 1024, FLASH_KB * 1024
print(f"{DATASET}: train {len(ds.x_train):,}, test {len(ds.x_test):,}, input {INPUT}; "
      f"budgets {SRAM_BUDGET:,} B SRAM, {FLASH_BUDGET:,} B flash")
"""),
("md", """
## Part 1 · Profiling without building

One architecture of the block space: an input resize to the space's resolution, a stem, a fixed
first block, four stages of inverted-residual blocks (per-stage depth 2–4, per-block expansion
3/4/6 and kernel 3/5/7) whose channels scale with the width multiplier, global pooling and a
classifier. `resources.profile` lowers it to the graph the TFLite converter would emit and plans
its memory exactly; it also replays the `.tflite` flatbuffer byte for byte to get flash, which is
most of its ~7 ms. For 81 spaces × 1000 samples we need faster: `tinynas.fast_profile` computes
MACs and the in-place peak SRAM exactly from the layer list (the graph is a chain, so the best
order is the only order) and flash as exact weights + biases + quantisation parameters plus a
linear model of the flatbuffer tables, calibrated on exact profiles.
"""),
("code", """
rng = np.random.default_rng(SEED)
arch = spaces.BlockArch.random(rng, width=0.5, resolution=32)
print(arch.to_json())
print(resources.profile(arch, INPUT, CLASSES, plan="inplace", table=False).summary())
print(tinynas.fast_profile(arch, INPUT, CLASSES))
"""),
("code", """
# NBVAL_CHECK_OUTPUT
flash_model = tinynas.calibrate_flash(INPUT, CLASSES, n=60, seed=SEED)
check = [spaces.BlockArch.random(rng) for _ in range(200)]
fast = [tinynas.fast_profile(a, INPUT, CLASSES, flash_model) for a in check]
exact = [resources.profile(a, INPUT, CLASSES, plan="inplace", table=False) for a in check]
sram_mismatch = sum(f.peak_sram_bytes != e.peak_sram_bytes for f, e in zip(fast, exact))
macs_mismatch = sum(f.macs != e.macs for f, e in zip(fast, exact))
flash_err = np.array([f.flash_bytes - e.flash_bytes for f, e in zip(fast, exact)])
print(f"200 random architectures: peak SRAM mismatches {sram_mismatch}, MACs mismatches {macs_mismatch}")
print(f"flash estimate error within ±{int(np.ceil(np.abs(flash_err).max() / 100)) * 100} B")
"""),
("code", """
print(flash_model)
print(f"flash estimate vs exact on 200 held-out models: max |error| {np.abs(flash_err).max():.0f} B, "
      f"RMSE {np.sqrt(np.mean(flash_err ** 2)):.0f} B "
      f"({100 * np.abs(flash_err).max() / np.median([e.flash_bytes for e in exact]):.2f}% of the median file)")
rate_fast = tinynas.profiling_rate(check, INPUT, CLASSES, "fast", flash_model)
rate_exact = tinynas.profiling_rate(check[:100], INPUT, CLASSES, "exact")
print(f"profiles per minute on one core: fast {rate_fast:,.0f}, exact (resources.profile) {rate_exact:,.0f} "
      f"(requirement: >= 10,000)")
"""),
("md", """
**Check.** Peak SRAM and MACs must agree exactly (0 mismatches); the flash estimate's error is a few
hundred bytes on files of 100 KB–1 MB. When a model's estimate lies within twice the calibrated error
of the flash budget, `rank_spaces` re-profiles it exactly, so every fit decision below is the exact one.

## Part 2 · The FLOPs CDF of each space

Sample M architectures in each of the width × resolution spaces, keep the ones that fit, and rank the
spaces by the mean FLOPs of their fitting models.
"""),
("code", """
samples = tinynas.sample_spaces(WIDTHS, RESOLUTIONS, M, INPUT, CLASSES, seed=SEED, flash_model=flash_model)
print(samples)
ranking = tinynas.rank_spaces(samples, SRAM_BUDGET, FLASH_BUDGET, min_fit_rate=MIN_FIT_RATE)
print(ranking)
ranking.table().head(10).round(3)
"""),
("code", """
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
plots.space_cdfs(ranking, top=5, bottom=2, ax=axes[0], title=f"{SRAM_KB} KB SRAM / {FLASH_KB} KB flash (cf. MCUNet Fig. 3)")
fr = ranking.table().pivot(index="resolution", columns="width", values="fit_rate")
im = axes[1].imshow(fr.to_numpy(), origin="lower", cmap="magma", aspect="auto")
axes[1].set_xticks(range(len(fr.columns))); axes[1].set_xticklabels(fr.columns)
axes[1].set_yticks(range(len(fr.index))); axes[1].set_yticklabels(fr.index)
axes[1].set_xlabel("width multiplier"); axes[1].set_ylabel("resolution")
axes[1].set_title("fraction of sampled models that fit")
fig.colorbar(im, ax=axes[1]); fig.tight_layout();
"""),
("code", """
# NBVAL_CHECK_OUTPUT
best_w, best_r = ranking.best
top = ranking.table().iloc[0]
print(f"chosen space: width {best_w} x resolution {best_r}; {int(top.n_fit)}/{int(top.n)} fit; "
      f"mean {top.mean_mflops:.3f} MFLOPs of fitting models")
"""),
("md", """
**Why not simply the largest space?** Larger width raises flash (weights grow with width²), larger
resolution raises peak SRAM (activations grow with resolution²). A space that is too large keeps only
its smallest samples, or none; one that is too small wastes the budget. The CDF on the left shows the
trade-off: the chosen space's curve sits furthest to the right.

## Part 3 · The choice moves with the budget

First the real boards (model budgets after TFLite-Micro's reserve), then a sweep of SRAM × flash
budgets like MCUNet's Figure 12. The same samples are re-ranked, nothing is re-profiled (except
near-budget flash checks).
"""),
("code", """
board_rows = []
for name in BOARDS:
    t = targets.get(name, reserve="tflm")
    rk = tinynas.rank_spaces(samples, t.sram_budget, t.flash_budget, min_fit_rate=MIN_FIT_RATE)
    board_rows.append({"target": t.name, "sram_budget_KB": t.sram_budget / 1024, "flash_budget_KB": t.flash_budget / 1024,
                       "best_width": rk.best[0], "best_resolution": rk.best[1], "mean_mflops": rk.best_mean_flops / 1e6,
                       "fit_rate": rk.table().iloc[0].fit_rate})
board_table = pd.DataFrame(board_rows)
board_table.round(3)
"""),
("code", """
sweep = tinynas.choice_sweep(samples, [s * 1024 for s in SWEEP_SRAM_KB], [f * 1024 for f in SWEEP_FLASH_KB],
                             min_fit_rate=MIN_FIT_RATE)
plots.choice_map(sweep, title="chosen space per budget (cf. MCUNet Fig. 12)");
"""),
("code", """
# NBVAL_CHECK_OUTPUT
print(sweep.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
"""),
("md", """
**Check.** More SRAM lets the resolution grow; more flash lets the width grow; with both generous the
largest space wins, which is what all three real boards do on 28×28 inputs.

## Part 4 · Does the better space give better accuracy?

MCUNet reports that its chosen space gave **78.7% vs 74.2%** ImageNet-100 accuracy against a poorer
one (published, MCUNet 2020). We train `N_MODELS` random fitting models from the chosen space and
from a space `LOW_RANK_FRACTION` of the way down the eligible ranking, same epochs, same data.

**The verdict needs its sample.** With `N_MODELS` models per space, the difference of two means
is one draw among many: a 95 % Welch t interval of the difference of the two means
(`helpers.stats.welch_ci`, each model one training run) says how far it could move. The claim is decided
only when the interval excludes 0, otherwise it is *undecided at this budget* (and always so with one
model per space). A percentile bootstrap over 4 models would be narrower than the truth (a resample
holds at most the 4 values there are, and its 95 % interval covers the true difference less often than
95 %); Student's t widens the interval by what 4 runs cannot know.
"""),
("code", """
elig = ranking.table()[ranking.table().eligible].reset_index(drop=True)
low = elig.iloc[min(len(elig) - 1, int(LOW_RANK_FRACTION * len(elig)))]
low_w, low_r = float(low.width), int(low.resolution)
print(f"compare: chosen w{best_w}-r{best_r} (rank 1, {top.mean_mflops:.2f} MFLOPs) vs "
      f"w{low_w}-r{low_r} (rank {int(low['rank'])}, {low.mean_mflops:.2f} MFLOPs)")
best_archs = tinynas.fitting_archs(samples, best_w, best_r, N_MODELS, SRAM_BUDGET, FLASH_BUDGET, seed=SEED)
low_archs = tinynas.fitting_archs(samples, low_w, low_r, N_MODELS, SRAM_BUDGET, FLASH_BUDGET, seed=SEED)
trained = (tinynas.train_archs(best_archs, ds, EPOCHS, group="chosen", seed=SEED)
           + tinynas.train_archs(low_archs, ds, EPOCHS, group="low-ranked", seed=SEED))
runs = pd.DataFrame([t.to_dict() for t in trained]).drop(columns="arch_json")
runs.round(4)
"""),
("code", """
acc_best = runs[runs.group == "chosen"].test_accuracy.to_numpy()
acc_low = runs[runs.group == "low-ranked"].test_accuracy.to_numpy()
gain = 100 * (acc_best.mean() - acc_low.mean())
claim_held = bool(acc_best.mean() > acc_low.mean())
plots.accuracy_strips({f"chosen w{best_w}-r{best_r}": acc_best, f"rank {int(low['rank'])} w{low_w}-r{low_r}": acc_low},
                      title=f"{DATASET}, {EPOCHS} epoch(s), {len(ds.x_train):,} training images");
print(f"mean test accuracy: chosen {acc_best.mean():.4f} (min {acc_best.min():.4f}), "
      f"low-ranked {acc_low.mean():.4f} (max {acc_low.max():.4f}); difference {gain:+.2f} points")
print("published (MCUNet 2020, ImageNet-100): +4.5 points"
      + ("" if acc_best.min() > acc_low.max() else "; the two distributions overlap"))
gain_ci = stats.welch_ci(100 * acc_best, 100 * acc_low)
better_space = stats.verdict(gain_ci, claim=f"chosen space trains better than rank {int(low['rank'])} (accuracy points)")
print(better_space.summary())
"""),
("md", """
## Part 5 · Co-design: the patch schedule is part of the deployment

Parts 2-3 assumed layer-by-layer inference: the peak SRAM sits in the first, high-resolution
blocks. MCUNetV2 (Lin et al. 2021) runs those blocks *patch by patch* (06-deployment, Part 10) and
searches the space **together with** the schedule: with `"patch"` a sample's SRAM figure is the lower
of its in-place peak and the peak of its best patch schedule within `PATCH_MAX_OVERHEAD` extra MACs
(`codesign.patch_peak`; the input arrives at the space's resolution, resized by the camera). The same
first `PATCH_M` samples of every space are ranked under each deployment in `DEPLOY`.
"""),
("code", """
from helpers.methods import codesign

codesign_rk = codesign.rank_deploys(samples, SRAM_BUDGET, FLASH_BUDGET, DEPLOY, max_overhead=PATCH_MAX_OVERHEAD,
                                    m=PATCH_M, min_fit_rate=MIN_FIT_RATE)
print(codesign_rk)
plots.deploy_cdfs(codesign_rk, title=f"{SRAM_KB} KB SRAM / {FLASH_KB} KB flash: layer by layer vs patch-based");
codesign_rk.table()
"""),
("md", """
**One model that fits a 256 KB board only with patches.** Of 20 samples of the space
(`PATCH_WIDTH`, `PATCH_RESOLUTION`), `codesign.patch_only_arch` takes the cheapest one whose in-place
peak is above the board's model budget and whose patch peak is below it; we train it briefly on
the images resized to its resolution, convert it to int8 and measure it in TFLite-Micro: its arena
head (the layer-by-layer deployment) must exceed the budget, the patch plan must fit it, and the
patch run (Python engine) must equal TFLite-Micro's output bit for bit.
"""),
("code", """
board = targets.get(PATCH_BOARD, reserve="tflm")
po_arch, po_plan = codesign.patch_only_arch(PATCH_WIDTH, PATCH_RESOLUTION, INPUT[-1], CLASSES, board.sram_budget,
                                            board.flash_budget, max_overhead=PATCH_MAX_OVERHEAD, seed=SEED)
po_data = codesign.resize_dataset(ds.subset(n_train=PATCH_N_TRAIN, n_val=200, n_test=PATCH_N_TEST, seed=SEED), PATCH_RESOLUTION)
patch_only = codesign.deploy_patch_only(po_arch, po_data, board.sram_budget, PATCH_EPOCHS,
                                        max_overhead=PATCH_MAX_OVERHEAD, seed=SEED)
print(f"{board.name}: model budget {board.sram_budget:,} B SRAM; {po_arch.to_json()}")
print(patch_only)
"""),
("md", """
**Check.** `fits only with patches` and `bit-exact` must both print True: TFLite-Micro's arena head
is above the board's budget, the patch plan below it, at the stated MAC overhead. The accuracy is
that of a short training run (`PATCH_EPOCHS` on `PATCH_N_TRAIN` images), not a converged model.

## Results
"""),
("code", """
results = pd.DataFrame([
    {"figure": "profiles per minute, fast (one core)", "measured": f"{rate_fast:,.0f}", "published / required": ">= 10,000 (issue)"},
    {"figure": "profiles per minute, resources.profile", "measured": f"{rate_exact:,.0f}", "published / required": ">= 10,000 (issue)"},
    {"figure": "chosen space", "measured": f"w{best_w} x r{best_r}", "published / required": "grid w0.2-1.0 x r48-224, m = 1000 (MCUNet)"},
    {"figure": "mean MFLOPs of fitting models", "measured": f"{top.mean_mflops:.2f}", "published / required": "-"},
    {"figure": "accuracy chosen vs low-ranked (points)", "measured": f"{gain:+.2f} [{better_space.low:+.2f}, {better_space.high:+.2f}], "
     f"{len(acc_best)} vs {len(acc_low)} models: {better_space.word}", "published / required": "+4.5 (MCUNet, ImageNet-100)"},
    *[{"figure": f"chosen space, {d} deployment (first {PATCH_M} samples)", "measured": f"w{rk.best[0]} x r{rk.best[1]}",
       "published / required": "-"} for d, rk in codesign_rk.rankings.items()],
    {"figure": f"patch-only model on {PATCH_BOARD}: TFLM head / patch peak (B)",
     "measured": f"{patch_only.tflm_arena_head_bytes:,} / {patch_only.patch_peak_sram_bytes:,} (budget {board.sram_budget:,})",
     "published / required": "head > budget >= patch peak"},
    {"figure": "patch-only model int8 test accuracy (TFLM)", "measured": f"{patch_only.test_accuracy_int8:.4f}",
     "published / required": "-"},
])
results
"""),
("code", """
helpers.record("01-search-space-cdf", {
    "dataset": DATASET,
    "sram_budget_bytes": SRAM_BUDGET,
    "flash_budget_bytes": FLASH_BUDGET,
    "n_spaces": len(samples.spaces),
    "m_per_space": M,
    "profiles_per_minute_fast": rate_fast,
    "profiles_per_minute_exact": rate_exact,
    "peak_sram_mismatches": sram_mismatch,
    "flash_estimate_max_error_bytes": float(np.abs(flash_err).max()),
    "sampling_seconds": samples.seconds,
    "best_width": best_w,
    "best_resolution": best_r,
    "best_mean_mflops": float(top.mean_mflops),
    "best_fit_rate": float(top.fit_rate),
    "low_width": low_w,
    "low_resolution": low_r,
    "low_mean_mflops": float(low.mean_mflops),
    "acc_chosen_mean": float(acc_best.mean()),
    "acc_low_mean": float(acc_low.mean()),
    "accuracy_gain_points": gain,
    "claim_held": claim_held,                          # sign of the point estimate only; the verdict is below
    **better_space.to_figures("better_space_acc_gain"),  # points: estimate, ci_low/high, n, verdict
    "boards_best_resolution_min": int(board_table.best_resolution.min()),
    **{f"codesign_{d}_best_width": rk.best[0] for d, rk in codesign_rk.rankings.items()},
    **{f"codesign_{d}_best_resolution": rk.best[1] for d, rk in codesign_rk.rankings.items()},
    **{f"codesign_{d}_best_mean_mflops": rk.best_mean_flops / 1e6 for d, rk in codesign_rk.rankings.items()},
    "codesign_patch_helped_models": codesign_rk.patch_helped,
    **patch_only.figures("patch_only_model"),
    "wall_seconds": time.time() - t_start,
})
"""),
("md", f"""
**What to take away.** Ranking spaces costs seconds, not GPU-days: the fit filter needs only the
architecture. The premise behind it (more FLOPs under the same memory → more accuracy) is checked
above on our task rather than assumed: the printed verdict carries its interval and sample size, and says
"undecided at this budget" when a few models cannot tell the spaces apart. The next step, TinyNAS stage 2, searches
*inside* the chosen space with a weight-sharing supernet: [05 Once-for-all](05-once-for-all.ipynb).

{NAV}
"""),
]
build(NOTEBOOKS + "/01-search-space-cdf.ipynb", cells)

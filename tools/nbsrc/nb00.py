import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from build import NOTEBOOKS, build
NAV = "[Contents](../README.md#the-notebooks) · **00 Overview** · [01 Search-space CDF →](01-search-space-cdf.ipynb)"
cells = [
("md", f"""
# 00 · The MCU problem: what "fits" means

{NAV}

A microcontroller gives a network a few hundred KB of SRAM for activations and a
MB or two of flash for weights, at 100–500 MHz with no OS. Every method in this series
(MCUNet, μNAS, SpArSe, MicroNets, Once-for-All, as surveyed by van Kempen, *NAS for
Automated ML Deployment on Extreme Edge Devices*) searches for networks under those three limits:
**peak SRAM**, **flash** and **compute (MACs)**. This notebook defines them on one small CNN:
trained for about a minute, converted to int8, run in the real TensorFlow Lite Micro
interpreter, and measured against seven real MCU boards.

*Runs in about 1 minute on a 2-core machine (66 s measured for the committed outputs under the portable arithmetic beside another notebook, dataset cached).*
"""),
("md", """
**Goals**
1. Know the targets: core, clock, SRAM, flash (and where each number comes from).
2. Know the datasets the series uses offline, and where each came from.
3. Measure one model: MACs (counted), flash (the `.tflite` bytes), peak SRAM (the TFLite-Micro arena), int8 accuracy (in TFLite-Micro).
4. See which boards it fits, after reserving TFLite-Micro's own runtime overhead.

**Terms.** *MACs*: multiply-accumulates of one inference (1 MAC = 2 ops in MicroNets' units).
*Flash*: bytes of the int8 model (weights int8, biases int32, quantisation parameters, graph)
that sit in read-only memory. *Peak SRAM*: the largest amount of activation memory live at
once; TFLite-Micro allocates it in one *arena* whose *head* is the activation plan and whose
*tail* holds the interpreter's persistent structures.
"""),
("code", """
DATASET = "mnist"      # one of helpers.data.names()
TARGET = "stm32f746"   # one of helpers.targets.names() (aliases accepted)
EPOCHS = 2
LEARNING_RATE = 0.003
N_TRAIN = 0            # 0: the whole training split; else a stratified subset
N_TEST = 0             # 0: the whole test split for the int8 accuracy
SEED = 0
""", "parameters"),
("code", """
# Every parameter checked before any work: a value outside its rule stops here, named.
from helpers import params as P

P.check(globals(), {
    "DATASET": P.Dataset(),
    "TARGET": P.Target(),
    "EPOCHS": P.Int(min=1),
    "LEARNING_RATE": P.Float(min=0, min_open=True),
    "N_TRAIN": P.Int(min=0),
    "N_TEST": P.Int(min=0),
    "SEED": P.Seed(),
})
"""),
("code", """
import time
import matplotlib.pyplot as plt
import numpy as np

import helpers
from helpers import data, deploy, plots, resources, spaces, targets, train

helpers.seed_everything(SEED)
t_start = time.time()
"""),
("md", """
## Part 1 · The targets

Seven boards used by the papers (see `helpers/targets.py` for each figure's source). With
`reserve="tflm"` the budgets subtract TFLite-Micro's runtime overhead as MicroNets measured it
(4 KB SRAM, 37 KB flash; published figure), leaving what the model itself may use.
"""),
("code", """
target = targets.get(TARGET, reserve="tflm")
print(target)
targets.table(reserve="tflm")[["board", "core", "clock_MHz", "SRAM_KB", "flash_KB", "model_SRAM_budget_KB", "used_by"]]
"""),
("md", """
## Part 2 · The datasets

Every default runs offline: each loader tries its sources in order and **says which one it used**;
nothing silently falls back to a different dataset. Images are float32 in [0, 1].
"""),
("code", """
shown = []
fig, axes = plt.subplots(4, 1, figsize=(9, 5.5))
for ax, name in zip(axes, ["mnist", "mnist5k", "digits", "fashion_mnist"]):
    try:
        d = data.load(name, seed=SEED)
    except data.DatasetUnavailableError as err:   # say so, don't substitute
        ax.axis("off"); ax.set_title(f"{name}: unavailable offline"); print(err); continue
    plots.sample_grid(d, ax=ax)
    shown.append(name)
    print(f"{name:14s} {len(d.x_train):>6,} / {len(d.x_val):>5,} / {len(d.x_test):>6,}  {d.input_shape}  <- {d.source}")
fig.tight_layout();
"""),
("code", """
# NBVAL_CHECK_OUTPUT
ds = data.load(DATASET, seed=SEED)
if N_TRAIN:
    ds = ds.subset(n_train=N_TRAIN, seed=SEED)
if N_TEST:
    ds = ds.subset(n_test=N_TEST, seed=SEED)
print(ds.describe().split("\\nsource")[0])
print("train", ds.x_train.shape, "val", ds.x_val.shape, "test", ds.x_test.shape)
"""),
("md", """
## Part 3 · One small CNN, as an architecture, trained for about a minute

Searches work on *architectures*: small data objects that say what the network is, not its
weights. Here is one from the μNAS-style granular space (`helpers.spaces`): a stride-2
convolution, a depthwise + pointwise pair (the MobileNet building block), a 2x2 max pre-pool,
one more convolution, global average pooling and a dense classifier (logits). Every
convolution has batch-norm (folded away at conversion) and ReLU.
"""),
("code", """
from helpers.spaces import ConvBlock, ConvLayer, GranularArch

arch = GranularArch(blocks=[
    ConvBlock([ConvLayer("conv", filters=8, kernel=3, stride=2),
               ConvLayer("dwconv", kernel=3),
               ConvLayer("conv1x1", filters=16)]),
    ConvBlock([ConvLayer("conv", filters=24, kernel=3)], pool=True),
], pooling="avg", dense=[])
print(arch.to_json()[:120], "...")
print("architecture hash:", arch.hash)
"""),
("code", """
model = spaces.build(arch, ds.input_shape, ds.num_classes)
history = train.fit(model, ds, epochs=EPOCHS, lr=LEARNING_RATE, seed=SEED)
acc_float = train.accuracy(model, ds.x_test, ds.y_test)
print(history.summary())
print(f"float test accuracy: {acc_float:.4f}")
"""),
("md", """
## Part 4 · int8, and the real TFLite-Micro interpreter

Full-integer quantisation (int8 weights and activations, int32 biases, per-channel weight
scales) with a small representative set, then the `tflite-micro` Python interpreter: it runs
the same C++ kernels and memory planner as on a board and reports its arena on the C-level
stderr, which `helpers.deploy` captures.
"""),
("code", """
tflite_bytes = deploy.to_tflite_int8(model, ds.x_train[:256])
arena = deploy.measure_arena(tflite_bytes)
print(arena.summary())
logits_int8 = deploy.tflm_predict(tflite_bytes, ds.x_test)
acc_int8 = float(np.mean(logits_int8.argmax(axis=1) == ds.y_test))
print(f"int8 test accuracy in TFLite-Micro: {acc_int8:.4f}  (float: {acc_float:.4f})")
"""),
("md", """
## Part 5 · Counting from the architecture, checked against the measurement

`helpers.resources.profile(arch, ...)` computes MACs, parameters, flash and the peak SRAM of
TFLite-Micro's memory plan from the architecture alone: no weights, no TensorFlow, about a
millisecond. This is what every search in the series calls thousands of times, so here each
estimate sits beside the measurement that checks it.
"""),
("code", """
# NBVAL_CHECK_OUTPUT
prof = resources.profile(arch, ds.input_shape, ds.num_classes, plan="tflm")
print(prof.summary())
# check one layer by hand: the first conv, 3x3 kernel over C_in channels -> 8 channels, stride 2
h_out, w_out = -(-ds.input_shape[0] // 2), -(-ds.input_shape[1] // 2)
print("first conv MACs by hand:", h_out * w_out * 8 * 3 * 3 * ds.input_shape[-1], "| profile:", prof.layers[0]["macs"])
print(f"peak SRAM: estimate {prof.peak_sram_bytes} B, TFLite-Micro arena head {arena.head} B, error {prof.peak_sram_bytes - arena.head:+d} B")
print(f"flash:     estimate {prof.flash_bytes} B, .tflite file {len(tflite_bytes)} B, "
      f"error {100 * (prof.flash_bytes - len(tflite_bytes)) / len(tflite_bytes):+.2f}%")
"""),
("code", """
prof.table()
"""),
("md", """
## Part 6 · What fits where

The model's SRAM is the whole measured arena (head + tail; the tail is measured with 64-bit
host structures, so it over-states a 32-bit MCU's) and its flash is the `.tflite` size. Budgets
are after TFLite-Micro's reserved overhead.
"""),
("code", """
boards = [targets.get(n, reserve="tflm") for n in targets.names()]
plots.budget_bars(boards, arena.total, len(tflite_bytes), title=f"small CNN on {DATASET}: what fits where");
fits = [t.name for t in boards if t.fits(arena.total, len(tflite_bytes))]
print("fits on:", ", ".join(fits) or "none")
"""),
("code", """
helpers.record("00-overview", {
    "dataset": DATASET,
    "target": target.name,
    "test_accuracy_float": acc_float,
    "test_accuracy_int8": acc_int8,
    "tflm_arena_head_bytes": arena.head,
    "tflm_arena_total_bytes": arena.total,
    "peak_sram_estimate_bytes": prof.peak_sram_bytes,
    "tflite_bytes": len(tflite_bytes),
    "flash_estimate_bytes": prof.flash_bytes,
    "macs": prof.macs,
    "architecture_hash": arch.hash,
    "params": prof.params,
    "fits_target": target.fits(arena.total, len(tflite_bytes)),
    "train_seconds": history.wall_seconds,
    "wall_seconds": time.time() - t_start,
})
"""),
("md", f"""
**What to take away.** A network that trains to high accuracy in a minute already has the three
numbers every MCU search optimises, and they can be counted before training. The next notebooks
search over architectures using exactly these counts.

{NAV}
"""),
]
build(NOTEBOOKS + "/00-overview.ipynb", cells)

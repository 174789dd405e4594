import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from build import NOTEBOOKS, build
NAV = ("[Contents](../README.md#the-notebooks) · [← 05 Once-for-All](05-once-for-all.ipynb) · "
       "**06 Deployment** · [07 Comparison →](07-comparison.ipynb)")
cells = [
("md", f"""
# 06 · Deployment: int8 kernels, memory planners and an emulated Cortex-M

{NAV}

MCUNet's central claim (Lin et al. 2020) is that the search must be co-designed with the
inference engine: its TinyEngine uses **3.4x less peak memory and runs 1.7–3.3x faster** than
TensorFlow Lite Micro, mostly by generating code instead of interpreting a model and by running
depthwise convolutions *in place*. This notebook measures that idea with the series' own engine
and no board: a model is converted to int8, run by TFLite-Micro (the reference), by our NumPy
int8 kernels inside one explicit arena laid out by three memory plans, and as generated C
compiled for a Cortex-M4 / M7 and executed instruction by instruction in an emulator
(`helpers.engine.kernels`, `helpers.engine.emulator`; details and caveats in
[docs/emulator.md](../docs/emulator.md)).

*Runs in about 4 minutes on a 2-core machine (72 s measured for the committed outputs under the portable arithmetic beside another notebook with the C compile cache warm, 238 s before with a cold one; most of it the MLPerf latency table and the patch-based study; `MLPERF_BENCHMARKS = ["anomaly detection"]` makes it about 1.5 minutes).*
"""),
("md", """
**Goals**
1. Convert a trained model to int8 and measure what quantisation costs in accuracy (in TFLite-Micro).
2. Compare TFLite-Micro's measured arena with the estimates of three memory plans: `tflm`
   (TFLite-Micro's own greedy planner), `reordered` (μNAS operator reordering) and `inplace`
   (TinyEngine's in-place depthwise on top of it).
3. See the in-place and reordering savings on a MobileNetV2-style model, operator by operator.
4. Read the generated C, and count the instructions each operator executes on a Cortex-M
   (plain reference-style C kernels vs kernels using the Armv7E-M DSP instructions).
5. Put our engine beside TFLite-Micro and TinyEngine's published figures, honestly.

**Constraints, stated up front.** There is no board: instruction counts, SRAM and flash are
*measurements of the emulated program*, but cycles and milliseconds are *estimates* from a
per-instruction-class timing table (Cortex-M4, zero wait states: measured 0.48-0.66x the
published MLPerf Tiny reference latencies on the NUCLEO-L4R5ZI, 0.70-0.88x with its documented
flash wait states, see docs/emulator.md; Cortex-M7: a heuristic for ranking). TFLite-Micro's arena is
measured by its Python interpreter on a 64-bit host, so its persistent tail is larger than on a
32-bit MCU. Every output below is checked bit for bit against TFLite-Micro.
"""),
("code", """
MODEL = "ds-cnn"           # ds-cnn or mobilenetv2-0.35 (built in, trained here), or run:NN-name[.label] (saved by a search notebook)
DATASET = "kws"            # one of helpers.data.names(); a recorded MODEL's input must match it
TARGET = "stm32f412"       # one of helpers.targets.names(); a Cortex-M4 gives the cycle estimate with its error band
WIDTH = 1.0                # size of a built-in MODEL relative to its name (ds-cnn: 64 x WIDTH filters)
EPOCHS = 10                # training epochs of a built-in MODEL
LEARNING_RATE = 0.003
N_TEST = 0                 # 0: the whole test split for the accuracies; else the first N_TEST samples
N_CHECK = 4                # test inputs run by the Python kernels under every plan (bit-exactness)
MBV2_RESOLUTION = 48       # input side of the MobileNetV2-0.35-style model of Part 3 (random weights)
PATCH_RESOLUTION = 144     # input side of the MobileNetV2-0.35-style model of Part 10 (patch-based inference)
PATCH_MAX_OVERHEAD = 0.2   # largest recompute overhead (extra MACs / MACs) a patch schedule may cost
PATCH_VWW = True           # also study the MLPerf Tiny VWW MobileNetV1 (helpers.deploy.zoo) in Part 10
MLPERF_BENCHMARKS = ["keyword spotting", "visual wake words", "image classification", "anomaly detection"]  # Part 9 latency table
SEED = 0
""", "parameters"),
("code", """
# Every parameter checked before any work: a value outside its rule stops here, named.
from helpers import deploy, params as P
from helpers.deploy import mlperf

P.check(globals(), {
    "MODEL": P.Satisfies(deploy.parse_model_spec, f"a built-in model {sorted(deploy.REFERENCE_MODELS)} "
                         "or 'run:NN-name[.label]' (saved by a search notebook)"),
    "DATASET": P.Dataset(),
    "TARGET": P.Target(),
    "WIDTH": P.Float(min=0, min_open=True),
    "EPOCHS": P.Int(min=1),
    "LEARNING_RATE": P.Float(min=0, min_open=True),
    "N_TEST": P.Int(min=0),
    "N_CHECK": P.Int(min=1),
    "MBV2_RESOLUTION": P.Int(min=1),
    "PATCH_RESOLUTION": P.Int(min=8),
    "PATCH_MAX_OVERHEAD": P.Float(min=0),
    "PATCH_VWW": P.Bool(),
    "MLPERF_BENCHMARKS": P.ListOf(P.Choice(sorted(mlperf.MLPERF_MODELS)), min_len=1, unique=True),
    "SEED": P.Seed(),
})
"""),
("code", """
import re
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import helpers
from helpers import data, deploy, plots, resources, targets, train
from helpers.engine import emulator, interpreter, kernels

helpers.seed_everything(SEED)
t_start = time.time()
target = targets.get(TARGET)
print(target)
"""),
("md", """
## Part 1 · A model and its int8 twin

`MODEL` is either a built-in reference trained here - a **DS-CNN** (the MLPerf Tiny keyword
spotting reference shape, written as an architecture of the granular space) or a
**MobileNetV2-0.35**-style network (block space) - or the int8 file a search notebook saved with
`helpers.save_model` (`"run:02-aging-evolution"` loads `02-aging-evolution.best.tflite` from the
current or latest run folder, and fails clearly if it is not there).
"""),
("code", """
ds = data.load(DATASET, seed=SEED)
if N_TEST:
    ds = ds.subset(n_test=N_TEST, seed=SEED)
print(f"{DATASET}: {len(ds.x_train)} / {len(ds.x_val)} / {len(ds.x_test)} samples of {ds.input_shape}, "
      f"{ds.num_classes} classes; source: {ds.source[:90]}")
kind, *spec = deploy.parse_model_spec(MODEL)
model, arch, acc_float, history = None, None, None, None
if kind == "reference":
    arch, model = deploy.reference_model(spec[0], ds.input_shape, ds.num_classes, width=WIDTH, seed=SEED)
    history = train.fit(model, ds, epochs=EPOCHS, lr=LEARNING_RATE, seed=SEED)
    acc_float = train.accuracy(model, ds.x_test, ds.y_test)
    tfl = deploy.to_tflite_int8(model, ds.x_train[:256])      # 256 real samples calibrate the int8 scales
    print(history.summary())
else:
    tfl, folder = deploy.recorded_model(MODEL)
    print(f"loaded {MODEL} from {folder}")
"""),
("code", """
from helpers import tflite_io

m = tflite_io.read(tfl)
in_shape = tuple(m.tensors[m.inputs[0]].shape[1:])
if in_shape != tuple(ds.input_shape):
    raise ValueError(f"MODEL {MODEL!r} takes inputs of shape {in_shape}, DATASET {DATASET!r} gives "
                     f"{ds.input_shape}; choose the dataset the model was trained on")
logits_int8 = deploy.tflm_predict(tfl, ds.x_test, progress=True)
acc_int8 = float(np.mean(logits_int8.argmax(axis=1) == ds.y_test))
print(f"test accuracy on {len(ds.y_test)} samples: float (Keras) "
      f"{'n/a (recorded int8 file)' if acc_float is None else f'{acc_float:.4f}'}  ->  int8 (TFLite-Micro) {acc_int8:.4f}")
"""),
("code", """
# NBVAL_CHECK_OUTPUT
specs = interpreter.prepare(tfl)
macs = sum(s.macs for s in specs)
print(f"{MODEL}: {len(specs)} operators, {macs:,} MACs, .tflite {len(tfl):,} B, input {in_shape} int8")
print("operators:", " ".join(s.kind for s in specs))
"""),
("md", """
## Part 2 · TFLite-Micro's measured arena vs each plan's estimate

TFLite-Micro allocates one arena: a *head* (its greedy plan of every activation tensor and scratch
buffer) and a *tail* (persistent interpreter structures). `helpers.resources.plan_tflite` computes
three plans from the file's graph; the `tflm` plan replicates TFLite-Micro's planner, so its peak
must equal the measured head. For a built-in model the same estimate is also computed from the
architecture alone, before any training (what a search uses).
"""),
("code", """
arena = deploy.measure_arena(tfl)
plans = {p: resources.plan_tflite(tfl, p) for p in resources.PLANS}
print(arena.summary())
rows = []
for p, pl in plans.items():
    rows.append({"plan": p, "peak SRAM estimate B": pl.peak_sram_bytes,
                 "from architecture B": resources.profile(arch, ds.input_shape, ds.num_classes, plan=p).peak_sram_bytes
                 if arch is not None else None,
                 "TFLM head measured B": arena.head, "estimate - head B": pl.peak_sram_bytes - arena.head,
                 "TFLM total measured B": arena.total})
plan_table = pd.DataFrame(rows).set_index("plan")
plan_table
"""),
("code", """
# NBVAL_CHECK_OUTPUT
print("tflm plan == measured TFLM arena head:", plans["tflm"].peak_sram_bytes == arena.head)
for p, pl in plans.items():
    print(f"{p:9s} peak {pl.peak_sram_bytes:>7,} B  layout {pl.arena_bytes:>7,} B  in-place ops {pl.inplace_ops}")
"""),
("md", """
On a plain chain (like the DS-CNN) reordering cannot help - there is only one order - and the
in-place depthwise only lowers the peak when a depthwise layer holds it. In the DS-CNN the peak
is a 1x1 convolution whose input and output are both live, so all three plans agree there, and
the planners pay off only on inverted-residual networks (next part).
"""),
("md", """
## Part 3 · In-place depthwise and reordering on a MobileNetV2-style model

The planners matter most on inverted-residual networks. This MobileNetV2-0.35-style model
(3x3 stride-2 stem, then four stages of two expansion-6 blocks; random trained-looking weights,
since only memory and speed are measured) is the one of `scripts/bench_emulator.py`. *Reordering*
runs branches in the order that frees memory soonest; *in-place* depthwise (TinyEngine) writes
each output channel over its input through a one-channel buffer, so a depthwise step costs N + N/C
bytes instead of 2N. The emulated build runs in the `inplace` plan's arena.
"""),
("code", """
mb_arch, mb_model = deploy.reference_model("mobilenetv2-0.35", (MBV2_RESOLUTION, MBV2_RESOLUTION, 3), 10, seed=SEED)
deploy.randomize_weights(mb_model, SEED)
rng = np.random.default_rng(SEED)
mb_tfl = deploy.to_tflite_int8(mb_model, rng.normal(0, 1, (8, MBV2_RESOLUTION, MBV2_RESOLUTION, 3)).astype(np.float32))
mb_x = np.clip(rng.normal(0, 50, (1, MBV2_RESOLUTION, MBV2_RESOLUTION, 3)), -128, 127).astype(np.int8)
mb_macs = sum(s.macs for s in interpreter.prepare(mb_tfl))
mb_arena = deploy.measure_arena(mb_tfl)
mb_plans = {p: resources.plan_tflite(mb_tfl, p) for p in resources.PLANS}
mb_ref = deploy.reference_outputs(mb_tfl, mb_x, engine="tflm").ravel()
mb_engine = emulator.run(emulator.build(mb_tfl, target, plan="inplace", kernels="dsp"), mb_x)
mb_plain = emulator.run(emulator.build(mb_tfl, target, plan="tflm", kernels="plain"), mb_x)
print(f"MobileNetV2-0.35-style r{MBV2_RESOLUTION}: {mb_macs:,} MACs, .tflite {len(mb_tfl):,} B; {mb_arena.summary()}")
print(mb_engine.summary())
"""),
("code", """
fig, ax = plt.subplots(1, 2, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1, 1.2]})
plots.memory_bars({
    "TFLM arena total (measured)": mb_arena.total,
    "TFLM arena head (measured)": mb_arena.head,
    "plan tflm (estimate)": mb_plans["tflm"].peak_sram_bytes,
    "plan reordered (estimate)": mb_plans["reordered"].peak_sram_bytes,
    "plan inplace (estimate)": mb_plans["inplace"].peak_sram_bytes,
    "emulated build SRAM (measured)": mb_engine.sram_bytes,
}, ax=ax[0], reference="TFLM arena total (measured)", title=f"MobileNetV2-0.35 r{MBV2_RESOLUTION}: peak SRAM")
plots.live_memory_timeline(mb_plans, ax=ax[1], title="live activation memory per operator")
fig.tight_layout();
"""),
("code", """
# NBVAL_CHECK_OUTPUT
for p, pl in mb_plans.items():
    print(f"{p:9s} peak {pl.peak_sram_bytes:>7,} B   ({mb_arena.head / pl.peak_sram_bytes:.2f}x below the TFLM head, "
          f"{mb_arena.total / pl.peak_sram_bytes:.2f}x below the TFLM total)")
print(f"emulated build SRAM {mb_engine.sram_bytes:,} B = static {mb_engine.static_sram_bytes} + arena "
      f"{mb_engine.arena_bytes:,} + stack {mb_engine.stack_bytes}; extra over the plan: "
      f"{mb_engine.sram_bytes - mb_plans['inplace'].arena_bytes} B")
print("inplace plan >= 1.5x below the measured TFLM arena:", mb_arena.total / mb_plans["inplace"].peak_sram_bytes >= 1.5)
"""),
("md", """
The peak of this model does not sit on a depthwise layer: it is the first 1x1 expansion at the
highest resolution (its input and its 6x wider output are both live), which no per-operator
in-place trick removes. So the in-place depthwise saves only a few percent against TFLite-Micro's
*activation plan* here; the large factor against the *whole* TFLite-Micro arena comes from the
interpreter's persistent tail, which generated code does not need (see Part 6).
"""),
("md", """
## Part 4 · The generated C

`helpers.engine.emulator.generate_c` turns the `.tflite` into one C file in the spirit of TinyEngine:
weights, biases and requantisation multipliers as `const` arrays (flash), one static arena of the
plan's size with every tensor at the plan's offset (SRAM), and a straight-line sequence of kernel
calls with a marker before each operator. It is compiled with `ziglang`'s clang for the target's
core and linked with a linker script of the target's flash and SRAM, so a model that does not fit
fails to link. Below, the array bodies are elided.
"""),
("code", """
bd_dsp = emulator.build(tfl, target, plan="inplace", kernels="dsp")
src = bd_dsp.generated.source
short = re.sub(r"= \\{\\n.*?\\n\\};", "= { ... };", src, flags=re.S)
lines = short.splitlines()
main_at = next(i for i, ln in enumerate(lines) if ln.startswith("int tn_main"))
print("\\n".join(lines[:22] + ["  ..."] + lines[main_at:main_at + 8] + ["  ..."] + lines[-3:]))
print(f"\\n[{len(src.splitlines()):,} lines in all; ELF {bd_dsp.elf.split('/')[-1]} for {target.core}]")
"""),
("md", """
## Part 5 · Emulated instructions and estimated cycles per operator

The ELF runs under `unicorn` (a Cortex-M CPU model) with the test input written into the arena.
The harness counts every executed instruction exactly, per operator, and estimates cycles from a
per-instruction-class timing table. Two kernel sets: *plain* (reference-style loops, like
TFLite-Micro's reference kernels) and *DSP* (Armv7E-M `SXTB16` + `SMLAD`, im2col, input offset
folded into the bias). With the `inplace` plan the depthwise operators use the per-channel
in-place kernel in both sets (no SIMD), so their counts are the same for plain and DSP; the
`tflm` plan lets the DSP set use its 4-channel SIMD depthwise kernel instead - the speed / memory
trade-off of in-place execution. The same model also runs on the other core for comparison.
"""),
("code", """
xq = deploy.quantize_input(tfl, ds.x_test[:max(N_CHECK, 1)])
ref = [deploy.reference_outputs(tfl, xq[i], engine="tflm").ravel() for i in range(len(xq))]
other = "stm32f746zg" if target.core == "cortex-m4" else "stm32f412"
t0 = time.time()
emu = {}
runs = {"dsp": (target, "inplace", "dsp"), "plain": (target, "inplace", "plain"),
        "dsp_tflm_plan": (target, "tflm", "dsp"), "dsp_other": (targets.get(other), "inplace", "dsp")}
for label, (tgt, plan, kern) in tqdm(runs.items(), desc="emulate"):
    emu[label] = emulator.run(bd_dsp if label == "dsp" else emulator.build(tfl, tgt, plan=plan, kernels=kern), xq[0])
emulate_seconds = time.time() - t0
print(emu["dsp"].summary())
print(f"[{emulate_seconds:.0f} s for {len(emu)} emulated inferences]")
"""),
("code", """
fig, ax = plt.subplots(2, 1, figsize=(max(8, 0.35 * len(specs) + 3), 7))
plots.op_cost_bars({"plain kernels, inplace plan": emu["plain"].table(), "DSP kernels, inplace plan": emu["dsp"].table(),
                    "DSP kernels, tflm plan": emu["dsp_tflm_plan"].table()}, ax=ax[0],
                   value="instructions", log=True, title=f"{MODEL} on {target.name}: executed instructions (exact)")
plots.op_cost_bars({f"{target.name} ({target.core}, estimate)": emu["dsp"].table(),
                    f"{other} ({emu['dsp_other'].core}, estimate)": emu["dsp_other"].table()}, ax=ax[1],
                   value="cycles", log=True, title="estimated cycles per operator, DSP kernels")
fig.tight_layout();
"""),
("code", """
BAND = {"cortex-m4": (1.0, 2.1, "lower bound: MLPerf Tiny reference measured 1.5-2.1x this estimate (docs/emulator.md)"),
        "cortex-m7": (0.60, 1.40, "±40%, rough heuristic for the dual-issue core: rank models with it")}
rows = []
for label, r in emu.items():
    lo, hi, note = BAND[r.core]
    rows.append({"run": label, "target": r.target, "core": r.core, "plan": r.plan, "kernels": r.kernels,
                 "instructions": r.instructions, "instr/MAC": round(r.instructions_per_mac, 2),
                 "cycles (est.)": round(r.cycles), "ms at clock (est.)": round(r.latency_ms, 2),
                 "ms band": f"{r.latency_ms * lo:.1f}-{r.latency_ms * hi:.1f}", "error band": note,
                 "SRAM measured B": r.sram_bytes, "flash B": r.flash_bytes})
emu_table = pd.DataFrame(rows).set_index("run")
dsp_gain = emu["plain"].instructions_per_mac / emu["dsp"].instructions_per_mac
print(f"instructions per MAC: plain {emu['plain'].instructions_per_mac:.2f} vs DSP "
      f"{emu['dsp'].instructions_per_mac:.2f} ({dsp_gain:.2f}x fewer with DSP)")
emu_table
"""),
("code", """
per_kind = pd.concat({k: emu[k].table().groupby("kind")[["instructions", "macs"]].sum() for k in ("plain", "dsp")}, axis=1)
for k in ("plain", "dsp"):
    per_kind[(k, "instr/MAC")] = (per_kind[(k, "instructions")] / per_kind[(k, "macs")].where(per_kind[(k, "macs")] > 0)).round(2)
per_kind
"""),
("md", """
## Part 6 · Bit-exactness

Smaller plans are only worth something if they are correct. The Python kernels run inside one
NumPy arena laid out by each plan (the in-place depthwise really overwrites its input, and a
check after every operator fails if a live tensor was clobbered); the emulated C builds run in
the plan's arena too. Every output must equal TFLite-Micro's int8 output exactly. Instruction
counts of the emulated MobileNetV2 builds are deterministic, so they are part of this check.
"""),
("code", """
py_exact = {}
for p in tqdm(resources.PLANS, desc="python kernels"):
    py_exact[p] = all(np.array_equal(interpreter.run(tfl, xq[i], plan=p).output.ravel(), ref[i]) for i in range(len(xq)))
mb_py_exact = {p: np.array_equal(interpreter.run(mb_tfl, mb_x, plan=p).output.ravel(), mb_ref) for p in resources.PLANS}
"""),
("code", """
# NBVAL_CHECK_OUTPUT
emu_exact = {k: np.array_equal(r.output.ravel(), ref[0]) for k, r in emu.items()}
mb_emu_exact = {"inplace+dsp": np.array_equal(mb_engine.output.ravel(), mb_ref),
                "tflm+plain": np.array_equal(mb_plain.output.ravel(), mb_ref)}
print(f"{MODEL}, Python kernels vs TFLite-Micro on {len(xq)} test inputs:", py_exact)
print(f"{MODEL}, emulated builds vs TFLite-Micro:", emu_exact)
print("MobileNetV2, Python kernels per plan:", mb_py_exact)
print("MobileNetV2, emulated builds:", mb_emu_exact)
print(f"MobileNetV2 on {target.name}: instructions inplace+dsp {mb_engine.instructions:,}, tflm+plain {mb_plain.instructions:,}")
bit_exact_python = all(py_exact.values()) and all(mb_py_exact.values())
bit_exact_emulated = all(emu_exact.values()) and all(mb_emu_exact.values())
print("all bit-exact:", bit_exact_python and bit_exact_emulated)
"""),
("md", """
## Part 7 · Our engine vs the TFLite-Micro interpreter, beside TinyEngine's published figures

The published figures are for a different model (mcunet-vww0) on a different board (STM32H743,
480 MHz); ours are the MobileNetV2-style model of Part 3 on the chosen target, emulated. Read them
side by side, not as one comparison.
"""),
("code", """
PUBLISHED = "published (MCUNet, Lin et al. 2020)"
published = {f"TFLM, vww0 on H743 - {PUBLISHED}": {"memory_kb": 163, "latency_ms": 587},
             f"CMSIS-NN, vww0 on H743 - {PUBLISHED}": {"memory_kb": 163, "latency_ms": 53},
             f"TinyEngine, vww0 on H743 - {PUBLISHED}": {"memory_kb": 59, "latency_ms": 27}}
measured = {"TFLM interpreter arena (measured, 64-bit host)": {"memory_kb": mb_arena.total / 1024, "latency_ms": None},
            f"plain C, tflm plan (emulated, {target.name})": {"memory_kb": mb_plain.sram_bytes / 1024,
                                                              "latency_ms": mb_plain.latency_ms},
            f"our engine: DSP, inplace (emulated, {target.name})": {"memory_kb": mb_engine.sram_bytes / 1024,
                                                                    "latency_ms": mb_engine.latency_ms}}
ax = plots.engine_comparison(measured, published)
ax[0].figure.tight_layout();
mem_ratio_total = mb_arena.total / mb_engine.sram_bytes
mem_ratio_head = mb_arena.head / mb_plans["inplace"].peak_sram_bytes
speed_ratio = mb_plain.cycles / mb_engine.cycles
print(f"memory: TFLM arena total / our engine's SRAM = {mem_ratio_total:.2f}x   "
      f"(published TinyEngine claim: 3.4x; vww0 on H743: 163/59 = {163 / 59:.2f}x)")
print(f"  of which the activation plan: TFLM head / inplace plan = {mem_ratio_head:.2f}x "
      f"({100 * (1 - 1 / mem_ratio_head):.0f}% saved); the rest is TFLM's persistent tail "
      f"({mb_arena.tail:,} B, measured with 64-bit host structs - smaller on a 32-bit MCU)")
print(f"speed: plain reference-style C / our DSP engine = {speed_ratio:.2f}x fewer estimated cycles  "
      f"(published: 1.7-3.3x vs TFLM/CMSIS-NN; vww0: TFLM/TinyEngine = {587 / 27:.1f}x, CMSIS-NN/TinyEngine = {53 / 27:.1f}x)")
"""),
("md", """
**Honest reading.** Most of our memory factor against TFLite-Micro is its persistent *tail*: the
interpreter's tensor structs, node registrations and per-channel multipliers, which a generated,
interpreter-free program keeps in flash or does not need. That tail was measured on a 64-bit
host, so on a 32-bit MCU it is smaller and the real factor lower. Against TFLite-Micro's
activation plan alone, in-place depthwise + reordering saves only a few percent on this model.
On speed, our "plain" kernels are our own reference-style C, not TFLite-Micro's interpreter; the
plain-to-DSP factor mixes SIMD with loop restructuring, like CMSIS-NN vs reference kernels.
TinyEngine's 3.4x comes on larger models with more depthwise-dominated peaks and its own
per-channel buffers and patch-based tricks not reproduced here.
"""),
("md", """
## Part 8 · The model as a C array (for TFLite-Micro on a board)

For users who deploy with TFLite-Micro itself, `export_c_array` writes the `.tflite` as a 16-byte
aligned C array (like `xxd -i`), saved beside the run's figures.
"""),
("code", """
c_array = emulator.export_c_array(tfl, name="g_model")
c_path = helpers.run.run_dir() / "06-deployment.g_model.cc"
c_path.write_text(c_array)
print("\\n".join(c_array.splitlines()[:9]))
print("...")
print(c_array.splitlines()[-1])
print(f"[{len(c_array):,} characters written to {c_path.name}]")
"""),
("md", """
## Results
"""),
("code", """
summary = pd.DataFrame([
    {"figure": "test accuracy float -> int8 (TFLM)", "value": f"{'n/a' if acc_float is None else f'{acc_float:.4f}'} -> {acc_int8:.4f}"},
    {"figure": "peak SRAM tflm / reordered / inplace plan (B)",
     "value": " / ".join(f"{plans[p].peak_sram_bytes:,}" for p in resources.PLANS)},
    {"figure": "TFLM arena measured head / total (B)", "value": f"{arena.head:,} / {arena.total:,}"},
    {"figure": f"emulated SRAM / flash on {target.name} (B)", "value": f"{emu['dsp'].sram_bytes:,} / {emu['dsp'].flash_bytes:,}"},
    {"figure": "instructions per MAC plain / DSP", "value": f"{emu['plain'].instructions_per_mac:.2f} / {emu['dsp'].instructions_per_mac:.2f}"},
    {"figure": f"latency at {target.clock_hz / 1e6:.0f} MHz (DSP, estimate)", "value": f"{emu['dsp'].latency_ms:.1f} ms ({emu_table.loc['dsp', 'ms band']})"},
    {"figure": "latency, DSP kernels with the tflm plan (estimate)", "value": f"{emu['dsp_tflm_plan'].latency_ms:.1f} ms, SRAM {emu['dsp_tflm_plan'].sram_bytes:,} B"},
    {"figure": "MobileNetV2: TFLM arena total / engine SRAM", "value": f"{mem_ratio_total:.2f}x (head / inplace plan {mem_ratio_head:.2f}x)"},
    {"figure": "bit-exact (Python kernels, every plan / emulated)", "value": f"{bit_exact_python} / {bit_exact_emulated}"},
]).set_index("figure")
summary
"""),
("md", """
## Part 9 · Bring your own model

Everything above also works on a `.tflite` you bring from elsewhere (any int8 model, also with
the converter's float input/output wrapper). The profiler command answers the first question
about it, *does it fit my board?*, without a board:

```bash
python -m helpers.profile my_model.tflite --target stm32f746zg [--emulate] [--csv layers.csv] [--json report.json]
```

Here the "reader's model" is TFLite-Micro's `micro_speech` example at its published shape
(`helpers.deploy.zoo`, random weights) written to a file. Peak SRAM is TFLite-Micro's arena head
(`tflm` plan, measured equal below); flash is the file, every byte attributed, beside the
deployable image a device needs (no tensor names, min/max arrays, metadata, signature defs).
"""),
("code", """
from helpers import profile as profiler
from helpers.deploy import zoo

byom_path = helpers.run.run_dir() / "06-deployment-byom" / "micro_speech.tflite"  # not a saved hand-off model
byom_path.parent.mkdir(parents=True, exist_ok=True)
byom_path.write_bytes(zoo.build("micro-speech", io="int8", seed=SEED))  # the file the reader brings
byom = profiler.profile_model(byom_path, target=target.name)
print(byom.summary())
byom.table()
"""),
("code", """
# NBVAL_CHECK_OUTPUT
byom_bytes = byom_path.read_bytes()
byom_graph = resources.graph_from_tflite(byom_bytes)
byom_head = deploy.measure_arena(byom_bytes).head
print("peak SRAM estimate == TFLite-Micro measured arena head:", byom.sram_bytes == byom_head)
print("flash parts add up to the file size:", sum(byom.profile.flash[p] for p in resources.FILE_PARTS) == len(byom_bytes))
print("every plan is a verified layout:", all(resources.verify_plan(byom_graph, resources.plan(byom_graph, p))["end"] > 0
                                              for p in resources.PLANS))
"""),
("md", """
**How far to trust the latency column.** The cycle model's parameters are documented core and
memory facts (Cortex-M4 TRM instruction timings, the board's flash wait states from its
reference manual), not fitted. Checked against the published MLPerf Tiny reference latencies
(published, MLPerf Tiny v0.5, NUCLEO-L4R5ZI, TFLite-Micro + CMSIS-NN) on the same architectures
with random weights (`helpers.deploy.mlperf`; all four recorded in
`results/20261202-latency-honesty/mlperf_latency.json`):
"""),
("code", """
latency_check = mlperf.mlperf_latency(models=MLPERF_BENCHMARKS, seed=SEED)
print(latency_check.summary())
latency_check.table()[["published_ms", "zero_ws_ms", "zero_ws_over_published", "flash_ws_ms", "flash_ws_over_published"]]
"""),
("md", """
## Part 10 · Patch-based inference

The peak of a MobileNetV2 sits in its first, high-resolution stage (Part 3). MCUNetV2 (Lin et al.
2021) runs that stage *patch by patch*: the output of a split layer is cut into an n x n grid and,
for each patch, every layer of the stage computes only the region the patch needs (its receptive
field; the overlapping halo is computed again), writing its piece of the split output; the rest runs
layer by layer. Only one patch's buffers are live at a time, at the price of recomputed MACs. The
planner (`resources.patch_plan.choose_schedule`) tries every split and grid and keeps the lowest peak
within `PATCH_MAX_OVERHEAD`; its memory plan places every per-patch buffer, the input, the split
output and the rest with offsets and checks that no two live buffers overlap. TFLite-Micro's *total*
is its head plus its persistent tail on a **32-bit** MCU, modelled from its structures
(`deploy.tflm_tail`) and checked at 64-bit against the tail measured here. Both engines run the
schedule: the Python kernels (`engine.patch.run`) and the generated C (`emulator.run(..., schedule=...)`).
"""),
("code", """
from helpers.deploy import patch_study, tflm_tail, zoo
from helpers.resources import patch_plan

if PATCH_RESOLUTION == MBV2_RESOLUTION:      # the model of Part 3
    pb_tfl, pb_x = mb_tfl, mb_x
else:
    pb_arch, pb_model = deploy.reference_model("mobilenetv2-0.35", (PATCH_RESOLUTION, PATCH_RESOLUTION, 3), 10, seed=SEED)
    deploy.randomize_weights(pb_model, SEED)
    pb_tfl = deploy.to_tflite_int8(pb_model, rng.normal(0, 1, (8, PATCH_RESOLUTION, PATCH_RESOLUTION, 3)).astype(np.float32))
    pb_x = np.clip(rng.normal(0, 50, (1, PATCH_RESOLUTION, PATCH_RESOLUTION, 3)), -128, 127).astype(np.int8)
studies = {f"MobileNetV2-0.35 r{PATCH_RESOLUTION}": patch_study.study(pb_tfl, pb_x, "mbv2", max_overhead=PATCH_MAX_OVERHEAD)}
if PATCH_VWW:
    vww_tfl = zoo.build("mobilenetv1-vww", io="int8", seed=SEED)
    vww_x = np.clip(rng.normal(0, 50, (1, 96, 96, 3)), -128, 127).astype(np.int8)
    studies["VWW MobileNetV1-0.25 r96"] = patch_study.study(vww_tfl, vww_x, "vww", max_overhead=PATCH_MAX_OVERHEAD)
# emulated cost on Part 3's smaller model (emulating r144 takes minutes): the patch build beside Part 3's in-place one
pe = patch_study.study(mb_tfl, mb_x, "mbv2-emu", target=target, emulate=True, max_overhead=PATCH_MAX_OVERHEAD,
                       builds=("patch",))
pe.emulated["inplace"] = {"exact": bool(np.array_equal(mb_engine.output.ravel(), mb_ref)),
                          "instructions": mb_engine.instructions, "ms": mb_engine.latency_ms, "sram": mb_engine.sram_bytes}
for label, st in studies.items():
    print(st.summary())
print(pe.summary())
"""),
("code", """
fig, ax = plt.subplots(1, 2, figsize=(14, 3.8))
plots.patch_sram_vs_patches(studies, ax=ax[0])
pb = studies[f"MobileNetV2-0.35 r{PATCH_RESOLUTION}"]
plots.memory_bars({label: b for label, b, _ in pb.rows()}, ax=ax[1], reference="TFLM arena head (measured)",
                  title=f"MobileNetV2-0.35 r{PATCH_RESOLUTION}: peak SRAM per strategy")
fig.tight_layout();
"""),
("code", """
# NBVAL_CHECK_OUTPUT
for label, st in studies.items():
    print(f"{label}: patch {st.grid}x{st.grid} to op {st.split}, peak {st.patch:,} B = {st.head_over_patch:.2f}x below the TFLM head "
          f"{st.tflm_head:,} B, {st.tflm_total_mcu32 / st.patch:.2f}x below the TFLM 32-bit total; +{100 * st.overhead:.1f} % MACs; "
          f"bit-exact {st.bit_exact_python}")
    print(f"  TFLM tail: host measured {st.tflm_tail_host:,} B, modelled {st.tflm_tail_host_model:,} B "
          f"({100 * (st.tflm_tail_host_model / st.tflm_tail_host - 1):+.2f} %); 32-bit MCU modelled {st.tflm_tail_mcu32:,} B")
print("emulated builds bit-exact:", all(e["exact"] for e in pe.emulated.values()))
"""),
("code", """
pe.table()
"""),
("code", """
if kind == "reference":
    helpers.save_model("06-deployment", tfl, label=spec[0].replace(".", "_"))
helpers.record("06-deployment", {
    "dataset": DATASET,
    "target": target.name,
    "model": MODEL,
    "macs": macs,
    "tflite_bytes": len(tfl),
    "test_accuracy_float": acc_float,
    "test_accuracy_int8": acc_int8,
    "peak_sram_tflm_plan_bytes": plans["tflm"].peak_sram_bytes,
    "peak_sram_reordered_plan_bytes": plans["reordered"].peak_sram_bytes,
    "peak_sram_inplace_plan_bytes": plans["inplace"].peak_sram_bytes,
    "tflm_arena_head_bytes": arena.head,
    "tflm_arena_total_bytes": arena.total,
    "emulated_instructions_dsp": emu["dsp"].instructions,
    "emulated_instructions_plain": emu["plain"].instructions,
    "instructions_per_mac_dsp": emu["dsp"].instructions_per_mac,
    "instructions_per_mac_plain": emu["plain"].instructions_per_mac,
    "estimated_cycles_dsp": emu["dsp"].cycles,
    "clock_mhz": target.clock_hz / 1e6,
    "latency_ms_dsp_estimate": emu["dsp"].latency_ms,
    "latency_ms_plain_estimate": emu["plain"].latency_ms,
    "emulated_instructions_dsp_tflm_plan": emu["dsp_tflm_plan"].instructions,
    "latency_ms_dsp_tflm_plan_estimate": emu["dsp_tflm_plan"].latency_ms,
    "emulated_sram_tflm_plan_bytes": emu["dsp_tflm_plan"].sram_bytes,
    "latency_ms_dsp_other_core_estimate": emu["dsp_other"].latency_ms,
    "other_target": other,
    "emulated_sram_bytes": emu["dsp"].sram_bytes,
    "emulated_flash_bytes": emu["dsp"].flash_bytes,
    "bit_exact_python_all_plans": bit_exact_python,
    "bit_exact_emulated": bit_exact_emulated,
    "mbv2_macs": mb_macs,
    "patch_resolution": PATCH_RESOLUTION,
    "patch_mbv2_peak_sram_bytes": pb.patch,
    "patch_mbv2_split_op": pb.split,
    "patch_mbv2_grid": pb.grid,
    "patch_mbv2_mac_overhead": pb.overhead,
    "patch_mbv2_tflm_head_bytes": pb.tflm_head,
    "patch_mbv2_tflm_total_mcu32_bytes": pb.tflm_total_mcu32,
    "patch_mbv2_inplace_plan_bytes": pb.inplace,
    "patch_mbv2_tflm_head_over_patch": pb.head_over_patch,
    "patch_mbv2_bit_exact": pb.bit_exact_python,
    "patch_vww_peak_sram_bytes": studies["VWW MobileNetV1-0.25 r96"].patch if PATCH_VWW else None,
    "patch_vww_tflm_head_bytes": studies["VWW MobileNetV1-0.25 r96"].tflm_head if PATCH_VWW else None,
    "patch_vww_bit_exact": studies["VWW MobileNetV1-0.25 r96"].bit_exact_python if PATCH_VWW else None,
    "tflm_tail_host_measured_bytes": pb.tflm_tail_host,
    "tflm_tail_host_model_bytes": pb.tflm_tail_host_model,
    "tflm_tail_mcu32_model_bytes": pb.tflm_tail_mcu32,
    "patch_emulated_instructions": pe.emulated["patch"]["instructions"],
    "patch_emulated_latency_ms_estimate": pe.emulated["patch"]["ms"],
    "inplace_emulated_latency_ms_estimate": pe.emulated["inplace"]["ms"],
    "patch_emulated_peak_sram_bytes": pe.patch,
    "patch_emulated_bit_exact": all(e["exact"] for e in pe.emulated.values()),
    "mbv2_tflm_arena_total_bytes": mb_arena.total,
    "mbv2_tflm_arena_head_bytes": mb_arena.head,
    "mbv2_peak_sram_tflm_plan_bytes": mb_plans["tflm"].peak_sram_bytes,
    "mbv2_peak_sram_reordered_plan_bytes": mb_plans["reordered"].peak_sram_bytes,
    "mbv2_peak_sram_inplace_plan_bytes": mb_plans["inplace"].peak_sram_bytes,
    "mbv2_emulated_sram_bytes": mb_engine.sram_bytes,
    "mbv2_tflm_total_over_engine_sram": mem_ratio_total,
    "mbv2_tflm_head_over_inplace_plan": mem_ratio_head,
    "byom_model": "micro-speech",
    "byom_peak_sram_bytes": byom.sram_bytes,
    "byom_estimate_equals_tflm_head": bool(byom.sram_bytes == byom_head),
    "byom_flash_file_bytes": len(byom_bytes),
    "mlperf_latency_ratio_zero_ws_min": min(latency_check.ratios("zero_ws")),
    "mlperf_latency_ratio_zero_ws_max": max(latency_check.ratios("zero_ws")),
    "mlperf_latency_ratio_flash_ws_min": min(latency_check.ratios("flash_ws")),
    "mlperf_latency_ratio_flash_ws_max": max(latency_check.ratios("flash_ws")),
    "mbv2_instructions_dsp_inplace": mb_engine.instructions,
    "mbv2_instructions_plain_tflm": mb_plain.instructions,
    "mbv2_latency_ms_dsp_inplace_estimate": mb_engine.latency_ms,
    "mbv2_latency_ms_plain_tflm_estimate": mb_plain.latency_ms,
    "best_test_accuracy_int8": acc_int8,
    "best_peak_sram_bytes_estimate": plans["tflm"].peak_sram_bytes,
    "best_tflm_arena_head_bytes": arena.head,
    "best_flash_bytes": len(tfl),
    "best_macs": macs,
    "train_seconds": history.wall_seconds if history is not None else 0.0,
    "emulate_seconds": emulate_seconds,
    "wall_seconds": time.time() - t_start,
}, handoff=helpers.HandOff(
    method="Reference model, our engine", dataset=DATASET, target=TARGET, trials=0,
    search_cpu_minutes=0.0, models=(spec[0].replace(".", "_"),)) if kind == "reference" else None);
"""),
("md", f"""
**What to take away.** An int8 model can be measured end to end without a board: the memory
plans predict TFLite-Micro's arena head exactly, the in-place and reordered plans are proven
correct by bit-exact outputs, and the emulator gives exact instruction counts (and estimated
cycles with a stated band) per operator. The largest memory saving of an engine over an
interpreter is the interpreter itself; activation planning adds a few percent to tens of percent
depending on where the model's peak sits - which is why MCUNet searches the model *with* the engine.

{NAV}
"""),
]
build(NOTEBOOKS + "/06-deployment.ipynb", cells)

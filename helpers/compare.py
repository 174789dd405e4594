"""The survey's comparison, measured: every method's best model through one harness.

Taught in 07-comparison. The search notebooks (02–05) save their best feasible int8
model into the run folder (:func:`helpers.save_model`) and record their search cost;
:func:`helpers.deploy.measure_deployed` then measures every saved model the same way — int8 accuracy in the
TFLite-Micro interpreter on the same test set, the TFLM arena, each memory plan's
estimate, the ``.tflite`` size, MACs and the emulated latency on the same target — and
:func:`comparison` puts them in one table. :data:`PUBLISHED` holds the papers' own
figures (from ``shared/anchors.md``), always labelled as published, never mixed with
ours.

May import every layer below (data, deploy, run, runner); the top layer.
"""
from __future__ import annotations

from pathlib import Path

from helpers import data as data_mod
from helpers import runner
from helpers.deploy import measure_deployed
from helpers.run import load_figures, load_handoffs, load_models

__all__ = ["METHODS", "PUBLISHED", "FRAMEWORKS", "collect", "comparison",
           "published_table", "frameworks_table", "missing_methods", "sparse_engine_table"]

#: notebook -> (method, paper it reproduces). Order = table order.
METHODS = {
    "02-aging-evolution": ("Aging evolution", "μNAS (Liberis et al. 2020)"),
    "03-sparse-pruning": ("Bayesian optimisation + pruning", "SpArSe (Fedorov et al. 2019)"),
    "04-micronets-dnas": ("Differentiable NAS", "MicroNets (Banbury et al. 2021)"),
    "05-once-for-all": ("Once-for-All supernet + evolution", "OFA (Cai et al. 2020) / TinyNAS (Lin et al. 2020)"),
    "06-deployment": ("Reference model, our engine", "TinyEngine-style deployment (Lin et al. 2020)"),
}

#: Published figures (papers' own measurements, on their tasks and boards), from shared/anchors.md.
PUBLISHED = [
    {"method": "μNAS", "source": "published (Liberis et al. 2020; second-hand)", "task": "MNIST",
     "result": "search bounds: error 0.035, peak memory 2,500 B, model 4,500 B, 30M MACs",
     "search_cost": "aging evolution, population 100, sample 25, 2,000 rounds"},
    {"method": "μNAS", "source": "published (Liberis et al. 2020; second-hand)", "task": "CIFAR-10",
     "result": "86.49% at 11.4 KB model, 15.4 KB peak RAM, 384K MACs", "search_cost": "about 23 GPU-days"},
    {"method": "SpArSe", "source": "published (Fedorov et al. 2019; second-hand)", "task": "MNIST",
     "result": "98.64% with < 2 KB RAM and 2.8 KB flash", "search_cost": "multi-objective BO"},
    {"method": "SpArSe", "source": "published (Fedorov et al. 2019)", "task": "binary CIFAR-10",
     "result": "73.84% at 0.78 KB model, 1.28 KB working memory", "search_cost": ""},
    {"method": "MicroNets KWS-S", "source": "published (Banbury et al. 2021)", "task": "Speech Commands (12)",
     "result": "95.3%, 102 KB flash, 53.2 KB SRAM, 16.4 Mops, 0.250 s on STM32F446RE", "search_cost": "DNAS"},
    {"method": "MicroNets KWS-M", "source": "published (Banbury et al. 2021)", "task": "Speech Commands (12)",
     "result": "95.8%, 163 KB flash, 103.3 KB SRAM, 30.6 Mops", "search_cost": "DNAS"},
    {"method": "MicroNets KWS-L", "source": "published (Banbury et al. 2021)", "task": "Speech Commands (12)",
     "result": "96.5%, 612 KB flash, 208.8 KB SRAM, 129 Mops", "search_cost": "DNAS"},
    {"method": "MCUNet TinyNAS", "source": "published (Lin et al. 2020)", "task": "ImageNet-100",
     "result": "chosen space 78.7% vs a poorer space 74.2% (+4.5%)", "search_cost": "m = 1000 nets per space"},
    {"method": "TinyEngine", "source": "published (Lin et al. 2020)", "task": "VWW (mcunet-vww0, STM32H743)",
     "result": "TFLM 587 ms / 163 KB, CMSIS-NN 53 ms / 163 KB, TinyEngine 27 ms / 59 KB", "search_cost": ""},
    {"method": "Once-for-All", "source": "published (Cai et al. 2020)", "task": "ImageNet",
     "result": "progressive shrinking 76.0% vs 72.4% without (3.6% gap)", "search_cost": "one supernet"},
    {"method": "MLPerf Tiny reference", "source": "published (MLPerf Tiny, NUCLEO-L4R5ZI, TFLM)",
     "task": "KWS / VWW / IC / AD", "result": "181.9 ms / 600.6 ms / 704.2 ms / 10.05 ms per inference",
     "search_cost": ""},
]

#: The survey's Table I (frameworks used by each paper; "◦" = comparisons only) plus this project.
FRAMEWORKS = {
    "MCUNet [8]": {"TFLite (Micro)": "◦", "CMSIS-NN": "◦", "MicroTVM": "◦", "PyTorch": "", "Custom": "•"},
    "μNAS [9]": {"TFLite (Micro)": "•", "CMSIS-NN": "•", "MicroTVM": "", "PyTorch": "", "Custom": ""},
    "SpArSe [10]": {"TFLite (Micro)": "N/A", "CMSIS-NN": "N/A", "MicroTVM": "N/A", "PyTorch": "N/A", "Custom": "N/A"},
    "MicroNets [11]": {"TFLite (Micro)": "•", "CMSIS-NN": "•", "MicroTVM": "", "PyTorch": "", "Custom": ""},
    "Once-for-All [12]": {"TFLite (Micro)": "", "CMSIS-NN": "", "MicroTVM": "", "PyTorch": "•", "Custom": ""},
    "this project": {"TFLite (Micro)": "• (interpreter, measured arena)",
                     "CMSIS-NN": "◦ (own SMLAD int8 kernels in its spirit)", "MicroTVM": "",
                     "PyTorch": "", "Custom": "• (generated C, emulated Cortex-M)"},
}


def frameworks_table():
    """The survey's Table I with a row for this project, as a DataFrame. Taught in 07-comparison."""
    import pandas as pd

    return pd.DataFrame(FRAMEWORKS).T


def published_table():
    """:data:`PUBLISHED` as a DataFrame (papers' figures, their tasks and boards).
    Taught in 07-comparison.
    """
    import pandas as pd

    return pd.DataFrame(PUBLISHED)


def sparse_engine_table(figures_json) -> "pd.DataFrame":
    """SpArSe's deployed model run by our engine with its weights dense and sparse, from the
    figures 03-sparse-pruning recorded (a ``results/`` JSON or a run's figures file): zeros,
    weight and flash bytes, emulated cycles, and bit-exactness with TFLite-Micro.
    Taught in 07-comparison."""
    import json

    import pandas as pd

    d = json.loads(Path(figures_json).read_text())
    f = d.get("figures", d)
    need = ["deployed_sparsity", "deployed_dense_weights_bytes", "deployed_sparse_weights_bytes",
            "deployed_dense_flash_bytes", "deployed_sparse_flash_bytes", "deployed_dense_cycles",
            "deployed_sparse_cycles", "deployed_sparse_bit_exact"]
    missing = [k for k in need if k not in f]
    if missing:
        raise ValueError(f"{figures_json}: not figures of 03-sparse-pruning with its sparse engine "
                         f"part (missing {missing})")
    rows = {"weights in the generated C [B]": ("deployed_dense_weights_bytes", "deployed_sparse_weights_bytes"),
            "flash of the linked image [B]": ("deployed_dense_flash_bytes", "deployed_sparse_flash_bytes"),
            "emulated cycles (one inference)": ("deployed_dense_cycles", "deployed_sparse_cycles")}
    t = pd.DataFrame({"dense weights": [f[a] for a, _ in rows.values()],
                      "sparse weights": [f[b] for _, b in rows.values()]}, index=list(rows))
    t["sparse / dense"] = t["sparse weights"] / t["dense weights"]
    t.attrs["summary"] = (f"03's deployed model: {100 * f['deployed_sparsity']:.1f} % of its int8 weights zero; "
                          f"sparse build bit-exact with TFLite-Micro: {f['deployed_sparse_bit_exact']}")
    return t


def other_task_methods(sources: dict, task: str) -> dict:
    """``{notebook: folder}`` of the methods whose recorded task differs from ``task`` and
    whose notebook can be run on it (it has a ``TASK`` parameter), e.g. 04 on keyword
    spotting when the comparison is on MNIST. Taught in 07-comparison."""

    out = {}
    for nb, folder in sources.items():
        h = load_handoffs(folder).get(nb)
        if h is None or h.dataset.lower() == task.lower():
            continue
        paths = [p for p in runner.notebooks() if p.stem == nb]
        if paths and "TASK" in runner.notebook_parameters(paths[0]):
            out[nb] = Path(folder)
    return out


def missing_methods(sources: dict) -> list[str]:
    """Notebooks of :data:`METHODS` without a saved model in their source run folder.
    Taught in 07-comparison.
    """

    return [nb for nb in METHODS if nb not in sources or nb not in load_models(sources[nb])]


def collect(sources, data, target, *, n_test: int | None = None, emulate: bool = True,
            progress: bool = True) -> list[dict]:
    """One row per saved model: the method, its recorded search cost and our measurements.

    ``sources``: a run folder, or ``{notebook: run folder}`` from :func:`resolve_run`.
    Taught in 07-comparison.
    """


    if not isinstance(sources, dict):
        sources = {nb: Path(sources) for nb in METHODS}
    handoffs, models = {}, {}
    for nb, folder in sources.items():
        models[nb] = load_models(folder).get(nb, {})
        if models[nb]:
            h = load_handoffs(folder).get(nb)
            if h is None:
                raise ValueError(f"{nb} saved models in {folder} but no hand-off record: re-run {nb} "
                                 "(helpers.record(..., handoff=HandOff(...)))")
            handoffs[nb] = h
    datasets = {data.name: data}
    rows = []
    items = [(nb, label, b) for nb in METHODS for label, b in sorted(models.get(nb, {}).items())]
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="measuring", leave=False)
    for nb, label, tfl in items:
        method, paper = METHODS[nb]
        h = handoffs[nb]
        row = {"method": method + (f" ({label.upper()})" if label != "best" else ""), "reproduces": paper,
               "notebook": nb, "run": Path(sources[nb]).name, "dataset": h.dataset,
               "trials": h.trials, "search_cpu_minutes": h.search_cpu_minutes,
               "hypervolume": h.hypervolume}
        name = h.dataset.lower()
        if name not in datasets:  # a model of another task is scored on its own test set
            datasets[name] = data_mod.load(name)
        row.update(measure_deployed(tfl, datasets[name], target, n_test=n_test,
                                    emulate=emulate).to_dict())
        rows.append(row)
    return rows


#: Searches recorded by the notebooks without a deployed model of their own: (notebook, label,
#: what it is, figure keys for trials, CPU-minutes, hypervolume, best proxy error).
SEARCH_ONLY = [("02-aging-evolution", "Random search", "baseline of μNAS at the same budget and bounds",
                "trials_random", "search_cpu_minutes_random", "hypervolume_random", "best_proxy_error_random")]


def search_costs(sources: dict) -> "pd.DataFrame":
    """Search cost of every method (trials, CPU-minutes, hypervolume), random search included.

    Read from the recorded figures of each method's run folder (``sources`` as from
    :func:`resolve_run`). Hypervolumes compare only within one notebook (same
    objectives and bounds): aging evolution vs random search in 02, BO vs aging
    evolution in 03. Taught in 07-comparison.
    """
    import pandas as pd


    rows = []
    for nb, folder in sources.items():
        fig = load_figures(folder).get(nb, {})
        if not fig:
            continue
        h = load_handoffs(folder).get(nb)
        if nb in METHODS and h is not None and h.trials:
            rows.append({"method": METHODS[nb][0], "notebook": nb, "trials": h.trials,
                         "search_cpu_minutes": h.search_cpu_minutes, "hypervolume": h.hypervolume})
        for snb, label, what, k_tr, k_cpu, k_hv, k_err in SEARCH_ONLY:
            if snb == nb and fig.get(k_tr):
                rows.append({"method": f"{label} ({what})", "notebook": nb, "trials": fig.get(k_tr),
                             "search_cpu_minutes": fig.get(k_cpu), "hypervolume": fig.get(k_hv),
                             "best_proxy_error": fig.get(k_err)})
    df = pd.DataFrame(rows, columns=["method", "notebook", "trials", "search_cpu_minutes", "hypervolume",
                                     "best_proxy_error"])
    df["trials"] = df["trials"].astype("Int64")
    recorded = df[["trials", "search_cpu_minutes", "hypervolume"]].notna().any(axis=1)
    return df[recorded].reset_index(drop=True)       # e.g. 06 deploys a reference model, no search


def comparison(rows: list[dict], dataset: str):
    """The comparison table (DataFrame): rows on ``dataset`` first; others flagged, not mixed in.
    Taught in 07-comparison.
    """
    import pandas as pd

    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["same_task"] = df["dataset"].fillna(dataset).astype(str).str.lower() == dataset.lower()
    cols = ["method", "reproduces", "dataset", "same_task", "test_accuracy_int8", "tflm_arena_head_bytes",
            "peak_sram_tflm_estimate_bytes", "peak_sram_inplace_bytes", "tflm_arena_total_bytes", "flash_bytes",
            "macs", "emulated_latency_ms", "emulated_sram_bytes", "fits_target", "search_cpu_minutes", "trials",
            "hypervolume"]
    cols = [c for c in cols if c in df.columns]
    return df.sort_values(["same_task"], ascending=False, kind="stable")[cols].reset_index(drop=True)


def slug(method: str) -> str:
    """A figure-name prefix for a method label ("Aging evolution" -> "aging_evolution").
    Taught in 07-comparison.
    """
    import re

    return re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")


def _has_models(path: Path) -> bool:
    return path.is_dir() and any(path.glob("[0-9][0-9]-*.*.tflite"))


def resolve_run(run_dir: str | Path | None, here: Path, runs: Path | None = None) -> dict[str, Path]:
    """Where each method's saved model comes from: ``{notebook: run folder}``.

    ``run_dir`` given (it must exist): that folder for every method. Else ``here`` (this
    run) if it holds saved models. Else, per method, the latest run under ``runs/`` that
    saved that notebook's model (e.g. the runs ``python -m helpers.runner publish`` keeps).
    Empty when no run has any model. Taught in 07-comparison.
    """

    if run_dir:
        path = Path(run_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"RUN_DIR={str(run_dir)!r} is not a folder; give a run folder under runs/ "
                                    "or leave it empty for the latest runs")
        return {nb: path for nb in METHODS}
    if _has_models(Path(here)):
        return {nb: Path(here) for nb in METHODS}
    runs = Path(runs) if runs else runner.RUNS
    found: dict[str, Path] = {}
    for cand in sorted((p for p in runs.glob("*") if p.is_dir()), reverse=True):
        for nb in METHODS:
            if nb not in found and any(cand.glob(f"{nb}.*.tflite")):
                found[nb] = cand
    return found


#: μNAS's MNIST bounds (published, Liberis et al. 2020): error, peak memory, model size, MACs.
MUNAS_MNIST_BOUNDS = {"error": 0.035, "peak_memory_bytes": 2500, "model_bytes": 4500, "macs": 30_000_000}


def discussion(table, task: str) -> list[str]:
    """Short, number-backed statements comparing our measurements with the papers'.
    Taught in 07-comparison.
    """
    lines = []
    if table is None or len(table) == 0:
        return ["no models were measured in this run, so there is nothing to compare"]
    same = table[table["same_task"]]
    if len(same):
        best = same.sort_values("test_accuracy_int8", ascending=False).iloc[0]
        lines.append(f"on {task}, the most accurate model came from {best['method']}: "
                     f"{100 * best['test_accuracy_int8']:.2f}% int8 in TFLite-Micro at "
                     f"{best['tflm_arena_head_bytes']:,} B arena head and {best['flash_bytes']:,} B flash")
        small = same.sort_values("tflm_arena_head_bytes").iloc[0]
        lines.append(f"the smallest activation footprint came from {small['method']}: "
                     f"{small['tflm_arena_head_bytes']:,} B arena head at {100 * small['test_accuracy_int8']:.2f}%")
    if task.lower() == "mnist":
        b = MUNAS_MNIST_BOUNDS
        for _, r in same.iterrows():
            ok_acc = r["test_accuracy_int8"] >= 1 - b["error"]
            ok_mem = r["peak_sram_inplace_bytes"] <= b["peak_memory_bytes"]
            lines.append(f"{r['method']} vs μNAS's published MNIST bounds: accuracy {'meets' if ok_acc else 'misses'} "
                         f"≥ {100 * (1 - b['error']):.1f}%, peak SRAM ({r['peak_sram_inplace_bytes']:,} B, inplace plan, "
                         f"input included) {'meets' if ok_mem else 'misses'} ≤ {b['peak_memory_bytes']:,} B")
        lines.append("SpArSe published 98.64% under 2 KB RAM and 2.8 KB flash on MNIST (second-hand); "
                     "our budgets are CPU-minutes, theirs GPU-days, so our accuracies are expected to be lower")
    if "tflm_arena_total_bytes" in table and "peak_sram_inplace_bytes" in table:
        ratio = (table["tflm_arena_total_bytes"] / table["peak_sram_inplace_bytes"]).median()
        head = (table["tflm_arena_head_bytes"] / table["peak_sram_inplace_bytes"]).median()
        lines.append(f"engine: the TFLM arena (head + 64-bit host tail) is a median {ratio:.2f}x our in-place plan, "
                     f"the activation plan alone {head:.2f}x; TinyEngine published 3.4x lower peak memory than TFLM "
                     "(MCUNet, Lin et al. 2020): most of such a factor is the interpreter's persistent data, "
                     "not the activation plan")
    if "search_cpu_minutes" in table and table["search_cpu_minutes"].notna().any():
        c = table.dropna(subset=["search_cpu_minutes"])
        lines.append("search cost here: " + ", ".join(f"{r['method']} {r['search_cpu_minutes']:.1f} CPU-min"
                                                       for _, r in c.iterrows())
                     + "; published: μNAS about 23 GPU-days")
    return lines

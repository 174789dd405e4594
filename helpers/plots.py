"""Plots shared by the notebooks: samples, budgets, CDFs, Pareto fronts.

Taught in 00-overview (samples, budgets); later notebooks add their plots here.
Every function draws into a given ``ax`` (or a new figure) and returns the axes.

May import every layer below (it draws results of :mod:`helpers.methods`); matplotlib lazily.
"""
from __future__ import annotations

import numpy as np

from helpers.methods import micronets_latency

__all__ = ["sample_grid", "budget_bars", "cdf", "pareto", "search_scatter", "hypervolume_curves",
           "space_cdfs", "choice_map", "accuracy_strips", "comparison_pareto", "memory_bars",
           "live_memory_timeline", "op_cost_bars", "engine_comparison", "latency_vs_ops",
           "dnas_history", "dnas_probs", "sparsity_curve", "latency_residuals"]


def _axes(ax, figsize=(6, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _front_2d(x, y):
    """The 2-D Pareto staircase of points (x, y), both minimised, in order of x."""
    fx, fy, best = [], [], np.inf
    for i in np.lexsort((y, x)):
        if y[i] < best:
            best = y[i]
            fx.append(x[i])
            fy.append(y[i])
    return fx, fy


def sample_grid(data, per_class: int = 1, max_classes: int = 10, ax=None, title: str | None = None):
    """One row of sample images per dataset: ``per_class`` examples of each class.
    Taught in 00-overview.
    """
    ax = _axes(ax, (max_classes * 0.9, per_class * 1.0 + 0.4))
    x, y = data.x_train, data.y_train
    classes = list(range(min(data.num_classes, max_classes)))
    h, w = x.shape[1:3]
    canvas = np.zeros((per_class * (h + 2), len(classes) * (w + 2)), np.float32)
    for j, c in enumerate(classes):
        idx = np.flatnonzero(y == c)[:per_class]
        for i, k in enumerate(idx):
            img = x[k]
            img = img.mean(axis=-1) if img.ndim == 3 else img
            canvas[i * (h + 2):i * (h + 2) + h, j * (w + 2):j * (w + 2) + w] = img
    ax.imshow(canvas, cmap="gray_r", interpolation="nearest", vmin=0, vmax=1)
    ax.set_xticks([(w + 2) * j + w / 2 for j in range(len(classes))])
    ax.set_xticklabels([str(data.class_names[c])[:8] for c in classes], fontsize=7, rotation=30)
    ax.set_yticks([])
    ax.set_title(title or f"{data.name}: {data.input_shape}")
    return ax


def budget_bars(targets, sram_bytes: float, flash_bytes: float, ax=None, title: str | None = None):
    """Each target's SRAM and flash budget (bars) beside one model's needs (lines), log scale.
    Taught in 00-overview.
    """
    ax = _axes(ax, (8, 3.6))
    names = [t.name for t in targets]
    xs = np.arange(len(names))
    ax.bar(xs - 0.2, [t.sram_budget / 1024 for t in targets], 0.4, label="SRAM budget", color="#4C72B0")
    ax.bar(xs + 0.2, [t.flash_budget / 1024 for t in targets], 0.4, label="flash budget", color="#DD8452")
    ax.axhline(sram_bytes / 1024, color="#4C72B0", ls="--", label=f"model peak SRAM {sram_bytes / 1024:.1f} KB")
    ax.axhline(flash_bytes / 1024, color="#DD8452", ls="--", label=f"model flash {flash_bytes / 1024:.1f} KB")
    for x, t in zip(xs, targets):
        ok = t.fits(sram_bytes, flash_bytes)
        ax.text(x, max(t.sram_budget, t.flash_budget) / 1024 * 1.15, "fits" if ok else "too big",
                ha="center", fontsize=8, color="green" if ok else "red")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.set_ylabel("KB (log)")
    ax.set_title(title or "what fits where")
    ax.legend(fontsize=7, loc="lower right")
    return ax


def cdf(values, ax=None, label: str | None = None, **kw):
    """Empirical CDF of ``values`` (e.g. the FLOPs of sampled models). Taught in 00-overview."""
    ax = _axes(ax)
    v = np.sort(np.asarray(values, dtype=float))
    if len(v):
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=label, **kw)
    ax.set_ylabel("cumulative probability")
    return ax


def pareto(x, y, ax=None, label: str | None = None, front: bool = True, **kw):
    """Scatter of (x, y) to minimise, with its Pareto front drawn as a step line.
    Taught in 03-sparse-pruning.
    """
    ax = _axes(ax)
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.scatter(x, y, s=kw.pop("s", 14), alpha=kw.pop("alpha", 0.6), label=label, **kw)
    if front and len(x):
        fx, fy = _front_2d(x, y)
        ax.step(fx, fy, where="post", color=ax.collections[-1].get_facecolor()[0], lw=1.2)
    return ax


def search_scatter(trials, x: str, y: str, ax=None, color: str = "order", bounds: dict | None = None,
                   title: str | None = None, cmap: str = "viridis"):
    """Completed trials of a search (``SearchResult.trials``) as a scatter of ``y`` against ``x``,
    coloured by ``color`` (default: completion order, i.e. the round), with the bounds drawn as
    dashed lines and the feasible Pareto front (both minimised) as a step line.

    Taught in 02-aging-evolution.
    """
    ax = _axes(ax)
    t = trials[trials.status == "COMPLETED"]
    xs, ys = t[x].to_numpy(float), t[y].to_numpy(float)
    sc = ax.scatter(xs, ys, c=t[color].to_numpy(float), s=16, cmap=cmap, alpha=0.8)
    ax.figure.colorbar(sc, ax=ax, label=color)
    feas = t[t.feasible.astype(bool)]
    if len(feas):
        px, py = _front_2d(feas[x].to_numpy(float), feas[y].to_numpy(float))
        ax.step(px, py, where="post", color="crimson", lw=1.3, label="feasible Pareto front")
        ax.legend(fontsize=7)
    for name, v in (bounds or {}).items():
        if v is None:
            continue
        if name == x:
            ax.axvline(v, color="gray", ls="--", lw=0.8)
        if name == y:
            ax.axhline(v, color="gray", ls="--", lw=0.8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title)
    return ax


def hypervolume_curves(histories: dict, ax=None, title: str | None = None):
    """Hypervolume after each trained candidate, one line per search (``{name: hv_history}``).

    Taught in 02-aging-evolution.
    """
    ax = _axes(ax)
    for name, hv in histories.items():
        hv = np.asarray(hv, float)
        ax.plot(np.arange(1, len(hv) + 1), hv, label=f"{name} (final {hv[-1] if len(hv) else 0:.4f})")
    ax.set_xlabel("trained candidates (rounds)")
    ax.set_ylabel("hypervolume (bound-normalised)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


# ---------------------------------------------------------------- 01-search-space-cdf (TinyNAS)

def space_cdfs(ranking, top: int = 5, bottom: int = 1, ax=None, title: str | None = None):
    """FLOPs CDFs of the fitting models of the ``top`` ranked spaces (and the ``bottom``
    eligible ones, dashed), as in MCUNet's Figure 3. ``ranking``: a
    :class:`helpers.methods.tinynas.SpaceRanking`. Taught in 01-search-space-cdf."""
    ax = _axes(ax, (7, 4.2))
    rows = ranking.table()
    elig = rows[rows["eligible"]] if "eligible" in rows else rows
    picks = [(r, "-") for _, r in elig.head(top).iterrows()]
    if bottom:
        picks += [(r, "--") for _, r in elig.tail(bottom).iterrows() if r["rank"] > top]
    for r, ls in picks:
        key = (float(r["width"]), int(r["resolution"]))
        f = np.asarray(ranking.flops[key], float) / 1e6
        cdf(f, ax=ax, ls=ls, label=f"#{int(r['rank'])} w{key[0]}-r{key[1]} "
                                   f"(mean {f.mean():.2f}M, {100 * r['fit_rate']:.0f}% fit)")
    ax.set_xlabel("MFLOPs (MACs) of models that fit")
    ax.set_title(title or "FLOPs distribution of fitting models per space")
    ax.legend(fontsize=7)
    return ax


def choice_map(sweep, ax=None, title: str | None = None):
    """The space TinyNAS picks for each (SRAM, flash) budget pair (MCUNet Fig. 12 style):
    a grid of cells labelled 'w<width> r<resolution>', coloured by the mean MFLOPs of the
    chosen space. ``sweep``: :func:`helpers.methods.tinynas.choice_sweep` output.
    Taught in 01-search-space-cdf."""
    ax = _axes(ax, (7, 4.2))
    srams = sorted(sweep["sram_budget"].unique())
    flashes = sorted(sweep["flash_budget"].unique())
    grid = np.full((len(srams), len(flashes)), np.nan)
    for _, r in sweep.iterrows():
        i, j = srams.index(r["sram_budget"]), flashes.index(r["flash_budget"])
        grid[i, j] = r["best_mean_mflops"]
        lab = "none" if r["best_resolution"] < 0 else f"w{r['best_width']:g}\nr{int(r['best_resolution'])}"
        ax.text(j, i, lab, ha="center", va="center", fontsize=7)
    im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto", alpha=0.8)
    ax.figure.colorbar(im, ax=ax, label="mean MFLOPs of chosen space")
    ax.set_xticks(range(len(flashes)))
    ax.set_xticklabels([f"{f / 1024:.0f}" for f in flashes], fontsize=8)
    ax.set_yticks(range(len(srams)))
    ax.set_yticklabels([f"{s / 1024:.0f}" for s in srams], fontsize=8)
    ax.set_xlabel("flash budget (KB)")
    ax.set_ylabel("SRAM budget (KB)")
    ax.set_title(title or "chosen space vs memory budget")
    return ax


def accuracy_strips(groups: dict, ax=None, title: str | None = None, ylabel: str = "test accuracy"):
    """One column of points (and its mean) per group: ``{label: accuracies}``.
    Taught in 01-search-space-cdf and 05-once-for-all."""
    ax = _axes(ax, (6, 3.6))
    for i, (lab, vals) in enumerate(groups.items()):
        v = np.asarray(vals, float)
        ax.scatter(np.full(len(v), i) + np.linspace(-0.08, 0.08, len(v)), v, s=22, alpha=0.8)
        if len(v):
            ax.hlines(v.mean(), i - 0.25, i + 0.25, color="k", lw=1.5)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "")
    return ax


def comparison_pareto(table, sram: str = "tflm_arena_head_bytes", acc: str = "test_accuracy_int8",
                      flash: str = "flash_bytes", ax=None, title: str | None = None):
    """Accuracy vs peak SRAM, one labelled point per method, marker area ∝ flash (07-comparison).
    Taught in 07-comparison.
    """
    ax = _axes(ax, (7, 4.2))
    fl = np.asarray(table[flash], float)
    size = 40 + 400 * fl / max(fl.max(), 1)
    same = table["same_task"].to_numpy() if "same_task" in table else np.ones(len(table), bool)
    for i, row in enumerate(table.to_dict("records")):
        ax.scatter(row[sram], 100 * row[acc], s=size[i], alpha=0.6, marker="o" if same[i] else "^",
                   label=f"{row['method']} ({row[flash] / 1024:.1f} KB flash)")
        ax.annotate(row["method"], (row[sram], 100 * row[acc]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"peak SRAM, {sram} (B, log)")
    ax.set_ylabel("int8 test accuracy in TFLite-Micro (%)")
    ax.set_title(title or "best model per method")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="marker area ∝ flash", title_fontsize=7)
    return ax


# ---------------------------------------------------------------- 06-deployment (engine, emulator)

def memory_bars(items: dict, ax=None, title: str | None = None, reference: str | None = None,
                colors: dict | None = None):
    """Horizontal bars of memory figures ``{label: bytes}`` in KB, each labelled with its
    bytes and, if ``reference`` names one of the labels, its ratio to that bar (``ref / x``).
    Taught in 06-deployment (plans vs the measured TFLite-Micro arena)."""
    labels = list(items)
    ax = _axes(ax, (7, 0.45 * len(labels) + 1.2))
    vals = np.asarray([float(items[k]) for k in labels])
    ref = float(items[reference]) if reference in items else None
    cols = [(colors or {}).get(k, "#4C72B0") for k in labels]
    ys = np.arange(len(labels))[::-1]
    ax.barh(ys, vals / 1024, color=cols)
    for y, v, k in zip(ys, vals, labels):
        txt = f" {v:,.0f} B"
        if ref and k != reference and v > 0:
            txt += f"  ({ref / v:.2f}x less)" if v <= ref else f"  ({v / ref:.2f}x more)"
        ax.text(v / 1024, y, txt, va="center", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("KB")
    ax.set_xlim(0, vals.max() / 1024 * 1.45 if len(vals) else 1)
    ax.set_title(title or "memory")
    return ax


def live_memory_timeline(plans: dict, ax=None, title: str | None = None):
    """Bytes live at each execution step, one step line per memory plan
    (``{label: helpers.resources.MemoryPlan}``), with each plan's peak dashed.
    Steps follow each plan's own execution order. Taught in 06-deployment."""
    ax = _axes(ax, (8, 3.6))
    for i, (label, p) in enumerate(plans.items()):
        live = np.asarray(p.live_bytes, float) / 1024
        line = ax.step(np.arange(len(live)), live, where="mid", lw=max(0.8, 3.0 - 0.9 * i),
                       label=f"{label} (peak {p.peak_sram_bytes:,} B)")[0]
        ax.axhline(p.peak_sram_bytes / 1024, color=line.get_color(), ls="--", lw=0.7)
    ax.set_xlabel("execution step (operator)")
    ax.set_ylabel("live activation KB")
    ax.set_title(title or "live memory per operator")
    ax.legend(fontsize=7)
    return ax


def op_cost_bars(tables: dict, ax=None, value: str = "instructions", title: str | None = None,
                 log: bool = False):
    """Per-operator bars of ``value`` (a column of :meth:`helpers.engine.emulator.EmulationResult.table`,
    e.g. "instructions" or "cycles"), grouped by variant ``{label: table}``; x ticks are
    ``position:kind`` of the first table. Taught in 06-deployment."""
    labels = list(tables)
    first = tables[labels[0]]
    ax = _axes(ax, (max(6.0, 0.32 * len(first) + 2), 3.6))
    xs = np.arange(len(first))
    wbar = 0.8 / max(len(labels), 1)
    for i, lab in enumerate(labels):
        t = tables[lab]
        ax.bar(xs - 0.4 + wbar * (i + 0.5), t[value].to_numpy(float), wbar,
               label=f"{lab} (total {t[value].sum():,.0f})")
    ax.set_xticks(xs)
    short = {"DEPTHWISE_CONV_2D": "DW", "CONV_2D": "CONV", "FULLY_CONNECTED": "FC"}
    ax.set_xticklabels([f"{p}:{short.get(str(k), k)}" for p, k in zip(first["pos"], first["kind"])],
                       rotation=70, fontsize=7)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(value)
    ax.set_title(title or f"{value} per operator")
    ax.legend(fontsize=7)
    return ax


def engine_comparison(measured: dict, published: dict, ax=None, title: str | None = None):
    """Our engine vs TFLite-Micro (measured here) beside published TinyEngine figures.

    ``measured`` / ``published``: ``{label: {"memory_kb": x, "latency_ms": y}}`` (either
    figure may be None: its row stays, marked n/a). Two panels sharing the row labels: peak
    memory and latency; measured bars solid, published bars hatched and labelled as such.
    Returns the two axes. Taught in 06-deployment."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(12, 0.42 * (len(measured) + len(published)) + 1.4),
                             sharey=True)
    rows = [(lab, v, None) for lab, v in measured.items()] + \
           [(lab, v, "//") for lab, v in published.items()]
    ys = np.arange(len(rows))[::-1]
    for a, key, unit in ((ax[0], "memory_kb", "peak memory KB"), (ax[1], "latency_ms", "latency ms")):
        vals = [v.get(key) for _, v, _ in rows]
        top = max([float(v) for v in vals if v is not None] or [1.0])
        for y, v, (_, _, hatch) in zip(ys, vals, rows):
            if v is None:
                a.text(0, y, " n/a", va="center", fontsize=7, color="gray")
                continue
            a.barh(y, float(v), color="#4C72B0" if hatch is None else "#C9C9C9", edgecolor="k",
                   lw=0.4, hatch=hatch)
            a.text(float(v), y, f" {float(v):,.1f}", va="center", fontsize=7)
        a.set_xlabel(unit)
        a.set_xlim(0, top * 1.25)
    ax[0].set_yticks(ys)
    ax[0].set_yticklabels([lab for lab, _, _ in rows], fontsize=7)
    ax[0].set_title(title or "engine vs interpreter (hatched: published)")
    return ax


# ---------------------------------------------------------------- 04-micronets-dnas
def latency_vs_ops(study, fit=None, axes=None, title: str | None = None):
    """MicroNets Fig. 2 style: emulated latency against op count, one panel per target,
    one colour per backbone, with the fitted line ``latency = a * ops + b`` and its r²
    in the legend. ``study``: :class:`helpers.methods.micronets_latency.LatencyStudy` (or its table);
    ``fit``: :func:`helpers.methods.micronets_latency.fit_latency` of it. Taught in 04-micronets-dnas."""
    import matplotlib.pyplot as plt
    df = study.table() if hasattr(study, "table") else study
    fit = fit or micronets_latency.fit_latency(df)
    targets = list(dict.fromkeys(df["target"]))
    if axes is None:
        _, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 3.8), squeeze=False)
        axes = axes[0]
    for ax, t in zip(np.atleast_1d(axes), targets):
        for bb, g in df[df["target"] == t].groupby("backbone"):
            x = g["ops"].to_numpy(float) / 1e6
            r = fit.get(bb, t)
            pts = ax.scatter(x, g["latency_ms"], s=22, alpha=0.8)
            xs = np.linspace(0, x.max() * 1.05, 20)
            ax.plot(xs, r["a_ms_per_mop"] * xs + r["b_ms"], color=pts.get_facecolor()[0],
                    label=f"{bb}: r²={r['r2']:.3f}, {r['mops_per_s']:.0f} Mops/s")
        ax.set_xlabel("Mops (2 x MACs)")
        ax.set_ylabel("emulated latency (ms)")
        ax.set_title(title or f"{t} (emulated)")
        ax.legend(fontsize=7)
    return axes


def dnas_history(results: dict, ax=None, title: str | None = None):
    """Expected resources over the DNAS epochs, each divided by its target (1 = the
    target), one colour per searched model, one line style per resource.
    ``results``: ``{label: helpers.methods.micronets.DNASResult}``. Taught in 04-micronets-dnas."""
    ax = _axes(ax, (7, 4))
    styles = {"model_size": ":", "working_memory": "-", "ops": "--"}
    for i, (lab, r) in enumerate(results.items()):
        h = r.history_table()
        for k, ls in styles.items():
            if k in r.targets:
                ax.plot(h["epoch"], h[f"E_{k}"] / r.targets[k], ls=ls, color=f"C{i}",
                        label=f"{lab} {k}")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("search epoch")
    ax.set_ylabel("expected resource / target")
    ax.set_title(title or "DNAS: expected resources against their targets")
    ax.legend(fontsize=7, ncol=2)
    return ax


def dnas_probs(result, ax=None, title: str | None = None):
    """Heat map of the learned option probabilities of every decision node (rows) with
    the chosen option boxed. ``result``: :class:`helpers.methods.micronets.DNASResult`.
    Taught in 04-micronets-dnas."""
    from matplotlib.patches import Rectangle
    ax = _axes(ax, (6, 2.8))
    nodes = result.space.nodes
    opts = sorted({o for _, os_ in nodes for o in os_})
    grid = np.full((len(nodes), len(opts)), np.nan)
    for i, ((_, os_), p) in enumerate(zip(nodes, result.probs)):
        for o, v in zip(os_, p):
            grid[i, opts.index(o)] = v
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, c in enumerate(result.choices):
        ax.add_patch(Rectangle((opts.index(c) - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=1.5))
    ax.set_xticks(range(len(opts)))
    ax.set_xticklabels(["id" if o == 0 else str(o) for o in opts], fontsize=7)
    ax.set_yticks(range(len(nodes)))
    ax.set_yticklabels([n for n, _ in nodes], fontsize=7)
    ax.set_title(title or f"{result.name}: option probabilities (red = chosen)")
    return ax


# ----------------------------------------------------------------- 06-deployment: patch-based inference

def patch_sram_vs_patches(studies: dict, ax=None, title: str | None = None):
    """Peak SRAM of patch-based inference against the number of patches (``grid**2``) at each
    model's chosen split, hollow where the recompute overhead exceeds the limit, with each
    model's TFLite-Micro arena head as a dashed line. ``studies``: label ->
    :class:`helpers.deploy.patch_study.PatchStudy`. Taught in 06-deployment."""
    ax = _axes(ax, (6, 3.8))
    for i, (label, st) in enumerate(studies.items()):
        color = f"C{i}"
        rows = sorted((r for r in st.choice.candidates if r["split"] == st.split),
                      key=lambda r: r["grid"])
        n = [r["grid"] ** 2 for r in rows]
        ax.plot(n, [r["peak_sram_bytes"] / 1024 for r in rows], "-", color=color, lw=1)
        for r in rows:
            ax.plot(r["grid"] ** 2, r["peak_sram_bytes"] / 1024, "o", color=color,
                    mfc=color if r["feasible"] else "white", ms=5)
        ax.axhline(st.tflm_head / 1024, color=color, ls="--", lw=1)
        ax.annotate(f"{label}: TFLM head", (n[-1], st.tflm_head / 1024), fontsize=7, color=color,
                    ha="right", va="bottom")
        ax.plot([st.grid ** 2], [st.patch / 1024], "*", color=color, ms=12,
                label=f"{label}: chosen {st.grid}x{st.grid} (+{100 * st.overhead:.0f} % MACs)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("patches (grid x grid)")
    ax.set_ylabel("peak SRAM (KiB)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title(title or "peak SRAM vs patches (hollow: over the MAC limit)")
    return ax


__all__ += ["patch_sram_vs_patches"]


def sparsity_curve(curve, ax=None, title: str | None = None):
    """Validation accuracy against non-zero kernel weights for SpVD and magnitude pruning at
    equal sparsity, the dense model as a dashed line and SpVD's own log-alpha threshold as a
    star. ``curve``: :class:`helpers.spvd.SparsityCurve`. Taught in 03-sparse-pruning."""
    ax = _axes(ax, (6, 4))
    t = curve.table()
    for i, (meth, lab) in enumerate((("spvd", "SpVD (ranked by log alpha)"),
                                     ("magnitude", "magnitude pruning (fine-tuned per point)"))):
        r = t[t.method == meth].sort_values("nonzero")
        ax.plot(r.nonzero, r.val_accuracy, "o-", color=f"C{i}", label=lab)
    own = t[t.method.str.startswith("spvd (")]
    ax.plot(own.nonzero, own.val_accuracy, "*", ms=14, color="C0", label="SpVD, log alpha >= 3")
    ax.axhline(curve.dense_val_accuracy, color="k", ls="--", lw=0.8,
               label=f"dense ({curve.weights:,} weights)")
    ax.set_xlabel("non-zero kernel weights")
    ax.set_ylabel("validation accuracy (float)")
    ax.set_title(title or "Accuracy vs non-zero weights at equal sparsity")
    ax.legend(fontsize=8)
    return ax
def latency_residuals(study, fit=None, axes=None, title: str | None = None):
    """Residuals of the ``latency = a * ops + b`` fit in % of the emulated latency, against
    the op count: one panel per target, one colour per backbone, the ±1 s.d. band of each
    backbone dashed. What an ops target costs in latency error. Taught in 04-micronets-dnas."""
    import matplotlib.pyplot as plt
    df = study.table() if hasattr(study, "table") else study
    fit = fit or micronets_latency.fit_latency(df)
    targets = list(dict.fromkeys(df["target"]))
    if axes is None:
        _, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 3.4), squeeze=False)
        axes = axes[0]
    for ax, t in zip(np.atleast_1d(axes), targets):
        for bb, g in df[df["target"] == t].groupby("backbone"):
            x = g["ops"].to_numpy(float) / 1e6
            y = g["latency_ms"].to_numpy(float)
            r = fit.get(bb, t)
            res = 100 * (y - (r["a_ms_per_mop"] * x + r["b_ms"])) / y
            pts = ax.scatter(x, res, s=22, alpha=0.8, label=f"{bb} (n={len(g)}, s.d. {r['resid_sd_pct']:.1f} %)")
            for s in (-1, 1):
                ax.axhline(s * r["resid_sd_pct"], ls="--", lw=0.8, color=pts.get_facecolor()[0])
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xlabel("Mops (2 x MACs)")
        ax.set_ylabel("residual (% of emulated latency)")
        ax.set_title(title or f"{t}: residuals of the ops fit")
        ax.legend(fontsize=7)
    return axes


def deploy_cdfs(deploy_ranking, axes=None, title: str | None = None):
    """Co-design with patch-based inference: left, the FLOPs CDF of the chosen space under each
    deployment (and, dashed, the layer-by-layer choice seen with patches); right, the fraction
    of samples that fit per resolution, one line per deployment. ``deploy_ranking``: a
    :class:`helpers.methods.codesign.DeployRanking`. Taught in 01-search-space-cdf."""
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    rks = deploy_ranking.rankings
    for d, rk in rks.items():
        f = np.asarray(rk.flops[rk.best], float) / 1e6
        cdf(f, ax=axes[0], label=f"{d}: w{rk.best[0]}-r{rk.best[1]} (mean {f.mean():.2f}M)")
        t = rk.table().groupby("resolution")[["n_fit", "n"]].sum()
        axes[1].plot(t.index, t["n_fit"] / t["n"], marker="o", label=d)
    if "layer" in rks and "patch" in rks and rks["layer"].best != rks["patch"].best:
        k = rks["layer"].best
        f = np.asarray(rks["patch"].flops[k], float) / 1e6
        cdf(f, ax=axes[0], ls="--", label=f"patch, layer's choice w{k[0]}-r{k[1]}")
    axes[0].set_xlabel("MFLOPs (MACs) of models that fit")
    axes[0].set_title(title or "chosen space per deployment")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("resolution")
    axes[1].set_ylabel("fraction of samples that fit")
    axes[1].set_title("fit rate per resolution (all widths)")
    axes[1].legend(fontsize=7)
    return axes


def anytime_curves(table, task: str, ax=None, title: str | None = None, points=None):
    """Best-so-far accuracy vs CPU-seconds per method (``protocol.anytime_table``): median
    over seeds, shaded min-max; ``points``: {method: [(cpu_s, accuracy), ...]} drawn as
    markers (one-shot methods such as DNAS). Taught in 07-comparison."""
    ax = _axes(ax, (7, 4))
    t = table[table.task == task]
    for m, g in t.groupby("method", sort=False):
        if g["median"].notna().sum() < 2:
            continue
        line, = ax.plot(g.cpu_s, g["median"], label=f"{m} (n = {int(g.n.max())})")
        ax.fill_between(g.cpu_s, g["min"], g["max"], color=line.get_color(), alpha=0.2)
    for m, pts in (points or {}).items():
        if pts:
            x, y = zip(*pts)
            ax.scatter(x, y, marker="D", s=30, label=f"{m} (one result per seed)")
    ax.set_xlabel("search CPU-seconds")
    ax.set_ylabel("best accuracy so far (method's own estimate)")
    ax.set_title(title or f"{task}: anytime performance")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def deployed_fronts(table, task: str, sram_limit: float, flash_limit: float, axes=None,
                    title: str | None = None):
    """Deployed models of every method and seed: int8 test accuracy vs TFLM arena head and vs
    flash, each method's front over all its seeds drawn, the limits dashed; infeasible models
    hollow. Taught in 07-comparison."""
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4))
    t = table[table.task == task]
    for ax, col, lim, lab in ((axes[0], "tflm_arena_head_bytes", sram_limit, "TFLM arena head (B)"),
                              (axes[1], "flash_bytes", flash_limit, ".tflite flash (B)")):
        for m, g in t.groupby("method", sort=False):
            ok = g.feasible.astype(bool)
            sc = ax.scatter(g[col][ok], g.test_accuracy_int8[ok], s=25, label=m)
            ax.scatter(g[col][~ok], g.test_accuracy_int8[~ok], s=25, facecolors="none",
                       edgecolors=sc.get_facecolor())
            if ok.any():
                fx, fy = _front_2d(g[col][ok].to_numpy(float), -g.test_accuracy_int8[ok].to_numpy(float))
                ax.step(fx, -np.asarray(fy), where="post", color=sc.get_facecolor()[0], alpha=0.6)
        ax.axvline(lim, ls="--", color="grey", lw=1)
        ax.set_xlabel(lab)
        ax.set_ylabel("int8 test accuracy (TFLite-Micro)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[0].set_title(title or f"{task}: deployed models, all seeds (hollow: over a limit)")
    return axes

"""Plots shared by the notebooks: samples, budgets, CDFs, Pareto fronts.

Taught in 00-overview (samples, budgets); later notebooks add their plots here.
Every function draws into a given ``ax`` (or a new figure) and returns the axes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sample_grid", "budget_bars", "cdf", "pareto"]


def _axes(ax, figsize=(6, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def sample_grid(data, per_class: int = 1, max_classes: int = 10, ax=None, title: str | None = None):
    """One row of sample images per dataset: ``per_class`` examples of each class."""
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
    """Each target's SRAM and flash budget (bars) beside one model's needs (lines), log scale."""
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
    """Empirical CDF of ``values`` (e.g. the FLOPs of sampled models)."""
    ax = _axes(ax)
    v = np.sort(np.asarray(values, dtype=float))
    if len(v):
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", label=label, **kw)
    ax.set_ylabel("cumulative probability")
    return ax


def pareto(x, y, ax=None, label: str | None = None, front: bool = True, **kw):
    """Scatter of (x, y) to minimise, with its Pareto front drawn as a step line."""
    ax = _axes(ax)
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.scatter(x, y, s=kw.pop("s", 14), alpha=kw.pop("alpha", 0.6), label=label, **kw)
    if front and len(x):
        order = np.lexsort((y, x))
        fx, fy, best = [], [], np.inf
        for i in order:
            if y[i] < best:
                best = y[i]
                fx.append(x[i])
                fy.append(y[i])
        ax.step(fx, fy, where="post", color=ax.collections[-1].get_facecolor()[0], lw=1.2)
    return ax

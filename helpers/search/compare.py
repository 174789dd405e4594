"""Two searches compared over search seeds: the verdicts of notebooks 02 and 03.

"Search A beats search B" is a claim about two procedures, so its sample is search runs, one
pair per search seed. :func:`compare_by_seed` takes those pairs and returns the two verdicts
the notebooks state (A covers more feasible hypervolume than B; A's best feasible error is
lower than B's), each with a Student-t interval over the seeds of the per-seed difference
(:func:`helpers.stats.runs_ci` with a set statistic), and the per-seed figures.
Taught in 02-aging-evolution; reused by 03-sparse-pruning.
May import: :mod:`helpers.stats`, :mod:`helpers.search.objectives`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import stats
from helpers.search.objectives import hypervolume

__all__ = ["compare_by_seed"]


def _rows(result, columns) -> np.ndarray:
    """The completed trials' ``columns`` in trial-id order (not completion order, which timing sets)."""
    return result.completed.sort_values("trial_id")[list(columns)].to_numpy(float)


def compare_by_seed(runs: dict, bounds: dict, *, error_bound: float, names=("A", "B"), short=None,
                    error_name: str = "error"):
    """Verdicts on "A beats B" from ``runs`` = {search seed: (result A, result B)}.

    ``bounds``: the searches' bounds; the objectives with a bound (not None) span the hypervolume,
    each divided by its bound, reference point 1 (as :attr:`SearchResult.hypervolume`, which is
    checked). A search with no feasible trial has best feasible error ``error_bound``.
    ``names``: the two searches in the claims; ``short``: in the per-seed table's columns.
    Returns ``(verdicts, per_seed)``: ``{"hypervolume_gain", "best_feasible_error_diff"}`` ->
    :class:`helpers.stats.Verdict` (interval ``(nan, nan)`` and undecided with one seed), and a
    DataFrame with one row per seed (each arm's hypervolume and best feasible error, and the two
    differences the intervals are over). Taught in 02-aging-evolution; used by 03-sparse-pruning.
    """
    if not runs:
        raise ValueError("runs is empty: give at least one {seed: (result A, result B)}")
    if any(len(pair) != 2 or None in pair for pair in runs.values()):
        raise ValueError("each run must be a pair (result A, result B) of finished searches")
    a_name, b_name = names
    a_short, b_short = short or names
    hv_names = [k for k, v in bounds.items() if v is not None]
    scale = np.array([bounds[k] for k in hv_names], float)
    hv_of = lambda p: hypervolume(p, np.ones(len(hv_names)))
    pts = {s: tuple(_rows(r, hv_names) / scale for r in pair) for s, pair in runs.items()}
    for s, pair in runs.items():
        for r, p in zip(pair, pts[s]):
            if not np.isclose(hv_of(p), r.hypervolume):
                raise ValueError(f"seed {s}: hypervolume of the trials {hv_of(p):.6f} differs from the "
                                 f"search's own {r.hypervolume:.6f}: were the searches run with these bounds?")

    def best_feasible_error(rows):                              # rows: (error, feasible)
        ok = rows[:, 1] > 0
        return rows[ok, 0].min() if ok.any() else error_bound

    rows = {s: tuple(_rows(r, ["error", "feasible"]) for r in pair) for s, pair in runs.items()}
    verdicts = {
        "hypervolume_gain": stats.verdict(
            stats.runs_ci(list(pts.values()), stat=lambda a, b: hv_of(a) - hv_of(b)),
            claim=f"{a_name} covers more hypervolume than {b_name}"),
        "best_feasible_error_diff": stats.verdict(
            stats.runs_ci(list(rows.values()), stat=lambda a, b: best_feasible_error(a) - best_feasible_error(b)),
            claim=f"{a_name}'s best feasible {error_name} is lower than {b_name}'s", direction="less"),
    }
    per_seed = pd.DataFrame({s: {f"hypervolume {a_short}": hv_of(pts[s][0]), f"hypervolume {b_short}": hv_of(pts[s][1]),
                                 f"best feasible error {a_short}": best_feasible_error(rows[s][0]),
                                 f"best feasible error {b_short}": best_feasible_error(rows[s][1]),
                                 "hypervolume gain": hv_of(pts[s][0]) - hv_of(pts[s][1]),
                                 "best feasible error diff": best_feasible_error(rows[s][0]) - best_feasible_error(rows[s][1])}
                             for s in runs}).T.rename_axis("search seed")
    return verdicts, per_seed

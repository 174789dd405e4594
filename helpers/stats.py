"""Intervals and verdicts: every claim a notebook makes carries its sample size and a 95 % interval.

:func:`bootstrap_ci` (percentile bootstrap of any statistic of one sample, or of several
samples resampled independently), :func:`diff_ci` (difference of a statistic between two
samples, paired or unpaired), :func:`ratio_ci` (their ratio), :func:`r2_ci` (r² of a linear
fit), :func:`runs_ci` (the mean over several training or search runs of a per-run statistic:
a Student-t interval over the runs), :func:`welch_ci` (two arms' means over runs: Welch's t),
:func:`proportion_ci` (a share of yes/no outcomes: Clopper-Pearson), all returning an :class:`Interval`; :func:`verdict` turns an interval into a
:class:`Verdict` that says "held", "did not hold" or "undecided at this budget" — decided only
when the interval excludes the null value, so a verdict does not flip between two runs whose
point estimates differ a little. Everything is seeded (``numpy.random.default_rng(seed)``)
and deterministic for the same data.

A percentile bootstrap over a few samples (4 models, 14 trials) is too narrow rather than too
wide: it cannot see variation the sample does not contain. Seeds are the better sample when
they can be afforded; the notebooks say which one they use.

Layer 0 (the bottom): Imports no other module of the package (NumPy and the standard library only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Interval", "Verdict", "bootstrap_ci", "diff_ci", "ratio_ci", "r2_ci", "runs_ci", "welch_ci", "proportion_ci", "t_quantile", "t_cdf", "verdict", "WORDS", "R2_MIN_PAIRS"]

#: The three verdicts a claim can get.
WORDS = ("held", "did not hold", "undecided at this budget")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``level`` interval [``low``, ``high``].

    ``n`` is the sample size (a tuple, one per sample, for two-sample intervals);
    ``method`` says what was resampled; ``n_boot`` how many resamples gave a finite
    statistic (resamples where the statistic is undefined, e.g. a slope through one
    repeated point, are left out). A sample of one point says nothing about its spread: the
    interval is then (nan, nan), and so is one where most resamples are undefined.
    Taught in 01-search-space-cdf.
    """

    estimate: float
    low: float
    high: float
    n: int | tuple
    level: float = 0.95
    method: str = "percentile bootstrap"
    n_boot: int = 0

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] ({self.level:.0%}, n = {_n_text(self.n)})"


@dataclass(frozen=True)
class Verdict:
    """A claim, its interval and the word: ``word`` is one of :data:`WORDS`.

    ``summary()`` is one line (claim, estimate, [low, high], n, verdict);
    ``to_figures(prefix)`` the flat figures for :func:`helpers.record`
    (``<prefix>``, ``<prefix>_ci_low``, ``<prefix>_ci_high``, ``<prefix>_n`` and, for two
    samples, ``<prefix>_n_a`` / ``<prefix>_n_b``, ``<prefix>_verdict``).
    Taught in 01-search-space-cdf.
    """

    claim: str
    word: str
    estimate: float
    low: float
    high: float
    n: int | tuple
    null: float = 0.0
    direction: str = "greater"
    level: float = 0.95
    method: str = "percentile bootstrap"

    @property
    def held(self) -> bool | None:
        """True (held), False (did not hold) or None (undecided)."""
        return {WORDS[0]: True, WORDS[1]: False}.get(self.word)

    def summary(self) -> str:
        """The verdict in one line. Taught in 01-search-space-cdf."""
        op = ">" if self.direction == "greater" else "<"
        return (f"{self.claim}: {self.estimate:.4g}, {self.level:.0%} interval [{self.low:.4g}, {self.high:.4g}] "
                f"({self.method}, n = {_n_text(self.n)}; claim {op} {self.null:g}) -> {self.word}")

    def to_figures(self, prefix: str) -> dict:
        """Flat ``{name: value}`` figures for :func:`helpers.record`. Taught in 01-search-space-cdf."""
        out = {prefix: _num(self.estimate), f"{prefix}_ci_low": _num(self.low),
               f"{prefix}_ci_high": _num(self.high)}
        if isinstance(self.n, tuple):
            out[f"{prefix}_n"] = int(min(self.n))
            out[f"{prefix}_n_a"], out[f"{prefix}_n_b"] = (int(v) for v in self.n)
        else:
            out[f"{prefix}_n"] = int(self.n)
        out[f"{prefix}_verdict"] = self.word
        return out


def _n_text(n) -> str:
    return " vs ".join(str(int(v)) for v in n) if isinstance(n, tuple) else str(int(n))


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _resample_stats(groups: Sequence[np.ndarray], stat: Callable, n: int, seed: int,
                    paired: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = [len(g) for g in groups]
    out = np.empty(n)
    with np.errstate(all="ignore"):
        for i in range(n):
            if paired:
                idx = rng.integers(sizes[0], size=sizes[0])
                draws = [g[idx] for g in groups]
            else:
                draws = [g[rng.integers(k, size=k)] for g, k in zip(groups, sizes)]
            try:
                out[i] = float(stat(*draws))
            except (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError):
                out[i] = np.nan
    return out


def _interval(estimate, reps, n, level, method) -> Interval:
    finite = reps[np.isfinite(reps)]
    smallest = min(n) if isinstance(n, tuple) else n
    if smallest < 2 or len(finite) < max(2, len(reps) // 2):   # one sample point, or mostly undefined
        low = high = float("nan")
    else:
        a = (1 - level) / 2
        low, high = (float(v) for v in np.quantile(finite, [a, 1 - a]))
    return Interval(float(estimate), low, high, n, level, method, int(len(finite)))


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _check(n: int, level: float, groups) -> list[np.ndarray]:
    _check_level(level)
    if int(n) < 10:
        raise ValueError(f"n (resamples) must be at least 10, got {n}")
    return _nonempty(groups)


def _nonempty(groups) -> list[np.ndarray]:
    out = [np.asarray(g, dtype=float) for g in groups]
    for g in out:
        if g.ndim == 0 or len(g) == 0:
            raise ValueError("each sample must be a non-empty array (resampled along its first axis)")
    return out


def bootstrap_ci(samples, stat: Callable = np.mean, n: int = 2000, seed: int = 0,
                 level: float = 0.95) -> Interval:
    """Percentile-bootstrap interval of ``stat(samples)``.

    ``samples``: an array resampled along its first axis (rows of a 2-D array stay
    together), or a *tuple* of arrays, each resampled independently, passed to
    ``stat(*groups)`` (a statistic of several samples, e.g. a hypervolume difference).
    ``n`` resamples, seeded by ``seed``. Taught in 02-aging-evolution.
    """
    groups = samples if isinstance(samples, tuple) else (samples,)
    groups = _check(n, level, groups)
    with np.errstate(all="ignore"):
        est = float(stat(*groups))
    reps = _resample_stats(groups, stat, int(n), seed)
    size = tuple(len(g) for g in groups) if len(groups) > 1 else len(groups[0])
    method = "percentile bootstrap" + (", samples resampled independently" if len(groups) > 1 else "")
    return _interval(est, reps, size, level, method)


def diff_ci(a, b, stat: Callable = np.mean, *, paired: bool = False, n: int = 2000, seed: int = 0,
            level: float = 0.95) -> Interval:
    """Bootstrap interval of ``stat(a) - stat(b)``.

    Unpaired: ``a`` and ``b`` resampled independently; ``paired=True``: the same indices
    for both (equal lengths, e.g. two searches on the same seeds). Taught in 01-search-space-cdf.
    """
    ga, gb = _check(n, level, (a, b))
    if paired and len(ga) != len(gb):
        raise ValueError(f"paired samples must have equal lengths, got {len(ga)} and {len(gb)}")

    def d(x, y):
        return stat(x) - stat(y)

    with np.errstate(all="ignore"):
        est = float(d(ga, gb))
    reps = _resample_stats((ga, gb), d, int(n), seed, paired=paired)
    method = "paired bootstrap" if paired else "bootstrap, samples resampled independently"
    return _interval(est, reps, (len(ga), len(gb)), level, method)


def ratio_ci(a, b, stat: Callable = np.mean, *, paired: bool = False, n: int = 2000, seed: int = 0,
             level: float = 0.95) -> Interval:
    """Bootstrap interval of ``stat(a) / stat(b)`` (same resampling as :func:`diff_ci`).
    Taught in 04-micronets-dnas."""
    ga, gb = _check(n, level, (a, b))
    if paired and len(ga) != len(gb):
        raise ValueError(f"paired samples must have equal lengths, got {len(ga)} and {len(gb)}")

    def r(x, y):
        return stat(x) / stat(y)

    with np.errstate(all="ignore"):
        est = float(r(ga, gb))
    reps = _resample_stats((ga, gb), r, int(n), seed, paired=paired)
    method = "paired bootstrap" if paired else "bootstrap, samples resampled independently"
    return _interval(est, reps, (len(ga), len(gb)), level, method)


def _r2(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    if np.ptp(x) == 0:
        return float("nan")
    a, b = np.polyfit(x, y, 1)
    ss_res = float(np.sum((y - (a * x + b)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


#: Fewest (x, y) pairs :func:`r2_ci` bootstraps: resamples of 3 or 4 pairs hold 2 or 3 distinct
#: points, whose r² is near 1 whatever the data, so the interval would claim a fit it has not seen.
R2_MIN_PAIRS = 5


def r2_ci(x, y, *, n: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """Bootstrap interval (pairs resampled) of the r² of the least-squares line ``y = a x + b``.
    Resamples with a single distinct ``x`` have no fit and are left out; with fewer than
    :data:`R2_MIN_PAIRS` pairs the interval is (nan, nan) (no decision). Taught in 04-micronets-dnas."""
    xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    _check(n, level, (xy,))
    if len(xy) < R2_MIN_PAIRS:
        return Interval(_r2(xy), float("nan"), float("nan"), len(xy), level,
                        f"no bootstrap under {R2_MIN_PAIRS} pairs", 0)
    reps = _resample_stats((xy,), _r2, int(n), seed)
    return _interval(_r2(xy), reps, len(xy), level, "bootstrap of (x, y) pairs")


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
            last = d * c
        if abs(last - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _bisect(f, target: float, lo: float, hi: float) -> float:
    """The x in [lo, hi] where the increasing ``f`` reaches ``target``, to 1e-12 (relative above 1)."""
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function with ``df`` degrees of freedom. Taught in 05-once-for-all."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on :func:`t_cdf`,
    to 1e-12). NumPy and the standard library only, so this layer needs no SciPy.
    Taught in 05-once-for-all."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    return _bisect(lambda t: t_cdf(t, df), p, lo, hi)


def runs_ci(runs, *, stat=None, level: float = 0.95) -> Interval:
    """Student-t interval of the mean over several training or search runs of a per-run statistic.

    ``runs``: one array per run (e.g. per training seed, the paired differences on the same
    subnets); the statistic of a run is the mean of its values. With ``stat``, each run is a
    tuple of arrays (e.g. per search seed, the trials of two searches) and the statistic of a run
    is ``stat(*arrays)`` (a hypervolume difference, a best of a set). The estimate is the mean of
    the per-run statistics and the interval ``mean ± t(k-1) · sd / sqrt(k)`` over the k runs.

    The sample is the runs: a claim about a training or search procedure varies from run to run
    (and from machine to machine, whose kernels round differently), which values of a single run
    cannot show, so with one run the interval is (nan, nan) and no decision is made. Why not a
    bootstrap: with 3 runs a resample holds at most 3 distinct run statistics, so a percentile
    bootstrap of their mean is too narrow (its 95 % interval covered the true mean of simulated
    normal runs 77 % of the time, Student's t 96 %: ``results/20261204-student-t/``;
    ``tests/test_stats.py`` checks it), and resampling a search's trials within a run treats
    dependent trials as independent. Student's t assumes the run statistics roughly normal;
    at 3 runs its interval is wide, which is the honest width of 3 runs. Taught in 05-once-for-all.
    """
    _check_level(level)
    if stat is None:
        groups = [np.asarray(r, dtype=float).ravel() for r in runs]
        _nonempty(groups if groups else [np.array([])])
        per_run = np.array([g.mean() for g in groups])
    else:
        groups = [tuple(np.asarray(a, dtype=float) for a in r) for r in runs]
        _nonempty([a for r in groups for a in r] if groups else [np.array([])])
        per_run = np.array([float(stat(*r)) for r in groups], dtype=float)
    k, est = len(per_run), float(np.mean(per_run))
    method = "Student t over runs (one statistic per run)"
    if k < 2 or not np.all(np.isfinite(per_run)):
        return Interval(est, float("nan"), float("nan"), k, level, method, 0)
    half = t_quantile(0.5 + level / 2, k - 1) * float(np.std(per_run, ddof=1)) / math.sqrt(k)
    return Interval(est, est - half, est + half, k, level, method, 0)


def welch_ci(a, b, *, level: float = 0.95) -> Interval:
    """Welch-t interval of ``mean(a) - mean(b)`` for two small samples of runs (seeds).

    ``a`` and ``b``: one value per run of each arm (an accuracy per training seed, a
    hypervolume per search seed), independent of each other. The interval is
    ``d ± t(ν) · sqrt(s_a²/n_a + s_b²/n_b)`` with the Welch-Satterthwaite ν; with fewer than 2
    runs in an arm it is (nan, nan) and no decision is made. Use it, not :func:`diff_ci`, where
    each value is a whole run: a percentile bootstrap of 3 or 4 values per arm is too narrow
    (:func:`runs_ci` says why). Taught in 01-search-space-cdf.
    """
    _check_level(level)
    ga, gb = _nonempty((np.asarray(a, float).ravel(), np.asarray(b, float).ravel()))
    est = float(ga.mean() - gb.mean())
    n, method = (len(ga), len(gb)), "Welch t over runs"
    if min(n) < 2 or not (np.all(np.isfinite(ga)) and np.all(np.isfinite(gb))):
        return Interval(est, float("nan"), float("nan"), n, level, method, 0)
    va, vb = ga.var(ddof=1) / len(ga), gb.var(ddof=1) / len(gb)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(est, est, est, n, level, method, 0)
    df = (va + vb) ** 2 / (va ** 2 / (len(ga) - 1) + vb ** 2 / (len(gb) - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    return Interval(est, est - half, est + half, n, level, method, 0)


def proportion_ci(successes: int, n: int, *, level: float = 0.95) -> Interval:
    """Clopper-Pearson (exact binomial) interval of a share: ``successes`` of ``n`` independent
    yes/no outcomes. A percentile bootstrap of 3 outcomes that are all "yes" gives [1, 1], as if
    3 could prove a share of 1; the exact interval of 3 of 3 is [0.29, 1]. ``n`` 0 gives (nan, nan).
    Taught in 07-comparison."""
    _check_level(level)
    k, n = int(successes), int(n)
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    method = "Clopper-Pearson (exact binomial)"
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, level, method, 0)
    a = (1 - level) / 2
    # P(X >= k | p) = I_p(k, n - k + 1) rises with p; P(X <= k | p) = 1 - I_p(k + 1, n - k) falls
    low = 0.0 if k == 0 else _bisect(lambda p: _betainc(k, n - k + 1, p), a, 0.0, 1.0)
    high = 1.0 if k == n else _bisect(lambda p: _betainc(k + 1, n - k, p), 1 - a, 0.0, 1.0)
    return Interval(k / n, low, high, n, level, method, 0)


def verdict(ci: Interval, *, claim: str, null: float = 0.0, direction: str = "greater") -> Verdict:
    """The verdict on ``claim`` ("the statistic is greater / less than ``null``") from ``ci``.

    "held" when the whole interval lies on the claim's side of ``null``, "did not hold" when
    it lies wholly on the other side, "undecided at this budget" when it contains ``null``
    (or is undefined). Taught in 01-search-space-cdf.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    lo, hi = ci.low, ci.high
    if not (np.isfinite(lo) and np.isfinite(hi)):
        word = WORDS[2]
    elif (lo > null) if direction == "greater" else (hi < null):
        word = WORDS[0]
    elif (hi < null) if direction == "greater" else (lo > null):
        word = WORDS[1]
    else:
        word = WORDS[2]
    return Verdict(claim=claim, word=word, estimate=ci.estimate, low=lo, high=hi, n=ci.n, null=float(null),
                   direction=direction, level=ci.level, method=ci.method)

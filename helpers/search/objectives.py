"""Multi-objective maths shared by every search: normalisation, scalarisations, Pareto, hypervolume.

Taught in 02-aging-evolution (μNAS's Chebyshev scalarisation over normalised objectives,
Pareto front, hypervolume) and 03-sparse-pruning (SpArSe's simplex scalarisation).
Pure NumPy; imports no other module of the package.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

DEFAULT_CAP = 10.0  # μNAS caps normalised objectives at 10 (search_algorithms/aging_evolution.py)

# ---------------------------------------------------------------------------
# Multi-objective helpers (pure numpy)
# ---------------------------------------------------------------------------
def _as_2d(points) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n_points, n_objectives); got shape {p.shape}")
    return p


def normalise(values, bounds, cap: float = DEFAULT_CAP) -> np.ndarray:
    """Objectives divided by their bounds and capped: ``min(x / bound, cap)``.

    μNAS form (lower end 0): a value at its bound maps to 1, anything over the
    bound to more than 1, at most ``cap`` (10 in μNAS).  ``values`` is an array
    ``(..., k)`` or a mapping name -> value (then ``bounds`` is a mapping too
    and the result follows ``bounds``' key order).  Taught in 02-aging-evolution.
    """
    if isinstance(bounds, Mapping):
        names = list(bounds)
        if isinstance(values, Mapping):
            missing = [n for n in names if n not in values]
            if missing:
                raise KeyError(f"values lacks objectives {missing}; bounds name {names}")
            values = [values[n] for n in names]
        bounds = [bounds[n] for n in names]
    b = np.asarray(bounds, dtype=float)
    if np.any(~np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"bounds must be finite and > 0; got {list(b)}")
    if not (cap > 0):
        raise ValueError(f"cap must be > 0; got {cap}")
    v = np.asarray(values, dtype=float)
    return np.minimum(v / b, cap)


def random_lambdas(rng: np.random.Generator, k: int) -> np.ndarray:
    """Fresh Chebyshev weights λ ~ U(0, 1)^k, not normalised (as in μNAS).

    Taught in 02-aging-evolution.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator (np.random.default_rng(seed))")
    return rng.uniform(0.0, 1.0, size=int(k))


def chebyshev_fitness(normalised, lambdas) -> np.ndarray:
    """μNAS random Chebyshev scalarisation, to be MAXIMISED: ``-max_i(n_i / λ_i)``.

    ``normalised`` is ``(k,)`` or ``(n, k)`` (see :func:`normalise`); returns a
    scalar or ``(n,)``.  This is exactly ``get_mo_fitness_fn`` in
    eliberis/uNAS ``search_algorithms/aging_evolution.py``: λ drawn from
    U(0,1) per objective at every parent selection, not renormalised.
    Taught in 02-aging-evolution.
    """
    n = np.asarray(normalised, dtype=float)
    lam = np.asarray(lambdas, dtype=float)
    if lam.shape[-1] != n.shape[-1]:
        raise ValueError(f"lambdas has {lam.shape[-1]} weights for {n.shape[-1]} objectives")
    lam = np.maximum(lam, 1e-12)  # U[0,1) can return exactly 0
    return -np.max(n / lam, axis=-1)


def pareto_mask(points) -> np.ndarray:
    """Boolean mask of the non-dominated rows (minimisation, any number of objectives).

    A row is dominated when another row is <= in every objective and < in at
    least one; identical rows do not dominate each other (both are kept).
    Rows containing NaN are never on the front.  Taught in 02-aging-evolution.
    """
    p = _as_2d(points)
    n = len(p)
    if n == 0:
        return np.zeros(0, dtype=bool)
    ok = ~np.any(np.isnan(p), axis=1)
    mask = ok.copy()
    q = p[ok]
    idx = np.flatnonzero(ok)
    for j, i in enumerate(idx):
        le = np.all(q <= q[j], axis=1)
        lt = np.any(q < q[j], axis=1)
        if np.any(le & lt):
            mask[i] = False
    return mask


def pareto_front(points) -> np.ndarray:
    """Indices of the non-dominated rows, sorted by the first objective (minimisation).
    Taught in 02-aging-evolution.
    """
    p = _as_2d(points)
    idx = np.flatnonzero(pareto_mask(p))
    if len(idx) == 0:
        return idx
    order = np.lexsort(p[idx].T[::-1])
    return idx[order]


def _hv2d(p: np.ndarray, ref: np.ndarray) -> float:
    # p already strictly inside ref; sweep over the first objective
    o = np.argsort(p[:, 0], kind="stable")
    x = p[o, 0]
    y = np.minimum.accumulate(p[o, 1])
    x_next = np.append(x[1:], ref[0])
    return float(np.sum((x_next - x) * (ref[1] - y)))


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    d = p.shape[1]
    if len(p) == 0:
        return 0.0
    if d == 1:
        return float(ref[0] - p[:, 0].min())
    if d == 2:
        return _hv2d(p, ref)
    # slicing along the last objective (HSO): sweep z upwards, each slab's
    # (d-1)-dimensional cross-section is the HV of the points below it
    p = p[pareto_mask(p)]
    o = np.argsort(p[:, -1], kind="stable")
    p = p[o]
    z = np.append(p[:, -1], ref[-1])
    total = 0.0
    for i in range(len(p)):
        thick = z[i + 1] - z[i]
        if thick <= 0:
            continue
        total += thick * _hv(p[: i + 1, :-1], ref[:-1])
    return float(total)


def hypervolume(points, ref) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``ref`` (minimisation).

    Points not strictly better than ``ref`` in every objective contribute
    nothing.  Exact by slicing objectives (HSO; While et al. 2006) down to a
    2-D sweep: fine for 2-4 objectives and up to a few hundred front points.
    With objectives normalised by their bounds (:func:`normalise`) and
    ``ref = ones`` it is the volume of the feasible region the search has
    covered, one number to compare searches.  Taught in 02-aging-evolution.
    """
    p = _as_2d(points)
    r = np.asarray(ref, dtype=float).ravel()
    if p.shape[0] and p.shape[1] != r.size:
        raise ValueError(f"ref has {r.size} coordinates for {p.shape[1]} objectives")
    if r.size > 6:
        raise ValueError(f"hypervolume supports up to 6 objectives exactly; got {r.size}")
    if p.shape[0] == 0:
        return 0.0
    p = p[np.all(p < r, axis=1) & ~np.any(np.isnan(p), axis=1)]
    return _hv(p, r)


def hypervolume_history(points, ref) -> np.ndarray:
    """Hypervolume of the first ``n`` rows, for n = 1..len(points) (rows in the order found).

    Incremental and exact: adding point x adds ``HV({x}) - HV({max(a, x) : a in front})``
    (the part of x's box not already covered), so only x's neighbourhood is
    recomputed.  Taught in 02-aging-evolution (hypervolume over rounds).
    """
    p = _as_2d(points)
    r = np.asarray(ref, dtype=float).ravel()
    out = np.zeros(len(p))
    front = np.zeros((0, r.size))
    hv = 0.0
    for i, x in enumerate(p):
        if np.all(x < r) and not np.any(np.isnan(x)):
            if not (len(front) and np.any(np.all(front <= x, axis=1))):
                if len(front):
                    clipped = np.maximum(front, x)
                    covered = _hv(clipped[pareto_mask(clipped)], r)
                else:
                    covered = 0.0
                hv += float(np.prod(r - x)) - covered
                front = np.vstack([front[~np.all(x <= front, axis=1)], x[None]])
        out[i] = hv
    return out


def trial_seed(seed: int, trial_id) -> int:
    """The seed handed to ``evaluate`` for a trial: a function of (search seed, trial id) only.
    Taught in 02-aging-evolution.
    """
    ss = np.random.SeedSequence([int(seed), int(str(trial_id))])
    return int(ss.generate_state(1, dtype=np.uint32)[0])


# ==================================================================== scalarisation
def lambdas_simplex(rng: np.random.Generator, k: int) -> np.ndarray:
    """SpArSe / Paria et al. (2019) random scalarisation weights: λ uniform on the simplex.

    (Dirichlet(1, ..., 1): non-negative, summing to 1.)  Taught in 03-sparse-pruning.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    return rng.dirichlet(np.ones(int(k)))


def chebyshev_simplex(normalised, lambdas) -> np.ndarray:
    """Chebyshev scalarisation ``max_i λ_i n_i`` (minimise) of normalised objectives.

    Taught in 03-sparse-pruning.
    """
    n = np.asarray(normalised, float)
    lam = np.asarray(lambdas, float)
    if n.shape[-1] != lam.shape[-1]:
        raise ValueError(f"normalised has {n.shape[-1]} objectives, lambdas {lam.shape[-1]}")
    return np.max(n * lam, axis=-1)



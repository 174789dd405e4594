"""Search machinery shared by every search in the series.

Modules (bottom to top): :mod:`~helpers.search.objectives` (normalisation, Chebyshev and
simplex scalarisations, Pareto front, hypervolume), :mod:`~helpers.search.store` (the trial
store on disk, :class:`SearchResult`, :func:`load_search`), :mod:`~helpers.search.oracles`
(the algorithms as keras-tuner oracles: aging evolution, random search, MCUNet evolution,
SpArSe's Bayesian optimisation), :mod:`~helpers.search.tuner` (trains each trial),
:mod:`~helpers.search.workers` (gRPC chief and workers) and :mod:`~helpers.search.drivers`
(one call per search, resumable) and :mod:`~helpers.search.compare` (two searches over search
seeds: the verdicts of notebooks 02 and 03). The light names are re-exported here; the oracles, tuner and
workers import keras-tuner (TensorFlow) and are imported only when a search runs.
Taught in 02-aging-evolution; reused by 03, 05 and 07. See docs/search.md.
May import: :mod:`helpers.train` (freeing each trial's graphs), :mod:`helpers.stats`. Layer above ``deploy``.
"""
from __future__ import annotations

from helpers.search.compare import compare_by_seed
from helpers.search.drivers import (ALGORITHMS, aging_evolution, bayesian_optimization,
                                    mcunet_evolution, random_search, run_search)
from helpers.search.objectives import (DEFAULT_CAP, chebyshev_fitness, chebyshev_simplex,
                                       hypervolume, hypervolume_history, lambdas_simplex,
                                       normalise, pareto_front, pareto_mask, random_lambdas,
                                       trial_seed)
from helpers.search.store import Architecture, SearchResult, SearchSpace, load_search

__all__ = ["Architecture", "SearchSpace", "normalise", "random_lambdas", "chebyshev_fitness",
           "lambdas_simplex", "chebyshev_simplex", "pareto_mask", "pareto_front", "hypervolume",
           "hypervolume_history", "trial_seed", "DEFAULT_CAP", "SearchResult", "load_search",
           "run_search", "aging_evolution", "random_search", "mcunet_evolution",
           "bayesian_optimization", "ALGORITHMS", "compare_by_seed"]

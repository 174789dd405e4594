"""A search benchmark that costs no training: a fixed surrogate error over the real search spaces.

For tests and teaching notebooks.  Each :class:`Benchmark` is one of the project's real
search spaces, set up as its notebook sets it up, with

* ``resources(arch) -> dict``: the exact pre-training resource model the searches
  already use (:mod:`helpers.resources` via :func:`helpers.methods.munas.arch_resources`,
  :func:`helpers.methods.sparse.candidate_resources`, :func:`helpers.resources.profile`);
* ``evaluate(arch, seed) -> dict``: every objective of the space - the resources as
  above and a **surrogate error** - in about a millisecond, no TensorFlow;
* ``bounds``: default bounds (objective -> bound, ``None``: recorded only);
* ``run(algorithm, ...)``: any search driver of :mod:`helpers.search` on it.

The three benchmarks (``BENCHMARKS``):

================  ===================================================  ======================
name              space (as set up by)                                 objectives
================  ===================================================  ======================
``"granular"``    ``munas.ArchSpace`` over ``spaces.GranularArch``,    error, peak_sram_bytes,
                  pruning sparsity 0-0.5 (notebook 02)                 weights_bytes, macs
``"sparse"``      ``sparse.SparseSpace`` (notebook 03; BO needs it)    error, model_size,
                                                                       working_memory, ...
``"subnet"``      ``ofa.SubnetSpace`` over a width-0.5 block      error, peak_sram_bytes,
                  space, resolutions 20-28 (notebook 05)               flash_bytes, macs
================  ===================================================  ======================

The surrogate error
-------------------
A deterministic function of the architecture (MNIST-like: 28x28x1 input, 10 classes):
smooth diminishing returns in capacity plus a small fixed "architecture noise"::

    F     = (1 + P/P0)^-a  *  (1 + M/M0)^-b  *  (1 + g exp(-(D - 1) / d))  *  penalties
    error = min(e_max, e_min + (e_max - e_min) * F * (1 + s * xi))

``P``: effective learned parameters, ``M``: effective MACs (both counted from the
lowered layer list; pruning changes them as described per benchmark), ``D``: learned
layers, penalties for hidden layers without activation / convolutions without
batch-norm (granular space) and for the learning rate (SpArSe space), ``xi`` in
[-1, 1) a fixed function of the architecture's hash and ``landscape_seed``.  No
training, no randomness: ``evaluate(arch, seed)`` ignores ``seed`` unless
``eval_noise`` > 0 (then a seeded Gaussian term of that standard deviation is added,
to mimic a noisy training).  It is *not* a prediction of the real accuracy; it is a
landscape with the right shape (bigger is better, with diminishing returns, under
resource bounds that cut the big networks out) whose optimum can be computed.

The optimum under bounds
------------------------
:func:`estimate_optimum` estimates the best feasible error (random sampling, then
first-improvement hill climbing from the best feasible samples with the space's own
mutation); the result says how many architectures it evaluated.  It is an
*estimate* (an upper bound on the true optimum).  :data:`REFERENCE_OPTIMA` holds the
estimates for the default bounds made with a large budget (recorded with their
budget); :func:`regret` measures a search against one.

Everything here is picklable (``workers > 1`` works). Taught in the search-quality tests
(``tests/test_search_quality.py``). May import: :mod:`helpers.spaces`, :mod:`helpers.resources`,
:mod:`helpers.search` and the method modules whose spaces it scores (munas, sparse, ofa).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import OrderedDict

import numpy as np

from helpers.methods.munas import ArchResources, ArchSpace
from helpers.methods.ofa import SubnetSpace
from helpers.methods.sparse import (SparseCandidate, SparseSpace, arch_from_dict_unchecked,
                                    candidate_resources, working_memory)
from helpers.resources import graph_from_layers, profile
from helpers.search import (aging_evolution, bayesian_optimization, mcunet_evolution,
                            random_search)
from helpers.spaces import BlockSpace, GranularArch, GranularSpace

__all__ = ["Benchmark", "GranularBenchmark", "SparseBenchmark", "SubnetBenchmark",
           "granular_benchmark", "sparse_benchmark", "subnet_benchmark", "BENCHMARKS",
           "OptimumEstimate", "estimate_optimum", "REFERENCE_OPTIMA", "reference_optimum",
           "regret", "best_feasible", "layer_features", "genes", "ErrorModel", "INPUT_SHAPE", "NUM_CLASSES"]

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
_LEARNED = ("conv", "dwconv", "dense")


# ---------------------------------------------------------------------------
# capacity features of a lowered layer list (helpers.spaces.Layer)
# ---------------------------------------------------------------------------
def layer_features(layers) -> dict:
    """Capacity features of ``arch.layers(input_shape, num_classes)``.

    ``params`` (learned weights + biases, batch-norm folded), ``macs``, ``depth``
    (learned layers), ``linear`` (hidden learned layers without activation),
    ``no_bn`` (convolutions without batch-norm). Taught in the search-quality tests.
    """
    shape = {l.id: l.shape for l in layers}
    params = macs = depth = linear = no_bn = 0
    for l in layers:
        if l.kind not in _LEARNED:
            continue
        src = shape[l.inputs[0]]
        p = l.params
        if l.kind == "conv":
            cin, (h, w, f), k = src[-1], l.shape, p["kernel"]
            params += k * k * cin * f + f
            macs += h * w * k * k * cin * f
        elif l.kind == "dwconv":
            cin, (h, w, _), k = src[-1], l.shape, p["kernel"]
            params += k * k * cin + cin
            macs += h * w * k * k * cin
        else:
            n, u = int(np.prod(src)), p["units"]
            params += n * u + u
            macs += n * u
        depth += 1
        if l.name != "classifier" and p.get("act") is None:
            linear += 1
        if l.kind in ("conv", "dwconv") and not p.get("bn", True):
            no_bn += 1
    return {"params": int(params), "macs": int(macs), "depth": int(depth),
            "linear": int(linear), "no_bn": int(no_bn)}


def genes(arch) -> list:
    """The architecture's discrete choices as ``position:choice`` strings (no widths).

    Block space: resolution, per-stage depth, per-block expansion and kernel.  Granular
    space (also inside a ``Candidate`` / ``SparseCandidate``): per block the pre-pool and
    branch, per layer its type, kernel, stride, batch-norm and ReLU; the pooling head and
    the number of dense layers.  Used for the fixed per-choice effects of the surrogate.
    Taught in the search-quality tests.
    """
    a = getattr(arch, "arch", arch)
    out = []
    if hasattr(a, "stages"):  # BlockArch
        out.append(f"r={a.resolution}")
        for si, st in enumerate(a.stages):
            out.append(f"s{si}:d={len(st)}")
            for bi, (e, k) in enumerate(st):
                out += [f"s{si}b{bi}:e={e}", f"s{si}b{bi}:k={k}"]
        return out
    for bi, b in enumerate(a.blocks):
        br = b.branch
        out += [f"b{bi}:pool={bool(b.pool)}",
                f"b{bi}:branch={'none' if br is None else br.type}"]
        for li, l in enumerate(b.layers):
            p = f"b{bi}l{li}"
            out += [f"{p}:type={l.type}", f"{p}:stride={l.stride}", f"{p}:bn={bool(l.batch_norm)}",
                    f"{p}:relu={bool(l.relu)}"]
            if l.type != "conv1x1":
                out.append(f"{p}:k={l.kernel}")
    out += [f"pool={a.pooling}{a.pool_size}", f"dense={len(a.dense)}"]
    return out


def _unit(text: str) -> float:
    """A fixed number in [0, 1) from a string (sha1)."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:13], 16) / 16 ** 13


def _arch_key(arch) -> str:
    h = getattr(arch, "hash", None)
    if isinstance(h, str):
        return h
    j = arch.to_json()
    return hashlib.sha1((j if isinstance(j, str) else json.dumps(j, sort_keys=True)).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class ErrorModel:
    """Parameters of the surrogate error (see the module docstring).
    Taught in the search-quality tests.
    """

    p0: float
    m0: float
    a: float = 0.7
    b: float = 0.4
    e_min: float = 0.005
    e_max: float = 0.9
    depth_gain: float = 1.0     # g: shallow networks are worse
    depth_scale: float = 2.0    # d
    linear_penalty: float = 0.3
    no_bn_penalty: float = 0.15
    noise: float = 0.05         # s: relative amplitude of the fixed architecture noise
    gene_effect: float = 0.06   # c: each choice multiplies F by exp(c * u), u in [-1, 1) fixed

    def value(self, params, macs, depth, linear=0, no_bn=0, factor=1.0, xi=0.0, g=0.0) -> float:
        f = ((1.0 + params / self.p0) ** -self.a * (1.0 + macs / self.m0) ** -self.b
             * math.exp(self.gene_effect * g)
             * (1.0 + self.depth_gain * math.exp(-(max(depth, 1) - 1) / self.depth_scale))
             * (1.0 + self.linear_penalty * linear + self.no_bn_penalty * no_bn) * factor)
        e = self.e_min + (self.e_max - self.e_min) * f * (1.0 + self.noise * xi)
        return float(min(self.e_max, e))


# ---------------------------------------------------------------------------
# the benchmark base
# ---------------------------------------------------------------------------
class Benchmark:
    """One search space with a training-free ``evaluate`` and the exact ``resources``.

    Subclasses set ``name``, ``space``, ``objectives``, ``bounds`` and implement
    :meth:`_resources` and :meth:`_objectives`.  ``evaluate`` / ``resources`` are
    deterministic functions of the architecture (memoised by its hash), a few ms each.
    Taught in the search-quality tests.
    """

    name = "base"
    #: algorithms of :mod:`helpers.search` that run on this space
    algorithms: tuple = ("aging_evolution", "random_search")
    #: small default settings per algorithm for :meth:`run` (tests, notebooks)
    defaults: dict = {}

    def __init__(self, space, bounds: dict, model: ErrorModel, *, input_shape=INPUT_SHAPE,
                 num_classes=NUM_CLASSES, landscape_seed: int = 0, eval_noise: float = 0.0):
        self.space = space
        self.bounds = dict(bounds)
        self.objectives = tuple(self.bounds)
        self.model = model
        self.input_shape = tuple(int(x) for x in input_shape)
        self.num_classes = int(num_classes)
        self.landscape_seed = int(landscape_seed)
        self.eval_noise = float(eval_noise)
        self._cache: OrderedDict = OrderedDict()

    # ---- pickling: the memo stays behind
    def __getstate__(self):
        d = dict(self.__dict__)
        d["_cache"] = OrderedDict()
        return d

    def __repr__(self):
        b = ", ".join(f"{k}<={v:g}" for k, v in self.bounds.items() if v is not None)
        return f"{type(self).__name__}({self.name!r}, bounds: {b})"

    # ---- the two functions the searches take
    def resources(self, arch) -> dict:
        """The pre-training resource screen (exactly what the space's notebook uses)."""
        return dict(self._memo(arch)[0])

    def evaluate(self, arch, seed: int = 0) -> dict:
        """Every objective of ``arch`` (surrogate error + resources) and a few extras.

        Deterministic: ``seed`` only matters when ``eval_noise`` > 0.
        """
        out = dict(self._memo(arch)[1])
        if self.eval_noise > 0:
            e = out["error"] + np.random.default_rng(int(seed)).normal(0.0, self.eval_noise)
            out["error"] = float(min(self.model.e_max, max(0.0, e)))
        return out

    __call__ = evaluate

    def error(self, arch) -> float:
        """The noise-free surrogate error of ``arch``."""
        return float(self._memo(arch)[1]["error"])

    def xi(self, arch) -> float:
        """The fixed architecture noise in [-1, 1)."""
        return 2.0 * _unit(f"{self.name}:{self.landscape_seed}:{_arch_key(arch)}") - 1.0

    def gene_sum(self, arch) -> float:
        """Sum of the fixed per-choice effects u in [-1, 1) over :func:`genes` (``G``)."""
        return float(sum(2.0 * _unit(f"{self.name}:{self.landscape_seed}:{x}") - 1.0
                         for x in genes(arch)))

    def _memo(self, arch):
        k = _arch_key(arch)
        hit = self._cache.get(k)
        if hit is None:
            res = self._resources(arch)
            hit = (res, self._objectives(arch, res))
            self._cache[k] = hit
            if len(self._cache) > 20000:
                self._cache.popitem(last=False)
        return hit

    def _resources(self, arch) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _objectives(self, arch, res) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- feasibility
    def feasible(self, objs: dict, bounds: dict | None = None) -> bool:
        """Every bounded objective within its bound (``None`` bounds are ignored)."""
        b = self.bounds if bounds is None else bounds
        return all(v is None or float(objs[k]) <= float(v) for k, v in b.items())

    def screen_ok(self, res: dict, bounds: dict | None = None) -> bool:
        """Whether the pre-training screen passes (what the searches reject on)."""
        b = self.bounds if bounds is None else bounds
        return all(v is None or k not in res or float(res[k]) <= float(v) for k, v in b.items())

    # ---- sampling and mutation with the space's own operators
    def random(self, rng):
        return self.space.random(rng)

    def mutate(self, arch, rng):
        if hasattr(self.space, "mutate"):
            return self.space.mutate(arch, rng)
        return arch.mutate(rng)

    # ---- running the searches
    def run(self, algorithm: str, *, directory, seed: int = 0, bounds: dict | None = None,
            objectives=None, **kwargs):
        """Run ``helpers.search.<algorithm>`` on this benchmark (``workers=1``, no progress bar).

        ``kwargs`` go to the driver, over :attr:`defaults` for that algorithm (e.g.
        ``budget``, ``population_size``; for MCUNet evolution ``iterations``).
        Returns the :class:`helpers.search.SearchResult`.
        """
        drivers = {"aging_evolution": aging_evolution, "random_search": random_search,
                   "bayesian_optimization": bayesian_optimization,
                   "mcunet_evolution": mcunet_evolution}
        if algorithm not in drivers:
            raise ValueError(f"algorithm must be one of {sorted(drivers)}; got {algorithm!r}")
        if algorithm not in self.algorithms:
            raise ValueError(f"{algorithm} does not run on the {self.name!r} benchmark "
                             f"(it runs {', '.join(self.algorithms)})")
        kw = dict(self.defaults.get(algorithm, {}))
        kw.update(kwargs)
        kw.setdefault("workers", 1)
        kw.setdefault("progress", False)
        return drivers[algorithm](self.space, self.evaluate, self.resources,
                                  bounds=self.bounds if bounds is None else bounds,
                                  objectives=objectives, seed=seed, directory=directory, **kw)


# ---------------------------------------------------------------------------
# notebook 02: the μNAS granular space with structured-pruning sparsity
# ---------------------------------------------------------------------------
class GranularBenchmark(Benchmark):
    """Notebook 02's space: ``munas.ArchSpace(GranularArch, GranularSpace(4 blocks, 32 filters,
    64 units), sparsity=(0, 0.5))`` screened by ``munas.ArchResources(plan="reordered")``
    (μNAS peak SRAM, input excluded).

    Objectives ``error``, ``peak_sram_bytes``, ``weights_bytes``, ``macs`` (default bounds:
    μNAS's MNIST bounds 2,500 B / 4,500 B / 30 M and error 0.3).  A candidate pruned by
    sparsity ``s`` has the screen's resources (dense ones scaled by 1 - s, as
    ``ArchResources`` does) and keeps more capacity than it loses in resources
    (``P, M`` scaled by 1 - s/2).  Aging evolution and random search run on it.
    Taught in the search-quality tests.
    """

    name = "granular"
    defaults = {"aging_evolution": {"budget": 60, "population_size": 20, "sample_size": 5},
                "random_search": {"budget": 60}}

    def __init__(self, *, gspace: GranularSpace | None = None, sparsity=(0.0, 0.5),
                 bounds: dict | None = None, model: ErrorModel | None = None, **kw):
        gspace = gspace or GranularSpace(max_blocks=4, max_filters=32, max_units=64)
        space = ArchSpace(GranularArch, gspace, sparsity=sparsity)
        bounds = bounds or {"error": 0.3, "peak_sram_bytes": 2500, "weights_bytes": 4500,
                            "macs": 30_000_000}
        super().__init__(space, bounds, model or ErrorModel(p0=300.0, m0=20_000.0), **kw)
        self.measure = ArchResources(self.input_shape, self.num_classes, plan="reordered")

    def _resources(self, cand):
        return self.measure(cand)

    def _objectives(self, cand, res):
        f = layer_features(cand.arch.layers(self.input_shape, self.num_classes))
        keep = 1.0 - 0.5 * float(cand.sparsity)
        err = self.model.value(f["params"] * keep, f["macs"] * keep, f["depth"], f["linear"],
                               f["no_bn"], xi=self.xi(cand), g=self.gene_sum(cand))
        return {"error": err, "peak_sram_bytes": res["peak_sram_bytes"],
                "weights_bytes": res["weights_bytes"], "macs": res["macs"], "params": res["params"],
                "sparsity": float(cand.sparsity)}


# ---------------------------------------------------------------------------
# notebook 03: SpArSe's fixed-length space (BO runs here)
# ---------------------------------------------------------------------------
def _structured_prune(arch, s):
    """The architecture with a fraction ``s`` of every hidden layer's channels removed."""
    d = arch.to_dict()
    keep = 1.0 - float(s)
    for b in d["blocks"]:
        for l in b["layers"]:
            if l["type"] != "dwconv":
                l["filters"] = max(1, int(round(l["filters"] * keep)))
    for x in d["dense"]:
        x["units"] = max(1, int(round(x["units"] * keep)))
    return arch_from_dict_unchecked(d)


def _indexed_size(layers, s) -> int:
    """Model size with the sparse index (bitmap when cheaper than dense), unstructured s."""
    shape = {l.id: l.shape for l in layers}
    total = 0
    for l in layers:
        if l.kind not in _LEARNED:
            continue
        src, p = shape[l.inputs[0]], l.params
        if l.kind == "conv":
            n, bias = p["kernel"] ** 2 * src[-1] * p["filters"], p["filters"]
        elif l.kind == "dwconv":
            n, bias = p["kernel"] ** 2 * src[-1], src[-1]
        else:
            n, bias = int(np.prod(src)) * p["units"], p["units"]
        nnz = n - int(round(s * n))
        total += min(n, -(-n // 8) + nnz) + bias
    return int(total)


class SparseBenchmark(Benchmark):
    """Notebook 03's space: ``sparse.SparseSpace`` (3 blocks of up to 2 layers, 16 filters,
    kernels 3/5, pools 2-4, one hidden dense layer of 10-32 units; sparsity 0-0.8,
    structured or not, lr 2e-3..1e-2) screened by ``sparse.candidate_resources(exact=False)``.

    Objectives ``error`` (f1), ``model_size`` (f2, non-zero parameters), ``working_memory``
    (f3), recorded ``peak_sram_bytes`` and ``model_size_indexed``; default bounds nb03's
    (0.10, 2,867, 2,048 B).  Unstructured pruning at ``s``: f2 = the screen's exact count,
    f3 dense, capacity ``P * sqrt(1 - s)``; structured: the network with ``s`` of its channels
    removed (f2, f3 and peak SRAM measured on it), capacity ``P_pruned / (1 - s)^0.3``.  The
    learning rate multiplies F by ``1 + 0.4 ln(lr / 4.5e-3)^2``.  Bayesian optimisation,
    aging evolution and random search run on it. Taught in the search-quality tests.
    """

    name = "sparse"
    algorithms = ("bayesian_optimization", "aging_evolution", "random_search")
    defaults = {"bayesian_optimization": {"budget": 40, "num_initial_points": 10, "pool_size": 48},
                "aging_evolution": {"budget": 40, "population_size": 10, "sample_size": 3},
                "random_search": {"budget": 40}}
    LR_OPT = 4.5e-3

    def __init__(self, *, sspace: SparseSpace | None = None, bounds: dict | None = None,
                 model: ErrorModel | None = None, **kw):
        sspace = sspace or SparseSpace(
            granular=GranularSpace(max_blocks=3, max_layers=2, max_filters=16, kernels=(3, 5),
                                   pool_sizes=(2, 3, 4), max_dense=2, min_units=10, max_units=32),
            sparsity=(0.0, 0.8), structured=(False, True), lr=(2e-3, 1e-2))
        bounds = bounds or {"error": 0.15, "model_size": 2867, "working_memory": 2048,
                            "peak_sram_bytes": None, "model_size_indexed": None}
        super().__init__(sspace, bounds, model or ErrorModel(p0=100.0, m0=10_000.0), **kw)

    def _resources(self, cand):
        return candidate_resources(cand, self.input_shape, self.num_classes, exact=False)

    def _objectives(self, cand: SparseCandidate, res):
        s = float(cand.sparsity)
        structured = bool(cand.structured) and s > 0
        arch = _structured_prune(cand.arch, s) if structured else cand.arch
        layers = arch.layers(self.input_shape, self.num_classes)
        f = layer_features(layers)
        if structured:
            p_eff, m_eff = f["params"] / (1.0 - s) ** 0.3, f["macs"] / (1.0 - s) ** 0.3
            size = indexed = f["params"]
            wm = working_memory(layers).peak
        else:
            p_eff, m_eff = f["params"] * math.sqrt(1.0 - s), f["macs"]
            size = int(res["model_size"])
            indexed = _indexed_size(layers, s)
            wm = int(res["working_memory"])
        lr_factor = 1.0 + 0.4 * math.log(float(cand.lr) / self.LR_OPT) ** 2
        err = self.model.value(p_eff, m_eff, f["depth"], f["linear"], f["no_bn"], factor=lr_factor,
                               xi=self.xi(cand), g=self.gene_sum(cand))
        return {"error": err, "model_size": int(size), "working_memory": int(wm),
                "peak_sram_bytes": int(profile(graph_from_layers(layers), plan="tflm",
                                               table=False).peak_sram_bytes),
                "model_size_indexed": int(indexed), "macs": int(f["macs"]),
                "params_dense": int(res["params_dense"]),
                "pruning": "structured" if structured else ("unstructured" if s > 0 else "none")}


# ---------------------------------------------------------------------------
# notebook 05: the once-for-all subnets (MCUNet evolution runs here)
# ---------------------------------------------------------------------------
class SubnetBenchmark(Benchmark):
    """Notebook 05's space: ``ofa.SubnetSpace`` over ``BlockSpace(kernels 3/5/7,
    expansions 3/4/6, depths 2/3/4)`` at width 0.5 and resolutions 20/24/28, measured by
    nb05's ``res_fn`` (``resources.profile(plan="tflm")``: peak SRAM, flash, MACs).

    Default bounds: error 0.09, peak SRAM 8 KiB, flash 256 KiB, MACs recorded.  (nb05's
    own 32 KiB SRAM budget is above every subnet of this space - at most about 12.5 KB -
    so the benchmark tightens it to make the SRAM bound bite too.)  MCUNet evolution,
    aging evolution and random search run on it. Taught in the search-quality tests.
    """

    name = "subnet"
    algorithms = ("mcunet_evolution", "aging_evolution", "random_search")
    defaults = {"mcunet_evolution": {"population_size": 16, "n_mutation": 8, "n_crossover": 8,
                                     "iterations": 3},
                "aging_evolution": {"budget": 64, "population_size": 16, "sample_size": 4},
                "random_search": {"budget": 64}}

    def __init__(self, *, width: float = 0.5, resolutions=(20, 24, 28), block_space=None,
                 bounds: dict | None = None, model: ErrorModel | None = None, plan: str = "tflm",
                 **kw):
        bs = block_space or BlockSpace(kernels=(3, 5, 7), expansions=(3, 4, 6), depths=(2, 3, 4))
        bs = dataclasses.replace(bs, widths=(float(width),),
                                 resolutions=tuple(sorted(int(r) for r in resolutions)))
        bounds = bounds or {"error": 0.09, "peak_sram_bytes": 8 * 1024,
                            "flash_bytes": 256 * 1024, "macs": None}
        super().__init__(SubnetSpace(bs), bounds,
                         model or ErrorModel(p0=60_000.0, m0=300_000.0, a=1.0, b=0.8), **kw)
        self.plan = plan

    def _resources(self, arch):
        p = profile(arch, self.input_shape, self.num_classes, plan=self.plan, table=False)
        return {"peak_sram_bytes": int(p.peak_sram_bytes), "flash_bytes": int(p.flash_bytes),
                "macs": int(p.macs)}

    def _objectives(self, arch, res):
        f = layer_features(arch.layers(self.input_shape, self.num_classes))
        err = self.model.value(f["params"], f["macs"], f["depth"], xi=self.xi(arch),
                               g=self.gene_sum(arch))
        return {"error": err, **res, "params": f["params"]}


def granular_benchmark(**kw) -> GranularBenchmark:
    """Notebook 02's granular space with pruning (see :class:`GranularBenchmark`).
    Taught in the search-quality tests.
    """
    return GranularBenchmark(**kw)


def sparse_benchmark(**kw) -> SparseBenchmark:
    """Notebook 03's SpArSe space (see :class:`SparseBenchmark`).
    Taught in the search-quality tests.
    """
    return SparseBenchmark(**kw)


def subnet_benchmark(**kw) -> SubnetBenchmark:
    """Notebook 05's once-for-all subnet space (see :class:`SubnetBenchmark`).
    Taught in the search-quality tests.
    """
    return SubnetBenchmark(**kw)


BENCHMARKS = {"granular": granular_benchmark, "sparse": sparse_benchmark,
              "subnet": subnet_benchmark}


# ---------------------------------------------------------------------------
# the optimum under bounds, and regret
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class OptimumEstimate:
    """Best feasible (lowest ``objective``) architecture found by :func:`estimate_optimum`.

    ``value`` is an upper bound on the true optimum; ``n_evaluated`` architectures had
    their objectives computed (``n_screened`` were rejected by the resource screen first).
    Taught in the search-quality tests.
    """

    benchmark: str
    bounds: dict
    objective: str
    value: float
    arch: str
    objectives: dict
    n_random: int
    n_evaluated: int
    n_screened: int
    n_feasible: int
    seed: int
    method: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def estimate_optimum(bench: Benchmark, bounds: dict | None = None, *, n_random: int = 2000,
                     n_starts: int = 8, n_climb: int = 300, seed: int = 0,
                     objective: str | None = None) -> OptimumEstimate:
    """Estimate the best feasible ``objective`` (default: the first, the error) under ``bounds``.

    ``n_random`` random architectures, then from each of the ``n_starts`` best feasible ones
    ``n_climb`` mutations (the space's own operator) accepted when feasible and better
    (first improvement).  Deterministic for a seed.  Cost: about 1-3 ms per architecture.
    Taught in the search-quality tests.
    """
    b = dict(bench.bounds if bounds is None else bounds)
    obj = objective or bench.objectives[0]
    rng = np.random.default_rng(seed)
    n_eval = n_screen = n_feas = 0
    seen: dict[str, tuple] = {}

    def score(a):
        nonlocal n_eval, n_screen, n_feas
        k = _arch_key(a)
        if k in seen:
            return seen[k]
        if not bench.screen_ok(bench.resources(a), b):
            n_screen += 1
            out = (math.inf, None)
        else:
            o = bench.evaluate(a, 0)
            n_eval += 1
            ok = bench.feasible(o, b)
            n_feas += ok
            out = (float(o[obj]) if ok else math.inf, o)
        seen[k] = out
        return out

    pool = []
    for _ in range(int(n_random)):
        a = bench.random(rng)
        v, _ = score(a)
        if math.isfinite(v):
            pool.append((v, _arch_key(a), a))
    pool.sort(key=lambda t: (t[0], t[1]))
    best = pool[0] if pool else None
    for v0, _, a0 in pool[:int(n_starts)]:
        cur, cv = a0, v0
        for _ in range(int(n_climb)):
            c = bench.mutate(cur, rng)
            v, _ = score(c)
            if v < cv:
                cur, cv = c, v
        if best is None or (cv, _arch_key(cur)) < (best[0], best[1]):
            best = (cv, _arch_key(cur), cur)
    if best is None:
        return OptimumEstimate(bench.name, b, obj, math.inf, "", {}, int(n_random), n_eval,
                               n_screen, n_feas, int(seed), "no feasible architecture found")
    text = best[2].to_json()
    return OptimumEstimate(bench.name, b, obj, float(best[0]),
                           text if isinstance(text, str) else json.dumps(text, sort_keys=True),
                           bench.evaluate(best[2], 0), int(n_random), n_eval, n_screen, n_feas,
                           int(seed), f"{n_random} random + {n_starts} x {n_climb} hill-climbing "
                                      "mutations")


#: :func:`estimate_optimum` for the default benchmarks and bounds, with a large budget
#: (``value``: best feasible error; ``budget``: the call that produced it).
REFERENCE_OPTIMA: dict = {
    'granular': {
        "value": 0.028277755913955545,
        "bounds": {'error': 0.3, 'peak_sram_bytes': 2500, 'weights_bytes': 4500, 'macs': 30000000},
        "n_evaluated": 1791, "n_screened": 3094,
        "call": 'estimate_optimum(bench, n_random=3000, n_starts=8, n_climb=400, seed=0)',
        "arch": '{"arch": {"blocks": [{"branch": null, "layers": [{"batch_norm": true, "filters": 0, "kernel": 7, "relu": true, "stride": 1, "type": "dwconv"}], "pool": false}, {"branch": null, "layers": [{"batch_norm": true, "filters": 6, "kernel": 5, "relu": true, "stride": 1, "type": "conv"}], "pool": true}, {"branch": null, "layers": [{"batch_norm": true, "filters": 10, "kernel": 7, "relu": true, "stride": 1, "type": "conv"}, {"batch_norm": true, "filters": 0, "kernel": 5, "relu": true, "stride": 1, "type": "dwconv"}, {"batch_norm": true, "filters": 17, "kernel": 3, "relu": true, "stride": 2, "type": "conv"}], "pool": false}, {"branch": null, "layers": [{"batch_norm": true, "filters": 5, "kernel": 1, "relu": true, "stride": 1, "type": "conv1x1"}], "pool": false}], "dense": [{"relu": true, "units": 22}, {"relu": true, "units": 30}], "pool_size": 2, "pooling": "avg", "space": "granular"}, "sparsity": 0.45}',
    },
    'sparse': {
        "value": 0.016340934170975634,
        "bounds": {'error': 0.15, 'model_size': 2867, 'working_memory': 2048, 'peak_sram_bytes': None, 'model_size_indexed': None},
        "n_evaluated": 1878, "n_screened": 2715,
        "call": 'estimate_optimum(bench, n_random=3000, n_starts=8, n_climb=400, seed=0)',
        "arch": '{"arch":{"blocks":[{"branch":{"batch_norm":true,"kernel":1,"relu":true,"type":"conv1x1"},"layers":[{"batch_norm":true,"filters":5,"kernel":5,"relu":true,"stride":2,"type":"conv"},{"batch_norm":true,"filters":13,"kernel":1,"relu":true,"stride":2,"type":"conv1x1"}],"pool":false},{"branch":null,"layers":[{"batch_norm":true,"filters":0,"kernel":5,"relu":true,"stride":1,"type":"dwconv"},{"batch_norm":true,"filters":16,"kernel":5,"relu":true,"stride":1,"type":"conv"}],"pool":false},{"branch":null,"layers":[{"batch_norm":true,"filters":12,"kernel":3,"relu":true,"stride":2,"type":"conv"}],"pool":false}],"dense":[],"pool_size":3,"pooling":"max","space":"granular"},"lr":0.003688,"sparsity":0.6625,"structured":false}',
    },
    'subnet': {
        "value": 0.03226461598431269,
        "bounds": {'error': 0.09, 'peak_sram_bytes': 8192, 'flash_bytes': 262144, 'macs': None},
        "n_evaluated": 2757, "n_screened": 3272,
        "call": 'estimate_optimum(bench, n_random=3000, n_starts=8, n_climb=400, seed=0)',
        "arch": '{"block_space":{"depths":[2,3,4],"divisor":8,"expansions":[3,4,6],"first_channels":16,"kernels":[3,5,7],"resolutions":[20,24,28],"stages":[[24,2],[40,2],[80,2],[96,1]],"stem":[16,2],"widths":[0.5]},"resolution":28,"space":"block","stages":[[[3,5],[3,7],[3,5]],[[6,3],[4,7],[6,7]],[[4,7],[6,3],[4,7],[6,5]],[[3,3],[4,5]]],"width":0.5}',
    },
}


def reference_optimum(name: str) -> float:
    """The recorded best feasible error of benchmark ``name`` under its default bounds.
    Taught in the search-quality tests.
    """
    return float(REFERENCE_OPTIMA[name]["value"])


def best_feasible(result, objective: str | None = None) -> float:
    """Lowest ``objective`` (default: the first) over the feasible completed trials; inf if none.
    Taught in the search-quality tests.
    """
    obj = objective or result.objectives[0]
    c = result.completed
    c = c[c.feasible.astype(bool)]
    return float(c[obj].min()) if len(c) else math.inf


def regret(result, optimum) -> float:
    """``best_feasible(result) - optimum`` (``optimum``: a number or an :class:`OptimumEstimate`).
    Taught in the search-quality tests.
    """
    v = optimum.value if isinstance(optimum, OptimumEstimate) else float(optimum)
    return best_feasible(result) - v

"""The floating-point arithmetic a run's notebooks train under: the machine's facts recorded in
``run.json``, and the *portable arithmetic*, the default of ``make run`` and ``publish`` wherever
the CPU can run it, which pins every kernel training reaches to the same code and one thread.

Taught in the README (Reproducibility). May import: nothing of the package (layer 0).
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
from pathlib import Path

#: Environment variables that change a run's floating-point arithmetic (kernels, threads).
ARITHMETIC_ENV = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
                  "NPY_DISABLE_CPU_FEATURES", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
                  "CUDA_VISIBLE_DEVICES", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL")
_SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")


def machine_facts() -> dict:
    """What a run's arithmetic depends on besides the code (kept in ``run.json``): CPU model, logical
    cores and those this process may use (``taskset``), the SIMD extensions oneDNN and OpenBLAS
    choose kernels by, the cache sizes in KiB (``cache_kib``: Eigen sizes its matrix-product blocks,
    and so the order of the sums, by them; no variable pins that, see :func:`portable_env`), and the
    environment variables of :data:`ARITHMETIC_ENV` that are set. Two runs whose figures differ on
    the same code differ here. Taught in the README."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware") and model in ("", platform.machine(), platform.processor()):
                    model = val.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(val.split())
    except OSError:  # not Linux: the model from platform only
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "arch": platform.machine(), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "simd": [x for x in _SIMD if x in flags], "cache_kib": cache_sizes(),
            "env": {k: os.environ[k] for k in ARITHMETIC_ENV if k in os.environ}}


def cache_sizes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """The first core's caches as Linux lists them, in KiB: ``{"L1d": 48, "L1i": 32, "L2": 1024,
    "L3": 32768}``; empty where the system does not say (not Linux). Recorded by
    :func:`machine_facts`. Taught in the README."""
    sizes: dict[str, int] = {}
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return sizes
    units = {"K": 1, "M": 1024, "G": 1024 * 1024}
    for entry in entries:
        try:
            level, kind, size = (Path(root, entry, name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        m = re.fullmatch(r"(\d+)([KMG]?)", size)
        if not m:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        sizes[name] = int(m.group(1)) * units.get(m.group(2) or "K", 1)
    return sizes


class PortableUnavailable(RuntimeError):
    """This CPU cannot run the portable arithmetic (:func:`portable_env`)."""


#: NumPy dispatch targets above AVX2 (disabled in the portable arithmetic).
_NPY_ABOVE_AVX2 = re.compile(r"^(X86_V4|AVX512.*|AMX.*|AVX10.*)$")


def portable_env(cpu_flags: set[str] | None = None, arch: str | None = None,
                 numpy_features: dict[str, bool] | None = None,
                 numpy_dispatch: list[str] | None = None) -> dict[str, str]:
    """The environment of the *portable arithmetic* (the default of ``make run``): every floating-point
    kernel a notebook's training reaches is pinned to the same code on any x86-64 CPU with AVX2 and
    FMA, and to one thread, so figures do not depend on the core count (measured:
    ``results/20261203-portable``) nor on vector units wider than AVX2.

    What it cannot pin: Eigen (TensorFlow's matrix products and reductions) sizes its blocks by the
    CPU's cache sizes as ``cpuid`` reports them, and no variable overrides that, so two CPUs with
    other caches sum in another order and train to other last bits (measured under QEMU:
    ``results/20261203-second-cpu``; 48 KiB L1d here gives 576-deep product blocks, 32 KiB gives
    384). Figures repeat exactly across machines with the same caches (``machine_facts()["cache_kib"]``);
    elsewhere the verdicts, with their intervals, are what must repeat.

    - ``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's own (Eigen) kernels instead of oneDNN's layer kernels;
    - ``ONEDNN_MAX_CPU_ISA=AVX2``: Eigen's matrix products still call oneDNN's sgemm, which picks its
      kernel by CPU at run time (measured: with oneDNN's layer kernels off, this variable alone
      changes a trained model's weights; 1 vs 2 cores does not);
    - one TensorFlow, OpenMP and OpenBLAS thread; OpenBLAS held to its Haswell (AVX2) kernels;
    - NumPy's dispatch targets above AVX2 disabled (those this NumPy build has and this CPU runs).

    Raises :class:`PortableUnavailable` on a CPU without AVX2 and FMA (it cannot run the pinned kernels).
    The arguments default to this machine (``/proc/cpuinfo``, ``platform``, NumPy). Taught in the README.
    """
    arch = arch or platform.machine()
    if cpu_flags is None:
        cpu_flags = machine_facts()["simd"]
    if arch.lower() not in ("x86_64", "amd64") or not {"avx2", "fma"} <= set(cpu_flags):
        raise PortableUnavailable(f"the portable arithmetic needs an x86-64 CPU with AVX2 and FMA; this one is "
                                  f"{arch} with {'AVX2' if 'avx2' in cpu_flags else 'no AVX2'} and "
                                  f"{'FMA' if 'fma' in cpu_flags else 'no FMA'} (--arithmetic native runs without it)")
    if numpy_features is None or numpy_dispatch is None:
        from numpy._core import _multiarray_umath as npu
        numpy_features, numpy_dispatch = dict(npu.__cpu_features__), list(npu.__cpu_dispatch__)
    off = [f for f in numpy_dispatch if _NPY_ABOVE_AVX2.match(f) and numpy_features.get(f)]
    env = {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX2", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "OPENBLAS_CORETYPE": "Haswell"}
    if off:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(off)
    return env


ARITHMETICS = ("auto", "portable", "native")


def choose_arithmetic(arithmetic: str = "auto") -> str:
    """Resolve the arithmetic a run asks for (``"auto"``, ``"portable"`` or ``"native"``) to the one
    it runs under, ``"portable"`` or ``"native"``. ``"auto"`` (the default of ``make run`` and of
    ``publish``) is portable wherever this CPU can run it (:func:`portable_env`) and native, with a
    printed warning, where it cannot: the committed notebooks ran portable, so a native run may
    round differently. ``"portable"`` on such a CPU raises :class:`PortableUnavailable`. Taught in
    the README."""
    if arithmetic not in ARITHMETICS:
        raise ValueError(f"arithmetic {arithmetic!r} is not one of {', '.join(ARITHMETICS)}")
    if arithmetic == "native":
        return "native"
    try:
        portable_env()
    except PortableUnavailable as exc:
        if arithmetic == "portable":
            raise
        print(f"warning: {exc}; running with the native arithmetic, so figures (and a verdict near its "
              f"boundary) may differ from the committed ones, which ran portable", flush=True)
        return "native"
    return "portable"


@contextlib.contextmanager
def arithmetic_env(arithmetic: str):
    """This process's environment while one run's notebooks execute (their kernels and search
    workers inherit it): under ``"portable"`` the pinned variables (:func:`use_portable_arithmetic`),
    under ``"native"`` whatever the user set. The variables of ``ARITHMETIC_ENV`` are restored
    afterwards. Taught in the README."""
    saved = {k: os.environ.get(k) for k in ARITHMETIC_ENV}
    try:
        if arithmetic == "portable":
            use_portable_arithmetic()
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def use_portable_arithmetic() -> dict[str, str]:
    """Put :func:`portable_env` into this process's environment, which the notebook kernels (and
    their search workers) inherit; returns it. Variables the user had set otherwise are reported,
    then overridden. Taught in the README."""
    env = portable_env()
    changed = [f"{k}={os.environ[k]}" for k, v in env.items() if k in os.environ and os.environ[k] != v]
    if changed:
        print("portable arithmetic overrides " + ", ".join(changed), flush=True)
    os.environ.update(env)
    return env

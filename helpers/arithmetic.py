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
                  "CUDA_VISIBLE_DEVICES", "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL", "TINYNAS_EIGEN_CACHES")
_SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "asimd", "sve")


def machine_facts() -> dict:
    """What a run's arithmetic depends on besides the code (kept in ``run.json``): CPU model, logical
    cores and those this process may use (``taskset``), the SIMD extensions oneDNN and OpenBLAS
    choose kernels by, the cache sizes in KiB (``cache_kib``: Eigen sizes its matrix-product blocks,
    and so the order of the sums, by them unless pinned, see :func:`pin_eigen_caches`), and the
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
    ``results/20261203-portable``), on vector units wider than AVX2, nor on the CPU's cache sizes.

    - ``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's own (Eigen) kernels instead of oneDNN's layer kernels;
    - ``ONEDNN_MAX_CPU_ISA=AVX2``: Eigen's matrix products still call oneDNN's sgemm, which picks its
      kernel by CPU at run time (measured: with oneDNN's layer kernels off, this variable alone
      changes a trained model's weights; 1 vs 2 cores does not);
    - one TensorFlow, OpenMP and OpenBLAS thread; OpenBLAS held to its Haswell (AVX2) kernels;
    - NumPy's dispatch targets above AVX2 disabled (those this NumPy build has and this CPU runs);
    - Eigen's cache sizes (``TINYNAS_EIGEN_CACHES``, :func:`pin_eigen_caches`): Eigen, under
      TensorFlow's matrix products, convolutions and reductions, sizes its blocks, and so the order
      of its sums, by the caches ``cpuid`` reports; each process that imports :mod:`helpers` writes
      those of the committed runs' CPU (:data:`PORTABLE_EIGEN_CACHES`) into Eigen's record instead.
      Measured under QEMU (``results/20261204-eigen-pin``): on two emulated CPUs with other caches
      19 of 24 probed float ops then give this machine's bits, every product, convolution and
      reduction among them (9 of 24 differed without the pin).

    What it cannot pin: Eigen's fast reciprocal and reciprocal square root (softmax, batch
    normalisation) refine the CPU's ``rcpps`` / ``rsqrtps`` approximations, which x86 specifies only
    to a relative error of 1.5 × 2⁻¹²; another vendor's (or QEMU's exact ones) give other last bits,
    so training can still round differently there, and the verdicts, with their intervals, are what
    must repeat.

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
           "OPENBLAS_CORETYPE": "Haswell", EIGEN_CACHES_ENV: ",".join(map(str, PORTABLE_EIGEN_CACHES))}
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
def arithmetic_env(arithmetic: str, eigen_caches: str | None = None):
    """This process's environment while one run's notebooks execute (their kernels and search
    workers inherit it): under ``"portable"`` the pinned variables (:func:`use_portable_arithmetic`),
    under ``"native"`` whatever the user set. ``eigen_caches`` (portable only) replaces the pin of
    Eigen's cache sizes: ``"L1,L2,L3"`` in bytes, or ``"cpuid"`` for this CPU's own, to compute what
    a CPU with other caches computed without the pin. The variables of ``ARITHMETIC_ENV`` are
    restored afterwards. Taught in the README."""
    check_eigen_caches(eigen_caches, arithmetic)
    saved = {k: os.environ.get(k) for k in ARITHMETIC_ENV}
    try:
        if arithmetic == "portable":
            use_portable_arithmetic()
            if eigen_caches is not None:
                set_eigen_caches(os.environ, eigen_caches)
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


# --- Eigen's cache sizes --------------------------------------------------------------------------
#: The cache sizes (bytes: L1, L2, L3) Eigen reads with ``cpuid`` on the machine the committed
#: notebooks ran on (a 2-core AMD EPYC: 48 KiB L1d, 1 MiB L2, and the L3 as Eigen's AMD query
#: reports it). The portable arithmetic pins these on every CPU (:func:`pin_eigen_caches`).
PORTABLE_EIGEN_CACHES = (49152, 1048576, 402653184)
#: The environment variable that asks each process that imports :mod:`helpers` to pin them.
EIGEN_CACHES_ENV = "TINYNAS_EIGEN_CACHES"
#: Eigen's function-local ``static CacheSizes m_cacheSizes`` (three ``ptrdiff_t``: L1, L2, L3) in
#: ``manage_caching_sizes``, which sizes the blocks of every matrix product and tensor expression,
#: and the guard byte of its one-time initialisation from ``cpuid``.
_EIGEN_CACHES_SYM = "_ZZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes"
_EIGEN_GUARD_SYM = "_ZGVZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes"
#: TensorFlow's libraries that carry a copy of it (each its own: the kernels' copy is a local symbol).
_TF_EIGEN_LIBS = ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2", "lite/python/libpywrap_tflite_common.so")


class EigenCachesUnavailable(RuntimeError):
    """TensorFlow's Eigen cache sizes cannot be pinned here (not Linux x86-64 ELF, or a TensorFlow
    build without the symbols)."""


def parse_eigen_caches(text: str) -> tuple[int, int, int]:
    """``"49152,1048576,402653184"`` (bytes, L1, L2, L3) as three positive integers; a clear error
    otherwise. Taught in the README (Reproducibility)."""
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) <= 0:
        raise ValueError(f"{EIGEN_CACHES_ENV}={text!r}: give three positive byte counts, L1,L2,L3 "
                         f"(e.g. {','.join(map(str, PORTABLE_EIGEN_CACHES))})")
    return sizes  # type: ignore[return-value]


def check_eigen_caches(eigen_caches: str | None, arithmetic: str = "portable") -> None:
    """Refuse, with a ``ValueError`` naming it, a replacement of the pin (``"L1,L2,L3"`` bytes or
    ``"cpuid"``) that is malformed or asked of another arithmetic than the portable one; ``None``
    (the pin as it is) passes. Taught in the README (Reproducibility)."""
    if eigen_caches is None:
        return
    if arithmetic != "portable":
        raise ValueError(f"--eigen-caches changes the portable arithmetic's pin; this run is {arithmetic}")
    if eigen_caches != "cpuid":
        parse_eigen_caches(eigen_caches)


def set_eigen_caches(env, eigen_caches: str) -> None:
    """Replace the pin in ``env`` (``os.environ`` or a child's environment): ``"cpuid"`` removes it,
    so Eigen reads this CPU's caches; ``"L1,L2,L3"`` (bytes) pins those. Taught in the README
    (Reproducibility)."""
    if eigen_caches == "cpuid":
        env.pop(EIGEN_CACHES_ENV, None)
    else:
        env[EIGEN_CACHES_ENV] = ",".join(map(str, parse_eigen_caches(eigen_caches)))


def elf_symbols(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, int]:
    """The values (link-time addresses) of the named symbols in an ELF64 little-endian shared
    library, from its ``.symtab`` (local symbols too) and ``.dynsym``; names not found are absent.
    Reads the file through ``mmap``: 0.2 s for TensorFlow's 800 MB kernel library. Taught in the
    README (Reproducibility)."""
    import mmap
    import struct

    import numpy as np

    found: dict[str, int] = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        if m[:4] != b"\x7fELF" or m[4] != 2 or m[5] != 1:
            raise EigenCachesUnavailable(f"{path} is not a 64-bit little-endian ELF file")
        shoff, = struct.unpack_from("<Q", m, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", m, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", m, shoff + i * shentsize) for i in range(shnum)]
        sym_t = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"),
                          ("value", "<u8"), ("size", "<u8")])
        for _, kind, _, _, off, size, link, _, _, _ in sections:
            if kind not in (2, 11):  # SHT_SYMTAB, SHT_DYNSYM
                continue
            str_off, str_end = sections[link][4], sections[link][4] + sections[link][5]
            syms = np.frombuffer(m, dtype=sym_t, count=size // sym_t.itemsize, offset=off)
            for name in names:
                needle, at, starts = name.encode() + b"\0", str_off, []
                while name not in found and (at := m.find(needle, at, str_end)) >= 0:
                    starts.append(at - str_off)  # a name may end a longer string (shared suffixes)
                    at += 1
                hit = np.flatnonzero(np.isin(syms["name"], starts) & (syms["shndx"] != 0)) if starts else []
                if len(hit):
                    found[name] = int(syms["value"][hit[0]])
            del syms
    return found


def _load_base(path: str) -> int:
    """Where the loaded library ``path`` starts in this process (``/proc/self/maps``)."""
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[2] == "00000000" and os.path.realpath(parts[5]) == real:
                return int(parts[0].split("-")[0], 16)
    raise EigenCachesUnavailable(f"{path} is not mapped in this process")


def tensorflow_eigen_libraries() -> list[Path]:
    """TensorFlow's installed libraries that carry Eigen's cache sizes (:data:`_TF_EIGEN_LIBS`),
    found without importing TensorFlow; empty where TensorFlow is not installed. Taught in the
    README (Reproducibility)."""
    import importlib.util

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0])
    return [root / rel for rel in _TF_EIGEN_LIBS if (root / rel).is_file()]


def _eigen_records(load: bool):
    """``(library, record, guard)`` for each TensorFlow library with Eigen's cache record, as ctypes
    views into this process: ``record`` the three sizes, ``guard`` its initialisation byte. ``load``
    loads the libraries (as ``import tensorflow`` would: ``RTLD_LOCAL``, since ``RTLD_GLOBAL`` makes
    TensorFlow crash); otherwise only those already loaded."""
    import ctypes

    for lib in tensorflow_eigen_libraries():
        where = elf_symbols(lib, (_EIGEN_CACHES_SYM, _EIGEN_GUARD_SYM))
        if len(where) < 2:
            continue
        if load:
            ctypes.CDLL(str(lib), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        try:
            base = _load_base(str(lib))
        except EigenCachesUnavailable:
            continue
        yield (lib, (ctypes.c_long * 3).from_address(base + where[_EIGEN_CACHES_SYM]),
               ctypes.c_uint8.from_address(base + where[_EIGEN_GUARD_SYM]))


def pin_eigen_caches(sizes: tuple[int, int, int] = PORTABLE_EIGEN_CACHES) -> dict[str, list[int]]:
    """Make Eigen, in every TensorFlow library of this process, size its blocks for these caches
    (bytes: L1, L2, L3) instead of the ones ``cpuid`` reports: the sum order of every matrix
    product, convolution and reduction then no longer depends on the CPU's caches
    (``results/20261204-eigen-pin``). No environment variable or API of TensorFlow sets them, so
    this loads the libraries (``ctypes``, as ``import tensorflow`` would, with no Python import),
    finds Eigen's ``static`` cache record in ``manage_caching_sizes`` by its ELF symbol and writes
    it, marked initialised, before or after TensorFlow's first operation. Returns, per library, the
    sizes it held before (``[0, 0, 0]``: not yet read from ``cpuid``).

    Called for each process that imports :mod:`helpers` while ``TINYNAS_EIGEN_CACHES`` is set (the
    portable arithmetic sets it), so notebook kernels and search workers pin before they train.
    Raises :class:`EigenCachesUnavailable` off Linux x86-64 or where the kernel library has no such
    symbol (another TensorFlow build). Taught in the README (Reproducibility)."""
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        raise EigenCachesUnavailable(f"pinning Eigen's cache sizes needs Linux on x86-64, not "
                                     f"{platform.system()} on {platform.machine()}")
    if not tensorflow_eigen_libraries():
        raise EigenCachesUnavailable("TensorFlow is not installed: no Eigen cache sizes to pin")
    before: dict[str, list[int]] = {}
    for lib, record, guard in _eigen_records(load=True):
        before[lib.name] = list(record) if guard.value else [0, 0, 0]
        record[0], record[1], record[2] = sizes
        guard.value = 1
    if "libtensorflow_cc.so.2" not in before:
        raise EigenCachesUnavailable("this TensorFlow build has no Eigen cache record in libtensorflow_cc.so.2; "
                                     "figures will follow this CPU's caches")
    return before


def eigen_caches_in_use() -> dict[str, list[int]]:
    """The sizes (bytes: L1, L2, L3) Eigen uses in each TensorFlow library loaded in this process,
    ``[0, 0, 0]`` where it has not read them yet; for checks and the probe of
    ``scripts/emulated_cpu.py``. Taught in the README (Reproducibility)."""
    return {lib.name: list(record) if guard.value else [0, 0, 0] for lib, record, guard in _eigen_records(load=False)}


def pin_eigen_caches_if_asked() -> None:
    """:func:`pin_eigen_caches` with the sizes in ``TINYNAS_EIGEN_CACHES``, when it is set (run at
    the import of :mod:`helpers`). A bad value raises; a TensorFlow that cannot be pinned warns once
    per process, since its figures then follow this CPU's caches. Taught in the README (Reproducibility)."""
    text = os.environ.get(EIGEN_CACHES_ENV)
    if not text:
        return
    sizes = parse_eigen_caches(text)
    try:
        pin_eigen_caches(sizes)
    except EigenCachesUnavailable as exc:
        print(f"warning: {EIGEN_CACHES_ENV} is set but {exc}", flush=True)

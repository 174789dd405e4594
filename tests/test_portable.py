"""The portable arithmetic (the default of `make run` where the CPU can run it): what it pins, where it
refuses or falls back, that a model trained under it is the same on 1 and on 2 cores, and that the
committed notebooks ran under it."""
import json
import os
import subprocess
import sys

import pytest

from helpers import arithmetic, runner
from tests.test_runner_params import _write_nb

_AVX512_NUMPY = {"X86_V3": True, "X86_V4": True, "AVX512_ICL": True, "AVX512_SPR": False, "AVX2": True}
_DISPATCH = ["X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"]


def test_pins_onednn_threads_openblas_and_numpy_above_avx2():
    env = runner.portable_env({"avx2", "fma", "avx512f"}, "x86_64", _AVX512_NUMPY, _DISPATCH)
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "0" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["OPENBLAS_CORETYPE"] == "Haswell"
    assert {env[k] for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
                             "OPENBLAS_NUM_THREADS")} == {"1"}
    # only the targets this CPU would take: SPR is not available here, X86_V3 is AVX2 itself
    assert env["NPY_DISABLE_CPU_FEATURES"] == "X86_V4 AVX512_ICL"
    assert set(env) <= set(runner.ARITHMETIC_ENV)  # run.json records every one of them


def test_an_avx2_cpu_disables_nothing_in_numpy():
    env = runner.portable_env({"avx2", "fma"}, "x86_64", {"X86_V3": True, "X86_V4": False}, _DISPATCH)
    assert "NPY_DISABLE_CPU_FEATURES" not in env and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"


@pytest.mark.parametrize("flags,arch,missing", [({"avx", "fma"}, "x86_64", "no AVX2"),
                                                ({"avx2"}, "x86_64", "no FMA"),
                                                ({"asimd"}, "aarch64", "aarch64")])
def test_refused_where_the_pinned_kernels_cannot_run(flags, arch, missing):
    with pytest.raises(runner.PortableUnavailable, match=missing):
        runner.portable_env(flags, arch, {}, [])


def test_run_hands_it_to_the_kernels_records_it_and_a_resume_keeps_it(tmp_path, monkeypatch, capsys):
    pinned = runner.portable_env()  # this machine (the suite needs AVX2: TensorFlow's wheels do)
    for k in runner.ARITHMETIC_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # a user's own setting is overridden, and said so
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "SEED = 0")
    _write_nb(nbs / "01-demo.ipynb", "SEED = 0")
    (presets / "default.yaml").write_text("{}\n")
    seen = []

    def fake_execute(path, out_dir, params, log=False):
        seen.append({k: os.environ.get(k) for k in pinned})
        if path.stem == "01-demo" and len(seen) == 2:
            raise RuntimeError("interrupted")
        return out_dir / path.name, 0.1

    with pytest.raises(SystemExit):
        runner.run("default", out=tmp_path / "run", arithmetic="portable", nb_dir=nbs, presets_dir=presets,
                   execute_fn=fake_execute)
    assert "overrides OMP_NUM_THREADS=4" in capsys.readouterr().out
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["arithmetic"] == "portable" and meta["machine"]["env"] == pinned
    assert seen == [pinned, pinned]
    for k in runner.ARITHMETIC_ENV:  # the resume finds a clean environment and restores the pinning
        monkeypatch.delenv(k, raising=False)
    runner.run(resume=tmp_path / "run", nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert seen[2] == pinned and len(seen) == 3
    assert all(k not in os.environ for k in runner.ARITHMETIC_ENV)  # this process gets its own back


def _one_notebook(tmp_path):
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "SEED = 0")
    (presets / "default.yaml").write_text("{}\n")
    return nbs, presets


def test_auto_is_portable_where_it_can_be_and_native_with_a_warning_elsewhere(tmp_path, monkeypatch, capsys):
    nbs, presets = _one_notebook(tmp_path)
    seen = []

    def fake_execute(path, out_dir, params, log=False):
        seen.append(os.environ.get("ONEDNN_MAX_CPU_ISA"))
        return out_dir / path.name, 0.1

    for k in runner.ARITHMETIC_ENV:
        monkeypatch.delenv(k, raising=False)
    # a CPU that can run it (whatever this one is)
    monkeypatch.setattr(arithmetic, "portable_env", lambda *a, **k: {"ONEDNN_MAX_CPU_ISA": "AVX2"})
    runner.run("default", out=tmp_path / "a", nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert runner.read_run_json(tmp_path / "a")["arithmetic"] == "portable" and seen == ["AVX2"]

    def no_avx2(*a, **k):
        raise runner.PortableUnavailable("the portable arithmetic needs an x86-64 CPU with AVX2 and FMA")

    monkeypatch.setattr(arithmetic, "portable_env", no_avx2)
    runner.run("default", out=tmp_path / "b", nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert runner.read_run_json(tmp_path / "b")["arithmetic"] == "native" and seen[1] is None
    assert "warning: the portable arithmetic needs" in capsys.readouterr().out
    with pytest.raises(runner.PortableUnavailable):  # asked for explicitly, it refuses before any work
        runner.run("default", out=tmp_path / "c", arithmetic="portable", nb_dir=nbs, presets_dir=presets,
                   execute_fn=fake_execute)
    assert not (tmp_path / "c").exists() and len(seen) == 2
    with pytest.raises(ValueError, match="not one of"):
        runner.choose_arithmetic("fast")


def test_publish_records_the_arithmetic_in_its_run_and_in_the_notebook(tmp_path, monkeypatch):
    import nbformat

    nbs, presets = _one_notebook(tmp_path)
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(arithmetic, "portable_env", lambda *a, **k: {"ONEDNN_MAX_CPU_ISA": "AVX2"})

    def fake_execute(path, out_dir, params, log=False):
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_nb(out_dir / path.name, "SEED = 1")  # "executed"
        return out_dir / path.name, 0.1

    runner.publish("00", nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    (out,) = (tmp_path / "runs").iterdir()
    meta = runner.read_run_json(out)
    assert meta["arithmetic"] == "portable" and meta["notebooks"] == {"00-demo": {}} and meta["wall_seconds"]
    nb = nbformat.read(nbs / "00-demo.ipynb", as_version=4)
    assert nb.metadata["tinynas"]["arithmetic"] == "portable" and "SEED = 1" in nb.cells[0].source


def test_the_cli_reads_arithmetic_and_portable(monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run", lambda *a, **k: calls.append(k["arithmetic"]))
    monkeypatch.setattr(runner, "publish", lambda *a, **k: calls.append(k["arithmetic"]))
    runner.main(["run", "--nb", "00"])
    runner.main(["run", "--portable"])
    runner.main(["run", "--arithmetic", "native"])
    runner.main(["publish", "--nb", "03", "--arithmetic", "native"])
    runner.main(["publish", "--portable"])
    assert calls == ["auto", "portable", "native", "native", "portable"]


def test_every_committed_notebook_ran_under_the_portable_arithmetic():
    import nbformat

    for path in runner.notebooks():
        meta = nbformat.read(path, as_version=4).metadata
        assert meta.get("tinynas", {}).get("arithmetic") == "portable", f"{path.name}: republish it " \
            "(python -m helpers.runner publish --nb NN) on a CPU with AVX2 and FMA"


def test_a_native_run_cannot_be_resumed_portable(tmp_path):
    nbs = tmp_path / "nb"
    nbs.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runner.write_run_json(run_dir, {"preset": "default", "arithmetic": "native", "notebooks": {}})
    with pytest.raises(runner.PresetError, match="native arithmetic"):
        runner.run(resume=run_dir, arithmetic="portable", nb_dir=nbs, execute_fn=lambda *a, **k: None)
    runner.write_run_json(run_dir, {"preset": "default", "arithmetic": "portable", "notebooks": {}})
    with pytest.raises(runner.PresetError, match="portable arithmetic"):
        runner.run(resume=run_dir, arithmetic="native", nb_dir=nbs, execute_fn=lambda *a, **k: None)


_TRAIN = """
import hashlib, numpy as np, tensorflow as tf, keras
keras.utils.set_random_seed(0); tf.config.experimental.enable_op_determinism()
r = np.random.default_rng(0)
x, y = r.standard_normal((256, 16, 16, 1)).astype("float32"), r.integers(0, 10, 256)
m = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
    keras.layers.DepthwiseConv2D(3, activation="relu"), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
m.fit(x, y, batch_size=32, epochs=1, verbose=0)
print(hashlib.sha256(b"".join(w.tobytes() for w in m.get_weights())).hexdigest())
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
                    reason="needs 2 cores and CPU affinity (Linux)")
def test_training_under_it_is_the_same_on_one_and_on_two_cores():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **runner.portable_env())

    def weights(cores):
        return subprocess.run([sys.executable, "-c", _TRAIN], env=env, capture_output=True, text=True, check=True,
                              preexec_fn=lambda: os.sched_setaffinity(0, cores), timeout=300).stdout.strip()

    both = sorted(os.sched_getaffinity(0))[:2]
    assert weights({both[0]}) == weights(set(both))


_PRODUCT = """
import hashlib, json, sys
import helpers  # pins Eigen's cache sizes where TINYNAS_EIGEN_CACHES is set
import numpy as np, tensorflow as tf
from helpers import arithmetic
r = np.random.default_rng(0)
a, b = r.standard_normal((1000, 2304)).astype("float32"), r.standard_normal((2304, 64)).astype("float32")
first = hashlib.sha1((tf.constant(a) @ tf.constant(b)).numpy().tobytes()).hexdigest()
late = sys.argv[1:] and arithmetic.pin_eigen_caches(tuple(int(v) for v in sys.argv[1].split(",")))
print(json.dumps({"first": first, "late": hashlib.sha1((tf.constant(a) @ tf.constant(b)).numpy().tobytes()).hexdigest(),
                  "in_use": arithmetic.eigen_caches_in_use()}))
"""
_HERE_ON_COMMITTED = (49152, 1048576, 402653184)  # the committed runs' CPU (arithmetic.PORTABLE_EIGEN_CACHES)
_ROME = (32768, 524288, 16777216)  # what Eigen reads on an AMD EPYC Rome (measured under QEMU's EPYC-Rome-v2)


def _product(caches, *late):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **runner.portable_env())
    if caches is None:
        env.pop(arithmetic.EIGEN_CACHES_ENV)
    else:
        env[arithmetic.EIGEN_CACHES_ENV] = ",".join(map(str, caches))
    out = subprocess.run([sys.executable, "-c", _PRODUCT, *late], env=env, capture_output=True, text=True,
                         timeout=300, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_pinned_cache_sizes_set_the_sum_order_of_a_product_in_every_library():
    ours, rome, own = _product(_HERE_ON_COMMITTED), _product(_ROME), _product(None)
    libs = {p.name for p in arithmetic.tensorflow_eigen_libraries()}
    assert "libtensorflow_cc.so.2" in libs
    assert ours["in_use"] == {lib: list(_HERE_ON_COMMITTED) for lib in libs}
    assert rome["in_use"] == {lib: list(_ROME) for lib in libs}
    # 576-deep blocks against 384-deep ones (results/20261203-second-cpu): other last bits
    assert ours["first"] != rome["first"]
    # unpinned, Eigen reads this CPU's caches; pinning those very sizes changes nothing
    cpuid = own["in_use"]["libtensorflow_cc.so.2"]
    assert min(cpuid) > 0 and _product(tuple(cpuid))["first"] == own["first"]
    # pinned after TensorFlow's first product (read from cpuid by then), the next one follows the pin
    assert _product(None, ",".join(map(str, _ROME)))["late"] == rome["first"]


def test_portable_pins_the_committed_runs_cache_sizes():
    env = runner.portable_env({"avx2", "fma"}, "x86_64", {}, [])
    assert arithmetic.parse_eigen_caches(env[arithmetic.EIGEN_CACHES_ENV]) == arithmetic.PORTABLE_EIGEN_CACHES
    assert arithmetic.EIGEN_CACHES_ENV in runner.ARITHMETIC_ENV


@pytest.mark.parametrize("text", ["", "1,2", "a,b,c", "1,2,-3", "1,2,3,4"])
def test_bad_cache_sizes_are_refused_with_an_example(text):
    with pytest.raises(ValueError, match="three positive byte counts"):
        arithmetic.parse_eigen_caches(text)


def test_elf_symbols_refuses_a_file_that_is_not_elf(tmp_path):
    (tmp_path / "x.so").write_bytes(b"not an ELF file at all")
    with pytest.raises(arithmetic.EigenCachesUnavailable, match="not a 64-bit"):
        arithmetic.elf_symbols(tmp_path / "x.so", ("main",))


def test_a_run_hands_other_cache_sizes_to_its_kernels_and_a_resume_keeps_them(tmp_path, monkeypatch):
    nbs, presets = _one_notebook(tmp_path)
    _write_nb(nbs / "01-demo.ipynb", "SEED = 0")
    seen = []

    def fake_execute(path, out_dir, params, log=False):
        seen.append(os.environ.get(arithmetic.EIGEN_CACHES_ENV))
        if len(seen) == 2:
            raise RuntimeError("interrupted")
        return out_dir / path.name, 0.1

    for k in runner.ARITHMETIC_ENV:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(runner.PresetError, match="portable arithmetic's pin; this run is native"):
        runner.run("default", out=tmp_path / "n", arithmetic="native", eigen_caches="1,2,3", nb_dir=nbs,
                   presets_dir=presets, execute_fn=fake_execute)
    with pytest.raises(runner.PresetError, match="three positive byte counts"):
        runner.run("default", out=tmp_path / "b", arithmetic="portable", eigen_caches="32768", nb_dir=nbs,
                   presets_dir=presets, execute_fn=fake_execute)
    assert not (tmp_path / "n").exists() and not (tmp_path / "b").exists() and not seen
    with pytest.raises(SystemExit):
        runner.run("default", out=tmp_path / "r", arithmetic="portable", eigen_caches="32768,524288,16777216",
                   nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert runner.read_run_json(tmp_path / "r")["eigen_caches"] == "32768,524288,16777216"
    runner.run(resume=tmp_path / "r", nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert seen == ["32768,524288,16777216"] * 3
    runner.run("default", out=tmp_path / "c", arithmetic="portable", eigen_caches="cpuid", nb_dir=nbs,
               presets_dir=presets, execute_fn=lambda p, o, params, log=False: (seen.append(
                   os.environ.get(arithmetic.EIGEN_CACHES_ENV)), (o / p.name, 0.1))[1])
    assert seen[3:] == [None, None] and arithmetic.EIGEN_CACHES_ENV not in os.environ

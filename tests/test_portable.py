"""The portable arithmetic (`make run PORTABLE=1`): what it pins, where it refuses, and that a model
trained under it is the same on 1 and on 2 cores."""
import json
import os
import subprocess
import sys

import pytest

from helpers import runner
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
        runner.run("default", out=tmp_path / "run", portable=True, nb_dir=nbs, presets_dir=presets,
                   execute_fn=fake_execute)
    assert "overrides OMP_NUM_THREADS=4" in capsys.readouterr().out
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["arithmetic"] == "portable" and meta["machine"]["env"] == pinned
    assert seen == [pinned, pinned]
    for k in runner.ARITHMETIC_ENV:  # the resume finds a clean environment and restores the pinning
        monkeypatch.delenv(k, raising=False)
    runner.run(resume=tmp_path / "run", nb_dir=nbs, presets_dir=presets, execute_fn=fake_execute)
    assert seen[2] == pinned and len(seen) == 3


def test_a_native_run_cannot_be_resumed_portable(tmp_path):
    nbs = tmp_path / "nb"
    nbs.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runner.write_run_json(run_dir, {"preset": "default", "arithmetic": "native", "notebooks": {}})
    with pytest.raises(runner.PresetError, match="native arithmetic"):
        runner.run(resume=run_dir, portable=True, nb_dir=nbs, execute_fn=lambda *a, **k: None)


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

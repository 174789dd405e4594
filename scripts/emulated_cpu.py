"""Run notebooks, or a probe of TensorFlow's float kernels, on another x86-64 CPU model emulated by
QEMU's user mode (issue 17: "two default runs of the same notebook on different machines give the
same verdict", with no second machine at hand).

Needs ``qemu-x86_64`` (Debian: ``apt-get install qemu-user``, 7.2 or later for AVX2 and FMA); it is
not a dependency of the project. QEMU reports the model's CPUID (vendor, SIMD, cache sizes) to the
program and computes IEEE arithmetic in software: measured 10x slower than natively for notebook 00,
about 50x for notebook 04's DNAS searches, about 35x for notebook 01's trainings. Memory grows too: notebook
01's kernel reached 21.8 GB resident under QEMU, and it was killed for memory beside ``make test``.

    # the notebook kernel runs under the emulated CPU, the runner natively (portable by default)
    .venv/bin/python scripts/emulated_cpu.py run --cpu Haswell-v4 -- --nb 00 --out runs/check-haswell-a
    # which of a fixed set of TensorFlow ops give other bits than on this CPU, and the depth of
    # Eigen's matrix-product blocks (read from oneDNN's verbose log), under the portable arithmetic
    # (Eigen's cache sizes pinned, helpers.arithmetic.pin_eigen_caches)
    .venv/bin/python scripts/emulated_cpu.py probe --cpu Haswell-v4 --out results/.../probe-haswell.json
    # the same with the emulated CPU's own cache sizes (as before the pin), or this CPU with another's
    .venv/bin/python scripts/emulated_cpu.py probe --cpu Haswell-v4 --eigen-caches cpuid
    .venv/bin/python scripts/emulated_cpu.py probe --eigen-caches 32768,4194304,16777216

Only the notebook kernel is emulated: a process it starts by ``exec`` (search workers of notebook
02, the TFLite-Micro and unicorn tools) runs on this CPU. Notebooks that train in their kernel
(00, 01, 03 with WORKERS 1, 04, 05, 06) are emulated where their float arithmetic happens.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _qemu() -> str:
    exe = shutil.which("qemu-x86_64")
    if not exe:
        raise SystemExit("scripts/emulated_cpu.py needs qemu-x86_64 (Debian: apt-get install qemu-user)")
    return exe


def _check_model(qemu: str, cpu: str) -> None:
    models = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True).stdout
    if not re.search(rf"^x86\s+{re.escape(cpu)}\s", models, re.M):
        raise SystemExit(f"QEMU has no CPU model {cpu!r}; `qemu-x86_64 -cpu help` lists them (e.g. Haswell-v4, "
                         f"EPYC-Rome-v2, Skylake-Client-v4)")


def kernelspec_dir(qemu: str, cpu: str, where: Path) -> Path:
    """A Jupyter path whose ``python3`` kernel runs this interpreter under ``qemu-x86_64 -cpu CPU``."""
    spec = where / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [qemu, "-cpu", cpu, sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 (QEMU {cpu})", "language": "python", "metadata": {"debugger": False}},
        indent=1))
    return where


def cmd_run(args: argparse.Namespace) -> int:
    qemu = _qemu()
    _check_model(qemu, args.cpu)
    rest = [a for a in args.runner_args if a != "--"]
    if not rest:
        raise SystemExit("give the runner's arguments after --, e.g. -- --nb 00 --out runs/check-haswell")
    with tempfile.TemporaryDirectory(prefix="tinynas-qemu-") as tmp:
        env = dict(os.environ, JUPYTER_PATH=str(kernelspec_dir(qemu, args.cpu, Path(tmp))),
                   PYTHONPATH=str(ROOT), PYTHONHASHSEED=os.environ.get("PYTHONHASHSEED", "0"))
        print(f"notebook kernels under qemu-x86_64 -cpu {args.cpu}", flush=True)
        return subprocess.call([sys.executable, "-m", "helpers.runner", "run", *rest], env=env, cwd=ROOT)


def _probe_ops() -> dict[str, str]:
    """SHA-1 prefixes of a fixed set of float ops (products, convolutions and their gradients,
    reductions, elementwise), seeded."""
    import numpy as np
    import tensorflow as tf

    def h(t) -> str:
        return hashlib.sha1(np.asarray(t).tobytes()).hexdigest()[:12]

    g = tf.random.Generator.from_seed(1)
    out = {}
    for m, k, n in [(64, 64, 64), (512, 288, 32), (3136, 144, 16), (1000, 2304, 64), (256, 4096, 256)]:
        out[f"matmul_{m}x{k}x{n}"] = h(g.normal((m, k)) @ g.normal((k, n)))
    x, w, dw = g.normal((8, 49, 10, 16)), g.normal((3, 3, 16, 32)), g.normal((3, 3, 16, 1))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, w, dw])
        y = tf.nn.conv2d(x, w, 1, "SAME")
        z = tf.nn.depthwise_conv2d(x, dw, [1, 1, 1, 1], "SAME")
        ly, lz = tf.reduce_sum(y ** 2), tf.reduce_sum(z ** 2)
    out["conv2d"], out["depthwise"] = h(y), h(z)
    out["conv2d_grad_filter"], out["conv2d_grad_input"] = (h(t) for t in tape.gradient(ly, [w, x]))
    out["depthwise_grad_filter"], out["depthwise_grad_input"] = (h(t) for t in tape.gradient(lz, [dw, x]))
    out["reduce_sum_1e5"] = h(tf.reduce_sum(g.normal((100000,))))
    out["reduce_mean_axes"] = h(tf.reduce_mean(g.normal((64, 1000, 16)), axis=[0, 1]))
    out["softmax"] = h(tf.nn.softmax(g.normal((64, 12))))
    out["exp"], out["tanh"] = h(tf.exp(g.normal((10000,)))), h(tf.tanh(g.normal((10000,))))
    # Eigen's fast reciprocal and reciprocal square root (batch normalisation) start from the CPU's
    # rcpps / rsqrtps approximations, whose bits are the vendor's (and QEMU's are exact)
    pos = tf.abs(g.normal((10000,))) + 0.1
    out["rsqrt"], out["reciprocal"] = h(tf.math.rsqrt(pos)), h(tf.math.reciprocal(pos))
    out["divide"], out["sqrt"] = h(g.normal((10000,)) / pos), h(tf.sqrt(pos))
    # what training reaches: the loss of every notebook's classifiers and Keras' batch normalisation
    logits, labels = g.normal((64, 12)), tf.constant(np.arange(64) % 12)
    bn_x, scale, offset = g.normal((8, 49, 10, 16)), g.normal((16,)), g.normal((16,))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([logits, bn_x, scale])
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        bn = tf.compat.v1.nn.fused_batch_norm(bn_x, scale, offset, is_training=True)[0]
        lb = tf.reduce_sum(bn ** 2)
    out["sparse_xent"], out["sparse_xent_grad"] = h(xent), h(tape.gradient(xent, logits))
    out["fused_batch_norm"], out["fused_batch_norm_grad"] = h(bn), h(tape.gradient(lb, bn_x))
    return out


def cmd_probe(args: argparse.Namespace) -> int:
    from helpers.arithmetic import EIGEN_CACHES_ENV, eigen_caches_in_use, machine_facts, portable_env, set_eigen_caches

    if args.inner:
        ops = _probe_ops()
        print(json.dumps({"ops": ops, "eigen_caches": eigen_caches_in_use().get("libtensorflow_cc.so.2")}))
        return 0
    env = dict(os.environ, **portable_env(), TF_CPP_MIN_LOG_LEVEL="3", ONEDNN_VERBOSE="1")
    if args.eigen_caches:
        set_eigen_caches(env, args.eigen_caches)
    cmd = [sys.executable, __file__, "probe", "--inner"]
    if args.cpu:
        qemu = _qemu()
        _check_model(qemu, args.cpu)
        cmd = [qemu, "-cpu", args.cpu, *cmd]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise SystemExit(f"the probe failed ({res.returncode}):\n{res.stderr[-2000:]}")
    lines = res.stdout.splitlines()
    inner = json.loads(next(ln for ln in reversed(lines) if ln.startswith("{")))
    ops = inner["ops"]
    # oneDNN logs each sgemm Eigen's contraction hands it: MxK:KxN, one line per block
    blocks = [m.group(1) for ln in lines if "gemm_api" in ln and ",lda:2304 " in ln
              for m in [re.search(r",,(\d+x\d+:\d+x\d+),", ln)] if m]
    host = {k: v for k, v in machine_facts().items() if k != "env"}
    record = {"cpu": f"QEMU {args.cpu}" if args.cpu else host["cpu"], "host": host,
              "arithmetic": "portable", "eigen_caches_pinned": env.get(EIGEN_CACHES_ENV),
              "eigen_caches_used": inner["eigen_caches"], "ops": ops,
              "matmul_1000x2304x64_blocks": sorted(set(blocks))}
    if args.compare:
        other = json.loads(Path(args.compare).read_text())["ops"]
        record["differ_from_" + Path(args.compare).stem] = sorted(k for k in ops if k in other and other[k] != ops[k])
    text = json.dumps(record, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="helpers.runner run with the notebook kernel on an emulated CPU")
    r.add_argument("--cpu", default="Haswell-v4", help="a QEMU x86 CPU model (default Haswell-v4)")
    r.add_argument("runner_args", nargs=argparse.REMAINDER, help="-- then the arguments of helpers.runner run")
    p = sub.add_parser("probe", help="hash a fixed set of TensorFlow float ops under the portable arithmetic")
    p.add_argument("--cpu", help="a QEMU x86 CPU model; this CPU when omitted")
    p.add_argument("--out", help="write the record (JSON) here too")
    p.add_argument("--compare", help="a probe record to list the differing ops against")
    p.add_argument("--eigen-caches", help="L1,L2,L3 in bytes for Eigen to block by, or 'cpuid' for the CPU's own "
                                          "(default: the portable arithmetic's pin)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    return cmd_run(args) if args.cmd == "run" else cmd_probe(args)


if __name__ == "__main__":
    sys.exit(main())

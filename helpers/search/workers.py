"""Several worker processes on one search: keras-tuner's gRPC chief/worker mode, watched.

Taught in 02-aging-evolution (2 workers).  The chief (the notebook's process) serves the
oracle over gRPC; each worker (``python -m helpers.search.workers worker SPEC``) asks it for
trials, trains them and reports back.  The space and functions are sent to the workers with
cloudpickle.  The chief's loop watches its workers: one that dies stops the search at once
with its log tail.

Heavy: imports keras-tuner (TensorFlow); :mod:`helpers.search.drivers` imports it only for a
multi-worker search.  May import: :mod:`helpers.search.store`, :mod:`helpers.search.oracles`,
:mod:`helpers.search.tuner`.
"""
from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time

from helpers.search.oracles import make_oracle
from helpers.search.store import _atomic_write_json
from helpers.search.tuner import ArchTuner


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dump_spec(spec: dict, path: str) -> None:
    try:
        import cloudpickle as pk  # pickles notebook-defined functions by value
    except ImportError:  # pragma: no cover
        pk = pickle
    try:
        data = pk.dumps(spec)
    except Exception as e:
        raise ValueError("with workers > 1 the space, evaluate, resources and arch_from_json "
                         f"must be picklable to start worker processes: {e}") from e
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def _start_workers(d, workers, ip, port, spec):
    wdir = os.path.join(d, "workers")
    os.makedirs(wdir, exist_ok=True)
    spec_path = os.path.join(wdir, "spec.pkl")
    _atomic_write_json(spec_path + ".json", {"sys_path": spec["sys_path"], "cwd": spec["cwd"]})
    _dump_spec(spec, spec_path)
    procs = []
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for i in range(workers):
        env = dict(os.environ, KERASTUNER_TUNER_ID=f"worker{i}", KERASTUNER_ORACLE_IP=ip,
                   KERASTUNER_ORACLE_PORT=str(port),
                   PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log = open(os.path.join(wdir, f"worker{i}.log"), "ab")
        p = subprocess.Popen([sys.executable, "-m", "helpers.search.workers", "worker", spec_path],
                             env=env, stdout=log, stderr=subprocess.STDOUT, cwd=spec["cwd"])
        p._tinynas_log = log  # closed by _serve
        procs.append(p)
    return procs


def _serve(oracle, ip, port, procs, d, timeout_s):
    """keras-tuner's chief (OracleServicer over gRPC) with a fast, watchful main loop."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(f"{ip}:{port}")
    server.start()
    t0 = time.monotonic()
    err = None
    try:
        while True:
            time.sleep(0.05)
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                if not procs:
                    break
            states = [p.poll() for p in procs]
            dead = [(i, rc) for i, rc in enumerate(states) if rc not in (None, 0)]
            if dead:  # the trial it held would stay RUNNING: the others could wait for it forever
                err = dead
                break
            if procs and all(rc is not None for rc in states):
                break
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                err = "timeout"
                break
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    p.wait(timeout=10 if err is None else 0.1)
                except subprocess.TimeoutExpired:
                    p.terminate()
                    p.wait(timeout=10)
            p._tinynas_log.close()
        server.stop(grace=None)
        oracle.save()
    if err:
        tails = []
        for i in range(len(procs)):
            with open(os.path.join(d, "workers", f"worker{i}.log"), "rb") as f:
                tails.append(f"--- worker{i} ---\n" + f.read()[-3000:].decode(errors="replace"))
        raise RuntimeError(f"search workers failed ({err}); the search can be resumed.\n" + "\n".join(tails))


def _run_worker(oracle, evaluate, parent, name):
    tuner = ArchTuner(oracle, evaluate, directory=parent, project_name=name)
    tuner.search()


def _worker_main(spec_path: str) -> None:
    with open(spec_path + ".json") as f:  # sys.path first: unpickling imports modules
        for p in reversed(json.load(f)["sys_path"]):
            if p not in sys.path:
                sys.path.insert(0, p)
    with open(spec_path, "rb") as f:
        spec = pickle.load(f)
    oracle = make_oracle(spec["algorithm"], spec["space"], spec["objectives"], spec["bounds"], None,
                          spec["budget"], spec["seed"], spec["cap"], spec["arch_from_json"], {})
    _run_worker(oracle, spec["evaluate"], spec["parent"], spec["name"])


if __name__ == "__main__":  # python -m helpers.search.workers worker SPEC
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip TensorFlow's slow interpreter teardown; all state is on disk
    else:
        sys.exit("usage: python -m helpers.search.workers worker SPEC_PICKLE")

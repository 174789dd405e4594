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
import signal
import socket
import subprocess
import sys
import threading
import time

from helpers.search.oracles import make_oracle
from helpers.search.store import SearchFailedError, _atomic_write_json
from helpers.search.tuner import ArchTuner


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
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


def _write_spec(d: str, ip: str, port: int, spec: dict) -> str:
    """Write what a worker needs to join (``workers/spec.pkl`` and ``workers/address.json``)."""
    wdir = os.path.join(d, "workers")
    os.makedirs(wdir, exist_ok=True)
    spec_path = os.path.join(wdir, "spec.pkl")
    _atomic_write_json(spec_path + ".json", {"sys_path": spec["sys_path"], "cwd": spec["cwd"]})
    _dump_spec(spec, spec_path)
    _atomic_write_json(os.path.join(wdir, "address.json"),
                       {"host": ip, "port": int(port), "chief_pid": os.getpid(), "started": time.time()})
    return spec_path


def _start_workers(d, spec_path, workers, ip, port):
    wdir = os.path.join(d, "workers")
    with open(spec_path + ".json") as f:
        cwd = json.load(f)["cwd"]
    procs = []
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for i in range(workers):
        env = dict(os.environ, KERASTUNER_TUNER_ID=f"worker{i}", KERASTUNER_ORACLE_IP=ip,
                   KERASTUNER_ORACLE_PORT=str(port), TINYNAS_CHIEF_PID=str(os.getpid()),
                   PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log = open(os.path.join(wdir, f"worker{i}.log"), "ab")
        p = subprocess.Popen([sys.executable, "-m", "helpers.search.workers", "worker", spec_path],
                             env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
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
    restore = _raise_on_termination()
    try:
        while True:
            time.sleep(0.05)
            states = [p.poll() for p in procs]
            dead = [(i, rc) for i, rc in enumerate(states) if rc not in (None, 0)]
            if dead:  # the trial it held would stay RUNNING: the others could wait for it forever
                err = dead
                break
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle) and all(
                    rc is not None for rc in states):
                break  # every worker (spawned or joined) has been told to stop and is done
            if procs and all(rc is not None for rc in states) and not oracle.ongoing_trials:
                break  # the spawned workers are done and nobody else holds a trial
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
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            p._tinynas_log.close()
        server.stop(grace=None)
        oracle.save()
        restore()
    if err:
        tails = []
        for i in range(len(procs)):
            with open(os.path.join(d, "workers", f"worker{i}.log"), "rb") as f:
                tails.append(f"--- worker{i} ---\n" + f.read()[-3000:].decode(errors="replace"))
        what = ("did not finish within worker_timeout_s" if err == "timeout"
                else "died (exit codes " + ", ".join(f"worker{i}: {rc}" for i, rc in err) + ")")
        raise SearchFailedError(f"search workers failed ({err}): a worker {what}; the finished "
                                f"trials are kept and the search can be resumed.\n" + "\n".join(tails),
                                resumable=True)


def _raise_on_termination():
    """In the main thread, turn SIGTERM / SIGHUP into an exception so the chief's cleanup runs
    (its workers are stopped, the oracle saved). Returns the function that restores the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {}

    def handler(signum, frame):
        raise SystemExit(f"search chief received signal {signum}: workers stopped, the search can be resumed")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not allowed here
            pass

    def restore():
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore


def _die_with_chief(chief_pid: int | None, host: str, port: int) -> None:
    """A worker must not outlive its chief: ask the kernel to kill it when its parent dies
    (Linux ``PR_SET_PDEATHSIG``), and watch the chief's pid (spawned workers) and address
    (joined workers) from a daemon thread."""
    if chief_pid and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no libc
            pass
        if os.getppid() != chief_pid:  # the chief died before we got here
            os._exit(1)

    def watch():
        misses = 0
        while True:
            time.sleep(1.0)
            if chief_pid and os.getppid() != chief_pid:
                os._exit(1)
            try:
                with socket.create_connection((host, port), timeout=2):
                    misses = 0
            except OSError:
                misses += 1
                if misses >= 5:  # the chief's server is gone: nobody will give us trials
                    os._exit(1)

    threading.Thread(target=watch, name="tinynas-chief-watchdog", daemon=True).start()


def _run_worker(oracle, evaluate, parent, name):
    tuner = ArchTuner(oracle, evaluate, directory=parent, project_name=name)
    tuner.search()


def _worker_main(spec_path: str) -> None:
    chief = os.environ.get("TINYNAS_CHIEF_PID")
    _die_with_chief(int(chief) if chief else None, os.environ["KERASTUNER_ORACLE_IP"],
                    int(os.environ["KERASTUNER_ORACLE_PORT"]))
    with open(spec_path + ".json") as f:  # sys.path first: unpickling imports modules
        for p in reversed(json.load(f)["sys_path"]):
            if p not in sys.path:
                sys.path.insert(0, p)
    with open(spec_path, "rb") as f:
        spec = pickle.load(f)
    oracle = make_oracle(spec["algorithm"], spec["space"], spec["objectives"], spec["bounds"], None,
                         spec["budget"], spec["seed"], spec["cap"], spec["arch_from_json"], {})
    _run_worker(oracle, spec["evaluate"], spec["parent"], spec["name"])


def join(directory, name: str | None = None) -> None:
    """Join a running search as one more worker: ``directory`` is the search's folder (shared
    with, or synced from, the chief's machine), whose ``workers/address.json`` gives the chief's
    address and ``workers/spec.pkl`` the space and evaluate function. ``name`` (default
    ``joined-<host>-<pid>``) identifies the worker in the trial store. Returns when the chief
    says the search is over. Taught in 02-aging-evolution (docs/search.md)."""
    wdir = os.path.join(str(directory), "workers")
    addr_path, spec_path = os.path.join(wdir, "address.json"), os.path.join(wdir, "spec.pkl")
    if not (os.path.exists(addr_path) and os.path.exists(spec_path)):
        raise FileNotFoundError(f"{directory!r} has no running multi-worker search "
                                f"(no {addr_path} / {spec_path}): start it with workers > 1 or listen=")
    with open(addr_path) as f:
        addr = json.load(f)
    host = addr["host"] if addr["host"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
    try:
        socket.create_connection((host, int(addr["port"])), timeout=5).close()
    except OSError as e:
        raise ConnectionError(f"no search chief answers at {host}:{addr['port']} ({e}); is the "
                              "search still running?") from e
    os.environ["KERASTUNER_TUNER_ID"] = name or f"joined-{socket.gethostname()}-{os.getpid()}"
    os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = host, str(addr["port"])
    os.environ.pop("TINYNAS_CHIEF_PID", None)
    _worker_main(spec_path)


if __name__ == "__main__":  # python -m helpers.search.workers worker SPEC | join DIR [NAME]
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip TensorFlow's slow interpreter teardown; all state is on disk
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "join":
        join(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip TensorFlow's slow interpreter teardown; all state is on disk
    else:
        sys.exit("usage: python -m helpers.search.workers worker SPEC_PICKLE | join SEARCH_DIR [NAME]")

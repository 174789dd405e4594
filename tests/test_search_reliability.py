"""Every search ends: failing trials, a killed or terminated chief and joined workers.

Each chief runs in its own process (a hang then fails the test by its timeout instead of
hanging pytest), with the toy space of ``test_search`` (no training).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helpers import search as S
from helpers.search.store import SearchFailedError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from test_search import BOUNDS, ToySpace, toy_evaluate, toy_resources  # noqa: E402

CHIEF = textwrap.dedent("""
    import os, sys, json
    sys.path.insert(0, {here!r})
    from helpers import search as S
    from test_search import BOUNDS, ToySpace, toy_evaluate, toy_resources
    kw = json.loads(sys.argv[2])
    evaluate = toy_evaluate
    if kw.pop("fail", False):
        from test_search_reliability import always_fails as evaluate
    r = S.run_search("aging_evolution", ToySpace(), evaluate, toy_resources, bounds=BOUNDS,
                     seed=3, directory=sys.argv[1], progress=False, population_size=8,
                     sample_size=4, **kw)
    print("DONE", len(r.completed))
""")


def always_fails(arch, seed):
    raise ValueError("EPOCHS must be a positive int, got -5")


def _chief(tmp_path, directory, env=None, **kw):
    script = tmp_path / "chief.py"
    script.write_text(CHIEF.format(here=str(HERE)))
    return subprocess.Popen([sys.executable, str(script), str(directory), json.dumps(kw)],
                            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _workers_of(directory) -> list[int]:
    """pids of live worker processes of the search in ``directory``."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((ln for ln in (p / "status").read_text().splitlines() if ln.startswith("State:")), "")
        except OSError:
            continue
        if "helpers.search.workers" in cmd and str(directory) in cmd and "Z (zombie)" not in state:
            out.append(int(p.name))
    return out


def _n_completed(d) -> int:
    try:
        return len(S.load_search(d).completed)
    except Exception:  # not written yet, or being replaced
        return 0


def _wait_for(cond, timeout, step=0.2):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(step)
    return False


def test_failing_trials_end_a_single_process_search_with_the_real_error(tmp_path):
    with pytest.raises(SearchFailedError, match=r"(?s)3 trials in a row failed.*EPOCHS must be a "
                                                r"positive int, got -5.*fails the same way") as e:
        S.run_search("aging_evolution", ToySpace(), always_fails, toy_resources, bounds=BOUNDS,
                     budget=10, seed=3, directory=tmp_path / "s", progress=False,
                     population_size=8, sample_size=4)
    assert e.value.resumable is False


def test_failing_trials_end_a_two_worker_search_and_every_process(tmp_path):
    d = tmp_path / "w"
    t0 = time.monotonic()
    p = _chief(tmp_path, d, budget=10, workers=2, fail=True)
    try:
        out, err = p.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        p.kill()
        pytest.fail("a 2-worker search whose trials all fail did not end (the keras-tuner lock hang)")
    assert p.returncode != 0 and "SearchFailedError" in err, err[-2000:]
    assert "EPOCHS must be a positive int, got -5" in err and "fails the same way" in err
    assert time.monotonic() - t0 < 120
    assert _wait_for(lambda: not _workers_of(d), 10), f"workers left running: {_workers_of(d)}"


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_workers_do_not_outlive_their_chief(tmp_path, how):
    d = tmp_path / "w"
    p = _chief(tmp_path, d, env={"TOY_DELAY": "0.5"}, budget=200, workers=2)
    try:
        assert _wait_for(lambda: len(_workers_of(d)) == 2 and _n_completed(d) >= 1, 240), \
            "the workers did not start"
        os.kill(p.pid, getattr(signal, how))
        p.wait(timeout=30)
        if how == "SIGTERM":  # the chief cleans up and says the search can be resumed
            assert p.returncode != 0 and "can be resumed" in p.stderr.read()
        assert _wait_for(lambda: not _workers_of(d), 30), f"orphaned workers: {_workers_of(d)}"
    finally:
        if p.poll() is None:
            p.kill()
        for pid in _workers_of(d):
            os.kill(pid, signal.SIGKILL)
    r = S.load_search(d)  # nothing lost: the finished trials are on disk and resume
    assert len(r.completed) >= 1


def _proposals(r):
    c = r.trials[r.trials.status != "REJECTED"].sort_values("trial_id")
    return list(zip(c.trial_id, c.arch, c.origin, c.parent))


def test_a_worker_started_by_hand_joins_a_running_search(tmp_path):
    # the chief spawns nobody (workers=0) and serves on an address; a worker started by hand in
    # another process joins it by the search folder: the search equals one with spawned workers
    ref = S.aging_evolution(ToySpace(), toy_evaluate, toy_resources, bounds=BOUNDS, budget=16,
                            seed=3, directory=tmp_path / "ref", workers=2, lag=2,
                            population_size=8, sample_size=4, progress=False)
    d = tmp_path / "joined"
    p = _chief(tmp_path, d, budget=16, workers=0, lag=2, listen="127.0.0.1:0")
    try:
        assert _wait_for(lambda: (d / "workers" / "address.json").exists(), 90)
        j = subprocess.run([sys.executable, "-m", "helpers.search.workers", "join", str(d), "byhand"],
                           cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert j.returncode == 0, (j.stdout + j.stderr)[-2000:]
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "DONE 16" in out, err[-2000:]
    finally:
        if p.poll() is None:
            p.kill()
    r = S.load_search(d)
    assert set(r.completed.worker) == {"byhand"}
    assert _proposals(r) == _proposals(ref)  # the same search as with two spawned workers
    assert not _workers_of(d)


def test_join_without_a_running_search_says_so(tmp_path):
    from helpers.search import workers

    with pytest.raises(FileNotFoundError, match="no running multi-worker search"):
        workers.join(tmp_path)
    with pytest.raises(ValueError, match="listen must be 'HOST:PORT'"):
        S.run_search("random_search", ToySpace(), toy_evaluate, toy_resources, bounds=BOUNDS,
                     budget=2, directory=tmp_path / "x", listen="localhost", progress=False)

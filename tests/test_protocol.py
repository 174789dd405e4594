"""helpers.protocol: one protocol for every method (07-comparison).

The searches' CPU-budget stop, the job store (resume, errors recorded), the deployed-model
hypervolume, the seed tables and the claims' verdicts, on hand-made records (no training).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import protocol as PR
from helpers.methods import benchmark as SB


def test_protocol_checks_every_value_before_work():
    p = PR.protocol("mnist", budget_cpu_s=30, seeds=[0, 1])
    assert p.seeds == (0, 1) and p.budget_cpu_s == 30
    assert p.search_bounds["peak_sram_bytes"] == p.peak_sram_bytes
    with pytest.raises(ValueError, match="task must be one of"):
        PR.protocol("cifar")
    with pytest.raises(ValueError, match="unknown protocol field"):
        PR.protocol("mnist", budget=3)
    with pytest.raises(ValueError, match="budget_cpu_s"):
        PR.protocol("kws", budget_cpu_s=0)
    with pytest.raises(ValueError, match="seeds"):
        PR.protocol("kws", seeds=[1, 1])
    with pytest.raises(Exception, match="unknown target"):
        PR.protocol("mnist", target="no-such-board")


def test_stop_when_ends_a_search_at_its_budget(tmp_path):
    """The hook the CPU budget uses: asked before every trial, the search stops at once."""
    bench = SB.BENCHMARKS["granular"]()
    calls = []

    def stop():
        calls.append(1)
        return "budget spent" if len(calls) > 7 else None

    r = bench.run("random_search", directory=tmp_path / "rs", budget=1000, stop_when=stop)
    assert len(r.completed) == 7
    clock = PR.CpuClock(0.0)
    assert clock() and "CPU budget spent" in clock()
    assert PR.CpuClock(1e9)() is None
    with pytest.raises(ValueError, match="stop_when must be callable"):
        bench.run("random_search", directory=tmp_path / "bad", budget=3, stop_when=5)


def test_front_keeps_non_dominated_models_best_error_first():
    rows = [{"error": 0.1, "peak_sram_bytes": 300, "flash_bytes": 900, "arch": "a"},
            {"error": 0.2, "peak_sram_bytes": 100, "flash_bytes": 900, "arch": "b"},
            {"error": 0.3, "peak_sram_bytes": 300, "flash_bytes": 900, "arch": "c"},   # dominated by a
            {"error": 0.1, "peak_sram_bytes": 300, "flash_bytes": 900, "arch": "a"}]   # a again
    assert [r["arch"] for r in PR._front(rows, 5)] == ["a", "b"]
    assert [r["arch"] for r in PR._front(rows, 1)] == ["a"]
    assert PR._front([], 3) == []


def _record(task, method, seed, models, protocol=None):
    p = (protocol or PR.protocol(task)).to_dict()
    dep = [{"test_accuracy_int8": acc, "tflm_arena_head_bytes": head, "tflm_arena_total_bytes": head + 2000,
            "emulated_sram_bytes": head + 400, "flash_bytes": flash, "feasible": feas,
            "emulated_latency_ms": 5.0, "macs": 1000, "search_error": 1 - acc}
           for acc, head, flash, feas in models]
    trials = [{"cpu_s": 10.0 * (i + 1), "error": 1 - m[0] + 0.05, "feasible": True} for i, m in enumerate(models)]
    return {"task": task, "method": method, "seed": seed, "protocol": p, "deployed": dep, "trials": trials,
            "n_trials": len(trials), "search_cpu_s": 60.0, "wall_s": 70.0}


def test_hypervolume_of_deployed_models_is_over_the_limits():
    p = PR.protocol("mnist")
    r = _record("mnist", "random", 0, [(0.9, p.peak_sram_bytes // 2, p.flash_bytes // 2, True)])
    assert PR.hypervolume_of(r) == pytest.approx(0.9 * 0.5 * 0.5)
    # an infeasible model adds nothing; none feasible: 0
    r2 = _record("mnist", "random", 0, [(0.9, p.peak_sram_bytes // 2, p.flash_bytes // 2, True),
                                        (0.99, 10, 10, False)])
    assert PR.hypervolume_of(r2) == pytest.approx(PR.hypervolume_of(r))
    assert PR.hypervolume_of(_record("mnist", "random", 0, [(0.99, 10, 10, False)])) == 0.0


def _claim(records, start):
    return next(v for v in PR.claims(records) if v.claim.startswith(start))


def test_claims_are_decided_only_when_the_seeds_interval_excludes_the_null():
    p = PR.protocol("mnist")
    h, f = p.peak_sram_bytes // 2, p.flash_bytes // 2
    clear = ([_record("mnist", "aging_evolution", s, [(0.97 + 0.001 * s, h, f, True)]) for s in range(3)]
             + [_record("mnist", "bayesian_optimization", s, [(0.80 + 0.001 * s, h, f, True)]) for s in range(3)])
    v = _claim(clear, "MNIST: μNAS aging evolution's deployed hypervolume")
    assert v.word == "held" and v.n == (3, 3)
    assert _claim(clear, "MNIST: μNAS's best feasible").word == "held"
    mixed = ([_record("mnist", "aging_evolution", s, [(a, h, f, True)]) for s, a in enumerate((0.97, 0.80, 0.90))]
             + [_record("mnist", "bayesian_optimization", s, [(a, h, f, True)]) for s, a in enumerate((0.81, 0.96, 0.9))])
    assert _claim(mixed, "MNIST: μNAS aging evolution's deployed hypervolume").word == "undecided at this budget"
    one = clear[:1] + clear[3:4]
    assert _claim(one, "MNIST: μNAS aging evolution's deployed hypervolume").word == "undecided at this budget"
    eng = _claim(clear, "co-designed engine")
    assert eng.word == "held" and eng.estimate > 1


def test_dnas_vs_ofa_pareto_claim_counts_dominated_models():
    p = PR.protocol("kws")
    dn = [_record("kws", "dnas", s, [(0.9, 1000, 5000, True)], p) for s in range(8)]
    better = [_record("kws", "ofa", s, [(0.95, 900, 4000, True)], p) for s in range(8)]
    worse = [_record("kws", "ofa", s, [(0.85, 2000, 9000, True)], p) for s in range(8)]
    assert _claim(dn + better, "KWS: share of MicroNets").word == "did not hold"      # 0 of 8: [0, 0.37]
    held = _claim(dn + worse, "KWS: share of MicroNets")
    assert held.word == "held" and held.n == 8 and held.low == pytest.approx(0.631, abs=1e-3)
    # 3 of 3 models is no proof of a share above one half: the exact interval is [0.29, 1]
    assert _claim(dn[:3] + worse[:3], "KWS: share of MicroNets").word == "undecided at this budget"


def test_tables_seed_order_and_anytime_curves():
    p = PR.protocol("mnist")
    h, f = p.peak_sram_bytes // 2, p.flash_bytes // 2
    recs = [_record("mnist", "random", 0, [(0.90, h, f, True)]), _record("mnist", "random", 1, [(0.95, h, f, True)]),
            _record("mnist", "ofa", 0, [(0.95, h, f, True)]), _record("mnist", "ofa", 1, [(0.90, h, f, True)]),
            dict(_record("mnist", "dnas", 0, []), error="RuntimeError: boom")]
    s = PR.summary_table(recs).set_index("id")
    assert s.loc["random", "best int8 acc mean"] == pytest.approx(0.925)
    assert s.loc["random", "best int8 acc min"] == pytest.approx(0.90)
    assert s.loc["dnas", "failed"] == 1 and "boom" in s.loc["dnas", "error"]
    order = PR.seed_order(recs)["mnist"]
    assert order["changed"] and order["orders"][0][0] == "OFA supernet + evolution"
    a = PR.anytime_table(recs, grid_points=5)
    r = a[(a.method == "Random search")]
    assert len(r) == 5 and r["n"].max() == 2
    assert np.isnan(r["median"].iloc[0])          # before the first trial
    assert r["max"].iloc[-1] == pytest.approx(0.95 - 0.05)
    d = PR.deployed_table(recs)
    assert len(d) == 4 and set(d.method) == {"random", "ofa"}


def test_jobs_are_stored_resumed_and_their_errors_recorded(tmp_path):
    p = PR.protocol("mnist", budget_cpu_s=1)
    rec = PR.run_job(p, "no-such-method", 0, tmp_path)
    assert "method must be one of" in rec["error"]
    assert json.loads((tmp_path / "mnist-no-such-method-s0.json").read_text())["error"] == rec["error"]
    # a finished job is loaded, not rerun (this record was never computed)
    fake = _record("mnist", "random", 0, [(0.5, 100, 100, True)], p)
    (tmp_path / "mnist-random-s0.json").write_text(json.dumps(fake))
    got = PR.run_all([p], ["random"], tmp_path, progress=False)
    assert got == [fake]
    with pytest.raises(ValueError, match="methods must be among"):
        PR.run_all([p], ["nope"], tmp_path)
    with pytest.raises(ValueError, match="workers"):
        PR.run_all([p], ["random"], tmp_path, workers=0)
    assert len(PR.load_records(tmp_path)) == 2


def test_summary_command_writes_what_the_readme_quotes(tmp_path, capsys):
    assert PR.main(["summary", str(tmp_path)]) == 2
    p = PR.protocol("mnist")
    for s in range(2):
        rec = _record("mnist", "random", s, [(0.9 + 0.01 * s, 1000, 5000, True)], p)
        (tmp_path / f"mnist-random-s{s}.json").write_text(json.dumps(rec))
    out = tmp_path / "summary.json"
    assert PR.main(["summary", str(tmp_path), "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["jobs"] == 2 and d["summary"][0]["best int8 acc mean"] == pytest.approx(0.905)
    assert any(c["claim"].startswith("co-designed engine") for c in d["claims"])


def test_separated_names_only_differences_larger_than_the_seed_spread():
    p = PR.protocol("mnist")
    h, f = p.peak_sram_bytes // 2, p.flash_bytes // 2
    overlap = [_record("mnist", m, s, [(a, h, f, True)], p)
               for m, accs in (("random", (0.90, 0.95)), ("ofa", (0.93, 0.96))) for s, a in enumerate(accs)]
    assert not [g for g in PR.separated(overlap) if "accuracy" in g]
    apart = overlap + [_record("mnist", "dnas", s, [(a, h, f, True)], p) for s, a in enumerate((0.5, 0.6))]
    acc = [g for g in PR.separated(apart) if "accuracy" in g]
    assert len(acc) == 2 and all("> MicroNets DNAS" in g for g in acc)

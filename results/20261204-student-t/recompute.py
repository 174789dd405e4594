"""Every seed-level verdict of the series under Student's t, from the runs' recorded per-seed values.

Session 12 (issue 17) replaced the percentile bootstraps over a handful of runs by Student-t
intervals (`stats.runs_ci`: one statistic per run; `stats.welch_ci`: two arms' means over runs).
The training and the searches are unchanged, so a verdict under t is a function of the values each
run recorded. This script collects those values and writes

- `per-run.json`: every claim's per-run values, each with the file it came from (run folders under
  `runs/` are git-ignored, so the values of the runs that live only there are copied here once:
  `--extract`);
- `verdicts.json`: for each claim and arithmetic, the interval and verdict under t next to the
  interval and verdict the run recorded (the bootstrap it had then).

    .venv/bin/python results/20261204-student-t/recompute.py --extract   # once, needs the run folders
    .venv/bin/python results/20261204-student-t/recompute.py             # from per-run.json alone
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

from helpers import stats  # noqa: E402

NATIVE = "this machine (pinned caches, the committed runs)"
ROME = "AMD EPYC Rome's cache sizes (--eigen-caches 32768,524288,16777216)"


def _figures(path):
    d = json.load(open(path))
    return d.get("figures", d)


def _compare_values(base, pairs):
    """Per-seed hypervolume gain and best-feasible-error difference of two searches per seed."""
    from helpers import search
    from helpers.search.store import load_search
    runs = {s: (load_search(os.path.join(base, a)), load_search(os.path.join(base, b))) for s, (a, b) in pairs.items()}
    r0 = runs[min(runs)][0]
    _, per_seed = search.compare_by_seed(runs, r0.bounds, error_bound=r0.bounds["error"])
    return {"seeds": [int(s) for s in per_seed.index],
            "hypervolume gain": [float(v) for v in per_seed["hypervolume gain"]],
            "best feasible error diff": [float(v) for v in per_seed["best feasible error diff"]]}


def _table_rows(ipynb, marker):
    """The text of the first output of ``ipynb`` that contains ``marker``."""
    nb = json.load(open(ipynb))
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            t = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            if marker in t:
                return t
    raise ValueError(f"{ipynb}: no output with {marker!r}")


def _is_num(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return x == "\\"


def extract() -> dict:
    out = {}
    # 02, Rome's caches, 3 seeds (session 11's run; the 5-seed run is read from its figures below)
    base = "runs/rome-caches-a/02-aging-evolution"
    pairs = {}
    for tg in sorted(os.listdir(base)):
        s = int(tg.split("-seed")[1]) if "-seed" in tg else 0
        pairs[s] = (f"{tg}/aging", f"{tg}/random")
    out["02 rome 3 seeds"] = {"source": base, **_compare_values(base, pairs)}
    # 03, Rome's caches, 10 seeds (its first 5 are the 5-seed run's, checked)
    for key, base in (("03 rome 10 seeds", "runs/rome-caches-03-10seeds/03-sparse-pruning"),
                      ("03 rome 5 seeds", "runs/rome-caches-b/03-sparse-pruning")):
        pairs = {0: ("bo", "aging")}
        for d in sorted(glob.glob(base + "/seed*")):
            s = int(d.rsplit("seed", 1)[1])
            pairs[s] = (f"seed{s}/bo", f"seed{s}/aging")
        out[key] = {"source": base, **_compare_values(base, pairs)}
    # 01, Rome's caches: the 4 + 4 models' test accuracies (the executed notebook's table; N_TEST 2,000)
    ipynb = "runs/rome-caches-b/01-search-space-cdf.ipynb"
    rows = [ln.split() for ln in _table_rows(ipynb, "val_accuracy  test_accuracy").splitlines()[1:] if ln.strip()]
    acc = {"chosen": [], "low-ranked": []}
    for r in rows:
        acc[r[1]].append(float(r[4]))
    out["01 rome"] = {"source": ipynb, "chosen": acc["chosen"], "low-ranked": acc["low-ranked"]}
    # 04, Rome's caches: 3 seeds per model; mean, min and max of 3 values give all 3
    f = _figures("runs/rome-caches-a/04-micronets-dnas.json")
    accs = {}
    for lab in "sml":
        lo, hi, mean = (f[f"{lab}_test_accuracy_int8_seeds_{k}"] for k in ("min", "max", "mean"))
        accs[lab.upper()] = sorted([lo, 3 * mean - lo - hi, hi])
    out["04 rome"] = {"source": "runs/rome-caches-a/04-micronets-dnas.json (mean, min, max of 3 seeds)", **accs}
    return out


def _native() -> dict:
    """The republished default runs' per-seed values (session 12, committed under native/), and the
    5-seed notebook 02 run with Rome's caches (rome/)."""
    out = {}
    for key, rel, prefix in (("02 native 5 seeds", "native/02-aging-evolution.json", "ae_vs_random"),
                             ("03 native 10 seeds", "native/03-sparse-pruning.json", "bo_vs_aging"),
                             ("02 rome 5 seeds", "rome/02-aging-evolution.json", "ae_vs_random"),
                             ("02 native 7 seeds", "seven-seeds/native/02-aging-evolution.json", "ae_vs_random"),
                             ("02 rome 7 seeds", "seven-seeds/rome/02-aging-evolution.json", "ae_vs_random")):
        if not (HERE / rel).exists():
            continue
        f = _figures(HERE / rel)
        seeds = sorted(int(k.rsplit("seed", 1)[1]) for k in f if k.startswith(f"{prefix}_hypervolume_gain_seed"))
        out[key] = {"source": rel, "seeds": seeds,
                    **{c: [f[f"{prefix}_{c.replace(' ', '_')}_seed{s}"] for s in seeds]
                       for c in ("hypervolume gain", "best feasible error diff")}}
    return out


def _t(values, claim, direction="greater", null=0.0):
    return stats.verdict(stats.runs_ci([[v] for v in values]), claim=claim, direction=direction, null=null)


def _row(v, recorded=None):
    r = {"estimate": v.estimate, "low": v.low, "high": v.high, "n": v.n, "verdict": v.word, "method": v.method}
    if recorded:
        r["recorded"] = recorded
    return r


def _recorded(f, prefix):
    return {"estimate": f[prefix], "low": f[f"{prefix}_ci_low"], "high": f[f"{prefix}_ci_high"],
            "n": f[f"{prefix}_n"], "verdict": f[f"{prefix}_verdict"], "method": "as recorded by that run"}


def _rome_recorded() -> dict:
    """{(notebook, claim, seeds): the bootstrap interval the Rome run recorded} from session 11's comparisons."""
    out = {}
    for f, seeds in (("rome-a-verdicts.json", None), ("rome-b-verdicts.json", None), ("rome-03-10seeds-verdicts.json", 10)):
        d = json.load(open(ROOT / "results/20261204-eigen-pin" / f))
        for nb, claims in d["notebooks"].items():
            for c in claims:
                lo, hi = c["ci_b"]
                out[(nb[:2], c["claim"], seeds)] = {"low": lo, "high": hi, "verdict": c["verdict_b"],
                                                    "method": f"bootstrap, as recorded (results/20261204-eigen-pin/{f})"}
    return out


def verdicts(per_run: dict) -> dict:
    out = {}
    rr = _rome_recorded()
    pr = dict(per_run)
    if (HERE / "native").exists() or (HERE / "rome").exists():
        pr.update(_native())
    # 02 AE vs random: hypervolume gain, best feasible proxy error
    for key, arith, k in (("02 native 5 seeds", NATIVE, 3), ("02 native 5 seeds", NATIVE, 5),
                          ("02 rome 3 seeds", ROME, 3), ("02 rome 5 seeds", ROME, 5),
                          ("02 native 7 seeds", NATIVE, 7), ("02 rome 7 seeds", ROME, 7)):
        if key not in pr:
            continue
        d = pr[key]
        hv, er = d["hypervolume gain"][:k], d["best feasible error diff"][:k]
        rec = (lambda c: rr.get(("02", f"ae_vs_random_{c}", None))) if key == "02 rome 3 seeds" else (lambda c: None)
        out[f"02 AE vs random, {k} seeds, {arith}"] = {
            "hypervolume_gain": _row(_t(hv, "aging evolution covers more hypervolume than random search"),
                                     rec("hypervolume_gain")),
            "best_feasible_error_diff": _row(_t(er, "aging evolution's best feasible proxy error is lower", "less"),
                                             rec("best_feasible_error_diff")),
            "per_seed": {"hypervolume gain": hv, "best feasible error diff": er}}
    # 03 BO vs AE
    for key, arith, k in (("03 native 10 seeds", NATIVE, 5), ("03 native 10 seeds", NATIVE, 10),
                          ("03 rome 5 seeds", ROME, 5), ("03 rome 10 seeds", ROME, 10), ("03 full 3 seeds", NATIVE, 3)):
        if key not in pr:
            continue
        d = pr[key]
        hv, er = d["hypervolume gain"][:k], d["best feasible error diff"][:k]
        name = f"03 BO vs AE, {'full preset, ' if 'full' in key else ''}{k} seeds, {arith}"
        rec = d.get("recorded", {})
        if key.startswith("03 rome"):
            rec = {c: rr.get(("03", f"bo_vs_aging_{c}", 10 if k == 10 else None))
                   for c in ("hypervolume_gain", "best_feasible_error_diff")}
        out[name] = {
            "hypervolume_gain": _row(_t(hv, "SpArSe BO covers more hypervolume than aging evolution"),
                                     rec.get("hypervolume_gain")),
            "best_feasible_error_diff": _row(_t(er, "SpArSe BO's best feasible val error is lower", "less"),
                                             rec.get("best_feasible_error_diff")),
            "per_seed": {"hypervolume gain": hv, "best feasible error diff": er}}
    # 05 PS gain: per-run mean gain over the same 20 subnets
    for key, arith in (("05 native", NATIVE), ("05 rome", ROME)):
        d = pr[key]
        out[f"05 PS gain, 3 runs, {arith}"] = {"ps_gain": _row(_t(d["per_run"], "progressive shrinking raises "
                                                                  "inherited accuracy"), d.get("recorded")),
                                               "per_run_points": d["per_run"]}
    # 01 chosen vs low-ranked space, 4 vs 4 models
    for key, arith in (("01 native", NATIVE), ("01 rome", ROME)):
        if key not in pr:
            continue
        d = pr[key]
        v = stats.verdict(stats.welch_ci(100 * np.array(d["chosen"]), 100 * np.array(d["low-ranked"])),
                          claim="chosen space trains better (accuracy points)")
        out[f"01 space ranking, 4 vs 4 models, {arith}"] = {
            "better_space_acc_gain": _row(v, rr.get(("01", "better_space_acc_gain", None)) if key == "01 rome" else None)}
    # 04 S < M < L accuracy over 3 seeds
    for key, arith in (("04 native", NATIVE), ("04 rome", ROME)):
        if key not in pr:
            continue
        d = pr[key]
        out[f"04 S < M < L accuracy, 3 seeds, {arith}"] = {
            f"accuracy_{a.lower()}_lt_{b.lower()}": _row(
                stats.verdict(stats.welch_ci(d[b], d[a]), claim=f"{b} is more accurate than {a}"),
                rr.get(("04", f"accuracy_{a.lower()}_lt_{b.lower()}", None)) if key == "04 rome" else None)
            for a, b in (("S", "M"), ("M", "L"))}
    # 07, full preset (2 tasks x 3 seeds; the default runs one seed, so its claims over methods are
    # undecided whatever the interval): the protocol's claims on the committed job records
    from helpers import protocol as PR
    recorded = {c["claim"]: c for c in json.load(open("results/20261202-full/summary.json"))["claims"]}
    out["07 claims, full preset, 3 seeds, " + NATIVE] = {
        v.claim: _row(v, recorded.get(v.claim)) for v in PR.claims(PR.load_records("results/20261202-full/jobs"))}
    return out


def plot(res: dict, path: Path) -> None:
    """One row per claim and arithmetic: the interval under t (black) and, where the run recorded
    one, its bootstrap interval (orange), each scaled by the larger half-width so claims of other
    units share an axis; the null at 0 (the KWS share and SRAM ratio, whose nulls are 0.5 and 1, left out)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [(name, c, r) for name, claims in res.items() for c, r in claims.items()
            if isinstance(r, dict) and "verdict" in r and np.isfinite(r["low"]) and not name.startswith("07")]
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(rows) + 1))
    for i, (name, c, r) in enumerate(rows):
        rec = r.get("recorded")
        scale = max(r["high"] - r["estimate"], r["estimate"] - r["low"],
                    *([] if not rec else [abs(rec["high"] - r["estimate"]), abs(r["estimate"] - rec["low"])]))
        scale = scale or 1.0
        ax.plot([r["low"] / scale, r["high"] / scale], [i, i], color="k", lw=2)
        ax.plot([r["estimate"] / scale], [i], "ko", ms=3)
        if rec:
            ax.plot([rec["low"] / scale, rec["high"] / scale], [i + 0.25, i + 0.25], color="C1", lw=2)
        short = name.replace(NATIVE, "here").replace(ROME, "Rome's caches")
        ax.text(1.02, i, r["verdict"].replace(" at this budget", ""), transform=ax.get_yaxis_transform(), fontsize=7,
                va="center")
        rows[i] = f"{short}: {c}"
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.axvline(0, color="gray", ls="--")
    ax.set_xlabel("interval / its largest half-width (0 = the claim's null)")
    ax.set_title("black: Student / Welch t (now); orange: the bootstrap the run recorded", fontsize=9)
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def coverage(k_runs=(3, 5, 10), trials: int = 400, seed: int = 7) -> dict:
    """How often a 95 % interval over k simulated runs (normal, true mean 0) covers 0: Student's t
    (`stats.runs_ci`) against a percentile bootstrap of the k values (`stats.bootstrap_ci`, 2,000 resamples)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in k_runs:
        draws = rng.normal(0.0, 1.0, size=(trials, k))
        t = np.mean([(c := stats.runs_ci([[v] for v in x])).low <= 0 <= c.high for x in draws])
        b = np.mean([(c := stats.bootstrap_ci(x, seed=i)).low <= 0 <= c.high for i, x in enumerate(draws)])
        out[f"{k} runs"] = {"student_t_coverage_pct": 100 * float(t), "bootstrap_coverage_pct": 100 * float(b),
                            "experiments": trials}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extract", action="store_true", help="read the git-ignored run folders into per-run.json")
    a = ap.parse_args(argv)
    path = HERE / "per-run.json"
    per_run = json.load(open(path)) if path.exists() else {}
    per_run.pop("07 rome records", None)
    if a.extract:
        per_run.update(extract())
    # values that committed files hold
    old = json.load(open("results/20261204-eigen-pin/rome-b-figures.json"))["notebooks"]["05-once-for-all"]["differ"]
    native05 = {k: va for k, va, _ in old}
    rome05 = {k: vb for k, _, vb in old}
    for key, f, src in (("05 native", native05, "results/20261203-default/05-once-for-all.json"),
                        ("05 rome", rome05, "results/20261204-eigen-pin/rome-b-figures.json")):
        per_run[key] = {"source": src, "per_run": [f[f"ps_gain_run_seed{s}"] for s in range(3)],
                        "recorded": {"estimate": f["ps_gain"], "low": f["ps_gain_ci_low"], "high": f["ps_gain_ci_high"],
                                     "verdict": f["ps_gain_verdict"], "method": "two-level bootstrap (as recorded)"}}
    # 03 full preset: the executed notebook's per-seed table (4 decimals; the best errors are k/3,000)
    t = _table_rows("results/20261203-full-03/03-sparse-pruning.ipynb", "best feasible error BO")
    cols = {}
    for block in t.split("\n\n"):
        for ln in block.splitlines():
            w = ln.split()
            if w and w[0].isdigit() and all(_is_num(x) for x in w[1:]):
                cols.setdefault(int(w[0]), []).extend(float(x) for x in w[1:] if x != "\\")
    rows = [cols[s] for s in sorted(cols)]                 # hv BO, hv AE, best error BO, best error AE
    bo_e = [round(r[2] * 3000) / 3000 for r in rows]
    ae_e = [round(r[3] * 3000) / 3000 for r in rows]
    full = _figures("results/20261203-full-03/03-sparse-pruning.json")
    per_run["03 full 3 seeds"] = {"source": "results/20261203-full-03/03-sparse-pruning.ipynb (per-seed table, "
                                            "hypervolumes to 4 decimals)",
                                  "hypervolume gain": [r[0] - r[1] for r in rows],
                                  "best feasible error diff": [b - e for b, e in zip(bo_e, ae_e)],
                                  "recorded": {c: _recorded(full, f"bo_vs_aging_{c}")
                                               for c in ("hypervolume_gain", "best_feasible_error_diff")}}
    with open(path, "w") as fh:
        json.dump(per_run, fh, indent=1, default=float)
    res = verdicts(per_run)
    res["coverage of 95 % intervals over simulated runs"] = coverage()
    with open(HERE / "verdicts.json", "w") as fh:
        json.dump(res, fh, indent=1, default=lambda o: list(o) if isinstance(o, tuple) else float(o))
    plot(res, HERE / "intervals.png")
    print(json.dumps(res["coverage of 95 % intervals over simulated runs"]))
    for name, claims in res.items():
        for c, r in claims.items():
            if isinstance(r, dict) and "verdict" in r:
                print(f"{name}: {c}: {r['estimate']:+.4g} [{r['low']:+.4g}, {r['high']:+.4g}] n={r['n']} -> {r['verdict']}"
                      + (f"   (recorded: [{r['recorded']['low']:+.4g}, {r['recorded']['high']:+.4g}] {r['recorded']['verdict']})"
                         if "recorded" in r else ""))


if __name__ == "__main__":
    main()

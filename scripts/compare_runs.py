"""Do two runs with the same seeds record the same figures? (issue 9, "same seed, same table").

Compares the recorded figures (``NN-name.json``) of two run folders, or of one run folder
against the per-notebook runs that ``helpers.runner publish`` kept. Timing figures
(wall-clock seconds, CPU-minutes, profiles per minute) are expected to move and are listed
apart; every other figure must be equal (floats to 1e-9 relative). Exits 1 if any differs,
and 2 if nothing was compared (no notebook recorded in both, e.g. no publish runs yet, or
no figure other than timing ones), since "same figures" would then mean nothing.

    .venv/bin/python scripts/compare_runs.py runs/<run A> runs/<run B>
    .venv/bin/python scripts/compare_runs.py runs/<run A> --published   # vs runs/*-publish-NN-*

With ``--verdicts`` only the claims are compared (issue 17: "the verdict of a default run must
be the same on any 2-core machine"): every ``*_verdict`` figure recorded by both runs, printed
with its two intervals. Figures may then differ (other CPU kernels, thread counts, timing);
a verdict may not: exit 1 if one differs, 2 if no verdict was compared.

    .venv/bin/python scripts/compare_runs.py results/20261202-default runs/<perturbed run> --verdicts
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TIMING = re.compile(r"(seconds|_s$|minutes|hours|per_minute|per_second|wall|cpu)")


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


def compare(figs_a: dict, figs_b: dict) -> dict:
    """``{notebook: {"equal": n, "timing": [keys], "differ": [(key, a, b)]}}`` for notebooks in both."""
    out = {}
    for nb in sorted(set(figs_a) & set(figs_b)):
        a, b = figs_a[nb], figs_b[nb]
        res = {"equal": 0, "timing": [], "differ": [], "only_one": sorted(set(a) ^ set(b))}
        for k in sorted(set(a) & set(b)):
            if TIMING.search(k):
                res["timing"].append(k)
            elif _same(a[k], b[k]):
                res["equal"] += 1
            else:
                res["differ"].append((k, a[k], b[k]))
        out[nb] = res
    return out


def compare_verdicts(figs_a: dict, figs_b: dict) -> dict:
    """``{notebook: [(claim, verdict_a, verdict_b, (low_a, high_a), (low_b, high_b))]}``: every
    ``<claim>_verdict`` recorded in both runs of a notebook, with the ``_ci_low/_ci_high`` beside it."""
    out = {}
    for nb in sorted(set(figs_a) & set(figs_b)):
        a, b = figs_a[nb], figs_b[nb]
        rows = []
        for k in sorted(set(a) & set(b)):
            if k.endswith("_verdict"):
                c = k[: -len("_verdict")]
                rows.append((c, a[k], b[k], (a.get(c + "_ci_low"), a.get(c + "_ci_high")),
                             (b.get(c + "_ci_low"), b.get(c + "_ci_high"))))
        if rows:
            out[nb] = rows
    return out


def _fmt(ci) -> str:
    return "[" + ", ".join("?" if v is None else f"{v:+.4g}" for v in ci) + "]"


def machines(run_a, run_b) -> dict:
    """The ``machine`` facts of the two runs' ``run.json`` (``None`` where a run has none: older
    runs, or a folder of figures only), as ``{"a": ..., "b": ...}``."""
    import json

    out = {}
    for k, d in (("a", run_a), ("b", run_b)):
        try:
            out[k] = json.loads((Path(d) / "run.json").read_text()).get("machine")
        except (OSError, ValueError, AttributeError):
            out[k] = None
    return out


def _main_verdicts(a, figs_a, figs_b) -> int:
    result = compare_verdicts(figs_a, figs_b)
    n = sum(map(len, result.values()))
    bad = 0
    mach = machines(a.run_a, a.run_b)
    for k, run in (("a", a.run_a), ("b", a.run_b)):
        print(f"machine {k} ({run}): {mach[k] if mach[k] else 'not recorded'}")
    for nb, rows in result.items():
        print(f"== {nb}")
        for c, va, vb, ca, cb in rows:
            same = va == vb
            bad += not same
            print(f"   {'same   ' if same else 'DIFFERS'} {c}: {va} {_fmt(ca)} vs {vb} {_fmt(cb)}")
    if not n:
        print(f"error: compared no verdicts: {a.run_a} and {a.run_b} record no *_verdict figure of the "
              "same notebook", file=sys.stderr)
        return 2
    print(f"{n - bad} of {n} verdicts the same" + (f", {bad} differ" if bad else ""))
    if a.json:
        import json

        Path(a.json).write_text(json.dumps({
            "run_a": str(a.run_a), "run_b": str(a.run_b), "machines": mach, "verdicts_compared": n, "verdicts_differ": bad,
            "notebooks": {nb: [{"claim": c, "verdict_a": va, "verdict_b": vb, "ci_a": list(ca), "ci_b": list(cb)}
                               for c, va, vb, ca, cb in rows] for nb, rows in result.items()}},
            indent=1, default=str) + "\n")
    return 1 if bad else 0


def main(argv=None, runs_dir: Path | None = None) -> int:
    """Compare and print; returns the exit status (0 same, 1 some differ, 2 nothing compared).
    ``runs_dir``: where ``--published`` looks for publish runs (default ``runs/``)."""
    from helpers import runner
    from helpers.run import load_figures

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a")
    p.add_argument("run_b", nargs="?")
    p.add_argument("--published", action="store_true", help="compare with the latest publish run of each notebook")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the comparison as JSON")
    p.add_argument("--verdicts", action="store_true", help="compare only the claims' verdicts (with intervals)")
    a = p.parse_args(argv)
    figs_a = load_figures(Path(a.run_a))
    if a.verdicts:
        if not a.run_b:
            p.error("--verdicts compares two runs: give run_b")
        return _main_verdicts(a, figs_a, load_figures(Path(a.run_b)))
    if a.published:
        figs_b, src = {}, {}
        for nb in figs_a:
            runs = sorted(Path(runs_dir or runner.RUNS).glob(f"*-publish-{nb}"))
            if runs:
                figs_b[nb] = load_figures(runs[-1]).get(nb, {})
                src[nb] = runs[-1].name
    else:
        figs_b = load_figures(Path(a.run_b))
        src = {nb: Path(a.run_b).name for nb in figs_b}
    bad = compared = 0
    result = compare(figs_a, figs_b)
    for nb, r in result.items():
        compared += r["equal"] + len(r["differ"])
        print(f"== {nb} (vs {src.get(nb)}): {r['equal']} figures equal, {len(r['timing'])} timing figures not compared"
              + (f", recorded in one run only: {', '.join(r['only_one'])}" if r["only_one"] else ""))
        for k, x, y in r["differ"]:
            print(f"   DIFFERS {k}: {x!r} vs {y!r}")
        bad += len(r["differ"])
    if not compared:
        other = (f"publish runs (*-publish-NN-name) under {runs_dir or runner.RUNS}" if a.published
                 else a.run_b)
        print(f"error: compared no figures: {a.run_a} records figures for {sorted(figs_a) or 'no notebook'}"
              f", {other} for {sorted(nb for nb in figs_b if figs_b[nb]) or 'none'}"
              + ("; run `python -m helpers.runner publish` first" if a.published else "")
              + " (timing figures are never compared)", file=sys.stderr)
        return 2
    print("same figures" if not bad else f"{bad} figures differ")
    if a.json:
        import json

        Path(a.json).write_text(json.dumps({
            "run_a": Path(a.run_a).name, "run_b": (Path(a.run_b).name if a.run_b else "published"),
            "figures_compared": compared, "figures_differ": bad,
            "notebooks": {nb: {"equal": r["equal"], "timing_not_compared": len(r["timing"]),
                               "differ": [list(d) for d in r["differ"]], "only_one": r["only_one"]}
                          for nb, r in result.items()}}, indent=1, default=str) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Counts of the probe and verdict comparisons in this folder, written to summary.json (session 11)."""
import json, pathlib
D = pathlib.Path(__file__).resolve().parent
probes = {p.stem: {"ops": len(json.loads(p.read_text())["ops"]),
                   "differ": next(v for k, v in json.loads(p.read_text()).items() if k.startswith("differ_from"))}
          for p in sorted(D.glob("probe-*.json"))}
for v in probes.values():
    v["n_differ"] = len(v["differ"])
verdicts = [json.loads((D / f"rome-{r}-verdicts.json").read_text()) for r in "ab"]
figures = [json.loads((D / f"rome-{r}-figures.json").read_text()) for r in "ab"]
out = {"probes": probes,
       "rome_caches": {"verdicts_compared": sum(v["verdicts_compared"] for v in verdicts),
                       "verdicts_differ": sum(v["verdicts_differ"] for v in verdicts),
                       "figures_compared": sum(f["figures_compared"] for f in figures),
                       "figures_differ": sum(f["figures_differ"] for f in figures)}}
(D / "summary.json").write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(out["rome_caches"]), {k: v["n_differ"] for k, v in probes.items()})

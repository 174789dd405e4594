#!/usr/bin/env python
"""Check the resource estimator against TensorFlow Lite Micro, to the byte.

For N random architectures of each search space (seeded; the shrunk spaces of
``helpers.deploy.agreement_spaces``, branched ones included) it builds the Keras
model, converts it to int8 with ``helpers.deploy.to_tflite_int8``, measures the
arena with the tflite-micro interpreter, and compares

* the "tflm" peak-SRAM estimate with the measured arena head (must be equal),
* the flash estimate with the .tflite size (must be within 1% of the file minus
  its fixed overhead; it is in fact exact),
* the predicted operator sequence with the converted file,
* "reordered" <= "tflm" (and strictly smaller on some branched nets).

Usage:  .venv/bin/python scripts/check_tflm_agreement.py --n 200 [--space both]
        [--seed 0] [--json runs/tflm_agreement.json]
Exit code 1 if any architecture disagrees. Taught in 06-deployment.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="architectures per space (default 200)")
    ap.add_argument("--space", choices=["granular", "block", "both"], default="both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="runs/tflm_agreement.json",
                    help="where to write the JSON summary (default runs/tflm_agreement.json)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be >= 1")

    from helpers import deploy, resources
    spaces = ["granular", "block"] if args.space == "both" else [args.space]
    reports = []
    ok = True
    for sp in spaces:
        rep = deploy.agreement(sp, n=args.n, seed=args.seed, progress=not args.no_progress)
        reports.append(rep)
        print(rep.summary(), flush=True)
        bad = [r for r in rep.rows if not r["head_match"] or r["flash_rel_error"] > 0.01]
        for r in bad:
            print(f"  DISAGREE {r['hash']}: head est {r['head_estimate']} vs "
                  f"{r['head_measured']}, flash est {r['flash_estimate']} vs "
                  f"{r['file_bytes']}: {json.dumps(r['arch'])}")
        ok &= not bad and rep.reordered_le_tflm == rep.n
    summary = {
        "command": "scripts/check_tflm_agreement.py " + " ".join(argv or sys.argv[1:]),
        "flash_fixed_overhead_bytes": resources.FLASH_FIXED_OVERHEAD,
        "tflite_micro_version": _tflm_version(),
        "spaces": {r.space: {k: v for k, v in r.to_dict().items() if k != "rows"}
                   for r in reports},
        "rows": {r.space: [{k: v for k, v in row.items() if k != "arch"} | {"arch": row["arch"]}
                           for row in r.rows] for r in reports},
        "all_agree": bool(ok),
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
        print(f"summary written to {args.json}")
    print("ALL AGREE" if ok else "DISAGREEMENTS FOUND")
    return 0 if ok else 1


def _tflm_version():
    try:
        from tflite_micro.python.tflite_micro._version import __version__
        return __version__
    except Exception:  # pragma: no cover
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())

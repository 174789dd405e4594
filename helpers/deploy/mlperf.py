"""Latency honesty: the emulator's cycle estimate beside the MLPerf Tiny reference latencies.

Taught in 06-deployment (how far an emulated latency is from a board). :func:`mlperf_latency`
builds the four MLPerf Tiny reference architectures (:mod:`helpers.deploy.zoo`, int8), emulates
one inference each on the NUCLEO-L4R5ZI (Cortex-M4 at 120 MHz) with the series' engine, and
puts two estimates beside the published reference latencies: ``zero_ws`` (the Cortex-M4 TRM
cycle table, every memory access at zero wait states: a lower bound of the engine's time) and
``flash_ws`` (plus the board's documented flash wait states once per flash line fetched by a
data read, no data-cache hits: an upper bound of data stalls). No parameter is fitted to the
published figures. The published reference runs TFLite-Micro with CMSIS-NN kernels, not our
generated code, so the ratio measures engine + cycle model together; it is reported, not
tuned away. ``python -m helpers.deploy.mlperf --json FILE`` writes the record.

May import: :mod:`helpers.deploy.zoo`, :mod:`helpers.engine`, :mod:`helpers.targets`,
:mod:`helpers.tflite_io`.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from helpers import targets, tflite_io
from helpers.deploy import zoo
from helpers.engine import emulator

__all__ = ["PUBLISHED_MS", "PUBLISHED_SOURCE", "MLPERF_MODELS", "LatencyCheck", "mlperf_latency"]

#: published (MLPerf Tiny v0.5 reference submission, NUCLEO-L4R5ZI, Cortex-M4 120 MHz,
#: TFLite-Micro + CMSIS-NN), ms per inference; the project's anchors list
#: (helpers.compare.PUBLISHED, "MLPerf Tiny reference").
PUBLISHED_MS = {"ds-cnn-kws": 181.9, "mobilenetv1-vww": 600.6, "resnet8": 704.2,
                "fc-autoencoder": 10.05}
PUBLISHED_SOURCE = ("published (MLPerf Tiny v0.5 reference, NUCLEO-L4R5ZI, Cortex-M4 120 MHz, "
                    "TFLite-Micro + CMSIS-NN)")
#: MLPerf Tiny benchmark -> zoo model name.
MLPERF_MODELS = {"keyword spotting": "ds-cnn-kws", "visual wake words": "mobilenetv1-vww",
                 "image classification": "resnet8", "anomaly detection": "fc-autoencoder"}


@dataclass
class LatencyCheck:
    """Estimate / published for each MLPerf Tiny reference model (see module docstring).

    ``rows``: one dict per model (benchmark, model, macs, instructions, published_ms,
    zero_ws_ms, flash_ws_ms, and the ratios ``zero_ws_over_published`` /
    ``flash_ws_over_published``). Taught in 06-deployment.
    """

    target: str
    kernels: str
    plan: str
    rows: list = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def ratios(self, which: str = "flash_ws") -> list:
        return [r[f"{which}_over_published"] for r in self.rows]

    def summary(self) -> str:
        lines = [f"Emulated latency vs {PUBLISHED_SOURCE}",
                 f"target {self.target}; our engine ({self.kernels} kernels, plan {self.plan}); "
                 f"flash {self.facts.get('flash_wait_states')} WS, "
                 f"{self.facts.get('flash_line_bytes')} B lines ({self.facts.get('memory_source')})",
                 f"{'benchmark':<22}{'published ms':>13}{'0-WS ms':>10}{'ratio':>7}"
                 f"{'flash-WS ms':>13}{'ratio':>7}"]
        for r in self.rows:
            lines.append(f"{r['benchmark']:<22}{r['published_ms']:>13.2f}{r['zero_ws_ms']:>10.1f}"
                         f"{r['zero_ws_over_published']:>7.2f}{r['flash_ws_ms']:>13.1f}"
                         f"{r['flash_ws_over_published']:>7.2f}")
        z, f = self.ratios("zero_ws"), self.ratios("flash_ws")
        lines.append(f"estimate / published: zero wait states {min(z):.2f}-{max(z):.2f}, with "
                     f"flash wait states {min(f):.2f}-{max(f):.2f} (1.00 = exact)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows).set_index("benchmark")

    def to_dict(self) -> dict:
        return {"target": self.target, "kernels": self.kernels, "plan": self.plan,
                "published_source": PUBLISHED_SOURCE, "facts": dict(self.facts),
                "rows": [dict(r) for r in self.rows],
                "ratio_range_zero_ws": [min(self.ratios("zero_ws")), max(self.ratios("zero_ws"))],
                "ratio_range_flash_ws": [min(self.ratios("flash_ws")), max(self.ratios("flash_ws"))]}


def mlperf_latency(target: str = "nucleo-l4r5zi", kernels: str = "dsp", plan: str = "tflm",
                   models=None, seed: int = 0, progress: bool = True) -> LatencyCheck:
    """Emulate the MLPerf Tiny reference models on ``target`` and compare with the published
    reference latencies (a few minutes: the flash-read count runs a Python hook per read).

    ``models``: subset of :data:`MLPERF_MODELS` benchmark names (default all four).
    Prints one line per model when ``progress``. Taught in 06-deployment.
    """
    t = targets.get(target)
    chosen = list(MLPERF_MODELS) if models is None else list(models)
    bad = [m for m in chosen if m not in MLPERF_MODELS]
    if bad:
        raise ValueError(f"models {bad} unknown; allowed: {list(MLPERF_MODELS)}")
    out = LatencyCheck(target=t.name, kernels=kernels, plan=plan,
                       facts={"core": t.core, "clock_hz": t.clock_hz,
                              "flash_wait_states": t.flash_wait_states,
                              "flash_line_bytes": t.flash_line_bytes,
                              "memory_source": t.memory_source})
    for bench in chosen:
        name = MLPERF_MODELS[bench]
        b = zoo.build(name, io="int8", seed=seed)
        m = tflite_io.read(b)
        tin = m.tensors[m.inputs[0]]
        x = np.random.default_rng(seed).integers(-128, 128, size=tin.shape, dtype=np.int8)
        t0 = time.time()
        r = emulator.run(b, x, target=t.name, plan=plan, kernels=kernels, flash_wait_states=True)
        pub = PUBLISHED_MS[name]
        flash_ms = r.latency_ms_with_flash if r.latency_ms_with_flash is not None else r.latency_ms
        row = {"benchmark": bench, "model": name, "macs": int(r.macs),
               "instructions": int(r.instructions), "cycles_zero_ws": float(r.cycles),
               "flash_stall_cycles": float(r.flash_stall_cycles),
               "flash_reads": int(sum(o.get("flash_reads", 0) for o in r.per_op)),
               "published_ms": pub, "zero_ws_ms": float(r.latency_ms), "flash_ws_ms": float(flash_ms),
               "zero_ws_over_published": float(r.latency_ms) / pub,
               "flash_ws_over_published": float(flash_ms) / pub,
               "emulation_seconds": round(time.time() - t0, 1)}
        out.rows.append(row)
        if progress:
            print(f"{bench}: {row['zero_ws_ms']:.1f} / {row['flash_ws_ms']:.1f} ms vs published "
                  f"{pub} ms", flush=True)
    return out


def main(argv=None) -> int:
    """The command line: print the comparison, ``--json FILE`` writes the record (with the
    command that made it). Taught in 06-deployment."""
    ap = argparse.ArgumentParser(prog="python -m helpers.deploy.mlperf",
                                 description="Emulated vs published MLPerf Tiny reference latency")
    ap.add_argument("--target", default="nucleo-l4r5zi")
    ap.add_argument("--kernels", default="dsp", choices=["dsp", "plain"])
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    rep = mlperf_latency(target=a.target, kernels=a.kernels)
    print(rep.summary())
    if a.json:
        d = rep.to_dict()
        d["command"] = "python -m helpers.deploy.mlperf " + " ".join(sys.argv[1:] if argv is None
                                                                     else argv)
        d["python"] = platform.python_version()
        with open(a.json, "w") as f:
            json.dump(d, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

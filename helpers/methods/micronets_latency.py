"""MicroNets' latency proxy: op count against emulated Cortex-M latency, per backbone and target.

Taught in 04-micronets-dnas (MicroNets, Banbury et al. 2021, Sec. 4): sample models of one
backbone uniformly from its space (:func:`sample_backbone`: the DS-CNN keyword-spotting
backbone or a MobileNetV2 image backbone), convert each to int8, run it on the emulated
Cortex-M4 / M7 of :mod:`helpers.engine.emulator` (exact instruction counts of the int8 C
kernels, cycles estimated from the core's timing table; :func:`latency_study`, resumable
through a JSON-lines store), then fit ``latency = a * ops + b`` per backbone and target
(:func:`fit_latency`: r², residual spread, Mops/s). Ops = 2 x MACs.
May import: :mod:`helpers.spaces`, :mod:`helpers.targets`, :mod:`helpers.tflite_io`,
:mod:`helpers.deploy`, :mod:`helpers.engine`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import spaces as S
from helpers import targets as T
from helpers import resources
from helpers.methods.micronets import _int8_random, emulate_latency
from helpers.methods.micronets_space import dscnn_space, random_choices, to_arch

__all__ = ["unfitted_targets", "BACKBONES", "sample_backbone", "LatencyStudy", "latency_study", "fit_latency",
           "LatencyFit", "emulate_latency"]

#: Backbones of the latency-proxy study: name -> default input shape, classes.
BACKBONES = {"dscnn": ((49, 10, 1), 12), "mobilenetv2": ((32, 32, 3), 10)}


def sample_backbone(backbone: str, n: int, seed: int = 0, *, input_shape=None, num_classes=None,
                    max_width: int = 64, n_blocks: int = 4, block_widths=(0.2, 0.3, 0.4, 0.5),
                    block_resolutions=(24, 28, 32)) -> list:
    """``n`` architectures drawn uniformly from one backbone's space (MicroNets' uniform
    prior). ``"dscnn"``: :func:`dscnn_space` choices (widths 8..``max_width``, ``n_blocks``
    blocks, each possibly identity); ``"mobilenetv2"``: :class:`helpers.spaces.BlockArch` with widths from
    ``block_widths`` and resolutions from ``block_resolutions`` (kernels, expansions,
    depths from the default block space; the input is resolution x resolution x 3, so
    the model has no resize operator, unless ``input_shape`` is given). Returns
    ``[(arch, input_shape, num_classes)]``.
    Taught in 04-micronets-dnas."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {backbone!r}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    shp, nc = BACKBONES[backbone]
    shp = tuple(input_shape or shp)
    nc = int(num_classes or nc)
    rng = np.random.default_rng(seed)
    out = []
    if backbone == "dscnn":
        sp = dscnn_space(shp, nc, max_width=max_width, step=8, n_blocks=n_blocks)
        for _ in range(n):
            out.append((to_arch(sp, random_choices(sp, rng)), shp, nc))
    else:
        bs = S.BlockSpace(widths=tuple(block_widths), resolutions=tuple(block_resolutions))
        for _ in range(n):
            a = S.BlockArch.random(rng, bs)
            # the input has the sampled resolution (no resize operator in the model)
            out.append((a, (a.resolution, a.resolution, shp[2]) if input_shape is None else shp, nc))
    return out


@dataclass
class LatencyStudy:
    """Emulated latencies of sampled models: one row per (model, target).
    Taught in 04-micronets-dnas."""

    rows: list

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    def fit(self):
        return fit_latency(self)

    def cost_per_mac(self):
        """Instructions per MAC by backbone, target and operator type (summed over the
        sampled models): why one backbone runs more ops per second than another."""
        import pandas as pd
        df = self.table()
        kinds = sorted(c[len("instr_"):] for c in df.columns if c.startswith("instr_"))
        rows = []
        for (bb, t), g in df.groupby(["backbone", "target"]):
            r = {"backbone": bb, "target": t}
            for k in kinds:
                m = g.get(f"macs_{k}", pd.Series(dtype=float)).fillna(0).sum()
                if m > 0:
                    r[k] = g[f"instr_{k}"].fillna(0).sum() / m
                    r[f"{k} MAC share"] = m / g["macs"].sum()
            rows.append(r)
        return pd.DataFrame(rows).set_index(["backbone", "target"])

    def to_dict(self) -> dict:
        return {"rows": list(self.rows)}

    def summary(self) -> str:
        df = self.table()
        if df.empty:
            return "latency study: no rows"
        return (f"latency study: {df['model'].nunique()} models x {df['target'].nunique()} targets, "
                f"backbones {sorted(df['backbone'].unique())}")

    __str__ = summary


def latency_study(samples: dict, targets=("stm32f446re", "stm32f746zg"), *, seed: int = 0,
                  store=None, progress: bool = True) -> LatencyStudy:
    """Emulate every sampled model on every target. ``samples``: ``{backbone: list from
    sample_backbone}``. Each model gets random (seeded) weights, is converted to int8
    (:func:`helpers.deploy.to_tflite_int8`) and run by :func:`emulate_latency`. With
    ``store`` (a folder) every finished row is appended to ``store/latency.jsonl`` and
    reused on a rerun (resume). Taught in 04-micronets-dnas."""
    tnames = [T.get(t).name for t in targets]
    done = {}
    path = None
    if store is not None:
        path = Path(store) / "latency.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    done[(r["arch_hash"], r["target"], r["seed"])] = r
    jobs = [(bb, i, a, shp, nc) for bb, lst in samples.items() for i, (a, shp, nc) in enumerate(lst)]
    it = jobs
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(jobs, desc="emulate")
    rows = []
    for bb, i, a, shp, nc in it:
        s = seed + i
        todo = [t for t in tnames if (a.hash, t, s) not in done]
        if todo:
            tfl = _int8_random(a, shp, nc, s)
            macs = resources.profile(tfl, table=False).macs
            for t in todo:
                r = {"backbone": bb, "model": f"{bb}-{i}", "arch_hash": a.hash, "seed": s,
                     "target": t, "macs": int(macs), "ops": 2 * int(macs), "tflite_bytes": len(tfl),
                     **emulate_latency(tfl, t, seed=s)}
                done[(a.hash, t, s)] = r
                if path is not None:
                    with path.open("a") as f:
                        f.write(json.dumps(r) + "\n")
        rows += [done[(a.hash, t, s)] for t in tnames]
    return LatencyStudy(rows)


@dataclass
class LatencyFit:
    """``latency_ms = a * Mops + b`` per (backbone, target): r², residual spread,
    Mops/s (= 1000 / a, the marginal throughput) and mean ops / latency.
    Taught in 04-micronets-dnas."""

    rows: list

    def table(self):
        import pandas as pd
        return pd.DataFrame(self.rows).set_index(["backbone", "target"])

    def get(self, backbone: str, target: str) -> dict:
        """The fit for ``backbone`` on ``target``; a target that was not emulated uses the
        fit of an emulated one with the same core and clock (e.g. F767ZI = F746ZG)."""
        for r in self.rows:
            if r["backbone"] == backbone and r["target"] == target:
                return r
        try:
            want = T.get(target)
            for r in self.rows:
                t = T.get(r["target"])
                if r["backbone"] == backbone and (t.core, t.clock_hz) == (want.core, want.clock_hz):
                    return r
        except KeyError:
            pass
        raise KeyError(f"no fit for backbone={backbone!r}, target={target!r}; have "
                       f"{[(r['backbone'], r['target']) for r in self.rows]}")

    def ops_for_latency(self, backbone: str, target: str, latency_ms: float) -> float:
        """Ops the fitted model allows within ``latency_ms`` (the DNAS ops target)."""
        r = self.get(backbone, target)
        if latency_ms <= r["b_ms"]:
            raise ValueError(f"latency_ms={latency_ms} is below the fit's intercept {r['b_ms']:.2f} ms")
        return (latency_ms - r["b_ms"]) / r["a_ms_per_mop"] * 1e6

    def to_dict(self) -> dict:
        return {"rows": list(self.rows)}

    def summary(self) -> str:
        return "\n".join(f"{r['backbone']:12s} {r['target']:12s} r²={r['r2']:.4f}  "
                         f"latency = {r['a_ms_per_mop']:.3f} ms/Mop x ops + {r['b_ms']:.3f} ms, "
                         f"residual sd {r['resid_sd_pct']:.1f} %, {r['mops_per_s']:.1f} Mops/s "
                         f"(n={r['n']})" for r in self.rows)

    __str__ = summary


def unfitted_targets(boards, latency_targets) -> list:
    """The ``boards`` no latency fit over ``latency_targets`` can serve: neither emulated
    nor of the same core and clock as an emulated one (see :meth:`LatencyFit.get`), so
    their ops target could not be derived. Names as :func:`helpers.targets.get` takes
    them. Checked before the latency study. Taught in 04-micronets-dnas.
    """
    fitted = {(t.core, t.clock_hz) for t in map(T.get, latency_targets)}
    return [b for b in boards if (T.get(b).core, T.get(b).clock_hz) not in fitted]


def fit_latency(study) -> LatencyFit:
    """Least-squares ``latency = a * ops + b`` per backbone and target of a
    :class:`LatencyStudy` (or its table). Taught in 04-micronets-dnas."""
    df = study.table() if hasattr(study, "table") else study
    rows = []
    for (bb, t), g in df.groupby(["backbone", "target"], sort=True):
        x = g["ops"].to_numpy(float) / 1e6
        y = g["latency_ms"].to_numpy(float)
        if len(g) >= 2 and np.ptp(x) > 0:
            a, b = np.polyfit(x, y, 1)
        else:
            a, b = (float(y.mean() / x.mean()) if x.mean() else float("nan")), 0.0
        pred = a * x + b
        res = y - pred
        ss = float(np.sum((y - y.mean()) ** 2))
        r2 = 1 - float(np.sum(res ** 2)) / ss if ss > 0 else float("nan")
        rows.append({"backbone": bb, "target": t, "n": int(len(g)), "a_ms_per_mop": float(a),
                     "b_ms": float(b), "r2": r2, "resid_sd_ms": float(res.std()),
                     "resid_sd_pct": float(100 * np.std(res / y)),
                     "max_abs_resid_pct": float(100 * np.max(np.abs(res / y))),
                     "mops_per_s": float(1000 / a) if a > 0 else float("nan"),
                     "mean_mops_per_s": float(np.mean(x / y * 1000))})
    return LatencyFit(rows)

"""04's board-scale report: the binding limit of a deployed model, and the residual plot of the
latency fit (no TensorFlow; measured dicts and study rows built by hand)."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from helpers import plots  # noqa: E402
from helpers.methods import micronets, micronets_latency  # noqa: E402


def test_binding_limit_names_the_closest_limit():
    m = {"arena_total_bytes": 60_000, "sram_budget": 100_000, "tflite_bytes": 90_000,
         "flash_budget": 100_000, "latency_ms": 30.0}
    assert micronets.binding_limit(m) == ("flash", pytest.approx(90.0))
    assert micronets.binding_limit(m, latency_ms=31.0) == ("latency", pytest.approx(100 * 30 / 31))
    m["arena_total_bytes"] = 99_000
    assert micronets.binding_limit(m, latency_ms=40.0)[0] == "sram"
    with pytest.raises(ValueError, match="latency_ms"):
        micronets.binding_limit(m, latency_ms=0)


def test_latency_residuals_plot_matches_the_fit():
    rng = np.random.default_rng(0)
    rows = []
    for bb, a in (("dscnn", 2.0), ("mobilenetv2", 3.0)):
        for i in range(12):
            ops = float(rng.uniform(1e6, 2e7))
            rows.append({"backbone": bb, "model": f"{bb}-{i}", "target": "stm32f446re", "ops": ops,
                         "latency_ms": a * ops / 1e6 + 1.0 + rng.normal(0, 0.3)})
    study = micronets_latency.LatencyStudy(rows)
    fit = micronets_latency.fit_latency(study)
    axes = plots.latency_residuals(study, fit)
    pts = axes[0].collections
    assert len(pts) == 2
    for coll, bb in zip(pts, ("dscnn", "mobilenetv2")):
        res = coll.get_offsets()[:, 1]
        sd = fit.get(bb, "stm32f446re")["resid_sd_pct"]
        assert np.std(res) == pytest.approx(sd, rel=1e-6)    # the fit's residuals, % of latency
        assert abs(np.mean(res)) < 2 * sd

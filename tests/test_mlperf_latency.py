"""Latency honesty: documented memory facts, the flash-read count of the emulator, and the
committed MLPerf Tiny estimate / published record (results/20261202-latency-honesty)."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import compare, targets

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "results" / "20261202-latency-honesty" / "mlperf_latency.json"


def test_memory_facts_are_documented_not_fitted():
    t = targets.get("nucleo-l4r5zi")
    assert (t.core, t.clock_hz, t.flash_wait_states, t.flash_line_bytes) == ("cortex-m4", 120_000_000, 5, 8)
    assert "RM0432" in t.memory_source
    for name in targets.names():
        u = targets.get(name)
        assert (u.flash_wait_states is None) == (u.memory_source == "")
        if u.flash_wait_states is not None:
            assert u.memory_source.startswith("RM0") and u.flash_line_bytes in (8, 16, 32)


def test_published_latencies_come_from_the_anchors():
    from helpers.deploy import mlperf
    row = [r for r in compare.PUBLISHED if r["method"] == "MLPerf Tiny reference"][0]
    for ms in mlperf.PUBLISHED_MS.values():
        assert f"{ms} ms" in row["result"]
    assert set(mlperf.MLPERF_MODELS.values()) == set(mlperf.PUBLISHED_MS)


def test_flash_reads_are_counted_and_charged_at_the_documented_wait_states():
    """FC autoencoder (weights read once each from flash): every weight byte is read, the
    stall is exactly wait states x line fetches, and the zero-WS cycles are unchanged."""
    from helpers.deploy import zoo
    from helpers.engine import emulator
    b = zoo.build("fc-autoencoder", io="int8")
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 640), dtype=np.int8)
    plain = emulator.run(b, x, target="nucleo-l4r5zi", plan="tflm", kernels="dsp")
    r = emulator.run(b, x, target="nucleo-l4r5zi", plan="tflm", kernels="dsp",
                     flash_wait_states=True)
    assert r.cycles == plain.cycles and np.array_equal(r.output, plain.output)
    assert plain.latency_ms_with_flash is None and plain.flash_stall_cycles == 0
    reads = sum(o["flash_reads"] for o in r.per_op)
    weights = 640 * 128 + 3 * 128 * 128 + 128 * 8 + 8 * 128 + 3 * 128 * 128 + 128 * 640
    assert reads >= weights // 4  # at most 4 weight bytes per 32-bit load
    assert r.flash_stall_cycles == pytest.approx(5 * sum(o["flash_stall_cycles"] / 5 for o in r.per_op))
    assert r.flash_stall_cycles <= 5 * reads
    assert r.latency_ms_with_flash == pytest.approx((r.cycles + r.flash_stall_cycles) / 120e3)


def test_committed_record_is_consistent():
    d = json.loads(RECORD.read_text())
    assert d["command"].startswith("python -m helpers.deploy.mlperf")
    assert d["target"] == "nucleo-l4r5zi" and d["facts"]["flash_wait_states"] == 5
    assert len(d["rows"]) == 4
    for r in d["rows"]:
        assert r["zero_ws_over_published"] == pytest.approx(r["zero_ws_ms"] / r["published_ms"])
        assert r["zero_ws_ms"] <= r["flash_ws_ms"]
        assert r["zero_ws_ms"] == pytest.approx(r["cycles_zero_ws"] / 120e3)
    z = [r["zero_ws_over_published"] for r in d["rows"]]
    assert d["ratio_range_zero_ws"] == [min(z), max(z)]


@pytest.mark.slow
def test_record_reproduces():
    """Re-run the four emulations: deterministic, so the committed figures come back."""
    from helpers.deploy import mlperf
    d = json.loads(RECORD.read_text())
    rep = mlperf.mlperf_latency(progress=False)
    for a, b in zip(rep.rows, d["rows"]):
        assert a["model"] == b["model"] and a["instructions"] == b["instructions"]
        assert a["flash_ws_ms"] == pytest.approx(b["flash_ws_ms"], rel=1e-9)

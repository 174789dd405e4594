"""``python -m helpers.profile``: run as a subprocess on model files, as a user would."""
import json
import os
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from helpers import resources, targets, tflite_io

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "helpers.profile", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A model "the reader brings": TFLite-Micro's micro_speech at its published shape."""
    from helpers.deploy import zoo
    p = tmp_path_factory.mktemp("byom") / "micro_speech.tflite"
    p.write_bytes(zoo.build("micro-speech", io="int8"))
    return p


def _big_conv_file(path: Path) -> Path:
    """A 1x1 CONV_2D over a 1x128x128x16 int8 tensor: 256 KB in + 256 KB out."""
    fb = tflite_io._schema()
    m = fb.ModelT()
    m.version = 3
    oc = fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = 3, 3, 1
    m.operatorCodes = [oc]

    def tensor(shape, typ, buf):
        t = fb.TensorT()
        t.shape, t.type, t.buffer = np.array(shape, np.int32), typ, buf
        q = fb.QuantizationParametersT()
        q.scale, q.zeroPoint = np.array([0.05], np.float32), np.array([0], np.int64)
        t.quantization = q
        return t

    sg = fb.SubGraphT()
    sg.tensors = [tensor((1, 128, 128, 16), 9, 0), tensor((16, 1, 1, 16), 9, 1),
                  tensor((16,), 2, 2), tensor((1, 128, 128, 16), 9, 0)]
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1, 2], np.int32), np.array([3], np.int32)
    o = fb.Conv2DOptionsT()
    o.strideW = o.strideH = 1
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.Conv2DOptions, o
    sg.operators = [op]
    sg.inputs, sg.outputs = np.array([0], np.int32), np.array([3], np.int32)
    m.subgraphs = [sg]
    bufs = []
    for n in (0, 256, 64):
        bb = fb.BufferT()
        bb.data = np.ones(n, np.uint8) if n else None
        bufs.append(bb)
    m.buffers = bufs
    b = flatbuffers.Builder(4096)
    tflite_io.pack_model(m, b)
    path.write_bytes(bytes(b.Output()))
    return path


def test_profile_prints_fit_and_table_and_writes_csv_json(model_file, tmp_path):
    from helpers import deploy
    csv, js = tmp_path / "layers.csv", tmp_path / "report.json"
    r = _cli(model_file, "--target", "stm32f746zg", "--csv", csv, "--json", js)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "verdict: FITS stm32f746zg" in out and "of 327,680 B SRAM left" in out
    b = model_file.read_bytes()
    m = tflite_io.read(b)
    for op in m.ops:
        assert op.opcode in out
    import pandas as pd
    t = pd.read_csv(csv)
    assert len(t) == len(m.ops)
    assert {"opcode", "output_shape", "macs", "params", "live_sram_bytes"} <= set(t.columns)
    d = json.loads(js.read_text())
    assert d["flash_bytes"] == len(b) and d["fits"] is True
    # the peak SRAM printed is TFLite-Micro's measured arena head, to the byte
    head = deploy.measure_arena(b).head
    assert d["sram_bytes"] == head == resources.plan_tflite(b).peak_sram_bytes
    assert d["sram_margin_bytes"] == 320 * 1024 - head and f"{head:,} B peak" in out
    assert d["macs"] == int(t["macs"].sum()) > 0
    assert sum(d["flash"][p] for p in resources.FILE_PARTS) == len(b)


def test_does_not_fit_says_by_how_much(tmp_path):
    f = _big_conv_file(tmp_path / "big.tflite")
    r = _cli(f, "--target", "stm32f746zg")
    assert r.returncode == 1, r.stderr
    over = 2 * 128 * 128 * 16 - 320 * 1024
    assert f"DOES NOT FIT: {over:,} B over the 327,680 B SRAM budget" in r.stdout
    assert "verdict: DOES NOT FIT stm32f746zg" in r.stdout
    r = _cli(f, "--target", "stm32f767zi")  # 512 KB SRAM: fits by 0 B? 524,288 = 512 KB
    assert r.returncode == 0 and "fits: 0 B" in r.stdout


def test_bad_inputs_give_one_clear_line(tmp_path, model_file):
    r = _cli(tmp_path / "missing.tflite")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "missing.tflite: no such file" in r.stderr
    txt = tmp_path / "notes.txt"
    txt.write_text("these are not the weights you are looking for\n" * 4)
    r = _cli(txt)
    assert r.returncode == 2 and "notes.txt: not a .tflite model" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    r = _cli(model_file, "--target", "arduino-uno")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "unknown target 'arduino-uno'" in r.stderr
    for name in targets.names():
        assert name in r.stderr


def test_emulate_adds_per_layer_cycles(model_file, tmp_path):
    js = tmp_path / "r.json"
    r = _cli(model_file, "--target", "nucleo-l4r5zi", "--emulate", "--flash-wait-states",
             "--json", js)
    assert r.returncode == 0, r.stderr
    d = json.loads(js.read_text())
    assert d["emulation"] is not None, d["emulation_note"]
    cyc = [row["cycles"] for row in d["layers"]]
    assert all(c > 0 for c in cyc)
    assert sum(cyc) == pytest.approx(d["emulation"]["cycles"], abs=len(cyc))
    assert d["emulation"]["latency_ms"] == pytest.approx(d["emulation"]["cycles"] / 120e3, rel=1e-9)
    assert "emulated" in r.stdout and "cycles" in r.stdout
    # the board's documented 5 wait states, charged per flash line the weights are read from
    e = d["emulation"]
    assert e["flash_stall_cycles"] > 0 and e["flash_stall_cycles"] % 5 == 0
    assert e["latency_ms_with_flash"] == pytest.approx((e["cycles"] + e["flash_stall_cycles"]) / 120e3)
    assert sum(row["flash_stall_cycles"] for row in d["layers"]) == pytest.approx(e["flash_stall_cycles"], abs=len(cyc))

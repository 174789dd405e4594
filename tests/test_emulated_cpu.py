"""scripts/emulated_cpu.py: the notebook kernel on a QEMU CPU model (issue 17, a second CPU)."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("emulated_cpu", ROOT / "scripts" / "emulated_cpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_kernelspec_runs_this_interpreter_under_qemu(tmp_path):
    mod = _script()
    where = mod.kernelspec_dir("/usr/bin/qemu-x86_64", "Haswell-v4", tmp_path)
    spec = json.loads((where / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][:4] == ["/usr/bin/qemu-x86_64", "-cpu", "Haswell-v4", sys.executable]
    assert spec["argv"][4:] == ["-m", "ipykernel_launcher", "-f", "{connection_file}"]


def test_without_qemu_it_says_what_to_install(monkeypatch):
    mod = _script()
    monkeypatch.setattr(mod.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="apt-get install qemu-user"):
        mod.main(["run", "--", "--nb", "00", "--out", "runs/x"])


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user not installed")
def test_an_unknown_cpu_model_is_refused_before_any_run():
    mod = _script()
    with pytest.raises(SystemExit, match="no CPU model 'Pentium-9000'"):
        mod.main(["run", "--cpu", "Pentium-9000", "--", "--nb", "00", "--out", "runs/x"])


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user not installed")
def test_no_runner_arguments_is_refused():
    mod = _script()
    with pytest.raises(SystemExit, match="give the runner's arguments"):
        mod.main(["run", "--cpu", "Haswell-v4"])

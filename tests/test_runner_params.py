"""helpers.runner: -p parsing like papermill, preset / run.json validation, failure reports."""
import errno
import json
import os

import pytest

from helpers import arithmetic, runner


def _write_nb(path, params_source, *cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params_source)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


# ------------------------------------------------------------------ -p / -y / -r

_VALUES = ["010", "0x10", "no", "yes", "1e3", "-5", "True", "true", "False", "None", "null",
           "[1,2", "[1, 2]", "1.5", "abc", "", " 7 ", "1_000", "inf", "nan", "-0.0", "0o17",
           "{a: 1}", "2024-01-01"]


@pytest.mark.parametrize("value", _VALUES)
def test_p_values_resolve_like_papermill(value):
    from papermill.cli import _resolve_type
    got, want = runner.resolve_cli_value(value), _resolve_type(value)
    assert type(got) is type(want)
    assert got == want or (got != got and want != want)  # nan


def test_p_values_are_not_yaml():
    v = runner.resolve_cli_value
    assert v("010") == 10 and v("0x10") == "0x10" and v("no") == "no" and v("1e3") == 1000.0
    assert v("-5") == -5 and v("True") is True and v("None") is None and v("[1,2") == "[1,2"
    assert runner._parse_overrides([["SEED", "010"], ["DATASET", "no"]]) == {"SEED": 10, "DATASET": "no"}


def test_yaml_and_raw_parameters_in_papermill_order():
    out = runner._parse_overrides([["A", "2"]], ["{A: 1, B: [1, 2], C: 2024-01-01}"], [["B", "010"]])
    assert out == {"A": 2, "B": "010", "C": "2024-01-01"}  # -y, then -p, then -r; no dates
    with pytest.raises(runner.PresetError, match=r"-y '\[1,2' is not valid YAML: .*line 1") as e:
        runner._parse_overrides(None, ["[1,2"])
    assert "\n" not in str(e.value)
    with pytest.raises(runner.PresetError, match="must be a YAML mapping"):
        runner._parse_overrides(None, ["[1, 2]"])


def test_unknown_parameter_fails_before_work_in_one_line(tmp_path, monkeypatch):
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1\nSEED = 0")
    (presets / "default.yaml").write_text("{}\n")
    called = []
    with pytest.raises(runner.PresetError) as e:
        runner.run("default", overrides=runner._parse_overrides([["EPOHCS", "3"]]), out=tmp_path / "run",
                   nb_dir=nbs, presets_dir=presets, execute_fn=lambda *a, **k: called.append(a))
    msg = str(e.value)
    assert "\n" not in msg and "EPOHCS" in msg and "allowed: ['EPOCHS', 'SEED']" in msg
    assert not called and not (tmp_path / "run").exists()  # nothing started, no folder


# ------------------------------------------------------------------ presets

@pytest.mark.parametrize("rng,match", [
    ("[hi, lo]", r"\['hi', 'lo'\]"),
    ("[9000, 100]", "low > high"),
    ("[1, 2, 3]", "two-element"),
    ("[1]", "two-element"),
    ("5", "two-element"),
    ("[true, 1]", "allowed"),
    ("[null, 3]", "allowed"),
    ("[.nan, 3]", "allowed"),
    ("[true, false]", "allowed"),
    ("[1e3, 2e3]", "YAML reads '1e3' as text"),
])
def test_bad_expected_ranges_are_refused(tmp_path, rng, match):
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1")
    (presets / "p.yaml").write_text(f"00-demo:\n  expect: {{macs: {rng}}}\n")
    with pytest.raises(runner.PresetError, match=match) as e:
        runner.resolve("p", nb_dir=nbs, presets_dir=presets)
    assert "p.yaml" in str(e.value) and "00-demo" in str(e.value) and "expect.macs" in str(e.value)


def test_good_expected_ranges_pass(tmp_path):
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1")
    (presets / "p.yaml").write_text("00-demo:\n  expect: {a: [0.5, 1], b: [3, 3], c: [true, true],"
                                    " d: [x, x], e: [-1.0e+3, 0]}\n")
    assert runner.resolve("p", nb_dir=nbs, presets_dir=presets)[0][2]["c"] == [True, True]


@pytest.mark.parametrize("text,key", [
    ("00-demo:\n  parameters: {EPOCHS: 2}\n00-demo:\n  parameters: {EPOCHS: 3}\n", "00-demo"),
    ("00-demo:\n  parameters:\n    EPOCHS: 2\n    EPOCHS: 3\n", "EPOCHS"),
    ("00-demo:\n  expect: {acc: [0.5, 1], acc: [0.1, 1]}\n", "acc"),
])
def test_duplicate_yaml_keys_are_refused(tmp_path, text, key):
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1")
    (presets / "dup.yaml").write_text(text)
    with pytest.raises(runner.PresetError, match=f"dup.yaml.*duplicate key '{key}'.*line") as e:
        runner.resolve("dup", nb_dir=nbs, presets_dir=presets)
    assert "\n" not in str(e.value)


def test_yaml_merge_keys_still_work():
    data = runner.yaml.load("a: &b {X: 1, Y: 2}\nc: {<<: *b, Y: 3}\n", Loader=runner._UniqueKeyLoader)
    assert data["c"] == {"X": 1, "Y": 3}


# ------------------------------------------------------------------ run.json

def test_run_json_is_written_atomically(tmp_path, monkeypatch):
    runner.write_run_json(tmp_path, {"notebooks": {"00-demo": {}}})
    real_replace = os.replace

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        runner.write_run_json(tmp_path, {"notebooks": {"00-demo": {}, "01-x": {}}})
    monkeypatch.setattr(runner.os, "replace", real_replace)
    assert json.loads((tmp_path / "run.json").read_text()) == {"notebooks": {"00-demo": {}}}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temporary file left


@pytest.mark.parametrize("content", ['{"preset": "default", "notebooks": {"00-de', "", "\xff\xfe",
                                     "[1, 2]"])
def test_resume_from_a_corrupt_run_json_is_one_clear_line(tmp_path, content, capsys):
    nbs = tmp_path / "nb"
    nbs.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(runner.RunFolderError, match="run.json"):
        runner.run(resume=run_dir, nb_dir=nbs, execute_fn=lambda *a, **k: None)
    with pytest.raises(SystemExit) as e:
        runner.main(["run", "--resume", str(run_dir)])
    msg = str(e.value.code)
    assert msg.startswith("error: ") and "run.json" in msg and "\n" not in msg
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------ failure reports

def test_cell_error_is_reported_with_name_message_cell_and_path(tmp_path):
    from papermill.exceptions import PapermillExecutionError
    exc = PapermillExecutionError(cell_index=4, exec_count=3, source="raise ValueError(...)",
                                  ename="ValueError", evalue="EPOCHS must be positive, got 0",
                                  traceback=["\x1b[31mValueError\x1b[0m: EPOCHS must be positive"])
    assert str(exc).startswith("\n")  # why the first line used to be empty
    line = runner.describe_failure(exc, "00-demo", tmp_path / "00-demo.ipynb")
    assert line == (f"00-demo: ValueError: EPOCHS must be positive, got 0 (cell In [3], index 4); "
                    f"executed notebook: {tmp_path / '00-demo.ipynb'}")


def test_cleanup_does_not_mask_a_full_disk(tmp_path, monkeypatch):
    """papermill dies of ENOSPC leaving a truncated notebook: the OSError is what the
    runner reports, not sanitize()'s NotJSONError on the truncated file."""
    import papermill
    nbs = tmp_path / "nb"
    nbs.mkdir()
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1", "print(EPOCHS)")

    def dies_of_full_disk(src, out, **kwargs):
        with open(out, "w") as f:
            f.write('{"cells": [{"cell_type": "co')
        raise OSError(errno.ENOSPC, "No space left on device", out)

    monkeypatch.setattr(papermill, "execute_notebook", dies_of_full_disk)
    with pytest.raises(OSError) as e:
        runner.execute(nbs / "00-demo.ipynb", tmp_path / "run", {})
    assert e.value.errno == errno.ENOSPC
    line = runner.describe_failure(e.value, "00-demo")
    assert "OSError: [Errno 28] No space left on device" in line and "cleaning" in line
    assert "NotJSONError" in line  # noted, not reported instead


def test_real_failing_notebook_reports_the_cell_error_without_sigint(tmp_path, monkeypatch, capfd):
    """One real kernel: the FAILED line carries the cell's error, and the kernel is shut down
    without the SIGINT that made ipykernel log 'KeyboardInterrupt caught in kernel'."""
    from jupyter_client.manager import KernelManager
    nbs, presets = tmp_path / "nb", tmp_path / "presets"
    nbs.mkdir(), presets.mkdir()
    (presets / "p.yaml").write_text("{}\n")
    _write_nb(nbs / "00-demo.ipynb", "EPOCHS = 1", "print('ok')",
              "raise ValueError(f'EPOCHS must be positive, got {EPOCHS - 1}')")
    signals = []
    real_signal = KernelManager._async_signal_kernel

    async def recording_signal(self, signum):
        signals.append(signum)
        return await real_signal(self, signum)

    monkeypatch.setattr(KernelManager, "_async_signal_kernel", recording_signal)
    with pytest.raises(SystemExit, match="notebooks failed"):
        runner.run("p", out=tmp_path / "run", log=True, nb_dir=nbs, presets_dir=presets)
    out = capfd.readouterr()
    failed = next(ln for ln in out.out.splitlines() if "FAILED" in ln)
    assert "00-demo: ValueError: EPOCHS must be positive, got 0 (cell In [3]" in failed
    assert str(tmp_path / "run" / "00-demo.ipynb") in failed
    import signal
    assert signal.SIGINT not in signals
    assert "KeyboardInterrupt" not in out.out + out.err


def test_machine_facts_name_the_arithmetic(monkeypatch):
    for k in runner.ARITHMETIC_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    f = runner.machine_facts()
    assert f["env"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert f["logical_cores"] == os.cpu_count() and f["cpu"] and f["arch"]
    assert f["usable_cores"] == len(os.sched_getaffinity(0))
    assert set(f["simd"]) <= set(arithmetic._SIMD)
    assert f["cache_kib"] == arithmetic.cache_sizes()


def test_cache_sizes_read_what_linux_lists(tmp_path):
    for i, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                             ("2", "Unified", "1024K"), ("3", "Unified", "32M")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        for name, text in (("level", level), ("type", kind), ("size", size)):
            (d / name).write_text(text + "\n")
    (tmp_path / "index9").mkdir()  # unreadable entries are skipped, not guessed
    assert arithmetic.cache_sizes(str(tmp_path)) == {"L1d": 48, "L1i": 32, "L2": 1024, "L3": 32768}
    assert arithmetic.cache_sizes(str(tmp_path / "absent")) == {}

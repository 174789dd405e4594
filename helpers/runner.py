"""Execute the notebooks with papermill, from a preset, into a run folder.

Taught in the README (``make run``). Usage::

    python -m helpers.runner run                          # every notebook, preset "default"
    python -m helpers.runner run --preset smoke --nb 00   # one notebook, small parameters
    python -m helpers.runner run --nb 02 -p TARGET stm32f446re -p ROUNDS 50
    python -m helpers.runner run --resume runs/<folder>   # continue an interrupted run
    python -m helpers.runner run --arithmetic native      # TensorFlow's kernels by CPU (default: portable)
    python -m helpers.runner table runs/<folder>          # print a run's recorded figures
    python -m helpers.runner publish --nb 00              # re-execute into notebooks/ (committed copy)
    python -m helpers.runner publish --from runs/<folder> # or copy a default run's executed notebooks

Presets live in ``notebooks/presets/<name>.yaml``: a mapping from notebook name
(``00-overview``) to ``{parameters: {...}, expect: {figure: [low, high]}}``. Every
parameter name is checked against the notebook's ``parameters`` cell before any
work starts; unknown names or malformed presets fail with a clear message.

Each run writes ``runs/<timestamp>-<preset>/`` holding the executed notebooks, each
notebook's recorded figures (``NN-name.json``), and ``run.json`` with the parameters
and package versions. Nothing is overwritten: a new run gets a new folder. An
interrupted run continues with ``--resume runs/<folder>``: finished notebooks are kept and
searches pick up their trial stores in the folder.

May import: :mod:`helpers.run`, :mod:`helpers.arithmetic`; the top layer (it executes notebooks, which import the rest).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from helpers.arithmetic import (ARITHMETIC_ENV, ARITHMETICS, PortableUnavailable, arithmetic_env,  # noqa: F401
                                check_eigen_caches, choose_arithmetic, machine_facts, portable_env,
                                use_portable_arithmetic)
from helpers.run import format_figures, latest_run, load_figures

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PRESETS = NOTEBOOKS / "presets"
RUNS = ROOT / "runs"
_PACKAGES = ("tensorflow-cpu", "keras", "keras-tuner", "tflite-micro", "numpy", "papermill",
             "unicorn", "ziglang")


class PresetError(ValueError):
    """A malformed preset, an unknown notebook or an unknown parameter name.
    Taught in the README.
    """


class RunFolderError(ValueError):
    """A run folder whose ``run.json`` is unreadable (truncated, corrupt, not a mapping).
    Taught in the README.
    """


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (at any level)
    instead of silently keeping the last value."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *anchor" merges may be overridden, by design
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r} (first given on line {first + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_error(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: the problem and where (line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def notebooks(nb_dir: Path = NOTEBOOKS) -> list[Path]:
    """The numbered notebooks, in order (``NN-name.ipynb``). Taught in the README."""
    return sorted(p for p in Path(nb_dir).glob("[0-9][0-9]-*.ipynb"))


def select(selector: str | None, nb_dir: Path = NOTEBOOKS) -> list[Path]:
    """Notebooks matching ``selector`` ("02", "02-aging-evolution", "00,02"); all if None.
    Taught in 07-comparison.
    """
    nbs = notebooks(nb_dir)
    if not selector:
        return nbs
    out = []
    for part in str(selector).split(","):
        part = part.strip()
        hit = [p for p in nbs if p.stem == part or p.stem.split("-")[0] == part]
        if not hit:
            raise PresetError(f"no notebook matches NB={part!r}; known: {[p.stem for p in nbs]}")
        out += hit
    return out


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and default values of a notebook's ``parameters`` cell (literals only).
    Taught in the README.
    """
    import ast

    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise PresetError(f"{path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    params = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                params[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError as exc:
                raise PresetError(f"{path.name}: parameter {node.targets[0].id} is not a literal") from exc
        elif not isinstance(node, ast.Expr):  # docstrings / comments are fine
            raise PresetError(f"{path.name}: the parameters cell may only assign literals")
    return params


def load_preset(name: str, presets_dir: Path = PRESETS) -> dict[str, dict]:
    """Read and validate ``presets/<name>.yaml``; returns {notebook: {parameters, expect}}.
    Taught in the README.
    """
    path = Path(presets_dir) / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in Path(presets_dir).glob("*.yaml"))
        raise PresetError(f"unknown preset {name!r}; PRESET must be one of {known}")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise PresetError(f"preset {path.name} is not valid YAML: {_yaml_error(exc)}") from exc
    if not isinstance(data, dict):
        raise PresetError(f"preset {path.name} must map notebook names to settings")
    out = {}
    for nb, spec in data.items():
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - {"parameters", "expect"}:
            raise PresetError(f"preset {path.name}: {nb!r} must have only 'parameters' and 'expect' keys")
        params = spec.get("parameters") or {}
        expect = spec.get("expect") or {}
        if not isinstance(params, dict) or not isinstance(expect, dict):
            raise PresetError(f"preset {path.name}: {nb!r}: 'parameters' and 'expect' must be mappings")
        for key, rng in expect.items():
            _check_range(rng, f"preset {path.name}: {nb}: expect.{key}")
        out[str(nb)] = {"parameters": params, "expect": expect}
    return out


def _is_number(v) -> bool:
    import math
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_range(rng, where: str) -> None:
    """An expected figure: ``[low, high]`` numbers with low <= high, or ``[v, v]`` for an
    exact boolean / string value (what :func:`check_expectations` compares)."""
    allowed = ("allowed: [low, high] with numbers low <= high, or [true, true] / [false, false] / "
               "['text', 'text'] for an exact value")
    if not (isinstance(rng, list) and len(rng) == 2):
        raise PresetError(f"{where} is {rng!r}, not a two-element list; {allowed}")
    low, high = rng
    if _is_number(low) and _is_number(high):
        if low > high:
            raise PresetError(f"{where} is {rng!r}: low > high (an unordered range); "
                              f"write [{high}, {low}]")
        return
    if isinstance(low, (bool, str)) and type(low) is type(high) and low == high:
        return
    hint = ""
    for v in rng:
        if isinstance(v, str) and _is_number(resolve_cli_value(v)):
            hint = f" (YAML reads {v!r} as text: write it with a dot and a signed exponent, e.g. 1.0e+3)"
            break
    raise PresetError(f"{where} is {rng!r}; {allowed}{hint}")


def resolve(preset: str, selector: str | None = None, overrides: dict | None = None,
            nb_dir: Path = NOTEBOOKS, presets_dir: Path = PRESETS) -> list[tuple[Path, dict, dict]]:
    """(notebook, parameters, expectations) for each selected notebook, all validated first.
    Taught in 07-comparison.
    """
    spec = load_preset(preset, presets_dir)
    nbs = select(selector, nb_dir)
    stems = {p.stem for p in notebooks(nb_dir)}
    for nb in spec:
        if nb not in stems:
            raise PresetError(f"preset {preset!r} names unknown notebook {nb!r}; known: {sorted(stems)}")
    plan = []
    for path in nbs:
        allowed = notebook_parameters(path)
        entry = spec.get(path.stem, {"parameters": {}, "expect": {}})
        params = dict(entry["parameters"])
        params.update(overrides or {})
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise PresetError(f"{path.stem}: unknown parameter(s) {unknown}; allowed: {sorted(allowed)}")
        plan.append((path, params, entry["expect"]))
    return plan


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run depends on (kept in ``run.json``). Taught in the README."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_ABS = re.compile(r"(?<![\w.])(/(?:[\w.+-]+/)+)")


def sanitize(path: Path) -> None:
    """Strip absolute paths of this machine from an executed notebook (metadata and outputs).
    Taught in the README.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    pm = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if pm.get(key):
            pm[key] = Path(pm[key]).name
    home = str(Path.home())
    roots = sorted({str(ROOT), os.path.realpath(ROOT), sys.prefix, home, "/tmp"}, key=len, reverse=True)

    def clean(text: str) -> str:
        for r in roots:
            text = text.replace(r + "/", "").replace(r, ".")
        return _ABS.sub("<path>/", text)

    def walk(obj):
        if isinstance(obj, str):
            return clean(obj)
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, dict):
            return {k: (v if k.startswith("image/") else walk(v)) for k, v in obj.items()}
        return obj

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = nbformat.from_dict(walk(cell.outputs))
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    _atomic_write(Path(path), nbformat.writes(nb) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``:
    a full disk or a kill leaves the old file intact, never a truncated one."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_run_json(run_dir: Path, meta: dict) -> None:
    """``run_dir/run.json``, written atomically (see :func:`_atomic_write`).
    Taught in the README.
    """
    _atomic_write(Path(run_dir) / "run.json", json.dumps(meta, indent=1) + "\n")


def read_run_json(run_dir: Path) -> dict:
    """The ``run.json`` of a run folder; one clear error line if it is missing or corrupt.
    Taught in the README.
    """
    meta_path = Path(run_dir) / "run.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no run.json: not a run folder")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = (f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
                  if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text")
        raise RunFolderError(f"{meta_path} is truncated or corrupt ({detail}); it cannot be "
                             "resumed or published from: restore it or start a new run") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("notebooks", {}), dict):
        raise RunFolderError(f"{meta_path} is not a run record (expected a mapping with a "
                             "'notebooks' mapping)")
    return meta


def _kernel_manager_class():
    """jupyter_client's kernel manager, minus the SIGINT it sends a kernel before shutting
    it down (``_async_shutdown_kernel`` interrupts first). The runner shuts a kernel down
    only after its notebook finished or failed, so the interrupt has nothing to stop; it
    only makes ipykernel log a spurious "[IPKernelApp] ERROR | KeyboardInterrupt caught
    in kernel" when it lands while the kernel is still handling a message."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

        interrupt_kernel = _async_interrupt_kernel

    return QuietShutdownKernelManager


def execute(path: Path, out_dir: Path, parameters: dict, *, log: bool = False) -> tuple[Path, float]:
    """Run one notebook with papermill into ``out_dir``; returns (executed path, seconds).
    Taught in 07-comparison.
    """
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    env_before = os.environ.get("TINYNAS_RUN_DIR")
    os.environ["TINYNAS_RUN_DIR"] = str(out_dir.resolve())
    t0 = time.time()
    error: BaseException | None = None
    try:
        pm.execute_notebook(str(path), str(out), parameters=parameters, kernel_name="python3",
                            cwd=str(path.parent), progress_bar=False, log_output=log,
                            kernel_manager_class=_kernel_manager_class())
    except BaseException as exc:
        error = exc
        raise
    finally:
        if env_before is None:
            os.environ.pop("TINYNAS_RUN_DIR", None)
        else:
            os.environ["TINYNAS_RUN_DIR"] = env_before
        if out.exists():
            try:
                sanitize(out)
            except Exception as exc:  # e.g. the notebook was truncated by a full disk
                if error is None:
                    raise
                # cleanup must not mask the real error: keep it, note this one
                error.add_note(f"(then cleaning {out} failed too: {type(exc).__name__}: "
                               f"{_first_line(exc)})")
    return out, time.time() - t0


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")


def describe_failure(exc: BaseException, stem: str, executed: Path | None = None) -> str:
    """One line saying why notebook ``stem`` failed.

    For an error raised by a cell (papermill's ``PapermillExecutionError``): the
    exception type and message, the cell's index in the executed notebook and its
    execution count, and the executed notebook's path. Otherwise the exception type
    and the first non-empty line of its message (plus any notes, e.g. a cleanup that
    failed after it). Taught in the README.
    """
    where = f"; executed notebook: {executed}" if executed is not None else ""
    if hasattr(exc, "ename") and hasattr(exc, "cell_index"):
        evalue = " ".join(str(exc.evalue or "").split())
        return (f"{stem}: {exc.ename}: {evalue} (cell In [{exc.exec_count}], index {exc.cell_index})"
                f"{where}")
    notes = " ".join(getattr(exc, "__notes__", []) or [])
    return f"{stem}: {type(exc).__name__}: {_first_line(exc)}" + (f" {notes}" if notes else "") + where


def check_expectations(figures: dict, expect: dict) -> list[str]:
    """Messages for every expected figure that is missing or outside [low, high].
    Taught in the README.
    """
    bad = []
    for key, (low, high) in expect.items():
        if key not in figures:
            bad.append(f"{key}: not recorded")
            continue
        val = figures[key]
        if isinstance(low, bool) or isinstance(val, str):
            if val != low:
                bad.append(f"{key} = {val!r}, expected {low!r}")
        elif val is None or not (low <= val <= high):
            bad.append(f"{key} = {val}, expected within [{low}, {high}]")
    return bad


def figures_table(run_dir: Path) -> str:
    """All recorded figures of a run as one plain-text table. Taught in the README."""

    figs = load_figures(run_dir)
    parts = []
    for nb, f in figs.items():
        parts.append(f"== {nb}\n{format_figures(f)}")
    comparison = run_dir / "comparison.txt"
    if comparison.exists():
        parts.append(comparison.read_text())
    return "\n\n".join(parts) if parts else f"(no figures recorded in {run_dir})"


def run(preset: str = "default", selector: str | None = None, overrides: dict | None = None,
        out: Path | None = None, log: bool = True, *, resume: Path | None = None, arithmetic: str = "auto",
        eigen_caches: str | None = None, nb_dir: Path = NOTEBOOKS, presets_dir: Path = PRESETS,
        execute_fn=None) -> Path:
    """Execute the selected notebooks into a new run folder and print their figures.

    ``arithmetic``: ``"auto"`` (portable where the CPU can), ``"portable"`` or ``"native"``
    (:func:`choose_arithmetic`); what ran is recorded in ``run.json`` as ``"arithmetic"``. A
    resumed run keeps the arithmetic it started with. ``eigen_caches`` (``"L1,L2,L3"`` bytes or
    ``"cpuid"``) replaces the portable arithmetic's pin of Eigen's cache sizes
    (:func:`helpers.arithmetic.arithmetic_env`), recorded as ``"eigen_caches"`` and kept on resume.

    ``resume``: an interrupted run folder. Its notebooks run again with the parameters
    recorded in its ``run.json``, except those that finished there; a search notebook
    continues from the trial store it left in the folder, so no finished trial is lost
    (preset, selector and overrides must not be given then). Taught in 02-aging-evolution.
    """
    execute_fn = execute_fn or execute
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if resume is not None:
        if selector or overrides or out:
            raise PresetError("a resumed run keeps its recorded notebooks and parameters; "
                              "give no --nb, -p or --out with --resume")
        run_dir = Path(resume)
        meta = read_run_json(run_dir)
        finished = meta.get("wall_seconds", {})
        try:  # the preset's expectations, if it still exists
            expects = {nb: e["expect"] for nb, e in load_preset(meta.get("preset", ""), presets_dir).items()}
        except PresetError:
            expects = {}
        plan = []
        for stem, params in meta.get("notebooks", {}).items():
            path = Path(nb_dir) / f"{stem}.ipynb"
            if not path.is_file():
                raise PresetError(f"{stem} of {run_dir} is no longer in {nb_dir}")
            unknown = sorted(set(params) - set(notebook_parameters(path)))
            if unknown:
                raise PresetError(f"{stem}: recorded parameter(s) {unknown} no longer exist")
            if stem in finished:
                print(f"--> {stem} finished earlier ({finished[stem]:.0f} s), kept", flush=True)
            else:
                plan.append((path, params, expects.get(stem, {})))
        meta.setdefault("resumed", []).append(stamp)
        recorded = meta.get("arithmetic", "native")
        if arithmetic not in ("auto", recorded):
            raise PresetError(f"{run_dir} started with the {recorded} arithmetic; a resume keeps it "
                              f"(drop --arithmetic {arithmetic})")
        chosen = recorded
        if eigen_caches not in (None, meta.get("eigen_caches")):
            raise PresetError(f"{run_dir} started with eigen_caches {meta.get('eigen_caches')}; a resume keeps it")
        eigen_caches = meta.get("eigen_caches")
    else:
        plan = resolve(preset, selector, overrides, nb_dir=nb_dir, presets_dir=presets_dir)
        run_dir = Path(out) if out else RUNS / f"{stamp}-{preset}"
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(f"run folder {run_dir} exists and is not empty; runs never overwrite "
                                  f"(continue an interrupted one with --resume {run_dir})")
        chosen = choose_arithmetic(arithmetic)  # before anything is created: "portable" fails here
        try:  # before anything is created
            check_eigen_caches(eigen_caches, chosen)
        except ValueError as exc:
            raise PresetError(str(exc)) from None
        run_dir.mkdir(parents=True, exist_ok=True)
        meta = {"preset": preset, "started": stamp, "arithmetic": chosen,
                "versions": package_versions(), "notebooks": {p.stem: params for p, params, _ in plan}}
        if eigen_caches is not None:
            meta["eigen_caches"] = eigen_caches
    with arithmetic_env(chosen, eigen_caches):
        if resume is None:
            meta["machine"] = machine_facts()  # the environment the notebooks see
        write_run_json(run_dir, meta)
        failures = _execute_plan(plan, run_dir, meta, execute_fn, log)
    print(f"\nrun folder: {run_dir}\n")
    print(figures_table(run_dir))
    if failures:
        raise SystemExit("notebooks failed:\n  " + "\n  ".join(failures)
                         + f"\ncontinue with: python -m helpers.runner run --resume {run_dir}")
    return run_dir


def _execute_plan(plan, run_dir: Path, meta: dict, execute_fn, log: bool) -> list[str]:
    """Execute (notebook, parameters, expected ranges) in order into ``run_dir``, recording each
    finished notebook's time and missed expectations in its ``run.json``; returns the failures."""
    failures = []
    for path, params, expect in plan:
        print(f"--> {path.stem} {params or ''}", flush=True)
        try:
            _, secs = execute_fn(path, run_dir, params, log=log)
        except Exception as exc:  # keep going: report every notebook
            executed = run_dir / path.name
            failures.append(describe_failure(exc, path.stem, executed if executed.exists() else None))
            print(f"    FAILED ({failures[-1]})", flush=True)
            continue
        meta.setdefault("wall_seconds", {})[path.stem] = round(secs, 1)
        print(f"    done in {secs:.0f} s", flush=True)
        if expect:

            missed = check_expectations(load_figures(run_dir).get(path.stem, {}), expect)
            meta.setdefault("expectations_missed", {})[path.stem] = missed
            print("    the preset's expected ranges: " + ("all met" if not missed else
                  "MISSED " + "; ".join(missed)), flush=True)
        write_run_json(run_dir, meta)  # a resume skips it
    return failures


def record_arithmetic(path: Path, arithmetic: str) -> None:
    """Write the arithmetic an executed notebook ran under into its metadata
    (``metadata.tinynas.arithmetic``), so a committed notebook says it itself. Taught in the README."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("tinynas", {})["arithmetic"] = arithmetic
    nbformat.write(nb, path)


def publish(selector: str | None = None, from_run: Path | None = None, nb_dir: Path = NOTEBOOKS,
            arithmetic: str = "auto", presets_dir: Path = PRESETS, execute_fn=None) -> None:
    """Re-execute notebooks at their default parameters and write them back into notebooks/.

    This is how the committed copies (with outputs) are refreshed. Each execution
    keeps its run folder (``runs/<timestamp>-publish-<notebook>/``: figures and saved
    models), so 07-comparison can compare the published results. ``from_run``: copy
    the executed notebooks of a finished ``make run`` folder instead of re-executing;
    only notebooks that ran there with their default parameters (no preset or
    command-line overrides) and whose source cells are unchanged since are accepted.
    Taught in the README.
    """
    import shutil

    if from_run is not None:
        import nbformat

        from_run = Path(from_run)
        meta = read_run_json(from_run)
        for path in select(selector, nb_dir):
            executed = from_run / path.name
            if path.stem not in meta.get("notebooks", {}) or not executed.is_file():
                raise PresetError(f"{path.stem} did not run in {from_run}")
            if meta["notebooks"][path.stem]:
                raise PresetError(f"{path.stem} ran in {from_run} with parameters "
                                  f"{meta['notebooks'][path.stem]}, not its defaults")
            if path.stem not in meta.get("wall_seconds", {}):
                raise PresetError(f"{path.stem} did not finish in {from_run}")
            src = [c.source for c in nbformat.read(path, as_version=4).cells]
            ran = [c.source for c in nbformat.read(executed, as_version=4).cells
                   if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
            if src != ran:
                raise PresetError(f"{path.name} changed since it ran in {from_run}; execute it again")
            ran_under = meta.get("arithmetic", "native")
            shutil.copyfile(executed, path)
            record_arithmetic(path, ran_under)
            print(f"published {path.name} from {from_run} ({meta['wall_seconds'][path.stem]:.0f} s, "
                  f"{ran_under} arithmetic)")
        return
    chosen = choose_arithmetic(arithmetic)  # once: a CPU that cannot run it warns once
    for path in select(selector, nb_dir):
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        # a default run of its own (run.json, expectations): an interrupted publish continues with
        # run --resume, then publish --from
        out = run("default", path.stem, out=RUNS / f"{stamp}-publish-{path.stem}", arithmetic=chosen,
                  nb_dir=nb_dir, presets_dir=presets_dir, execute_fn=execute_fn)
        record_arithmetic(out / path.name, chosen)
        shutil.copyfile(out / path.name, path)
        print(f"published {path.name} ({read_run_json(out)['wall_seconds'][path.stem]:.0f} s, "
              f"{chosen} arithmetic); run folder {out}")


def resolve_cli_value(value: str):
    """A ``-p NAME VALUE`` value, exactly as papermill's CLI reads it
    (``papermill.cli._resolve_type``): "True" / "False" / "None", else an int if
    ``int(value)`` accepts it, else a float if ``float(value)`` does, else the string.
    So ``010`` is 10, ``0x10`` and ``no`` stay strings, ``1e3`` is 1000.0. Taught in the README."""
    if value == "True":
        return True
    if value == "False":
        return False
    if value == "None":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _parse_overrides(pairs: list[list[str]] | None, yaml_texts: list[str] | None = None,
                     raw_pairs: list[list[str]] | None = None) -> dict:
    """Command-line parameters in papermill's order: ``-y`` YAML mappings, then
    ``-p NAME VALUE`` (:func:`resolve_cli_value`), then ``-r NAME VALUE`` (raw strings)."""
    from papermill.iorw import NoDatesSafeLoader

    out: dict = {}
    for text in yaml_texts or []:
        try:
            data = yaml.load(text, Loader=NoDatesSafeLoader) or {}
        except yaml.YAMLError as exc:
            raise PresetError(f"-y {text!r} is not valid YAML: {_yaml_error(exc)}") from None
        if not isinstance(data, dict):
            raise PresetError(f"-y {text!r} must be a YAML mapping of parameter names to values, "
                              f"e.g. -y '{{EPOCHS: 2}}'")
        out.update(data)
    for name, value in pairs or []:
        out[name] = resolve_cli_value(value)
    for name, value in raw_pairs or []:
        out[name] = value
    return out


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a timeout, a cancelled CI job) interrupts the run like Ctrl-C, so papermill shuts
    the kernel down (a search chief in it then stops its workers, which also die with it)."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # pragma: no cover - not the main thread
        pass


def main(argv: list[str] | None = None) -> None:
    """The ``python -m helpers.runner`` command line (``run``, ``table``, ``publish``). Taught in the README."""
    ap = argparse.ArgumentParser(prog="python -m helpers.runner", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute notebooks into runs/<timestamp>-<preset>/")
    r.add_argument("--preset", default="default")
    r.add_argument("--nb", default=None, help="notebook number(s) or name(s), comma separated")
    r.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter, read like papermill's -p: True/False/None, int, float, "
                        "else a string")
    r.add_argument("-y", "--parameters-yaml", action="append", metavar="YAML",
                   help="parameters as a YAML mapping, like papermill's -y")
    r.add_argument("-r", "--parameter-raw", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter kept as a string, like papermill's -r")
    r.add_argument("--out", default=None, help="run folder (must be new or empty)")
    r.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run folder: its unfinished notebooks, same parameters")
    arith_help = ("floating-point kernels: 'portable' pins them (AVX2, one thread) so figures do not depend "
                  "on the CPU's vector units or core count (arithmetic.portable_env); 'native' lets TensorFlow "
                  "pick by CPU; 'auto' (default) is portable where this CPU can run it")
    t = sub.add_parser("table", help="print the recorded figures of a run folder")
    t.add_argument("run_dir", nargs="?", default=None, help="default: the latest run")
    pb = sub.add_parser("publish", help="re-execute notebooks into notebooks/ (committed copies)")
    pb.add_argument("--nb", default=None)
    pb.add_argument("--from", dest="from_run", default=None,
                    help="copy from a finished run folder (default parameters) instead of executing")
    for p in (r, pb):
        p.add_argument("--arithmetic", choices=ARITHMETICS, default="auto", help=arith_help)
        p.add_argument("--portable", dest="arithmetic", action="store_const", const="portable",
                       help="the same as --arithmetic portable")
    r.add_argument("--eigen-caches", default=None, metavar="L1,L2,L3|cpuid",
                   help="portable only: the cache sizes (bytes) Eigen blocks its products by, instead of the "
                        "pinned ones of the committed runs; 'cpuid' for this CPU's (what another CPU computed "
                        "without the pin)")
    args = ap.parse_args(argv)
    _interrupt_on_sigterm()
    try:
        if args.cmd == "run":
            run(args.preset, args.nb,
                _parse_overrides(args.parameter, args.parameters_yaml, args.parameter_raw),
                args.out, resume=args.resume, arithmetic=args.arithmetic, eigen_caches=args.eigen_caches)
        elif args.cmd == "table":
            path = Path(args.run_dir) if args.run_dir else latest_run()
            print(figures_table(path))
        elif args.cmd == "publish":
            publish(args.nb, args.from_run, arithmetic=args.arithmetic)
    except (PresetError, RunFolderError, FileExistsError, FileNotFoundError, PortableUnavailable) as exc:
        raise SystemExit(f"error: {exc}")


if __name__ == "__main__":
    main()

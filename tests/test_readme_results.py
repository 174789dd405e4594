"""Evidence lives in the repository: every number in the README's "What was measured" table
appears in the committed results file its row links to (``results/...json``)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUM = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?")


def _rows():
    text = (ROOT / "README.md").read_text()
    sec = text.split("## What was measured", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in sec.splitlines() if ln.startswith("|") and not set(ln) <= set("|- ")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows[1:]]  # skip the header


def _numbers(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            yield float(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, str):
        for m in NUM.finditer(obj):
            yield float(m.group().replace(",", ""))


def _matches(token: str, values) -> bool:
    x = float(token.replace(",", ""))
    d = len(token.split(".")[1]) if "." in token else 0
    for v in values:
        for cand in (v, 100 * v, v / 60, v / 3600, v / 1024):
            if round(cand, d) == round(x, d) or math.isclose(cand, x, rel_tol=1e-9):
                return True
    return False


def test_every_readme_result_is_backed_by_a_committed_results_file():
    rows = _rows()
    assert rows, "the README has no results table"
    problems = []
    for what, result, *rest in rows:
        links = re.findall(r"\((results/[^)\s]+\.json)\)", " ".join([what, result, *rest]))
        if not links:
            problems.append(f"row {what!r} links no results/*.json file")
            continue
        values = []
        for link in links:
            path = ROOT / link
            if not path.is_file():
                problems.append(f"row {what!r}: {link} is not committed")
                continue
            values += list(_numbers(json.loads(path.read_text())))
        for tok in NUM.findall(re.sub(r"\[[^\]]*\]\([^)]*\)", "", result)):
            if not _matches(tok, values):
                problems.append(f"row {what!r}: {tok} is in no figure of {links}")
    assert not problems, "\n".join(problems)

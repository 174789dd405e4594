"""Build a notebook .ipynb from a compact cell list.

Each ``nbNN.py`` here writes ``notebooks/NN-name.ipynb`` WITHOUT outputs; run
``python -m helpers.runner publish --nb NN`` afterwards to execute it and commit the
copy with outputs. Usage: ``.venv/bin/python tools/nbsrc/nb00.py``.
"""
import os
import sys

import nbformat

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "notebooks")

def build(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, src, *tags in cells:
        src = src.strip("\n")
        c = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        if tags:
            c.metadata["tags"] = list(tags)
        out.append(c)
    nb.cells = out
    nbformat.write(nb, path)

"""The lab handouts: Jupyter notebooks kept as jupytext percent scripts (``labN.pct.py``).

The sources are diff-friendly Python files: ``# %% [markdown]`` cells hold
the derivation, self-contained (every equation a stub asks for is stated with its number),
code cells tagged ``stub`` are the functions to write, cells tagged
``check`` call :func:`pgcontrol.labs.check` and cells tagged ``figure``
draw the lab's figure from the student's own functions. ``pgcontrol lab
start N`` turns ``labN.pct.py`` into ``labN.ipynb`` (:func:`notebook_json`)
and writes the stub cells alone as ``labN.py`` (:func:`stub_source`).
The ``.pct.py`` names keep the sources from being importable modules.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["source", "notebook", "notebook_json", "stub_source", "STUB_TAG"]

STUB_TAG, CHECK_TAG, FIGURE_TAG = "stub", "check", "figure"


def source(lab: int) -> str:
    """The percent-format source of lab ``lab``'s handout."""
    from .._core import get_lab

    spec = get_lab(lab)
    return (resources.files(__name__) / f"lab{spec.number}.pct.py").read_text(encoding="utf-8")


def notebook(lab: int):
    """The handout as an :mod:`nbformat` v4 notebook (no outputs), with the Python 3 kernel."""
    import jupytext

    nb = jupytext.reads(source(lab), fmt="py:percent")
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)  # jupytext's layout hint, noise in the .ipynb
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def notebook_json(lab: int) -> str:
    """The handout notebook as ``.ipynb`` JSON text."""
    import nbformat

    nb = notebook(lab)
    nbformat.validate(nb)
    return nbformat.writes(nb)


def stub_source(lab: int) -> str:
    """``labN.py``: a header, the imports, and the stub cells of the handout."""
    from .._core import get_lab

    spec = get_lab(lab)
    cells = [c for c in notebook(lab).cells if c.cell_type == "code" and STUB_TAG in c.metadata.get("tags", [])]
    sigs = "\n".join(f"    {s}" for s in spec.functions.values())
    header = (f'"""Lab {spec.number}: {spec.title}.\n\n'
              f"Write these functions (the handout lab{spec.number}.ipynb derives them):\n\n{sigs}\n\n"
              f"Check your work with\n\n    pgcontrol lab check {spec.number} lab{spec.number}.py\n\n"
              "Use NumPy (torch is fine inside); do not import pgcontrol.lqr, pgcontrol.rollout or the other\n"
              "modules that implement what you are asked to write: the grader flags it.\n"
              '"""\n\nimport numpy as np\n')
    return header + "\n\n" + "\n\n\n".join(c.source.strip() for c in cells) + "\n"

"""The lab handouts: well formed, and every notebook runs top to bottom with the reference solution (nbclient)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pgcontrol.labs import _core, handouts
from pgcontrol.labs._core import get_lab

SOLUTIONS = Path(__file__).parent / "lab_solutions"
NOTEBOOK_TIMEOUT = 120  # seconds per cell


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def solved_notebook(lab: int):
    """The handout with each stub cell replaced by the reference solution's function (and its imports)."""
    nb = handouts.notebook(lab)
    text = (SOLUTIONS / f"lab{lab}.py").read_text()
    tree = ast.parse(text)
    imports = "\n".join(ast.get_source_segment(text, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    funcs = {n.name: ast.get_source_segment(text, n) for n in tree.body if isinstance(n, ast.FunctionDef)}
    for cell in nb.cells:
        if "stub" in _tags(cell):
            name = re.match(r"def (\w+)\(", cell.source).group(1)
            cell.source = imports + "\n\n\n" + funcs[name]
    return nb


@pytest.mark.parametrize("lab", _core.LAB_NUMBERS)
def test_handout_structure(lab):
    """Derivation with equation numbers, one stub per function each followed by its check cell, a final check."""
    import nbformat

    spec = get_lab(lab)
    nb = handouts.notebook(lab)
    nbformat.validate(nb)
    cells = nb.cells
    stubs = [i for i, c in enumerate(cells) if "stub" in _tags(c)]
    names = [re.match(r"def (\w+)\(", cells[i].source).group(1) for i in stubs]
    assert names == list(spec.functions)
    for i, name in zip(stubs, names):
        assert "raise NotImplementedError" in cells[i].source
        assert cells[i + 1].source.strip() == f'check({lab}, globals(), only="{name}")'
        assert re.search(r"\((\d\.\d+|L\d\.\d)\)|slides", cells[i].source), f"{name}: docstring cites no equation"
    assert cells[-1].source.strip() == f"check({lab}, globals())"
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert re.search(r"\((\d\.\d+|L\d\.\d)\)", markdown)
    if lab in (2, 4, 6):
        assert any("figure" in _tags(c) for c in cells)
    assert not any(c.get("outputs") for c in cells if c.cell_type == "code")
    # self-contained: no paths to derivations the package does not ship
    assert "shared/reference" not in handouts.source(lab) and "../" not in markdown


@pytest.mark.parametrize("lab", _core.LAB_NUMBERS)
def test_stub_file_defines_the_functions(lab, tmp_path):
    src = handouts.stub_source(lab)
    ns: dict = {}
    exec(compile(src, f"lab{lab}.py", "exec"), ns)
    for name in get_lab(lab).functions:
        with pytest.raises(NotImplementedError):
            ns[name](*([None] * ns[name].__code__.co_argcount))
    assert _core.scan_imports(src) == []


def _execute(lab: int, tmp_path: Path):
    from nbclient import NotebookClient

    nb = solved_notebook(lab)
    NotebookClient(nb, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
    return "".join(out)


@pytest.mark.parametrize("lab", _core.LAB_NUMBERS)
def test_notebook_runs_with_reference_solution(lab, tmp_path):
    nb = _execute(lab, tmp_path)
    spec = get_lab(lab)
    final = _text(nb.cells[-1])
    assert f"score: {spec.max_score}/{spec.max_score}" in final, final
    assert "flagged" not in final, final
    for cell in nb.cells:
        if "figure" in _tags(cell):
            assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
                       for o in cell.outputs), f"lab {lab}: the figure cell drew nothing"

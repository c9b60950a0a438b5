"""The package's layering: no module imports one above it (README, "Layout").

Every ``import`` of a pgcontrol module, at module level or inside a function,
is parsed from the source and checked against the floors below. Modules of
one sub-package (``algos``, ``reproduce``, ``labs``) share a floor and may
import each other.
"""

import ast
from pathlib import Path

import pytest

import pgcontrol

ROOT = Path(pgcontrol.__file__).parent

FLOORS = [
    ["errors", "files", "registration", "names"],  # 0: exceptions; atomic file writes; Gymnasium ids; learner names
    ["plants"],                 # 1: linear-Gaussian plants (NumPy)
    ["lqr"],                    # 2: all model-based control (NumPy/SciPy)
    ["sim"],                    # 3: the batched torch simulator
    ["envs"],                   # 4: Gymnasium envs and the env factory
    ["policies"],               # 5: Gaussian policies
    ["critics"],                # 6: value functions, the least-squares fit
    ["rollout"],                # 7: the collector, returns and advantages
    ["algos"],                  # 8: one file per learner
    ["checkpoint"],             # 9: run files (checkpoints, history)
    ["config"],                 # 10: settings at the boundary; a run's plan (budget, resume checks)
    ["evaluate"],               # 11: scoring a trained policy
    ["train", "tensorboard"],   # 12: the training loop; its optional TensorBoard logger
    ["labs", "plot", "sweep"],  # 13: the course lab; pictures of runs; grids of runs
    ["reproduce"],              # 14: the figures, each a sweep
    ["cli"],                    # 15: the command line
    ["__main__"],               # 16: python -m pgcontrol
]
RANK = {name: i for i, names in enumerate(FLOORS) for name in names}


def _top(module: str) -> str:
    return module.split(".")[0]


def _imports(path: Path, root: Path = ROOT):
    """``(line, imported pgcontrol module)`` of every import in a file, relative ones resolved."""
    rel = path.relative_to(root).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts] if node.module else [base + [a.name] for a in node.names]
                for p in names:
                    if p:
                        yield node.lineno, ".".join(p)
            elif node.module and node.module.startswith("pgcontrol"):
                yield node.lineno, node.module.removeprefix("pgcontrol").lstrip(".")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("pgcontrol."):
                    yield node.lineno, a.name.removeprefix("pgcontrol.")


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT)


def test_every_module_has_a_floor():
    missing = {_top(str(p.relative_to(ROOT).with_suffix("")).replace("/", ".")) for p in _modules()} - set(RANK)
    assert not missing, f"modules without a floor in FLOORS: {sorted(missing)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_one_above_it(path):
    me = _top(str(path.relative_to(ROOT).with_suffix("")).replace("/", "."))
    for line, target in _imports(path):
        top = _top(target)
        if not top or top == me:
            continue
        assert top in RANK, f"{path.name}:{line} imports an unknown pgcontrol module {target!r}"
        assert RANK[top] < RANK[me], (f"{path.relative_to(ROOT)}:{line} imports pgcontrol.{target} "
                                      f"(floor {RANK[top]}) from floor {RANK[me]}: an upward import")


def test_the_checker_sees_upward_imports(tmp_path):
    """Guard the guard: function-level and sub-package imports of a higher floor are found."""
    (tmp_path / "algos").mkdir()
    (tmp_path / "lqr.py").write_text("def f():\n    from .train import train\n")
    (tmp_path / "algos" / "vpg.py").write_text("from ..config import x\nfrom . import base\nimport pgcontrol.cli\n")
    assert list(_imports(tmp_path / "lqr.py", tmp_path)) == [(2, "train")]
    assert list(_imports(tmp_path / "algos" / "vpg.py", tmp_path)) == [(1, "config"), (2, "algos.base"), (3, "cli")]

"""The documentation site: it builds in strict mode, its runnable blocks run, every cited equation has a row.

Conventions checked here (they are written in docs/index.md, "About this manual"):

* A ```python block in ``docs/`` right after a line ``<!-- run -->`` is executed, in a fresh
  namespace and an empty working folder. Unmarked blocks are shown, not run.
* Every ``pgcontrol ...`` line in a ```bash block of ``docs/`` parses with the real argparse parser
  (synopses with ``[``, ``|`` or ``{`` are skipped).
* Every equation number cited in ``pgcontrol/`` ("(3.19)", "eq. 6.46", the ends of a range
  "(4.24)–(4.26)") has a row in ``docs/equations.md``.
* ``mkdocs build --strict`` succeeds: a broken link or anchor, a page missing from the site or an
  API reference that does not resolve fails it. Skipped only where the ``docs`` extra is not
  installed; the CI script installs it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)

RUN_BLOCK = re.compile(r"<!-- run -->\s*\n```python\n(.*?)```", flags=re.S)
BASH_BLOCK = re.compile(r"```bash\n(.*?)```", flags=re.S)

# An equation number: "(3.19)" not preceded by a name or a digit (so not sqrt(2.0) or f(1.5)),
# or "eq. 3.19" / "eqs. 3.19" without the parentheses.
CITATION = re.compile(r"(?<![\w.)])\((\d{1,2}\.\d{1,2})\)|\beqs?\.\s*(\d{1,2}\.\d{1,2})\b")
# Parenthesised numbers in pgcontrol/ that are not equation numbers: file -> numbers.
NOT_CITATIONS = {
    "pgcontrol/config.py": {"1.5"},  # "floats (1.5) ... are refused": an example value
}


def _run_blocks():
    for page in PAGES:
        for i, code in enumerate(RUN_BLOCK.findall(page.read_text())):
            yield pytest.param(code, id=f"{page.relative_to(DOCS)}#{i}")


def _command_lines():
    for page in PAGES:
        for block in BASH_BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                cmd = line.split(" #")[0].strip()
                if cmd.startswith("pgcontrol ") and not any(c in cmd for c in "[|{<"):
                    yield pytest.param(cmd, id=f"{page.relative_to(DOCS)}: {cmd}")


def _key(number: str):
    return tuple(int(x) for x in number.split("."))


def cited_equations() -> dict[str, set[str]]:
    """Every equation number cited in a text file of ``pgcontrol/`` -> the files citing it."""
    cited: dict[str, set[str]] = {}
    for path in sorted((ROOT / "pgcontrol").rglob("*")):
        if not path.is_file() or path.suffix not in {".py", ".md", ".txt", ".ipynb", ".toml", ".json"}:
            continue
        rel = path.relative_to(ROOT).as_posix()
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            number = match.group(1) or match.group(2)
            if number not in NOT_CITATIONS.get(rel, ()):
                cited.setdefault(number, set()).add(rel)
    return cited


def indexed_equations() -> set[str]:
    """The numbers with a row in docs/equations.md (a row "(6.2)–(6.33)" covers the numbers between)."""
    indexed = set()
    for line in (DOCS / "equations.md").read_text().splitlines():
        if not line.startswith("| "):
            continue
        first = line.split("|")[1]
        numbers = re.findall(r"\((\d{1,2})\.(\d{1,2})\)", first)
        if len(numbers) == 2 and numbers[0][0] == numbers[1][0]:
            chapter, lo, hi = numbers[0][0], int(numbers[0][1]), int(numbers[1][1])
            indexed |= {f"{chapter}.{k}" for k in range(lo, hi + 1)}
        else:
            indexed |= {f"{c}.{n}" for c, n in numbers}
    return indexed


def test_every_cited_equation_has_a_row():
    cited = cited_equations()
    assert len(cited) >= 40, "the citation scan found too few equation numbers: is the pattern broken?"
    missing = sorted(set(cited) - indexed_equations(), key=_key)
    assert not missing, (
        "equation numbers cited in pgcontrol/ without a row in docs/equations.md (add a row: the number, "
        "the formula, what it says, the functions): "
        + "; ".join(f"({n}) in {', '.join(sorted(cited[n]))}" for n in missing)
        + ". If one is not an equation number, add it to NOT_CITATIONS in tests/test_docs.py."
    )


def test_docs_have_runnable_blocks_and_commands():
    assert len(list(_run_blocks())) >= 4 and len(list(_command_lines())) >= 10


@pytest.mark.parametrize("code", list(_run_blocks()))
def test_runnable_blocks_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs", "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("line", list(_command_lines()))
def test_command_lines_parse(line):
    from pgcontrol.cli import build_parser

    args = build_parser().parse_args(shlex.split(line)[1:])  # a stale flag or subcommand exits with status 2
    assert callable(args.func)


def _cli_hook():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_argparse():
    """The generated reference has every subcommand, with argparse's own usage line."""
    import argparse

    from pgcontrol.cli import build_parser

    text = _cli_hook().render_cli_reference()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:
        assert f"`pgcontrol {name}`" in text and f"usage: pgcontrol {name}" in text, name
    assert "<!-- cli-reference -->" in (DOCS / "cli.md").read_text()


def test_every_module_has_an_api_page():
    documented = set()
    for page in (DOCS / "api").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)", page.read_text(), flags=re.M))
    modules = {"pgcontrol"}
    for path in [*(ROOT / "pgcontrol").glob("*.py"), *(ROOT / "pgcontrol" / "algos").glob("*.py")]:
        if not path.stem.startswith("_"):
            modules.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    for package in ("algos", "labs", "reproduce"):
        modules.add(f"pgcontrol.{package}")
    assert not sorted(modules - documented), f"modules without an API page in docs/api: {sorted(modules - documented)}"


def test_mkdocs_build_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason='the docs extra is not installed (pip install -e ".[docs]")')
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (tmp_path / "site" / "equations" / "index.html").exists()

"""README's examples run as written: every Python block executes, every `pgcontrol ...` command line parses."""

import re
import shlex
from pathlib import Path

import pytest

README = (Path(__file__).parents[1] / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
COMMANDS = [line.split(" #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
            for line in block.splitlines() if line.strip().startswith("pgcontrol ")
            and not any(c in line.split(" #")[0] for c in "[|{")]  # synopses ([--flag], a|b) are not commands


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 1 and len(COMMANDS) >= 5


def test_readme_is_a_front_door():
    """README stays a page or two; the manual is docs/."""
    assert len(README.splitlines()) <= 200


def test_ci_installs_and_tests_as_readme_says():
    """`.ci/run` runs README's install lines and its test command, word for word."""
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    for line in ("pip install torch==2.13.0", 'pip install -e ".[test,docs]"', "python -m pytest -q"):
        assert line in README, line
        assert line in ci, line


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=lambda c: c.splitlines()[0][:40])
def test_python_examples_run(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


@pytest.mark.parametrize("line", COMMANDS)
def test_command_lines_parse(line):
    from pgcontrol.cli import build_parser

    argv = shlex.split(line)[1:]
    args = build_parser().parse_args(argv)  # a stale flag or subcommand exits with status 2
    assert callable(args.func)

"""The command line, through a real subprocess."""

import json
import subprocess
import sys

import pytest

from pgcontrol import lqr, plants


def run(*args):
    return subprocess.run([sys.executable, "-m", "pgcontrol", *args], capture_output=True, text=True, timeout=120)


def test_plants_lists_catalog():
    r = run("plants")
    assert r.returncode == 0
    for name in plants.names():
        assert name in r.stdout


def test_lqr_json_matches_library():
    r = run("lqr", "double-integrator", "--gain", "0.5", "1.2", "--std", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    p = plants.make("double-integrator")
    K, _ = lqr.optimal_gain(p)
    assert out["K_opt"][0] == pytest.approx(K[0].tolist())
    J = lqr.policy_cost(p, [[0.5, 1.2]], 0.1)
    assert out["J"] == pytest.approx(J)
    assert out["gap"] == pytest.approx(J / out["J_opt"] - 1)


def test_lqr_text_and_overrides():
    r = run("lqr", "scalar-lqg", "--gamma", "0.9", "--horizon", "50")
    assert r.returncode == 0
    assert "0.907551" in r.stdout and "50 steps" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("lqr", "nope"), "unknown plant 'nope'"),
        (("lqr", "double-integrator", "--gain", "1", "2", "3"), "wrong shape"),
        (("lqr", "double-integrator", "--gain", "x"), "invalid float value"),
        (("lqr", "scalar-lqg", "--gamma", "1.5"), "gamma must lie in"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_errors_are_one_line_and_nonzero(args, message):
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgcontrol: error:") and message in lines[0]
    assert "Traceback" not in r.stderr

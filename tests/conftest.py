"""Fixtures shared by several test files.

``variance_quick`` runs ``reproduce variance --quick`` once per test session: the reproduction's
claims (``test_reproduce_variance_lqg.py``) and the command line's end-to-end run
(``test_cli.py``, which resumes it: every finished run is reused) read the same runs.
``lqg_quick`` runs ``reproduce lqg --quick`` once, serially (one worker): its claims and the
sweep's backend test (``test_sweep.py``, which compares it with a run on two workers) read it.
"""

import pytest


@pytest.fixture(scope="session")
def variance_quick(tmp_path_factory):
    from pgcontrol.reproduce import run

    out = tmp_path_factory.mktemp("variance")
    return run("variance", quick=True, out=out, progress=False), out


@pytest.fixture(scope="session")
def lqg_quick(tmp_path_factory):
    from pgcontrol.reproduce import run

    out = tmp_path_factory.mktemp("lqg")
    return run("lqg", quick=True, out=out, progress=False, workers=1), out

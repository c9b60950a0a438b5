"""A Gradescope autograder for one lab, from one command (``pgcontrol lab autograder N --out labN_autograder.zip``).

The zip holds (Gradescope's layout: it is unpacked into ``/autograder/source``)

* ``setup.sh``: installs CPU-only torch, then pgcontrol, from the wheel built
  from this checkout (``pgcontrol-*.whl`` in the zip) or from a pinned pip
  requirement given with ``--pgcontrol`` (e.g. ``pgcontrol==0.4.0``), into
  the virtual environment ``/autograder/venv``;
* ``run_autograder``: grades exactly one file per student and always writes
  ``/autograder/results/results.json``, even when pgcontrol cannot start;
* ``pgcontrol_autograder.json``: the lab, the limits;
* ``secret_seed``: the seed of the hidden items (a fresh random one unless
  ``--secret-seed-file`` gives it). The environment variable
  ``PGCONTROL_SECRET_SEED`` overrides it. It is never on a command line (which
  ``/proc`` would show), and the student's process gets neither the file
  (``source`` is made readable by root only, and hidden from it) nor the variable.

Which file is graded: ``labN.py`` if the student submitted one, else
``labN.ipynb`` (the first found: the top folder of the submission first, then
sub-folders, shallowest first, then by name). Nothing else is graded; no
file found gives a visible failing test that lists what was submitted.

The results have one test per item on the lab's public seed (``visible``),
then one per item on the secret seed (``after_published``), and a flags
entry when the submission used pgcontrol's implementations or was refused
something. The score is the sum of both halves: set the assignment's total
to twice the lab's points. :func:`run` is ``run_autograder``'s body; its
``root`` (default ``/autograder``) is a setting so that the whole zip can be
tested in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .. import files
from ._model import LabError, get_lab

__all__ = ["build", "run", "pick_submission", "main"]

CONFIG = "pgcontrol_autograder.json"
SECRET_FILE = "secret_seed"
SECRET_ENV = "PGCONTROL_SECRET_SEED"
_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

_FALLBACK = ('{"score": 0, "execution_time": 0, "output": "The autograder failed to start; your instructor has been told. '
             'Nothing was graded.", "tests": [{"name": "Autograder failed", "number": "1", "score": 0, '
             '"max_score": 0, "output": "The grader could not start.", "visibility": "visible", '
             '"status": "failed"}]}')


def _setup_sh(requirement: str) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when the autograder image is built.
set -euo pipefail
cd /autograder/source
if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update && apt-get install -y python3 python3-venv python3-pip
fi
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install --index-url {_TORCH_INDEX} torch
/autograder/venv/bin/pip install {requirement}
/autograder/venv/bin/python -c "import pgcontrol.labs; print('pgcontrol ready')"
"""


_RUN = """#!/usr/bin/env bash
# Gradescope runs this once per submission, as root. It always leaves results/results.json.
ROOT="${PGCONTROL_AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PGCONTROL_AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
chmod -R go-rwx "$ROOT/source" 2>/dev/null
"$PYTHON" -m pgcontrol.labs.autograder run --root "$ROOT"
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    cat > "$ROOT/results/results.json" <<'JSON'
FALLBACK
JSON
fi
exit 0
"""


def build(lab: int, out, *, pgcontrol: str | None = None, secret_seed_file=None, limits=None,
          wheel_dir=None) -> Path:
    """Write the autograder zip of lab ``lab`` to ``out`` (module docstring); return its path.

    ``pgcontrol``: a pip requirement to install instead of a wheel of this
    checkout (which is built with ``pip wheel``, or taken from ``wheel_dir``).
    """
    from .grader import Limits

    spec = get_lab(lab)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise LabError(f"--out must name a .zip file; got {str(out)!r}")
    if secret_seed_file is not None:
        try:
            text = Path(secret_seed_file).read_text().strip()
        except OSError as exc:
            raise LabError(f"cannot read the secret seed file {secret_seed_file}: {exc.strerror}") from None
        if not text.isdigit() or not 0 <= int(text) < 2**63:
            raise LabError(f"the secret seed file must hold one integer in [0, 2**63); got {text[:40]!r}")
        seed = int(text)
    else:
        seed = secrets.randbelow(2**63)
    limits = limits or Limits(timeout=600.0)
    members: dict[str, bytes] = {}
    if pgcontrol is not None:
        if not pgcontrol.strip() or any(c in pgcontrol for c in " \t\n;&|`$<>\"'\\"):
            raise LabError(f"--pgcontrol must be one pip requirement such as pgcontrol==0.4.0; got {pgcontrol!r}")
        requirement = pgcontrol
    else:
        wheel = _wheel(wheel_dir)
        members[wheel.name] = wheel.read_bytes()
        requirement = f"/autograder/source/{wheel.name}"
    members["setup.sh"] = _setup_sh(requirement).encode()
    members["run_autograder"] = _RUN.replace("FALLBACK", _FALLBACK).encode()
    members[CONFIG] = json.dumps({"lab": spec.number, "timeout": limits.timeout, "memory_mb": limits.memory_mb,
                                  "disk_mb": limits.disk_mb, "output_limit": limits.output_limit}, indent=2).encode()
    members[SECRET_FILE] = f"{seed}\n".encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o600) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, data)
    os.replace(tmp.name, out)
    return out


def _wheel(wheel_dir=None) -> Path:
    """A wheel of the pgcontrol this module belongs to (built from its checkout with ``pip wheel``)."""
    if wheel_dir is not None:
        found = sorted(Path(wheel_dir).glob("pgcontrol-*.whl"))
        if not found:
            raise LabError(f"no pgcontrol-*.whl in {wheel_dir}")
        return found[-1]
    checkout = Path(__file__).resolve().parents[2]
    if not (checkout / "pyproject.toml").is_file():
        raise LabError("pgcontrol is not installed from a checkout here, so no wheel can be built: "
                       "pass --pgcontrol with a pinned requirement such as pgcontrol==0.4.0")
    dest = Path(tempfile.mkdtemp(prefix="pgcontrol-wheel-"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(dest), str(checkout)], capture_output=True, text=True)
    found = sorted(dest.glob("pgcontrol-*.whl"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"building a wheel of {checkout} failed ({last}); pass --pgcontrol with a pinned version")
    return found[-1]


def pick_submission(folder, lab: int) -> Path | None:
    """The one file graded: ``labN.py``, else ``labN.ipynb`` (module docstring), or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for wanted in (f"lab{lab}.py", f"lab{lab}.ipynb"):
        found = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            depth = Path(dirpath).relative_to(folder).parts
            if len(depth) > 8:
                dirnames[:] = []
                continue
            for f in filenames:
                p = Path(dirpath) / f
                if f.lower() == wanted and p.is_file() and not p.is_symlink():
                    found.append((len(depth), str(p)))
        if found:
            return Path(min(found)[1])
    return None


def _secret_seed(source: Path) -> int | None:
    text = os.environ.get(SECRET_ENV)
    if text is None:
        f = source / SECRET_FILE
        text = f.read_text() if f.is_file() else None
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or not 0 <= int(text) < 2**63:
        raise LabError(f"the secret seed must be one integer in [0, 2**63); {SECRET_ENV} or {SECRET_FILE} is not")
    return int(text)


def run(root="/autograder") -> dict:
    """Grade the submission under ``root`` and write ``root/results/results.json`` (always); return the document."""
    from ._isolate import check_isolated
    from ._wire import printable
    from .grader import Limits, _shielded, gradescope_doc

    t0 = time.monotonic()
    root = Path(root)
    results = root / "results" / "results.json"
    try:
        source = root / "source"
        cfg = json.loads((source / CONFIG).read_text())
        spec = get_lab(cfg["lab"])
        limits = Limits(float(cfg["timeout"]), int(cfg["memory_mb"]), int(cfg["output_limit"]), int(cfg["disk_mb"]))
        secret = _secret_seed(source)
        file = pick_submission(root / "submission", spec.number)
        if file is None:
            seen = sorted(str(p.relative_to(root / "submission")) for p in (root / "submission").rglob("*")
                          if p.is_file())[:20] if (root / "submission").is_dir() else []
            msg = (f"no lab{spec.number}.py or lab{spec.number}.ipynb found in your submission "
                   f"(submitted: {', '.join(seen) or 'nothing'})")
            doc = {"score": 0, "execution_time": 0, "output": printable(msg, 2000),
                   "tests": [{"name": f"lab{spec.number}.py or lab{spec.number}.ipynb submitted", "number": "1",
                              "score": 0, "max_score": spec.max_score, "output": printable(msg, 2000),
                              "visibility": "visible", "status": "failed"}]}
        else:
            hide = [source]
            with _shielded():
                public = check_isolated(spec, file, limits=limits, hide_extra=hide)
                hidden = check_isolated(spec, file, seed=secret, limits=limits, hide_extra=hide) \
                    if secret is not None else None
            note = f"graded: {file.name}" + ("" if hidden else "; no secret seed, so no hidden items")
            doc = gradescope_doc(public, spec.number, hidden=hidden, seconds=time.monotonic() - t0, note=note)
    except Exception as exc:  # noqa: BLE001 (results.json is written whatever happened)
        print(f"pgcontrol autograder failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        doc = json.loads(_FALLBACK)
        doc["output"] = "The autograder failed on this submission; your instructor can see why in its log."
    doc["execution_time"] = max(0, int(round(time.monotonic() - t0)))
    results.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write(results, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pgcontrol.labs.autograder")
    sub = ap.add_subparsers(dest="command", required=True)
    q = sub.add_parser("run", help="grade /autograder/submission (run_autograder's body)")
    q.add_argument("--root", default="/autograder")
    args = ap.parse_args(argv)
    run(args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

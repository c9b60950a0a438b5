"""The student's process: load one submission, then call its functions on the checker's inputs.

Started by :mod:`pgcontrol.labs._isolate` as ``python -I -S _worker.py``
(isolated mode, no ``site``: no ``.pth`` file, no user site, no
``PYTHON*`` variable, not even this file's folder on ``sys.path``). It
knows no seed, no expected value and no results file: it reads requests on
its standard input and writes answers on its standard output, one JSON
line each (:mod:`pgcontrol.labs._wire`), and nothing else.

1. The first line is the set-up: ``{"path": [...], "code": FILE, "folder": DIR,
   "preload": [...], "uid": U, "gid": G, "tmpfs": BYTES}``.
   As root it mounts a tmpfs of ``tmpfs`` bytes on ``folder`` when asked (the
   disk quota; only inside the mount namespace made for it), copies ``code``
   there, and drops to ``uid``/``gid``. ``sys.path`` becomes ``path`` exactly.
2. Standard output is moved to standard error (the capped log), so what the
   student prints never mixes with the answers.
3. ``numpy`` and the modules in ``preload`` are imported, then the guard
   (:mod:`pgcontrol.labs._guard`) is installed, then the submission runs.
   Answer: ``{"ready": [function names]}`` or ``{"error": "..."}``.
4. Each request ``{"id": n, "call": name, "args": [...]}`` is answered by
   ``{"id": n, "value": ...}`` or ``{"id": n, "raised": "..."}``; every answer
   carries ``"refused"``, what the guard refused since the previous one.
   ``SystemExit`` and ``KeyboardInterrupt`` in the student's function fail
   that call only.
"""

from __future__ import annotations

import json
import os
import sys


def _setup(cfg: dict) -> None:
    folder, code = cfg["folder"], cfg["code"]
    uid, gid = cfg.get("uid"), cfg.get("gid")
    text = None
    if code:
        with open(code, encoding="utf-8") as f:
            text = f.read()
    if cfg.get("tmpfs") and os.getuid() == 0:
        import subprocess

        opts = f"size={int(cfg['tmpfs'])},mode=0700,nr_inodes=4096"
        if uid is not None:
            opts += f",uid={int(uid)},gid={int(gid)}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "pgcontrol-grade", folder], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for i, (closed, *subs) in enumerate(cfg.get("reveal") or []):
        outside = next(d for d in ("/tmp", "/dev/shm", "/var/tmp", "/")
                       if os.path.isdir(d) and not (d + "/").startswith(closed.rstrip("/") + "/"))
        _reveal(closed, subs, os.path.join(outside, f"pgcontrol-stage-{os.getpid()}-{i}"))
    for d in cfg.get("hide") or []:
        if os.getuid() == 0 and cfg.get("tmpfs"):
            import subprocess

            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,mode=0", "pgcontrol-hidden", d],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if text is not None:
        target = os.path.join(folder, cfg["name"])
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        if uid is not None and os.getuid() == 0:
            os.chown(target, int(uid), int(gid))
    os.chdir(folder)
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(int(gid))
        os.setuid(int(uid))
        if cfg.get("nproc"):
            import resource

            resource.setrlimit(resource.RLIMIT_NPROC, (int(cfg["nproc"]), int(cfg["nproc"])))
    sys.path[:] = [str(p) for p in cfg["path"]]


def _reveal(closed: str, subs: list[str], stage: str) -> None:
    """Hide the folder ``closed`` behind an empty tmpfs, then bind back only ``subs`` (mount namespace, root).

    The binds wait in ``stage-j`` folders outside ``closed`` (removed after the move).
    """
    import subprocess

    def mount(*args):
        subprocess.run(["mount", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    staged = []
    for j, s in enumerate(subs):
        st = f"{stage}-{j}"
        os.mkdir(st)
        mount("--bind", s, st)
        staged.append((st, s))
    mount("-t", "tmpfs", "-o", "size=1m,mode=0755", "pgcontrol-hidden", closed)
    for st, s in staged:
        os.makedirs(s, exist_ok=True)
        mount("--move", st, s)
        os.rmdir(st)


def main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # what the student prints goes to the log, never to the answers
    line = proto_in.readline(1 << 16)
    cfg = json.loads(line)
    _setup(cfg)

    from pgcontrol.labs import _guard, _submission, _wire  # noqa: PLC0415 (after sys.path is set)

    def send(obj) -> None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 (a full log: the checker reports it)
            pass
        obj["refused"] = [_wire.printable(r, 300) for r in _guard.refused()]
        proto_out.write(_wire.dumps(obj))

    import numpy as np  # noqa: PLC0415

    for name in cfg.get("preload", []):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 (the submission will see the failure itself)
            pass
    _submission._LOADING["depth"] = 1  # the submission's own check(...) calls do nothing here
    if cfg.get("guard", True):
        _guard.install(cfg["folder"], os.path.dirname(os.path.dirname(os.path.abspath(_guard.__file__))),
                       hidden=cfg.get("hide") or [])
    path = os.path.join(cfg["folder"], cfg["name"])
    namespace = {"__name__": "__lab_submission__", "__file__": path, "__builtins__": __builtins__}
    try:
        with open(path, encoding="utf-8") as f:
            compiled = compile(f.read(), path, "exec")
        exec(compiled, namespace)  # noqa: S102 (running the student's code is the point)
    except MemoryError:
        send({"error": f"{cfg['name']} ran out of memory while being loaded (the grader's memory limit)"})
        return 0
    except BaseException as exc:  # noqa: BLE001 (SystemExit, KeyboardInterrupt included)
        what = "called exit" if isinstance(exc, SystemExit) else "raised"
        send({"error": f"{cfg['name']} {what} while being loaded: {_submission._one_line(exc, path)}"})
        return 0
    send({"ready": sorted(k for k, v in namespace.items() if callable(v) and isinstance(k, str))[:500]})
    while True:
        line = proto_in.readline(_wire.MAX_MESSAGE + 1)
        if not line:
            return 0
        req = _wire.loads(line)
        if req.get("bye"):
            return 0
        rid, name = req["id"], req["call"]
        args = [_wire.decode_value(a) for a in req["args"]]
        f = namespace.get(name)
        if not callable(f):
            send({"id": rid, "raised": f"missing: {cfg['name']} defines no function `{name}`"})
            continue
        try:
            with np.errstate(all="ignore"):
                value = f(*args)
        except NotImplementedError:
            send({"id": rid, "raised": f"`{name}` raised NotImplementedError: the stub is not filled in yet"})
            continue
        except MemoryError:
            send({"id": rid, "raised": f"`{name}` ran out of memory"})
            continue
        except BaseException as exc:  # noqa: BLE001 (SystemExit, KeyboardInterrupt: this call fails, no more)
            send({"id": rid, "raised": f"`{name}` raised {_submission._one_line(exc, path)}"})
            continue
        try:
            out = _wire.encode_value(value, outputs=True)
        except BaseException as exc:  # noqa: BLE001 (a tensor or array-like that raises when read)
            out = {"opaque": f"{type(value).__name__} that could not be read ({type(exc).__name__})"}
        send({"id": rid, "value": out})


if __name__ == "__main__":
    sys.exit(main())

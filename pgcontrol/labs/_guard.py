"""The runtime guard of the student's process: an import guard and an audit hook (PEP 578).

Installed by :mod:`pgcontrol.labs._worker` after its own imports and before
the submission is loaded, in the student's process only (the checker never
runs it). It refuses, with a ``PermissionError`` (an ``ImportError`` for
imports) raised inside the student's code:

* importing pgcontrol's implementations (:data:`FORBIDDEN`: ``lqr``,
  ``rollout``, ``algos``, ``policies``, ``reproduce``, ``train``, the labs'
  own modules and the drivers' internals), and opening their source or
  bytecode files (so ``exec(open(...).read())`` or a loader built by hand
  fails too);
* writing, creating, renaming or removing files outside the submission's
  private folder (a ``.pth`` in site-packages, a sibling's file);
* starting programs (``os.system``, ``subprocess``, ``os.exec*``,
  ``posix_spawn``), ``ctypes``, sockets;
* the ways to reach or rewrite the hook itself (``gc.get_objects``,
  ``gc.get_referrers``, assigning a function's ``__code__``).

Every refusal is recorded (:func:`refused`) and reported by the worker;
the checker lists them as flags. This is defence in depth inside a process
the student controls: the boundaries that hold whatever the student's code
does are the separate process, the user it runs as, its namespaces and its
resource limits (:mod:`pgcontrol.labs._isolate`).
"""

from __future__ import annotations

import os
import sys

#: modules (and their sub-modules) the student's process may not import
FORBIDDEN = (
    "pgcontrol.lqr", "pgcontrol.rollout", "pgcontrol.algos", "pgcontrol.policies", "pgcontrol.reproduce",
    "pgcontrol.train", "pgcontrol.evaluate", "pgcontrol.critics", "pgcontrol.labs._pg",
    "pgcontrol.labs.lab1", "pgcontrol.labs.lab2", "pgcontrol.labs.lab3", "pgcontrol.labs.lab4",
    "pgcontrol.labs.lab5", "pgcontrol.labs.lab6", "pgcontrol.labs.grader", "pgcontrol.labs._isolate",
    "pgcontrol.labs.autograder", "ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters",
)
#: audit events refused outright
_REFUSED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.addressof",
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "os.kill", "os.killpg", "signal.pthread_kill",
    "sys.setprofile", "sys.settrace",
})
#: audit events that change files, with the positions of their path arguments: allowed inside the folder only
_PATH_EVENTS = {"os.chmod": (0,), "os.chown": (0,), "os.symlink": (1,), "os.link": (1,), "os.rename": (0, 1),
                "os.replace": (0, 1), "shutil.rmtree": (0,), "os.rmdir": (0,), "os.remove": (0,),
                "os.truncate": (0,), "os.utime": (0,), "os.mkdir": (0,), "shutil.move": (0, 1),
                "shutil.copyfile": (1,), "shutil.copytree": (1,)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _module_forbidden(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN)


def _path_forbidden(path: str, package: str) -> bool:
    """A file of pgcontrol's implementations (source or bytecode) under the package folder ``package``."""
    if not path.startswith(package + os.sep):
        return False
    parts = [p for p in path[len(package) + 1:].split(os.sep) if p != "__pycache__"]
    if not parts:
        return False
    dotted = "pgcontrol." + ".".join(parts[:-1] + [parts[-1].split(".")[0]])
    return _module_forbidden(dotted) or dotted.endswith((".lab_solutions",))


_STATE = {"installed": False, "refused": []}


def refused() -> list[str]:
    """What the guard refused so far (one line each), and empties the list."""
    out = list(_STATE["refused"])
    del _STATE["refused"][:]
    return out


def install(folder: str, package: str, hidden=()) -> None:
    """Install the import guard and the audit hook; ``folder`` is the only place the student may write."""
    if _STATE["installed"]:
        return
    folder = os.path.realpath(folder)
    hidden = tuple(os.path.realpath(h) for h in hidden)
    package = os.path.realpath(package)
    record = _STATE["refused"].append
    realpath = os.path.realpath
    fspath = os.fspath
    events = _REFUSED_EVENTS
    path_events = dict(_PATH_EVENTS)
    allowed_devices = ("/dev/null",)

    def refuse(what: str, exc=PermissionError):
        if len(_STATE["refused"]) < 50:
            record(what)
        raise exc(f"refused while grading: {what}")

    def hook(event: str, args) -> None:
        if event == "import":
            name = args[0]
            if isinstance(name, str) and _module_forbidden(name):
                refuse(f"import of {name}", ImportError)
        elif event == "open":
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return
            try:
                p = realpath(fspath(path))
            except (TypeError, ValueError):
                return
            if _path_forbidden(p, package) or any(p == h or p.startswith(h + os.sep) for h in hidden):
                refuse(f"reading {p}")
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and not (p == folder or p.startswith(folder + os.sep) or p in allowed_devices):
                refuse(f"writing {p} (outside the submission's folder)")
        elif event in events:
            refuse(f"{event}")
        elif event in path_events:
            for i in path_events[event]:
                target = args[i] if i < len(args) else None
                if target is None or isinstance(target, int):
                    continue
                try:
                    p = realpath(fspath(target))
                except (TypeError, ValueError):
                    continue
                if not (p == folder or p.startswith(folder + os.sep)):
                    refuse(f"{event} on {p} (outside the submission's folder)")
        elif event == "object.__setattr__" and len(args) > 1 and args[1] in ("__code__", "__globals__"):
            refuse(f"assigning {args[1]}")

    class _Finder:
        """Refuses forbidden modules before any finder looks for them (the hook catches the rest)."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if _module_forbidden(name):
                refuse(f"import of {name}", ImportError)
            return None

    def _no_fork_exec(*args, **kwargs):
        refuse("_posixsubprocess.fork_exec")

    spawner = sys.modules.get("_posixsubprocess")
    if spawner is not None:  # it starts programs without an audit event: take it out of reach
        spawner.fork_exec = _no_fork_exec
    sys.meta_path.insert(0, _Finder)
    for name in list(sys.modules):
        if _module_forbidden(name):
            del sys.modules[name]
    sys.addaudithook(hook)
    _STATE["installed"] = True

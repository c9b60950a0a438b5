"""``python -m pgcontrol.labs ...``: the ``pgcontrol lab`` command on its own (same arguments)."""

from __future__ import annotations

import argparse
import sys

from .cli import add_parser, run


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``pgcontrol: error: ...`` and exit status 2."""

    def error(self, message):  # noqa: D401 (argparse API)
        self.exit(2, f"pgcontrol: error: {message} (try `{self.prog} --help`)\n")


def main(argv=None) -> int:
    parser = _Parser(prog="python -m pgcontrol.labs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_parser(sub)
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

"""MkDocs hook: the command-line reference is rendered from argparse at build time.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; this hook replaces it with the
``--help`` text of ``pgcontrol`` and of every subcommand (and of their own subcommands, such as
``pgcontrol lab check``), taken from :func:`pgcontrol.cli.build_parser`. argparse is then the one
source of the command's synopsis: the page cannot drift from what the program accepts.
"""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- cli-reference -->"
WIDTH = "100"  # argparse wraps to $COLUMNS; fixed so that the page does not depend on the terminal


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:  # argparse keeps subparsers as an action; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name), sub


def _sections(parser: argparse.ArgumentParser, prefix: str, level: int):
    for name, help_, sub in _subcommands(parser):
        title = f"{prefix} {name}"
        anchor = title.replace(" ", "-")
        yield f"{'#' * level} `{title}` {{#{anchor}}}\n"
        if help_:
            yield f"{help_[0].upper()}{help_[1:]}.\n"
        yield f"```text\n{sub.format_help().rstrip()}\n```\n"
        yield from _sections(sub, title, level + 1)


def render_cli_reference() -> str:
    """The reference in Markdown: ``pgcontrol --help``, then one section per subcommand."""
    from pgcontrol.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        parser = build_parser()
        parts = [f"```text\n{parser.format_help().rstrip()}\n```\n"]
        parts += list(_sections(parser, "pgcontrol", 3))
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 (the MkDocs hook signature)
    if MARKER in markdown:
        return markdown.replace(MARKER, render_cli_reference())
    return markdown

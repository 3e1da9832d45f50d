"""The ``%imagebuild`` grammar: an argparse parser that raises UsageError instead of exiting."""

from __future__ import annotations

import argparse
import shlex
from typing import NoReturn

from IPython.core.error import UsageError

from imagebuild_nb.suggest import did_you_mean

HELP = """\
Check and build container images from the notebook.

Line magic (IMAGE is a variable holding an Image, or an image reference string):

  %imagebuild exists IMAGE
        Does this exact image exist? Shows exists (with digest) / missing / unknown (with why).
  %imagebuild build IMAGE [--builder local|remote] [--dry-run] [--force] [--no-wait]
        Build unless it already exists; the log streams into the cell while it runs.
        --dry-run  show the Dockerfile, the build context and what would run; touch nothing
        --force    rebuild even if the image exists (without cache)
        --no-wait  return at once with a build you can follow with status/logs/cancel
  %imagebuild widget IMAGE
        Open the interactive widget (check, build, cancel, live log).
  %imagebuild status [BUILD] | logs [BUILD] [--follow] | cancel [BUILD]
        A build's steps so far (n/m, elapsed), its log with a header per step (--follow: watch
        it until it ends), or cancel it. BUILD is its variable or its id; without one, the
        last build of this kernel.

Cell magic (the cell body is a Dockerfile; context = the notebook's folder unless given):

  %%imagebuild build --name NAME [--registry R] [--tag T] [--context DIR] [build flags]
  %%imagebuild exists --name NAME [--registry R] [--tag T] [--context DIR]

Every command returns a result object: ``r = %imagebuild build img`` keeps it (a failed build
too: ``r.status``, ``r.logs``), a trailing ``;`` hides it. Settings: ``%config ImageBuildMagics``
lists them (default builder, registry, base-image mirror, network mode, extra CA files,
unknown-existence policy, remote service).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}{did_you_mean(message, self)}\n\n"
                         f"{self.format_usage().strip()}\nSee %imagebuild? for help.")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message or self.format_usage())


def _add_build_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--builder", choices=("local", "local-podman", "remote"), default=None,
                        help="where to build (default: the configured default builder)")
    parser.add_argument("--dry-run", action="store_true", help="render only; build nothing")
    parser.add_argument("--force", action="store_true", help="rebuild even if it exists")
    parser.add_argument("--no-wait", action="store_true", help="return at once with a handle")


def _add_cell_image_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="image name, e.g. team/analysis")
    parser.add_argument("--registry", default=None, help="registry host[:port] to push to")
    parser.add_argument("--tag", default=None, help="explicit tag (default: content tag)")
    parser.add_argument("--context", default=None, help="build context folder")


def line_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%imagebuild", add_help=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name in ("exists", "widget"):
        sub = commands.add_parser(name, add_help=False)
        sub.add_argument("image", metavar="IMAGE")
    build = commands.add_parser("build", add_help=False)
    build.add_argument("image", metavar="IMAGE")
    _add_build_flags(build)
    for name in ("status", "logs", "cancel"):
        sub = commands.add_parser(name, add_help=False)
        sub.add_argument("build", metavar="BUILD", nargs="?", default=None)
        if name == "logs":
            sub.add_argument("-f", "--follow", action="store_true",
                             help="watch the build until it ends")
    return parser


def cell_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%%imagebuild", add_help=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    build = commands.add_parser("build", add_help=False)
    _add_cell_image_flags(build)
    _add_build_flags(build)
    exists = commands.add_parser("exists", add_help=False)
    _add_cell_image_flags(exists)
    return parser


def parse(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace:
    # IPython hands the magic its line with a trailing ';' (which only hides the result).
    line = line.rstrip().rstrip(";")
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"cannot parse the arguments: {error}") from None
    if not words:
        raise UsageError(f"a command is needed.\n\n{parser.format_usage().strip()}\n"
                         "See %imagebuild? for help.")
    return parser.parse_args(words)

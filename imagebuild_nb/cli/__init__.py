"""The ``imagebuild`` command: the engine from a terminal or CI.

Usage examples::

    imagebuild check images.py:envs                  # a list or dict of Images: one line each
    imagebuild check Dockerfile --name team/app --registry localhost:5001
    imagebuild build images.py:train --network host  # live progress on stderr, result on stdout
    imagebuild build images.py:train --dry-run       # the Dockerfile and context; builds nothing
    imagebuild --json build images.py:train | jq -r .digest
    imagebuild build images.py:train --builder remote --no-wait   # prints the build id
    imagebuild status 4f1c2a9b0d3e5f67 ; imagebuild logs -f 4f1c2a9b0d3e5f67
    imagebuild cancel 4f1c2a9b0d3e5f67

Exit codes are :class:`ExitCode` (also listed by ``imagebuild --help``). Errors print their
message and hint, never a traceback (``-v`` adds one for internal errors).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from imagebuild_nb.cli._output import ExitCode, Output, code_for
from imagebuild_nb.errors import ImageBuildError

__all__ = ["ExitCode", "main"]

EPILOG = """\
SPEC is one of:
  path/to/module.py:variable  an Image defined in a Python file (run from its folder);
                              for check also a list or dict of Images
  path/to/Dockerfile          with --name, --registry, --context (default: its folder)
  registry/name:tag           check only: an image reference

exit codes:
  0    ok: the image exists, was built, or the command did what it said
  1    the build failed or was cancelled (failing step and log tail on stderr)
  2    usage error: bad arguments, or a SPEC that cannot be loaded or is invalid
  3    missing: an image checked does not exist (or exists built from another spec)
  4    unknown: existence cannot be verified (registry unreachable, denied, engine down)
  5    builder unavailable: no Docker engine answers, or no build service is reachable
  6    other error: registry or build service error, unknown build id
  130  interrupted (Ctrl-C or SIGTERM); a running build is cancelled first
  With several images, `check` exits 4 if any is unknown, else 3 if any is missing.

settings: every IMAGEBUILD_NB_* environment variable (e.g. IMAGEBUILD_NB_REGISTRY,
IMAGEBUILD_NB_NETWORK_MODE, IMAGEBUILD_NB_EXTRA_CA_FILES, IMAGEBUILD_NB_REMOTE_URL,
IMAGEBUILD_NB_REMOTE_TOKEN); the options override them.

--json prints one JSON document on stdout (with "exit_code"); progress and logs go to stderr.
Build ids for status/logs/cancel are remote builds' ids: local builds live only as long as the
`imagebuild build` process that runs them.
"""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        from imagebuild_nb.suggest import did_you_mean

        raise _UsageError(f"{message}{did_you_mean(message, self)}\n"
                          f"{self.format_usage().strip()}")


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS defaults: the options work before and after the subcommand without the
    # subparser's defaults overwriting what was given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("output and settings")
    group.add_argument("--json", action="store_true", help="one JSON document on stdout")
    group.add_argument("-v", "--verbose", action="count", help="log more (-vv: debug)")
    group.add_argument("--registry", metavar="HOST[:PORT]",
                       help="registry for images that name none (Dockerfile SPECs included)")
    group.add_argument("--network", metavar="MODE", help="network for RUN steps, e.g. host")
    group.add_argument("--ca-file", action="append", metavar="PATH",
                       help="extra CA certificate trusted by RUN steps (repeatable)")
    group.add_argument("--base-mirror", metavar="REGISTRY", help="mirror for default bases")
    group.add_argument("--driver", choices=("auto", "docker-api", "buildkit"),
                       help="local build driver (default: auto, BuildKit when available)")
    group.add_argument("--remote-url", metavar="URL", help="the build service (remote builds)")
    group.add_argument("--unknown", choices=("build", "fail"), dest="unknown_policy",
                       help="build when existence cannot be verified, or fail")
    return common


def _spec_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("spec options")
    group.add_argument("--name", help="image name for a Dockerfile SPEC, e.g. team/app")
    group.add_argument("--context", help="build context folder of a Dockerfile SPEC")
    group.add_argument("--tag", help="explicit tag instead of the content tag")
    group.add_argument("--platform", metavar="OS/ARCH", help="e.g. linux/amd64")


def build_parser() -> argparse.ArgumentParser:
    from imagebuild_nb.cli import _commands, _remote

    common = _common_options()
    parser = _Parser(prog="imagebuild", parents=[common], epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Check and build container images described in Python or "
                                 "as Dockerfiles, locally or on a build service.")
    parser.add_argument("--version", action="version", version=_version())
    # Typed with the base class: the shared parent (common) is a plain ArgumentParser.
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help, description=help,
                                   epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)

    check = command("check", "does each image exist? (exists / missing / unknown)")
    check.add_argument("specs", nargs="+", metavar="SPEC")
    _spec_options(check)
    check.set_defaults(run=_commands.check)

    build = command("build", "build an image unless it exists; live progress on stderr")
    build.add_argument("spec", metavar="SPEC")
    build.add_argument("--builder", choices=("local", "local-podman", "remote"), default=None,
                       help="where to build (default: IMAGEBUILD_NB_DEFAULT_BUILDER or local)")
    build.add_argument("--dry-run", action="store_true",
                       help="show the Dockerfile, context and command; touch nothing")
    build.add_argument("--force", action="store_true", help="rebuild without cache")
    build.add_argument("--no-wait", action="store_true",
                       help="submit and print the build id (remote builds)")
    _spec_options(build)
    build.set_defaults(run=_commands.build)

    for name, run, help in (("status", _remote.status, "the state of a remote build"),
                            ("logs", _remote.logs, "the log of a remote build"),
                            ("cancel", _remote.cancel, "cancel a remote build")):
        sub = command(name, help)
        sub.add_argument("build_id", metavar="BUILD_ID")
        if name == "logs":
            sub.add_argument("-f", "--follow", action="store_true",
                             help="keep streaming until the build ends")
        sub.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Output(json_mode="--json" in argv, stdout=sys.stdout, stderr=sys.stderr)
    code = _run(argv, out)
    out.finish(code)
    return code


def _run(argv: list[str], out: Output) -> int:
    args: Any = None
    try:
        args = build_parser().parse_args(argv)
        out.json_mode = bool(getattr(args, "json", False))
        out.document["command"] = args.command
        _configure_logging(getattr(args, "verbose", 0))
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            return int(args.run(args, out))
        finally:
            signal.signal(signal.SIGTERM, previous)
    except _UsageError as error:
        out.error_text(f"imagebuild: error: {error}", kind="UsageError",
                       message=str(error).splitlines()[0])
        return ExitCode.USAGE
    except KeyboardInterrupt:
        out.error_text("imagebuild: interrupted", kind="KeyboardInterrupt", message="interrupted")
        return ExitCode.INTERRUPTED
    except ImageBuildError as error:
        out.error(error)
        return code_for(error)
    except Exception as error:  # a bug of ours: say so in one line unless asked for details
        if getattr(args, "verbose", 0):
            traceback.print_exc(file=out.stderr)
        out.error_text(f"imagebuild: internal error: {error!r} (run with -v for the traceback)",
                       kind=type(error).__name__, message=str(error))
        return ExitCode.ERROR


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (CI cancelling a job) takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


class _Formatter(logging.Formatter):
    """One line per record; a library's traceback only when asked for with ``-v``."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("imagebuild: %(levelname)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if not self.verbose and record.exc_info:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None,
                                            "exc_text": None})
        return super().format(record)


def _configure_logging(verbosity: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, _Formatter)]:
        root.removeHandler(old)  # main() called again in one process (tests)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(verbose=verbosity > 0))
    root.addHandler(handler)
    root.setLevel({0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG))


def _version() -> str:
    from imagebuild_nb import __version__

    return f"imagebuild {__version__}"

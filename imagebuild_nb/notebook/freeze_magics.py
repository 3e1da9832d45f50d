"""``%imagebuild freeze | verify | run``: from the kernel's environment to a proven image.

    %imagebuild freeze NAME [--only-imported] [--registry R] [--image-name N]
                            [--exclude DIST ...] [--include DIST ...] [--include-tooling]
                            [--refuse-local]
        Freeze this kernel's environment into an Image held in the variable NAME; names the
        imported modules whose distributions were left out as kernel tooling.
    %imagebuild verify IMAGE [MODULE ...]
        Import every top-level module this kernel imported (or those given) in a container
        of IMAGE (built already): same version / different version / fails, per module.
    %imagebuild run IMAGE -- COMMAND ...
        Run COMMAND in a container of IMAGE with the notebook's folder read-only at
        /mnt/notebook (the working directory); streams its output, returns its exit code.

The containers are removed when done, also on an interrupt.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError

from imagebuild_nb.notebook.arguments import _Parser

COMMANDS = ("freeze", "verify", "run")
HELP = """
From the kernel's environment to a proven image:

  %imagebuild freeze NAME [--only-imported] [--include DIST ...] [--exclude DIST ...]
                          [--registry R] [--image-name N] [--include-tooling] [--refuse-local]
                          [--widget]
        Freeze this kernel (same Python minor, every distribution pinned) into an Image in the
        variable NAME; --widget opens "Freeze this kernel" / Build / "Verify" instead.
  %imagebuild verify IMAGE [MODULE ...]
        Import the kernel's imported modules (or those given) in a container of the built
        IMAGE: same version / different version / fails, per module.
  %imagebuild run IMAGE -- COMMAND ...
        Run COMMAND in a container of IMAGE, the notebook's folder read-only at /mnt/notebook;
        its output streams into the cell, its exit code is returned.
"""


def handles(line: str) -> bool:
    words = line.split(None, 1)
    return bool(words) and words[0] in COMMANDS


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%imagebuild", add_help=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    freeze = commands.add_parser("freeze", add_help=False)
    freeze.add_argument("variable", metavar="NAME")
    freeze.add_argument("--only-imported", action="store_true",
                        help="only distributions of imported modules and their requirements")
    freeze.add_argument("--registry", default=None)
    freeze.add_argument("--image-name", default=None,
                        help="repository name (default: NAME with '_' as '-')")
    freeze.add_argument("--exclude", nargs="+", default=[], metavar="DIST")
    freeze.add_argument("--include", nargs="+", default=[], metavar="DIST",
                        help="keep these too (e.g. a tooling dependency the code imports)")
    freeze.add_argument("--include-tooling", action="store_true",
                        help="keep ipykernel, Jupyter, this project and the installers")
    freeze.add_argument("--refuse-local", action="store_true",
                        help="fail on local project folders instead of shipping them")
    freeze.add_argument("--widget", action="store_true",
                        help="open the freeze widget (Freeze this kernel, Build, Verify)")
    verify = commands.add_parser("verify", add_help=False)
    verify.add_argument("image", metavar="IMAGE")
    verify.add_argument("modules", metavar="MODULE", nargs="*")
    run = commands.add_parser("run", add_help=False)
    run.add_argument("image", metavar="IMAGE")
    return parser


def dispatch(magics: Any, line: str) -> Any:
    """Called by the %imagebuild line magic for the commands of this module."""
    line = line.rstrip().rstrip(";")
    command = None
    if line.split(None, 1)[0] == "run":
        line, sep, command = line.partition(" -- ")
        if not sep or not command.strip():
            raise UsageError("usage: %imagebuild run IMAGE -- COMMAND ...")
    try:
        words = shlex.split(line)
    except ValueError as error:
        raise UsageError(f"cannot parse the arguments: {error}") from None
    args = _parser().parse_args(words)
    if args.command == "freeze":
        return _freeze(magics, args)
    image = _image(magics, args.image)
    if args.command == "verify":
        from imagebuild_nb.verify import verify

        return verify(image, args.modules or None)
    from imagebuild_nb.verify import run

    assert command is not None
    code = run(image, shlex.split(command), network_mode=magics.settings().network_mode)
    return code


def _freeze(magics: Any, args: argparse.Namespace) -> Any:
    from imagebuild_nb import Image

    if not args.variable.isidentifier():
        raise UsageError(f"NAME {args.variable!r} is not a Python variable name")
    if args.widget:
        from imagebuild_nb.notebook.freeze_widget import FreezeWidget

        options = {key: value for key, value in (
            ("registry", args.registry or magics.settings().registry),
            ("exclude", tuple(args.exclude)), ("include", tuple(args.include)),
            ("include_tooling", args.include_tooling),
            ("on_local", "error" if args.refuse_local else "ship")) if value}
        widget = FreezeWidget(name=args.image_name or args.variable.replace("_", "-").lower(),
                              only_imported=args.only_imported, engine=magics._engine(),
                              freeze_options=options)
        magics.shell.user_ns[args.variable] = widget
        return widget
    image = Image.from_environment(
        name=args.image_name or args.variable.replace("_", "-").lower(),
        registry=args.registry or magics.settings().registry,
        only_imported=args.only_imported, exclude=tuple(args.exclude),
        include=tuple(args.include), include_tooling=args.include_tooling,
        on_local="error" if args.refuse_local else "ship")
    magics.shell.user_ns[args.variable] = image
    _note_left_out(image)
    return image


def _note_left_out(image: Any) -> None:
    """Name the imported modules whose distributions the freeze left out (kernel tooling or
    only its dependencies), so a module the code needs is never dropped silently."""
    from imagebuild_nb.freeze import left_out_imported, pinned_names, read_environment

    left = left_out_imported(read_environment(), pinned_names(image))
    if left:
        listed = ", ".join(f"{dist} ({', '.join(mods)})" for dist, mods in sorted(left.items()))
        print(f"Left out as kernel tooling (or only needed by it), though imported: {listed}.\n"
              "If the code needs one: %imagebuild freeze ... --include DIST")


def _image(magics: Any, text: str) -> Any:
    """An Image held in a variable, or a reference string."""
    from imagebuild_nb import Image

    value = magics.shell.user_ns.get(text) if text.isidentifier() else None
    if value is None:
        if "/" not in text and ":" not in text:
            raise UsageError(f"no variable named {text!r} in the notebook: pass a variable "
                             "holding an Image, or a reference such as localhost:5001/app:1.0")
        return text
    if isinstance(value, (Image, str)):
        return value
    from imagebuild_nb.spec.convert import as_image

    return as_image(value)

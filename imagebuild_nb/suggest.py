"""Suggestions for mistyped commands and options ("did you mean 'build'?"), for argparse.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> commands = parser.add_subparsers(dest="command")
>>> _ = commands.add_parser("build").add_argument("--force", action="store_true")
>>> did_you_mean("argument command: invalid choice: 'biuld' (choose from 'build')", parser)
"\\ndid you mean 'build'?"
>>> did_you_mean("unrecognized arguments: --frce", parser)
"\\ndid you mean '--force' for '--frce'?"
"""

from __future__ import annotations

import argparse
import difflib
import re

_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)")


def did_you_mean(message: str, parser: argparse.ArgumentParser) -> str:
    """A suggestion for a mistyped command or option, from argparse's own error message."""
    choice = _INVALID_CHOICE.search(message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2))
        close = difflib.get_close_matches(choice.group(1), options, n=1)
        return f"\ndid you mean {close[0]!r}?" if close else ""
    unknown = _UNRECOGNIZED.search(message)
    if unknown:
        flags = {flag for action in _all_actions(parser) for flag in action.option_strings}
        hints = []
        for word in unknown.group(1).split():
            close = difflib.get_close_matches(word.split("=")[0], sorted(flags), n=1)
            if close:
                hints.append(f"did you mean {close[0]!r} for {word!r}?")
        return "\n" + "\n".join(hints) if hints else ""
    return ""


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                actions.extend(_all_actions(sub))
    return actions

"""Spec validation: whatever passes is rendered into a Dockerfile, so no value may carry a line
break (Python's ``$`` matches before a trailing newline), and no command may start with ``--``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from imagebuild_nb import Image
from imagebuild_nb.errors import SpecError
from imagebuild_nb.spec import validate
from imagebuild_nb.spec.base import DebianBase, DockerfileBase


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: validate.apt_package("git\n"), "packages"),
        (lambda: validate.apt_package("git\nFROM scratch"), "packages"),
        (lambda: validate.pip_requirement("six\n"), "packages"),
        (lambda: validate.pip_requirement("six\n==1.0"), "packages"),
        (lambda: validate.pip_requirement("six;\npython_version >= '3'"), "packages"),
        (lambda: validate.pip_requirement("six ==\t1.0\r"), "packages"),
        (lambda: validate.index_url("https://pypi.org/simple\n", argument="index_url"),
         "index_url"),
        (lambda: validate.env_vars({"MODE\n": "x"}), "env"),
        (lambda: validate.image_path("/app\n", argument="dst"), "dst"),
        (lambda: DebianBase.create("3.11\n"), "python_version"),
    ],
)
def test_a_trailing_or_inner_line_break_is_rejected(call: Callable[[], object],
                                                    argument: str) -> None:
    with pytest.raises(SpecError) as caught:
        call()
    assert caught.value.argument == argument


def test_build_arg_names_with_a_line_break_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    with pytest.raises(SpecError) as caught:
        DockerfileBase.create(tmp_path / "Dockerfile", None, {"V\n": "1"})
    assert caught.value.argument == "build_args"


@pytest.mark.parametrize("command", [
    "--mount=type=bind,source=/,target=/h cat /h/etc/shadow",
    "  --network=host curl http://169.254.169.254/",
    "--security=insecure id",
    "\t--mount=type=cache,target=/root/.cache true",
])
def test_a_command_cannot_start_with_a_dash(command: str) -> None:
    """The Dockerfile reads leading ``--words`` of a RUN line as RUN flags (--mount, --network,
    --security): a command must never start with one."""
    with pytest.raises(SpecError) as caught:
        Image.from_debian_base().with_commands(["true", command])
    assert caught.value.argument == "commands"
    assert "flag" in str(caught.value) and caught.value.hint


@pytest.mark.parametrize("command", ["-x", "- foo"])
def test_single_dash_commands_are_rejected_too(command: str) -> None:
    # /bin/sh -c would take them as its own options.
    with pytest.raises(SpecError):
        validate.command(command)


def test_ordinary_commands_with_dashes_inside_pass() -> None:
    assert validate.command("pip install --no-deps six") == "pip install --no-deps six"
    assert validate.command("echo --mount=x") == "echo --mount=x"


@pytest.mark.parametrize("call", [
    lambda: __import__("imagebuild_nb.spec.secrets", fromlist=["x"]).SecretMount.parse(
        "GITHUB_PAT\n"),
    lambda: __import__("imagebuild_nb.spec.layers", fromlist=["x"]).Labels.create({"a.b\n": "v"}),
])
def test_secret_names_and_label_keys_cannot_end_in_a_line_break(call: Callable[[], object]) -> None:
    # Both are rendered into RUN --mount flags and LABEL lines.
    with pytest.raises(SpecError):
        call()

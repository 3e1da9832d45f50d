"""The Hub fixture itself: a real user server whose kernel runs code in the environment the Hub
gives it (and nothing of the test process's IMAGEBUILD_NB_* settings)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.jupyterhub import Hub
from tests.support.kernel_ws import Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_alice_kernel_runs_in_the_environment_the_hub_gives_it(alice_kernel: Kernel) -> None:
    assert any(name.startswith("IMAGEBUILD_NB_") for name in os.environ), (
        "the check below needs IMAGEBUILD_NB_* settings in the test environment "
        "(source scripts/embedded-env.sh)")
    execution = alice_kernel.run(
        "import json, os, getpass, imagebuild_nb\n"
        "print(json.dumps(sorted(os.environ)))\n"
        "os.environ['JUPYTERHUB_USER'], imagebuild_nb.__name__").check()
    names = json.loads(execution.stdout)
    assert {"JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN"} <= set(names)
    assert [name for name in names if name.startswith("IMAGEBUILD_NB_")] == []
    assert execution.result == "('alice', 'imagebuild_nb')"


def test_kernel_errors_come_back_with_their_name(alice_kernel: Kernel) -> None:
    execution = alice_kernel.run("1 / 0")
    assert execution.error is not None and execution.error["ename"] == "ZeroDivisionError"


def test_every_process_the_hub_started_is_found_for_the_leftover_check(
    hub: Hub, alice_kernel: Kernel
) -> None:
    """The package's end asserts none of these outlives the Hub: here they are all found."""
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                for pid in hub.pids()]
    for part in ("-m jupyterhub", "configurable-http-proxy", "jupyterhub-singleuser",
                 "ipykernel_launcher", "-m imagebuild_nb.service"):
        assert any(part in command for command in commands), (part, commands)

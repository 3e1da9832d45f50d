"""The Hub fixture itself: a real user server whose kernel runs code in the environment the Hub
gives it (and nothing of the test process's IMAGEBUILD_NB_* settings)."""

from __future__ import annotations

import json
import os

import pytest

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

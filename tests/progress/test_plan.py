"""StepPlan: which steps are the user's, against Dockerfiles the renderer really produces."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from imagebuild_nb import Image
from imagebuild_nb.progress import plan as plan_module
from imagebuild_nb.progress.plan import (
    VERTEX_KEYWORDS,
    InternalMarker,
    PlannedStep,
    StepPlan,
    shown,
)
from imagebuild_nb.render import build_context
from imagebuild_nb.settings import Settings


def test_doctests() -> None:
    assert doctest.testmod(plan_module).failed == 0


@pytest.mark.parametrize("buildkit", [True, False])
def test_rendered_images_number_only_the_users_steps(tmp_path: Path, buildkit: bool) -> None:
    ca = tmp_path / "proxy-ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    image = (Image.from_base("localhost:5001/base:1", name="plan", registry="localhost:5001")
             .with_pip_packages("six")
             .with_env_vars({"MODE": "x"})
             .with_commands(["echo one", "echo two"]))
    dockerfile = build_context(image, buildkit=buildkit,
                               settings=Settings(extra_ca_files=(str(ca),))).dockerfile
    plan = StepPlan.from_dockerfile(dockerfile)
    users = [shown(i.text) for i in plan.instructions if not i.internal]
    # Only what the user asked for: the base, the packages, the variables, the commands
    # (not the installer's own stage, the build CAs, the virtual environment, the label).
    assert users[0] == "FROM localhost:5001/base:1"
    assert [u.split()[0] for u in users] == ["FROM", "RUN", "ENV", "RUN", "RUN"]
    assert "six" in users[1] and users[3:] == ["RUN echo one", "RUN echo two"]
    assert all(i.internal for i in plan.instructions if "ca-certificates" in i.text)
    if not buildkit:  # the legacy builder counts every instruction (and its label steps)
        total = len(plan.instructions) + 2
        step = plan.locate(len(plan.instructions) - 1, total)
        assert step is not None and (step.user_number, step.user_total) == (5, 5)
        assert plan.locate(total, total) == PlannedStep(None, 5, True, "")
        return
    # BuildKit numbers the vertices (no ENV, ARG, LABEL) of each stage.
    final = [i for i in plan.instructions
             if i.stage == plan.instructions[-1].stage and i.keyword in VERTEX_KEYWORDS]
    step = plan.locate(len(final), len(final), f"stage-{final[0].stage}")
    assert step is not None and (step.user_number, step.user_total) == (4, 4)
    assert shown(step.instruction) == "RUN echo two"
    tool = plan.locate(1, 2, "imagebuild-nb-uv")
    assert tool is not None and tool.internal


def test_a_users_dockerfile_cell_keeps_every_step_but_our_label(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\nFROM busybox AS build\nRUN echo a \\\n    && echo b\n"
        "FROM busybox\nCOPY --from=build /x /x\n")
    image = Image.from_dockerfile(tmp_path / "Dockerfile", name="cell", registry="r:5000")
    plan = StepPlan.from_dockerfile(build_context(image).dockerfile)
    assert [(i.keyword, i.stage, i.internal) for i in plan.instructions] == [
        ("FROM", 0, False), ("RUN", 0, False), ("FROM", 1, False), ("COPY", 1, False),
        ("LABEL", 1, True)]
    assert plan.instructions[1].text == "RUN echo a && echo b"
    # BuildKit numbers per stage, by name or "stage-N"; the user's steps are numbered across.
    assert plan.locate(2, 2, "build") == PlannedStep(2, 4, False, "RUN echo a && echo b")
    assert plan.locate(2, 2, "stage-1") == PlannedStep(4, 4, False, "COPY --from=build /x /x")
    assert plan.locate(2, 2) is None  # no stage from a multi-stage build: no guess
    assert plan.locate(5, 5) == PlannedStep(None, 4, True, plan.instructions[4].text)


def test_the_marker_alone_recognises_the_build_ca_block_in_order() -> None:
    marker = InternalMarker()
    steps = ['COPY ["build-ca/", "/usr/local/share/ca-certificates/imagebuild-nb-build/"]',
             "RUN if command -v update-ca-certificates >/dev/null 2>&1; then x; fi",
             "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "RUN make",
             "ENV SSL_CERT_FILE=/mine"]
    assert [marker.is_internal(s) for s in steps] == [True, True, True, False, False]

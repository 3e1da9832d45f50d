"""StepPlan: which steps are the user's, against Dockerfiles the renderer really produces."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from imagebuild_nb import Image
from imagebuild_nb.progress import plan as plan_module
from imagebuild_nb.progress.plan import InternalMarker, StepPlan
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
    users = [i.text for i in plan.instructions if not i.internal]
    assert users[0].startswith("FROM localhost:5001/base:1")
    assert [u.split()[0] for u in users] == ["FROM", "RUN", "ENV", "RUN", "RUN"]
    assert "six" in users[1] and users[3:] == ["RUN echo one", "RUN echo two"]
    # Every instruction the user did not ask for is ours (venv, CA block if rendered, label).
    ours = [i.text for i in plan.instructions if i.internal]
    assert any("python3 -m venv" in t for t in ours) and ours[-1].startswith("LABEL")
    assert all(i.internal for i in plan.instructions if "ca-certificates" in i.text)
    # The legacy builder counts every instruction, BuildKit only vertices (no ENV, no LABEL).
    legacy_total = len(plan.instructions)
    step = plan.locate(legacy_total - 1, legacy_total)
    assert step is not None and (step.user_number, step.user_total) == (5, 5)
    vertices = [i for i in plan.instructions if i.keyword in plan_module.VERTEX_KEYWORDS]
    step = plan.locate(len(vertices), len(vertices))
    assert step is not None and (step.user_number, step.user_total) == (4, 4)
    assert step.instruction == "RUN echo two"


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
    # Multi-stage under BuildKit (numbered per stage) cannot be mapped: no guess.
    assert plan.locate(2, 2) is None and plan.locate(5, 5) is not None


def test_the_marker_alone_recognises_the_build_ca_block_in_order() -> None:
    marker = InternalMarker()
    steps = ['COPY ["build-ca/", "/usr/local/share/ca-certificates/imagebuild-nb-build/"]',
             "RUN if command -v update-ca-certificates >/dev/null 2>&1; then x; fi",
             "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "RUN make",
             "ENV SSL_CERT_FILE=/mine"]
    assert [marker.is_internal(s) for s in steps] == [True, True, True, False, False]

"""A farm refuses build secrets (its agents have no secret configuration) and multi-platform
images (its agents drive the Engine API, one platform per build) for now, clearly and before
anything is stored."""

from __future__ import annotations

import asyncio

import pytest

from imagebuild_nb.farm.backend import FarmBackend
from imagebuild_nb.farm.store import FarmStore
from imagebuild_nb.service.submission import Submission, SubmissionError


def test_farm_refuses_build_secrets_naming_them_and_the_way_out(farm_store: FarmStore) -> None:
    backend = FarmBackend(farm_store, listen=False, poll=0.5)
    submission = Submission.from_json({"uri": "localhost:5001/f/x:1",
                                       "context": "sha256:" + "0" * 64,
                                       "secrets": {"env-GITHUB_PAT-0123": "GITHUB_PAT"}})
    with pytest.raises(SubmissionError, match="farm cannot take build secrets yet "
                       r"\(GITHUB_PAT\).*builder='local'"):
        asyncio.run(backend.submit(submission))


def test_farm_refuses_a_multi_platform_image_naming_the_way_out(farm_store: FarmStore) -> None:
    backend = FarmBackend(farm_store, listen=False, poll=0.5)
    submission = Submission.from_json({"uri": "localhost:5001/f/x:1",
                                       "context": "sha256:" + "0" * 64,
                                       "platform": "linux/arm64,linux/amd64"})
    with pytest.raises(SubmissionError, match=r"one platform per image yet "
                       r"\(linux/amd64,linux/arm64 asked\).*single build service"):
        asyncio.run(backend.submit(submission))
    assert farm_store.list() == []

"""The handlers' seam: the embedded default behind ``BuildBackend`` builds for real, as before."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import docker
import pytest

from imagebuild_nb.service.backend import BuildBackend, LocalBackend
from imagebuild_nb.service.engine_runner import DockerApiRunner
from imagebuild_nb.service.manager import BuildManager, MissingContextError, UnknownBuildError
from imagebuild_nb.service.store import BuildStore
from imagebuild_nb.service.submission import Submission
from imagebuild_nb.wire import BuildStatus
from tests.support.context_tar import context_tar
from tests.support.services import BUSYBOX_IMAGE


@pytest.mark.engine
def test_local_backend_builds_dedups_and_streams(tmp_path: Path,
                                                 docker_client: docker.DockerClient):
    tag = f"imagebuild-nb-test/backend-{uuid.uuid4().hex[:12]}:1"
    raw, digest = context_tar(f"FROM {BUSYBOX_IMAGE}\nRUN echo backend-{uuid.uuid4().hex}\n")

    async def scenario() -> tuple[list[str], bool, str]:
        backend = LocalBackend(BuildManager(BuildStore(tmp_path / "state"),
                                            DockerApiRunner(network_mode="host")))
        assert isinstance(backend, BuildBackend)
        assert not await backend.use_context(digest)
        staged = backend.upload_dir() / "upload.tmp"
        staged.write_bytes(raw)
        await backend.store_context(digest, staged)
        assert await backend.use_context(digest)
        submission = Submission.from_json({"uri": tag, "context": digest, "push": False})
        first, joined_first = await backend.submit(submission)
        second, joined = await backend.submit(submission)
        assert (second.id, joined_first, joined) == (first.id, False, True)
        kinds = []
        async for batch in backend.follow(first.id, after=0, keepalive=5):
            for _seq, text in batch or ():
                kinds.append(json.loads(text)["kind"])
        record = await backend.get(first.id)
        events = await backend.read_events(first.id)
        assert [json.loads(text)["kind"] for text in events] == kinds
        with pytest.raises(UnknownBuildError):
            await backend.get("nope")
        with pytest.raises(MissingContextError):
            await backend.submit(
                Submission.from_json({"uri": tag, "context": "sha256:" + "f" * 64}))
        await backend.shutdown()
        return kinds, record.submissions == 2, record.status

    try:
        kinds, counted, status = asyncio.run(scenario())
    finally:
        try:
            docker_client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert counted and status is BuildStatus.SUCCEEDED

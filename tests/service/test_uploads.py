"""Uploaded build contexts on disk: nothing partial survives a crash, nothing stays forever."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator

import httpx

from tests.service.conftest import ServiceProcess
from tests.service.test_remote_build import wait_for
from tests.service.test_security import member, tar_bytes

DAY = 24 * 3600


def partial_uploads(service: ServiceProcess) -> list[str]:
    return sorted(path.name for path in (service.state_dir / "contexts").glob(".upload-*"))


def test_a_service_killed_mid_upload_leaves_no_partial_file_after_its_restart(
    service: ServiceProcess,
) -> None:
    body = tar_bytes(member("big.bin", data=os.urandom(1 << 20)))
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    first_half_sent = threading.Event()
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield body[: len(body) // 2]
        first_half_sent.set()
        release.wait(30)
        yield body[len(body) // 2 :]

    def upload() -> None:
        try:
            with service.http() as http:
                http.put(f"/imagebuild/api/contexts/{digest}", content=slow_body(),
                         headers={"Content-Length": str(len(body))})
        except httpx.TransportError:
            pass  # the service was killed under it

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert first_half_sent.wait(30)
        wait_for(lambda: partial_uploads(service))
        service.stop(kill=True)
    finally:
        release.set()
        uploader.join(30)
    assert partial_uploads(service), "the kill left a partial upload (the case to clean)"

    service.start()
    assert partial_uploads(service) == []
    with service.http() as http:
        assert http.head(f"/imagebuild/api/contexts/{digest}").status_code == 404


def test_uploaded_contexts_are_deleted_after_the_retention_period_since_their_last_use(
    service: ServiceProcess,
) -> None:
    bodies = {age: tar_bytes(member(f"f-{age}", data=os.urandom(64))) for age in ("old", "new")}
    digests = {age: "sha256:" + hashlib.sha256(body).hexdigest() for age, body in bodies.items()}
    with service.http() as http:
        for age, body in bodies.items():
            response = http.put(f"/imagebuild/api/contexts/{digests[age]}", content=body)
            assert response.status_code == 201
    stored = {age: service.state_dir / "contexts" / (d.replace(":", "-") + ".tar")
              for age, d in digests.items()}
    past = time.time() - 2 * DAY  # last used two days ago (default retention: one day)
    os.utime(stored["old"], (past, past))
    os.utime(stored["new"], (time.time() - DAY / 2, time.time() - DAY / 2))
    service.stop()
    service.start()
    with service.http() as http:
        assert http.head(f"/imagebuild/api/contexts/{digests['old']}").status_code == 404
        assert http.head(f"/imagebuild/api/contexts/{digests['new']}").status_code == 200
    assert not stored["old"].exists()
    # A HEAD is a use: the client skips the upload, so the context must outlive its build.
    assert stored["new"].stat().st_mtime > time.time() - 60

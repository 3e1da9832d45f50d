"""The remote builder holds no per-build state: two builds through one builder leave it as it was,
and each build is found again by its id alone."""

from __future__ import annotations

import pytest

from imagebuild_nb.builders.remote import RemoteBuilder, check_outcome
from imagebuild_nb.wire import BuildStatus
from tests.service.conftest import ServiceProcess, busybox_request
from tests.support.services import Registry

pytestmark = [pytest.mark.engine, pytest.mark.registry]


def test_two_builds_through_one_remote_builder_leave_no_state_on_it(
        shared_service: ServiceProcess, plain_registry: Registry, busybox_base: str,
        unique_name: str):
    builder = RemoteBuilder(client=shared_service.client())
    before = dict(vars(builder))
    runs = [builder.start(busybox_request(busybox_base, f"{plain_registry.host}/{unique_name}:{n}",
                                          f"echo stateless-{n}")) for n in (1, 2)]
    assert vars(builder) == before  # nothing about either build kept on the builder
    for run in runs:
        kinds = [event.kind for event in builder.follow(run.id)]
        assert kinds[-1] == "finished"
        record = builder.client.get(run.id)
        assert BuildStatus(record["status"]) is BuildStatus.SUCCEEDED
        check_outcome(record)
    builder.close()

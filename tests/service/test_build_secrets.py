"""Remote build secrets: the client sends names, the service resolves them from its own config.

A real service over HTTP building with the host's BuildKit CLI, a real engine: a RUN step reads
secrets the service's operator configured (an environment variable and a file of the service
host) while the client machine has neither; no value reaches a record, an event, a log, the
service's state directory, a layer or the tag. Unknown names and a service that cannot mount
secrets (the Engine-API driver) are refused at submission with errors naming the problem.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from imagebuild_nb import Image, ImageBuildEngine
from imagebuild_nb.errors import ServiceError
from imagebuild_nb.service.build_secrets import (
    SecretConfigError,
    ServiceSecrets,
    read_config_file,
)
from imagebuild_nb.service.manager import BuildManager
from imagebuild_nb.service.store import BuildRecord, BuildStore
from imagebuild_nb.service.submission import Submission, SubmissionError
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.secrets import SecretMount, remote_secrets
from tests.service.conftest import DOCKER_API_RUNNER, ServiceProcess
from tests.test_secrets_build import _saved_bytes

CONTEXT = "sha256:" + "a" * 64


# -- plain: configuration, submission field, names ------------------------------------------
def test_client_sends_names_never_sources_or_values() -> None:
    env, path = SecretMount.parse("GITHUB_PAT"), SecretMount.parse("/home/me/keys/deploy_key")
    assert remote_secrets([env, path]) == {env.id: "GITHUB_PAT", path.id: "deploy_key"}


def test_service_config_maps_names_to_host_variables_and_files(tmp_path: Path) -> None:
    secrets = ServiceSecrets.from_config({"GITHUB_PAT": {"env": "SVC_PAT"},
                                          "deploy_key": {"file": "/run/keys/deploy"}})
    asked = {"env-GITHUB_PAT-0123": "GITHUB_PAT", "file-deploy_key-4567": "deploy_key"}
    assert secrets.missing(asked) == []
    assert secrets.sources(asked) == {"env-GITHUB_PAT-0123": "env:SVC_PAT",
                                      "file-deploy_key-4567": "/run/keys/deploy"}
    assert secrets.missing({**asked, "x": "NPM_TOKEN"}) == ["NPM_TOKEN"]
    config = tmp_path / "secrets.json"
    config.write_text(json.dumps({"A": {"env": "B"}}))
    assert read_config_file(str(config)) == {"A": {"env": "B"}}


@pytest.mark.parametrize("config, problem", [
    ({"GITHUB_PAT": "SVC_PAT"}, "must be name ->"),
    ({"GITHUB_PAT": {"value": "hunter2"}}, "must be name ->"),
    ({"GITHUB_PAT": {"env": "SVC PAT"}}, "not a variable name"),
    ({"key": {"file": "relative/key"}}, "not an absolute path"),
    ({"bad name": {"env": "X"}}, "not a usable secret name"),
])
def test_bad_service_config_is_refused_naming_the_entry(config: dict, problem: str) -> None:
    with pytest.raises(SecretConfigError, match=problem):
        ServiceSecrets.from_config(config)


def test_submission_carries_secret_names_and_refuses_malformed_ones() -> None:
    body = {"uri": "localhost:5001/x:1", "context": CONTEXT}
    sub = Submission.from_json({**body, "secrets": {"env-A-0123": "A"}})
    assert sub.secrets == {"env-A-0123": "A"}
    assert sub.dedup_key != Submission.from_json(body).dedup_key
    for bad in (["A"], {"id with space": "A"}, {"env-A": "A,src=/etc/shadow"}, {"env-A": 1}):
        with pytest.raises(SubmissionError, match="secrets"):
            Submission.from_json({**body, "secrets": bad})


# -- a real service and engine --------------------------------------------------------------
@pytest.fixture
def secrets_service(start_service: Callable[..., ServiceProcess], tmp_path: Path
                    ) -> tuple[ServiceProcess, str, str]:
    """A service with the host's driver (BuildKit) lending two secrets: a variable, a file."""
    env_value = f"svc-env-secret-{uuid.uuid4().hex}"
    file_value = f"svc-file-secret-{uuid.uuid4().hex}"
    key_file = tmp_path / "service-host-deploy-key"
    key_file.write_text(file_value)
    config = tmp_path / "build-secrets.json"
    config.write_text(json.dumps({"IBNB_REMOTE_PAT": {"env": "IBNB_SERVICE_HOST_PAT"},
                                  "deploy_key": {"file": str(key_file)}}))
    service = start_service(env={"IBNB_SERVICE_HOST_PAT": env_value,
                                 "IMAGEBUILD_NB_BUILD_SECRETS_FILE": str(config)})
    return service, env_value, file_value


@pytest.mark.engine
def test_remote_build_reads_service_secrets_and_nothing_keeps_them(
        secrets_service: tuple[ServiceProcess, str, str], monkeypatch: pytest.MonkeyPatch,
        docker_client: docker.DockerClient, busybox_base: str,
        remove_images: list[str]) -> None:
    service, env_value, file_value = secrets_service
    monkeypatch.delenv("IBNB_REMOTE_PAT", raising=False)  # the client machine has neither
    nonce = uuid.uuid4().hex
    image = (Image.from_base(busybox_base).clone(name=f"test/remote-secrets-{nonce[:8]}")
             .with_commands([f': {nonce}; echo "$IBNB_REMOTE_PAT" | sha256sum > /proof-env',
                             'echo "printing $IBNB_REMOTE_PAT"',
                             'echo "digest $(echo "$IBNB_REMOTE_PAT" | sha256sum)"'],
                            secret_mounts=["IBNB_REMOTE_PAT"])
             .with_commands([f": {nonce}; sha256sum < /run/secrets/deploy_key > /proof-file"],
                            secret_mounts=["/nowhere/on/the/client/deploy_key"]))
    engine = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token))
    build = engine.build(image, builder="remote")
    remove_images.append(build.uri)
    assert build.built and build.remote_run is not None

    out = subprocess.run(["docker", "run", "--rm", build.uri, "cat", "/proof-env", "/proof-file"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == hashlib.sha256(f"{env_value}\n".encode()).hexdigest()
    assert out[2] == hashlib.sha256(file_value.encode()).hexdigest()

    values = (env_value, file_value)
    everything = _saved_bytes(docker_client, build.uri)
    assert not any(value.encode() in everything for value in values)
    assert "printing ***" in build.logs  # a step that prints the value shows ***
    assert f"digest {out[0]}" in build.logs  # ... and one that prints its digest, the digest
    with service.http() as http:
        record = http.get(f"/imagebuild/api/builds/{build.remote_run.id}").json()
        log_text = http.get(f"/imagebuild/api/builds/{build.remote_run.id}/log").text
    assert sorted(record["secrets"].values()) == ["IBNB_REMOTE_PAT", "deploy_key"]  # names only
    seen = [build.logs, build.uri, json.dumps(record), log_text, service.log_path.read_text(),
            *(json.dumps(event.to_dict()) for event in build.events)]
    for path in service.state_dir.rglob("*"):  # the database, event logs, contexts
        if path.is_file():
            seen.append(path.read_bytes().decode("latin-1"))
    for text in seen:
        assert env_value not in text and file_value not in text


@pytest.mark.engine
def test_unknown_secret_is_refused_at_submission_naming_it(
        secrets_service: tuple[ServiceProcess, str, str], monkeypatch: pytest.MonkeyPatch,
        busybox_base: str) -> None:
    service, _, _ = secrets_service
    monkeypatch.setenv("IBNB_NOT_ON_SERVICE", "the client has it, the service does not")
    image = (Image.from_base(busybox_base).clone(name=f"test/remote-secrets-{uuid.uuid4().hex[:8]}")
             .with_commands("true", secret_mounts=["IBNB_NOT_ON_SERVICE", "IBNB_REMOTE_PAT"]))
    engine = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token))
    with pytest.raises(ServiceError) as info:
        engine.build(image, builder="remote")
    message = str(info.value)
    assert info.value.status_code == 400
    assert "no build secret named IBNB_NOT_ON_SERVICE" in message
    assert "IBNB_REMOTE_PAT" not in message.split("named", 1)[1].split(":")[0]
    assert "ImageBuildServiceApp.build_secrets" in message
    assert "the client has it" not in message

    with service.http() as http:  # the raw API: the same refusal, and no build recorded
        before = http.get("/imagebuild/api/builds").json()["builds"]
        response = http.post("/imagebuild/api/builds", json={
            "uri": "localhost:5001/x:1", "context": CONTEXT, "secrets": {"env-X-1": "NOPE"}})
        assert response.status_code == 400 and "NOPE" in response.json()["message"]
        assert http.get("/imagebuild/api/builds").json()["builds"] == before


@pytest.mark.engine
def test_engine_api_service_refuses_secrets_saying_use_buildkit(
        start_service: Callable[..., ServiceProcess], busybox_base: str, tmp_path: Path) -> None:
    config = tmp_path / "build-secrets.json"
    config.write_text(json.dumps({"IBNB_REMOTE_PAT": {"env": "IBNB_SERVICE_HOST_PAT"}}))
    service = start_service(options=(DOCKER_API_RUNNER,),
                            env={"IBNB_SERVICE_HOST_PAT": "some-value-here",
                                 "IMAGEBUILD_NB_BUILD_SECRETS_FILE": str(config)})
    image = (Image.from_base(busybox_base).clone(name=f"test/remote-secrets-{uuid.uuid4().hex[:8]}")
             .with_commands("true", secret_mounts=["IBNB_REMOTE_PAT"]))
    engine = ImageBuildEngine(Settings(remote_url=service.url, remote_token=service.token))
    with pytest.raises(ServiceError, match="docker-api driver.*cannot pass build secrets"
                       ".*BuildKit") as info:
        engine.build(image, builder="remote")
    assert info.value.status_code == 400


def test_service_refuses_a_malformed_secrets_file(tmp_path: Path) -> None:
    config = tmp_path / "build-secrets.json"
    config.write_text(json.dumps({"IBNB_REMOTE_PAT": {"value": "inline"}}))
    with pytest.raises(SecretConfigError, match="absent.json"):
        read_config_file(str(tmp_path / "absent.json"))
    with pytest.raises(SecretConfigError, match="must be name ->"):
        read_config_file(str(config))


def test_a_queued_build_whose_secret_was_removed_fails_naming_it(tmp_path: Path) -> None:
    """Re-queued after a restart whose configuration lacks the name: it fails, never runs."""
    ran: list[object] = []

    class Runner:
        name, driver = "recording", "buildkit"

        def run(self, job, cancelled):  # type: ignore[no-untyped-def]
            ran.append(job)
            yield from ()

    async def scenario() -> BuildRecord:
        store = BuildStore(tmp_path / "state")
        record = store.insert(BuildRecord.new(uri="r/x:1", context=CONTEXT,
                                              secrets={"env-GONE-1": "GONE"}))
        manager = BuildManager(store, Runner(), secrets=ServiceSecrets({}))
        manager.recover()  # queued -> queued again
        while not store.get(record.id).terminal:  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        ended = store.get(record.id)
        store.close()
        return ended  # type: ignore[return-value]

    ended = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert ended.status == "failed" and not ran
    assert "no build secret named GONE" in (ended.error or "")
    assert ended.secrets == {"env-GONE-1": "GONE"}  # the names survive the restart

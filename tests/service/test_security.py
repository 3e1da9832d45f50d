"""Security: authentication on every route, hostile archives, upload limits, no leaked secrets."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.events import BuildFinished
from tests.service.conftest import (
    DOCKER_API_RUNNER,
    ServiceProcess,
    busybox_request,
    running_services,
)
from tests.support.cred_helpers import install_helper
from tests.support.services import AUTH_PASSWORD, AUTH_USER, Registry


@pytest.fixture
def service(shared_service: ServiceProcess) -> ServiceProcess:
    return shared_service


ZERO = "sha256:" + "0" * 64
ROUTES = [
    ("GET", "/imagebuild/api/health"),
    ("GET", "/imagebuild/api/openapi.yaml"),
    ("GET", "/imagebuild/api/existence?reference=localhost:5001/library/busybox:latest"),
    ("HEAD", f"/imagebuild/api/contexts/{ZERO}"),
    ("PUT", f"/imagebuild/api/contexts/{ZERO}"),
    ("GET", "/imagebuild/api/builds"),
    ("POST", "/imagebuild/api/builds"),
    ("GET", "/imagebuild/api/builds/0123456789abcdef"),
    ("POST", "/imagebuild/api/builds/0123456789abcdef/cancel"),
    ("GET", "/imagebuild/api/builds/0123456789abcdef/events"),
    ("GET", "/imagebuild/api/builds/0123456789abcdef/log"),
]


def tar_bytes(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        build(tar)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
           data: bytes = b"") -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.size = kind, link, len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)

    return add


def both(*adders: Callable[[tarfile.TarFile], None]) -> Callable[[tarfile.TarFile], None]:
    return lambda tar: [add(tar) for add in adders]  # type: ignore[func-returns-value]


def put_context(http: httpx.Client, body: bytes) -> httpx.Response:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return http.put(f"/imagebuild/api/contexts/{digest}", content=body)


def state_files(service: ServiceProcess) -> set[Path]:
    return {path for path in service.state_dir.rglob("*") if path.is_file()}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong-token"}],
                         ids=["none", "wrong"])
def test_every_route_refuses_missing_or_wrong_credentials(
    service: ServiceProcess, headers: dict[str, str]
) -> None:
    with service.http() as http:
        before = http.get("/imagebuild/api/builds").json()
        files_before = state_files(service)
        body = tar_bytes(member("Dockerfile", data=b"FROM scratch\n"))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with httpx.Client(base_url=service.url, headers=headers) as anonymous:
            for method, path in ROUTES:
                response = anonymous.request(method, path,
                                             content=b"{}" if method != "GET" else None)
                # Unauthenticated is 401 with a challenge naming the scheme (RFC 9110), not 403.
                assert response.status_code == 401, (method, path, response.status_code)
                challenge = response.headers.get("WWW-Authenticate", "")
                assert challenge.startswith("token ") and 'realm="imagebuild"' in challenge, (
                    method, path, dict(response.headers))
            upload = anonymous.put(f"/imagebuild/api/contexts/{digest}", content=body)
            assert upload.status_code == 401 and "WWW-Authenticate" in upload.headers
            page = anonymous.get("/imagebuild/builds/0123456789abcdef", follow_redirects=False)
            assert (page.status_code in (302, 401, 403)
                    and "login" in page.headers.get("location", "/login"))
        assert http.head(f"/imagebuild/api/contexts/{digest}").status_code == 404
        assert http.get("/imagebuild/api/builds").json() == before
        assert state_files(service) == files_before


MALICIOUS = {
    "absolute path": member("/tmp/imagebuild-evil-abs", data=b"x"),
    "dot-dot": member("../imagebuild-evil-dotdot", data=b"x"),
    "nested dot-dot": member("a/../../imagebuild-evil-nested", data=b"x"),
    "symlink absolute": member("link", tarfile.SYMTYPE, "/etc/passwd"),
    "symlink outside": member("sub/link", tarfile.SYMTYPE, "../../outside"),
    "hardlink absolute": member("hard", tarfile.LNKTYPE, "/etc/passwd"),
    "hardlink outside": member("hard", tarfile.LNKTYPE, "../outside"),
    "write through symlink": both(
        member("dir", tarfile.SYMTYPE, "sub"), member("dir/evil", data=b"x")
    ),
    "char device": member("dev", tarfile.CHRTYPE),
    "block device": member("blk", tarfile.BLKTYPE),
    "fifo": member("fifo", tarfile.FIFOTYPE),
}


@pytest.fixture(scope="module")
def limited_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with running_services(tmp_path_factory.mktemp("limited")) as start:
        yield start(
            options=(
                DOCKER_API_RUNNER,
                "--ImageBuildServiceApp.max_upload_bytes=65536",
                "--ImageBuildServiceApp.max_context_files=20",
            )
        )


def test_malicious_archives_are_refused_and_nothing_is_written(
    limited_service: ServiceProcess, tmp_path: Path
) -> None:
    service = limited_service
    with service.http() as http:
        files_before = state_files(service)
        for name, build in MALICIOUS.items():
            response = put_context(http, tar_bytes(build))
            assert response.status_code == 400, (name, response.text)
            assert response.json()["message"], name
        assert put_context(http, b"this is not a tar archive" * 40).status_code == 400
        wrong = http.put(f"/imagebuild/api/contexts/{ZERO}",
                         content=tar_bytes(member("a", data=b"x")))
        assert wrong.status_code == 400 and "digest" in wrong.json()["message"]
        assert state_files(service) == files_before
    for leaked in ("/tmp/imagebuild-evil-abs", "/imagebuild-evil-dotdot",
                   "/imagebuild-evil-nested"):
        assert not Path(leaked).exists()
    assert not list(service.state_dir.parent.glob("imagebuild-evil*"))


def test_oversized_uploads_are_refused(limited_service: ServiceProcess) -> None:
    service = limited_service
    with service.http() as http:
        files_before = state_files(service)
        big = tar_bytes(member("big.bin", data=b"\0" * 100_000))
        assert put_context(http, big).status_code == 413
        chunked = iter([big[i : i + 8192] for i in range(0, len(big), 8192)])
        digest = "sha256:" + hashlib.sha256(big).hexdigest()
        response = http.put(f"/imagebuild/api/contexts/{digest}", content=chunked)
        assert response.status_code in (400, 413)
        many = tar_bytes(both(*(member(f"f{i}", data=b"x") for i in range(30))))
        assert put_context(http, many).status_code == 413
        assert state_files(service) == files_before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"uri": "localhost:5001/a:1", "context": ZERO, "extra": 1}, "unknown field"),
        ({"uri": "localhost:5001/a:1", "context": ZERO, "push": "yes"}, "push"),
        ({"uri": "Not A Ref", "context": ZERO}, "uri"),
        ({"uri": "localhost:5001/a:1", "context": "md5:abc"}, "context"),
        ({"uri": "localhost:5001/a:1", "context": ZERO, "dockerfile": "../Dockerfile"},
         "dockerfile"),
        ({"context": ZERO}, "uri"),
        ([1, 2], "JSON object"),
        ({"uri": "localhost:5001/a:1", "context": ZERO}, "not uploaded"),
    ],
)
def test_invalid_submissions_get_a_4xx_with_a_message(
    service: ServiceProcess, body: object, message: str
) -> None:
    with service.http() as http:
        before = http.get("/imagebuild/api/builds").json()
        response = http.post("/imagebuild/api/builds", json=body)
        assert 400 <= response.status_code < 500
        assert message in response.json()["message"]
        assert http.get("/imagebuild/api/builds").json() == before


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000,
     b'{"uri": "localhost:5001/a:1", "context": "' + ZERO.encode() + b'", "spec": '
     + b'{"a": ' * 5_000 + b"{}" + b"}" * 5_000 + b"}"],
    ids=["array 100k deep", "spec 5k deep"],
)
def test_deeply_nested_json_is_a_400_that_says_so(service: ServiceProcess, body: bytes) -> None:
    with service.http() as http:
        before = http.get("/imagebuild/api/builds").json()
        response = http.post("/imagebuild/api/builds", content=body,
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert "nested" in response.json()["message"]
        assert http.get("/imagebuild/api/builds").json() == before
    assert "Traceback" not in service.log_path.read_text()


@pytest.mark.engine
@pytest.mark.registry
def test_credentials_never_appear_in_responses_events_or_logs(
    service: ServiceProcess, auth_registry: Registry, busybox_base: str, unique_name: str,
) -> None:
    secrets = {
        AUTH_PASSWORD,
        base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode(),
        service.token,
    }
    uri = f"{auth_registry.host}/{unique_name}:private"
    # The build itself prints the password (as a careless RUN would); the service masks it.
    request = busybox_request(
        busybox_base, uri, "cat /leak.txt", files={"leak.txt": f"pw={AUTH_PASSWORD}\n"}
    )
    leaking = request.dockerfile.replace("RUN", "COPY leak.txt /leak.txt\nRUN")
    request = request.__class__(
        dockerfile=leaking,
        context=request.context.__class__(
            {**request.context.files, "Dockerfile": leaking}  # type: ignore[attr-defined]
        ),
        tags=request.tags,
        push=True,
    )
    seen: list[str] = []
    with service.client() as client, service.http() as http:
        run = client.submit_request(request)
        events = list(client.events(run.id))
        assert isinstance(events[-1], BuildFinished), events[-1]
        assert events[-1].digest == auth_registry.manifest_digest(unique_name, "private")
        assert any(getattr(e, "text", "") == "pw=***" for e in events)
        for path in (
            "/imagebuild/api/health", "/imagebuild/api/builds", f"/imagebuild/api/builds/{run.id}",
            f"/imagebuild/api/builds/{run.id}/events", f"/imagebuild/api/builds/{run.id}/log",
            f"/imagebuild/builds/{run.id}",
            f"/imagebuild/api/existence?reference={uri}",
        ):
            response = http.get(path)
            assert response.status_code == 200, path
            seen.append(response.text + str(response.headers))
    seen.append(service.log_path.read_text())
    for path in state_files(service):
        if "contexts" not in path.parts:  # the uploaded context is the user's own bytes
            seen.append(path.read_bytes().decode("utf-8", "replace"))
    for text in seen:
        for secret in secrets:
            assert secret not in text



@pytest.mark.engine
@pytest.mark.registry
def test_a_failing_credential_helper_at_push_time_leaks_nothing_into_records_events_or_logs(
    start_service: Callable[..., ServiceProcess], auth_registry: Registry, busybox_base: str,
    unique_name: str, tmp_path: Path,
) -> None:
    secret = f"helper-secret-{unique_name[-8:]}"
    install_helper(tmp_path / "bin", "leaky",
                   f'echo "vault says {secret}"; echo "refresh token {secret}" >&2; exit 4\n')
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {auth_registry.host: "leaky"}}))
    service = start_service(options=(DOCKER_API_RUNNER,), env={
        "DOCKER_CONFIG": str(config),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    uri = f"{auth_registry.host}/{unique_name}:helper"
    with service.client() as client, service.http() as http:
        run = client.submit_request(busybox_request(busybox_base, uri, "echo built"))
        events = list(client.events(run.id))
        record = http.get(f"/imagebuild/api/builds/{run.id}")
        texts = [record.text, http.get(f"/imagebuild/api/builds/{run.id}/log").text,
                 http.get(f"/imagebuild/builds/{run.id}").text,
                 *(json.dumps(event.to_dict()) for event in events)]
    assert record.json()["status"] == "failed"
    assert "docker-credential-leaky" in record.json()["error"]  # the helper, by name
    texts.append(service.log_path.read_text())
    for text in texts:
        assert secret not in text

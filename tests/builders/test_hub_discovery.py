"""Finding the build service: an explicit setting, or the JupyterHub service of this server.

The Hub's answers that a running JupyterHub does not give on demand (a 403/404 shaped like
its scope checks, a model without a URL, a Hub that is down or hangs, internal SSL) come from a
real HTTP server standing in for the Hub's API; the happy path against a real Hub is in
tests/hub/.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from imagebuild_nb.builders.hub_discovery import ServiceEndpoint, find_service, in_hub
from imagebuild_nb.builders.remote_client import RemoteBuildClient, _join
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import BuilderUnavailableError, SpecError
from imagebuild_nb.settings import Settings
from imagebuild_nb.spec.image import Image
from tests.support.scripted_http import ScriptedRequest, ScriptedServer, scripted_server
from tests.support.services import free_port
from tests.support.tls import KeyPair, make_ca, make_server_cert

SERVICE_MODEL_PATH = "/hub/api/services/imagebuild"


def hub_env(hub: ScriptedServer | str, token: str | None = None, **extra: str) -> dict[str, str]:
    """What the Hub's spawner gives a single-user server (the parts discovery reads)."""
    base = hub if isinstance(hub, str) else hub.url
    return {"JUPYTERHUB_API_URL": f"{base}/hub/api",
            "JUPYTERHUB_API_TOKEN": token or f"server-token-{uuid.uuid4().hex}", **extra}


def answering(status: int, body: dict[str, Any]) -> Callable[[ScriptedRequest], None]:
    def answer(request: ScriptedRequest) -> None:
        request.reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode())
    return answer


def model(url: str, name: str = "imagebuild") -> dict[str, Any]:
    """JupyterHub's service model as ``read:services`` shows it (apihandlers/base.py)."""
    return {"kind": "service", "name": name, "admin": False, "url": url,
            "prefix": f"/services/{name}/", "command": ["jupyter-imagebuild"], "pid": 4242,
            "info": {}, "display": True}


# -- the explicit setting wins -----------------------------------------------------------------

def test_an_explicit_remote_url_wins_over_the_hub_and_never_gets_the_hub_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    health = answering(200, {"status": "ok", "driver": "docker-api"})
    with scripted_server(answering(200, model("http://127.0.0.1:1"))) as hub, \
            scripted_server(health) as typed:
        env = hub_env(hub)
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        endpoint = find_service(Settings(remote_url=typed.url + "/", remote_token="mine"))
        assert (endpoint.url, endpoint.token) == (typed.url, "mine")
        assert not endpoint.from_hub and "IMAGEBUILD_NB_REMOTE_URL" in endpoint.origin

        # Through the client, with and without a token of the user's own.
        for token in ("mine", None):
            with RemoteBuildClient.from_settings(
                    Settings(remote_url=typed.url, remote_token=token)) as client:
                client.health()
        assert hub.requests == []  # the Hub was not even asked
        sent = [request.headers for request in typed.requests]
        assert [h.get("Authorization") for h in sent] == ["token mine", None]
        assert not any(env["JUPYTERHUB_API_TOKEN"] in str(h) for h in sent)


def test_outside_a_hub_with_nothing_set_says_how_to_configure_one() -> None:
    for environ in ({}, {"JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api"}):  # no token
        assert not in_hub(environ)
        with pytest.raises(BuilderUnavailableError, match="no build service is configured") as info:
            find_service(Settings(), environ)
        assert "IMAGEBUILD_NB_REMOTE_URL" in str(info.value.hint)


# -- what the Hub answers ---------------------------------------------------------------------

def test_the_service_url_is_the_models_url_and_prefix_and_a_success_is_cached() -> None:
    with scripted_server(answering(200, model("http://10.0.0.7:8890/"))) as hub:
        env = hub_env(hub)
        first = find_service(Settings(), env)
        again = find_service(Settings(), env)
        assert first.url == "http://10.0.0.7:8890/services/imagebuild"
        assert first.token == env["JUPYTERHUB_API_TOKEN"] and first.from_hub
        assert first.hub_api == f"{hub.url}/hub/api"
        assert first.origin == f"JupyterHub service 'imagebuild' ({hub.url}/hub/api)"
        assert env["JUPYTERHUB_API_TOKEN"] not in repr(first)
        assert again is first
        assert [(r.method, r.path) for r in hub.requests] == [("GET", SERVICE_MODEL_PATH)]
        assert hub.requests[0].headers["Authorization"] == f"token {env['JUPYTERHUB_API_TOKEN']}"
        # Another token (another server) or another name is asked afresh.
        find_service(Settings(), hub_env(hub))
        find_service(Settings(hub_service="builds"), env)
        assert [r.path for r in hub.requests][1:] == [SERVICE_MODEL_PATH,
                                                      "/hub/api/services/builds"]


def test_a_failure_is_not_cached() -> None:
    answers = [answering(503, {"status": 503, "message": "starting"}),
               answering(200, model("http://10.0.0.7:8890"))]
    with scripted_server(lambda request: answers.pop(0)(request)) as hub:
        env = hub_env(hub)
        with pytest.raises(BuilderUnavailableError, match="answered 503.*starting"):
            find_service(Settings(), env)
        assert find_service(Settings(), env).url == "http://10.0.0.7:8890/services/imagebuild"


@pytest.mark.parametrize("status, message", [
    (404, "No access to resources or resources not found"),  # scope filtered out, or no service
    (403, "Action is not authorized with current scopes; requires any of [read:services]"),
])
def test_a_service_the_token_cannot_see_names_the_recipe_and_the_settings(
        status: int, message: str) -> None:
    with scripted_server(answering(status, {"status": status, "message": message})) as hub:
        with pytest.raises(BuilderUnavailableError) as info:
            find_service(Settings(), hub_env(hub))
    error = info.value
    assert "the Hub has no service 'imagebuild' visible to this server's token" in error.message
    assert str(status) in error.message and message in error.message
    hint = str(error.hint)
    assert "imagebuild_nb.service.hub.configure_hub" in hint
    assert "read:services!service=imagebuild" in hint
    assert "access:services!service=imagebuild" in hint
    assert "IMAGEBUILD_NB_HUB_SERVICE" in hint and "IMAGEBUILD_NB_REMOTE_URL" in hint


def test_the_service_name_setting_is_the_one_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBUILD_NB_HUB_SERVICE", "team-builds")
    settings = Settings.from_env()
    assert settings.hub_service == "team-builds"
    with scripted_server(answering(200, model("http://10.0.0.7:8890", "team-builds"))) as hub:
        endpoint = find_service(settings, hub_env(hub))
    assert endpoint.url == "http://10.0.0.7:8890/services/team-builds"
    assert [r.path for r in hub.requests] == ["/hub/api/services/team-builds"]
    with pytest.raises(SpecError, match="hub_service"):
        find_service(Settings(hub_service="a/b"), hub_env("http://127.0.0.1:1"))


def test_a_model_without_a_url_says_why() -> None:
    # read:services:name only: JupyterHub filters the model down to kind, name and admin.
    name_only = {"kind": "service", "name": "imagebuild", "admin": False}
    with scripted_server(answering(200, name_only)) as hub:
        with pytest.raises(BuilderUnavailableError, match="does not show its URL") as info:
            find_service(Settings(), hub_env(hub))
    assert "read:services!service=imagebuild" in str(info.value.hint)
    # An external service registered without a url.
    with scripted_server(answering(200, {**model(""), "prefix": ""})) as hub:
        with pytest.raises(BuilderUnavailableError, match="has no URL") as info:
            find_service(Settings(), hub_env(hub))
    assert "configure_hub" in str(info.value.hint)


def test_an_unreachable_hub_is_named_with_its_url() -> None:
    env = hub_env(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(BuilderUnavailableError, match="is unreachable") as info:
        find_service(Settings(), env)
    assert env["JUPYTERHUB_API_URL"] in info.value.message
    assert "IMAGEBUILD_NB_REMOTE_URL" in str(info.value.hint)


def test_a_hub_that_hangs_is_given_up_on() -> None:
    release = threading.Event()

    def hang(request: ScriptedRequest) -> None:
        release.wait(30)
        answering(200, model("http://10.0.0.7:8890"))(request)

    with scripted_server(hang) as hub:
        try:
            with pytest.raises(BuilderUnavailableError, match="did not answer within 0.5 s"):
                find_service(Settings(), hub_env(hub), timeout=0.5)
        finally:
            release.set()
        assert len(hub.requests) == 1


# -- the Hub's internal SSL --------------------------------------------------------------------

def internal_cert(ca: KeyPair) -> KeyPair:
    """A user server's internal certificate: JupyterHub's are for server and client auth."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "user-server")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return KeyPair(key, cert)


@contextmanager
def https_hub(directory: Path, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """A Hub API that, like JupyterHub with internal_ssl, wants a client certificate signed by
    its CA; and the JUPYTERHUB_SSL_* files the Hub gives a server."""
    ca = make_ca("hub internal CA")
    ca_path, _ = ca.write(directory, "ca")
    hub_cert, hub_key = make_server_cert(ca).write(directory, "hub")
    user_cert, user_key = internal_cert(ca).write(directory, "user")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_path))
    context.load_cert_chain(hub_cert, hub_key)
    context.verify_mode = ssl.CERT_REQUIRED

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (f"https://127.0.0.1:{server.server_address[1]}",
               {"JUPYTERHUB_SSL_CERTFILE": str(user_cert), "JUPYTERHUB_SSL_KEYFILE": str(user_key),
                "JUPYTERHUB_SSL_CLIENT_CA": str(ca_path)})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_hubs_internal_ssl_files_are_used(tmp_path: Path) -> None:
    with https_hub(tmp_path, model("https://127.0.0.1:8890")) as (hub, files):
        endpoint = find_service(Settings(), hub_env(hub, **files))
        assert endpoint.url == "https://127.0.0.1:8890/services/imagebuild"
        assert endpoint.ssl_context is not None  # the service client trusts the same CA
        with pytest.raises(BuilderUnavailableError, match="is unreachable"):
            find_service(Settings(), hub_env(hub))  # without them: no trust, no client cert
    with pytest.raises(BuilderUnavailableError, match="SSL files cannot be read"):
        find_service(Settings(), hub_env(hub, JUPYTERHUB_SSL_CLIENT_CA=str(tmp_path / "none")))


# -- the client, the engine, the CLI and the widget with a Hub service -------------------------

def test_a_hub_service_that_is_down_is_named_with_where_it_was_found(
        monkeypatch: pytest.MonkeyPatch) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with scripted_server(answering(200, model(down))) as hub:
        for variable, value in hub_env(hub).items():
            monkeypatch.setenv(variable, value)
        with RemoteBuildClient.from_settings(Settings()) as client:
            with pytest.raises(BuilderUnavailableError) as info:
                client.health()
    assert f"{down}/services/imagebuild is unreachable" in info.value.message
    assert f"found as JupyterHub service 'imagebuild' ({hub.url}/hub/api)" in info.value.message
    assert "operator" in str(info.value.hint)


def use_hub(monkeypatch: pytest.MonkeyPatch, hub: ScriptedServer | str) -> dict[str, str]:
    env = hub_env(hub)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("IMAGEBUILD_NB_REMOTE_URL", raising=False)
    return env


def test_builder_remote_in_a_hub_server_asks_the_hub_and_says_what_it_answered(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The name is the test's own: the engine reuses builders per settings.
    name = f"imagebuild-{uuid.uuid4().hex[:8]}"
    missing = {"status": 404, "message": "No access to resources or resources not found"}
    with scripted_server(answering(404, missing)) as hub:
        use_hub(monkeypatch, hub)
        image = Image.from_base("localhost:5001/busybox:hub", name="test/hub-remote",
                                registry="localhost:5001")
        with pytest.raises(BuilderUnavailableError, match=f"no service '{name}' visible"):
            ImageBuildEngine(Settings(hub_service=name)).build(image.with_commands(["true"]),
                                                               builder="remote")
    # (the plan's driver question and the availability check each ask: failures are not cached)
    assert {r.path for r in hub.requests} == {f"/hub/api/services/{name}"}


def test_the_cli_looks_build_ids_up_on_the_hubs_service(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from imagebuild_nb.cli import main

    missing = {"status": 404, "message": "No access to resources or resources not found"}
    with scripted_server(answering(404, missing)) as hub:
        use_hub(monkeypatch, hub)
        assert main(["status", "0123456789ab"]) == 5
    error = capsys.readouterr().err
    assert "the Hub has no service 'imagebuild' visible" in error and "configure_hub" in error
    assert "cannot be looked up" not in error  # that is for a server outside any Hub
    assert [r.path for r in hub.requests] == [SERVICE_MODEL_PATH]


# -- links and pages ----------------------------------------------------------------------------

@pytest.mark.parametrize("base, link, joined", [
    # the service's base_url is in the URL and in its links: once, not twice
    ("http://127.0.0.1:8890/services/imagebuild", "/services/imagebuild/imagebuild/builds/b1",
     "http://127.0.0.1:8890/services/imagebuild/imagebuild/builds/b1"),
    ("https://hub.example/user/alice/", "/user/alice/imagebuild/builds/b1",
     "https://hub.example/user/alice/imagebuild/builds/b1"),
    ("http://127.0.0.1:8890", "/imagebuild/builds/b1",
     "http://127.0.0.1:8890/imagebuild/builds/b1"),
    # a proxy that strips its own prefix: the service's links lack it, so it stays
    ("https://proxy.example/build", "/imagebuild/builds/b1",
     "https://proxy.example/build/imagebuild/builds/b1"),
    ("https://proxy.example/build", "/builder/x", "https://proxy.example/build/builder/x"),
    ("http://a:1/p", "http://b:2/q", "http://b:2/q"),
])
def test_links_are_joined_without_doubling_the_base_path(base: str, link: str,
                                                         joined: str) -> None:
    assert _join(base, link) == joined


def test_a_hub_services_pages_go_through_the_hubs_proxy() -> None:
    record = {"id": "b1", "links": {"page": "/services/imagebuild/imagebuild/builds/b1",
                                    "self": "/services/imagebuild/imagebuild/api/builds/b1"}}
    internal = "http://127.0.0.1:8890/services/imagebuild"
    hub_origin = "JupyterHub service 'imagebuild' (http://127.0.0.1:8081/hub/api)"
    for pages_origin, page in [
        ("", "/services/imagebuild/imagebuild/builds/b1"),  # the notebook's own origin
        ("https://hub.example", "https://hub.example/services/imagebuild/imagebuild/builds/b1"),
        (None, f"{internal}/imagebuild/builds/b1"),
    ]:
        endpoint = ServiceEndpoint(internal, "t", hub_origin, pages_origin,
                                   hub_api="http://127.0.0.1:8081/hub/api")
        with RemoteBuildClient(internal, "t", endpoint=endpoint) as client:
            run = client._run(record)
        assert run.page_url == page
        assert run.api_url == f"{internal}/imagebuild/api/builds/b1"


def test_the_public_hub_url_is_where_pages_open() -> None:
    public = "https://hub.example/jhub/hub/"
    with scripted_server(answering(200, model("http://10.0.0.7:8890"))) as hub:
        assert find_service(Settings(), hub_env(hub)).pages_origin == ""
        endpoint = find_service(Settings(), hub_env(hub, JUPYTERHUB_PUBLIC_HUB_URL=public))
    assert endpoint.pages_origin == "https://hub.example"

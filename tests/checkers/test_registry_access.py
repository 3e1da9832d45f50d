"""Registries reached as the Docker engine reaches them: a loopback registry with a certificate
nobody trusts (the engine pushes to it: 127.0.0.0/8 is insecure), registries on this machine's
non-loopback address made insecure by the setting, by daemon.json or by a CIDR range, and a
CA and a client certificate for one registry in a certs.d directory."""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from imagebuild_nb import Image
from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.engine import ImageBuildEngine
from imagebuild_nb.errors import SpecError
from imagebuild_nb.settings import Settings
from tests.support.addresses import non_loopback_ipv4
from tests.support.oci_upload import Uploader
from tests.support.registry_launcher import LaunchedRegistry, launch_registry
from tests.support.services import BUSYBOX_IMAGE
from tests.support.tls import KeyPair, make_ca, make_server_cert

pytestmark = pytest.mark.registry

# No daemon.json and no certs.d of the machine: each test names its own.
SETTINGS = Settings(registry_timeout=5.0, docker_daemon_config="", docker_certs_dir="")


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="module")
def address() -> str:
    return non_loopback_ipv4()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, address: str) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca("imagebuild-nb untrusted test CA")
    ca_file, _ = ca.write(directory, "ca")
    cert_file, key_file = make_server_cert(ca, ("localhost", "127.0.0.1", address)).write(
        directory, "server")
    return Pki(ca_file, cert_file, key_file)


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[list[LaunchedRegistry]]:
    started: list[LaunchedRegistry] = []
    yield started
    for registry in started:
        registry.stop()


def _check(settings: Settings, reference: str) -> object:
    with ExistenceChecker(settings) as checker:
        return checker.check(reference)


@pytest.mark.engine
def test_a_self_signed_loopback_registry_exists_after_an_engine_push(
    tmp_path: Path, pki: Pki, registries: list[LaunchedRegistry],
    docker_client: docker.DockerClient, remove_images: list[str], unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
):
    registry = launch_registry(tmp_path / "tls", tls=(pki.cert_file, pki.key_file),
                               ca_file=pki.ca_file)
    registries.append(registry)
    port = registry.host.rsplit(":", 1)[1]
    repository = f"{registry.host}/{unique_name}"
    docker_client.images.get(BUSYBOX_IMAGE).tag(repository, "v1")
    remove_images.append(f"{repository}:v1")
    digest = None
    for record in docker_client.api.push(repository, tag="v1", stream=True, decode=True):
        assert "error" not in record, record
        digest = (record.get("aux") or {}).get("Digest", digest)
    assert digest, "the engine reported no digest for its push"

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # trust nothing of ours
    by_name = _check(SETTINGS, f"{repository}:v1")
    by_address = _check(SETTINGS, f"127.0.0.1:{port}/{unique_name}:v1")
    absent = _check(SETTINGS, f"{repository}:v2")
    assert by_name.exists and by_name.digest == digest, by_name
    assert by_address.exists and by_address.digest == digest, by_address
    assert absent.missing, absent


def _plain_remote(tmp_path: Path, address: str, registries: list[LaunchedRegistry],
                  unique_name: str) -> tuple[LaunchedRegistry, str]:
    registry = launch_registry(tmp_path / "plain", address=address)
    registries.append(registry)
    with httpx.Client(timeout=10) as client:
        digest = str(Uploader(client, registry.url).image(unique_name, "v1")["digest"])
    return registry, digest


def test_a_plain_http_registry_off_loopback_needs_the_insecure_setting(
    tmp_path: Path, address: str, registries: list[LaunchedRegistry], unique_name: str,
):
    registry, digest = _plain_remote(tmp_path, address, registries, unique_name)
    reference = f"{registry.host}/{unique_name}:v1"

    secure = _check(SETTINGS, reference)
    by_name = _check(SETTINGS.replace(insecure_registries=(registry.host,)), reference)
    by_env = _check(Settings.from_env({
        "IMAGEBUILD_NB_INSECURE_REGISTRIES": f"other.example:5000, {registry.host}",
        "IMAGEBUILD_NB_DOCKER_DAEMON_CONFIG": str(tmp_path / "no-daemon.json"),
    }), reference)
    by_cidr = _check(SETTINGS.replace(insecure_registries=(f"{address}/32",)), reference)
    other_port = _check(SETTINGS.replace(insecure_registries=(f"{address}:1",)), reference)

    assert secure.unknown and secure.reason.startswith("tls:"), secure
    assert "does not speak TLS" in secure.reason and "insecure_registries" in secure.reason
    for result in (by_name, by_env, by_cidr):
        assert result.exists and result.digest == digest, result
    assert other_port.unknown, "an entry names host:port exactly, as Docker's do"


def test_daemon_json_insecure_registries_are_read(
    tmp_path: Path, address: str, registries: list[LaunchedRegistry], unique_name: str,
):
    registry, digest = _plain_remote(tmp_path, address, registries, unique_name)
    reference = f"{registry.host}/{unique_name}:v1"
    by_name, by_cidr = tmp_path / "by-name.json", tmp_path / "by-cidr.json"
    by_name.write_text(json.dumps({"insecure-registries": [f"http://{registry.host}"],
                                   "log-level": "warn"}))
    by_cidr.write_text(json.dumps({"insecure-registries": [f"{address}/24"]}))
    empty = tmp_path / "empty.json"
    empty.write_text("")

    for path in (by_name, by_cidr):
        result = _check(SETTINGS.replace(docker_daemon_config=str(path)), reference)
        assert result.exists and result.digest == digest, (path.name, result)
    assert _check(SETTINGS.replace(docker_daemon_config=str(empty)), reference).unknown

    broken = tmp_path / "broken.json"
    broken.write_text('{"insecure-registries": ["a:1",')
    with pytest.raises(SpecError, match="not valid JSON") as caught:
        _check(SETTINGS.replace(docker_daemon_config=str(broken)), reference)
    assert "IMAGEBUILD_NB_DOCKER_DAEMON_CONFIG" in (caught.value.hint or "")


def test_a_bad_insecure_entry_fails_at_once_with_the_fix():
    with pytest.raises(SpecError, match="neither host") as caught:
        ExistenceChecker(SETTINGS.replace(insecure_registries=("ftp://registry.lan/x",)))
    assert (caught.value.argument == "insecure_registries"
            and "10.0.0.0/8" in (caught.value.hint or ""))


def test_a_registry_ca_in_certs_d_and_an_insecure_tls_registry(
    tmp_path: Path, address: str, pki: Pki, registries: list[LaunchedRegistry], unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
):
    registry = launch_registry(tmp_path / "tls", tls=(pki.cert_file, pki.key_file),
                               ca_file=pki.ca_file, address=address)
    registries.append(registry)
    with httpx.Client(verify=pki.context(), timeout=10) as client:
        digest = str(Uploader(client, registry.url).image(unique_name, "v1")["digest"])
    reference = f"{registry.host}/{unique_name}:v1"
    certs = tmp_path / "certs.d"
    (certs / registry.host).mkdir(parents=True)
    (certs / registry.host / "ca.crt").write_bytes(pki.ca_file.read_bytes())
    (certs / f"{address}:1").mkdir()  # another registry's directory holds nothing for this one
    other = tmp_path / "other-certs.d"
    other.mkdir()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    untrusted = _check(SETTINGS.replace(docker_certs_dir=str(other)), reference)
    trusted = _check(SETTINGS.replace(docker_certs_dir=str(certs)), reference)
    insecure = _check(SETTINGS.replace(insecure_registries=(registry.host,)), reference)

    assert untrusted.unknown and untrusted.reason.startswith("tls:"), untrusted
    assert f"{other}/{registry.host}/ca.crt" in untrusted.reason
    assert trusted.exists and trusted.digest == digest, trusted
    assert insecure.exists and insecure.digest == digest, insecure


@pytest.mark.engine
def test_an_engine_build_to_a_self_signed_loopback_registry_is_found_the_second_time(
    tmp_path: Path, pki: Pki, registries: list[LaunchedRegistry], busybox_base: str,
    remove_images: list[str], unique_name: str, monkeypatch: pytest.MonkeyPatch,
):
    """The issue's symptom: such a registry was "unknown" on every call, so every build()
    rebuilt."""
    registry = launch_registry(tmp_path / "tls", tls=(pki.cert_file, pki.key_file),
                               ca_file=pki.ca_file)
    registries.append(registry)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    image = (Image.from_base(busybox_base, name=unique_name, registry=registry.host)
             .with_env_vars({"NONCE": unique_name}))
    engine = ImageBuildEngine(SETTINGS.replace(local_driver="docker-api", network_mode="host"))
    try:
        first = engine.build(image)
        remove_images.append(first.uri)
        engine.checker.invalidate()
        second = engine.build(image)
    finally:
        engine.close()
    assert first.built and first.digest, first
    assert second.found and not second.built and second.digest == first.digest, second


def _client_cert(ca: KeyPair, directory: Path, stem: str) -> tuple[Path, Path]:
    """A client certificate (clientAuth) signed by ``ca``, written as ``stem.cert``/``stem.key``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagebuild-nb")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    cert_path, key_path = KeyPair(key, cert).write(directory, stem)
    return cert_path.rename(cert_path.with_suffix(".cert")), key_path


def test_a_client_certificate_from_certs_d_is_presented(
    tmp_path: Path, pki: Pki, registries: list[LaunchedRegistry], unique_name: str,
):
    clients_ca = make_ca("imagebuild-nb client CA")
    clients_ca_file, _ = clients_ca.write(tmp_path / "clients", "ca")
    registry = launch_registry(tmp_path / "mtls", tls=(pki.cert_file, pki.key_file),
                               client_ca=clients_ca_file)
    registries.append(registry)
    certs = tmp_path / "certs.d"
    cert, key = _client_cert(clients_ca, certs / registry.host, "client")
    context = pki.context()
    context.load_cert_chain(cert, key)
    with httpx.Client(verify=context, timeout=10) as client:
        digest = str(Uploader(client, registry.url).image(unique_name, "v1")["digest"])
    reference = f"{registry.host}/{unique_name}:v1"

    without = _check(SETTINGS, reference)
    with_cert = _check(SETTINGS.replace(docker_certs_dir=str(certs)), reference)
    assert without.unknown and without.reason.startswith("tls:"), without
    assert f"{registry.host}/NAME.cert" in without.reason
    assert with_cert.exists and with_cert.digest == digest, with_cert

"""Proxies as Docker users set them: HTTPS_PROXY / HTTP_PROXY / NO_PROXY with Go's rules
(loopback never proxied), through a real proxy on loopback that counts what it carries, to
registries on this machine's non-loopback address, with the CA settings still applying."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagebuild_nb.checkers import ExistenceChecker
from imagebuild_nb.errors import SpecError
from imagebuild_nb.registry.proxy import ProxyConfig
from imagebuild_nb.settings import Settings
from tests.support.addresses import non_loopback_ipv4
from tests.support.forward_proxy import ForwardProxy, forward_proxy
from tests.support.oci_upload import Uploader
from tests.support.registry_launcher import LaunchedRegistry, launch_registry
from tests.support.services import Registry
from tests.support.tls import make_ca, make_server_cert

SETTINGS = Settings(registry_timeout=5.0, docker_daemon_config="", docker_certs_dir="")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                    "no_proxy", "ALL_PROXY", "all_proxy")


@pytest.mark.parametrize(("no_proxy", "target", "proxied"), [
    ("", "ghcr.io", True),
    ("", "localhost:5000", False),  # loopback never goes through a proxy (Go's rule)
    ("", "127.0.0.5:5000", False),
    ("", "[::1]:5000", False),
    ("*", "ghcr.io", False),
    ("example.com", "example.com", False),
    ("example.com", "registry.example.com:5000", False),
    ("example.com", "notexample.com", True),
    (".example.com", "example.com", True),
    (".example.com", "registry.example.com", False),
    ("*.example.com", "registry.example.com", False),
    ("example.com:5000", "registry.example.com:5000", False),
    ("example.com:5000", "registry.example.com:443", True),
    ("10.0.0.0/8", "10.20.30.40:5000", False),
    ("10.0.0.0/8", "11.0.0.1:5000", True),
    ("192.0.2.7", "192.0.2.7:5000", False),
    ("192.0.2.7:5000", "192.0.2.7:5001", True),
    (" Registry.Example.COM , 10.0.0.1", "registry.example.com", False),
])
def test_no_proxy_rules(no_proxy: str, target: str, proxied: bool):
    config = ProxyConfig(https_proxy="proxy.corp:3128", no_proxy=no_proxy)
    expected = "http://proxy.corp:3128" if proxied else None
    assert config.proxy_for("https", target) == expected


def test_variables_upper_case_first_scheme_by_url():
    config = ProxyConfig.from_env({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2",
                                   "http_proxy": "plain:3", "no_proxy": "internal"})
    assert config.proxy_for("https", "ghcr.io") == "http://upper:2"
    assert config.proxy_for("http", "ghcr.io") == "http://plain:3"
    assert config.proxy_for("http", "internal:5000") is None
    assert ProxyConfig.from_env({}).proxy_for("https", "ghcr.io") is None


def test_an_unusable_proxy_scheme_is_named():
    with pytest.raises(SpecError, match="HTTPS_PROXY"):
        ProxyConfig(https_proxy="ftp://proxy:21")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy() as running:
        yield running


@pytest.fixture
def tls_remote(tmp_path: Path, unique_name: str) -> Iterator[tuple[LaunchedRegistry, str, Path]]:
    """A TLS registry on this machine's non-loopback address, its CA, and one image in it."""
    address = non_loopback_ipv4()
    ca = make_ca()
    ca_file, _ = ca.write(tmp_path / "pki", "ca")
    cert, key = make_server_cert(ca, ("localhost", address)).write(tmp_path / "pki", "server")
    registry = launch_registry(tmp_path / "tls", tls=(cert, key), ca_file=ca_file, address=address)
    try:
        import ssl

        trust = ssl.create_default_context(cafile=str(ca_file))
        with httpx.Client(verify=trust, timeout=10) as client:
            digest = str(Uploader(client, registry.url).image(unique_name, "v1")["digest"])
        yield registry, digest, ca_file
    finally:
        registry.stop()


@pytest.mark.registry
def test_https_proxy_carries_checks_and_the_ca_settings_still_apply(
    tls_remote, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch, unique_name: str,
):
    registry, digest, ca_file = tls_remote
    clean_proxy_env.setenv("HTTPS_PROXY", proxy.url)
    settings = SETTINGS.replace(extra_ca_files=(str(ca_file),))
    with ExistenceChecker(settings) as checker:
        found = checker.check(f"{registry.host}/{unique_name}:v1")
        absent = checker.check(f"{registry.host}/{unique_name}:v2")
    assert found.exists and found.digest == digest, found
    assert absent.missing, absent
    assert proxy.connects and set(proxy.connects) == {registry.host}


@pytest.mark.registry
def test_no_proxy_excludes_a_registry(
    tls_remote, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch, unique_name: str,
):
    registry, digest, ca_file = tls_remote
    clean_proxy_env.setenv("https_proxy", proxy.url)
    clean_proxy_env.setenv("no_proxy", f"example.com,{registry.host.rsplit(':', 1)[0]}")
    with ExistenceChecker(SETTINGS.replace(extra_ca_files=(str(ca_file),))) as checker:
        found = checker.check(f"{registry.host}/{unique_name}:v1")
    assert found.exists and found.digest == digest, found
    assert proxy.total == 0


@pytest.mark.registry
def test_plain_http_through_the_proxy_and_loopback_around_it(
    tmp_path: Path, proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch, unique_name: str,
    plain_registry: Registry, busybox_base: str,
):
    registry = launch_registry(tmp_path / "plain", address=non_loopback_ipv4())
    try:
        with httpx.Client(timeout=10) as client:
            digest = str(Uploader(client, registry.url).image(unique_name, "v1")["digest"])
        clean_proxy_env.setenv("HTTP_PROXY", proxy.url)
        clean_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        with ExistenceChecker(SETTINGS.replace(insecure_registries=(registry.host,))) as checker:
            found = checker.check(f"{registry.host}/{unique_name}:v1")
            carried = proxy.total
            local = checker.check(busybox_base)
    finally:
        registry.stop()
    assert found.exists and found.digest == digest, found
    # HTTPS tried first (a tunnel), then plain HTTP forwarded.
    assert proxy.connects == [registry.host] and proxy.forwards
    assert all(url.startswith(f"http://{registry.host}/v2/") for url in proxy.forwards)
    assert local.exists and proxy.total == carried  # localhost:5001 went around the proxy

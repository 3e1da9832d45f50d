"""Docker's certs.d layout for one registry: *.crt CAs, name.cert + name.key client pairs."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from imagebuild_nb.errors import RegistryError
from imagebuild_nb.registry.tls import CertsDir, host_ssl_context
from tests.support.tls import make_ca, make_server_cert


def test_certs_dir_reads_cas_and_client_pairs(tmp_path: Path):
    directory = tmp_path / "registry.lan:5000"
    ca = make_ca()
    ca.write(directory, "ca")  # ca.crt (+ ca.key, which has no .cert: see below)
    (directory / "ca.key").unlink()
    make_server_cert(ca, ("client",)).write(directory, "client")  # client.crt, client.key
    (directory / "client.crt").rename(directory / "client.cert")
    certs = CertsDir.read(tmp_path, "registry.lan:5000")
    assert certs.cas == (str(directory / "ca.crt"),)
    assert certs.client_pairs == ((str(directory / "client.cert"), str(directory / "client.key")),)
    for insecure in (False, True):
        context = host_ssl_context((), certs, insecure=insecure)
        assert context.verify_mode == (ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
    assert CertsDir.read(tmp_path, "other:5000").empty and CertsDir.read(None, "x").empty


def test_half_a_client_pair_is_named(tmp_path: Path):
    directory = tmp_path / "registry.lan"
    directory.mkdir()
    (directory / "client.cert").write_text("x")
    with pytest.raises(RegistryError, match="has no key client.key"):
        CertsDir.read(tmp_path, "registry.lan")
    (directory / "client.cert").rename(directory / "other.key")
    with pytest.raises(RegistryError, match="has no certificate other.cert"):
        CertsDir.read(tmp_path, "registry.lan")

"""Which registries are insecure: Docker's entry forms, daemon.json, CIDR ranges matched
against the addresses a host resolves to, loopback always."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from imagebuild_nb.errors import SpecError
from imagebuild_nb.registry.hosts import RegistryHosts, resolve_host
from imagebuild_nb.registry.insecure import InsecureRegistries, host_of


def test_entries_as_docker_writes_them():
    insecure = InsecureRegistries.parse(
        ["Registry.LAN:5000", "http://plain.lan:80/", "10.0.0.0/8", "[fd00::1]:5000", " "],
        source="test")
    assert insecure.names == {"registry.lan:5000", "plain.lan:80", "[fd00::1]:5000"}
    assert insecure.covers("registry.lan:5000", ())
    assert not insecure.covers("registry.lan:5001", ()) and not insecure.covers("registry.lan", ())
    assert insecure.covers("[fd00::1]:5000", ())
    assert insecure.covers("cache:5000", ["10.9.8.7"])
    assert not insecure.covers("cache:5000", ["11.0.0.1"])


@pytest.mark.parametrize("address", ["127.0.0.1", "127.3.2.1", "::1"])
def test_loopback_is_always_insecure(address: str):
    assert InsecureRegistries().covers("anything:5000", [address])
    assert InsecureRegistries.parse([], source="test").covers("anything:5000", [address])


@pytest.mark.parametrize("entry", ["ftp://registry.lan", "registry.lan/path", "reg istry", "a:b:c"])
def test_a_bad_entry_names_itself_its_source_and_the_forms(entry: str):
    with pytest.raises(SpecError) as caught:
        InsecureRegistries.parse([entry], source="the test list")
    assert repr(entry) in caught.value.message and "the test list" in caught.value.message
    assert caught.value.argument == "insecure_registries"


def test_daemon_json(tmp_path: Path):
    path = tmp_path / "daemon.json"
    assert InsecureRegistries.from_daemon_config(path) == InsecureRegistries()  # missing: none
    path.write_text(json.dumps({"insecure-registries": ["reg.lan:5000", "192.168.0.0/16"],
                                "data-root": "/var/lib/docker"}))
    read = InsecureRegistries.from_daemon_config(path)
    assert read.covers("reg.lan:5000", ()) and read.covers("x:1", ["192.168.4.4"])
    path.write_text(json.dumps({"debug": True}))
    assert InsecureRegistries.from_daemon_config(path) == InsecureRegistries()
    path.write_text(json.dumps({"insecure-registries": "reg.lan:5000"}))
    with pytest.raises(SpecError, match="not a list of strings"):
        InsecureRegistries.from_daemon_config(path)


def test_host_of():
    assert [host_of(n) for n in ("localhost:5000", "ghcr.io", "[::1]:5000", "[::1]")] == [
        "localhost", "ghcr.io", "::1", "::1"]


def test_names_are_resolved_for_cidr_ranges_once_per_host():
    asked: list[str] = []

    async def resolve(host: str) -> Sequence[str]:
        asked.append(host)
        return {"build-cache": ["10.1.2.3"], "alias": ["127.0.0.1"]}.get(host, ["203.0.113.9"])

    hosts = RegistryHosts(insecure=InsecureRegistries.parse(["10.0.0.0/8", "named:1"], source="t"),
                          resolve=resolve)

    async def main() -> list[bool]:
        names = ["build-cache:5000", "alias:5000", "ghcr.io", "named:1", "localhost:9",
                 "127.0.0.1:9", "build-cache:5000"]
        return [await hosts.is_insecure(name) for name in names]

    assert asyncio.run(main()) == [True, True, False, True, True, True, True]
    # Named entries, localhost and IP literals need no lookup; each other host is looked up once.
    assert asked == ["build-cache", "alias", "ghcr.io"]


def test_the_real_resolver():
    assert "127.0.0.1" in asyncio.run(resolve_host("localhost"))
    assert asyncio.run(resolve_host("no-such-host.invalid")) == ()

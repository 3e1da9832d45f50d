"""Insecure registries, decided the way the Docker engine decides them.

An insecure registry is spoken to over HTTPS *without* certificate verification, falling back
to plain HTTP when it does not speak TLS. A registry is insecure when

- its name (``host[:port]`` exactly as in the image reference) is listed, or
- one of the addresses its host resolves to lies in a listed CIDR range; ``127.0.0.0/8`` and
  ``::1/128`` are always listed (so ``localhost:5000`` is insecure, as for ``docker push``).

The lists come from the ``insecure_registries`` setting and from the ``insecure-registries``
key of Docker's ``daemon.json``. Entries look like Docker's: ``registry.lan:5000``,
``10.0.0.0/8``; an ``http://`` or ``https://`` prefix is dropped as dockerd does.

>>> insecure = InsecureRegistries.parse(["registry.lan:5000", "10.0.0.0/8"], source="example")
>>> insecure.covers("registry.lan:5000", ()), insecure.covers("registry.lan", ())
(True, False)
>>> insecure.covers("build-cache:5000", ["10.1.2.3"]), insecure.covers("ghcr.io", ["140.82.1.1"])
(True, False)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from imagebuild_nb.errors import SpecError

log = logging.getLogger(__name__)

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_NETWORKS: tuple[_Network, ...] = (ipaddress.ip_network("127.0.0.0/8"),
                                          ipaddress.ip_network("::1/128"))
DAEMON_CONFIG = "/etc/docker/daemon.json"
_NAME = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class InsecureRegistries:
    names: frozenset[str] = frozenset()
    networks: tuple[_Network, ...] = field(default=DEFAULT_NETWORKS)

    @classmethod
    def parse(cls, entries: Iterable[str], *, source: str) -> InsecureRegistries:
        """Entries as Docker takes them; ``source`` names where they came from, for errors."""
        names: set[str] = set()
        networks = list(DEFAULT_NETWORKS)
        for raw in entries:
            entry = raw.strip().lower()
            entry = entry.removeprefix("http://").removeprefix("https://").rstrip("/")
            if not entry:
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                    continue
                except ValueError:
                    pass
            if not _NAME.match(entry):
                raise SpecError(
                    f"insecure registry {raw!r} (from {source}) is neither host[:port] "
                    "nor a CIDR range",
                    argument="insecure_registries",
                    hint="write entries as Docker's insecure-registries: 'registry.lan:5000', "
                    "'192.168.1.20:5000' or '10.0.0.0/8' (no path, no other scheme)",
                )
            names.add(entry)
        return cls(frozenset(names), tuple(dict.fromkeys(networks)))

    @classmethod
    def from_daemon_config(cls, path: str | Path) -> InsecureRegistries:
        """The ``insecure-registries`` of a ``daemon.json``; a missing file lists none."""
        location = Path(path)
        try:
            text = location.read_text()
        except FileNotFoundError:
            return cls()
        except OSError as error:  # e.g. not readable by this user: dockerd's own business
            log.warning("cannot read the Docker daemon config %s (%s); ignoring it",
                        location, error)
            return cls()
        if not text.strip():
            return cls()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(
                f"the Docker daemon config {location} is not valid JSON ({error.msg}, "
                f"line {error.lineno})",
                argument="docker_daemon_config",
                hint="fix the file (dockerd will not start with it either), or point "
                "IMAGEBUILD_NB_DOCKER_DAEMON_CONFIG at another file",
            ) from None
        entries = data.get("insecure-registries") if isinstance(data, dict) else None
        if entries is None:
            return cls()
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise SpecError(
                f"'insecure-registries' in {location} is not a list of strings",
                argument="docker_daemon_config",
                hint='write it as in Docker\'s docs: "insecure-registries": ["registry.lan:5000"]',
            )
        return cls.parse(entries, source=str(location))

    def merged(self, other: InsecureRegistries) -> InsecureRegistries:
        return InsecureRegistries(self.names | other.names,
                                  tuple(dict.fromkeys(self.networks + other.networks)))

    def covers(self, netloc: str, addresses: Iterable[str]) -> bool:
        """Whether ``netloc`` (as in a reference) is insecure, given what its host resolves to."""
        if netloc.lower() in self.names:
            return True
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            if any(address in network for network in self.networks):
                return True
        return False


def host_of(netloc: str) -> str:
    """``[::1]:5000`` -> ``::1``; ``localhost:5000`` -> ``localhost``."""
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def literal_addresses(host: str) -> tuple[str, ...]:
    """What a host is known to be without DNS: an IP literal, or ``localhost`` (RFC 6761)."""
    name = host.lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ("127.0.0.1", "::1")
    try:
        return (str(ipaddress.ip_address(name)),)
    except ValueError:
        return ()

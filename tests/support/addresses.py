"""This machine's own addresses: a registry listening on a non-loopback one is "remote" to
the registry client (not insecure by default, reached through proxies), yet local to the test."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

_SIOCGIFADDR = 0x8915


def non_loopback_ipv4() -> str:
    """The first IPv4 address of a local interface that is not loopback (eth0, docker0, ...)."""
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                     struct.pack("256s", name.encode()[:15]))
            except OSError:  # no IPv4 address on this interface
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    raise RuntimeError("this machine has no non-loopback IPv4 address (no network interface "
                       "but lo); the tests of remote registries need one, e.g. docker0")

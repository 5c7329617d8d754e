"""Where ``takan serve`` listens, and the URLs it tells people to open.

The listening sockets are bound before anything is created (data directory, database, demo
users), so that a port already in use is one line of error and nothing else; the server then
serves on those very sockets. On a wildcard host (``0.0.0.0``, ``::``, empty) the URLs a phone on
the same network can open are this machine's own addresses.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import ifaddr

WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # noqa: S104 - these are the hosts that mean "all"
BACKLOG = 128  # aiohttp's default
# Interfaces of containers and virtual machines: listed after the machine's own.
_VIRTUAL_PREFIXES = ("docker", "br-", "veth", "virbr", "vmnet", "vboxnet", "cni", "flannel", "lxc")


class ListenError(Exception):
    """The server cannot listen where it was asked to; the message is one line for a person."""


def _how_to_choose(port: int) -> str:
    other = 8081 if port != 8081 else 8082
    return f"choose another with --port {other} (make run PORT={other})"


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening TCP sockets for ``host``:``port`` (every address the host resolves to, as
    asyncio would bind them), or ``ListenError`` saying why not and what to do."""
    try:
        found = socket.getaddrinfo(
            host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on host {host!r}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in found:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            listener = socket.socket(family, kind, proto)
            sockets.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                listener.bind(address)
                listener.listen(BACKLOG)
            except OSError as exc:
                raise ListenError(_bind_failure(exc, str(address[0]), port)) from None
    except BaseException:
        for listener in sockets:
            listener.close()
        raise
    return sockets


def _bind_failure(exc: OSError, address: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} is already in use on {address} (another Takan or another program);"
            f" {_how_to_choose(port)}"
        )
    if exc.errno == errno.EACCES:
        return (
            f"no permission to listen on port {port} (ports below 1024 need root);"
            f" {_how_to_choose(port)}"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{address} is not an address of this machine; choose one with --host"
            " (make run HOST=0.0.0.0 listens on all of them)"
        )
    return f"cannot listen on {address} port {port}: {exc.strerror}"


def bound_port(sockets: Iterable[socket.socket]) -> int:
    """The port the sockets listen on (the one the system chose for port 0)."""
    ports = {int(listener.getsockname()[1]) for listener in sockets}
    if len(ports) != 1:  # pragma: no cover - port 0 with several addresses
        raise ListenError(f"the addresses got different ports {sorted(ports)}: give --port")
    return ports.pop()


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """An address of one of this machine's network interfaces."""

    interface: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address

    @property
    def virtual(self) -> bool:
        return self.interface.startswith(_VIRTUAL_PREFIXES)


def local_addresses() -> list[LocalAddress]:
    """This machine's addresses other people can reach: neither loopback nor link-local."""
    found: list[LocalAddress] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            found.append(LocalAddress(adapter.nice_name, address))
    return found


def _rank(local: LocalAddress) -> tuple[bool, bool, int, str]:
    # The machine's own interfaces first, private LAN addresses (what a phone on the office
    # Wi-Fi has) before others, IPv4 before IPv6.
    return (local.virtual, not local.address.is_private, local.address.version, local.interface)


def url_of(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}"


def network_urls(host: str, port: int, addresses: Iterable[LocalAddress]) -> list[str]:
    """The URLs at which a phone on the same network reaches a server listening on ``host``:
    the machine's addresses (best first) for a wildcard host, else the host itself unless it
    is a loopback address."""
    if host not in WILDCARD_HOSTS:
        try:
            if ipaddress.ip_address(host).is_loopback:
                return []
        except ValueError:
            if host == "localhost":
                return []
        return [url_of("http", host, port)]
    versions = {"0.0.0.0": (4,), "::": (6,)}.get(host, (4, 6))  # noqa: S104
    chosen = sorted((a for a in addresses if a.address.version in versions), key=_rank)
    return [url_of("http", str(a.address), port) for a in chosen]

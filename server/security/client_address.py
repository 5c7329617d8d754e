"""Who a request comes from: the peer, or, behind a proxy Takan is told to trust, the client
that proxy names in ``X-Forwarded-For``. Rate limits and logs key on it.

Only hops appended by trusted proxies are believed: the header is read from the right, past
every trusted proxy, and the first address that is not one is the client. Anything a client
writes into the header itself lies to the left of that and is never reached. Without
``--trusted-proxy`` the header is ignored (a client could otherwise pick its own bucket).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_proxies(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The trusted proxies' networks (Settings has checked each is an address or a CIDR)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: tuple[Network, ...]
) -> str:
    """The client's address as text ("unknown" when the transport knows none)."""
    if peer is None:
        return "unknown"
    current = _address(peer)
    if current is None or not trusted:
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    while any(current in network for network in trusted) and hops:
        nearer = _address(hops.pop())
        if nearer is None:  # a hop no proxy of ours wrote: stop at the last one we trust
            break
        current = nearer
    return str(current)

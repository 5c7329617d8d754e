"""Whom a request comes from: the peer, unless a trusted proxy names the client."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.security.client_address import client_address, parse_proxies
from server.settings import Settings

PROXY = parse_proxies(["127.0.0.1", "10.0.0.0/8"])


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", ["203.0.113.5"], ()) == "127.0.0.1"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_address("127.0.0.1", ["203.0.113.5"], PROXY) == "203.0.113.5"


def test_a_client_cannot_choose_its_bucket_by_writing_the_header_itself() -> None:
    # The client wrote "198.51.100.1"; the proxy appended the address it saw.
    assert client_address("127.0.0.1", ["198.51.100.1, 203.0.113.5"], PROXY) == "203.0.113.5"


def test_hops_through_several_trusted_proxies_are_walked_back() -> None:
    header = ["198.51.100.1, 203.0.113.5, 10.1.2.3"]
    assert client_address("127.0.0.1", header, PROXY) == "203.0.113.5"
    # Two header lines count as one list, in order.
    assert client_address("127.0.0.1", ["203.0.113.5", "10.1.2.3"], PROXY) == "203.0.113.5"


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_says() -> None:
    assert client_address("192.0.2.9", ["203.0.113.5"], PROXY) == "192.0.2.9"


def test_garbage_in_the_header_stops_at_the_last_trusted_hop() -> None:
    assert client_address("127.0.0.1", ["not-an-address"], PROXY) == "127.0.0.1"
    assert client_address("127.0.0.1", ["203.0.113.5, junk, 10.0.0.1"], PROXY) == "10.0.0.1"
    assert client_address("127.0.0.1", [], PROXY) == "127.0.0.1"
    assert client_address(None, ["203.0.113.5"], PROXY) == "unknown"


def test_ipv6_and_ipv4_mapped_addresses() -> None:
    proxies = parse_proxies(["::1"])
    assert client_address("::1", ["2001:db8::7"], proxies) == "2001:db8::7"
    assert client_address("::ffff:127.0.0.1", ["203.0.113.5"], PROXY) == "203.0.113.5"


def test_a_bad_trusted_proxy_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--trusted-proxy 'proxy\.local' is not an address"):
        Settings(data_dir=tmp_path, trusted_proxies=("proxy.local",))

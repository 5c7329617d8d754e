"""The base of every link the server makes (``--public-url``), and the URLs ``takan serve``
prints for a phone on the same network."""

from __future__ import annotations

import ipaddress

import pytest

from server.cli.listen import LocalAddress, network_urls
from server.settings import Settings, check_public_url


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://takan.example.org", "https://takan.example.org"),
        ("https://takan.example.org/", "https://takan.example.org"),
        ("http://192.168.1.20:8080", "http://192.168.1.20:8080"),
        ("https://[fd00::2]:8443/", "https://[fd00::2]:8443"),
    ],
)
def test_a_public_url_is_the_base_of_every_link(given: str, base: str, tmp_path: object) -> None:
    assert check_public_url(given) == base
    assert Settings(data_dir=tmp_path, public_url=given).base_url == base  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("takan.example.org", "http:// or https://"),
        ("ftp://takan.example.org", "http:// or https://"),
        ("https://takan.example.org/takan", "only scheme, host and port"),
        ("https://takan.example.org/?x=1", "only scheme, host and port"),
        ("https://takan.example.org/#top", "only scheme, host and port"),
        ("https://user:pw@takan.example.org", "user name or password"),
        ("https://:8443", "names no host"),
        ("https://takan.example.org:99999", "out of range"),
        ("https://takan.example.org:0", "port 0"),
        ("https://takan.example.org /", "plain ASCII URL"),
        ("https://踏勘.example.org", "plain ASCII URL"),
    ],
)
def test_a_public_url_with_anything_but_scheme_host_and_port_is_refused(
    given: str, named: str
) -> None:
    with pytest.raises(ValueError, match="public URL") as refused:
        check_public_url(given)
    assert named in str(refused.value)


def _local(interface: str, address: str) -> LocalAddress:
    return LocalAddress(interface, ipaddress.ip_address(address))


MACHINE = [
    _local("docker0", "172.17.0.1"),
    _local("eth0", "81.2.69.160"),
    _local("wlan0", "192.168.1.23"),
    _local("wlan0", "fd00::23"),
]


def test_on_all_addresses_the_lan_address_comes_first_and_containers_last() -> None:
    assert network_urls("0.0.0.0", 8080, MACHINE) == [  # noqa: S104
        "http://192.168.1.23:8080",
        "http://81.2.69.160:8080",
        "http://172.17.0.1:8080",
    ]
    assert network_urls("::", 8080, MACHINE) == ["http://[fd00::23]:8080"]
    assert network_urls("", 8080, MACHINE)[:2] == [
        "http://192.168.1.23:8080",
        "http://[fd00::23]:8080",
    ]


def test_on_a_loopback_host_no_phone_can_reach_it_and_a_named_host_is_itself() -> None:
    assert network_urls("127.0.0.1", 8080, MACHINE) == []
    assert network_urls("localhost", 8080, MACHINE) == []
    assert network_urls("192.168.1.23", 8081, MACHINE) == ["http://192.168.1.23:8081"]

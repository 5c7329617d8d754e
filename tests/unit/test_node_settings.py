"""A node of many (``takan serve --node NAME --advertise-url URL``): what is accepted, and the
words for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.live.nodes import signalling_url
from server.settings import Settings


@pytest.mark.parametrize(
    ("advertised", "ws"),
    [
        ("http://127.0.0.1:8081", "ws://127.0.0.1:8081/ws"),
        ("https://takan.example.org/n/n1", "wss://takan.example.org/n/n1/ws"),
        ("https://takan.example.org/n/n1/", "wss://takan.example.org/n/n1/ws"),
    ],
)
def test_a_node_is_reached_at_its_advertised_url(tmp_path: Path, advertised: str, ws: str) -> None:
    settings = Settings(data_dir=tmp_path, node="n1", advertise_url=advertised)
    assert signalling_url(settings.advertise_url) == ws


@pytest.mark.parametrize(
    ("node", "advertised", "named"),
    [
        ("N1", "http://10.0.0.5:8080", "--node 'N1': 1-32 of a-z, 0-9 and -"),
        ("n1;", "http://10.0.0.5:8080", "--node 'n1;': 1-32 of a-z, 0-9 and -"),
        ("", "http://10.0.0.5:8080", "--node '': 1-32 of a-z"),
        ("n1", "", "an http:// or https:// URL of this node is required"),
        ("n1", "ftp://10.0.0.5", "an http:// or https:// URL of this node is required"),
        ("n1", "http://user:pw@10.0.0.5", "must not hold a user name or password"),
        ("n1", "http://10.0.0.5/n/n1?x=1", "only scheme, host, port and a plain path"),
        ("n1", "http://10.0.0.5/n/n 1", "only scheme, host, port and a plain path"),
    ],
)
def test_a_bad_node_or_advertised_url_is_named(
    tmp_path: Path, node: str, advertised: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("?", r"\?")) as caught:
        Settings(data_dir=tmp_path, node=node, advertise_url=advertised)
    assert named in str(caught.value)

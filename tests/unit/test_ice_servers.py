"""``--ice-server``: what an operator types, and what the pages and the server's peers get."""

from __future__ import annotations

import pytest

from server.ice_servers import IceServerSpec, parse_ice_server


def test_a_stun_url_is_taken_as_it_is() -> None:
    assert parse_ice_server("stun:stun.example.org:3478") == IceServerSpec(
        "stun:stun.example.org:3478"
    )


def test_turn_credentials_are_split_out_of_the_url() -> None:
    spec = parse_ice_server("turn:takan:s3cret@turn.example.org:3478?transport=tcp")
    assert spec == IceServerSpec("turn:turn.example.org:3478?transport=tcp", "takan", "s3cret")


def test_percent_escapes_in_the_credentials_are_decoded() -> None:
    spec = parse_ice_server("turns:us%40er:p%3Ass%40@turn.example.org:5349")
    assert (spec.url, spec.username, spec.credential) == (
        "turns:turn.example.org:5349",
        "us@er",
        "p:ss@",
    )


def test_a_password_containing_an_at_sign_is_cut_at_the_last_one() -> None:
    spec = parse_ice_server("turn:takan:p@ss@turn.example.org:3478")
    assert (spec.username, spec.credential) == ("takan", "p@ss")


def test_credentials_go_to_joined_participants_only() -> None:
    spec = parse_ice_server("turn:takan:s3cret@turn.example.org:3478")
    assert spec.to_json(with_credentials=True) == {
        "urls": "turn:turn.example.org:3478",
        "username": "takan",
        "credential": "s3cret",
    }
    assert spec.to_json(with_credentials=False) == {"urls": "turn:turn.example.org:3478"}
    assert IceServerSpec("stun:h:3478").to_json(with_credentials=True) == {"urls": "stun:h:3478"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://turn.example.org", "must start with stun:, turn: or turns:"),
        ("stun:user:pw@stun.example.org", "a STUN URL carries no credentials"),
        ("turn:takan@turn.example.org", "TURN credentials must be USER:PASSWORD@host"),
        ("turn::s3cret@turn.example.org", "TURN credentials must be USER:PASSWORD@host"),
        ("turn:takan:@turn.example.org", "TURN credentials must be USER:PASSWORD@host"),
        ("turn:turn.example.org:3478", "a TURN URL needs USER:PASSWORD@ before the host"),
        ("turn:takan:s3cret@", "names no usable host"),
        ("stun:", "names no usable host"),
        ("stun::3478", "names no usable host"),
        ("stun:host name", "names no usable host"),
    ],
)
def test_a_malformed_url_is_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_ice_server(text)
    assert "s3cret" not in str(refused.value)
    assert "pw@" not in str(refused.value)

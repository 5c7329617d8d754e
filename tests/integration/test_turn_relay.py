"""TURN: ``--ice-server turn:USER:PASSWORD@host:port`` (as ``takan serve --help`` shows it), against
a real coturn on loopback. The credentials reach the server's own peers and the participants who
joined, never the unauthenticated ``/api/config``; an applicant and an inspector allowed to use
nothing but the relay still see and hear each other through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from server.ice_servers import parse_ice_server
from tests.conftest import LiveServer, running_server
from tests.integration.peers import TestPeer, invite_token, join, wait_until
from tests.turn_server import LocalTurn, turnserver_missing

# The media path, once: nothing here depends on the database engine.
pytestmark = pytest.mark.single_engine


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[LocalTurn]:
    missing = turnserver_missing()
    if missing:
        pytest.fail(missing, pytrace=False)
    server = LocalTurn(tmp_path / "turn")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def turn_server_site(tmp_path: Path, turn: LocalTurn) -> AsyncIterator[LiveServer]:
    async with running_server(
        tmp_path / "data", ice_servers=(parse_ice_server(turn.url),)
    ) as server:
        yield server


def relay_only(welcome: dict[str, Any]) -> RTCConfiguration:
    """What a participant behind a NAT that lets nothing else through would use."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in welcome["ice_servers"]
    ]
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY)


async def test_the_relays_password_is_given_to_joined_participants_only(
    turn_server_site: LiveServer, turn: LocalTurn
) -> None:
    status, config = await turn_server_site.request("GET", "/api/config")
    assert status == 200
    assert config == {"ice_servers": [{"urls": f"turn:127.0.0.1:{turn.port}?transport=udp"}]}
    assert turn.password not in str(config)

    invite = await turn_server_site.new_inspection()
    applicant = await join(turn_server_site.ws_url, token=invite_token(invite))
    try:
        assert applicant.welcome["ice_servers"] == [
            {
                "urls": f"turn:127.0.0.1:{turn.port}?transport=udp",
                "username": turn.user,
                "credential": turn.password,
            }
        ]
    finally:
        await applicant.close()


async def test_applicant_and_inspector_allowed_only_the_relay_see_and_hear_each_other(
    turn_server_site: LiveServer, turn: LocalTurn
) -> None:
    invite = await turn_server_site.new_inspection()
    peers: list[TestPeer] = []
    try:
        applicant = await join(turn_server_site.ws_url, token=invite_token(invite))
        peers.append(applicant)
        await applicant.send(type="consent", accepted=True)
        await applicant.connect_media("applicant", relay_only(applicant.welcome))
        answer = next(m for m in applicant.messages if m["type"] == "answer")
        # The server's own peer allocated on the relay with the credentials from the URL.
        assert " typ relay" in answer["sdp"], answer["sdp"]

        token = await turn_server_site.token("inspector1")
        inspector = await join(
            turn_server_site.ws_url, token=token, inspection_id=invite["inspection_id"]
        )
        peers.append(inspector)
        await inspector.connect_media("inspector", relay_only(inspector.welcome))

        await wait_until(
            lambda: inspector.received.video_frames >= 20 and applicant.received.audio_frames > 0,
            timeout=30,
            what="media through the TURN relay",
        )
        assert (inspector.received.width, inspector.received.height) == (640, 480)
    finally:
        for peer in peers:
            await peer.close()
    # Four allocations: the applicant's, the inspector's and the server's peer for each.
    assert turn.log.count(f"user <{turn.user}>: incoming packet ALLOCATE processed, success") >= 4

"""The inspector learns within 3 s that the applicant has gone or that its picture stopped, and
the interruption is chained (docs/archive.md, "Presence"): a real server, a real aiortc applicant.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.integration import peers
from tests.integration.peers import invite_token, join, publishing_applicant, wait_until
from tests.integration.test_location_challenge import chain, of_kind
from tests.integration.test_signalling import Client, inspector_of, parse_utc

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine

NOTICE_S = 3.0  # the promise: an inspector knows within 3 s


def applicant_entry(presence: dict[str, Any]) -> dict[str, Any]:
    [entry] = [p for p in presence["participants"] if p["role"] == "applicant"]
    return dict(entry)


async def presence_where(inspector: Client, test: Any, timeout: float = 15) -> dict[str, Any]:
    """The first ``presence`` message the inspector receives for which ``test`` holds."""
    while True:
        message = await inspector.receive("presence", timeout=timeout)
        if test(message):
            return message


def flowing(message: dict[str, Any]) -> bool:
    return (message.get("media") or {}).get("state") == "flowing"


def stopped(message: dict[str, Any]) -> bool:
    return (message.get("media") or {}).get("state") == "interrupted"


async def video_flowing(server: LiveServer, applicant: peers.TestPeer, inspector: Client) -> None:
    await presence_where(inspector, flowing)
    live = server.services.live.get(applicant.welcome["inspection"]["inspection_id"])
    assert live is not None
    await wait_until(lambda: live.relay.applicant_video.stats.packets_in > 30, what="video")


async def test_applicant_who_closes_is_offline_for_the_inspector_within_3_s_and_chained(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        applicant = await publishing_applicant(live_server.ws_url, invite)
        await video_flowing(live_server, applicant, inspector)

        closed_at = time.time()
        await applicant.close()
        message = await presence_where(
            inspector, lambda m: not applicant_entry(m)["connected"] and stopped(m)
        )
        noticed_s = time.time() - closed_at

    assert noticed_s < NOTICE_S, f"the inspector was told after {noticed_s:.1f} s"
    assert applicant_entry(message)["participant_id"] == "applicant"
    assert message["media"]["source"] == "socket_closed"
    # The banner counts from the picture's last packet, on the server's clock.
    assert closed_at - 2 < parse_utc(message["media"]["since"]) <= parse_utc(message["media"]["at"])

    entries = await chain(live_server, invite["case_id"])
    [offline] = of_kind(entries, "participant_offline")
    assert offline["inspection_id"] == invite["inspection_id"]
    assert (offline["participant_id"], offline["role"], offline["source"]) == (
        "applicant",
        "applicant",
        "socket_closed",
    )
    [interrupted] = of_kind(entries, "media_interrupted")
    assert (interrupted["track"], interrupted["source"]) == ("applicant-video", "socket_closed")
    assert parse_utc(interrupted["last_packet_at"]) <= parse_utc(interrupted["detected_at"])
    assert abs(parse_utc(offline["offline_at"]) - closed_at) < NOTICE_S
    kinds = [e.kind for e in entries]
    assert kinds.index("left") < kinds.index("participant_offline")


async def test_video_that_stops_while_the_socket_stays_is_an_interruption_then_a_resumption(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        applicant = await publishing_applicant(live_server.ws_url, invite)
        try:
            await video_flowing(live_server, applicant, inspector)
            assert applicant.pc is not None
            [video] = [s for s in applicant.pc.getSenders() if s.track and s.track.kind == "video"]
            track = video.track

            stopped_at = time.time()
            video.replaceTrack(None)  # the camera froze; the socket and ICE are fine
            message = await presence_where(inspector, stopped)
            noticed_s = time.time() - stopped_at
            assert noticed_s < NOTICE_S, f"the inspector was told after {noticed_s:.1f} s"
            assert message["media"]["source"] == "no_packets"
            assert applicant_entry(message)["connected"] is True  # still there, no picture

            video.replaceTrack(track)
            message = await presence_where(inspector, flowing)
            assert applicant_entry(message)["connected"] is True
        finally:
            await applicant.close()

    entries = await chain(live_server, invite["case_id"])
    interrupted = of_kind(entries, "media_interrupted")
    assert [b["source"] for b in interrupted][:1] == ["no_packets"]
    [resumed] = of_kind(entries, "media_resumed")[:1]
    assert resumed["track"] == "applicant-video"
    assert resumed["interrupted_at"] == interrupted[0]["last_packet_at"]
    gap = parse_utc(resumed["resumed_at"]) - parse_utc(resumed["interrupted_at"])
    assert float(resumed["interrupted_s"]) == round(gap, 1)
    assert gap >= 2.0
    # Nobody was offline meanwhile: the only offline is the close at the end.
    resumed_seq = next(e.seq for e in entries if e.kind == "media_resumed")
    assert all(e.seq > resumed_seq for e in entries if e.kind == "participant_offline")


async def test_applicant_who_comes_back_is_online_again_and_its_return_chained(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        applicant = await publishing_applicant(live_server.ws_url, invite)
        await video_flowing(live_server, applicant, inspector)
        await applicant.close()
        await presence_where(inspector, lambda m: not applicant_entry(m)["connected"])

        again = await join(live_server.ws_url, token=invite_token(invite))
        try:
            message = await presence_where(inspector, lambda m: applicant_entry(m)["connected"])
            assert stopped(message)  # back, but no picture yet
            await again.connect_media("applicant")
            await presence_where(inspector, flowing)
        finally:
            await again.close()

    entries = await chain(live_server, invite["case_id"])
    kinds = [e.kind for e in entries]
    [online] = of_kind(entries, "participant_online")
    assert (online["participant_id"], online["source"]) == ("applicant", "socket_opened")
    assert kinds.index("participant_offline") < kinds.index("rejoined")
    assert kinds.index("rejoined") < kinds.index("participant_online")
    assert kinds.index("participant_online") < kinds.index("media_resumed")


async def test_nobody_is_online_or_chained_offline_after_the_end(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    async with inspector_of(live_server, invite) as inspector:
        applicant = await publishing_applicant(live_server.ws_url, invite)
        await video_flowing(live_server, applicant, inspector)
        status, _ = await live_server.request(
            "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1", json={}
        )
        assert status == 200
        await inspector.receive("ended")
        await applicant.close()

    entries = await chain(live_server, invite["case_id"])
    ended = next(e.seq for e in entries if e.kind == "ended")
    late = [e.kind for e in entries if e.seq > ended]
    assert not {"participant_offline", "media_interrupted", "left"} & set(late), late

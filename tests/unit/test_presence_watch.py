"""The applicant's picture as the presence watch tells it: the relay's packet stamps, no media."""

from __future__ import annotations

import time
from typing import Any

from server.live.media.relay import TrackRelay
from server.live.presence import PresenceWatch

WALL = 1_780_000_000.0  # the server's clock in these tests: fixed


class Told:
    def __init__(self) -> None:
        self.chained: list[tuple[str, dict[str, Any]]] = []
        self.pushed = 0

    async def chain(self, kind: str, body: dict[str, Any]) -> object:
        self.chained.append((kind, body))
        return None

    async def notify(self) -> None:
        self.pushed += 1


def packets(relay: TrackRelay, count: int, ago_s: float = 0.0) -> None:
    """``count`` packets reached the relay, the last ``ago_s`` seconds ago."""
    relay.stats.packets_in += count
    relay.stats.last_packet_monotonic = time.monotonic() - ago_s


def watch_of(relay: TrackRelay, told: Told) -> PresenceWatch:
    return PresenceWatch(relay, told.chain, told.notify, lambda: WALL)


async def test_first_packets_make_the_picture_flowing_without_an_entry() -> None:
    relay, told = TrackRelay("video", "v"), Told()
    watch = watch_of(relay, told)
    await watch.check_media()
    assert watch.media.state == "none"
    packets(relay, 10)
    await watch.check_media()
    assert (watch.media.state, told.chained, told.pushed) == ("flowing", [], 1)


async def test_two_silent_seconds_are_chained_as_an_interruption_from_the_last_packet() -> None:
    relay, told = TrackRelay("video", "v"), Told()
    watch = watch_of(relay, told)
    packets(relay, 10)
    await watch.check_media()
    packets(relay, 0, ago_s=1.5)
    await watch.check_media()
    assert watch.media.state == "flowing"  # 1.5 s is not yet a silence
    packets(relay, 0, ago_s=2.5)
    await watch.check_media()
    [(kind, body)] = told.chained
    assert kind == "media_interrupted"
    assert body["source"] == "no_packets"
    assert body["track"] == "applicant-video"
    assert body["detected_at"] == "2026-05-28T20:26:40.000Z"
    assert body["last_packet_at"] in ("2026-05-28T20:26:37.500Z", "2026-05-28T20:26:37.499Z")
    assert watch.media_json()["state"] == "interrupted"


async def test_packets_of_a_peer_that_was_closing_do_not_resume_the_picture() -> None:
    relay, told = TrackRelay("video", "v"), Told()
    watch = watch_of(relay, told)
    packets(relay, 10)
    await watch.check_media()
    packets(relay, 3)  # arrived just before the socket closed
    await watch.applicant_offline("applicant", "socket_closed")
    await watch.check_media()
    assert [kind for kind, _ in told.chained] == ["participant_offline", "media_interrupted"]
    assert watch.media.state == "interrupted"

    packets(relay, 5)  # the applicant is back and its video with it
    await watch.applicant_online("applicant", "socket_opened")
    await watch.check_media()
    assert [kind for kind, _ in told.chained][2:] == ["participant_online", "media_resumed"]
    assert told.chained[3][1]["interrupted_s"] == "0.0"


async def test_online_without_a_previous_offline_is_not_chained() -> None:
    relay, told = TrackRelay("video", "v"), Told()
    watch = watch_of(relay, told)
    await watch.applicant_online("applicant", "ice_connected")
    await watch.applicant_offline("applicant", "ice_failed")
    await watch.applicant_offline("applicant", "socket_closed")  # already offline
    assert [(k, b["source"]) for k, b in told.chained] == [("participant_offline", "ice_failed")]

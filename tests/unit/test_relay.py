"""The relay fans packets out, keeps one timeline across publishers and coalesces PLIs."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from server.live.media.passthrough import encoded_packet
from server.live.media.relay import KEYFRAME_REQUEST_INTERVAL_S, RelayedTrack, TrackRelay

KEYFRAME = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01" + b"\x00" * 20
DELTA = b"\x31\x02\x00" + b"\x00" * 20


class QueueTrack(MediaStreamTrack):
    """A source track fed by the test, as a passthrough receiver would feed it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()

    async def recv(self) -> av.Packet[Any]:
        packet = await self.queue.get()
        if packet is None:
            raise MediaStreamError
        return packet


def video(pts: int, key: bool = False) -> av.Packet[Any]:
    return encoded_packet(KEYFRAME if key else DELTA, pts, 90_000, key)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_every_subscriber_gets_every_packet_from_the_first_keyframe() -> None:
    relay = TrackRelay("video", "t")
    source = QueueTrack("video")
    relay.attach_source(source, None)
    first, second = relay.subscribe("a"), relay.subscribe("b")
    for pts, key in [(0, False), (3000, True), (6000, False)]:
        source.queue.put_nowait(video(pts, key))
    await settle()
    for sub in (first, second):
        got = [await sub.get(), await sub.get()]
        assert [p.pts for p in got if p is not None] == [3000, 6000]
    relay.close()


async def test_new_publisher_continues_the_timeline_by_wall_clock() -> None:
    relay = TrackRelay("video", "t")
    sub = relay.subscribe("viewer")
    old = QueueTrack("video")
    relay.attach_source(old, None)
    old.queue.put_nowait(video(0, True))
    old.queue.put_nowait(video(90_000, False))
    await settle()
    new = QueueTrack("video")
    relay.attach_source(new, None)
    await asyncio.sleep(0.2)
    new.queue.put_nowait(video(0, True))  # a reconnected publisher restarts at 0
    await settle()
    stamps = [(await sub.get()).pts for _ in range(3)]  # type: ignore[union-attr]
    assert stamps[:2] == [0, 90_000]
    assert stamps[2] is not None
    assert stamps[2] > 90_000 + 0.15 * 90_000  # after the gap, never back in time
    relay.close()


async def test_keyframe_requests_are_coalesced() -> None:
    relay = TrackRelay("video", "t")
    asked: list[float] = []
    loop = asyncio.get_running_loop()
    relay.attach_source(QueueTrack("video"), lambda: asked.append(loop.time()))
    for _ in range(5):
        relay.request_keyframe()
    assert len(asked) == 1
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL_S + 0.1)
    assert len(asked) == 2  # the burst collapsed into one deferred request
    relay.close()


async def test_slow_consumer_drops_backlog_counts_it_and_restarts_on_keyframe() -> None:
    relay = TrackRelay("video", "t")
    asked: list[int] = []
    source = QueueTrack("video")
    relay.attach_source(source, lambda: asked.append(1))
    sub = relay.subscribe("slow", maxsize=4)
    source.queue.put_nowait(video(0, True))
    for i in range(1, 8):
        source.queue.put_nowait(video(i * 3000))
    await settle()
    assert sub.dropped > 0
    source.queue.put_nowait(video(30_000, True))
    await settle()
    packet = await sub.get()
    assert packet is not None
    assert packet.is_keyframe
    assert packet.pts == 30_000  # the backlog (from the keyframe at 0) is gone
    relay.close()


async def test_relayed_track_forwards_viewer_keyframe_requests_upstream() -> None:
    relay = TrackRelay("video", "t")
    asked: list[int] = []
    relay.attach_source(QueueTrack("video"), lambda: asked.append(1))
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL_S + 0.05)
    asked.clear()
    track = RelayedTrack(relay, "viewer")
    assert asked == [1]  # a new viewer needs a keyframe: subscribing asks for one
    await asyncio.sleep(KEYFRAME_REQUEST_INTERVAL_S + 0.05)
    asked.clear()
    track.on_keyframe_request()
    assert asked == [1]
    track.stop()
    relay.close()


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown media kind"):
        TrackRelay("data", "t")

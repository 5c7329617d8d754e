"""The media relay: one published stream per track, fanned out to any number of consumers.

A ``TrackRelay`` reads its current source (a remote track yielding encoded ``av.Packet``s, see
passthrough.py) from the moment it is attached, so nothing piles up in aiortc's unbounded queue,
and pushes every packet to each ``Subscription``. Consumers are viewers' outgoing tracks
(``RelayedTrack``), the recorder and snapshots: anything that calls ``subscribe()``.

When a publisher reconnects, its new track replaces the old source and timestamps are rebased so
that they keep running with the wall clock: viewers keep their peer connection and their RTP
timeline; nobody renegotiates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL_S = 0.4
CLOCK_RATES = {"video": 90_000, "audio": 48_000}


@dataclass(slots=True)
class RelayStats:
    packets_in: int = 0
    keyframes_in: int = 0
    last_packet_monotonic: float | None = None


class Subscription:
    """A bounded queue of packets for one consumer. Overflow drops are counted, never silent."""

    def __init__(self, relay: TrackRelay, maxsize: int, name: str) -> None:
        self.relay = relay
        self.name = name
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue(maxsize)
        self._needs_keyframe = relay.kind == "video"
        self.delivered = 0
        self.dropped = 0
        self.closed = False

    def push(self, packet: av.Packet[Any]) -> None:
        if self.closed:
            return
        if self._needs_keyframe:
            if not packet.is_keyframe:
                return
            self._needs_keyframe = False
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            # A consumer that cannot keep up loses a backlog, not the stream: drop what is queued
            # and, for video, restart at the next keyframe.
            self.dropped += self._queue.qsize() + 1
            while not self._queue.empty():
                self._queue.get_nowait()
            logger.warning(
                "relay consumer overflow",
                extra={"consumer": self.name, "kind": self.relay.kind, "dropped": self.dropped},
            )
            if self.relay.kind == "video":
                self._needs_keyframe = True
                self.relay.request_keyframe()
            else:
                self._queue.put_nowait(packet)

    async def get(self) -> av.Packet[Any] | None:
        """The next packet, or None once the subscription is closed."""
        if self.closed and self._queue.empty():
            return None
        packet = await self._queue.get()
        if packet is not None:
            self.delivered += 1
        return packet

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.relay.unsubscribe(self)
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)


@dataclass(slots=True)
class _Timeline:
    """Maps each source's 0-based timestamps onto one continuous output timeline."""

    clock_rate: int
    offset: int = 0
    last_out: int | None = None
    last_wall: float = 0.0
    rebase_pending: bool = field(default=False)

    def new_source(self) -> None:
        self.rebase_pending = self.last_out is not None

    def map(self, pts: int, now: float) -> int:
        if self.rebase_pending and self.last_out is not None:
            elapsed = max(1, round((now - self.last_wall) * self.clock_rate))
            self.offset = self.last_out + elapsed - pts
            self.rebase_pending = False
        out = pts + self.offset
        self.last_out = out
        self.last_wall = now
        return out


class TrackRelay:
    def __init__(self, kind: str, name: str) -> None:
        if kind not in CLOCK_RATES:
            raise ValueError(f"unknown media kind {kind!r}")
        self.kind = kind
        self.name = name
        self.stats = RelayStats()
        # Replaced, never mutated, on (un)subscribe: the per-packet loop iterates it without a copy.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._timeline = _Timeline(CLOCK_RATES[kind])
        self._source: MediaStreamTrack | None = None
        self._reader: asyncio.Task[None] | None = None
        self._keyframe_requester: Callable[[], None] | None = None
        self._last_keyframe_request = 0.0
        self._keyframe_timer: asyncio.TimerHandle | None = None

    @property
    def has_source(self) -> bool:
        return self._source is not None

    def attach_source(
        self, track: MediaStreamTrack, keyframe_requester: Callable[[], None] | None
    ) -> None:
        """Start relaying ``track``; it replaces the current source, if any."""
        self.detach_source()
        self._source = track
        self._keyframe_requester = keyframe_requester
        self._timeline.new_source()
        self._reader = asyncio.create_task(self._read(track), name=f"relay-{self.name}")

    def detach_source(self, track: MediaStreamTrack | None = None) -> None:
        """Stop relaying the current source (only if it is ``track``, when given)."""
        if self._source is None or (track is not None and track is not self._source):
            return
        self._source = None
        self._keyframe_requester = None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                packet = await track.recv()
            except MediaStreamError:
                break
            if not isinstance(packet, av.Packet):
                logger.error("relay source yields decoded frames", extra={"relay": self.name})
                break
            now = time.monotonic()
            packet.pts = packet.dts = self._timeline.map(packet.pts or 0, now)
            self.stats.packets_in += 1
            self.stats.last_packet_monotonic = now
            if packet.is_keyframe and self.kind == "video":
                self.stats.keyframes_in += 1
            for subscription in self._subscriptions:
                subscription.push(packet)
        if self._source is track:
            self._source = None
            self._reader = None

    def subscribe(self, name: str, maxsize: int = 256) -> Subscription:
        subscription = Subscription(self, maxsize, name)
        self._subscriptions = (*self._subscriptions, subscription)
        if self.kind == "video":
            self.request_keyframe()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, coalescing bursts (viewers send several per join)."""
        if self.kind != "video" or self._keyframe_timer is not None:
            return
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._send_keyframe_request()
        else:
            loop = asyncio.get_running_loop()
            self._keyframe_timer = loop.call_later(wait, self._send_keyframe_request)

    def _send_keyframe_request(self) -> None:
        self._keyframe_timer = None
        self._last_keyframe_request = time.monotonic()
        if self._keyframe_requester is not None:
            self._keyframe_requester()

    def close(self) -> None:
        self.detach_source()
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        for subscription in self._subscriptions:
            subscription.close()


class RelayedTrack(MediaStreamTrack):
    """What the server sends to a viewer: packets of one TrackRelay, forwarded as they are."""

    def __init__(self, relay: TrackRelay, consumer: str) -> None:
        super().__init__()
        self.kind = relay.kind
        self._subscription = relay.subscribe(consumer)

    @property
    def subscription(self) -> Subscription:
        return self._subscription

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._subscription.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet

    def on_keyframe_request(self) -> None:
        self._subscription.relay.request_keyframe()

    def stop(self) -> None:
        super().stop()
        self._subscription.close()


class InspectionRelay:
    """The relays of one inspection: applicant video and audio out to inspectors, and back."""

    def __init__(self, inspection_id: str) -> None:
        self.inspection_id = inspection_id
        self.applicant_video = TrackRelay("video", f"{inspection_id}/applicant-video")
        self.applicant_audio = TrackRelay("audio", f"{inspection_id}/applicant-audio")
        self.inspector_audio = TrackRelay("audio", f"{inspection_id}/inspector-audio")

    def relays(self) -> tuple[TrackRelay, ...]:
        return (self.applicant_video, self.applicant_audio, self.inspector_audio)

    def close(self) -> None:
        for relay in self.relays():
            relay.close()

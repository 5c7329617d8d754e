"""Is the applicant there, and is its picture arriving: what inspectors are told, and chained.

Three signals say the applicant has gone, whichever comes first: its signalling socket closed,
its peer connection failed (ICE), or no packet of its video reached the relay for
``MEDIA_SILENCE_S``. The relay stamps every packet it receives (``RelayStats``, no decoding);
``PresenceWatch.run`` looks at that stamp every ``CHECK_INTERVAL_S``, so a silence is noticed
within ``MEDIA_SILENCE_S + CHECK_INTERVAL_S``. Each change is chained first (it is evidence: the
times, UTC on the server's clock, and the signal that told) and then pushed to the inspectors as
a ``presence`` message (docs/signalling.md):

- ``participant_offline`` / ``participant_online``: the applicant became unreachable (socket
  closed, ICE failed) and, after that, reachable again. A first join is ``joined``, not this.
- ``media_interrupted`` / ``media_resumed``: the applicant's video stopped reaching the server
  (at ``last_packet_at``) and, after that, came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from recorder.clock import utc_iso
from server.live.geo import decimal_text
from server.live.media.relay import TrackRelay

logger = logging.getLogger(__name__)

MEDIA_SILENCE_S = 2.0
CHECK_INTERVAL_S = 0.5
VIDEO_TRACK = "applicant-video"

Chain = Callable[[str, dict[str, Any]], Awaitable[object]]
Notify = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MediaState:
    """The applicant's video as the server receives it."""

    state: str  # "none" (never arrived), "flowing" or "interrupted"
    since: float | None = None  # wall time: first packet of this run, or the last one before
    source: str | None = None  # what told of an interruption

    def __post_init__(self) -> None:
        if self.state not in ("none", "flowing", "interrupted"):
            raise ValueError(f"unknown media state {self.state!r}")

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": None if self.since is None else utc_iso(self.since),
            "source": self.source,
            "at": utc_iso(now),
        }


class PresenceWatch:
    """The applicant's presence and picture for one live inspection (one per LiveInspection)."""

    def __init__(
        self,
        video: TrackRelay,
        chain: Chain,
        notify: Notify,
        wall: Callable[[], float],
        silence_s: float = MEDIA_SILENCE_S,
    ) -> None:
        self.video = video
        self._chain = chain
        self._notify = notify
        self._wall = wall
        self.silence_s = silence_s
        self.media = MediaState("none")
        self.offline_source: str | None = None  # set while the applicant is chained offline
        self._seen_packets = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="presence-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            try:
                await self.check_media()
            except Exception:
                logger.exception("presence check failed")

    def _last_packet_wall(self) -> float | None:
        """The wall time of the relay's last packet (its stamp is monotonic)."""
        last = self.video.stats.last_packet_monotonic
        if last is None:
            return None
        return self._wall() - (time.monotonic() - last)

    async def check_media(self) -> None:
        """Compare the relay's last packet with the state inspectors were told."""
        async with self._lock:
            stats = self.video.stats
            fresh = stats.packets_in > self._seen_packets
            self._seen_packets = stats.packets_in
            last = stats.last_packet_monotonic
            silent = last is None or time.monotonic() - last > self.silence_s
            if self.media.state == "flowing" and silent:
                await self._interrupted("no_packets")
            elif self.media.state != "flowing" and fresh and not silent:
                await self._flowing()
            else:
                return
        await self._notify()

    async def _flowing(self) -> None:
        now = self._wall()
        previous = self.media
        self.media = MediaState("flowing", now)
        if previous.state == "interrupted" and previous.since is not None:
            await self._chain(
                "media_resumed",
                {
                    "track": VIDEO_TRACK,
                    "interrupted_at": utc_iso(previous.since),
                    "resumed_at": utc_iso(now),
                    "interrupted_s": decimal_text(now - previous.since, 1),
                },
            )

    async def _interrupted(self, source: str) -> None:
        now = self._wall()
        last = self._last_packet_wall()
        # Packets counted before now are the old run's (a closing peer's last ones): only a
        # packet after this may resume the picture.
        self._seen_packets = self.video.stats.packets_in
        self.media = MediaState("interrupted", last if last is not None else now, source)
        await self._chain(
            "media_interrupted",
            {
                "track": VIDEO_TRACK,
                "last_packet_at": None if last is None else utc_iso(last),
                "detected_at": utc_iso(now),
                "source": source,
            },
        )

    async def applicant_offline(self, participant_id: str, source: str) -> None:
        """The applicant cannot be reached: ``source`` is ``socket_closed`` or ``ice_failed``."""
        await self._reachable(participant_id, source, online=False)

    async def applicant_online(self, participant_id: str, source: str) -> None:
        """The applicant is reachable again (``socket_opened``, ``ice_connected``); a first
        join is chained as ``joined`` only."""
        await self._reachable(participant_id, source, online=True)

    async def _reachable(self, participant_id: str, source: str, *, online: bool) -> None:
        """Chain a change of reachability (none if it is no change), then tell the inspectors."""
        async with self._lock:
            if (self.offline_source is None) == online:
                return
            self.offline_source = None if online else source
            word = "online" if online else "offline"
            await self._chain(
                f"participant_{word}",
                {
                    "participant_id": participant_id,
                    "role": "applicant",
                    f"{word}_at": utc_iso(self._wall()),
                    "source": source,
                },
            )
            if not online and self.media.state == "flowing":  # its picture went with it
                await self._interrupted(source)
        await self._notify()

    def media_json(self) -> dict[str, Any]:
        return self.media.to_json(self._wall())

"""Quality figures: a metering wrapper for outgoing video and the periodic ``stats`` message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.stats import RTCStatsReport

from client.exceptions import ClientError
from client.signalling import SignallingSession

logger = logging.getLogger(__name__)

STATS_INTERVAL_S = 2.0

StatsFields = dict[str, float | int | None]


class MeteredTrack(MediaStreamTrack):
    """Passes another video track's frames on, counting them and noting their size.

    Also stands in for the sender when a source swaps its camera: :meth:`replaceTrack` changes
    the inner track and keeps the count going.
    """

    kind = "video"

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self._inner = inner
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._inner.recv()
        if not isinstance(frame, av.VideoFrame):
            raise MediaStreamError("the video source produced something other than a frame")
        self.frames += 1
        self.width, self.height = frame.width, frame.height
        return frame

    def replaceTrack(self, track: MediaStreamTrack | None) -> None:
        if track is not None:
            self._inner = track

    def stop(self) -> None:
        super().stop()
        self._inner.stop()


@dataclass(slots=True)
class RateMeter:
    """Turns ever-growing counters into per-second rates between two calls."""

    _last: dict[str, tuple[float, float]] = field(default_factory=dict)

    def rate(self, name: str, total: float | None) -> float | None:
        if total is None:
            return None
        now = time.monotonic()
        previous = self._last.get(name)
        self._last[name] = (now, total)
        if previous is None or now <= previous[0]:
            return None
        return max(total - previous[1], 0.0) / (now - previous[0])


def figures(
    meter: RateMeter,
    bytes_total: float | None,
    frames: int,
    size: tuple[int | None, int | None],
    rtt_s: float | None,
) -> StatsFields:
    """The ``stats`` message fields from running totals; rates are since the previous call."""
    bitrate = meter.rate("bytes", bytes_total)
    fps = meter.rate("frames", frames)
    return {
        "bitrate_kbps": None if bitrate is None else round(bitrate * 8 / 1000, 1),
        "fps": None if fps is None else round(fps, 1),
        "width": size[0],
        "height": size[1],
        "rtt_ms": None if rtt_s is None else round(rtt_s * 1000, 1),
    }


def stat_total(report: RTCStatsReport, stat_type: str, attribute: str, kind: str | None) -> Any:
    """Sum of ``attribute`` over the stats of ``stat_type`` (and ``kind``), or None if absent."""
    values = [
        getattr(stat, attribute)
        for stat in report.values()
        if stat.type == stat_type
        and (kind is None or getattr(stat, "kind", None) == kind)
        and getattr(stat, attribute, None) is not None
    ]
    return sum(values) if values else None


async def report_periodically(
    session: SignallingSession, sample: Callable[[], Awaitable[StatsFields]]
) -> None:
    """Send ``stats`` every few seconds until cancelled; a failed send stops quietly."""
    while True:
        await asyncio.sleep(STATS_INTERVAL_S)
        figures = await sample()
        try:
            await session.send("stats", stats=figures)
        except ClientError as error:
            logger.info("stats not sent: %s", error)
            return

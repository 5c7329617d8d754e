"""Recording an inspection at the relay: every track cut into short WebM segments.

A ``TrackRecorder`` subscribes to one TrackRelay from the moment the applicant consents and turns
its packets into segments of about ``segment_s`` seconds. Video segments start on a keyframe: at
each boundary the recorder asks the publisher for one (PLI) and cuts when it arrives. A silence of
more than ``GAP_S`` (publisher dropped, network loss) closes the segment and is reported as a gap,
so no segment spans missing media. Muxing and fsync run on the recording's own I/O thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av

from recorder.clock import utc_iso
from recorder.segments import ClosedSegment, SegmentWriter

logger = logging.getLogger(__name__)

GAP_S = 1.5
KEYFRAME_RETRY_S = 1.0
WRITE_BATCH_S = 0.25


class PacketSubscription(Protocol):
    dropped: int

    async def get(self) -> av.Packet[Any] | None: ...

    def close(self) -> None: ...


class PacketSource(Protocol):
    kind: str

    def subscribe(self, name: str, maxsize: int = ...) -> PacketSubscription: ...

    def request_keyframe(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FinishedSegment:
    track: str
    seq: int
    closed: ClosedSegment
    start_wall: float
    end_wall: float
    partial: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    track: str
    from_wall: float
    to_wall: float
    reason: str


SegmentSink = Callable[[FinishedSegment], Awaitable[None]]
GapSink = Callable[[Gap], Awaitable[None]]


class TrackRecorder:
    def __init__(
        self,
        source: PacketSource,
        track: str,
        spool_dir: Path,
        segment_s: float,
        io: ThreadPoolExecutor,
        on_segment: SegmentSink,
        on_gap: GapSink,
        wall_clock: Callable[[], float] = time.time,
        first_seq: int = 0,
    ) -> None:
        self.source = source
        self.track = track
        self.spool_dir = spool_dir
        self.segment_s = segment_s
        self._io = io
        self._on_segment = on_segment
        self._on_gap = on_gap
        self._wall = wall_clock
        self._writer: SegmentWriter | None = None
        self._writer_start_wall = 0.0
        self._last_wall = 0.0
        self._seq = first_seq  # a recording resumed after a restart continues its numbering
        self._keyframe_asked_at: float | None = None
        self.segments = 0
        self.write_errors = 0
        self._last_pts = 0
        self._batch: list[av.Packet[Any]] = []
        self._flush_timer: asyncio.TimerHandle | None = None

    async def _run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def run(self) -> None:
        subscription = self.source.subscribe(f"recorder:{self.track}", maxsize=2048)
        try:
            while (packet := await subscription.get()) is not None:
                await self._take(packet)
        finally:
            subscription.close()
            await asyncio.shield(self._finish_segment())
            if subscription.dropped:
                logger.error(
                    "recorder dropped packets",
                    extra={"track": self.track, "dropped": subscription.dropped},
                )

    async def _take(self, packet: av.Packet[Any]) -> None:
        now = self._wall()
        if self._writer is not None and now - self._last_wall > GAP_S:
            gap_from = self._last_wall
            await self._finish_segment()
            await self._on_gap(Gap(self.track, gap_from, now, "no media from the publisher"))
        if self._writer is None and self.source.kind == "video" and not packet.is_keyframe:
            self._ask_keyframe(now)
            return
        if self._writer is not None and self._queued_duration_s() >= self.segment_s:
            if self.source.kind == "audio" or packet.is_keyframe:
                await self._finish_segment()
            else:
                self._ask_keyframe(now)
        if self._writer is None:
            path = self.spool_dir / f"{self.track}-{self._seq:06d}.webm"
            self._writer = await self._run_io(SegmentWriter, path, self.source.kind, packet)
            self._writer_start_wall = now
            self._keyframe_asked_at = None
        else:
            self._queue_write(packet)
        self._last_pts = int(packet.pts or 0)
        self._last_wall = now

    def _queued_duration_s(self) -> float:
        """Media time handed to the writer so far (the I/O thread may still be behind)."""
        writer = self._writer
        if writer is None:
            return 0.0
        return float((self._last_pts - writer.first_pts) * writer.time_base)

    def _queue_write(self, packet: av.Packet[Any]) -> None:
        # One hand-off to the I/O thread per batch, not per packet: waking a thread for every
        # frame costs more than muxing it.
        self._batch.append(packet)
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(WRITE_BATCH_S, self._flush_batch)

    def _flush_batch(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch, self._batch = self._batch, []
        if batch and self._writer is not None:
            self._io.submit(self._write, self._writer, batch)

    def _write(self, writer: SegmentWriter, batch: list[av.Packet[Any]]) -> None:
        for packet in batch:
            try:
                writer.write(packet)
            except Exception:  # a bad packet must not end the recording: counted and logged
                self.write_errors += 1
                logger.exception("segment write failed", extra={"track": self.track})

    def _ask_keyframe(self, now: float) -> None:
        if self._keyframe_asked_at is None or now - self._keyframe_asked_at >= KEYFRAME_RETRY_S:
            self._keyframe_asked_at = now
            self.source.request_keyframe()

    async def _finish_segment(self) -> None:
        self._flush_batch()
        writer, self._writer = self._writer, None
        if writer is None:
            return
        closed: ClosedSegment = await self._run_io(writer.close)
        finished = FinishedSegment(
            self.track, self._seq, closed, self._writer_start_wall, self._last_wall
        )
        self._seq += 1
        self.segments += 1
        await self._on_segment(finished)


class SegmentArchive(Protocol):
    """What a recording needs from the archive (recorder.archive.Archive)."""

    @property
    def recording_dir(self) -> Path: ...

    async def open_case(self, case_id: str) -> None: ...

    def next_segment_seq(self, case_id: str, inspection_id: str, track: str) -> int: ...

    async def store_segment(
        self, case_id: str, inspection_id: str, finished: FinishedSegment
    ) -> Any: ...

    async def append(self, case_id: str, kind: str, body: dict[str, Any]) -> Any: ...


class InspectionRecording:
    """All tracks of one inspection, recorded until ``stop()``; nobody can pause it."""

    def __init__(
        self,
        archive: SegmentArchive,
        case_id: str,
        inspection_id: str,
        sources: dict[str, PacketSource],
        segment_s: float = 4.0,
    ) -> None:
        self.archive = archive
        self.case_id = case_id
        self.inspection_id = inspection_id
        self.sources = sources
        self.segment_s = segment_s
        self._io = ThreadPoolExecutor(1, thread_name_prefix=f"rec-{inspection_id[:8]}")
        self._group: asyncio.Task[None] | None = None
        self.recorders: list[TrackRecorder] = []

    async def start(self) -> None:
        await self.archive.open_case(self.case_id)
        spool = self.archive.recording_dir / self.case_id / self.inspection_id
        spool.mkdir(parents=True, exist_ok=True)
        for track, source in self.sources.items():
            recorder = TrackRecorder(
                source,
                track,
                spool,
                self.segment_s,
                self._io,
                self._segment_done,
                self._gap,
                first_seq=self.archive.next_segment_seq(self.case_id, self.inspection_id, track),
            )
            self.recorders.append(recorder)
        self._group = asyncio.create_task(self._run(), name=f"recording-{self.inspection_id}")
        await self.archive.append(
            self.case_id,
            "recording_started",
            {"inspection_id": self.inspection_id, "tracks": sorted(self.sources)},
        )

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for recorder in self.recorders:
                group.create_task(recorder.run(), name=f"record-{recorder.track}")

    async def _segment_done(self, finished: FinishedSegment) -> None:
        await self.archive.store_segment(self.case_id, self.inspection_id, finished)

    async def _gap(self, gap: Gap) -> None:
        await self.archive.append(
            self.case_id,
            "gap",
            {
                "inspection_id": self.inspection_id,
                "track": gap.track,
                "from_utc": utc_iso(gap.from_wall),
                "to_utc": utc_iso(gap.to_wall),
                "reason": gap.reason,
            },
        )

    async def stop(self) -> None:
        """Close, hash and chain every open segment, then stop."""
        if self._group is not None:
            self._group.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._group
            self._group = None
        await asyncio.get_running_loop().run_in_executor(None, self._io.shutdown)

"""Recording an inspection at the relay: every track cut into short WebM segments.

A ``TrackRecorder`` subscribes to one TrackRelay from the moment the applicant consents and turns
its packets into segments of about ``segment_s`` seconds. Video segments start on a keyframe: at
each boundary the recorder asks the publisher for one (PLI) and cuts when it arrives. A silence of
more than ``GAP_S`` (publisher dropped, network loss) closes the segment and is reported as a gap,
so no segment spans missing media. Muxing and fsync run on the recording's own I/O thread.

Stopping is not cancelling: ``InspectionRecording.stop()`` closes each recorder's subscription, so
the recorder takes what was relayed up to then, closes its segment and stores it. Closing and
storing a segment runs in a task of its own that a cancellation of the recorder does not
interrupt, and ``stop()`` waits for every such task: when it returns, every segment a recorder
started is closed, hashed and chained (or, if it could not be, left for recovery and logged).
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
STORE_ATTEMPTS = 4
STORE_RETRY_S = 0.1
STOP_TIMEOUT_S = 30.0


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


class OpenSegment:
    """The segment a recorder is cutting: known on the event loop at once, its file opened,
    written and closed by the recording's I/O thread (so no await stands between a packet and
    the segment that owns it)."""

    def __init__(self, path: Path, kind: str, first: av.Packet[Any]) -> None:
        self.path = path
        self.kind = kind
        self.first_pts = int(first.pts or 0)
        self.time_base = first.time_base
        self._writer: SegmentWriter | None = None

    def write(self, packet: av.Packet[Any]) -> None:
        """Mux one packet (I/O thread); the first one opens the file."""
        if self._writer is None:
            self._writer = SegmentWriter(self.path, self.kind, packet)
        else:
            self._writer.write(packet)

    def close(self) -> ClosedSegment:
        """Finalize, fsync and hash the file (I/O thread)."""
        if self._writer is None:
            raise OSError(f"{self.path.name} was never opened")
        return self._writer.close()


SegmentSink = Callable[[FinishedSegment], Awaitable[None]]
GapSink = Callable[[Gap], Awaitable[None]]
# A segment file the recorder could not close: (track, seq, path, (start, end) walls) -> chained?
SalvageSink = Callable[[str, int, Path, tuple[float, float]], Awaitable[bool]]


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
        on_unclosable: SalvageSink | None = None,
    ) -> None:
        self.source = source
        self.track = track
        self.spool_dir = spool_dir
        self.segment_s = segment_s
        self._io = io
        self._on_segment = on_segment
        self._on_gap = on_gap
        self._on_unclosable = on_unclosable
        self._wall = wall_clock
        self._writer: OpenSegment | None = None
        self._writer_start_wall = 0.0
        self._last_wall = 0.0
        self._seq = first_seq  # a recording resumed after a restart continues its numbering
        self._keyframe_asked_at: float | None = None
        self.closed = 0  # segments closed (or salvaged), each then stored
        self.segments = 0  # segments stored and chained
        self.store_failures = 0  # segments left on disk for recovery, each logged
        self.write_errors = 0
        self._last_pts = 0
        self._batch: list[av.Packet[Any]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._subscription: PacketSubscription | None = None
        self._finishing: set[asyncio.Task[None]] = set()

    async def _run_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    def subscribe(self) -> PacketSubscription:
        """Start taking packets (before ``run``, so nothing relayed from now on is missed)."""
        if self._subscription is None:
            self._subscription = self.source.subscribe(f"recorder:{self.track}", maxsize=2048)
        return self._subscription

    def finish(self) -> None:
        """Stop after the packets relayed so far: ``run`` then closes and stores its segment."""
        if self._subscription is not None:
            self._subscription.close()

    async def run(self) -> None:
        subscription = self.subscribe()
        try:
            while (packet := await subscription.get()) is not None:
                await self._take(packet)
        finally:
            subscription.close()
            self._finish_segment()
            await self.settled()
            if subscription.dropped:
                logger.error(
                    "recorder dropped packets",
                    extra={"track": self.track, "dropped": subscription.dropped},
                )

    async def _take(self, packet: av.Packet[Any]) -> None:
        now = self._wall()
        if self._writer is not None and now - self._last_wall > GAP_S:
            gap_from = self._last_wall
            await self._finished(self._finish_segment())
            await self._on_gap(Gap(self.track, gap_from, now, "no media from the publisher"))
        if self._writer is None and self.source.kind == "video" and not packet.is_keyframe:
            self._ask_keyframe(now)
            return
        if self._writer is not None and self._queued_duration_s() >= self.segment_s:
            if self.source.kind == "audio" or packet.is_keyframe:
                await self._finished(self._finish_segment())
            else:
                self._ask_keyframe(now)
        if self._writer is None:
            path = self.spool_dir / f"{self.track}-{self._seq:06d}.webm"
            self._writer = OpenSegment(path, self.source.kind, packet)
            self._writer_start_wall = now
            self._keyframe_asked_at = None
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

    def _write(self, writer: OpenSegment, batch: list[av.Packet[Any]]) -> None:
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

    def _finish_segment(self) -> asyncio.Task[None] | None:
        """Detach the open segment and close, hash and store it in a task of its own, which
        nothing cancels: a cancelled recorder still chains the segment it was cutting."""
        self._flush_batch()
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        task = asyncio.get_running_loop().create_task(
            self._close_and_store(writer, self._seq, self._writer_start_wall, self._last_wall),
            name=f"segment-{self.track}-{self._seq}",
        )
        self._seq += 1
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return task

    async def _finished(self, task: asyncio.Task[None] | None) -> None:
        """Wait for a segment's storing (each track's segments are chained in order)."""
        if task is not None:
            await asyncio.shield(task)

    async def settled(self) -> None:
        """Wait until every segment this recorder detached is stored (or left for recovery)."""
        while self._finishing:
            await asyncio.wait(list(self._finishing))

    async def _close_and_store(
        self, writer: OpenSegment, seq: int, start_wall: float, end_wall: float
    ) -> None:
        closed = await self._close(writer, seq)
        if closed is None:
            # Never closed: what reached the disk is remuxed and chained as partial (or, if
            # nothing is readable, quarantined and chained as unreadable).
            if self._on_unclosable is not None and await self._on_unclosable(
                self.track, seq, writer.path, (start_wall, end_wall)
            ):
                self.closed += 1
                self.segments += 1
            else:
                self.store_failures += 1
            return
        self.closed += 1
        finished = FinishedSegment(self.track, seq, closed, start_wall, end_wall)
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                await self._on_segment(finished)
            except Exception:
                # Nothing was committed: the closed file is still where it was; try again.
                logger.exception(
                    "segment store failed",
                    extra={"track": self.track, "seq": seq, "attempt": attempt},
                )
                await asyncio.sleep(STORE_RETRY_S * attempt)
                continue
            self.segments += 1
            return
        # Left where it is: the next start's recovery chains it, so it is not lost.
        self.store_failures += 1
        logger.error(
            "segment left for recovery", extra={"track": self.track, "path": str(closed.path)}
        )

    async def _close(self, writer: OpenSegment, seq: int) -> ClosedSegment | None:
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                closed: ClosedSegment = await self._run_io(writer.close)
                return closed
            except Exception:
                logger.exception(
                    "segment close failed",
                    extra={"track": self.track, "seq": seq, "attempt": attempt},
                )
                await asyncio.sleep(STORE_RETRY_S * attempt)
        return None


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

    async def salvage_segment(
        self,
        case_id: str,
        inspection_id: str,
        track: str,
        seq: int,
        path: Path,
        walls: tuple[float, float],
    ) -> bool: ...


class InspectionRecording:
    """All tracks of one inspection, recorded until ``stop()``; nobody can pause it."""

    def __init__(
        self,
        archive: SegmentArchive,
        case_id: str,
        inspection_id: str,
        sources: dict[str, PacketSource],
        segment_s: float = 4.0,
        io: ThreadPoolExecutor | None = None,
    ) -> None:
        self.archive = archive
        self.case_id = case_id
        self.inspection_id = inspection_id
        self.sources = sources
        self.segment_s = segment_s
        self._io = io or ThreadPoolExecutor(1, thread_name_prefix=f"rec-{inspection_id[:8]}")
        self._group: asyncio.Task[None] | None = None
        self._stopped = False
        self.recorders: list[TrackRecorder] = []

    async def start(self) -> None:
        await self.archive.open_case(self.case_id)
        if self._stopped:
            return  # stopped while the case was opening: nothing may record after the end
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
                on_unclosable=self._salvage,
            )
            recorder.subscribe()
            self.recorders.append(recorder)
        self._group = asyncio.create_task(self._run(), name=f"recording-{self.inspection_id}")
        await self.archive.append(
            self.case_id,
            "recording_started",
            {"inspection_id": self.inspection_id, "tracks": sorted(self.sources)},
        )

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task the track recorders run in, while they run."""
        return self._group

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for recorder in self.recorders:
                group.create_task(recorder.run(), name=f"record-{recorder.track}")

    async def _segment_done(self, finished: FinishedSegment) -> None:
        await self.archive.store_segment(self.case_id, self.inspection_id, finished)

    async def _salvage(self, track: str, seq: int, path: Path, walls: tuple[float, float]) -> bool:
        return await self.archive.salvage_segment(
            self.case_id, self.inspection_id, track, seq, path, walls
        )

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
        """Close, hash and chain every open segment, then stop.

        The recorders finish on their own (their subscriptions closed), so no segment cut is
        interrupted; only one that hangs past ``STOP_TIMEOUT_S`` is cancelled, and even then its
        segment's storing runs to its end before this returns.
        """
        self._stopped = True
        for recorder in self.recorders:
            recorder.finish()
        group, self._group = self._group, None
        if group is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await asyncio.shield(group)
            except TimeoutError:
                logger.error("recorders did not finish; cancelled", extra=self._log_fields())
                group.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await group
            except asyncio.CancelledError:
                if not group.cancelled():
                    raise  # this stop() was cancelled, not the recorders
            except Exception:  # one track's failure must not keep the others' segments open
                logger.exception("recording failed", extra=self._log_fields())
        for recorder in self.recorders:
            await recorder.settled()
        await asyncio.get_running_loop().run_in_executor(None, self._io.shutdown)

    def _log_fields(self) -> dict[str, str]:
        return {"case_id": self.case_id, "inspection_id": self.inspection_id}

"""Storing interrupted at each of its steps: cancelled there, or failing there, it loses nothing.

A real recording (relayed VP8 and Opus packets muxed into 0.5 s WebM segments), snapshots stored
meanwhile, then the end (``ended`` and the signed manifest). One step of the segment, object or
manifest storing path is interrupted — every step in turn, once each run: the recording, the
snapshot taker and the ender are cancelled while that step runs, or the step raises ``OSError``.
Then the archive is restarted on the same spool (recovery runs) and verified: it must pass, and
the chain must hold exactly the segments the recorders closed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from recorder import layout, storage
from recorder.archive import MOVE_ATTEMPTS, Archive
from recorder.recording import STORE_ATTEMPTS, InspectionRecording
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.live.media.relay import TrackRelay
from tests.bench._media import EncodedMedia, PacketTrack, encode_media

pytestmark = pytest.mark.single_engine  # archives only: no database

CASE = "INTERRUPTED-1"
INSPECTION = "e" * 32
TRACKS = {"applicant-video": "video", "applicant-audio": "audio"}
SNAPSHOTS = 4
T = TypeVar("T")


@dataclass
class Fault:
    """Interrupt the ``occurrence``-th time the storing path reaches ``point``."""

    point: str
    occurrence: int
    mode: str  # "cancel" the callers, or "raise" OSError in the step itself
    times: int = 1  # how many times in a row it fires (the retries of one step, say)
    targets: list[asyncio.Task[Any]] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    fired: int = 0
    subject: object = None  # what it fired on: its repeats are for the same one

    def reached(self, point: str, subject: object = None) -> None:
        self.seen[point] += 1
        if point != self.point or self.seen[point] < self.occurrence:
            return
        if self.fired >= self.times or (self.fired and subject != self.subject):
            return
        self.fired += 1
        self.subject = subject
        if self.mode == "raise":
            raise OSError(f"injected failure at {point}")
        for task in self.targets:
            task.cancel()


def point_of(archive: Archive, fn: Callable[..., Any], args: tuple[Any, ...]) -> str | None:
    """Which step of the storing path a blocking call is."""
    if getattr(fn, "__func__", None) is Archive._write_entry_files:
        _, path, data = args
        return "entry:" + str(json.loads(data)["kind"])
    if fn is storage.write_durably:
        path, data = args
        if archive.staging_dir in path.parents:
            return "stage:manifest" if path.name == "manifest.json" else "stage:object"
        if "/chain/" in path.as_posix():
            return "entry:" + str(json.loads(data)["kind"])
        return None
    if fn is storage.move_durably:
        source = args[0]
        if archive.recording_dir in source.parents:
            return "move:segment"
        return "move:manifest" if source.name == "manifest.json" else "move:object"
    if getattr(fn, "__name__", "") == "<lambda>":
        return "hash:object"
    return None


class InterruptedArchive(Archive):
    fault: Fault | None = None

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        point = point_of(self, fn, args)
        if self.fault is not None and point is not None:
            self.fault.reached(point, args[0] if args else None)
        return await super().run_blocking(fn, *args)


class InterruptedIO(ThreadPoolExecutor):
    """The recording's I/O thread, where a segment is closed (finalized and hashed)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(1, thread_name_prefix="rec-interrupted")
        self.fault = fault

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if getattr(fn, "__name__", "") == "close":
            try:
                self.fault.reached("close", getattr(fn, "__self__", None))
            except OSError as exc:
                failed: Future[Any] = Future()
                failed.set_exception(exc)  # the close never ran: the file is unfinished
                return failed
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def media() -> EncodedMedia:
    return encode_media(3)


@dataclass
class Outcome:
    storage: LocalStorage
    closed: int
    store_failures: int
    snapshots_stored: int
    snapshots_attempted: int
    recovered: list[dict[str, Any]]


async def record_interrupted(tmp_path: Path, media: EncodedMedia, fault: Fault) -> Outcome:
    storage = LocalStorage(tmp_path / "archive")
    signer = Signer.generate()
    archive = InterruptedArchive(storage, tmp_path / "spool", signer)
    archive.fault = fault
    await archive.start()
    relays = {track: TrackRelay(kind, track) for track, kind in TRACKS.items()}
    recording = InspectionRecording(
        archive, CASE, INSPECTION, dict(relays), segment_s=0.5, io=InterruptedIO(fault)
    )
    await recording.start()
    assert recording.task is not None
    stored = attempted = 0

    async def take_snapshots() -> None:
        nonlocal stored, attempted
        for _ in range(SNAPSHOTS):
            attempted += 1
            snapshot_id = secrets.token_hex(16)
            key = layout.snapshot_key(CASE, INSPECTION, snapshot_id)
            try:
                await archive.store_object(
                    CASE, key, secrets.token_bytes(2000), "snapshot", {"snapshot_id": snapshot_id}
                )
                stored += 1
            except OSError:
                pass  # the user is told the snapshot failed; nothing of it is evidence
            await asyncio.sleep(0.02)

    snapshots = asyncio.create_task(take_snapshots())
    fault.targets[:] = [recording.task, snapshots]
    sources = {track: PacketTrack(kind, media.frames(kind), None) for track, kind in TRACKS.items()}
    for track, relay in relays.items():
        relay.attach_source(sources[track], None)

    async def media_sent() -> None:
        for source in sources.values():
            await source.finished.wait()

    sent = asyncio.create_task(media_sent())
    await asyncio.wait([recording.task, sent], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    sent.cancel()
    await asyncio.gather(snapshots, return_exceptions=True)
    await recording.stop()

    async def end() -> None:
        for _ in range(2):  # an inspector whose end failed presses it again
            try:
                await archive.finish_inspection(CASE, INSPECTION, {"by": "inspector"})
                return
            except OSError:
                continue

    ender = asyncio.create_task(end())
    fault.targets[:] = [ender]
    await asyncio.gather(ender, return_exceptions=True)
    await archive.settle()
    archive.fault = None
    await archive.stop()
    for relay in relays.values():
        relay.close()

    restarted = Archive(storage, tmp_path / "spool", signer)  # the next start: recovery runs
    await restarted.start()
    await restarted.recover()
    await restarted.stop()
    entries = [json.loads(storage.get(key)) for key in storage.list(layout.chain_prefix(CASE))]
    return Outcome(
        storage,
        closed=sum(r.closed for r in recording.recorders),
        store_failures=sum(r.store_failures for r in recording.recorders),
        snapshots_stored=stored,
        snapshots_attempted=attempted,
        recovered=[e["body"] for e in entries if e["kind"] == "recovered"],
    )


RECORDING_POINTS = ["close", "entry:segment", "move:segment"]
OBJECT_POINTS = ["hash:object", "stage:object", "entry:snapshot", "move:object"]
END_POINTS = ["entry:ended", "stage:manifest", "entry:manifest", "move:manifest"]
POINTS = [(p, 3) for p in RECORDING_POINTS] + [(p, 2) for p in OBJECT_POINTS]
POINTS += [(p, 1) for p in END_POINTS]


@pytest.mark.parametrize("mode", ["cancel", "raise"])
@pytest.mark.parametrize(("point", "occurrence"), POINTS)
async def test_storing_interrupted_at_any_step_still_verifies_with_every_closed_segment(
    tmp_path: Path, media: EncodedMedia, point: str, occurrence: int, mode: str
) -> None:
    fault = Fault(point, occurrence, mode)
    outcome = await record_interrupted(tmp_path, media, fault)
    assert fault.fired, f"{point} was reached only {fault.seen[point]} times: {fault.seen}"

    report = verify_case(outcome.storage, CASE)
    assert outcome.store_failures == 0
    assert report.segments == outcome.closed > 0
    # A snapshot whose taker was cancelled is stored all the same (or not at all, if it was
    # cancelled before its storing began); one that failed is not.
    assert outcome.snapshots_stored <= len(report.snapshots) <= outcome.snapshots_attempted
    if mode == "raise":
        assert len(report.snapshots) == outcome.snapshots_stored
    assert report.manifests == 1
    if (point, mode) == ("entry:snapshot", "raise"):
        # A snapshot that failed before its entry was written is kept aside, and said so.
        assert [r["how"] for r in outcome.recovered] == ["quarantined"]
    else:
        assert outcome.recovered == []
        assert report.partial_segments == []


async def test_committed_segment_that_could_not_be_moved_is_moved_at_the_next_start(
    tmp_path: Path, media: EncodedMedia
) -> None:
    # The disk refuses the move after the segment's entry is written, every time it is tried:
    # the entry stands, the file stays where it was closed, and the next start moves it.
    fault = Fault("move:segment", 2, "raise", times=MOVE_ATTEMPTS)
    outcome = await record_interrupted(tmp_path, media, fault)
    assert fault.fired == MOVE_ATTEMPTS
    report = verify_case(outcome.storage, CASE)
    assert report.segments == outcome.closed
    assert [r["how"] for r in outcome.recovered] == ["moved"]
    assert outcome.recovered[0]["object"].startswith(layout.case_prefix(CASE))


async def test_segment_that_never_closes_is_salvaged_or_quarantined_and_said_so(
    tmp_path: Path, media: EncodedMedia
) -> None:
    # The muxer fails at every close of one segment: what reached the disk is remuxed and chained
    # as partial, or (nothing readable) the file is quarantined and its seq chained as unreadable.
    fault = Fault("close", 3, "raise", times=STORE_ATTEMPTS)
    outcome = await record_interrupted(tmp_path, media, fault)
    assert fault.fired == STORE_ATTEMPTS
    report = verify_case(outcome.storage, CASE)
    [recovered] = outcome.recovered
    if recovered["readable"]:
        assert recovered["how"] == "remuxed"
        assert len(report.partial_segments) == 1
        assert outcome.store_failures == 0
    else:
        assert recovered["how"] == "quarantined"
        assert outcome.store_failures == 1
    assert report.segments == outcome.closed


async def test_recording_stopped_while_it_starts_records_nothing_after_the_end(
    tmp_path: Path,
) -> None:
    # A conclusion right after consent: the end comes while the recording is still opening the
    # case. Nothing may start recording after that end.
    storage = LocalStorage(tmp_path / "archive")
    archive = Archive(storage, tmp_path / "spool", Signer.generate())
    await archive.start()
    relays = {track: TrackRelay(kind, track) for track, kind in TRACKS.items()}
    recording = InspectionRecording(archive, CASE, INSPECTION, dict(relays), segment_s=0.5)
    starting = asyncio.create_task(recording.start())
    await asyncio.sleep(0)  # start() now waits for the case to be opened
    await recording.stop()
    await starting
    assert recording.task is None
    assert recording.recorders == []
    await archive.stop()

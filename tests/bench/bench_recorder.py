"""Recorder CPU against aiortc's MediaRecorder, and segment durability latency, in one run.

    .venv/bin/python tests/bench/bench_recorder.py [--quick] [--no-s3]

1. CPU per second of media for one 640x480 30 fps VP8 + Opus stream (pre-encoded once with
   PyAV, ~1.2 Mbit/s, see tests/bench/_media.py), measured as process CPU time (all threads):
   a. Takan: packets as the passthrough receiver yields them (``encoded_packet``) → a real
      ``TrackRelay`` → ``TrackRecorder`` (4 s WebM segments, muxed and hashed on the recording's
      I/O thread) → ``Archive`` over ``LocalStorage`` (spooled, chained, stored), until every
      object is stored. Once in real time (as a live inspection runs) and once as fast as
      possible (which cuts fewer segments: the recorder measures a segment's length by what
      its I/O thread has written so far, which lags behind a burst).
   b. aiortc's ``MediaRecorder`` writing .webm (and .mp4 unless --quick) from a track that
      yields what aiortc's receiver yields by default: frames from aiortc's own decoder. The
      decode is counted: aiortc's receiver always decodes. As fast as possible.
   c. The same packets through the relays to a reader that does nothing, in real time: what
      the live path costs anyway; the difference to (a) is the recorder's own share.
2. Segment closed → hashed, chained and stored (``Archive.stats.latencies``) with 1 s segments
   for several concurrent real-time streams (one case and one I/O thread each, starts
   staggered), for LocalStorage and, when ``recorder.minio_storage`` and .localstack-venv are
   there, for a MinioStorage on a LocalStack S3 server started here on loopback. Also the time
   ``SegmentWriter.close`` takes (finalize the WebM, SHA-256, fsync), which precedes it.

The publisher's keyframes come every second (they stand in for the keyframe the recorder asks
for at each segment boundary); segments are cut 50 ms before their nominal length so that the
keyframe due at the boundary is the one they are cut on. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from aiortc.contrib.media import MediaRecorder

from recorder.archive import Archive
from recorder.recording import FinishedSegment, Gap, TrackRecorder
from recorder.signing import Signer
from recorder.storage import LocalStorage, Storage
from recorder.storage_url import open_storage
from recorder.verify import verify_case
from server.live.media.relay import Subscription, TrackRelay
from tests.bench._media import DecodingTrack, EncodedMedia, PacketTrack, encode_media

REPO = Path(__file__).resolve().parents[2]
LOCALSTACK_PYTHON = REPO / ".localstack-venv" / "bin" / "python"
TRACKS = {"applicant-video": "video", "applicant-audio": "audio"}
CUT_EARLY_S = 0.05
CPU_SEGMENT_S = 4.0
LATENCY_SEGMENT_S = 1.0


@dataclass(frozen=True, slots=True)
class Cpu:
    user: float
    system: float

    @classmethod
    def now(cls) -> Cpu:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
        return cls(usage.ru_utime, usage.ru_stime)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.user - other.user, self.system - other.system)

    @property
    def total(self) -> float:
        return self.user + self.system


@dataclass(frozen=True, slots=True)
class CpuRun:
    name: str
    media_s: float
    cpu: Cpu
    wall_s: float
    note: str = ""

    @property
    def per_media_s(self) -> float:
        return self.cpu.total / self.media_s


class TimedExecutor(ThreadPoolExecutor):
    """A recording's I/O thread that also times each ``SegmentWriter.close`` it runs."""

    def __init__(self, name: str, close_times: list[float]) -> None:
        super().__init__(1, thread_name_prefix=name)
        self._close_times = close_times

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if getattr(fn, "__name__", "") != "close":
            return super().submit(fn, *args, **kwargs)

        def timed() -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._close_times.append(time.perf_counter() - start)

        return super().submit(timed)


@dataclass
class Stream:
    """One recorded inspection: applicant video and audio replayed into relays and recorded."""

    archive: Archive
    case_id: str
    media: EncodedMedia
    segment_s: float
    io: ThreadPoolExecutor
    paced: bool
    start_delay_s: float = 0.0
    inspection_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    recorders: list[TrackRecorder] = field(default_factory=list)
    frames_recorded: int = 0
    gaps: int = 0

    async def run(self) -> None:
        await self.archive.open_case(self.case_id)
        spool = self.archive.recording_dir / self.case_id / self.inspection_id
        await asyncio.to_thread(spool.mkdir, parents=True, exist_ok=True)
        relays = {track: TrackRelay(kind, track) for track, kind in TRACKS.items()}
        self.recorders = [
            TrackRecorder(
                relay,
                track,
                spool,
                self.segment_s - CUT_EARLY_S,
                self.io,
                self._segment_done,
                self._gap,
            )
            for track, relay in relays.items()
        ]
        async with asyncio.TaskGroup() as group:
            for recorder in self.recorders:
                group.create_task(recorder.run())
            await asyncio.sleep(self.start_delay_s)  # and the recorders subscribe meanwhile
            loop = asyncio.get_running_loop()
            start = loop.time() + 0.05 if self.paced else None
            sources = {
                track: PacketTrack(kind, self.media.frames(kind), start)
                for track, kind in TRACKS.items()
            }
            for track, relay in relays.items():
                relay.attach_source(sources[track], None)
            for source in sources.values():
                await source.finished.wait()
            for relay in relays.values():
                relay.close()  # the recorders drain their queues, close their last segments

    async def _segment_done(self, finished: FinishedSegment) -> None:
        self.frames_recorded += finished.closed.frames
        await self.archive.store_segment(self.case_id, self.inspection_id, finished)

    async def _gap(self, gap: Gap) -> None:
        self.gaps += 1


def new_archive(storage: Storage, spool: Path) -> Archive:
    return Archive(storage, spool, Signer.generate())


async def run_streams(
    archive: Archive,
    media: EncodedMedia,
    streams: int,
    segment_s: float,
    paced: bool,
    close_times: list[float] | None = None,
) -> list[Stream]:
    """Record ``streams`` inspections (one case each) until every object is stored."""
    executors = [
        TimedExecutor(f"rec-{i}", close_times if close_times is not None else [])
        for i in range(streams)
    ]
    recorded = [
        Stream(
            archive,
            f"bench-{i}",
            media,
            segment_s,
            executors[i],
            paced,
            start_delay_s=segment_s * i / streams if paced else 0.0,
        )
        for i in range(streams)
    ]
    try:
        async with asyncio.TaskGroup() as group:
            for stream in recorded:
                group.create_task(stream.run())
        await archive.drain()
    finally:
        for executor in executors:
            executor.shutdown()
    return recorded


# 1. CPU


async def relay_only_cpu(media: EncodedMedia) -> CpuRun:
    """The same packets through the same relays, to a consumer that only reads them: what a
    live inspection costs without its recorder (the recorder's share is the difference)."""
    relays = {track: TrackRelay(kind, track) for track, kind in TRACKS.items()}
    subscriptions = [relay.subscribe("drain", maxsize=2048) for relay in relays.values()]

    async def drain(subscription: Subscription) -> None:
        while await subscription.get() is not None:
            pass

    cpu0, wall0 = Cpu.now(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for subscription in subscriptions:
            group.create_task(drain(subscription))
        start = asyncio.get_running_loop().time() + 0.05
        sources = {
            track: PacketTrack(kind, media.frames(kind), start) for track, kind in TRACKS.items()
        }
        for track, relay in relays.items():
            relay.attach_source(sources[track], None)
        for source in sources.values():
            await source.finished.wait()
        for relay in relays.values():
            relay.close()
    cpu, wall = Cpu.now() - cpu0, time.perf_counter() - wall0
    delivered = sum(s.delivered for s in subscriptions)
    note = f"{delivered} packets read, no recorder"
    return CpuRun("relay only, real time (no recorder)", media.seconds, cpu, wall, note)


async def takan_cpu(media: EncodedMedia, paced: bool, scratch: Path) -> CpuRun:
    storage = LocalStorage(scratch / "archive")
    archive = new_archive(storage, scratch / "spool")
    await archive.start()
    cpu0, wall0 = Cpu.now(), time.perf_counter()
    (stream,) = await run_streams(archive, media, 1, CPU_SEGMENT_S, paced)
    cpu, wall = Cpu.now() - cpu0, time.perf_counter() - wall0
    await archive.finish_inspection(stream.case_id, stream.inspection_id)
    await archive.stop()
    report = await asyncio.to_thread(verify_case, storage, stream.case_id)
    sent = len(media.video) + len(media.audio)
    note = (
        f"{report.segments} segments, {report.bytes / 1e6:.1f} MB, "
        f"{stream.frames_recorded}/{sent} frames recorded, verify OK"
    )
    name = "Takan recorder, real time" if paced else "Takan recorder, as fast as possible"
    return CpuRun(name, media.seconds, cpu, wall, note)


async def media_recorder_cpu(media: EncodedMedia, suffix: str, scratch: Path) -> CpuRun:
    target = scratch / f"baseline{suffix}"
    video = DecodingTrack("video", media.video, None)
    audio = DecodingTrack("audio", media.audio, None)
    recorder = MediaRecorder(str(target))
    recorder.addTrack(video)
    recorder.addTrack(audio)
    cpu0, wall0 = Cpu.now(), time.perf_counter()
    await recorder.start()
    await video.finished.wait()
    await audio.finished.wait()
    await recorder.stop()
    cpu, wall = Cpu.now() - cpu0, time.perf_counter() - wall0
    size = target.stat().st_size
    name = f"aiortc MediaRecorder {suffix}, decode + encode"
    return CpuRun(name, media.seconds, cpu, wall, f"one {size / 1e6:.1f} MB file")


def print_cpu(runs: list[CpuRun]) -> None:
    print(f"{'':44} {'CPU s/media s':>13} {'user':>7} {'sys':>6} {'wall s':>7}")
    for run in runs:
        print(
            f"{run.name:44} {run.per_media_s:13.4f} {run.cpu.user:7.2f} {run.cpu.system:6.2f}"
            f" {run.wall_s:7.2f}  {run.note}"
        )


# 2. latency


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class LatencyRun:
    backend: str
    latencies: list[float]
    close_times: list[float]
    upload_failures: int
    gaps: int
    wall_s: float


async def latency_run(
    backend: str, storage: Storage, media: EncodedMedia, streams: int, scratch: Path
) -> LatencyRun:
    archive = new_archive(storage, scratch / "spool")
    await archive.start()
    close_times: list[float] = []
    wall0 = time.perf_counter()
    recorded = await run_streams(archive, media, streams, LATENCY_SEGMENT_S, True, close_times)
    wall = time.perf_counter() - wall0
    for stream in recorded:
        await archive.finish_inspection(stream.case_id, stream.inspection_id)
    await archive.stop()
    return LatencyRun(
        backend,
        list(archive.stats.latencies),
        close_times,
        archive.stats.upload_failures,
        sum(s.gaps for s in recorded),
        wall,
    )


def print_latency(run: LatencyRun, target_s: float) -> None:
    lat, close = run.latencies, run.close_times
    p95 = percentile(lat, 95)
    verdict = "met" if p95 < target_s else "MISSED"
    print(
        f"{run.backend:6} {len(lat):4d} segments  closed → stored: p50 {percentile(lat, 50):.3f} s"
        f"  p95 {p95:.3f} s  max {max(lat):.3f} s  mean {statistics.fmean(lat):.3f} s"
        f"  (target p95 < {target_s} s: {verdict})"
    )
    print(
        f"{'':6} {'':13} SegmentWriter.close (finalize, SHA-256, fsync) before it:"
        f" p50 {percentile(close, 50) * 1000:.1f} ms  p95 {percentile(close, 95) * 1000:.1f} ms;"
        f" upload failures {run.upload_failures}, gaps {run.gaps}, wall {run.wall_s:.1f} s"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def s3_unavailable() -> str | None:
    if importlib.util.find_spec("recorder.minio_storage") is None:
        return "recorder/minio_storage.py is not there"
    if not LOCALSTACK_PYTHON.exists():
        return f"LocalStack is not installed in {LOCALSTACK_PYTHON.parent.parent}"
    return None


def _s3_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (http, loopback)
            body: bytes = response.read()
    except (urllib.error.URLError, OSError):
        return False
    return b'"s3": "running"' in body or b'"s3": "available"' in body


@contextlib.contextmanager
def localstack(root: Path) -> Iterator[str]:
    """A LocalStack S3 server on a free loopback port, kept off the network; yields host:port."""
    port = free_port()
    (root / "tmp").mkdir(parents=True)
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(
        SERVICES="s3",
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        EAGER_SERVICE_LOADING="1",
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(root),
        TMPDIR=str(root / "tmp"),
        SKIP_SSL_CERT_DOWNLOAD="1",
        DISABLE_EVENTS="1",
        DNS_ADDRESS="0",
        SKIP_INFRA_DOWNLOADS="1",
    )
    log = (root / "localstack.log").open("wb")
    process = subprocess.Popen(
        [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        health = f"http://127.0.0.1:{port}/_localstack/health"
        while not _s3_healthy(health):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"LocalStack did not start; see {root / 'localstack.log'}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def cpu_section(media: EncodedMedia, quick: bool) -> None:
    print(
        f"\n1. CPU per second of media, one stream, {media.seconds:.0f} s"
        " (process CPU time, all threads)"
    )
    runs: list[CpuRun] = []
    with tempfile.TemporaryDirectory() as scratch:
        for paced in (True, False):
            runs.append(await takan_cpu(media, paced, Path(scratch) / f"takan-{paced}"))
        baselines = [
            await media_recorder_cpu(media, suffix, Path(scratch))
            for suffix in ((".webm",) if quick else (".webm", ".mp4"))
        ]
        relay_only = await relay_only_cpu(media)
    print_cpu([*runs, *baselines, relay_only])
    recorder_share = runs[0].per_media_s - relay_only.per_media_s
    print(
        f"recorder's own share in real time (Takan recorder minus relay only):"
        f" {recorder_share:.4f} CPU s/media s"
    )
    for takan in runs:
        for baseline in baselines:
            ratio = takan.per_media_s / baseline.per_media_s
            print(f"ratio {takan.name} / {baseline.name}: {ratio:.4f} (1/{1 / ratio:.0f})")
    ratio = runs[0].per_media_s / baselines[0].per_media_s
    verdict = "met" if ratio <= 0.1 else "MISSED"
    print(f"target Takan (real time) ≤ 1/10 of MediaRecorder .webm: {verdict} (1/{1 / ratio:.0f})")


async def latency_section(media: EncodedMedia, streams: int, s3: bool) -> None:
    print(
        f"\n2. Segment durability: {streams} concurrent real-time streams (video + audio, one"
        f" case each), {LATENCY_SEGMENT_S:.0f} s segments, {media.seconds:.0f} s each"
    )
    with tempfile.TemporaryDirectory() as scratch:
        local = LocalStorage(Path(scratch) / "archive")
        print_latency(await latency_run("local", local, media, streams, Path(scratch)), 0.5)
    missing = s3_unavailable() if s3 else "--no-s3 given"
    if missing:
        print(f"s3     not measured: {missing}")
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        with localstack(root / "localstack") as endpoint:
            print(f"s3     LocalStack ready on {endpoint} in {time.perf_counter() - started:.1f} s")
            url = (
                f"minio://test:test@{endpoint}/takan-bench-{uuid.uuid4().hex[:8]}"
                "?secure=false&retention=GOVERNANCE&days=1&region=us-east-1"
            )
            try:
                storage = open_storage(url)
            except ValueError as exc:
                print(f"s3     not measured: {exc}")
                return
            print_latency(await latency_run("s3", storage, media, streams, root), 1.0)
            print(f"{'':6} {'':13} (MinioStorage: put with checksum, read back and compare)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter runs (under a minute)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 latency run")
    args = parser.parse_args()
    cpu_seconds, latency_seconds, streams = (6, 6, 3) if args.quick else (20, 12, 4)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    media = await asyncio.to_thread(encode_media, cpu_seconds)
    print(
        f"media: {media.seconds:.0f} s of 640x480 VP8 at 30 fps, {len(media.video)} frames,"
        f" {media.keyframes} keyframes, {media.bitrate('video') / 1e6:.2f} Mbit/s;"
        f" Opus 48 kHz stereo, {len(media.audio)} frames, {media.bitrate('audio') / 1e3:.0f} kbit/s"
        f" (encoded in {time.perf_counter() - started:.1f} s)"
    )
    section = time.perf_counter()
    await cpu_section(media, args.quick)
    print(f"(section 1 took {time.perf_counter() - section:.0f} s)")
    section = time.perf_counter()
    await latency_section(media.head(latency_seconds), streams, not args.no_s3)
    print(f"(section 2 took {time.perf_counter() - section:.0f} s)")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())

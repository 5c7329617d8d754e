"""``watch``: join as an inspector, receive and decode the applicant's media, and measure it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from client import timecode
from client.endpoints import inspector_endpoint
from client.peer import Conversation, TrackConsumers, new_peer_connection
from client.signalling import connect
from client.stats import RateMeter, StatsFields, figures, report_periodically, stat_total
from client.testsrc import ToneTrack

logger = logging.getLogger(__name__)

INSPECTOR_TONE_HZ = 660.0


@dataclass(frozen=True, slots=True)
class WatchOptions:
    url: str
    token: str
    seconds: float | None = None
    name: str | None = None
    verify_tls: bool = True
    end_on_exit: bool = False


@dataclass(slots=True)
class VideoProbe:
    """Counts decoded frames, their sizes, and the latency the time code in each reveals."""

    started: float
    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    width: int | None = None
    height: int | None = None
    resolutions: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    source_frames_missed: int = 0
    _last_index: int | None = None

    def on_frame(self, frame: object) -> None:
        if not isinstance(frame, av.VideoFrame):
            return
        now = time.monotonic()
        received_ms = time.time_ns() / 1_000_000
        self.frames += 1
        self.first_at = self.first_at or now
        self.last_at = now
        self.width, self.height = frame.width, frame.height
        size = f"{frame.width}x{frame.height}"
        self.resolutions[size] = self.resolutions.get(size, 0) + 1
        code = timecode.read(luma_plane(frame))
        if code is None:
            return
        self.latencies_ms.append(received_ms - code.capture_ms)
        if self._last_index is not None:
            step = (code.frame_index - self._last_index) % (1 << timecode.INDEX_BITS)
            self.source_frames_missed += max(step - 1, 0)
        self._last_index = code.frame_index

    def fps(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.frames - 1) / (self.last_at - self.first_at)

    def first_frame_ms(self) -> float | None:
        return None if self.first_at is None else (self.first_at - self.started) * 1000

    def latency_percentile(self, percent: float) -> float | None:
        if not self.latencies_ms:
            return None
        return float(np.percentile(np.asarray(self.latencies_ms), percent))


def luma_plane(frame: av.VideoFrame) -> timecode.Luma:
    """The Y plane of a decoded frame as a 2-D array, without a copy for planar YUV."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p"):
        return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
    plane = frame.planes[0]
    flat = np.frombuffer(memoryview(plane), dtype=np.uint8)
    rows = flat[: plane.line_size * frame.height].reshape(frame.height, plane.line_size)
    luma: timecode.Luma = rows[:, : frame.width]
    return luma


@dataclass(slots=True)
class WatchReport:
    outcome: str
    seconds: float
    video: VideoProbe
    audio_frames: int
    audio_packets: int | None

    def as_json(self) -> dict[str, Any]:
        video = self.video
        return {
            "frames": video.frames,
            "fps": round(video.fps(), 2),
            "width": video.width,
            "height": video.height,
            "audio_packets": self.audio_packets
            if self.audio_packets is not None
            else self.audio_frames,
            "audio_frames": self.audio_frames,
            "latency_ms_p50": _rounded(video.latency_percentile(50)),
            "latency_ms_p95": _rounded(video.latency_percentile(95)),
            "latency_ms_max": _rounded(max(video.latencies_ms, default=None)),
            "timecoded_frames": len(video.latencies_ms),
            "source_frames_missed": video.source_frames_missed,
            "first_frame_ms": _rounded(video.first_frame_ms()),
            "resolutions": video.resolutions,
            "seconds": round(self.seconds, 3),
            "outcome": self.outcome,
        }

    def summary(self) -> str:
        figures = self.as_json()
        size = f"{figures['width']}x{figures['height']}" if figures["frames"] else "no video"
        latency = (
            f"latency p50 {figures['latency_ms_p50']} ms, p95 {figures['latency_ms_p95']} ms"
            if figures["latency_ms_p50"] is not None
            else "no time code seen"
        )
        return (
            f"watched for {figures['seconds']:.1f} s ({self.outcome}): "
            f"{figures['frames']} frames at {size}, {figures['fps']} fps, {latency}; "
            f"{figures['audio_packets']} audio packets ({figures['audio_frames']} frames decoded)"
        )


async def watch(options: WatchOptions, stop: asyncio.Event) -> WatchReport:
    """Run until ``options.seconds`` pass, ``stop`` is set or the inspection ends."""
    endpoint = inspector_endpoint(options.url, options.token)
    started = time.monotonic()
    video = VideoProbe(started=started)
    audio_frames = 0
    audio_packets: int | None = None

    def count_audio(_: object) -> None:
        nonlocal audio_frames
        audio_frames += 1

    async with connect(endpoint, name=options.name, verify_tls=options.verify_tls) as session:
        pc = new_peer_connection(session.welcome.ice_servers)
        consumers = TrackConsumers()
        tone = ToneTrack(frequency_hz=INSPECTOR_TONE_HZ, amplitude=0.1)

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            logger.info("receiving %s from the server", track.kind)
            consumers.consume(track, video.on_frame if track.kind == "video" else count_audio)

        pc.addTransceiver("video", direction="recvonly")
        audio_receiver = pc.addTransceiver(tone, direction="sendrecv").receiver
        reporter = asyncio.create_task(
            report_periodically(session, _sampler(pc, video)), name="stats"
        )
        try:
            outcome = await Conversation(session, pc).run(options.seconds, stop)
            if options.end_on_exit and not outcome.startswith("ended"):
                await session.send("end")
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            audio_packets = await _packets_received(audio_receiver)
            await consumers.stop()
            await pc.close()
            tone.stop()
    return WatchReport(
        outcome=outcome,
        seconds=time.monotonic() - started,
        video=video,
        audio_frames=audio_frames,
        audio_packets=audio_packets,
    )


async def _packets_received(receiver: RTCRtpReceiver) -> int | None:
    try:
        total = stat_total(await receiver.getStats(), "inbound-rtp", "packetsReceived", "audio")
    except Exception:  # stats of a connection that never came up
        logger.debug("no audio receiver stats", exc_info=True)
        return None
    return int(total) if total is not None else None


def _sampler(pc: RTCPeerConnection, video: VideoProbe) -> Callable[[], Awaitable[StatsFields]]:
    meter = RateMeter()

    async def sample() -> StatsFields:
        received = None
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                stats = await transceiver.receiver.getStats()
                received = stat_total(stats, "transport", "bytesReceived", None)
        return figures(meter, received, video.frames, (video.width, video.height), None)

    return sample


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

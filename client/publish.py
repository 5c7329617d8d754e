"""``publish``: join as the applicant and stream video and audio from a source."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from client.endpoints import Endpoint, applicant_endpoint
from client.exceptions import ProtocolError, UnreachableError
from client.peer import Conversation, TrackConsumers, new_peer_connection
from client.signalling import Message, SignallingSession, connect
from client.sources import (
    ControlResult,
    MediaSource,
    SourceSpec,
    TestSource,
    VideoFormat,
    open_source,
)
from client.stats import (
    MeteredTrack,
    RateMeter,
    StatsFields,
    figures,
    report_periodically,
    stat_total,
)

logger = logging.getLogger(__name__)

CONTROL_ACTIONS = frozenset({"switch_camera", "torch", "zoom"})


RECONNECT_FOR_S = 60.0  # joining again after a lost connection, for at most this long
RECONNECT_PAUSE_S = 1.0


class Lent(MediaStreamTrack):
    """``inner`` for one peer connection: stopping this one leaves ``inner`` running."""

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = inner.kind
        self._inner = inner

    async def recv(self) -> Frame | Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._inner.recv()


@dataclass(frozen=True, slots=True)
class PublishOptions:
    url: str
    source: SourceSpec
    video_format: VideoFormat
    seconds: float | None = None
    loop: bool = False
    name: str | None = None
    verify_tls: bool = True


@dataclass(slots=True)
class PublishReport:
    """What happened, printed at the end."""

    outcome: str = ""
    source: str = ""
    seconds: float = 0.0
    video_frames_sent: int = 0
    source_frames_skipped: int | None = None
    width: int | None = None
    height: int | None = None
    video_bytes_sent: int | None = None
    inspector_audio_frames: int = 0
    controls: list[dict[str, Any]] = field(default_factory=list)
    reconnects: int = 0  # sessions after the first: the socket dropped and came back
    joined: int = 0  # sessions that got a welcome

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reconnects": self.reconnects,
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "video_frames_sent": self.video_frames_sent,
            "source_frames_skipped": self.source_frames_skipped,
            "width": self.width,
            "height": self.height,
            "video_bytes_sent": self.video_bytes_sent,
            "inspector_audio_frames": self.inspector_audio_frames,
            "controls": self.controls,
        }

    def summary(self) -> str:
        size = f"{self.width}x{self.height}" if self.width else "no video"
        return (
            f"published {self.source} for {self.seconds:.1f} s ({self.outcome}): "
            f"{self.video_frames_sent} frames at {size}, "
            f"{self.inspector_audio_frames} inspector audio frames received, "
            f"{len(self.controls)} controls answered"
        )


async def publish(options: PublishOptions, stop: asyncio.Event) -> PublishReport:
    """Run until ``options.seconds`` pass, ``stop`` is set or the server ends the inspection."""
    endpoint = applicant_endpoint(options.url)
    source = await open_source(options.source, options.video_format, options.loop)
    report = PublishReport(source=source.describe())
    video = MeteredTrack(source.video)
    started = time.monotonic()
    try:
        lost_at: float | None = None
        while True:
            elapsed = time.monotonic() - started
            left = None if options.seconds is None else options.seconds - elapsed
            joined_before = report.joined
            try:
                report.outcome = await _session(
                    endpoint, source, video, report, options, left, stop
                )
                break
            except (ProtocolError, UnreachableError) as error:
                # The socket dropped (a server restart, the node running the inspection lost):
                # join again, through the same link, for as long as RECONNECT_FOR_S.
                if lost_at is None or report.joined > joined_before:
                    lost_at = time.monotonic()
                done = options.seconds is not None and (
                    time.monotonic() - started >= options.seconds
                )
                if (
                    report.joined == 0
                    or stop.is_set()
                    or done
                    or time.monotonic() - lost_at > RECONNECT_FOR_S
                ):
                    raise
                logger.warning("connection lost (%s); joining again", error)
                await asyncio.sleep(RECONNECT_PAUSE_S)
    finally:
        report.seconds = time.monotonic() - started
        report.video_frames_sent = video.frames
        if isinstance(source, TestSource):
            report.source_frames_skipped = source.frames_skipped
        report.width, report.height = video.width, video.height
        video.stop()
        source.close()
    return report


async def _session(
    endpoint: Endpoint,
    source: MediaSource,
    video: MeteredTrack,
    report: PublishReport,
    options: PublishOptions,
    seconds: float | None,
    stop: asyncio.Event,
) -> str:
    """One signalling session and its peer connection, for ``seconds`` (None: until stopped or
    ended); raises a ``ClientError`` if the connection is lost."""
    async with connect(endpoint, name=options.name, verify_tls=options.verify_tls) as session:
        report.joined += 1
        if report.joined > 1:
            report.reconnects += 1
        if not session.welcome.consented:
            # The operator of this command accepts the recording notice on their own behalf.
            await session.send("consent", accepted=True)
        pc = new_peer_connection(session.welcome.ice_servers)
        try:
            return await _stream(session, pc, source, video, report, options, seconds, stop)
        finally:
            await pc.close()


async def _stream(
    session: SignallingSession,
    pc: RTCPeerConnection,
    source: MediaSource,
    video: MeteredTrack,
    report: PublishReport,
    options: PublishOptions,
    seconds: float | None,
    stop: asyncio.Event,
) -> str:
    # Lent, not given: aiortc stops a sender's track with its peer connection, and the next
    # session (after a lost connection) sends the same source.
    sender = pc.addTransceiver(Lent(video), direction="sendonly").sender
    pc.addTransceiver(Lent(source.audio), direction="sendrecv")
    consumers = TrackConsumers()

    def count_inspector_audio(_: object) -> None:
        report.inspector_audio_frames += 1

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        logger.info("receiving %s from the server", track.kind)
        if track.kind == "audio":
            consumers.consume(track, count_inspector_audio)

    async def on_message(message: Message) -> None:
        if message["type"] == "control":
            report.controls.append(await _answer_control(session, source, video, message))
        else:
            logger.debug("message type=%s", message["type"])

    reporter = asyncio.create_task(
        report_periodically(session, _sampler(sender, video)), name="stats"
    )
    try:
        return await Conversation(session, pc, on_message).run(seconds, stop)
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        with contextlib.suppress(Exception):
            report.video_bytes_sent = stat_total(
                await sender.getStats(), "outbound-rtp", "bytesSent", "video"
            )
        await consumers.stop()


async def _answer_control(
    session: SignallingSession, source: MediaSource, video: MeteredTrack, message: Message
) -> dict[str, Any]:
    action = message.get("action")
    if isinstance(action, str) and action in CONTROL_ACTIONS:
        result = await source.control(action, message.get("value"), video)
    else:
        result = ControlResult(ok=False, reason=f"unknown action {action!r}")
        action = str(action)
    fields = result.fields(action)
    logger.info("control action=%s value=%r ok=%s", action, message.get("value"), result.ok)
    await session.send("control_result", **fields)
    return fields


def _sampler(sender: RTCRtpSender, video: MeteredTrack) -> Callable[[], Awaitable[StatsFields]]:
    meter = RateMeter()

    async def sample() -> StatsFields:
        stats = await sender.getStats()
        sent = stat_total(stats, "outbound-rtp", "bytesSent", "video")
        rtt = stat_total(stats, "remote-inbound-rtp", "roundTripTime", "video")
        return figures(meter, sent, video.frames, (video.width, video.height), rtt)

    return sample

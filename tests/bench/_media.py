"""Test media for the recorder benchmarks: encoded once, replayed as packets or decoded frames.

``encode_media`` encodes a moving 640x480 pattern with temporal noise (so the VP8 rate control
really spends its ~1.2 Mbit/s) at 30 fps, a keyframe every second, and a 48 kHz stereo tone in
20 ms Opus frames, with PyAV. ``PacketTrack`` replays it the way the server's passthrough
receiver delivers it (``encoded_packet``: RTP clock timestamps from 0, keyframe flag);
``DecodingTrack`` replays it the way aiortc's receiver does by default (its own decoder, one
call per encoded frame), which is what aiortc's MediaRecorder gets to record.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from server.live.media.passthrough import encoded_packet, is_vp8_keyframe

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 1_200_000
AUDIO_BITRATE = 64_000
KEYFRAME_INTERVAL = FPS  # frames: one a second
SAMPLE_RATE = 48_000
AUDIO_FRAME = 960  # 20 ms, as WebRTC sends Opus
CLOCK_RATES = {"video": 90_000, "audio": 48_000}
CODECS = {
    "video": RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96),
    "audio": RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111
    ),
}


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    data: bytes
    pts: int  # in the RTP clock of its kind, from 0
    keyframe: bool


@dataclass(frozen=True, slots=True)
class EncodedMedia:
    seconds: float
    video: list[EncodedFrame]
    audio: list[EncodedFrame]

    def bitrate(self, kind: str) -> float:
        frames = self.video if kind == "video" else self.audio
        return sum(len(f.data) for f in frames) * 8 / self.seconds

    @property
    def keyframes(self) -> int:
        return sum(f.keyframe for f in self.video)

    def frames(self, kind: str) -> list[EncodedFrame]:
        return self.video if kind == "video" else self.audio

    def head(self, seconds: float) -> EncodedMedia:
        """The first ``seconds`` of it."""
        video = [f for f in self.video if f.pts < seconds * CLOCK_RATES["video"]]
        audio = [f for f in self.audio if f.pts < seconds * CLOCK_RATES["audio"]]
        return EncodedMedia(min(seconds, self.seconds), video, audio)


def encode_media(seconds: int) -> EncodedMedia:
    source: Any = av.open(
        f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds},noise=alls=12:allf=t",
        format="lavfi",
    )
    encoder: Any = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.framerate = FPS
    encoder.bit_rate = VIDEO_BITRATE
    encoder.gop_size = KEYFRAME_INTERVAL
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    video: list[EncodedFrame] = []

    def keep_video(packets: list[Any]) -> None:
        for packet in packets:
            data = bytes(packet)
            pts = int(packet.pts) * (CLOCK_RATES["video"] // FPS)
            video.append(EncodedFrame(data, pts, is_vp8_keyframe(data)))

    try:
        for index, frame in enumerate(source.decode(video=0)):
            frame = frame.reformat(format="yuv420p")
            frame.pict_type = av.video.frame.PictureType.NONE  # else every frame is a keyframe
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            keep_video(encoder.encode(frame))
        keep_video(encoder.encode(None))
    finally:
        source.close()

    tone: Any = av.open(
        f"sine=frequency=440:sample_rate={SAMPLE_RATE}:duration={seconds}", "r", "lavfi"
    )
    opus: Any = av.CodecContext.create("libopus", "w")
    opus.sample_rate, opus.layout, opus.format = SAMPLE_RATE, "stereo", "s16"
    opus.bit_rate = AUDIO_BITRATE
    opus.time_base = Fraction(1, SAMPLE_RATE)
    resampler = av.AudioResampler(
        format="s16", layout="stereo", rate=SAMPLE_RATE, frame_size=AUDIO_FRAME
    )
    audio: list[EncodedFrame] = []
    try:
        for chunk in tone.decode(audio=0):
            for frame in resampler.resample(chunk):
                for packet in opus.encode(frame):
                    audio.append(EncodedFrame(bytes(packet), len(audio) * AUDIO_FRAME, True))
    finally:
        tone.close()
    return EncodedMedia(float(seconds), video, audio)


class _ReplayTrack(MediaStreamTrack):
    """Frames of one kind, in real time from ``start`` (loop time) or as fast as possible."""

    def __init__(self, kind: str, frames: list[EncodedFrame], start: float | None) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames
        self._clock_rate = CLOCK_RATES[kind]
        self._start = start
        self._next = 0
        self.finished = asyncio.Event()

    async def _next_frame(self) -> EncodedFrame:
        if self._next >= len(self._frames):
            self.finished.set()
            self.stop()
            raise MediaStreamError
        frame = self._frames[self._next]
        self._next += 1
        if self._start is None:
            await asyncio.sleep(0)  # as fast as possible, but let the consumers run
        else:
            loop = asyncio.get_running_loop()
            due = self._start + frame.pts / self._clock_rate
            await asyncio.sleep(max(0.0, due - loop.time()))
        return frame


class PacketTrack(_ReplayTrack):
    """What a passthrough receiver's track yields: one ``av.Packet`` per encoded frame."""

    async def recv(self) -> av.Packet[Any]:
        frame = await self._next_frame()
        return encoded_packet(frame.data, frame.pts, self._clock_rate, frame.keyframe)


class DecodingTrack(_ReplayTrack):
    """What aiortc's receiver track yields by default: frames from its own decoder."""

    def __init__(self, kind: str, frames: list[EncodedFrame], start: float | None) -> None:
        super().__init__(kind, frames, start)
        self._decoder = get_decoder(CODECS[kind])
        self._decoded: list[av.VideoFrame | av.AudioFrame] = []

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        while not self._decoded:
            frame = await self._next_frame()
            decoded: Any = self._decoder.decode(JitterFrame(frame.data, frame.pts))
            self._decoded.extend(decoded)
        return self._decoded.pop(0)

"""Pre-encoded media for the load clients: encoded once per run with PyAV, replayed as packets.

The file format is private to the benchmarks: a JSON header line, then (kind, length, bytes)
records.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.bench._harness import AUDIO_CLOCK_RATE, AUDIO_FRAME_SAMPLES

_RECORD = struct.Struct(">BI")
VIDEO_DELTA, VIDEO_KEY, AUDIO = 0, 1, 2


@dataclass(frozen=True, slots=True)
class EncodedClip:
    """One loop of pre-encoded media: VP8 frames (data, keyframe) and 20 ms Opus packets."""

    video: list[tuple[bytes, bool]]
    audio: list[bytes]
    fps: int
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return len(self.video) / self.fps

    def video_kbps(self) -> float:
        return sum(len(data) for data, _ in self.video) * 8 / self.seconds / 1000

    def audio_kbps(self) -> float:
        return sum(len(data) for data in self.audio) * 8 / (len(self.audio) * 0.02) / 1000

    def describe(self) -> str:
        keyframes = sum(1 for _, key in self.video if key)
        return (
            f"{self.width}x{self.height} VP8 {self.fps} fps {self.video_kbps():.0f} kbps, "
            f"{keyframes} keyframes in {self.seconds:g} s; Opus 20 ms {self.audio_kbps():.0f} kbps"
        )

    def save(self, path: Path) -> None:
        with path.open("wb") as out:
            out.write(json.dumps([self.fps, self.width, self.height]).encode() + b"\n")
            for data, key in self.video:
                out.write(_RECORD.pack(VIDEO_KEY if key else VIDEO_DELTA, len(data)) + data)
            for data in self.audio:
                out.write(_RECORD.pack(AUDIO, len(data)) + data)

    @classmethod
    def load(cls, path: Path) -> EncodedClip:
        raw = path.read_bytes()
        header_end = raw.index(b"\n")
        fps, width, height = json.loads(raw[:header_end])
        video: list[tuple[bytes, bool]] = []
        audio: list[bytes] = []
        pos = header_end + 1
        while pos < len(raw):
            kind, length = _RECORD.unpack_from(raw, pos)
            pos += _RECORD.size
            data = raw[pos : pos + length]
            pos += length
            if kind == AUDIO:
                audio.append(data)
            else:
                video.append((data, kind == VIDEO_KEY))
        return cls(video, audio, int(fps), int(width), int(height))


def encode_clip(
    seconds: int = 10,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    video_bps: int = 1_500_000,
    keyframe_interval_s: int = 2,
) -> EncodedClip:
    """Encode ``seconds`` of lavfi testsrc (with noise, so it costs a camera's bitrate) as VP8
    with the settings aiortc's own encoder uses, and a tone as Opus."""
    frames = seconds * fps
    source = av.open(
        f"testsrc=size={width}x{height}:rate={fps},noise=alls=10:allf=t+u", format="lavfi"
    )
    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    encoder.bit_rate = video_bps
    encoder.gop_size = keyframe_interval_s * fps
    encoder.qmin, encoder.qmax = 2, 56
    encoder.options = {
        "bufsize": str(video_bps),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(video_bps),
        "maxrate": str(video_bps),
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    video: list[tuple[bytes, bool]] = []
    try:
        for index, frame in enumerate(source.decode(video=0)):
            if index >= frames:
                break
            picture = frame.reformat(format="yuv420p")
            # lavfi marks every frame as I: left so, libvpx would make each one a keyframe.
            picture.pict_type = av.video.frame.PictureType.NONE
            picture.pts, picture.time_base = index, Fraction(1, fps)
            video += [(bytes(p), bool(p.is_keyframe)) for p in encoder.encode(picture)]
        video += [(bytes(p), bool(p.is_keyframe)) for p in encoder.encode(None)]
    finally:
        source.close()
    return EncodedClip(video[:frames], _encode_tone(seconds), fps, width, height)


def _encode_tone(seconds: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = AUDIO_CLOCK_RATE
    encoder.format = "s16"
    encoder.layout = "mono"
    encoder.time_base = Fraction(1, AUDIO_CLOCK_RATE)
    encoder.bit_rate = 32_000
    packets: list[bytes] = []
    count = seconds * AUDIO_CLOCK_RATE // AUDIO_FRAME_SAMPLES
    for index in range(count):
        first = index * AUDIO_FRAME_SAMPLES
        t = np.arange(first, first + AUDIO_FRAME_SAMPLES, dtype=np.float64) / AUDIO_CLOCK_RATE
        samples = (np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = AUDIO_CLOCK_RATE
        frame.pts, frame.time_base = first, Fraction(1, AUDIO_CLOCK_RATE)
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]
    return packets[:count]

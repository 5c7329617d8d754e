"""Writing encoded packets into independently playable WebM segments, without decoding.

PyAV needs an encoder-capable stream (libvpx, libopus) to write a WebM header even when it only
muxes; nothing is encoded. Every call here blocks (file I/O), so callers run it off the event loop.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from recorder.storage import digest_stream

MUX_TIME_BASE = Fraction(1, 1000)  # WebM stores milliseconds
# The muxer keeps a cluster in memory until it ends; short clusters, flushed as they end, put
# all but the last second of an open segment on disk, where a crash (kill -9) cannot take it.
MUX_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}
CODECS = {"video": ("libvpx", "vp8"), "audio": ("libopus", "opus")}


def vp8_frame_size(keyframe: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1)."""
    if len(keyframe) < 10 or keyframe[3:6] != b"\x9d\x01\x2a":
        raise ValueError("not a VP8 keyframe")
    width, height = struct.unpack_from("<HH", keyframe, 6)
    return width & 0x3FFF, height & 0x3FFF


@dataclass(frozen=True, slots=True)
class ClosedSegment:
    path: Path
    sha256: str
    size: int
    first_pts: int
    last_pts: int
    time_base: Fraction
    frames: int
    keyframe_first: bool


class SegmentWriter:
    """One WebM file of one track. ``close()`` finalizes, fsyncs and hashes it."""

    def __init__(self, path: Path, kind: str, first: av.Packet[Any]) -> None:
        if kind not in CODECS:
            raise ValueError(f"unknown media kind {kind!r}")
        self.path = path
        self.kind = kind
        self._container: Any = av.open(str(path), "w", format="webm", options=MUX_OPTIONS)
        encoder, _ = CODECS[kind]
        self._stream: Any
        if kind == "video":
            width, height = vp8_frame_size(bytes(first))
            self._stream = self._container.add_stream(encoder, rate=30)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
        else:
            self._stream = self._container.add_stream(encoder, rate=48000)
            self._stream.layout = "stereo"
        self._stream.time_base = MUX_TIME_BASE
        self.first_pts = int(first.pts or 0)
        self.last_pts = self.first_pts
        self.time_base = first.time_base
        self.frames = 0
        self.keyframe_first = bool(first.is_keyframe)
        self.write(first)

    def write(self, packet: av.Packet[Any]) -> None:
        copy = av.Packet(bytes(packet))
        copy.pts = copy.dts = packet.pts
        copy.time_base = packet.time_base
        copy.is_keyframe = packet.is_keyframe
        copy.stream = self._stream
        self._container.mux(copy)
        self.last_pts = int(packet.pts or 0)
        self.frames += 1

    @property
    def duration_s(self) -> float:
        return float((self.last_pts - self.first_pts) * self.time_base)

    def close(self) -> ClosedSegment:
        self._container.close()
        with self.path.open("rb") as handle:
            sha256, size = digest_stream(handle)
            os.fsync(handle.fileno())
        return ClosedSegment(
            path=self.path,
            sha256=sha256,
            size=size,
            first_pts=self.first_pts,
            last_pts=self.last_pts,
            time_base=self.time_base,
            frames=self.frames,
            keyframe_first=self.keyframe_first,
        )


def remux_partial(source: Path, target: Path) -> ClosedSegment | None:
    """Copy every readable packet of a segment a crash left unfinished into a finalized file.

    Returns None when nothing can be read (the header never reached the disk).
    """
    try:
        container: Any = av.open(str(source))
    except (av.FFmpegError, OSError):
        return None
    writer: SegmentWriter | None = None
    try:
        stream = container.streams[0]
        kind = stream.type
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            if writer is None:
                writer = SegmentWriter(target, kind, packet)
            else:
                writer.write(packet)
    except (av.FFmpegError, IndexError, ValueError):
        pass  # the unwritten tail: everything before it is kept
    finally:
        container.close()
    return writer.close() if writer is not None else None

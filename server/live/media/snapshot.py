"""A snapshot of the applicant's video: the next keyframe from the relay, decoded to a PNG.

The relay forwards encoded VP8 without decoding it. A keyframe decodes on its own, so a fresh
decoder turns it into the full-resolution picture the publisher sent; nothing else is decoded.
Decoding and PNG encoding run off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2

from server.live.media.relay import TrackRelay

KEYFRAME_TIMEOUT_S = 3.0
FLOWING_WITHIN_S = 2.0


class SnapshotError(Exception):
    """No picture could be taken: the reason says why, in words for the inspector."""


@dataclass(frozen=True, slots=True)
class Keyframe:
    data: bytes
    pts: int
    time_base: Fraction
    received_wall: float


@dataclass(frozen=True, slots=True)
class Picture:
    png: bytes
    width: int
    height: int


def is_flowing(source: TrackRelay) -> bool:
    """True while the publisher is attached and sent a packet in the last two seconds."""
    last = source.stats.last_packet_monotonic
    return source.has_source and last is not None and time.monotonic() - last <= FLOWING_WITHIN_S


async def next_keyframe(
    source: TrackRelay, timeout_s: float = KEYFRAME_TIMEOUT_S, wall: Callable[[], float] = time.time
) -> Keyframe:
    """The next keyframe the publisher sends; subscribing requests one (PLI) at once.

    A new subscription starts at a keyframe (the relay skips to one), so its first packet is it.
    """
    if not is_flowing(source):
        raise SnapshotError("no video is flowing")
    subscription = source.subscribe("snapshot", maxsize=4)
    try:
        async with asyncio.timeout(timeout_s):
            packet = await subscription.get()
        received = wall()
    except TimeoutError:
        reason = f"no video is flowing (no keyframe within {timeout_s:g} s)"
        raise SnapshotError(reason) from None
    finally:
        subscription.close()
    if packet is None:
        raise SnapshotError("no video is flowing (the video ended)")
    time_base = packet.time_base or Fraction(1, 90_000)
    return Keyframe(bytes(packet), int(packet.pts or 0), Fraction(time_base), received)


def decode_keyframe(data: bytes, codec: str = "vp8") -> Picture:
    """Decode one keyframe with a fresh decoder and encode it as PNG (blocking)."""
    decoder = av.CodecContext.create(codec, "r")
    if not isinstance(decoder, av.VideoCodecContext):
        raise SnapshotError(f"{codec} is not a video codec")
    try:
        frames = [*decoder.decode(av.Packet(data)), *decoder.decode(None)]
    except av.FFmpegError as exc:
        raise SnapshotError(f"the keyframe did not decode: {exc}") from exc
    if not frames:
        raise SnapshotError("the keyframe did not decode to a picture")
    frame = frames[0]
    image = frame.to_ndarray(format="bgr24")
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise SnapshotError("the picture could not be encoded as PNG")
    return Picture(encoded.tobytes(), int(frame.width), int(frame.height))


async def take_snapshot(
    source: TrackRelay, timeout_s: float = KEYFRAME_TIMEOUT_S, wall: Callable[[], float] = time.time
) -> tuple[Keyframe, Picture]:
    keyframe = await next_keyframe(source, timeout_s, wall)
    picture = await asyncio.to_thread(decode_keyframe, keyframe.data)
    return keyframe, picture

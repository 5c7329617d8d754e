"""A VP8 keyframe decodes alone, at full resolution, into a PNG of the same picture."""

from __future__ import annotations

import fractions

import av
import cv2
import numpy as np
import pytest

from server.live.media.snapshot import SnapshotError, decode_keyframe


def keyframe_of(image_bgr: np.ndarray) -> bytes:
    height, width = image_bgr.shape[:2]
    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = 2_000_000
    encoder.time_base = fractions.Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(image_bgr, format="bgr24").reformat(format="yuv420p")
    frame.pts = 0
    packets = [*encoder.encode(frame), *encoder.encode(None)]
    assert packets[0].is_keyframe
    return bytes(packets[0])


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720)])
def test_keyframe_becomes_a_full_resolution_png_of_the_picture(width: int, height: int) -> None:
    ys, xs = np.mgrid[0:height, 0:width]
    image = np.stack(
        [(xs * 255 // width), (ys * 255 // height), np.full_like(xs, 128)], axis=-1
    ).astype(np.uint8)
    picture = decode_keyframe(keyframe_of(image))
    assert (picture.width, picture.height) == (width, height)
    assert picture.png.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = cv2.imdecode(np.frombuffer(picture.png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert decoded.shape == (height, width, 3)
    # Lossy VP8 at a generous bitrate: the gradient survives within a few levels.
    assert float(np.abs(decoded.astype(int) - image.astype(int)).mean()) < 4


def test_bytes_that_are_no_keyframe_are_refused() -> None:
    with pytest.raises(SnapshotError, match="decode"):
        decode_keyframe(b"\x00" * 64)

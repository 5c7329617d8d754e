"""The moving test picture: colour gradients, a sweeping bar, a frame counter and the time code.

Frames are planar I420 (``yuv420p``) arrays of shape ``(height * 3 // 2, width)``, the layout
``av.VideoFrame.from_ndarray(..., format="yuv420p")`` takes, so nothing is converted per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np
import numpy.typing as npt

from client import timecode

I420 = npt.NDArray[np.uint8]

_MIN_SIZE = 128
_MAX_SIZE = 4096


@dataclass(frozen=True, slots=True)
class PatternSize:
    """Width and height of the test picture, both even (I420 halves the chroma planes)."""

    width: int
    height: int

    def __post_init__(self) -> None:
        for name, value in (("width", self.width), ("height", self.height)):
            if not _MIN_SIZE <= value <= _MAX_SIZE or value % 2:
                raise ValueError(
                    f"{name} must be an even number from {_MIN_SIZE} to {_MAX_SIZE}, got {value}"
                )


@dataclass(slots=True)
class TestPattern:
    """Renders frame ``n`` of the moving pattern, stamped with a capture time."""

    __test__ = False  # not a pytest class despite the name

    size: PatternSize
    _ramp_y: npt.NDArray[np.int32] = field(init=False, repr=False)
    _ramp_c: npt.NDArray[np.int32] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        width, height = self.size.width, self.size.height
        rows, columns = np.mgrid[0:height, 0:width]
        self._ramp_y = (columns + rows // 2).astype(np.int32)
        half_rows, half_columns = np.mgrid[0 : height // 2, 0 : width // 2]
        self._ramp_c = (half_columns - half_rows).astype(np.int32)

    def render(self, frame_number: int, capture_ms: int) -> I420:
        """Frame ``frame_number`` captured at ``capture_ms`` (Unix epoch, UTC)."""
        width, height = self.size.width, self.size.height
        picture = np.empty((height * 3 // 2, width), dtype=np.uint8)
        luma = picture[:height]
        # A diagonal ramp drifting left plus a bright bar sweeping right: motion everywhere.
        luma[:] = (((self._ramp_y + 3 * frame_number) % 256) * 3 // 4 + 32).astype(np.uint8)
        bar_width = max(width // 16, 8)
        bar_left = (frame_number * max(width // 120, 2)) % (width + bar_width) - bar_width
        luma[:, max(bar_left, 0) : max(bar_left + bar_width, 0)] = 230
        self._draw_caption(luma, frame_number, capture_ms)
        timecode.write(luma, timecode.TimeCode.for_frame(capture_ms, frame_number))
        chroma = height * width // 4
        planes = picture[height:].reshape(-1)
        planes[:chroma] = ((self._ramp_c + 2 * frame_number) % 256).astype(np.uint8).reshape(-1)
        planes[chroma:] = ((255 - self._ramp_c - frame_number) % 256).astype(np.uint8).reshape(-1)
        return picture

    def _draw_caption(self, luma: npt.NDArray[np.uint8], frame_number: int, ms: int) -> None:
        """Frame number and wall clock in large digits under the time code band."""
        height = self.size.height
        scale = height / 480
        clock = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        top = timecode.band_height(height) + round(12 * scale)
        box_bottom = top + round(96 * scale)
        luma[top:box_bottom, : round(self.size.width * 0.75)] = 16
        for line, text in enumerate((f"#{frame_number:06d}", f"{clock} UTC")):
            baseline = top + round((40 + 44 * line) * scale)
            cv2.putText(
                luma,
                text,
                (round(12 * scale), baseline),
                cv2.FONT_HERSHEY_SIMPLEX,
                1.2 * scale,
                235,
                max(round(2 * scale), 1),
                cv2.LINE_AA,
            )

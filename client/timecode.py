"""Capture time written into the pixels of a video frame, and read back after a lossy codec.

The code is a band of large black and white cells across the top of the luma plane: 3 rows of
32 cells, one bit per cell, most significant bit first. The 96 bits are a 48-bit capture time
(milliseconds since the Unix epoch, UTC), a 16-bit frame index and a CRC-32 of those 8 bytes.

The layout is proportional to the frame (a cell is 1/32 of the width and 1/20 of the height,
20x24 pixels at 640x480, 40x36 at 1280x720), so a frame scaled on the way still reads. A reader
only looks at the middle of each cell, where codec ringing at the cell edges does not reach, and
refuses a frame outright when any cell is neither clearly dark nor clearly light or when the
checksum does not match: a misread gives ``None``, never a wrong time.

Pure: numpy and the standard library only.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

COLUMNS: Final = 32
ROWS: Final = 3
BITS: Final = COLUMNS * ROWS
TIME_BITS: Final = 48
INDEX_BITS: Final = 16
CELL_HEIGHT_FRACTION: Final = 1 / 20
"""Height of one row of cells as a fraction of the frame height."""

DARK: Final = 16
LIGHT: Final = 235
"""Luma of a 0 bit and a 1 bit (video range black and white)."""

_THRESHOLD: Final = (DARK + LIGHT) / 2
_MARGIN: Final = 48.0
"""A cell whose mean luma is within this distance of the threshold makes the frame unreadable."""

_MIN_WIDTH: Final = COLUMNS * 4
_MIN_HEIGHT: Final = 40

Luma = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class TimeCode:
    """What a frame carries: when it was captured and its index in the source's sequence."""

    capture_ms: int
    frame_index: int

    def __post_init__(self) -> None:
        if not 0 <= self.capture_ms < 1 << TIME_BITS:
            raise ValueError(f"capture_ms {self.capture_ms} does not fit in {TIME_BITS} bits")
        if not 0 <= self.frame_index < 1 << INDEX_BITS:
            raise ValueError(f"frame_index {self.frame_index} does not fit in {INDEX_BITS} bits")

    @classmethod
    def for_frame(cls, capture_ms: int, frame_number: int) -> TimeCode:
        """The code of the ``frame_number``-th frame; the index wraps at 2**16."""
        return cls(capture_ms=capture_ms, frame_index=frame_number % (1 << INDEX_BITS))

    def payload(self) -> bytes:
        """The 8 bytes the checksum covers: time then index, big-endian."""
        return self.capture_ms.to_bytes(6, "big") + self.frame_index.to_bytes(2, "big")

    def bits(self) -> npt.NDArray[np.bool_]:
        """All 96 bits, most significant first: payload then CRC-32."""
        data = self.payload() + zlib.crc32(self.payload()).to_bytes(4, "big")
        return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.bool_)


def band_height(frame_height: int) -> int:
    """How many rows of pixels at the top of the frame the code occupies."""
    return _edge(ROWS, frame_height * CELL_HEIGHT_FRACTION)


def write(luma: Luma, code: TimeCode) -> None:
    """Paint ``code`` into the top band of ``luma`` (a 2-D uint8 plane), in place."""
    height, width = _check_plane(luma)
    cells = code.bits().reshape(ROWS, COLUMNS)
    row_edges = _edges(ROWS, height * CELL_HEIGHT_FRACTION)
    column_edges = _edges(COLUMNS, width / COLUMNS)
    for row in range(ROWS):
        for column in range(COLUMNS):
            value = LIGHT if cells[row, column] else DARK
            luma[
                row_edges[row] : row_edges[row + 1],
                column_edges[column] : column_edges[column + 1],
            ] = value


def read(luma: Luma) -> TimeCode | None:
    """The code painted in ``luma``, or ``None`` when the frame carries none or it is damaged."""
    try:
        height, width = _check_plane(luma)
    except ValueError:
        return None
    means = _cell_means(luma, height, width)
    if bool(np.any(np.abs(means - _THRESHOLD) < _MARGIN)):
        return None
    data = np.packbits((means > _THRESHOLD).reshape(-1)).tobytes()
    payload, checksum = data[:8], data[8:]
    if zlib.crc32(payload).to_bytes(4, "big") != checksum:
        return None
    return TimeCode(
        capture_ms=int.from_bytes(payload[:6], "big"),
        frame_index=int.from_bytes(payload[6:], "big"),
    )


def _cell_means(luma: Luma, height: int, width: int) -> npt.NDArray[np.float64]:
    """Mean luma of the middle half (each way) of every cell, shape (ROWS, COLUMNS)."""
    row_edges = _edges(ROWS, height * CELL_HEIGHT_FRACTION)
    column_edges = _edges(COLUMNS, width / COLUMNS)
    means = np.empty((ROWS, COLUMNS), dtype=np.float64)
    for row in range(ROWS):
        top, bottom = _middle(row_edges[row], row_edges[row + 1])
        strip = luma[top:bottom].astype(np.float64)
        for column in range(COLUMNS):
            left, right = _middle(column_edges[column], column_edges[column + 1])
            means[row, column] = float(strip[:, left:right].mean())
    return means


def _check_plane(luma: Luma) -> tuple[int, int]:
    if luma.ndim != 2 or luma.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 luma plane, got {luma.ndim}-D {luma.dtype}")
    height, width = luma.shape
    if width < _MIN_WIDTH or height < _MIN_HEIGHT:
        raise ValueError(f"frame {width}x{height} is too small to carry a time code")
    return int(height), int(width)


def _edge(index: int, step: float) -> int:
    return round(index * step)


def _edges(count: int, step: float) -> list[int]:
    return [_edge(index, step) for index in range(count + 1)]


def _middle(start: int, end: int) -> tuple[int, int]:
    quarter = (end - start) // 4
    return start + quarter, max(end - quarter, start + quarter + 1)

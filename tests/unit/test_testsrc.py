"""The testsrc time code: written into pixels, read back exactly or not at all."""

from __future__ import annotations

import fractions
import time

import av
import numpy as np
import pytest

from client import timecode
from client.pattern import PatternSize, TestPattern
from client.testsrc import TestPatternTrack, ToneTrack
from client.timecode import TimeCode
from client.watch import luma_plane

CAPTURE_MS = 1_780_000_000_123  # 2026, needs 41 bits


def _stamped(width: int, height: int, code: TimeCode) -> timecode.Luma:
    luma = np.full((height, width), 128, dtype=np.uint8)
    timecode.write(luma, code)
    return luma


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720), (320, 240), (1920, 1080)])
def test_written_time_code_reads_back_exactly(width: int, height: int) -> None:
    code = TimeCode(capture_ms=CAPTURE_MS, frame_index=4321)
    assert timecode.read(_stamped(width, height, code)) == code


@pytest.mark.parametrize("capture_ms", [0, 1, CAPTURE_MS, (1 << 48) - 1])
def test_extreme_times_round_trip(capture_ms: int) -> None:
    code = TimeCode(capture_ms=capture_ms, frame_index=0)
    assert timecode.read(_stamped(640, 480, code)) == code


def test_frame_index_wraps_at_16_bits() -> None:
    assert TimeCode.for_frame(CAPTURE_MS, 65_536 + 7).frame_index == 7


def test_time_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="48 bits"):
        TimeCode(capture_ms=1 << 48, frame_index=0)


def test_time_code_survives_halving_the_picture() -> None:
    code = TimeCode(capture_ms=CAPTURE_MS, frame_index=99)
    luma = _stamped(1280, 720, code).astype(np.uint16)
    halved = (
        (luma[0::2, 0::2] + luma[1::2, 0::2] + luma[0::2, 1::2] + luma[1::2, 1::2]) // 4
    ).astype(np.uint8)
    assert timecode.read(halved) == code


def test_one_flipped_cell_gives_none_not_a_wrong_time() -> None:
    luma = _stamped(640, 480, TimeCode(capture_ms=CAPTURE_MS, frame_index=1))
    cell_width, cell_height = 640 // timecode.COLUMNS, 480 // 20
    column = 40 // cell_width  # a cell of the time field
    cell = luma[0:cell_height, column * cell_width : (column + 1) * cell_width]
    cell[:] = np.where(cell > 128, timecode.DARK, timecode.LIGHT)
    assert timecode.read(luma) is None


def test_grey_cell_gives_none() -> None:
    luma = _stamped(640, 480, TimeCode(capture_ms=CAPTURE_MS, frame_index=1))
    luma[24:48, 100:120] = 128
    assert timecode.read(luma) is None


def test_frames_without_a_time_code_read_as_none() -> None:
    rng = np.random.default_rng(7)
    assert timecode.read(np.zeros((480, 640), dtype=np.uint8)) is None
    assert timecode.read(np.full((480, 640), 255, dtype=np.uint8)) is None
    for _ in range(200):
        noise = rng.integers(0, 2, size=(480, 640), dtype=np.uint8) * 255
        assert timecode.read(noise) is None
    for _ in range(200):
        # Clean black/white cells with random bits: only the checksum can refuse them.
        bits = rng.integers(0, 2, size=(timecode.ROWS, timecode.COLUMNS)).astype(bool)
        cells = np.where(bits, timecode.LIGHT, timecode.DARK).astype(np.uint8)
        luma = np.kron(cells, np.ones((24, 20), dtype=np.uint8))
        assert timecode.read(np.vstack([luma, np.zeros((480 - 72, 640), np.uint8)])) is None


def test_too_small_or_wrong_shaped_planes_read_as_none() -> None:
    assert timecode.read(np.zeros((20, 20), dtype=np.uint8)) is None
    assert timecode.read(np.zeros((480, 640, 3), dtype=np.uint8)) is None


def test_pattern_frames_carry_their_time_and_move() -> None:
    pattern = TestPattern(PatternSize(640, 480))
    first = pattern.render(0, CAPTURE_MS)
    later = pattern.render(10, CAPTURE_MS + 333)
    assert first.shape == (720, 640)
    assert timecode.read(first[:480]) == TimeCode(CAPTURE_MS, 0)
    assert timecode.read(later[:480]) == TimeCode(CAPTURE_MS + 333, 10)
    below_code = slice(timecode.band_height(480), 480)
    assert not np.array_equal(first[below_code], later[below_code])


def test_odd_pattern_size_is_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        PatternSize(641, 480)


@pytest.mark.parametrize(
    ("width", "height", "bit_rate"), [(640, 480, 250_000), (1280, 720, 400_000)]
)
def test_time_code_survives_vp8_at_modest_bitrate(width: int, height: int, bit_rate: int) -> None:
    """A real libvpx encode and decode, the codec WebRTC uses, at about aiortc's start bitrate."""
    pattern = TestPattern(PatternSize(width, height))
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.bit_rate = bit_rate
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    decoder = av.CodecContext.create("vp8", "r")
    sent = {n: TimeCode.for_frame(CAPTURE_MS + 33 * n, n) for n in range(60)}
    read: list[TimeCode | None] = []
    for n, code in sent.items():
        frame = av.VideoFrame.from_ndarray(pattern.render(n, code.capture_ms), format="yuv420p")
        frame.pts = n
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                assert (decoded.width, decoded.height) == (width, height)
                read.append(timecode.read(luma_plane(decoded)))
    for packet in encoder.encode(None):
        for decoded in decoder.decode(packet):
            read.append(timecode.read(luma_plane(decoded)))
    assert len(read) == len(sent)
    assert read == list(sent.values())


async def test_test_pattern_track_paces_frames_and_stamps_their_capture_time() -> None:
    track = TestPatternTrack(PatternSize(320, 240), fps=50)
    started = time.monotonic()
    frames = [await track.recv() for _ in range(10)]
    elapsed = time.monotonic() - started
    track.stop()
    assert elapsed >= 9 / 50 * 0.9  # paced to the wall clock, not as fast as possible
    assert [frame.pts for frame in frames] == [n * 90_000 // 50 for n in range(10)]
    codes = [timecode.read(luma_plane(frame)) for frame in frames]
    assert [code.frame_index for code in codes if code is not None] == list(range(10))
    now_ms = time.time_ns() // 1_000_000
    assert all(code is not None and 0 <= now_ms - code.capture_ms < 5_000 for code in codes)


async def test_tone_track_gives_20_ms_of_48_khz_mono_per_frame() -> None:
    track = ToneTrack(frequency_hz=1000.0, amplitude=0.5)
    frames = [await track.recv() for _ in range(3)]
    track.stop()
    assert [frame.pts for frame in frames] == [0, 960, 1920]
    assert all(frame.sample_rate == 48_000 and frame.samples == 960 for frame in frames)
    samples = frames[0].to_ndarray()
    assert samples.shape == (1, 960)
    assert 0.45 * 32767 < float(np.abs(samples).max()) <= 0.5 * 32767 + 1

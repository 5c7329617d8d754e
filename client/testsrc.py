"""Synthetic media tracks paced to the wall clock: the time-coded test picture and a tone."""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from client.pattern import PatternSize, TestPattern

VIDEO_CLOCK_RATE = 90_000
AUDIO_SAMPLE_RATE = 48_000
AUDIO_FRAME_SAMPLES = AUDIO_SAMPLE_RATE // 50  # 20 ms
LATE_FRAMES_BEFORE_SKIP = 2


class TestPatternTrack(MediaStreamTrack):
    """Video: the moving test picture, each frame stamped with its capture time (UTC ms)."""

    __test__ = False
    kind = "video"

    def __init__(self, size: PatternSize, fps: float) -> None:
        super().__init__()
        if not 1 <= fps <= 120:
            raise ValueError(f"fps must be from 1 to 120, got {fps}")
        self._pattern = TestPattern(size)
        self._fps = fps
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._start: float | None = None
        self._next_number = 0
        self.frames_sent = 0
        self.frames_skipped = 0
        """Frames not produced because the consumer fell behind, as a real camera drops them."""

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        number = self._next_number
        due = self._start + number / self._fps
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > LATE_FRAMES_BEFORE_SKIP / self._fps:
            number = int((now - self._start) * self._fps)
            self.frames_skipped += number - self._next_number
        picture = self._pattern.render(number, time.time_ns() // 1_000_000)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = round(number * VIDEO_CLOCK_RATE / self._fps)
        frame.time_base = self._time_base
        self._next_number = number + 1
        self.frames_sent += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """Audio: a sine tone (or silence at amplitude 0), 48 kHz mono s16 in 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency_hz: float = 440.0, amplitude: float = 0.2) -> None:
        super().__init__()
        if not 0 <= amplitude <= 1:
            raise ValueError(f"amplitude must be from 0 to 1, got {amplitude}")
        if not 20 <= frequency_hz <= AUDIO_SAMPLE_RATE / 2:
            raise ValueError(f"frequency must be from 20 Hz to Nyquist, got {frequency_hz}")
        self._frequency = frequency_hz
        self._amplitude = amplitude
        self._time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self._start: float | None = None
        self.frames_sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        pts = self.frames_sent * AUDIO_FRAME_SAMPLES
        due = self._start + pts / AUDIO_SAMPLE_RATE
        if due > now:
            await asyncio.sleep(due - now)
        frame = av.AudioFrame.from_ndarray(self._samples(pts), format="s16", layout="mono")
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = pts
        frame.time_base = self._time_base
        self.frames_sent += 1
        return frame

    def _samples(self, first: int) -> np.ndarray[tuple[int, int], np.dtype[np.int16]]:
        index = np.arange(first, first + AUDIO_FRAME_SAMPLES, dtype=np.float64)
        wave = np.sin(2 * math.pi * self._frequency * index / AUDIO_SAMPLE_RATE)
        scaled = np.round(wave * self._amplitude * 32767).astype(np.int16)
        return scaled.reshape(1, -1)

"""Wall-clock time, injectable. Times are UTC and name their source."""

from __future__ import annotations

import time
from typing import Protocol

from recorder.clock import CLOCK_SOURCE, utc_iso

__all__ = ["CLOCK_SOURCE", "Clock", "SystemClock", "millis", "utc_iso"]


def millis(seconds: float) -> int:
    """Whole milliseconds since the epoch, as leases and challenges keep time in the database."""
    return int(seconds * 1000)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

"""Wall-clock time, injectable. Times are UTC and name their source."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

CLOCK_SOURCE = "server-system-clock"


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, UTC."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


def utc_iso(seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``: ``2026-11-25T08:00:00.000Z``."""
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"

"""Times in the evidence are UTC, millisecond ISO 8601, and name their source (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

CLOCK_SOURCE = "server-system-clock"


def utc_iso(seconds: float) -> str:
    """``2026-11-25T08:00:00.000Z`` for seconds since the Unix epoch."""
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"

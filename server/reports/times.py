# ruff: noqa: RUF001, RUF002 - Chinese text uses full-width punctuation on purpose
"""How a report prints a time: in its time zone (北京时间 by default) for people, and as the
chained UTC with its source for the evidence tables (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from server.settings import DEFAULT_REPORT_TIMEZONE, check_timezone

BEIJING_ZONE = "Asia/Shanghai"
# The sources a report's times come from (the chain's ``clock`` names the server's).
SERVER_CLOCK = "服务器时钟"
PHONE_CLOCK = "手机时间"
CLOCK_NAMES = {"server-system-clock": SERVER_CLOCK}


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _offset(stamp: datetime) -> str:
    delta = stamp.utcoffset()
    minutes = round(delta.total_seconds() / 60) if delta is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True, slots=True)
class ReportTimes:
    """A report's time zone: ``Asia/Shanghai`` prints ``2026-12-07 20:15:03 北京时间``, another
    zone ``2026-12-07 20:15:03 (UTC+05:00 Asia/Tashkent)``; a text that is no time prints as is."""

    zone: str = DEFAULT_REPORT_TIMEZONE
    _info: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_info", check_timezone(self.zone))

    @property
    def is_beijing(self) -> bool:
        return self.zone == BEIJING_ZONE

    @property
    def name(self) -> str:
        """What a column header calls the zone: 北京时间, or the IANA name."""
        return "北京时间" if self.is_beijing else self.zone

    def description(self, text: str) -> str:
        """The zone and its offset at ``text``: ``北京时间（Asia/Shanghai，UTC+08:00）``."""
        try:
            offset = _offset(parse_utc(text).astimezone(self._info))
        except ValueError:
            offset = ""
        detail = "，".join(part for part in (self.zone, offset) if part)
        return f"{self.name}（{detail}）" if self.is_beijing else f"{self.zone}（{offset}）"

    def bare(self, text: str | None) -> str:
        """``2026-12-07 20:15:03``: the local time alone, for a cell whose header names the zone."""
        if not text:
            return "—"
        try:
            return f"{parse_utc(text).astimezone(self._info):%Y-%m-%d %H:%M:%S}"
        except ValueError:
            return text

    def local(self, text: str | None) -> str:
        """``2026-12-07 20:15:03 北京时间`` or ``2026-12-07 20:15:03 (UTC+08:00 Asia/Shanghai)``."""
        if not text:
            return "—"
        try:
            stamp = parse_utc(text).astimezone(self._info)
        except ValueError:
            return text
        if self.is_beijing:
            return f"{stamp:%Y-%m-%d %H:%M:%S} 北京时间"
        return f"{stamp:%Y-%m-%d %H:%M:%S} ({_offset(stamp)} {self.zone})"

    @staticmethod
    def utc(text: str | None, source: str = SERVER_CLOCK) -> str:
        """``UTC 2026-12-07 12:15:03.120（服务器时钟）``: the chained UTC, to its milliseconds, and
        where it came from."""
        if not text:
            return "—"
        try:
            stamp = parse_utc(text)
        except ValueError:
            return text
        millis = f".{stamp.microsecond // 1000:03d}" if "." in text else ""
        return f"UTC {stamp:%Y-%m-%d %H:%M:%S}{millis}（{CLOCK_NAMES.get(source, source)}）"

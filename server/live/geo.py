"""Where the applicant is (pure): a validated position fix and its distance to the site."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from recorder.clock import utc_iso

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
MAX_ACCURACY_M = 100_000.0
MAX_CLOCK_SKEW_S = 600.0  # a phone's fix time may differ this much from the server's clock


class LocationError(ValueError):
    """A fix that cannot be true or cannot be read; the message says which field and why."""


def parse_fix_time(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 time with an explicit offset (``Z`` or ``+08:00``)."""
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as exc:
        raise LocationError(
            "field 'at' must be an ISO 8601 time such as 2026-01-01T08:00:00Z"
        ) from exc
    if stamp.tzinfo is None:
        raise LocationError("field 'at' must name its time zone (end with Z or an offset)")
    return stamp.astimezone(UTC).timestamp()


def decimal_text(value: float, places: int) -> str:
    """A number for the chain, whose canonical JSON has no floats: fixed decimals, no ``-0``."""
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


@dataclass(frozen=True, slots=True)
class LocationFix:
    """One position reported by the applicant's device; its time is the device's clock."""

    lat: float
    lon: float
    accuracy_m: float
    fix_at: float  # seconds since the epoch, UTC, as the device stated it

    def __post_init__(self) -> None:
        for name, value in (("lat", self.lat), ("lon", self.lon), ("accuracy", self.accuracy_m)):
            if not math.isfinite(value):
                raise LocationError(f"field '{name}' must be a finite number")
        if not -90 <= self.lat <= 90:
            raise LocationError("field 'lat' must be between -90 and 90")
        if not -180 <= self.lon <= 180:
            raise LocationError("field 'lon' must be between -180 and 180")
        if not 0 <= self.accuracy_m <= MAX_ACCURACY_M:
            raise LocationError(f"field 'accuracy' must be between 0 and {MAX_ACCURACY_M:g} m")

    @classmethod
    def received(cls, lat: float, lon: float, accuracy: float, at: str, now: float) -> LocationFix:
        """A fix as sent by a device, checked against the server's clock ``now``."""
        fix_at = parse_fix_time(at)
        if abs(fix_at - now) > MAX_CLOCK_SKEW_S:
            raise LocationError(
                f"field 'at' is more than {MAX_CLOCK_SKEW_S / 60:g} minutes from the server's"
                f" time {utc_iso(now)}"
            )
        return cls(float(lat), float(lon), float(accuracy), fix_at)

    def distance_to(self, lat: float, lon: float) -> float:
        return haversine_m(self.lat, self.lon, lat, lon)

    def evidence(self) -> dict[str, str]:
        """The fix as chain body fields: decimal strings (about 1 cm for 7 places of degrees)."""
        return {
            "lat": decimal_text(self.lat, 7),
            "lon": decimal_text(self.lon, 7),
            "accuracy_m": decimal_text(self.accuracy_m, 1),
            "fix_at": utc_iso(self.fix_at),
        }


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres on a spherical Earth (error under 0.5 %)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))

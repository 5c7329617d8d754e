"""Site coordinates copied from Chinese maps, converted to the WGS-84 that phones report (pure).

Maps published in China show GCJ-02 (高德 Amap, 腾讯 Tencent, Apple Maps in China) or BD-09
(百度 Baidu), offset from WGS-84 by a few hundred metres: a site copied from them and compared
with a phone's fix would put the applicant that far away. GCJ-02 is WGS-84 plus an offset given
by a published formula (the "Krasovsky" variant: ``A`` and ``EE`` below) inside a rectangle
around China; BD-09 is GCJ-02 rotated and shifted by another published formula. Going back,
BD-09 → GCJ-02 has a closed form and GCJ-02 → WGS-84 is found by iterating the forward offset
to 1e-9° (well under a millimetre). Points outside the rectangle are not shifted by either map,
so they are kept as they are. docs/archive.md ("Site coordinates") records the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

A = 6378245.0  # semi-major axis of the Krasovsky 1940 ellipsoid, as the GCJ-02 formula uses it
EE = 0.00669342162296594323  # its first eccentricity squared
BD_X_PI = math.pi * 3000.0 / 180.0
INVERSE_TOLERANCE_DEG = 1e-9
INVERSE_MAX_STEPS = 30

WGS84, GCJ02, BD09 = "wgs84", "gcj02", "bd09"
SYSTEMS = (WGS84, GCJ02, BD09)


def in_china(lat: float, lon: float) -> bool:
    """The rectangle inside which Chinese maps shift coordinates (the published bound)."""
    return 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271


def _offset(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 minus WGS-84 (degrees of latitude, longitude) at the WGS-84 point."""
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    common = 20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lat += common * 2.0 / 3.0
    d_lat += (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * math.sin(y / 12.0 * pi) + 320.0 * math.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    d_lon += common * 2.0 / 3.0
    d_lon += (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = math.radians(lat)
    magic = 1.0 - EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (A / sqrt_magic * math.cos(rad_lat) * pi)
    return d_lat, d_lon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if not in_china(lat, lon):
        return lat, lon
    d_lat, d_lon = _offset(lat, lon)
    return lat + d_lat, lon + d_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 is (lat, lon): fixed-point iteration of the forward offset
    (the offset changes by under 1e-4 per degree, so each step gains four digits)."""
    if not in_china(lat, lon):
        return lat, lon
    w_lat, w_lon = lat, lon
    for _ in range(INVERSE_MAX_STEPS):
        g_lat, g_lon = wgs84_to_gcj02(w_lat, w_lon)
        e_lat, e_lon = g_lat - lat, g_lon - lon
        w_lat, w_lon = w_lat - e_lat, w_lon - e_lon
        if abs(e_lat) < INVERSE_TOLERANCE_DEG and abs(e_lon) < INVERSE_TOLERANCE_DEG:
            break
    return w_lat, w_lon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    if not in_china(lat, lon):
        return lat, lon
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if not in_china(lat, lon):
        return lat, lon
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * BD_X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def to_wgs84(lat: float, lon: float, system: str) -> tuple[float, float]:
    """(lat, lon) of ``system`` (``wgs84``, ``gcj02`` or ``bd09``) in WGS-84."""
    if system == WGS84:
        return lat, lon
    if system == GCJ02:
        return gcj02_to_wgs84(lat, lon)
    if system == BD09:
        return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))
    raise ValueError(f"coordinate system {system!r} is not one of {', '.join(SYSTEMS)}")


@dataclass(frozen=True, slots=True)
class SiteCoordinates:
    """A case's site as entered (``input_lat``/``input_lon`` in ``system``) and in WGS-84."""

    system: str
    input_lat: float
    input_lon: float
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"coordinate system {self.system!r} is not one of {SYSTEMS}")

    @classmethod
    def entered(cls, lat: float, lon: float, system: str) -> SiteCoordinates:
        """The site as entered, converted; a converted result is rounded to 7 decimals (1 cm),
        WGS-84 input is kept exactly."""
        wgs_lat, wgs_lon = to_wgs84(lat, lon, system)
        if system != WGS84:
            wgs_lat, wgs_lon = round(wgs_lat, 7), round(wgs_lon, 7)
        return cls(system, lat, lon, wgs_lat, wgs_lon)

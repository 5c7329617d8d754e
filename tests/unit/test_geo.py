"""Position fixes and distances (pure)."""

from __future__ import annotations

import pytest

from server.live.geo import LocationError, LocationFix, decimal_text, haversine_m, parse_fix_time


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(30.2741, 120.1551, 30.2741, 120.1551) == 0


def test_antipodes_are_half_the_circumference_apart() -> None:
    assert haversine_m(0, 0, 0, 180) == pytest.approx(20_015_087, rel=1e-3)


def test_chain_decimals_are_fixed_and_never_negative_zero() -> None:
    assert decimal_text(-0.00000001, 7) == "0.0000000"
    assert decimal_text(-33.8, 7) == "-33.8000000"
    assert decimal_text(12.25, 1) == "12.2"  # banker's rounding of the binary value, stable


def test_fix_time_needs_a_zone_and_is_checked_against_the_server_clock() -> None:
    assert parse_fix_time("1970-01-01T08:00:00+08:00") == 0
    with pytest.raises(LocationError, match="time zone"):
        parse_fix_time("2026-01-01T08:00:00")
    with pytest.raises(LocationError, match="10 minutes"):
        LocationFix.received(1, 2, 3, "1970-01-01T00:10:01Z", now=0)
    fix = LocationFix.received(1, 2, 3, "1970-01-01T00:10:00Z", now=0)
    assert fix.evidence()["fix_at"] == "1970-01-01T00:10:00.000Z"


@pytest.mark.parametrize(
    ("lat", "lon", "accuracy"),
    [(91, 0, 1), (0, -181, 1), (0, 0, -0.1), (0, 0, 100_000.1), (float("nan"), 0, 1)],
)
def test_impossible_fixes_are_refused(lat: float, lon: float, accuracy: float) -> None:
    with pytest.raises(LocationError):
        LocationFix(lat, lon, accuracy, 0)

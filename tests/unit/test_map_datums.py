"""Coordinates from Chinese maps (GCJ-02, BD-09) to WGS-84, on published reference points."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.inspection.map_datums import (
    BD09,
    GCJ02,
    WGS84,
    SiteCoordinates,
    bd09_to_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    to_wgs84,
    wgs84_to_gcj02,
)
from server.live.geo import haversine_m

# (WGS-84 lat, lon), (GCJ-02 lat, lon): the test points of eviltransform (googollee/eviltransform,
# python/test.py) and the example of coordtransform (wandergis/coordtransform, README), two
# independent implementations of the published formula.
WGS_GCJ_PAIRS = [
    pytest.param((39.915, 116.404), (39.91640428150164, 116.41024449916938), id="tiananmen"),
    pytest.param((39.911954, 116.377817), (39.91334545536069, 116.38404722455657), id="beijing"),
    pytest.param((22.543847, 113.912316), (22.540796131694766, 113.9171764808363), id="shenzhen"),
    pytest.param((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215), id="shanghai"),
]
# (BD-09 lat, lon), (GCJ-02 lat, lon): coordtransform's README, both directions.
BD_TO_GCJ = ((39.915, 116.404), (39.90865673957631, 116.39762729119315))
GCJ_TO_BD = ((39.915, 116.404), (39.92133699351021, 116.41036949371029))

DEG = 1e-9  # about 0.1 mm


@pytest.mark.parametrize(("wgs", "gcj"), WGS_GCJ_PAIRS)
def test_wgs84_to_gcj02_gives_the_published_values(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    assert wgs84_to_gcj02(*wgs) == pytest.approx(gcj, abs=DEG)


@pytest.mark.parametrize(("wgs", "gcj"), WGS_GCJ_PAIRS)
def test_a_gcj02_point_copied_from_amap_becomes_its_wgs84_point(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    back = gcj02_to_wgs84(*gcj)
    assert back == pytest.approx(wgs, abs=1e-8)
    assert haversine_m(*back, *wgs) < 0.01
    assert haversine_m(*gcj, *wgs) > 100  # what the site was off by, unconverted


def test_bd09_and_gcj02_convert_as_published() -> None:
    assert bd09_to_gcj02(*BD_TO_GCJ[0]) == pytest.approx(BD_TO_GCJ[1], abs=DEG)
    assert gcj02_to_bd09(*GCJ_TO_BD[0]) == pytest.approx(GCJ_TO_BD[1], abs=DEG)


def test_a_baidu_point_goes_through_gcj02_to_wgs84() -> None:
    bd = gcj02_to_bd09(*wgs84_to_gcj02(39.915, 116.404))
    assert haversine_m(*bd, 39.915, 116.404) > 500  # Baidu's shift: over half a kilometre
    # The published BD-09 → GCJ-02 formula is a closed-form near-inverse: within 0.3 m.
    assert haversine_m(*to_wgs84(*bd, BD09), 39.915, 116.404) < 0.3


def test_points_outside_china_are_not_shifted() -> None:
    for point in ((48.8584, 2.2945), (35.6586, 139.7454), (-33.8568, 151.2153), (0.5, 100.0)):
        assert not in_china(*point)
        for system in (WGS84, GCJ02, BD09):
            assert to_wgs84(*point, system) == point


def test_an_unknown_system_is_refused() -> None:
    with pytest.raises(ValueError, match="cgcs2000"):
        to_wgs84(39.9, 116.4, "cgcs2000")
    with pytest.raises(ValueError, match="utm"):
        SiteCoordinates("utm", 1, 2, 1, 2)


def test_site_keeps_what_was_entered_and_the_converted_point_to_a_centimetre() -> None:
    site = SiteCoordinates.entered(39.91640428150164, 116.41024449916938, GCJ02)
    assert (site.system, site.input_lat, site.input_lon) == (
        GCJ02,
        39.91640428150164,
        116.41024449916938,
    )
    assert (site.lat, site.lon) == (39.915, 116.404)
    exact = SiteCoordinates.entered(30.123456789, 120.1, WGS84)
    assert (exact.lat, exact.lon) == (30.123456789, 120.1)  # WGS-84 is kept as entered


china = st.tuples(
    st.floats(min_value=18.0, max_value=53.0), st.floats(min_value=74.0, max_value=134.0)
)


@given(china)
def test_gcj02_round_trip_is_within_a_centimetre_anywhere_in_china(
    point: tuple[float, float],
) -> None:
    assert haversine_m(*gcj02_to_wgs84(*wgs84_to_gcj02(*point)), *point) < 0.01


@given(china)
def test_bd09_round_trip_is_within_a_metre_anywhere_in_china(point: tuple[float, float]) -> None:
    bd = gcj02_to_bd09(*wgs84_to_gcj02(*point))
    assert haversine_m(*to_wgs84(*bd, BD09), *point) < 1.0

"""Site coordinates copied from 高德 (GCJ-02) or 百度 (BD-09): converted to the WGS-84 that phones
send, so that 距踏勘地址 (the distance the inspector sees) is the true one; what was entered and in
which system is chained beside the result."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.integration.test_location_challenge import chain, new_invite, now_iso, of_kind
from tests.integration.test_rest_api import assert_error
from tests.integration.test_signalling import applicant_of, inspector_of

# 深圳: the same place in WGS-84 (a phone's fix) and in GCJ-02 (copied from Amap); the pair is
# eviltransform's test point.
SHENZHEN_WGS = (22.543847, 113.912316)
SHENZHEN_GCJ = (22.540796131694766, 113.9171764808363)
# 北京 天安门: a place in BD-09 (copied from Baidu Maps) and its WGS-84 by coordtransform.
BEIJING_BD = (39.92133699351021, 116.41036949371029)
BEIJING_WGS = (39.91359571849836, 116.39775550083061)


async def distance_seen(server: LiveServer, fix: tuple[float, float], **site: Any) -> float:
    """The distance the inspector sees for an applicant's fix ``fix`` at a site entered so."""
    invite = await new_invite(server, **site)
    async with (
        inspector_of(server, invite) as inspector,
        applicant_of(server, invite, consent=True) as applicant,
    ):
        await applicant.send(type="location", lat=fix[0], lon=fix[1], accuracy=5, at=now_iso())
        await applicant.receive("location_ack")
        seen = await inspector.receive("location")
    [body] = of_kind(await chain(server, invite["case_id"]), "location")
    assert float(body["distance_m"]) == pytest.approx(seen["distance_m"], abs=0.1)
    return float(seen["distance_m"])


async def test_a_site_copied_from_amap_is_where_the_phone_stands(live_server: LiveServer) -> None:
    lat, lon = SHENZHEN_GCJ
    as_gcj = await distance_seen(
        live_server, SHENZHEN_WGS, site_lat=lat, site_lon=lon, site_system="gcj02"
    )
    assert as_gcj < 1.0
    # The same numbers taken as WGS-84 (as before the form asked) put the phone 600 m away.
    as_wgs = await distance_seen(live_server, SHENZHEN_WGS, site_lat=lat, site_lon=lon)
    assert 550 < as_wgs < 650


async def test_a_site_copied_from_baidu_is_where_the_phone_stands(live_server: LiveServer) -> None:
    lat, lon = BEIJING_BD
    distance = await distance_seen(
        live_server, BEIJING_WGS, site_lat=lat, site_lon=lon, site_system="bd09"
    )
    assert distance < 1.0


async def test_the_chain_and_the_case_record_the_site_as_entered_and_in_wgs84(
    live_server: LiveServer,
) -> None:
    lat, lon = SHENZHEN_GCJ
    case = await live_server.new_case(site_lat=lat, site_lon=lon, site_system="gcj02")
    assert (case["site_lat"], case["site_lon"]) == SHENZHEN_WGS  # to 7 decimals, 1 cm
    assert (case["site_system"], case["site_input_lat"], case["site_input_lon"]) == (
        "gcj02",
        lat,
        lon,
    )
    [body] = of_kind(await chain(live_server, case["case_id"]), "case_created")
    assert {k: v for k, v in body.items() if k.startswith("site_")} == {
        "site_lat": "22.543847",
        "site_lon": "113.912316",
        "site_system": "gcj02",
        "site_input_lat": "22.540796131694766",
        "site_input_lon": "113.9171764808363",
    }
    status, fetched = await live_server.request("GET", f"/api/cases/{case['case_id']}", "auditor1")
    assert status == 200, fetched
    assert {k: v for k, v in fetched.items() if k.startswith("site_")} == {
        k: v for k, v in case.items() if k.startswith("site_")
    }


async def test_a_site_outside_china_is_not_shifted(live_server: LiveServer) -> None:
    case = await live_server.new_case(site_lat=48.8584, site_lon=2.2945, site_system="gcj02")
    assert (case["site_lat"], case["site_lon"]) == (48.8584, 2.2945)
    assert case["site_system"] == "gcj02"


async def test_a_case_without_a_site_records_no_system(live_server: LiveServer) -> None:
    case = await live_server.new_case()
    assert (case["site_system"], case["site_input_lat"], case["site_input_lon"]) == (
        None,
        None,
        None,
    )
    [body] = of_kind(await chain(live_server, case["case_id"]), "case_created")
    assert (body["site_system"], body["site_input_lat"], body["site_lat"]) == (None, None, None)


@pytest.mark.parametrize(
    ("site", "field", "words"),
    [
        ({"site_lat": 30.1, "site_lon": 120.1, "site_system": "cgcs2000"}, "site_system", "gcj02"),
        ({"site_lat": 30.1, "site_lon": 120.1, "site_system": 2}, "site_system", "one of"),
        ({"site_system": "gcj02"}, "site_system", "'site_lat' and 'site_lon'"),
        ({"site_lat": 30.1}, "site_lon", "required with 'site_lat'"),
        ({"site_lon": 120.1, "site_system": "bd09"}, "site_lat", "required with 'site_lon'"),
    ],
)
async def test_a_site_that_cannot_be_placed_is_refused_naming_the_field(
    live_server: LiveServer, site: dict[str, Any], field: str, words: str
) -> None:
    body = {"case_id": "SITE-1", "title": "t", "address": "a", **site}
    status, answer = await live_server.request("POST", "/api/cases", "inspector1", json=body)
    assert_error(status, answer, 400, "bad_request", f"'{field}'", words)
    assert answer["field"] == field
    status, _ = await live_server.request("GET", "/api/cases/SITE-1", "admin1")
    assert status == 404

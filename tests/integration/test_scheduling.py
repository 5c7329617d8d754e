"""Scheduling an inspection for an agreed time, and the dashboard's day in the inspector's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.inspection.dashboard import local_day
from tests.conftest import LiveServer


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_an_inspection_scheduled_for_tomorrow_keeps_its_invite_until_then(
    live_server: LiveServer,
) -> None:
    case = await live_server.new_case()
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    status, created = await live_server.request(
        "POST",
        f"/api/cases/{case['case_id']}/inspections",
        "inspector1",
        json={"scheduled_at": iso(tomorrow)},
    )
    assert status == 201, created
    ttl = live_server.services.settings.invite_ttl_s
    assert created["invite_expires_at"] == iso(tomorrow + timedelta(seconds=ttl))
    status, inspection = await live_server.request(
        "GET", f"/api/inspections/{created['inspection_id']}", "inspector1"
    )
    assert status == 200
    assert inspection["scheduled_at"] == iso(tomorrow)
    status, audit = await live_server.request(
        "GET", f"/api/cases/{case['case_id']}/audit", "auditor1"
    )
    invited = [e["body"] for e in audit["entries"] if e["kind"] == "invited"]
    assert invited[-1]["scheduled_at"] == iso(tomorrow)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tomorrow", "scheduled_at"),
        ("2026-13-01T08:00:00Z", "scheduled_at"),
        (1767225600, "scheduled_at"),
        ("2001-01-01T08:00:00Z", "between a day ago and 90 days ahead"),
    ],
)
async def test_a_bad_schedule_is_refused_and_opens_nothing(
    live_server: LiveServer, value: object, reason: str
) -> None:
    case = await live_server.new_case()
    status, body = await live_server.request(
        "POST",
        f"/api/cases/{case['case_id']}/inspections",
        "inspector1",
        json={"scheduled_at": value},
    )
    assert status == 400
    assert body["error"] == "bad_request"
    assert reason in body["reason"]
    status, detail = await live_server.request("GET", f"/api/cases/{case['case_id']}", "inspector1")
    assert detail["inspections"] == []


async def test_the_dashboard_day_is_the_inspectors_local_day(live_server: LiveServer) -> None:
    case = await live_server.new_case()
    later_today = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    status, created = await live_server.request(
        "POST",
        f"/api/cases/{case['case_id']}/inspections",
        "inspector1",
        json={"scheduled_at": iso(later_today)},
    )
    assert status == 201, created
    status, board = await live_server.request(
        "GET", "/api/dashboard?utc_offset_min=0", "inspector1"
    )
    assert status == 200, board
    assert created["inspection_id"] in [i["inspection_id"] for i in board["today"]]
    for bad in ("abc", "900", "-841"):
        status, body = await live_server.request(
            "GET", f"/api/dashboard?utc_offset_min={bad}", "inspector1"
        )
        assert status == 400
        assert "utc_offset_min" in body["reason"]


def test_local_day_bounds_follow_the_zone() -> None:
    # 2026-01-31T20:00Z is already 1 February in Beijing (UTC+8).
    now = datetime(2026, 1, 31, 20, 0, tzinfo=UTC).timestamp()
    assert local_day(now, 480) == ("2026-01-31T16:00:00.000Z", "2026-02-01T16:00:00.000Z")
    assert local_day(now, 0) == ("2026-01-31T00:00:00.000Z", "2026-02-01T00:00:00.000Z")
    assert local_day(now, -300) == ("2026-01-31T05:00:00.000Z", "2026-02-01T05:00:00.000Z")

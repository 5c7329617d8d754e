"""The inspector's day: inspections scheduled or created today (in the inspector's zone), live
ones, and those awaiting a conclusion."""

from __future__ import annotations

from typing import Any

from server.clock import utc_iso
from server.security.tokens import SessionToken
from server.services import Services

_SELECT = (
    "SELECT i.inspection_id, i.case_id, c.case_number, c.title, c.address, i.status, i.created_at,"
    " i.scheduled_at, i.ended_at, i.outcome FROM inspections i"
    " JOIN cases c ON c.case_id = i.case_id"
    " WHERE i.case_id IN (SELECT case_id FROM case_inspectors WHERE user_id = ?)"
)


BEIJING_OFFSET_MIN = 480
DAY_S = 86_400


def local_day(now: float, utc_offset_min: int) -> tuple[str, str]:
    """[start, end) of the inspector's local calendar day holding ``now``, as UTC ISO strings
    (which sort as times)."""
    offset_s = utc_offset_min * 60
    start = (now + offset_s) // DAY_S * DAY_S - offset_s
    return utc_iso(start), utc_iso(start + DAY_S)


def dashboard(
    services: Services, user: SessionToken, utc_offset_min: int = BEIJING_OFFSET_MIN
) -> dict[str, Any]:
    """``utc_offset_min`` is the inspector's zone (the page sends its own; default UTC+8)."""
    conn = services.db.conn
    day = local_day(services.clock.now(), utc_offset_min)
    todays = conn.execute(
        _SELECT + " AND ((i.scheduled_at >= ? AND i.scheduled_at < ?)"
        " OR (i.created_at >= ? AND i.created_at < ?))"
        " ORDER BY COALESCE(i.scheduled_at, i.created_at), i.inspection_id",
        (user.user_id, *day, *day),
    )
    active = conn.execute(
        _SELECT + " AND i.status = 'active' ORDER BY i.created_at", (user.user_id,)
    )
    awaiting = conn.execute(
        _SELECT + " AND i.status = 'ended' AND i.outcome IS NULL ORDER BY i.ended_at",
        (user.user_id,),
    )
    live = []
    for row in active:
        inspection = services.live.get(row["inspection_id"])
        if inspection is not None and not inspection.ended and inspection.participants:
            live.append({**dict(row), "participants": len(inspection.participants)})
    return {
        "today": [dict(row) for row in todays],
        "live": live,
        "awaiting_conclusion": [dict(row) for row in awaiting],
    }

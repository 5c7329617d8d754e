"""The inspector's day: inspections scheduled or created today, live ones, and those awaiting a
conclusion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.services import Services
from server.tokens import SessionToken

_SELECT = (
    "SELECT i.inspection_id, i.case_id, c.title, c.address, i.status, i.created_at,"
    " i.scheduled_at, i.ended_at, i.outcome FROM inspections i"
    " JOIN cases c ON c.case_id = i.case_id WHERE i.created_by = ?"
)


def dashboard(services: Services, user: SessionToken) -> dict[str, Any]:
    conn = services.db.conn
    today = datetime.fromtimestamp(services.clock.now(), UTC).strftime("%Y-%m-%d")
    # UTC ISO strings sort as times: one day is the range [today, today + "~").
    day = (today, today + "~")
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

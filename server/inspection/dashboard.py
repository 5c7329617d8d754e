"""The inspector's day: inspections scheduled or created today (in the inspector's zone), live
ones, and those awaiting a conclusion."""

from __future__ import annotations

from typing import Any

from server.clock import utc_iso
from server.security.tokens import SessionToken
from server.services import Services

BEIJING_OFFSET_MIN = 480
DAY_S = 86_400


def local_day(now: float, utc_offset_min: int) -> tuple[str, str]:
    """[start, end) of the inspector's local calendar day holding ``now``, as UTC ISO strings
    (which sort as times)."""
    offset_s = utc_offset_min * 60
    start = (now + offset_s) // DAY_S * DAY_S - offset_s
    return utc_iso(start), utc_iso(start + DAY_S)


async def dashboard(
    services: Services, user: SessionToken, utc_offset_min: int = BEIJING_OFFSET_MIN
) -> dict[str, Any]:
    """``utc_offset_min`` is the inspector's zone (the page sends its own; default UTC+8)."""
    day = local_day(services.clock.now(), utc_offset_min)
    todays, active, awaiting = await services.store.inspections.inspectors_day(user.user_id, day)
    if services.nodes is not None:  # live on whichever node runs it, as that node says
        counts = await services.nodes.connected([row["inspection_id"] for row in active])
    else:
        counts = {}
        for row in active:
            inspection = services.live.get(row["inspection_id"])
            if inspection is not None and not inspection.ended and inspection.participants:
                counts[row["inspection_id"]] = len(inspection.participants)
    live = [
        {**row, "participants": counts[row["inspection_id"]]}
        for row in active
        if row["inspection_id"] in counts
    ]
    return {"today": todays, "live": live, "awaiting_conclusion": awaiting}

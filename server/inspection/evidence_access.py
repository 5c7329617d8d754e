"""Who may touch an inspection's evidence: the case's inspectors write, auditors and admins read."""

from __future__ import annotations

from server.errors import Conflict, Forbidden
from server.inspection import inspections
from server.security.tokens import SessionToken
from server.services import Services
from server.store.models import Inspection

READERS = ("inspector", "auditor", "admin")


async def owned_inspection(
    services: Services, user: SessionToken, inspection_id: str
) -> Inspection:
    """The inspection, if ``user`` is one of its case's inspectors (404 if unknown, else 403)."""
    inspection = await inspections.inspection_for(services, user, inspection_id)
    if user.role != "inspector":
        raise Forbidden("only the case's inspectors may do this")
    return inspection


async def readable_inspection(
    services: Services, user: SessionToken, inspection_id: str
) -> Inspection:
    """The inspection, if ``user`` is one of its case's inspectors, an auditor or an admin."""
    return await inspections.inspection_for(services, user, inspection_id)


def require_not_concluded(inspection: Inspection) -> None:
    if inspection.outcome is not None:
        raise Conflict(
            f"inspection '{inspection.inspection_id}' is concluded; its evidence is final"
        )

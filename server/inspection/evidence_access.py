"""Who may touch an inspection's evidence: its own inspector writes, auditors and admins read."""

from __future__ import annotations

from server.errors import Conflict, Forbidden
from server.inspection import inspections
from server.security.tokens import SessionToken
from server.services import Services
from server.store.db import Inspection

READERS = ("inspector", "auditor", "admin")


def owned_inspection(services: Services, user: SessionToken, inspection_id: str) -> Inspection:
    """The inspection, if ``user`` is the inspector who runs it (404 if unknown, else 403)."""
    inspection = inspections.inspection_for(services, user, inspection_id)
    if user.role != "inspector" or inspection.created_by != user.user_id:
        raise Forbidden("only the inspection's own inspector may do this")
    return inspection


def readable_inspection(services: Services, user: SessionToken, inspection_id: str) -> Inspection:
    """The inspection, if ``user`` is its inspector, an auditor or an admin."""
    inspection = inspections.inspection_for(services, user, inspection_id)
    if user.role == "inspector" and inspection.created_by != user.user_id:
        raise Forbidden("this inspection belongs to another inspector")
    return inspection


def require_not_concluded(inspection: Inspection) -> None:
    if inspection.outcome is not None:
        raise Conflict(
            f"inspection '{inspection.inspection_id}' is concluded; its evidence is final"
        )

"""Cases and inspections: the operations REST and signalling share."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
from datetime import UTC
from typing import Any

from recorder.chain import parse_utc
from server.clock import utc_iso
from server.errors import BadRequest, Conflict, Forbidden, NotFound
from server.inspection import receipts
from server.security.tokens import InviteToken, SessionToken
from server.services import Services
from server.store.db import Case, Inspection

logger = logging.getLogger(__name__)

CASE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INSPECTION_ID_PATTERN = re.compile(r"[a-f0-9]{32}")


def check_case_id(case_id: str) -> str:
    if not CASE_ID_PATTERN.fullmatch(case_id) or ".." in case_id:
        raise BadRequest(
            "case_id must be 1-64 characters of A-Z a-z 0-9 . _ -, start with a letter or digit"
            " and not contain '..'"
        )
    return case_id


def check_inspection_id(inspection_id: str) -> str:
    if not INSPECTION_ID_PATTERN.fullmatch(inspection_id):
        raise NotFound(f"inspection {inspection_id[:64]!r} does not exist")
    return inspection_id


def _text(body: dict[str, Any], name: str, max_len: int, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"field '{name}' is required and must be a non-empty string")
    if len(value) > max_len:
        raise BadRequest(f"field '{name}' must be at most {max_len} characters")
    return value.strip()


def _coordinate(body: dict[str, Any], name: str, limit: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"field '{name}' must be a number")
    if not -limit <= value <= limit:
        raise BadRequest(f"field '{name}' must be between {-limit} and {limit}")
    return float(value)


def coordinate_text(value: float | None) -> str | None:
    """A site coordinate as the chain holds it: the shortest decimal that reads back as it."""
    return None if value is None else repr(value)


async def create_case(services: Services, user: SessionToken, body: dict[str, Any]) -> Case:
    case_id = body.get("case_id")
    if not isinstance(case_id, str):
        raise BadRequest("field 'case_id' is required and must be a string")
    case = Case(
        case_id=check_case_id(case_id),
        title=_text(body, "title", 200, required=True),
        address=_text(body, "address", 300, required=True),
        applicant_name=_text(body, "applicant_name", 100, required=False),
        applicant_phone=_text(body, "applicant_phone", 40, required=False),
        case_type=_text(body, "case_type", 64, required=False),
        site_lat=_coordinate(body, "site_lat", 90),
        site_lon=_coordinate(body, "site_lon", 180),
        created_by=user.user_id,
        created_at=utc_iso(services.clock.now()),
    )
    if services.db.case(case.case_id) is not None:
        raise Conflict(f"case '{case.case_id}' already exists")
    services.db.add_case(case)
    await services.archive.append(
        case.case_id,
        "case_created",
        {
            "by": user.username,
            "title": case.title,
            "address": case.address,
            "applicant_name": case.applicant_name,
            "applicant_phone": case.applicant_phone,
            "case_type": case.case_type,
            "site_lat": coordinate_text(case.site_lat),
            "site_lon": coordinate_text(case.site_lon),
            "created_at": case.created_at,
        },
    )
    logger.info("case created", extra={"case_id": case.case_id})
    return case


def visible_case(services: Services, user: SessionToken, case_id: str) -> Case:
    case = services.db.case(check_case_id(case_id))
    if case is None:
        raise NotFound(f"case '{case_id}' does not exist")
    if user.role == "inspector" and case.created_by != user.user_id:
        raise Forbidden("this case belongs to another inspector")
    return case


def invite_links(services: Services, inspection: Inspection) -> dict[str, Any]:
    token = services.signer.sign_invite(
        InviteToken(inspection.case_id, inspection.inspection_id, inspection.invite_expires_at)
    )
    base = services.settings.base_url
    return {
        "inspection_id": inspection.inspection_id,
        "applicant_url": f"{base}/join/{token}",
        "short_code": inspection.short_code,
        "code_url": f"{base}/j",
        "qr_svg_url": f"/api/inspections/{inspection.inspection_id}/qr.svg",
        "inspector_url": f"{base}/inspect/{inspection.inspection_id}",
        "invite_expires_at": utc_iso(inspection.invite_expires_at),
    }


SCHEDULE_PAST_S = 24 * 3600
SCHEDULE_AHEAD_S = 90 * 24 * 3600


def _scheduled_at(body: dict[str, Any], now: float) -> float | None:
    """The agreed time of the inspection (``scheduled_at``, UTC ISO), if the body names one."""
    value = body.get("scheduled_at")
    if value is None:
        return None
    try:
        when = parse_utc(value).replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise BadRequest(f"field 'scheduled_at': {exc}") from exc
    if not now - SCHEDULE_PAST_S <= when <= now + SCHEDULE_AHEAD_S:
        raise BadRequest("field 'scheduled_at' must be between a day ago and 90 days ahead")
    return when


async def create_inspection(
    services: Services, user: SessionToken, case_id: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Open an inspection of the case now (its invite valid for ``invite_ttl_s``), or for an
    agreed time: then the invite stays valid until ``invite_ttl_s`` after that time."""
    case = visible_case(services, user, case_id)
    if case.created_by != user.user_id:
        raise Forbidden("only the case's inspector can start an inspection")
    now = services.clock.now()
    scheduled = _scheduled_at(body or {}, now)
    for _ in range(20):
        code = f"{secrets.randbelow(1_000_000):06d}"
        if services.db.active_inspection_by_code(code) is None:
            break
    else:  # pragma: no cover - a million codes in use at once
        raise Conflict("no free short code, try again")
    inspection = Inspection(
        inspection_id=secrets.token_hex(16),
        case_id=case.case_id,
        status="active",
        created_by=user.user_id,
        created_at=utc_iso(now),
        ended_at=None,
        invite_expires_at=int(max(now, scheduled or now)) + services.settings.invite_ttl_s,
        short_code=code,
        consented_at=None,
        scheduled_at=utc_iso(scheduled) if scheduled is not None else None,
    )
    services.db.add_inspection(inspection)
    await services.archive.append(
        case.case_id,
        "invited",
        {
            "inspection_id": inspection.inspection_id,
            "by": user.username,
            "invite_expires_at": utc_iso(inspection.invite_expires_at),
            "scheduled_at": inspection.scheduled_at,
            "created_at": inspection.created_at,
        },
    )
    logger.info(
        "inspection created",
        extra={"case_id": case.case_id, "inspection_id": inspection.inspection_id},
    )
    return invite_links(services, inspection)


def inspection_and_case(
    services: Services, user: SessionToken, inspection_id: str
) -> tuple[Inspection, Case]:
    """The inspection and its case, if ``user`` may see the case (404 if unknown, else 403)."""
    inspection = services.db.inspection(check_inspection_id(inspection_id))
    if inspection is None:
        raise NotFound(f"inspection '{inspection_id}' does not exist")
    return inspection, visible_case(services, user, inspection.case_id)


def inspection_for(services: Services, user: SessionToken, inspection_id: str) -> Inspection:
    return inspection_and_case(services, user, inspection_id)[0]


async def end_inspection(services: Services, inspection_id: str, by: str) -> str:
    """End an inspection now: the invite stops working, everybody is hung up, the last segments
    are chained, the inspection's manifest is signed and its receipt issued.

    Once the database says ended, the rest runs to its end even if the request is cancelled:
    an ended inspection always gets its ``ended`` entry and its manifest."""
    now = utc_iso(services.clock.now())
    inspection = services.db.inspection(inspection_id)
    if inspection is None or not services.db.end_inspection(inspection_id, now):
        raise Conflict(f"inspection '{inspection_id}' has already ended")

    async def close() -> None:
        await services.live.end(inspection_id, f"ended by {by}")
        await services.archive.finish_inspection(
            inspection.case_id, inspection_id, {"by": by, "ended_at": now}
        )
        await receipts.issue_at_end(services, inspection_id)

    await asyncio.shield(asyncio.ensure_future(close()))
    logger.info("inspection ended", extra={"inspection_id": inspection_id})
    return now

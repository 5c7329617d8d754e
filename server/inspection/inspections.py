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
from server.inspection import case_staff, map_datums, receipts
from server.inspection.case_numbers import CaseNumber, CaseNumberError
from server.inspection.map_datums import SiteCoordinates
from server.security.tokens import InviteToken, SessionToken
from server.services import Services
from server.store.models import Case, Inspection

logger = logging.getLogger(__name__)

CASE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
INSPECTION_ID_PATTERN = re.compile(r"[a-f0-9]{32}")
# The most characters (after trimming) of a case's text fields; web/cases.html shows the same.
CASE_TEXT_LIMITS = {
    "title": 200,
    "address": 300,
    "applicant_name": 100,
    "applicant_phone": 40,
    "case_type": 64,
}


def check_case_id(case_id: str) -> str:
    if not CASE_ID_PATTERN.fullmatch(case_id) or ".." in case_id:
        raise BadRequest(
            "case_id must be 1-64 characters of A-Z a-z 0-9 . _ -, start with a letter or digit"
            " and not contain '..'",
            field="case_id",
        )
    return case_id


def check_inspection_id(inspection_id: str) -> str:
    if not INSPECTION_ID_PATTERN.fullmatch(inspection_id):
        raise NotFound(f"inspection {inspection_id[:64]!r} does not exist")
    return inspection_id


def _text(body: dict[str, Any], name: str, required: bool = False) -> str:
    """A text field, trimmed; too long is refused naming the limit, never cut."""
    max_len = CASE_TEXT_LIMITS[name]
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"field '{name}' is required and must be a non-empty string", field=name)
    text = value.strip()
    if len(text) > max_len:
        raise BadRequest(
            f"field '{name}' must be at most {max_len} characters (it has {len(text)})",
            field=name,
            limit=max_len,
        )
    return text


def _case_number(body: dict[str, Any]) -> CaseNumber:
    """The case's number as written (``case_number``) and the case ID derived from it; or, as
    before numbers, a ``case_id`` alone, which is then its own number."""
    number, case_id = body.get("case_number"), body.get("case_id")
    if number is None:
        if case_id is None:
            raise BadRequest("field 'case_number' (or 'case_id') is required", field="case_number")
        if not isinstance(case_id, str):
            raise BadRequest("field 'case_id' is required and must be a string", field="case_id")
        return CaseNumber(check_case_id(case_id), case_id)
    if not isinstance(number, str):
        raise BadRequest("field 'case_number' must be a string", field="case_number")
    if case_id is not None:
        raise BadRequest(
            "give field 'case_number' or 'case_id', not both: the case ID is derived from the"
            " number",
            field="case_id",
        )
    try:
        return CaseNumber.parse(number)
    except CaseNumberError as exc:
        limit = {} if exc.limit is None else {"limit": exc.limit}
        raise BadRequest(f"field 'case_number' {exc}", field="case_number", **limit) from exc


def _coordinate(body: dict[str, Any], name: str, limit: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"field '{name}' must be a number", field=name)
    if not -limit <= value <= limit:
        raise BadRequest(f"field '{name}' must be between {-limit} and {limit}", field=name)
    return float(value)


def _site(body: dict[str, Any]) -> SiteCoordinates | None:
    """The site as entered in ``site_system`` (default WGS-84), converted to WGS-84."""
    lat, lon = _coordinate(body, "site_lat", 90), _coordinate(body, "site_lon", 180)
    system = body.get("site_system")
    if system is not None and system not in map_datums.SYSTEMS:
        raise BadRequest(
            f"field 'site_system' must be one of {', '.join(map_datums.SYSTEMS)}",
            field="site_system",
        )
    if lat is None and lon is None:
        if system is not None:
            raise BadRequest(
                "field 'site_system' needs the site's 'site_lat' and 'site_lon'",
                field="site_system",
            )
        return None
    if lat is None or lon is None:
        missing, given = ("site_lon", "site_lat") if lon is None else ("site_lat", "site_lon")
        raise BadRequest(f"field '{missing}' is required with '{given}'", field=missing)
    return SiteCoordinates.entered(lat, lon, system or map_datums.WGS84)


def coordinate_text(value: float | None) -> str | None:
    """A site coordinate as the chain holds it: the shortest decimal that reads back as it."""
    return None if value is None else repr(value)


async def create_case(services: Services, user: SessionToken, body: dict[str, Any]) -> Case:
    number = _case_number(body)
    site = _site(body)
    case = Case(
        case_id=number.case_id,
        case_number=number.number,
        title=_text(body, "title", required=True),
        address=_text(body, "address", required=True),
        applicant_name=_text(body, "applicant_name"),
        applicant_phone=_text(body, "applicant_phone"),
        case_type=_text(body, "case_type"),
        site_lat=site.lat if site else None,
        site_lon=site.lon if site else None,
        site_system=site.system if site else None,
        site_input_lat=site.input_lat if site else None,
        site_input_lon=site.input_lon if site else None,
        created_by=user.user_id,
        created_at=utc_iso(services.clock.now()),
    )
    staff = await case_staff.initial_inspectors(services.store, user, body)
    field = "case_number" if "case_number" in body else "case_id"
    if await services.store.cases.by_number(case.number) is not None:
        raise Conflict(f"case number '{case.number}' already exists", field=field)
    if await services.store.cases.get(case.case_id) is not None:
        raise Conflict(
            f"case '{case.case_id}' already exists (the case ID of number '{case.number}')",
            field=field,
        )
    await services.store.cases.add(case, [inspector.id for inspector in staff])
    services.archive.open_new_case(case.case_id)  # no need to list the store: it is new
    await services.archive.append(
        case.case_id,
        "case_created",
        {
            "by": user.username,
            "inspectors": [inspector.username for inspector in staff],
            "case_number": case.number,
            "title": case.title,
            "address": case.address,
            "applicant_name": case.applicant_name,
            "applicant_phone": case.applicant_phone,
            "case_type": case.case_type,
            "site_lat": coordinate_text(case.site_lat),
            "site_lon": coordinate_text(case.site_lon),
            "site_system": case.site_system,
            "site_input_lat": coordinate_text(case.site_input_lat),
            "site_input_lon": coordinate_text(case.site_input_lon),
            "created_at": case.created_at,
        },
    )
    logger.info("case created", extra={"case_id": case.case_id})
    return case


async def visible_case(services: Services, user: SessionToken, case_id: str) -> Case:
    case = await services.store.cases.get(check_case_id(case_id))
    if case is None:
        raise NotFound(f"case '{case_id}' does not exist")
    if user.role == "inspector" and not await services.store.cases.is_assigned(
        case_id, user.user_id
    ):
        raise Forbidden("you are not one of this case's inspectors")
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
    case = await visible_case(services, user, case_id)
    if user.role != "inspector":
        raise Forbidden("only the case's inspectors can start an inspection")
    now = services.clock.now()
    scheduled = _scheduled_at(body or {}, now)
    for _ in range(20):
        code = f"{secrets.randbelow(1_000_000):06d}"
        if await services.store.inspections.active_by_code(code) is None:
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
    await services.store.inspections.add(inspection)
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
    links = invite_links(services, inspection)
    if services.nodes is not None:  # one node of many: where it will run live
        placed = await services.nodes.place(inspection.inspection_id)
        if placed is not None:
            links["node"] = placed.node
    logger.info(
        "inspection created",
        extra={"case_id": case.case_id, "inspection_id": inspection.inspection_id},
    )
    return links


async def inspection_and_case(
    services: Services, user: SessionToken, inspection_id: str
) -> tuple[Inspection, Case]:
    """The inspection and its case, if ``user`` may see the case (404 if unknown, else 403)."""
    inspection = await services.store.inspections.get(check_inspection_id(inspection_id))
    if inspection is None:
        raise NotFound(f"inspection '{inspection_id}' does not exist")
    return inspection, await visible_case(services, user, inspection.case_id)


async def inspection_for(services: Services, user: SessionToken, inspection_id: str) -> Inspection:
    return (await inspection_and_case(services, user, inspection_id))[0]


async def end_inspection(services: Services, inspection_id: str, by: str) -> str:
    """End an inspection now: the invite stops working, everybody is hung up, the last segments
    are chained, the inspection's manifest is signed and its receipt issued.

    Once the database says ended, the rest runs to its end even if the request is cancelled:
    an ended inspection always gets its ``ended`` entry and its manifest."""
    now = utc_iso(services.clock.now())
    inspection = await services.store.inspections.get(inspection_id)
    if inspection is None or not await services.store.inspections.end(inspection_id, now):
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

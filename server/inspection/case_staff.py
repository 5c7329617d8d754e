"""The inspectors assigned to a case: on-site checks are made by two or more staff
(《行政许可法》第三十四条), so a case names its inspectors, any of whom runs its inspections.

Each assignment is chained: the case's first inspectors in ``case_created`` (``inspectors``),
later ones in ``inspector_assigned`` / ``inspector_unassigned``. The ``case_inspectors`` table
indexes them for access checks and searches.
"""

from __future__ import annotations

import logging
from typing import Any

from server.clock import utc_iso
from server.errors import BadRequest, Conflict, Forbidden
from server.security.tokens import SessionToken
from server.services import Services
from server.store.models import Case, User
from server.store.store import Store

logger = logging.getLogger(__name__)

MAX_INSPECTORS = 20


async def _inspector(store: Store, name: Any, field: str) -> User:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"field '{field}' must name inspectors by user name", field=field)
    user = await store.users.by_name(name.strip())
    if user is None:
        raise BadRequest(f"field '{field}': no user '{name.strip()[:64]}'", field=field)
    if user.role != "inspector":
        raise BadRequest(
            f"field '{field}': user '{user.username}' is an {user.role}, not an inspector",
            field=field,
        )
    return user


async def initial_inspectors(
    store: Store, creator: SessionToken, body: dict[str, Any]
) -> list[User]:
    """The inspectors a new case names (``inspectors``: user names); an inspector who creates a
    case is always one of them, an admin must name at least one."""
    given = body.get("inspectors", [])
    if not isinstance(given, list):
        raise BadRequest("field 'inspectors' must be a list of user names", field="inspectors")
    if len(given) > MAX_INSPECTORS:
        raise BadRequest(
            f"field 'inspectors' names at most {MAX_INSPECTORS} inspectors (it has {len(given)})",
            field="inspectors",
            limit=MAX_INSPECTORS,
        )
    chosen: list[User] = []
    if creator.role == "inspector":
        user = await store.users.by_id(creator.user_id)
        if user is not None:
            chosen.append(user)
    for name in given:
        user = await _inspector(store, name, "inspectors")
        if all(user.id != c.id for c in chosen):
            chosen.append(user)
    if not chosen:
        raise BadRequest("field 'inspectors' must name at least one inspector", field="inspectors")
    return chosen


async def _may_assign(store: Store, user: SessionToken, case: Case) -> None:
    if user.role == "admin":
        return
    if user.role != "inspector" or not await store.cases.is_assigned(case.case_id, user.user_id):
        raise Forbidden("only the case's inspectors or an admin may change who inspects it")


async def assign(services: Services, user: SessionToken, case: Case, body: dict[str, Any]) -> None:
    """Add an inspector (``inspector``: a user name) to the case, chained."""
    store = services.store
    await _may_assign(store, user, case)
    added = await _inspector(store, body.get("inspector"), "inspector")
    if await store.cases.is_assigned(case.case_id, added.id):
        raise Conflict(
            f"'{added.username}' already inspects case '{case.number}'", field="inspector"
        )
    if len(await store.cases.inspector_names(case.case_id)) >= MAX_INSPECTORS:
        raise Conflict(
            f"case '{case.number}' already has {MAX_INSPECTORS} inspectors", field="inspector"
        )
    now = utc_iso(services.clock.now())
    await store.cases.assign(case.case_id, added.id, now, user.user_id)
    await services.archive.append(
        case.case_id,
        "inspector_assigned",
        {"inspector": added.username, "by": user.username, "assigned_at": now},
    )
    logger.info("inspector assigned", extra={"case_id": case.case_id})


async def unassign(services: Services, user: SessionToken, case: Case, name: str) -> None:
    """Take an inspector off the case, chained; the last one stays."""
    store = services.store
    await _may_assign(store, user, case)
    removed = await store.users.by_name(name)
    if removed is None or not await store.cases.is_assigned(case.case_id, removed.id):
        raise BadRequest(f"'{name[:64]}' does not inspect case '{case.number}'", field="inspector")
    if len(await store.cases.inspector_names(case.case_id)) == 1:
        raise Conflict(
            f"'{removed.username}' is case '{case.number}''s only inspector: assign another first",
            field="inspector",
        )
    now = utc_iso(services.clock.now())
    await store.cases.unassign(case.case_id, removed.id)
    await services.archive.append(
        case.case_id,
        "inspector_unassigned",
        {"inspector": removed.username, "by": user.username, "unassigned_at": now},
    )
    logger.info("inspector unassigned", extra={"case_id": case.case_id})

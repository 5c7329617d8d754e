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
from server.store.db import Case, Database, User

logger = logging.getLogger(__name__)

MAX_INSPECTORS = 20


def is_assigned(db: Database, case_id: str, user_id: int) -> bool:
    row = db.conn.execute(
        "SELECT 1 FROM case_inspectors WHERE case_id = ? AND user_id = ?", (case_id, user_id)
    ).fetchone()
    return row is not None


def assigned_names(db: Database, case_id: str) -> list[str]:
    """The case's inspectors by name, in the order they were assigned."""
    rows = db.conn.execute(
        "SELECT u.username FROM case_inspectors ci JOIN users u ON u.id = ci.user_id"
        " WHERE ci.case_id = ? ORDER BY ci.assigned_at, u.username",
        (case_id,),
    )
    return [row[0] for row in rows]


def inspector_names(db: Database) -> list[str]:
    """Every inspector account that can be assigned (accounts ``takan reindex`` restored
    locked are not)."""
    rows = db.conn.execute(
        "SELECT username FROM users WHERE role = 'inspector' AND password_hash NOT LIKE '!%'"
        " ORDER BY username"
    )
    return [row[0] for row in rows]


def _inspector(db: Database, name: Any, field: str) -> User:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"field '{field}' must name inspectors by user name", field=field)
    user = db.user_by_name(name.strip())
    if user is None:
        raise BadRequest(f"field '{field}': no user '{name.strip()[:64]}'", field=field)
    if user.role != "inspector":
        raise BadRequest(
            f"field '{field}': user '{user.username}' is an {user.role}, not an inspector",
            field=field,
        )
    return user


def initial_inspectors(db: Database, creator: SessionToken, body: dict[str, Any]) -> list[User]:
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
        user = db.user_by_id(creator.user_id)
        if user is not None:
            chosen.append(user)
    for name in given:
        user = _inspector(db, name, "inspectors")
        if all(user.id != c.id for c in chosen):
            chosen.append(user)
    if not chosen:
        raise BadRequest("field 'inspectors' must name at least one inspector", field="inspectors")
    return chosen


def record_initial(db: Database, case: Case, inspectors: list[User]) -> None:
    db.conn.executemany(
        "INSERT INTO case_inspectors (case_id, user_id, assigned_at, assigned_by)"
        " VALUES (?, ?, ?, ?)",
        [(case.case_id, user.id, case.created_at, case.created_by) for user in inspectors],
    )


def _may_assign(db: Database, user: SessionToken, case: Case) -> None:
    if user.role == "admin":
        return
    if user.role != "inspector" or not is_assigned(db, case.case_id, user.user_id):
        raise Forbidden("only the case's inspectors or an admin may change who inspects it")


async def assign(services: Services, user: SessionToken, case: Case, body: dict[str, Any]) -> None:
    """Add an inspector (``inspector``: a user name) to the case, chained."""
    db = services.db
    _may_assign(db, user, case)
    added = _inspector(db, body.get("inspector"), "inspector")
    if is_assigned(db, case.case_id, added.id):
        raise Conflict(
            f"'{added.username}' already inspects case '{case.number}'", field="inspector"
        )
    if len(assigned_names(db, case.case_id)) >= MAX_INSPECTORS:
        raise Conflict(
            f"case '{case.number}' already has {MAX_INSPECTORS} inspectors", field="inspector"
        )
    now = utc_iso(services.clock.now())
    db.conn.execute(
        "INSERT INTO case_inspectors (case_id, user_id, assigned_at, assigned_by)"
        " VALUES (?, ?, ?, ?)",
        (case.case_id, added.id, now, user.user_id),
    )
    await services.archive.append(
        case.case_id,
        "inspector_assigned",
        {"inspector": added.username, "by": user.username, "assigned_at": now},
    )
    logger.info("inspector assigned", extra={"case_id": case.case_id})


async def unassign(services: Services, user: SessionToken, case: Case, name: str) -> None:
    """Take an inspector off the case, chained; the last one stays."""
    db = services.db
    _may_assign(db, user, case)
    removed = db.user_by_name(name)
    if removed is None or not is_assigned(db, case.case_id, removed.id):
        raise BadRequest(f"'{name[:64]}' does not inspect case '{case.number}'", field="inspector")
    if len(assigned_names(db, case.case_id)) == 1:
        raise Conflict(
            f"'{removed.username}' is case '{case.number}''s only inspector: assign another first",
            field="inspector",
        )
    now = utc_iso(services.clock.now())
    db.conn.execute(
        "DELETE FROM case_inspectors WHERE case_id = ? AND user_id = ?",
        (case.case_id, removed.id),
    )
    await services.archive.append(
        case.case_id,
        "inspector_unassigned",
        {"inspector": removed.username, "by": user.username, "unassigned_at": now},
    )
    logger.info("inspector unassigned", extra={"case_id": case.case_id})

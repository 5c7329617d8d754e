"""Inspections (their life, consent, conclusion and template) and who took part."""

from __future__ import annotations

from typing import Any

from server.store.backend import Row
from server.store.models import Inspection
from server.store.repository import Repository

_DAY_SELECT = (
    "SELECT i.inspection_id, i.case_id, c.case_number, c.title, c.address, i.status, i.created_at,"
    " i.scheduled_at, i.ended_at, i.outcome FROM inspections i"
    " JOIN cases c ON c.case_id = i.case_id"
    " WHERE i.case_id IN (SELECT case_id FROM case_inspectors WHERE user_id = ?)"
)


class Inspections(Repository):
    async def add(self, inspection: Inspection) -> None:
        await self._run(
            "INSERT INTO inspections (inspection_id, case_id, status, created_by, created_at,"
            " ended_at, invite_expires_at, short_code, consented_at, scheduled_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inspection.inspection_id,
                inspection.case_id,
                inspection.status,
                inspection.created_by,
                inspection.created_at,
                inspection.ended_at,
                inspection.invite_expires_at,
                inspection.short_code,
                inspection.consented_at,
                inspection.scheduled_at,
            ),
        )

    async def get(self, inspection_id: str) -> Inspection | None:
        row = await self._one("SELECT * FROM inspections WHERE inspection_id = ?", (inspection_id,))
        return Inspection(**row) if row else None

    async def of_case(self, case_id: str) -> list[Inspection]:
        rows = await self._all(
            "SELECT * FROM inspections WHERE case_id = ? ORDER BY created_at", (case_id,)
        )
        return [Inspection(**row) for row in rows]

    async def active_by_code(self, code: str) -> Inspection | None:
        row = await self._one(
            "SELECT * FROM inspections WHERE short_code = ? AND status = 'active'", (code,)
        )
        return Inspection(**row) if row else None

    async def end(self, inspection_id: str, now: str) -> bool:
        changed = await self._run(
            "UPDATE inspections SET status = 'ended', ended_at = ?"
            " WHERE inspection_id = ? AND status = 'active'",
            (now, inspection_id),
        )
        return changed == 1

    async def record_consent(self, inspection_id: str, now: str) -> None:
        await self._run(
            "UPDATE inspections SET consented_at = ?"
            " WHERE inspection_id = ? AND consented_at IS NULL",
            (now, inspection_id),
        )

    async def conclude(
        self, inspection_id: str, outcome: str, at: str, reason: str | None, seq: int
    ) -> None:
        """The conclusion in force, and the chain entry that holds it."""
        await self._run(
            "UPDATE inspections SET outcome = ?, concluded_at = ?, conclusion_reason = ?,"
            " conclusion_seq = ? WHERE inspection_id = ?",
            (outcome, at, reason, seq, inspection_id),
        )

    async def fix_template(self, inspection_id: str, template_id: str) -> None:
        await self._run(
            "UPDATE inspections SET template_id = ? WHERE inspection_id = ?",
            (template_id, inspection_id),
        )

    async def inspectors_day(
        self, user_id: int, day: tuple[str, str]
    ) -> tuple[list[Row], list[Row], list[Row]]:
        """An inspector's inspections (with their case's number, title and address): those
        scheduled or created in ``day`` [start, end), the active ones, and those ended without
        a conclusion."""
        return await self._db.read(
            lambda tx: (
                tx.all(
                    _DAY_SELECT + " AND ((i.scheduled_at >= ? AND i.scheduled_at < ?)"
                    " OR (i.created_at >= ? AND i.created_at < ?))"
                    " ORDER BY COALESCE(i.scheduled_at, i.created_at), i.inspection_id",
                    (user_id, *day, *day),
                ),
                tx.all(_DAY_SELECT + " AND i.status = 'active' ORDER BY i.created_at", (user_id,)),
                tx.all(
                    _DAY_SELECT + " AND i.status = 'ended' AND i.outcome IS NULL"
                    " ORDER BY i.ended_at",
                    (user_id,),
                ),
            )
        )


class Participants(Repository):
    async def add(
        self,
        inspection_id: str,
        participant_id: str,
        role: str,
        user_id: int | None,
        display_name: str,
        now: str,
    ) -> None:
        await self._run(
            "INSERT INTO participants (inspection_id, participant_id, role, user_id,"
            " display_name, joined_at) VALUES (?, ?, ?, ?, ?, ?)",
            (inspection_id, participant_id, role, user_id, display_name, now),
        )

    async def left(self, inspection_id: str, participant_id: str, now: str) -> None:
        await self._run(
            "UPDATE participants SET left_at = ?"
            " WHERE inspection_id = ? AND participant_id = ? AND left_at IS NULL",
            (now, inspection_id, participant_id),
        )

    async def of(self, inspection_id: str) -> list[dict[str, Any]]:
        return await self._all(
            "SELECT participant_id, role, display_name, joined_at, left_at FROM participants"
            " WHERE inspection_id = ? ORDER BY id",
            (inspection_id,),
        )

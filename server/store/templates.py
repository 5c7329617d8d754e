"""Checklist templates (each item list as JSON text), versioned on every change."""

from __future__ import annotations

from collections.abc import Sequence

from server.store.backend import Row, Tx
from server.store.repository import Repository, marks


class Templates(Repository):
    async def seed(self, templates: Sequence[tuple[str, str, str, str]], now: str) -> None:
        """Add each (template_id, case_type, name, items_json) the database lacks; one an admin
        edited stays as it is."""

        def seed(tx: Tx) -> None:
            ids = [template[0] for template in templates]
            present = tx.all(
                f"SELECT template_id FROM checklist_templates"  # noqa: S608
                f" WHERE template_id IN ({marks(ids)})",
                ids,
            )
            if len(present) == len(ids):
                return
            tx.many(
                "INSERT INTO checklist_templates (template_id, case_type, name, items_json,"
                " version, updated_at) VALUES (?, ?, ?, ?, 1, ?)"
                " ON CONFLICT (template_id) DO NOTHING",
                [(*template, now) for template in templates],
            )

        await self._db.write(seed)

    async def all(self) -> list[Row]:
        return await self._all("SELECT * FROM checklist_templates ORDER BY template_id")

    async def get(self, template_id: str) -> Row | None:
        return await self._one(
            "SELECT * FROM checklist_templates WHERE template_id = ?", (template_id,)
        )

    async def for_case_type(self, case_type: str) -> Row | None:
        """The template named like the case type (lower case), else the first of that type."""
        return await self._one(
            "SELECT * FROM checklist_templates WHERE template_id = ? OR case_type = ?"
            " ORDER BY template_id = ? DESC, template_id LIMIT 1",
            (case_type.lower(), case_type, case_type.lower()),
        )

    async def put(
        self, template_id: str, case_type: str, name: str, items_json: str, by: int, now: str
    ) -> None:
        """Create the template or replace its content, bumping its version."""
        await self._run(
            "INSERT INTO checklist_templates (template_id, case_type, name, items_json, version,"
            " updated_by, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)"
            " ON CONFLICT (template_id) DO UPDATE SET case_type = excluded.case_type,"
            " name = excluded.name, items_json = excluded.items_json,"
            " version = checklist_templates.version + 1, updated_by = excluded.updated_by,"
            " updated_at = excluded.updated_at",
            (template_id, case_type, name, items_json, by, now),
        )

"""Cases, their inspectors and the passkeys each case's chain has enrolled."""

from __future__ import annotations

from collections.abc import Sequence

from server.store.backend import Tx
from server.store.models import Case
from server.store.repository import Repository

_INSERT_INSPECTOR = (
    "INSERT INTO case_inspectors (case_id, user_id, assigned_at, assigned_by) VALUES (?, ?, ?, ?)"
)


def add_case(tx: Tx, case: Case) -> None:
    tx.run(
        "INSERT INTO cases (case_id, title, address, applicant_name, applicant_phone,"
        " case_type, site_lat, site_lon, created_by, created_at, case_number, site_system,"
        " site_input_lat, site_input_lon) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            case.case_id,
            case.title,
            case.address,
            case.applicant_name,
            case.applicant_phone,
            case.case_type,
            case.site_lat,
            case.site_lon,
            case.created_by,
            case.created_at,
            case.number,
            case.site_system,
            case.site_input_lat,
            case.site_input_lon,
        ),
    )


class Cases(Repository):
    async def add(self, case: Case, inspector_ids: Sequence[int]) -> None:
        """The case and its first inspectors (assigned by its creator as it was created)."""

        def add(tx: Tx) -> None:
            add_case(tx, case)
            tx.many(
                _INSERT_INSPECTOR,
                [(case.case_id, uid, case.created_at, case.created_by) for uid in inspector_ids],
            )

        await self._db.write(add)

    async def get(self, case_id: str) -> Case | None:
        row = await self._one("SELECT * FROM cases WHERE case_id = ?", (case_id,))
        return Case(**row) if row else None

    async def by_number(self, number: str) -> Case | None:
        row = await self._one("SELECT * FROM cases WHERE case_number = ?", (number,))
        return Case(**row) if row else None

    async def recent(self, created_by: int | None = None, limit: int = 200) -> list[Case]:
        if created_by is None:
            rows = await self._all(
                "SELECT * FROM cases ORDER BY created_at DESC, case_id LIMIT ?", (limit,)
            )
        else:
            rows = await self._all(
                "SELECT * FROM cases WHERE created_by = ? ORDER BY created_at DESC, case_id"
                " LIMIT ?",
                (created_by, limit),
            )
        return [Case(**row) for row in rows]

    # inspectors

    async def is_assigned(self, case_id: str, user_id: int) -> bool:
        row = await self._one(
            "SELECT 1 AS assigned FROM case_inspectors WHERE case_id = ? AND user_id = ?",
            (case_id, user_id),
        )
        return row is not None

    async def inspector_names(self, case_id: str) -> list[str]:
        """The case's inspectors by name, in the order they were assigned."""
        rows = await self._all(
            "SELECT u.username FROM case_inspectors ci JOIN users u ON u.id = ci.user_id"
            " WHERE ci.case_id = ? ORDER BY ci.assigned_at, u.username",
            (case_id,),
        )
        return [row["username"] for row in rows]

    async def assign(self, case_id: str, user_id: int, now: str, by: int) -> None:
        await self._run(_INSERT_INSPECTOR, (case_id, user_id, now, by))

    async def unassign(self, case_id: str, user_id: int) -> None:
        await self._run(
            "DELETE FROM case_inspectors WHERE case_id = ? AND user_id = ?", (case_id, user_id)
        )

    # passkeys enrolled in the case's chain

    async def passkey_seq(self, case_id: str, credential_id: str) -> int | None:
        """The chain seq of the ``passkey_enrolled`` entry of this credential in this case."""
        row = await self._one(
            "SELECT seq FROM case_passkeys WHERE case_id = ? AND credential_id = ?",
            (case_id, credential_id),
        )
        return int(row["seq"]) if row else None

    async def add_passkey(self, case_id: str, credential_id: str, seq: int) -> None:
        await self._run(
            "INSERT INTO case_passkeys (case_id, credential_id, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (case_id, credential_id) DO UPDATE SET seq = excluded.seq",
            (case_id, credential_id, seq),
        )

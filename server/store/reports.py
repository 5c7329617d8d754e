"""Report versions: a row whose ``html_sha256`` is ``PENDING`` reserves a version being
generated (so two generations never write the same keys) and tells readers to wait."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from server.store.backend import Row, Tx
from server.store.repository import Repository

PENDING = ""  # html_sha256 of a reports row whose files are still being generated


class Reports(Repository):
    async def latest(self, inspection_id: str) -> Row | None:
        """The newest complete version, if any."""
        return await self._one(
            "SELECT * FROM reports WHERE inspection_id = ? AND html_sha256 != ?"
            " ORDER BY version DESC LIMIT 1",
            (inspection_id, PENDING),
        )

    async def pending_since(self, inspection_id: str) -> list[str]:
        """When each version being generated was reserved."""
        rows = await self._all(
            "SELECT created_at FROM reports WHERE inspection_id = ? AND html_sha256 = ?",
            (inspection_id, PENDING),
        )
        return [row["created_at"] for row in rows]

    async def reserve(
        self,
        inspection_id: str,
        chained: Sequence[int],
        keys: Callable[[int], tuple[str, str]],
        now: str,
        is_stale: Callable[[str], bool],
    ) -> int | None:
        """Reserve the next version above every row's and ``chained`` (a pending row whose
        ``keys(version)`` are its HTML and PDF keys); None while another generation holds a
        version that is not ``is_stale(reserved_at)``."""

        def reserve(tx: Tx) -> int | None:
            # The inspection's row is the lock: processes reserve one at a time.
            tx.run(
                "SELECT inspection_id FROM inspections WHERE inspection_id = ?"  # noqa: S608
                + tx.dialect.for_update,
                (inspection_id,),
            )
            rows = tx.all(
                "SELECT version, html_sha256, created_at FROM reports WHERE inspection_id = ?",
                (inspection_id,),
            )
            for row in rows:
                if row["html_sha256"] == PENDING:
                    if not is_stale(row["created_at"]):
                        return None
                    tx.run(
                        "DELETE FROM reports WHERE inspection_id = ? AND version = ?",
                        (inspection_id, row["version"]),
                    )
            version = max([0, *chained, *(int(row["version"]) for row in rows)]) + 1
            html_key, pdf_key = keys(version)
            tx.run(
                "INSERT INTO reports (inspection_id, version, html_key, html_sha256, pdf_key,"
                " pdf_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (inspection_id, version, html_key, PENDING, pdf_key, PENDING, now),
            )
            return version

        return await self._db.write(reserve)

    async def complete(
        self, inspection_id: str, version: int, html_sha256: str, pdf_sha256: str, now: str
    ) -> None:
        await self._run(
            "UPDATE reports SET html_sha256 = ?, pdf_sha256 = ?, created_at = ?"
            " WHERE inspection_id = ? AND version = ?",
            (html_sha256, pdf_sha256, now, inspection_id, version),
        )

    async def release(self, inspection_id: str, version: int) -> None:
        """Drop a reservation whose generation failed (its number is not reused)."""
        await self._run(
            "DELETE FROM reports WHERE inspection_id = ? AND version = ? AND html_sha256 = ?",
            (inspection_id, version, PENDING),
        )

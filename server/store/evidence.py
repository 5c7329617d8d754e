"""The evidence index: snapshots, annotations, location fixes, liveness challenges and
checklist marks. The archive holds the evidence; these rows index it for pages and searches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from server.store.backend import Row, Tx
from server.store.repository import Repository, marks

# The columns a caller may write, per table (names go into SQL text: never from input).
COLUMNS: dict[str, tuple[str, ...]] = {
    "snapshots": (
        "snapshot_id",
        "inspection_id",
        "object_key",
        "sha256",
        "size",
        "width",
        "height",
        "taken_at",
        "media_pts",
        "lat",
        "lon",
        "taken_by",
        "chain_seq",
    ),
    "annotations": (
        "annotation_id",
        "snapshot_id",
        "object_key",
        "sha256",
        "created_by",
        "created_at",
    ),
    "locations": (
        "inspection_id",
        "lat",
        "lon",
        "accuracy_m",
        "fix_at",
        "received_at",
        "chain_seq",
    ),
    "challenges": (
        "challenge_id",
        "inspection_id",
        "kind",
        "prompt",
        "issued_by",
        "issued_at",
        "shown_at",
        "judged_at",
        "judgement",
        "note",
    ),
    "checklist_marks": (
        "inspection_id",
        "item_id",
        "done",
        "note",
        "marked_by",
        "marked_at",
        "snapshot_ids",
        "verdict",
    ),
}

_SNAPSHOT = (
    "SELECT s.snapshot_id, s.inspection_id, i.case_id, s.object_key AS key, s.sha256, s.size,"
    " s.width, s.height, s.taken_at, s.media_pts, s.lat, s.lon,"
    " COALESCE(u.username, '') AS by, s.chain_seq"
    " FROM snapshots s JOIN inspections i ON i.inspection_id = s.inspection_id"
    " LEFT JOIN users u ON u.id = s.taken_by"
)
_ANNOTATION = (
    "SELECT a.annotation_id, a.snapshot_id, a.object_key AS key, a.sha256,"
    " COALESCE(u.username, '') AS by, a.created_at"
    " FROM annotations a LEFT JOIN users u ON u.id = a.created_by"
)


def insert(tx: Tx, table: str, row: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """One row of ``table``; every key must be one of ``allowed``."""
    unknown = set(row) - set(allowed)
    if unknown:
        raise ValueError(f"{table} has no column {sorted(unknown)[0]!r}")
    columns = ", ".join(row)
    tx.run(
        f"INSERT INTO {table} ({columns}) VALUES ({marks(list(row))})",  # noqa: S608
        tuple(row.values()),
    )


class Evidence(Repository):
    async def _insert(self, table: str, row: Mapping[str, Any]) -> None:
        await self._db.write(lambda tx: insert(tx, table, row, COLUMNS[table]))

    # snapshots

    async def add_snapshot(self, row: Mapping[str, Any]) -> None:
        await self._insert("snapshots", row)

    async def snapshot(self, snapshot_id: str) -> Row | None:
        """The snapshot with its case ID and its taker's name (``by``); ``object_key`` as
        ``key``."""
        return await self._one(_SNAPSHOT + " WHERE s.snapshot_id = ?", (snapshot_id,))

    async def snapshots_of(self, inspection_id: str) -> list[Row]:
        return await self._all(
            _SNAPSHOT + " WHERE s.inspection_id = ? ORDER BY s.taken_at, s.chain_seq",
            (inspection_id,),
        )

    async def existing_snapshots(self, inspection_id: str, snapshot_ids: Sequence[str]) -> set[str]:
        """Which of ``snapshot_ids`` the inspection took."""
        if not snapshot_ids:
            return set()
        rows = await self._all(
            f"SELECT snapshot_id FROM snapshots WHERE inspection_id = ?"  # noqa: S608
            f" AND snapshot_id IN ({marks(snapshot_ids)})",
            (inspection_id, *snapshot_ids),
        )
        return {row["snapshot_id"] for row in rows}

    async def inspection_of_snapshot(self, snapshot_id: str) -> str | None:
        row = await self._one(
            "SELECT inspection_id FROM snapshots WHERE snapshot_id = ?", (snapshot_id,)
        )
        return row["inspection_id"] if row else None

    # annotations

    async def add_annotation(self, row: Mapping[str, Any]) -> None:
        await self._insert("annotations", row)

    async def annotations_of(self, snapshot_id: str) -> list[Row]:
        return await self._all(
            _ANNOTATION + " WHERE a.snapshot_id = ? ORDER BY a.created_at, a.annotation_id",
            (snapshot_id,),
        )

    async def annotation_place(self, annotation_id: str) -> Row | None:
        """The annotation's ``object_key`` and its snapshot's ``inspection_id``."""
        return await self._one(
            "SELECT a.object_key, s.inspection_id FROM annotations a"
            " JOIN snapshots s ON s.snapshot_id = a.snapshot_id WHERE a.annotation_id = ?",
            (annotation_id,),
        )

    # location fixes

    async def add_location(self, row: Mapping[str, Any]) -> None:
        await self._insert("locations", row)

    async def latest_location(self, inspection_id: str) -> Row | None:
        """The inspection's last fix, with ``trail``: how many fixes it has."""
        return await self._one(
            "SELECT lat, lon, accuracy_m, fix_at, received_at, chain_seq,"
            " (SELECT COUNT(*) FROM locations WHERE inspection_id = ?) AS trail"
            " FROM locations WHERE inspection_id = ? ORDER BY id DESC LIMIT 1",
            (inspection_id, inspection_id),
        )

    # liveness challenges

    async def add_challenge(self, row: Mapping[str, Any]) -> None:
        await self._insert("challenges", row)

    async def challenges_of(self, inspection_id: str) -> list[Row]:
        return await self._all(
            "SELECT * FROM challenges WHERE inspection_id = ? ORDER BY issued_at, challenge_id",
            (inspection_id,),
        )

    async def challenge(self, inspection_id: str, challenge_id: str) -> Row | None:
        return await self._one(
            "SELECT * FROM challenges WHERE challenge_id = ? AND inspection_id = ?",
            (challenge_id, inspection_id),
        )

    async def challenge_shown(self, challenge_id: str, shown_at: str) -> None:
        await self._run(
            "UPDATE challenges SET shown_at = ? WHERE challenge_id = ?", (shown_at, challenge_id)
        )

    async def challenge_judged(
        self, challenge_id: str, judged_at: str, judgement: str, note: str
    ) -> None:
        await self._run(
            "UPDATE challenges SET judged_at = ?, judgement = ?, note = ? WHERE challenge_id = ?",
            (judged_at, judgement, note, challenge_id),
        )

    # checklist marks

    async def marks_of(self, inspection_id: str) -> list[Row]:
        """The inspection's marks, each with its marker's name (``by``)."""
        return await self._all(
            "SELECT m.item_id, m.done, m.note, m.snapshot_ids, COALESCE(u.username, '') AS by,"
            " m.marked_at, m.verdict FROM checklist_marks m"
            " LEFT JOIN users u ON u.id = m.marked_by WHERE m.inspection_id = ?",
            (inspection_id,),
        )

    async def put_mark(self, row: Mapping[str, Any]) -> None:
        """The item's mark, replacing the one before."""
        unknown = set(row) - set(COLUMNS["checklist_marks"])
        if unknown or not {"inspection_id", "item_id"} <= set(row):
            raise ValueError(f"a checklist mark needs its keys and known columns: {sorted(row)}")
        changed = [column for column in row if column not in ("inspection_id", "item_id")]
        updates = ", ".join(f"{column} = excluded.{column}" for column in changed)
        await self._run(
            f"INSERT INTO checklist_marks ({', '.join(row)}) VALUES ({marks(list(row))})"  # noqa: S608
            f" ON CONFLICT (inspection_id, item_id) DO UPDATE SET {updates}",
            tuple(row.values()),
        )

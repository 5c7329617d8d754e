"""A case's rows all at once: read for the cross-check against its chain, replaced by
``takan reindex`` from what its chain says."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.store.backend import Row, Tx
from server.store.cases import add_case
from server.store.evidence import COLUMNS, insert
from server.store.models import Case
from server.store.repository import Repository, marks

EVIDENCE_TABLES = (  # children first, for the foreign keys
    "annotations",
    "snapshots",
    "checklist_marks",
    "locations",
    "challenges",
    "reports",
    "participants",
    "inspections",
    "case_inspectors",
    "cases",
)
# the tables of an inspection's rows, below the annotations (deleted through their snapshot)
INSPECTION_TABLES = EVIDENCE_TABLES[1:7]
_COLUMNS = {
    **COLUMNS,
    "inspections": (
        "inspection_id",
        "case_id",
        "status",
        "created_by",
        "created_at",
        "ended_at",
        "invite_expires_at",
        "short_code",
        "consented_at",
        "outcome",
        "concluded_at",
        "conclusion_reason",
        "scheduled_at",
        "template_id",
        "conclusion_seq",
    ),
    "participants": (
        "inspection_id",
        "participant_id",
        "role",
        "user_id",
        "display_name",
        "joined_at",
        "left_at",
    ),
    "reports": (
        "inspection_id",
        "version",
        "html_key",
        "html_sha256",
        "pdf_key",
        "pdf_sha256",
        "created_at",
    ),
    "case_inspectors": ("case_id", "user_id", "assigned_at", "assigned_by"),
}


@dataclass(slots=True)
class InspectionRows:
    inspection: Row
    participants: list[Row] = field(default_factory=list)  # in the order they joined
    snapshots: list[Row] = field(default_factory=list)
    annotations: list[Row] = field(default_factory=list)
    marks: list[Row] = field(default_factory=list)
    locations: list[Row] = field(default_factory=list)
    challenges: list[Row] = field(default_factory=list)
    reports: list[Row] = field(default_factory=list)  # complete versions only

    def children(self) -> tuple[tuple[str, list[Row]], ...]:
        """(table, rows), parents first."""
        return (
            ("participants", self.participants),
            ("snapshots", self.snapshots),
            ("annotations", self.annotations),
            ("checklist_marks", self.marks),
            ("locations", self.locations),
            ("challenges", self.challenges),
            ("reports", self.reports),
        )


@dataclass(slots=True)
class CaseRows:
    case_id: str
    case: Row | None = None
    inspectors: list[Row] = field(default_factory=list)  # case_inspectors, as assigned
    inspections: list[InspectionRows] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # the cited users by id (read only)

    def name(self, user_id: int | None) -> str:
        """The user's name ("" for none, ``#id`` for an id no user has)."""
        if user_id is None:
            return ""
        return self.names.get(user_id, f"#{user_id}")


_USER_COLUMNS = ("created_by", "assigned_by", "user_id", "taken_by", "marked_by", "issued_by")


def _user_ids(rows: CaseRows) -> set[int]:
    every = [row for row in (rows.case, *rows.inspectors) if row is not None]
    for inspection in rows.inspections:
        every.append(inspection.inspection)
        for _, children in inspection.children():
            every.extend(children)
    return {
        row[column] for row in every for column in _USER_COLUMNS if isinstance(row.get(column), int)
    }


def _read(tx: Tx, case_id: str) -> CaseRows:
    rows = CaseRows(case_id, case=tx.one("SELECT * FROM cases WHERE case_id = ?", (case_id,)))
    rows.inspectors = tx.all(
        "SELECT * FROM case_inspectors WHERE case_id = ? ORDER BY assigned_at, user_id", (case_id,)
    )
    for inspection in tx.all(
        "SELECT * FROM inspections WHERE case_id = ? ORDER BY created_at, inspection_id",
        (case_id,),
    ):
        key = (inspection["inspection_id"],)
        rows.inspections.append(
            InspectionRows(
                inspection,
                participants=tx.all(
                    "SELECT * FROM participants WHERE inspection_id = ? ORDER BY id", key
                ),
                snapshots=tx.all("SELECT * FROM snapshots WHERE inspection_id = ?", key),
                annotations=tx.all(
                    "SELECT a.* FROM annotations a JOIN snapshots s"
                    " ON s.snapshot_id = a.snapshot_id WHERE s.inspection_id = ?",
                    key,
                ),
                marks=tx.all("SELECT * FROM checklist_marks WHERE inspection_id = ?", key),
                locations=tx.all(
                    "SELECT * FROM locations WHERE inspection_id = ? ORDER BY id", key
                ),
                challenges=tx.all(
                    "SELECT * FROM challenges WHERE inspection_id = ?"
                    " ORDER BY issued_at, challenge_id",
                    key,
                ),
                reports=tx.all(
                    "SELECT * FROM reports WHERE inspection_id = ? AND html_sha256 != ''"
                    " ORDER BY version",
                    key,
                ),
            )
        )
    cited = sorted(_user_ids(rows))
    if cited:  # the names of the users the rows cite, not of every user
        named = tx.all(f"SELECT id, username FROM users WHERE id IN ({marks(cited)})", cited)  # noqa: S608
        rows.names = {int(r["id"]): r["username"] for r in named}
    return rows


def _delete(tx: Tx, case_id: str) -> None:
    inspections = "(SELECT inspection_id FROM inspections WHERE case_id = ?)"
    tx.run(
        "DELETE FROM annotations WHERE snapshot_id IN (SELECT s.snapshot_id FROM snapshots s"
        " JOIN inspections i ON i.inspection_id = s.inspection_id WHERE i.case_id = ?)",
        (case_id,),
    )
    for table in INSPECTION_TABLES:
        tx.run(
            f"DELETE FROM {table} WHERE inspection_id IN {inspections}",  # noqa: S608
            (case_id,),
        )
    tx.run("DELETE FROM inspections WHERE case_id = ?", (case_id,))
    tx.run("DELETE FROM case_inspectors WHERE case_id = ?", (case_id,))
    tx.run("DELETE FROM cases WHERE case_id = ?", (case_id,))


class CaseIndex(Repository):
    async def rows(self, case_id: str) -> CaseRows:
        return await self._db.read(lambda tx: _read(tx, case_id))

    async def replace(self, case: Case, rows: CaseRows) -> None:
        """Delete the case's rows and write ``case`` and ``rows`` instead, in one transaction."""

        def replace(tx: Tx) -> None:
            _delete(tx, rows.case_id)
            add_case(tx, case)
            for row in rows.inspectors:
                insert(tx, "case_inspectors", row, _COLUMNS["case_inspectors"])
            for inspection in rows.inspections:
                insert(tx, "inspections", inspection.inspection, _COLUMNS["inspections"])
                for table, children in inspection.children():
                    for row in children:
                        insert(tx, table, row, _COLUMNS[table])

        await self._db.write(replace)

    async def has_evidence(self) -> bool:
        """Whether the database holds any case or inspection row."""
        row = await self._one(
            "SELECT (EXISTS (SELECT 1 FROM cases) OR EXISTS (SELECT 1 FROM inspections)) AS found"
        )
        return bool(row and row["found"])

    async def clear(self) -> None:
        """Delete every evidential row (users, sessions and checklist templates stay)."""

        def clear(tx: Tx) -> None:
            for table in EVIDENCE_TABLES:
                tx.run(f"DELETE FROM {table}")  # noqa: S608 - names from the tuple above

        await self._db.write(clear)

"""Rebuild the database's evidential rows of a case from what its chain says (``takan reindex``).

Cases, inspections, participants, checklist marks, snapshots, annotations, location fixes,
challenges and reports are all written from a ``CaseRecord``. Users are not in the archive: a
name the chain cites that the database does not know becomes a locked account (no password
opens it) as an inspector (the chain's rows are all made by inspectors), so the rows can name who
did what; an admin gives it a password with ``takan user add NAME --role ROLE``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from recorder.chain import parse_utc
from server.inspection.chain_record import CaseRecord, InspectionFacts
from server.store.db import Case, Database

# Not a scrypt hash, so no password matches it.
LOCKED_PASSWORD = "!locked: restored by takan reindex"  # noqa: S105
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


class ReindexError(Exception):
    """A case the chain cannot index (it holds no case_created entry)."""


@dataclass(slots=True)
class Accounts:
    """Users by name; names the database lacks become locked accounts (``restored``)."""

    db: Database
    now: str
    restored: dict[str, str] = field(default_factory=dict)  # name -> role

    def id_of(self, name: str, role: str = "inspector") -> int:
        user = self.db.user_by_name(name)
        if user is None:
            user = self.db.add_user(name, role, LOCKED_PASSWORD, self.now)
            self.restored[name] = role
        return user.id

    def optional_id_of(self, name: str) -> int | None:
        return self.id_of(name) if name else None


def has_evidence(db: Database) -> bool:
    """Whether the database holds any case or inspection row."""
    row = db.conn.execute(
        "SELECT EXISTS (SELECT 1 FROM cases) OR EXISTS (SELECT 1 FROM inspections)"
    ).fetchone()
    return bool(row[0])


def clear_evidence(db: Database) -> None:
    """Delete every evidential row (users, sessions and checklist templates stay)."""
    with db.transaction():
        for table in EVIDENCE_TABLES:
            db.conn.execute(f"DELETE FROM {table}")  # noqa: S608 - names from the tuple above


@dataclass(frozen=True, slots=True)
class IndexedCase:
    case_id: str
    inspections: int
    participants: int
    snapshots: int
    marks: int
    reports: int


def index_case(db: Database, record: CaseRecord, accounts: Accounts) -> IndexedCase:
    """Replace the case's rows by what the chain says, in one transaction."""
    case = record.case
    if case is None:
        raise ReindexError("the chain holds no case_created entry")
    site, entered = case.site(), case.site_input()
    with db.transaction():
        _delete_case(db, record.case_id)
        db.add_case(
            Case(
                case_id=case.case_id,
                title=case.title,
                address=case.address,
                applicant_name=case.applicant_name,
                applicant_phone=case.applicant_phone,
                case_type=case.case_type,
                site_lat=site[0] if site else None,
                site_lon=site[1] if site else None,
                created_by=accounts.id_of(case.created_by or "unknown"),
                created_at=case.created_at.at,
                case_number=case.case_number,
                site_system=case.site_system,
                site_input_lat=entered[0] if entered else None,
                site_input_lon=entered[1] if entered else None,
            )
        )
        db.conn.executemany(
            "INSERT INTO case_inspectors (case_id, user_id, assigned_at, assigned_by)"
            " VALUES (?, ?, ?, ?)",
            [
                (case.case_id, accounts.id_of(a.inspector), a.at.at, accounts.optional_id_of(a.by))
                for a in case.inspectors
            ],
        )
        for inspection in record.inspections:
            _index_inspection(db, record.case_id, inspection, accounts)
    return IndexedCase(
        case_id=record.case_id,
        inspections=len(record.inspections),
        participants=sum(len(i.participants) for i in record.inspections),
        snapshots=sum(len(i.snapshots) for i in record.inspections),
        marks=sum(len(i.marks) for i in record.inspections),
        reports=sum(len(i.reports) for i in record.inspections),
    )


def _delete_case(db: Database, case_id: str) -> None:
    conn = db.conn
    inspections = "(SELECT inspection_id FROM inspections WHERE case_id = ?)"
    conn.execute(
        "DELETE FROM annotations WHERE snapshot_id IN (SELECT s.snapshot_id FROM snapshots s"
        " JOIN inspections i ON i.inspection_id = s.inspection_id WHERE i.case_id = ?)",
        (case_id,),
    )
    for table in INSPECTION_TABLES:
        conn.execute(
            f"DELETE FROM {table} WHERE inspection_id IN {inspections}",  # noqa: S608
            (case_id,),
        )
    conn.execute("DELETE FROM inspections WHERE case_id = ?", (case_id,))
    conn.execute("DELETE FROM case_inspectors WHERE case_id = ?", (case_id,))
    conn.execute("DELETE FROM cases WHERE case_id = ?", (case_id,))


def _epoch(text: str | None) -> int:
    try:
        return int(parse_utc(text).timestamp()) if text else 0
    except ValueError:
        return 0


def _index_inspection(
    db: Database, case_id: str, inspection: InspectionFacts, accounts: Accounts
) -> None:
    conn = db.conn
    inspection_id = inspection.inspection_id
    conclusion = inspection.conclusion
    conn.execute(
        "INSERT INTO inspections (inspection_id, case_id, status, created_by, created_at,"
        " ended_at, invite_expires_at, short_code, consented_at, outcome, concluded_at,"
        " conclusion_reason, scheduled_at, template_id, conclusion_seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
        (
            inspection_id,
            case_id,
            inspection.status,
            accounts.id_of(inspection.created_by or "unknown"),
            inspection.created_at.at,
            inspection.ended_at.at if inspection.ended_at else None,
            _epoch(inspection.invite_expires_at),
            inspection.consented_at.at if inspection.consented_at else None,
            conclusion.outcome if conclusion else None,
            conclusion.at if conclusion else None,
            conclusion.reason if conclusion else None,
            inspection.scheduled_at,
            inspection.template_id,
            conclusion.seq if conclusion else None,
        ),
    )
    for p in inspection.participants:
        user_id = accounts.id_of(p.display_name) if p.role == "inspector" else None
        conn.execute(
            "INSERT INTO participants (inspection_id, participant_id, role, user_id,"
            " display_name, joined_at, left_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                inspection_id,
                p.participant_id,
                p.role,
                user_id,
                p.display_name,
                p.joined_at.at,
                p.left_at.at if p.left_at else None,
            ),
        )
    for s in inspection.snapshots:
        conn.execute(
            "INSERT INTO snapshots (snapshot_id, inspection_id, object_key, sha256, size, width,"
            " height, taken_at, media_pts, lat, lon, taken_by, chain_seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.snapshot_id,
                inspection_id,
                s.key,
                s.sha256,
                s.size,
                s.width,
                s.height,
                s.taken_at,
                s.media_pts,
                s.lat,
                s.lon,
                accounts.optional_id_of(s.by),
                s.seq,
            ),
        )
    for a in inspection.annotations:
        conn.execute(
            "INSERT INTO annotations (annotation_id, snapshot_id, object_key, sha256,"
            " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                a.annotation_id,
                a.snapshot_id,
                a.key,
                a.sha256,
                accounts.optional_id_of(a.by),
                a.created_at.at,
            ),
        )
    for m in inspection.marks:
        conn.execute(
            "INSERT INTO checklist_marks (inspection_id, item_id, done, note, marked_by,"
            " marked_at, snapshot_ids, verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inspection_id,
                m.item_id,
                int(m.done),
                m.note,
                accounts.optional_id_of(m.by),
                m.marked_at.at,
                json.dumps(list(m.snapshot_ids)),
                m.verdict,
            ),
        )
    for f in inspection.locations:
        conn.execute(
            "INSERT INTO locations (inspection_id, lat, lon, accuracy_m, fix_at, received_at,"
            " chain_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (inspection_id, f.lat, f.lon, f.accuracy_m, f.fix_at, f.received_at, f.seq),
        )
    for c in inspection.challenges:
        conn.execute(
            "INSERT INTO challenges (challenge_id, inspection_id, kind, prompt, issued_by,"
            " issued_at, shown_at, judged_at, judgement, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.challenge_id,
                inspection_id,
                c.kind,
                c.prompt,
                accounts.optional_id_of(c.by),
                c.issued_at.at,
                c.shown_at.at if c.shown_at else None,
                c.judged_at.at if c.judged_at else None,
                c.judgement,
                c.note,
            ),
        )
    for r in inspection.reports:
        if r.html is None or r.pdf is None:
            continue  # cut off between its two files: the next generation makes a new version
        conn.execute(
            "INSERT INTO reports (inspection_id, version, html_key, html_sha256, pdf_key,"
            " pdf_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                inspection_id,
                r.version,
                r.html.key,
                r.html.sha256,
                r.pdf.key,
                r.pdf.sha256,
                r.created_at.at,
            ),
        )

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
from server.store.case_rows import CaseRows, InspectionRows
from server.store.models import Case
from server.store.store import Store

# Not a scrypt hash, so no password matches it.
LOCKED_PASSWORD = "!locked: restored by takan reindex"  # noqa: S105


class ReindexError(Exception):
    """A case the chain cannot index (it holds no case_created entry)."""


@dataclass(slots=True)
class Accounts:
    """Users by name; names the database lacks become locked accounts (``restored``)."""

    store: Store
    now: str
    ids: dict[str, int] = field(default_factory=dict)
    restored: dict[str, str] = field(default_factory=dict)  # name -> role

    async def resolve(self, names: set[str], role: str = "inspector") -> None:
        """Know the ids of ``names``, adding each unknown one as a locked account."""
        wanted = names - set(self.ids)
        ids, added = await self.store.users.ids_or_locked(wanted, role, LOCKED_PASSWORD, self.now)
        self.ids.update(ids)
        self.restored.update(dict.fromkeys(added, role))

    def id_of(self, name: str) -> int:
        return self.ids[name]

    def optional_id_of(self, name: str) -> int | None:
        return self.ids[name] if name else None


@dataclass(frozen=True, slots=True)
class IndexedCase:
    case_id: str
    inspections: int
    participants: int
    snapshots: int
    marks: int
    reports: int


def _names(record: CaseRecord) -> set[str]:
    """Every user name the case's rows cite."""
    case = record.case
    names = {case.created_by or "unknown"} if case else set()
    if case:
        names |= {a.inspector for a in case.inspectors} | {a.by for a in case.inspectors}
    for i in record.inspections:
        names.add(i.created_by or "unknown")
        names |= {p.display_name for p in i.participants if p.role == "inspector"}
        names |= {s.by for s in i.snapshots} | {a.by for a in i.annotations}
        names |= {m.by for m in i.marks} | {c.by for c in i.challenges}
    return names - {""}


async def index_case(store: Store, record: CaseRecord, accounts: Accounts) -> IndexedCase:
    """Replace the case's rows by what the chain says, in one transaction."""
    case = record.case
    if case is None:
        raise ReindexError("the chain holds no case_created entry")
    await accounts.resolve(_names(record))
    site, entered = case.site(), case.site_input()
    rows = CaseRows(
        record.case_id,
        inspectors=[
            {
                "case_id": case.case_id,
                "user_id": accounts.id_of(a.inspector),
                "assigned_at": a.at.at,
                "assigned_by": accounts.optional_id_of(a.by),
            }
            for a in case.inspectors
        ],
        inspections=[
            _inspection_rows(record.case_id, inspection, accounts)
            for inspection in record.inspections
        ],
    )
    await store.case_index.replace(
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
        ),
        rows,
    )
    return IndexedCase(
        case_id=record.case_id,
        inspections=len(record.inspections),
        participants=sum(len(i.participants) for i in record.inspections),
        snapshots=sum(len(i.snapshots) for i in record.inspections),
        marks=sum(len(i.marks) for i in record.inspections),
        reports=sum(len(i.reports) for i in record.inspections),
    )


def _epoch(text: str | None) -> int:
    try:
        return int(parse_utc(text).timestamp()) if text else 0
    except ValueError:
        return 0


def _inspection_rows(
    case_id: str, inspection: InspectionFacts, accounts: Accounts
) -> InspectionRows:
    inspection_id = inspection.inspection_id
    conclusion = inspection.conclusion
    return InspectionRows(
        {
            "inspection_id": inspection_id,
            "case_id": case_id,
            "status": inspection.status,
            "created_by": accounts.id_of(inspection.created_by or "unknown"),
            "created_at": inspection.created_at.at,
            "ended_at": inspection.ended_at.at if inspection.ended_at else None,
            "invite_expires_at": _epoch(inspection.invite_expires_at),
            "short_code": None,
            "consented_at": inspection.consented_at.at if inspection.consented_at else None,
            "outcome": conclusion.outcome if conclusion else None,
            "concluded_at": conclusion.at if conclusion else None,
            "conclusion_reason": conclusion.reason if conclusion else None,
            "scheduled_at": inspection.scheduled_at,
            "template_id": inspection.template_id,
            "conclusion_seq": conclusion.seq if conclusion else None,
        },
        participants=[
            {
                "inspection_id": inspection_id,
                "participant_id": p.participant_id,
                "role": p.role,
                "user_id": accounts.id_of(p.display_name) if p.role == "inspector" else None,
                "display_name": p.display_name,
                "joined_at": p.joined_at.at,
                "left_at": p.left_at.at if p.left_at else None,
            }
            for p in inspection.participants
        ],
        snapshots=[
            {
                "snapshot_id": s.snapshot_id,
                "inspection_id": inspection_id,
                "object_key": s.key,
                "sha256": s.sha256,
                "size": s.size,
                "width": s.width,
                "height": s.height,
                "taken_at": s.taken_at,
                "media_pts": s.media_pts,
                "lat": s.lat,
                "lon": s.lon,
                "taken_by": accounts.optional_id_of(s.by),
                "chain_seq": s.seq,
            }
            for s in inspection.snapshots
        ],
        annotations=[
            {
                "annotation_id": a.annotation_id,
                "snapshot_id": a.snapshot_id,
                "object_key": a.key,
                "sha256": a.sha256,
                "created_by": accounts.optional_id_of(a.by),
                "created_at": a.created_at.at,
            }
            for a in inspection.annotations
        ],
        marks=[
            {
                "inspection_id": inspection_id,
                "item_id": m.item_id,
                "done": int(m.done),
                "note": m.note,
                "marked_by": accounts.optional_id_of(m.by),
                "marked_at": m.marked_at.at,
                "snapshot_ids": json.dumps(list(m.snapshot_ids)),
                "verdict": m.verdict,
            }
            for m in inspection.marks
        ],
        locations=[
            {
                "inspection_id": inspection_id,
                "lat": f.lat,
                "lon": f.lon,
                "accuracy_m": f.accuracy_m,
                "fix_at": f.fix_at,
                "received_at": f.received_at,
                "chain_seq": f.seq,
            }
            for f in inspection.locations
        ],
        challenges=[
            {
                "challenge_id": c.challenge_id,
                "inspection_id": inspection_id,
                "kind": c.kind,
                "prompt": c.prompt,
                "issued_by": accounts.optional_id_of(c.by),
                "issued_at": c.issued_at.at,
                "shown_at": c.shown_at.at if c.shown_at else None,
                "judged_at": c.judged_at.at if c.judged_at else None,
                "judgement": c.judgement,
                "note": c.note,
            }
            for c in inspection.challenges
        ],
        reports=[
            {
                "inspection_id": inspection_id,
                "version": r.version,
                "html_key": r.html.key,
                "html_sha256": r.html.sha256,
                "pdf_key": r.pdf.key,
                "pdf_sha256": r.pdf.sha256,
                "created_at": r.created_at.at,
            }
            # one cut off between its two files: the next generation makes a new version
            for r in inspection.reports
            if r.html is not None and r.pdf is not None
        ],
    )

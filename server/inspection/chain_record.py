"""What a case's chain says: every fact a page, a search or a report shows, read from the entries.

The database is an index of the chain. This module folds a case's chain entries (in order) into
a ``CaseRecord``: the case fields, each inspection's times, participants, conclusions, checklist,
snapshots, annotations, location fixes, challenges and reports, each with the seq of the entry
that states it. ``takan reindex`` writes it into the database, the integrity check compares the
database with it, and a report is made from it. Pure: no I/O.

A time is a ``Stamp``: exact when the entry's body states it (the value the database was given),
else the entry's own ``at`` (entries chained before the bodies carried their times), which lies
a few milliseconds after the database's value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from recorder.chain import ChainEntry, parse_utc
from recorder.passkey import PasskeyAssertion, PasskeyEnrolment, user_verified

INEXACT_TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class Stamp:
    at: str
    seq: int
    exact: bool = True

    def agrees(self, database_value: str | None) -> bool:
        """Whether the database's time is this one (within a moment, for an inexact stamp)."""
        if database_value is None:
            return False
        if self.exact or database_value == self.at:
            return database_value == self.at
        try:
            delta = _instant(database_value) - _instant(self.at)
        except ValueError:
            return False
        return abs(delta) <= INEXACT_TOLERANCE_S


def _instant(text: str) -> float:
    try:
        return parse_utc(text).timestamp()
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True, slots=True)
class AssignmentFacts:
    """An inspector of the case: named by ``case_created`` or ``inspector_assigned``."""

    inspector: str
    by: str
    at: Stamp


@dataclass(frozen=True, slots=True)
class CaseFacts:
    case_id: str
    title: str
    address: str
    applicant_name: str
    applicant_phone: str
    case_type: str
    site_lat: str | None  # decimal strings, as chained (WGS-84)
    site_lon: str | None
    created_by: str
    created_at: Stamp
    seq: int
    stated: frozenset[str] = frozenset()  # the body's members: older bodies state fewer
    case_number: str = ""  # as written; bodies before numbers: the case ID
    site_system: str | None = None  # what the site was entered in; older bodies: WGS-84
    site_input_lat: str | None = None  # the site as entered; older bodies: site_lat/lon
    site_input_lon: str | None = None
    # the case's inspectors now; bodies before issue 19 name none: the creator was the one
    inspectors: tuple[AssignmentFacts, ...] = ()

    @property
    def inspector_names(self) -> tuple[str, ...]:
        return tuple(a.inspector for a in self.inspectors)

    def site(self) -> tuple[float, float] | None:
        if self.site_lat is None or self.site_lon is None:
            return None
        return float(self.site_lat), float(self.site_lon)

    def site_input(self) -> tuple[float, float] | None:
        if self.site_input_lat is None or self.site_input_lon is None:
            return None
        return float(self.site_input_lat), float(self.site_input_lon)


@dataclass(frozen=True, slots=True)
class ParticipantFacts:
    participant_id: str
    role: str
    display_name: str
    joined_at: Stamp
    left_at: Stamp | None
    seq: int


@dataclass(frozen=True, slots=True)
class ChecklistItemFacts:
    item_id: str
    text: str
    required_photos: int
    required: bool = True  # conclusions chained before items could be optional: all required


@dataclass(frozen=True, slots=True)
class ChecklistFacts:
    """The checklist template an inspection was concluded against, as its conclusion chains it."""

    template_id: str
    version: int | None
    name: str
    items: tuple[ChecklistItemFacts, ...]


@dataclass(frozen=True, slots=True)
class ConclusionFacts:
    seq: int
    outcome: str
    reason: str
    by: str
    at: str
    signature: str
    key_fingerprint: str
    refers_to: int | None
    checklist: ChecklistFacts | None
    passkey_mode: str | None = None  # the deployment's; None: chained before passkeys
    passkey: PasskeyFacts | None = None  # None: signed by the archive key alone


@dataclass(frozen=True, slots=True)
class PasskeyFacts:
    """The inspector's passkey that signed a conclusion, as its enrolment entry names it (the
    verifiers check the signature; this is what a report shows of it)."""

    username: str
    fingerprint: str
    credential_id: str
    user_verified: bool


@dataclass(frozen=True, slots=True)
class MarkFacts:
    item_id: str
    done: bool
    note: str
    snapshot_ids: tuple[str, ...]
    by: str
    marked_at: Stamp
    template_id: str
    template_version: int | None
    seq: int
    verdict: str | None = None  # pass, fail or not_applicable; None for an older "done" tick


@dataclass(frozen=True, slots=True)
class SnapshotFacts:
    snapshot_id: str
    key: str
    sha256: str
    size: int
    width: int
    height: int
    taken_at: str
    media_pts: int | None
    lat: str | None
    lon: str | None
    by: str
    seq: int


@dataclass(frozen=True, slots=True)
class AnnotationFacts:
    annotation_id: str
    snapshot_id: str
    key: str
    sha256: str
    by: str
    created_at: Stamp
    seq: int


@dataclass(frozen=True, slots=True)
class MarkedUpFacts:
    """A snapshot's copy with an annotation drawn on it (``annotation_rendered``)."""

    annotation_id: str
    snapshot_id: str
    key: str
    sha256: str
    size: int
    renderer: str
    font: str
    seq: int


@dataclass(frozen=True, slots=True)
class LocationFacts:
    lat: str
    lon: str
    accuracy_m: str
    fix_at: str
    received_at: str
    seq: int


@dataclass(frozen=True, slots=True)
class ChallengeFacts:
    challenge_id: str
    kind: str
    prompt: str
    by: str
    issued_at: Stamp
    shown_at: Stamp | None = None
    judged_at: Stamp | None = None
    judgement: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReportFileFacts:
    key: str
    sha256: str
    seq: int


@dataclass(frozen=True, slots=True)
class ReportFacts:
    version: int
    html: ReportFileFacts | None
    pdf: ReportFileFacts | None
    created_at: Stamp


@dataclass(frozen=True, slots=True)
class InspectionFacts:
    inspection_id: str
    created_by: str
    created_at: Stamp
    invite_expires_at: str | None
    scheduled_at: str | None
    consented_at: Stamp | None
    ended_at: Stamp | None
    manifest_seq: int | None
    participants: tuple[ParticipantFacts, ...]
    conclusions: tuple[ConclusionFacts, ...]
    marks: tuple[MarkFacts, ...]  # the latest mark of each item, in the order first marked
    snapshots: tuple[SnapshotFacts, ...]
    annotations: tuple[AnnotationFacts, ...]
    locations: tuple[LocationFacts, ...]
    challenges: tuple[ChallengeFacts, ...]
    reports: tuple[ReportFacts, ...]
    seq: int
    marked_up: tuple[MarkedUpFacts, ...] = ()

    @property
    def status(self) -> str:
        return "ended" if self.ended_at is not None else "active"

    @property
    def conclusion(self) -> ConclusionFacts | None:
        """The conclusion in force: the last one chained."""
        return self.conclusions[-1] if self.conclusions else None

    @property
    def template_id(self) -> str | None:
        conclusion = self.conclusion
        if conclusion is not None and conclusion.checklist is not None:
            return conclusion.checklist.template_id
        return self.marks[-1].template_id if self.marks else None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    case_id: str
    case: CaseFacts | None  # None: the chain holds no case_created entry
    inspections: tuple[InspectionFacts, ...]
    entries: int

    def inspection(self, inspection_id: str) -> InspectionFacts | None:
        return next((i for i in self.inspections if i.inspection_id == inspection_id), None)

    @classmethod
    def from_entries(cls, case_id: str, entries: Iterable[ChainEntry]) -> CaseRecord:
        fold = _Fold(case_id)
        for entry in entries:
            fold.add(entry)
        return fold.record()


# the fold


def _text(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name)
    return value if isinstance(value, str) else default


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None


def _int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _stamp(entry: ChainEntry, name: str) -> Stamp:
    """The time ``name`` of the body, or (before bodies carried it) the entry's own time."""
    value = entry.body.get(name)
    if isinstance(value, str):
        return Stamp(value, entry.seq)
    return Stamp(entry.at, entry.seq, exact=False)


def _checklist(value: Any) -> ChecklistFacts | None:
    if not isinstance(value, dict) or not isinstance(value.get("template_id"), str):
        return None
    items = tuple(
        ChecklistItemFacts(
            _text(item, "item_id"),
            _text(item, "text"),
            _int(item, "required_photos") or 0,
            item.get("required") is not False,
        )
        for item in value.get("items", [])
        if isinstance(item, dict)
    )
    return ChecklistFacts(value["template_id"], _int(value, "version"), _text(value, "name"), items)


@dataclass(slots=True)
class _Inspection:
    """An inspection while its entries are folded in."""

    facts: InspectionFacts
    participants: list[ParticipantFacts] = field(default_factory=list)
    conclusions: list[ConclusionFacts] = field(default_factory=list)
    marks: dict[str, MarkFacts] = field(default_factory=dict)
    snapshots: list[SnapshotFacts] = field(default_factory=list)
    annotations: list[AnnotationFacts] = field(default_factory=list)
    marked_up: list[MarkedUpFacts] = field(default_factory=list)
    locations: list[LocationFacts] = field(default_factory=list)
    challenges: dict[str, ChallengeFacts] = field(default_factory=dict)
    reports: dict[int, ReportFacts] = field(default_factory=dict)

    def freeze(self) -> InspectionFacts:
        return replace(
            self.facts,
            participants=tuple(self.participants),
            conclusions=tuple(self.conclusions),
            marks=tuple(self.marks.values()),
            snapshots=tuple(self.snapshots),
            annotations=tuple(self.annotations),
            marked_up=tuple(self.marked_up),
            locations=tuple(self.locations),
            challenges=tuple(self.challenges.values()),
            reports=tuple(self.reports[v] for v in sorted(self.reports)),
        )


class _Fold:
    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        self.case: CaseFacts | None = None
        self.inspections: dict[str, _Inspection] = {}
        self.enrolments: dict[str, PasskeyEnrolment] = {}
        self.entries = 0

    def record(self) -> CaseRecord:
        inspections = tuple(i.freeze() for i in self.inspections.values())
        return CaseRecord(self.case_id, self.case, inspections, self.entries)

    def add(self, entry: ChainEntry) -> None:
        self.entries += 1
        body = entry.body
        if entry.kind == "case_created":
            self._case_created(entry)
            return
        if entry.kind in ("inspector_assigned", "inspector_unassigned"):
            self._assignment(entry)
            return
        if entry.kind == "passkey_enrolled":
            with contextlib.suppress(ValueError, TypeError):  # verify names a bad one
                enrolment = PasskeyEnrolment.from_body(body)
                self.enrolments[enrolment.credential_id] = enrolment
            return
        inspection_id = body.get("inspection_id")
        if entry.kind == "invited" and isinstance(inspection_id, str):
            self._invited(entry, inspection_id)
            return
        current = self.inspections.get(inspection_id) if isinstance(inspection_id, str) else None
        handler = _HANDLERS.get(entry.kind)
        if current is not None and handler is not None:
            handler(self, current, entry)

    def _case_created(self, entry: ChainEntry) -> None:
        body = entry.body
        site_lat, site_lon = _optional_text(body, "site_lat"), _optional_text(body, "site_lon")
        if "site_system" in body:
            system = _optional_text(body, "site_system")
            entered = _optional_text(body, "site_input_lat"), _optional_text(body, "site_input_lon")
        else:  # chained before issue 19: a site was WGS-84, entered as it is
            system = "wgs84" if site_lat is not None and site_lon is not None else None
            entered = site_lat, site_lon
        self.case = CaseFacts(
            case_id=self.case_id,
            case_number=_text(body, "case_number", self.case_id),  # before: the ID was it
            title=_text(body, "title"),
            address=_text(body, "address"),
            applicant_name=_text(body, "applicant_name"),
            applicant_phone=_text(body, "applicant_phone"),
            case_type=_text(body, "case_type"),
            site_lat=site_lat,
            site_lon=site_lon,
            site_system=system,
            site_input_lat=entered[0],
            site_input_lon=entered[1],
            created_by=_text(body, "by"),
            created_at=_stamp(entry, "created_at"),
            seq=entry.seq,
            stated=frozenset(body),
            inspectors=self._first_inspectors(entry),
        )

    @staticmethod
    def _first_inspectors(entry: ChainEntry) -> tuple[AssignmentFacts, ...]:
        by, at = _text(entry.body, "by"), _stamp(entry, "created_at")
        named = entry.body.get("inspectors")
        if not isinstance(named, list):  # chained before issue 19: the creator inspects
            return (AssignmentFacts(by, by, at),) if by else ()
        return tuple(AssignmentFacts(n, by, at) for n in named if isinstance(n, str))

    def _assignment(self, entry: ChainEntry) -> None:
        if self.case is None:
            return
        name = _text(entry.body, "inspector")
        kept = tuple(a for a in self.case.inspectors if a.inspector != name)
        if entry.kind == "inspector_assigned":
            added = AssignmentFacts(name, _text(entry.body, "by"), _stamp(entry, "assigned_at"))
            kept += (added,)
        self.case = replace(self.case, inspectors=kept)

    def _invited(self, entry: ChainEntry, inspection_id: str) -> None:
        body = entry.body
        facts = InspectionFacts(
            inspection_id=inspection_id,
            created_by=_text(body, "by"),
            created_at=_stamp(entry, "created_at"),
            invite_expires_at=_optional_text(body, "invite_expires_at"),
            scheduled_at=_optional_text(body, "scheduled_at"),
            consented_at=None,
            ended_at=None,
            manifest_seq=None,
            participants=(),
            conclusions=(),
            marks=(),
            snapshots=(),
            annotations=(),
            locations=(),
            challenges=(),
            reports=(),
            seq=entry.seq,
        )
        self.inspections[inspection_id] = _Inspection(facts)

    def _joined(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        current.participants.append(
            ParticipantFacts(
                participant_id=_text(body, "participant_id"),
                role=_text(body, "role"),
                display_name=_text(body, "name"),
                joined_at=_stamp(entry, "joined_at"),
                left_at=None,
                seq=entry.seq,
            )
        )

    def _left(self, current: _Inspection, entry: ChainEntry) -> None:
        participant_id = _text(entry.body, "participant_id")
        left_at = _stamp(entry, "left_at")
        current.participants[:] = [
            replace(p, left_at=left_at)
            if p.participant_id == participant_id and p.left_at is None
            else p
            for p in current.participants
        ]

    def _consented(self, current: _Inspection, entry: ChainEntry) -> None:
        if current.facts.consented_at is None:  # the first consent is the one kept
            current.facts = replace(current.facts, consented_at=_stamp(entry, "consented_at"))

    def _ended(self, current: _Inspection, entry: ChainEntry) -> None:
        ended_at = _stamp(entry, "ended_at")
        current.facts = replace(current.facts, ended_at=ended_at)
        # Whoever is still connected is hung up at the end (no ``left`` entry is chained then).
        hung_up = Stamp(ended_at.at, ended_at.seq, exact=False)
        current.participants[:] = [
            replace(p, left_at=hung_up) if p.left_at is None else p for p in current.participants
        ]

    def _manifest(self, current: _Inspection, entry: ChainEntry) -> None:
        current.facts = replace(current.facts, manifest_seq=entry.seq)

    def _conclusion(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        current.conclusions.append(
            ConclusionFacts(
                seq=entry.seq,
                outcome=_text(body, "outcome"),
                reason=_text(body, "reason"),
                by=_text(body, "by"),
                at=_text(body, "at", entry.at),
                signature=_text(body, "signature"),
                key_fingerprint=_text(body, "key_fingerprint"),
                refers_to=_int(body, "refers_to"),
                checklist=_checklist(body.get("checklist")),
                passkey_mode=_optional_text(body, "passkey_mode"),
                passkey=self._passkey(body.get("passkey")),
            )
        )

    def _passkey(self, value: Any) -> PasskeyFacts | None:
        try:
            assertion = PasskeyAssertion.from_json(value)
            enrolment = self.enrolments[assertion.credential_id]
            verified = user_verified(assertion)
        except (ValueError, TypeError, KeyError):
            return None
        return PasskeyFacts(
            enrolment.username, enrolment.fingerprint, enrolment.credential_id, verified
        )

    def _mark(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        item_id = _text(body, "item_id")
        photos = body.get("snapshot_ids")
        verdict = body.get("verdict")
        current.marks[item_id] = MarkFacts(
            item_id=item_id,
            done=body.get("done") is True,
            note=_text(body, "note"),
            snapshot_ids=tuple(p for p in photos if isinstance(p, str))
            if isinstance(photos, list)
            else (),
            by=_text(body, "by"),
            marked_at=Stamp(entry.at, entry.seq, exact=False),  # the index takes the entry's
            template_id=_text(body, "template_id"),
            template_version=_int(body, "template_version"),
            seq=entry.seq,
            verdict=verdict if verdict in ("pass", "fail", "not_applicable") else None,
        )

    def _snapshot(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        current.snapshots.append(
            SnapshotFacts(
                snapshot_id=_text(body, "snapshot_id"),
                key=_text(body, "key"),
                sha256=_text(body, "sha256"),
                size=_int(body, "size") or 0,
                width=_int(body, "width") or 0,
                height=_int(body, "height") or 0,
                taken_at=_text(body, "taken_at", entry.at),
                media_pts=_int(body, "media_pts"),
                lat=_optional_text(body, "lat"),
                lon=_optional_text(body, "lon"),
                by=_text(body, "by"),
                seq=entry.seq,
            )
        )

    def _annotation(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        current.annotations.append(
            AnnotationFacts(
                annotation_id=_text(body, "annotation_id"),
                snapshot_id=_text(body, "snapshot_id"),
                key=_text(body, "key"),
                sha256=_text(body, "sha256"),
                by=_text(body, "by"),
                created_at=_stamp(entry, "created_at"),
                seq=entry.seq,
            )
        )

    def _marked_up(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        current.marked_up.append(
            MarkedUpFacts(
                annotation_id=_text(body, "annotation_id"),
                snapshot_id=_text(body, "snapshot_id"),
                key=_text(body, "key"),
                sha256=_text(body, "sha256"),
                size=_int(body, "size") or 0,
                renderer=_text(body, "renderer"),
                font=_text(body, "font"),
                seq=entry.seq,
            )
        )

    def _location(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        current.locations.append(
            LocationFacts(
                lat=_text(body, "lat"),
                lon=_text(body, "lon"),
                accuracy_m=_text(body, "accuracy_m"),
                fix_at=_text(body, "fix_at"),
                received_at=entry.at,
                seq=entry.seq,
            )
        )

    def _challenge_issued(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        challenge_id = _text(body, "challenge_id")
        current.challenges[challenge_id] = ChallengeFacts(
            challenge_id=challenge_id,
            kind=_text(body, "kind"),
            prompt=_text(body, "prompt"),
            by=_text(body, "by"),
            issued_at=_stamp(entry, "issued_at"),
        )

    def _challenge_shown(self, current: _Inspection, entry: ChainEntry) -> None:
        challenge = current.challenges.get(_text(entry.body, "challenge_id"))
        if challenge is not None:
            shown = replace(challenge, shown_at=_stamp(entry, "shown_at"))
            current.challenges[challenge.challenge_id] = shown

    def _challenge_judged(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        challenge = current.challenges.get(_text(body, "challenge_id"))
        if challenge is not None:
            current.challenges[challenge.challenge_id] = replace(
                challenge,
                judged_at=_stamp(entry, "judged_at"),
                judgement=_optional_text(body, "judgement"),
                note=_text(body, "note"),
            )

    def _report(self, current: _Inspection, entry: ChainEntry) -> None:
        body = entry.body
        version = _int(body, "version")
        if version is None:
            return
        file = ReportFileFacts(_text(body, "key"), _text(body, "sha256"), entry.seq)
        report = current.reports.get(version) or ReportFacts(
            version, None, None, _stamp(entry, "generated_at")
        )
        if body.get("format") == "html":
            report = replace(report, html=file)
        elif body.get("format") == "pdf":
            report = replace(report, pdf=file)
        current.reports[version] = report


_HANDLERS = {
    "joined": _Fold._joined,
    "rejoined": _Fold._joined,
    "left": _Fold._left,
    "consented": _Fold._consented,
    "ended": _Fold._ended,
    "manifest": _Fold._manifest,
    "conclusion": _Fold._conclusion,
    "checklist_mark": _Fold._mark,
    "snapshot": _Fold._snapshot,
    "annotation": _Fold._annotation,
    "annotation_rendered": _Fold._marked_up,
    "location": _Fold._location,
    "challenge_issued": _Fold._challenge_issued,
    "challenge_shown": _Fold._challenge_shown,
    "challenge_judged": _Fold._challenge_judged,
    "report": _Fold._report,
}

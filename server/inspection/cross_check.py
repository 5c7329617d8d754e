"""Does the database say what the chain says? Every fact a page or a search shows, compared.

The database is an index of the chain: an insider who edits a row (an outcome, a time, a name,
an address) or deletes one changes what pages show but not the chain. ``disagreements`` names
each difference in plain words, the database's value first, then the chain entry's:
``database says outcome fail; chain entry 31 says pass``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from server.inspection.chain_record import (
    CaseFacts,
    CaseRecord,
    InspectionFacts,
    ParticipantFacts,
    Stamp,
)
from server.store.backend import Row
from server.store.case_rows import CaseRows, InspectionRows

_TOKEN = re.compile(r"[A-Za-z0-9_.:+-]+")


@dataclass(frozen=True, slots=True)
class Disagreement:
    inspection_id: str | None  # None: the case's own fields
    seq: int | None  # the chain entry that says otherwise (None: the chain lacks it)
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"inspection_id": self.inspection_id, "seq": self.seq, "text": self.text}


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return text if _TOKEN.fullmatch(text) else f"'{text}'"


def _says(what: str, database: Any, seq: int, chain: Any) -> str:
    return f"database says {what} {_show(database)}; chain entry {seq} says {_show(chain)}"


def disagreements(indexed: CaseRows, record: CaseRecord) -> list[Disagreement]:
    """Every difference between the database's rows of the case and its chain."""
    names = indexed.name
    found: list[Disagreement] = []
    row = indexed.case
    if record.case is None:
        if row is not None:
            found.append(Disagreement(None, None, "the chain holds no case_created entry"))
    elif row is None:
        text = f"database lacks the case; chain entry {record.case.seq} created it"
        found.append(Disagreement(None, record.case.seq, text))
    else:
        said = _case(indexed, row, record.case)
        found += (Disagreement(None, record.case.seq, t) for t in said)
    rows = {r.inspection["inspection_id"]: r for r in indexed.inspections}
    for chained in record.inspections:
        inspection = rows.pop(chained.inspection_id, None)
        if inspection is None:
            text = (
                f"database lacks inspection {chained.inspection_id};"
                f" chain entry {chained.seq} opened it"
            )
            found.append(Disagreement(chained.inspection_id, chained.seq, text))
            continue
        found += _inspection(inspection, chained, names)
    for inspection_id in rows:
        text = f"database has inspection {inspection_id}; the chain holds no invited entry for it"
        found.append(Disagreement(inspection_id, None, text))
    return found


def _case(indexed_case: CaseRows, row: Row, chained: CaseFacts) -> Iterator[str]:
    names = indexed_case.name
    seq = chained.seq
    if row["case_number"] != chained.case_number:
        yield _says("case number", row["case_number"], seq, chained.case_number)
    for column, what in (
        ("title", "title"),
        ("address", "address"),
        ("applicant_name", "applicant name"),
        ("case_type", "case type"),
    ):
        if row[column] != getattr(chained, column):
            yield _says(what, row[column], seq, getattr(chained, column))
    if "applicant_phone" in chained.stated and row["applicant_phone"] != chained.applicant_phone:
        yield _says("applicant phone", row["applicant_phone"], seq, chained.applicant_phone)
    if "site_lat" in chained.stated:
        for column in ("site_lat", "site_lon"):
            text: str | None = getattr(chained, column)
            if not _same_coordinate(row[column], text):
                yield _says(column.replace("_", " "), row[column], seq, text)
        if row["site_system"] != chained.site_system:
            yield _says("site coordinate system", row["site_system"], seq, chained.site_system)
        for column, what in (("site_input_lat", "site lat"), ("site_input_lon", "site lon")):
            entered: str | None = getattr(chained, column)
            if not _same_coordinate(row[column], entered):
                yield _says(f"{what} as entered", row[column], seq, entered)
    if not chained.created_at.agrees(row["created_at"]):
        yield _says("created at", row["created_at"], seq, chained.created_at.at)
    if chained.created_by and names(row["created_by"]) != chained.created_by:
        yield _says("created by", names(row["created_by"]), seq, chained.created_by)
    indexed = [names(r["user_id"]) for r in indexed_case.inspectors]
    if sorted(indexed) != sorted(chained.inspector_names):
        latest = max((a.at.seq for a in chained.inspectors), default=seq)
        yield _says("inspectors", ", ".join(indexed), latest, ", ".join(chained.inspector_names))


def _same_coordinate(indexed: float | None, chained: str | None) -> bool:
    if indexed is None or chained is None:
        return indexed is None and chained is None
    try:
        return math.isclose(float(indexed), float(chained), rel_tol=0, abs_tol=1e-9)
    except ValueError:
        return False


def _stamp_says(what: str, indexed: str | None, stamp: Stamp | None) -> str | None:
    """The disagreement of a time, if any; a stamp the chain lacks agrees with none only."""
    if stamp is None:
        return None if indexed is None else f"database says {what} {indexed}; the chain has none"
    if stamp.agrees(indexed):
        return None
    return _says(what, indexed, stamp.seq, stamp.at)


def _inspection(
    indexed: InspectionRows, chained: InspectionFacts, names: Callable[[int | None], str]
) -> Iterator[Disagreement]:
    inspection_id = chained.inspection_id
    row = indexed.inspection

    def at(seq: int | None, text: str) -> Disagreement:
        return Disagreement(inspection_id, seq, f"inspection {inspection_id[:8]}: {text}")

    created = _stamp_says("started at", row["created_at"], chained.created_at)
    if created:
        yield at(chained.seq, created)
    if chained.created_by and names(row["created_by"]) != chained.created_by:
        yield at(
            chained.seq,
            _says("inspector", names(row["created_by"]), chained.seq, chained.created_by),
        )
    if row["scheduled_at"] != chained.scheduled_at:
        yield at(
            chained.seq,
            _says("scheduled at", row["scheduled_at"], chained.seq, chained.scheduled_at),
        )
    if row["status"] != chained.status:
        seq = chained.ended_at.seq if chained.ended_at else chained.seq
        yield at(seq, _says("status", row["status"], seq, chained.status))
    for what, column, stamp in (
        ("ended at", "ended_at", chained.ended_at),
        ("consented at", "consented_at", chained.consented_at),
    ):
        text = _stamp_says(what, row[column], stamp)
        if text:
            yield at(stamp.seq if stamp else None, text)
    conclusion = chained.conclusion
    if conclusion is None:
        if row["outcome"] is not None:
            yield at(None, f"database says outcome {row['outcome']}; the chain has no conclusion")
    else:
        for what, column, value in (
            ("outcome", "outcome", conclusion.outcome),
            ("concluded at", "concluded_at", conclusion.at),
            ("conclusion reason", "conclusion_reason", conclusion.reason),
            ("conclusion entry", "conclusion_seq", conclusion.seq),
        ):
            if row[column] != value:
                yield at(conclusion.seq, _says(what, row[column], conclusion.seq, value))
    yield from (at(seq, text) for seq, text in _participants(indexed.participants, chained))
    yield from (at(seq, text) for seq, text in _snapshots(indexed.snapshots, chained, names))
    yield from (at(seq, text) for seq, text in _marks(indexed.marks, chained))
    yield from (at(seq, text) for seq, text in _reports(indexed.reports, chained))


def _participants(rows: list[Row], chained: InspectionFacts) -> Iterator[tuple[int | None, str]]:
    for number, (row, participant) in enumerate(zip(rows, chained.participants, strict=False), 1):
        yield from _participant(number, row, participant)
    for participant in chained.participants[len(rows) :]:
        text = (
            f"database lacks participant {participant.display_name or participant.participant_id}"
            f" ({participant.role}); chain entry {participant.seq} says they joined"
        )
        yield participant.seq, text
    for row in rows[len(chained.participants) :]:
        text = (
            f"database has participant {_show(row['display_name'])} ({row['role']});"
            " the chain has no such join"
        )
        yield None, text


def _participant(
    number: int, row: Row, chained: ParticipantFacts
) -> Iterator[tuple[int | None, str]]:
    who = f"participant {number} ({chained.role})"
    for what, column, value in (
        ("id", "participant_id", chained.participant_id),
        ("role", "role", chained.role),
        ("name", "display_name", chained.display_name),
    ):
        if row[column] != value:
            yield chained.seq, _says(f"{who} {what}", row[column], chained.seq, value)
    if not chained.joined_at.agrees(row["joined_at"]):
        yield (
            chained.seq,
            _says(f"{who} joined at", row["joined_at"], chained.seq, chained.joined_at.at),
        )
    left = chained.left_at
    if left is None:
        if row["left_at"] is not None:
            yield (
                None,
                f"database says {who} left at {row['left_at']}; the chain has them still there",
            )
    elif (row["left_at"] is not None or left.exact) and not left.agrees(row["left_at"]):
        yield left.seq, _says(f"{who} left at", row["left_at"], left.seq, left.at)


def _by_id(rows: Sequence[Row], column: str) -> dict[str, Row]:
    return {row[column]: row for row in rows}


def _snapshots(
    stored: list[Row], chained: InspectionFacts, names: Callable[[int | None], str]
) -> Iterator[tuple[int | None, str]]:
    rows = _by_id(stored, "snapshot_id")
    for snapshot in chained.snapshots:
        row = rows.pop(snapshot.snapshot_id, None)
        seq = snapshot.seq
        if row is None:
            yield seq, f"database lacks snapshot {snapshot.snapshot_id}; chain entry {seq} took it"
            continue
        for what, indexed, value in (
            ("key", row["object_key"], snapshot.key),
            ("SHA-256", row["sha256"], snapshot.sha256),
            ("size", row["size"], snapshot.size),
            ("width", row["width"], snapshot.width),
            ("height", row["height"], snapshot.height),
            ("taken at", row["taken_at"], snapshot.taken_at),
            ("media timestamp", row["media_pts"], snapshot.media_pts),
            ("latitude", row["lat"], snapshot.lat),
            ("longitude", row["lon"], snapshot.lon),
            ("chain entry", row["chain_seq"], seq),
            ("taken by", names(row["taken_by"]), snapshot.by),
        ):
            if indexed != value:
                yield seq, _says(f"snapshot {snapshot.snapshot_id[:8]} {what}", indexed, seq, value)
    for snapshot_id in rows:
        yield None, f"database has snapshot {snapshot_id}; the chain has no such snapshot"


def _marks(stored: list[Row], chained: InspectionFacts) -> Iterator[tuple[int | None, str]]:
    rows = _by_id(stored, "item_id")
    for mark in chained.marks:
        row = rows.pop(mark.item_id, None)
        seq = mark.seq
        if row is None:
            yield seq, f"database lacks the mark of item {mark.item_id}; chain entry {seq} made it"
            continue
        try:
            photos = tuple(json.loads(row["snapshot_ids"]))
        except (ValueError, TypeError):
            photos = (row["snapshot_ids"],)
        for what, indexed, value in (
            ("done", bool(row["done"]), mark.done),
            ("verdict", row["verdict"] or "", mark.verdict or ""),
            ("note", row["note"], mark.note),
            ("photos", ", ".join(map(str, photos)), ", ".join(mark.snapshot_ids)),
        ):
            if indexed != value:
                yield seq, _says(f"item {mark.item_id} {what}", indexed, seq, value)
        if not mark.marked_at.agrees(row["marked_at"]):
            yield (
                seq,
                _says(f"item {mark.item_id} marked at", row["marked_at"], seq, mark.marked_at.at),
            )
    for item_id in rows:
        yield None, f"database has a mark of item {item_id}; the chain has no such mark"


def _reports(stored: list[Row], chained: InspectionFacts) -> Iterator[tuple[int | None, str]]:
    rows = {row["version"]: row for row in stored}
    for report in chained.reports:
        if report.html is None or report.pdf is None:
            continue  # being generated (or cut off before its second file): not yet indexed
        row = rows.pop(report.version, None)
        seq = report.pdf.seq
        if row is None:
            yield (
                seq,
                f"database lacks report version {report.version}; chain entry {seq} stored it",
            )
            continue
        for what, indexed, file in (
            ("HTML SHA-256", row["html_sha256"], report.html),
            ("PDF SHA-256", row["pdf_sha256"], report.pdf),
        ):
            if indexed != file.sha256:
                yield (
                    file.seq,
                    _says(
                        f"report version {report.version} {what}", indexed, file.seq, file.sha256
                    ),
                )
    for version in rows:
        yield None, f"database has report version {version}; the chain stored no such report"

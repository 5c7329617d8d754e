"""What a report says, read from the chain and the archive (never from the database's copies):
the case, the inspection's times, participants, site checks, checklist, conclusions and manifest
as chained, the snapshots checked against their recorded SHA-256, then shrunk to thumbnails."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from dataclasses import dataclass, replace

import cv2
import numpy as np
import segno

from recorder.archive import Archive
from recorder.canonical import parse_json
from recorder.chain import ChainEntry
from recorder.errors import StorageError
from recorder.manifest import Manifest
from server.errors import Conflict, NotFound
from server.inspection import checklists, marked_up, receipts
from server.inspection.chain_record import (
    CaseFacts,
    CaseRecord,
    ConclusionFacts,
    InspectionFacts,
    MarkedUpFacts,
    MarkFacts,
    SnapshotFacts,
)
from server.reports.html import (
    ChallengeResult,
    ChecklistLine,
    ConclusionEvent,
    LocationFix,
    ManifestSummary,
    Participant,
    ReceiptSummary,
    ReportContent,
)
from server.reports.photos import AnnotationRef, MarkedUpCopy, SnapshotEvidence
from server.services import Services
from server.store.models import Case, Inspection

CHAIN_PAGE = 500
THUMBNAIL_WIDTH = 640
THUMBNAIL_QUALITY = 82


class ReportError(Exception):
    """The evidence a report would cite does not match what the chain recorded."""


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """What the case's chain says about one inspection: everything a report shows."""

    case: CaseFacts | None
    inspection: InspectionFacts | None
    conclusions: tuple[ConclusionEvent, ...]
    manifest: ChainEntry | None
    reported_versions: tuple[int, ...]


# reading the chain


def _conclusion(facts: ConclusionFacts) -> ConclusionEvent:
    return ConclusionEvent(
        chain_seq=facts.seq,
        outcome=facts.outcome,
        reason=facts.reason,
        by=facts.by,
        at=facts.at,
        signature=facts.signature,
        key_fingerprint=facts.key_fingerprint,
        refers_to=facts.refers_to,
        passkey_mode=facts.passkey_mode,
        passkey=facts.passkey,
    )


async def chain_facts(services: Services, case_id: str, inspection_id: str) -> ChainFacts:
    entries: list[ChainEntry] = []
    while True:
        total, page = await services.archive.chain_page(case_id, len(entries), CHAIN_PAGE)
        entries += page
        if not page or len(entries) >= total:
            break
    record = CaseRecord.from_entries(case_id, entries)
    inspection = record.inspection(inspection_id)
    if inspection is None:
        return ChainFacts(record.case, None, (), None, ())
    manifest = None if inspection.manifest_seq is None else entries[inspection.manifest_seq]
    return ChainFacts(
        case=record.case,
        inspection=inspection,
        conclusions=tuple(_conclusion(c) for c in inspection.conclusions),
        manifest=manifest,
        reported_versions=tuple(r.version for r in inspection.reports),
    )


async def _checklist(
    services: Services, inspection: Inspection, facts: InspectionFacts
) -> tuple[str, int | None, list[ChecklistLine]]:
    """The chained template's items with their chained marks, then marks of items it lacks."""
    marks = {mark.item_id: mark for mark in facts.marks}
    conclusion = facts.conclusion
    chained = conclusion.checklist if conclusion is not None else None
    if chained is not None:
        name, version = chained.name, chained.version
        items = [(i.item_id, i.text, i.required_photos, i.required) for i in chained.items]
    else:  # a conclusion chained before conclusions carried their checklist
        template = await checklists.template_of(services, inspection)
        name, version = template.name, template.version
        items = [(i.item_id, i.text, i.required_photos, i.required) for i in template.items]
    lines = [
        _line(item_id, text, photos, required, marks.pop(item_id, None))
        for item_id, text, photos, required in items
    ]
    lines += [_line(item_id, item_id, 0, False, mark) for item_id, mark in sorted(marks.items())]
    return name, version, lines


def _line(
    item_id: str, text: str, required_photos: int, required: bool, mark: MarkFacts | None
) -> ChecklistLine:
    if mark is None:
        return ChecklistLine(item_id, text, required_photos, None, "", "", None, required=required)
    return ChecklistLine(
        item_id=item_id,
        text=text,
        required_photos=required_photos,
        done=mark.done,
        note=mark.note,
        marked_by=mark.by,
        marked_at=mark.marked_at.at,
        photos=mark.snapshot_ids,
        verdict=mark.verdict,
        required=required,
    )


# reading the archive


def _check_hash(key: str, data: bytes, sha256: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ReportError(f"{key} has SHA-256 {actual}, the chain recorded {sha256}")
    return data


async def read_checked(archive: Archive, key: str, sha256: str) -> bytes:
    data = await archive.read_object(key)
    return await asyncio.to_thread(_check_hash, key, data, sha256)


def thumbnail_jpeg(png: bytes, width: int = THUMBNAIL_WIDTH) -> bytes:
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ReportError("a snapshot is not a readable image")
    height, original_width = image.shape[:2]
    if original_width > width:
        size = (width, max(1, round(height * width / original_width)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    if not ok:
        raise ReportError("could not encode a snapshot thumbnail")
    return bytes(encoded)


def _annotation_texts(key: str, document: bytes, sha256: str) -> tuple[str, ...]:
    value = parse_json(_check_hash(key, document, sha256))
    shapes = value.get("shapes") if isinstance(value, dict) else None
    if not isinstance(shapes, list):
        raise ReportError(f"{key} holds no shapes")
    return tuple(
        shape["text"]
        for shape in shapes
        if isinstance(shape, dict) and isinstance(shape.get("text"), str) and shape["text"]
    )


async def _marked_up_copy(archive: Archive, facts: MarkedUpFacts) -> MarkedUpCopy:
    png = await archive.read_object(facts.key)
    thumbnail = await asyncio.to_thread(_checked_thumbnail, facts.key, png, facts.sha256)
    return MarkedUpCopy(facts.key, facts.sha256, facts.size, facts.renderer, facts.seq, thumbnail)


async def _annotations(
    archive: Archive, facts: InspectionFacts
) -> dict[str, tuple[AnnotationRef, ...]]:
    """The chained annotations of the inspection's snapshots, by snapshot id, each with its
    text and its marked-up copy by this renderer (the latest chained, if any)."""
    copies = {m.annotation_id: m for m in facts.marked_up if m.renderer == marked_up.RENDERER}
    found: dict[str, list[AnnotationRef]] = {}
    for a in sorted(facts.annotations, key=lambda a: (a.created_at.at, a.annotation_id)):
        document = await archive.read_object(a.key)
        texts = await asyncio.to_thread(_annotation_texts, a.key, document, a.sha256)
        copy = copies.get(a.annotation_id)
        ref = AnnotationRef(
            a.annotation_id,
            a.sha256,
            texts=texts,
            marked_up=await _marked_up_copy(archive, copy) if copy is not None else None,
        )
        found.setdefault(a.snapshot_id, []).append(ref)
    return {snapshot_id: tuple(refs) for snapshot_id, refs in found.items()}


def _checked_thumbnail(key: str, png: bytes, sha256: str) -> bytes:
    return thumbnail_jpeg(_check_hash(key, png, sha256))


async def _load_snapshot(
    archive: Archive, record: SnapshotFacts, annotations: tuple[AnnotationRef, ...]
) -> SnapshotEvidence:
    png = await archive.read_object(record.key)
    thumbnail = await asyncio.to_thread(_checked_thumbnail, record.key, png, record.sha256)
    return SnapshotEvidence(
        snapshot_id=record.snapshot_id,
        key=record.key,
        sha256=record.sha256,
        size=record.size,
        width=record.width,
        height=record.height,
        taken_at=record.taken_at,
        media_pts=record.media_pts,
        lat=record.lat,
        lon=record.lon,
        taken_by=record.by,
        chain_seq=record.seq,
        thumbnail_jpeg=thumbnail,
        annotations=annotations,
    )


async def _manifest_summary(archive: Archive, entry: ChainEntry) -> ManifestSummary:
    key, sha256 = str(entry.body["key"]), str(entry.body["sha256"])
    manifest = Manifest.from_signed_json(json.loads(await read_checked(archive, key, sha256)))
    recorded = sum(s.duration_s for s in manifest.segments if s.track == "applicant-video")
    return ManifestSummary(
        key=key,
        sha256=sha256,
        chain_seq=entry.seq,
        merkle_root=manifest.merkle_root,
        signature=manifest.signature,
        key_fingerprint=manifest.key_fingerprint,
        chain_head_seq=manifest.chain_head_seq,
        chain_head=manifest.chain_head,
        created_at=manifest.created_at,
        segments=len(manifest.segments),
        recorded_s=recorded,
    )


def chained_case(indexed: Case, facts: CaseFacts) -> Case:
    """The case as the chain states it (the database's row only says whose it is)."""
    site, entered = facts.site(), facts.site_input()
    return replace(
        indexed,
        case_number=facts.case_number,
        title=facts.title,
        address=facts.address,
        applicant_name=facts.applicant_name,
        applicant_phone=facts.applicant_phone,
        case_type=facts.case_type,
        site_lat=site[0] if site else None,
        site_lon=site[1] if site else None,
        site_system=facts.site_system,
        site_input_lat=entered[0] if entered else None,
        site_input_lon=entered[1] if entered else None,
        created_at=facts.created_at.at,
    )


def chained_inspection(indexed: Inspection, facts: InspectionFacts) -> Inspection:
    """The inspection as the chain states it."""
    conclusion = facts.conclusion
    return replace(
        indexed,
        status=facts.status,
        created_at=facts.created_at.at,
        ended_at=facts.ended_at.at if facts.ended_at else None,
        consented_at=facts.consented_at.at if facts.consented_at else None,
        outcome=conclusion.outcome if conclusion else None,
        concluded_at=conclusion.at if conclusion else None,
        conclusion_reason=conclusion.reason if conclusion else None,
        conclusion_seq=conclusion.seq if conclusion else None,
        scheduled_at=facts.scheduled_at,
    )


async def gather(
    services: Services, inspection: Inspection, facts: ChainFacts, version: int, now: str
) -> ReportContent:
    """Everything the report says, from the chain's values: the database only names the case
    and inspection whose entries are read. Hashing and thumbnails run in a thread."""
    indexed_case = await services.store.cases.get(inspection.case_id)
    if indexed_case is None or facts.case is None or facts.inspection is None:
        raise NotFound(f"the chain of case '{inspection.case_id}' does not hold this inspection")
    if facts.manifest is None:
        raise Conflict("the inspection's manifest is not signed yet: end the inspection first")
    chained = facts.inspection
    participants = tuple(
        Participant(p.role, p.display_name, p.joined_at.at, p.left_at.at if p.left_at else None)
        for p in chained.participants
    )
    locations = tuple(
        LocationFix(f.lat, f.lon, f.accuracy_m, f.fix_at, f.received_at, f.seq)
        for f in chained.locations
    )
    challenges = tuple(
        ChallengeResult(
            kind=c.kind,
            prompt=c.prompt,
            issued_by=c.by,
            issued_at=c.issued_at.at,
            shown_at=c.shown_at.at if c.shown_at else None,
            judgement=c.judgement,
            judged_at=c.judged_at.at if c.judged_at else None,
            note=c.note,
        )
        for c in sorted(chained.challenges, key=lambda c: c.issued_at.at)
    )
    template_name, template_version, checklist = await _checklist(services, inspection, chained)
    annotations = await _annotations(services.archive, chained)
    snapshots = [
        await _load_snapshot(services.archive, record, annotations.get(record.snapshot_id, ()))
        for record in sorted(chained.snapshots, key=lambda s: (s.taken_at, s.seq))
    ]
    manifest = await _manifest_summary(services.archive, facts.manifest)
    receipt = await _receipt_summary(services, inspection)
    return ReportContent(
        version=version,
        generated_at=now,
        case=chained_case(indexed_case, facts.case),
        inspection=chained_inspection(inspection, chained),
        inspector=chained.created_by,
        inspectors=facts.case.inspector_names,
        participants=participants,
        locations=locations,
        challenges=challenges,
        checklist_name=template_name,
        checklist_version=template_version,
        checklist=tuple(checklist),
        snapshots=tuple(snapshots),
        conclusions=facts.conclusions,
        manifest=manifest,
        receipt=receipt,
        timezone=services.settings.report_timezone,
    )


async def _receipt_summary(services: Services, inspection: Inspection) -> ReceiptSummary | None:
    try:
        signed = await receipts.receipt_of(services, inspection)
    except (Conflict, StorageError, ValueError):
        return None  # the report says that no receipt was issued
    url = f"{services.settings.base_url}/api/inspections/{inspection.inspection_id}/receipt"
    content = receipts.qr_content(signed, url)
    out = io.BytesIO()
    segno.make(content, error=receipts.QR_ERROR, micro=False).save(
        out, kind="svg", scale=4, border=4, xmldecl=False
    )
    r = signed.receipt
    return ReceiptSummary(
        document=signed.to_bytes().decode("utf-8"),
        sha256=signed.sha256,
        chain_head_seq=r.chain_head_seq,
        chain_head=r.chain_head,
        started_at=r.started_at,
        ended_at=r.ended_at,
        clock=r.clock,
        issued_at=r.issued_at,
        key_fingerprint=r.key_fingerprint,
        signature=signed.signature,
        has_timestamp=r.timestamp is not None,
        qr_svg=out.getvalue().decode("utf-8"),
        qr_holds_receipt=isinstance(content, bytes),
    )

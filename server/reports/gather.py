"""What a report says, read from the database and the archive: the chain's conclusions and
manifest, the inspection's rows, the snapshots (checked against their recorded SHA-256, then
shrunk to thumbnails)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass

import cv2
import numpy as np

from recorder.archive import Archive
from recorder.chain import ChainEntry
from recorder.manifest import Manifest
from server.errors import Conflict, NotFound
from server.inspection import checklists
from server.inspection.snapshots import SnapshotRecord, snapshots_of
from server.live.site_checks import challenges_of
from server.reports.html import (
    AnnotationRef,
    ChallengeResult,
    ChecklistLine,
    ConclusionEvent,
    LocationFix,
    ManifestSummary,
    Participant,
    ReportContent,
    SnapshotEvidence,
)
from server.services import Services
from server.store.db import Inspection

CHAIN_PAGE = 500
THUMBNAIL_WIDTH = 640
THUMBNAIL_QUALITY = 82


class ReportError(Exception):
    """The evidence a report would cite does not match what the chain recorded."""


@dataclass(frozen=True, slots=True)
class ChainFacts:
    """What the case's chain says about one inspection."""

    conclusions: tuple[ConclusionEvent, ...]
    manifest: ChainEntry | None
    reported_versions: tuple[int, ...]


# reading the chain


def _conclusion(entry: ChainEntry) -> ConclusionEvent:
    body = entry.body
    refers_to = body.get("refers_to")
    return ConclusionEvent(
        chain_seq=entry.seq,
        outcome=str(body.get("outcome", "")),
        reason=str(body.get("reason", "")),
        by=str(body.get("by", "")),
        at=str(body.get("at", entry.at)),
        signature=str(body.get("signature", "")),
        key_fingerprint=str(body.get("key_fingerprint", "")),
        refers_to=refers_to if isinstance(refers_to, int) else None,
    )


async def chain_facts(services: Services, case_id: str, inspection_id: str) -> ChainFacts:
    conclusions: list[ConclusionEvent] = []
    manifest: ChainEntry | None = None
    versions: list[int] = []
    offset = 0
    while True:
        total, entries = await services.archive.chain_page(case_id, offset, CHAIN_PAGE)
        for entry in entries:
            if entry.body.get("inspection_id") != inspection_id:
                continue
            if entry.kind == "conclusion":
                conclusions.append(_conclusion(entry))
            elif entry.kind == "manifest":
                manifest = entry  # the last one: an inspection is finished once
            elif entry.kind == "report" and isinstance(entry.body.get("version"), int):
                versions.append(entry.body["version"])
        offset += len(entries)
        if not entries or offset >= total:
            return ChainFacts(tuple(conclusions), manifest, tuple(versions))


# reading the database


def _username(services: Services, user_id: int | None, cache: dict[int, str]) -> str:
    if user_id is None:
        return ""
    if user_id not in cache:
        user = services.db.user_by_id(user_id)
        cache[user_id] = user.username if user else f"#{user_id}"
    return cache[user_id]


def _checklist(services: Services, inspection: Inspection) -> tuple[str, int, list[ChecklistLine]]:
    """The template's items with their marks, then marks of items the template no longer has."""
    template = checklists.template_of(services, inspection)
    marks = checklists.marks_of(services, inspection.inspection_id)
    lines = [
        _line(item.item_id, item.text, item.required_photos, marks.pop(item.item_id, None))
        for item in template.items
    ]
    lines += [_line(item_id, item_id, 0, mark) for item_id, mark in sorted(marks.items())]
    return template.name, template.version, lines


def _line(
    item_id: str, text: str, required_photos: int, mark: checklists.Mark | None
) -> ChecklistLine:
    if mark is None:
        return ChecklistLine(item_id, text, required_photos, None, "", "", None)
    return ChecklistLine(
        item_id=item_id,
        text=text,
        required_photos=required_photos,
        done=mark.done,
        note=mark.note,
        marked_by=mark.by,
        marked_at=mark.marked_at,
        photos=mark.snapshot_ids,
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


def _annotations(services: Services, inspection_id: str) -> dict[str, tuple[AnnotationRef, ...]]:
    """The annotations of the inspection's snapshots, by snapshot id."""
    found: dict[str, list[AnnotationRef]] = {}
    for row in services.db.conn.execute(
        "SELECT a.annotation_id, a.snapshot_id, a.sha256 FROM annotations a"
        " JOIN snapshots s ON s.snapshot_id = a.snapshot_id"
        " WHERE s.inspection_id = ? ORDER BY a.created_at, a.annotation_id",
        (inspection_id,),
    ).fetchall():
        found.setdefault(row["snapshot_id"], []).append(
            AnnotationRef(row["annotation_id"], row["sha256"])
        )
    return {snapshot_id: tuple(refs) for snapshot_id, refs in found.items()}


def _checked_thumbnail(key: str, png: bytes, sha256: str) -> bytes:
    return thumbnail_jpeg(_check_hash(key, png, sha256))


async def _load_snapshot(
    archive: Archive, record: SnapshotRecord, annotations: tuple[AnnotationRef, ...]
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
        chain_seq=record.chain_seq,
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


async def gather(
    services: Services, inspection: Inspection, facts: ChainFacts, version: int, now: str
) -> ReportContent:
    """Everything the report says. The database is read on the loop (its connection is the
    server's one); hashing and thumbnails run in a thread."""
    case = services.db.case(inspection.case_id)
    if case is None:
        raise NotFound(f"case '{inspection.case_id}' does not exist")
    if facts.manifest is None:
        raise Conflict("the inspection's manifest is not signed yet: end the inspection first")
    names: dict[int, str] = {}
    conn = services.db.conn
    insp_id = inspection.inspection_id
    participants = tuple(
        Participant(p["role"], p["display_name"], p["joined_at"], p["left_at"])
        for p in services.db.participants(insp_id)
    )
    locations = tuple(
        LocationFix(
            r["lat"], r["lon"], r["accuracy_m"], r["fix_at"], r["received_at"], r["chain_seq"]
        )
        for r in conn.execute(
            "SELECT * FROM locations WHERE inspection_id = ? ORDER BY id", (insp_id,)
        ).fetchall()
    )
    challenges = tuple(
        ChallengeResult(
            kind=c.kind,
            prompt=c.prompt,
            issued_by=_username(services, c.issued_by, names),
            issued_at=c.issued_at,
            shown_at=c.shown_at,
            judgement=c.judgement,
            judged_at=c.judged_at,
            note=c.note,
        )
        for c in challenges_of(services.db, insp_id)
    )
    template_name, template_version, checklist = _checklist(services, inspection)
    annotations = _annotations(services, insp_id)
    inspector = _username(services, inspection.created_by, names)
    snapshots = [
        await _load_snapshot(services.archive, record, annotations.get(record.snapshot_id, ()))
        for record in snapshots_of(services, insp_id)
    ]
    manifest = await _manifest_summary(services.archive, facts.manifest)
    return ReportContent(
        version=version,
        generated_at=now,
        case=case,
        inspection=inspection,
        inspector=inspector,
        participants=participants,
        locations=locations,
        challenges=challenges,
        checklist_name=template_name,
        checklist_version=template_version,
        checklist=tuple(checklist),
        snapshots=tuple(snapshots),
        conclusions=facts.conclusions,
        manifest=manifest,
    )

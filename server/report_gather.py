"""What a report says, read from the database and the archive: the chain's conclusions and
manifest, the inspection's rows, the snapshots (checked against their recorded SHA-256, then
shrunk to thumbnails)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from recorder.archive import Archive
from recorder.chain import ChainEntry
from recorder.manifest import Manifest
from server import checklists
from server.db import Inspection
from server.errors import Conflict, NotFound
from server.report_html import (
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


def _checklist(
    services: Services, inspection: Inspection, names: dict[int, str]
) -> tuple[str, int, list[ChecklistLine]]:
    """The template's items with their marks, then marks of items the template no longer has."""
    template = checklists.template_of(services, inspection)
    marks = {
        row["item_id"]: dict(row)
        for row in services.db.conn.execute(
            "SELECT * FROM checklist_marks WHERE inspection_id = ?", (inspection.inspection_id,)
        ).fetchall()
    }
    lines = []
    for item in template.items:
        mark = marks.pop(item.item_id, None)
        lines.append(_line(services, item.item_id, item.text, item.required_photos, mark, names))
    for item_id, mark in sorted(marks.items()):
        lines.append(_line(services, item_id, item_id, 0, mark, names))
    return template.name, template.version, lines


def _line(
    services: Services,
    item_id: str,
    text: str,
    required_photos: int,
    mark: dict[str, Any] | None,
    names: dict[int, str],
) -> ChecklistLine:
    if mark is None:
        return ChecklistLine(item_id, text, required_photos, None, "", "", None)
    parsed = json.loads(mark["snapshot_ids"] or "[]")
    return ChecklistLine(
        item_id=item_id,
        text=text,
        required_photos=required_photos,
        done=bool(mark["done"]),
        note=str(mark["note"]),
        marked_by=_username(services, mark["marked_by"], names),
        marked_at=str(mark["marked_at"]),
        photos=tuple(str(s) for s in parsed) if isinstance(parsed, list) else (),
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


def _snapshot_rows(
    services: Services, inspection_id: str, names: dict[int, str]
) -> list[dict[str, Any]]:
    """The inspection's snapshot rows, with ``taken_by`` as a name and their annotations."""
    conn = services.db.conn
    annotations: dict[str, list[AnnotationRef]] = {}
    for row in conn.execute(
        "SELECT a.annotation_id, a.snapshot_id, a.sha256 FROM annotations a"
        " JOIN snapshots s ON s.snapshot_id = a.snapshot_id"
        " WHERE s.inspection_id = ? ORDER BY a.created_at, a.annotation_id",
        (inspection_id,),
    ).fetchall():
        annotations.setdefault(row["snapshot_id"], []).append(
            AnnotationRef(row["annotation_id"], row["sha256"])
        )
    rows = conn.execute(
        "SELECT * FROM snapshots WHERE inspection_id = ? ORDER BY taken_at, chain_seq",
        (inspection_id,),
    ).fetchall()
    return [
        {
            **dict(row),
            "taken_by": _username(services, row["taken_by"], names),
            "annotations": tuple(annotations.get(row["snapshot_id"], ())),
        }
        for row in rows
    ]


def _checked_thumbnail(key: str, png: bytes, sha256: str) -> bytes:
    return thumbnail_jpeg(_check_hash(key, png, sha256))


async def _load_snapshot(archive: Archive, row: dict[str, Any]) -> SnapshotEvidence:
    key = row["object_key"]
    png = await archive.read_object(key)
    thumbnail = await asyncio.to_thread(_checked_thumbnail, key, png, row["sha256"])
    return SnapshotEvidence(
        snapshot_id=row["snapshot_id"],
        key=row["object_key"],
        sha256=row["sha256"],
        size=row["size"],
        width=row["width"],
        height=row["height"],
        taken_at=row["taken_at"],
        media_pts=row["media_pts"],
        lat=row["lat"],
        lon=row["lon"],
        taken_by=row["taken_by"],
        chain_seq=row["chain_seq"],
        thumbnail_jpeg=thumbnail,
        annotations=row["annotations"],
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
            kind=r["kind"],
            prompt=r["prompt"],
            issued_by=_username(services, r["issued_by"], names),
            issued_at=r["issued_at"],
            shown_at=r["shown_at"],
            judgement=r["judgement"],
            judged_at=r["judged_at"],
            note=r["note"],
        )
        for r in conn.execute(
            "SELECT * FROM challenges WHERE inspection_id = ? ORDER BY issued_at, challenge_id",
            (insp_id,),
        ).fetchall()
    )
    template_name, template_version, checklist = _checklist(services, inspection, names)
    rows = _snapshot_rows(services, insp_id, names)
    inspector = _username(services, inspection.created_by, names)
    snapshots = [await _load_snapshot(services.archive, row) for row in rows]
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

"""Annotations: arrows, boxes and text drawn over a snapshot, kept as a separate JSON object.

The snapshot's PNG is never touched: an annotation is its own archived object that names the
snapshot and its SHA-256, chained like every other piece of evidence.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json
from recorder.chain import ChainEntry
from recorder.errors import ObjectNotFound
from server.clock import utc_iso
from server.errors import BadRequest, NotFound
from server.inspection.evidence_access import (
    owned_inspection,
    readable_inspection,
    require_not_concluded,
)
from server.inspection.marked_up import ChainedObject, MarkedUpError, RenderSource, try_record
from server.inspection.shapes import parse_shapes
from server.inspection.snapshots import SnapshotRecord, snapshot_by_id
from server.security.tokens import SessionToken
from server.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnnotationRecord:
    annotation_id: str
    snapshot_id: str
    key: str
    sha256: str
    by: str
    created_at: str

    @property
    def url(self) -> str:
        return f"/api/annotations/{self.annotation_id}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "annotation_id": self.annotation_id,
            "snapshot_id": self.snapshot_id,
            "sha256": self.sha256,
            "url": self.url,
            "by": self.by,
            "created_at": self.created_at,
        }


async def annotate(
    services: Services, user: SessionToken, snapshot_id: str, body: dict[str, Any]
) -> AnnotationRecord:
    snapshot = await snapshot_by_id(services, snapshot_id)
    inspection = await owned_inspection(services, user, snapshot.inspection_id)  # implies readable
    require_not_concluded(inspection)
    unknown = sorted(set(body) - {"shapes"})
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}'")
    shapes = parse_shapes(body.get("shapes"), snapshot.width, snapshot.height)
    annotation_id = secrets.token_hex(16)
    created_at = utc_iso(services.clock.now())
    document = {
        "annotation_id": annotation_id,
        "snapshot_id": snapshot.snapshot_id,
        "snapshot_sha256": snapshot.sha256,
        "inspection_id": snapshot.inspection_id,
        "image": {"width": snapshot.width, "height": snapshot.height},
        "shapes": [shape.to_json() for shape in shapes],
        "by": user.username,
        "created_at": created_at,
    }
    key = layout.annotation_key(snapshot.case_id, snapshot.inspection_id, annotation_id)
    entry = await services.archive.store_object(
        snapshot.case_id,
        key,
        canonical_json(document),
        "annotation",
        {
            "annotation_id": annotation_id,
            "snapshot_id": snapshot.snapshot_id,
            "inspection_id": snapshot.inspection_id,
            "by": user.username,
            "created_at": created_at,
        },
    )
    await services.store.evidence.add_annotation(
        {
            "annotation_id": annotation_id,
            "snapshot_id": snapshot.snapshot_id,
            "object_key": key,
            "sha256": entry.body["sha256"],
            "created_by": user.user_id,
            "created_at": created_at,
        }
    )
    await _mark_up(services, snapshot, annotation_id, entry)
    return AnnotationRecord(
        annotation_id, snapshot.snapshot_id, key, entry.body["sha256"], user.username, created_at
    )


async def _mark_up(
    services: Services, snapshot: SnapshotRecord, annotation_id: str, entry: ChainEntry
) -> None:
    """The snapshot with the annotation drawn on it, derived from the snapshot as its chain
    entry records it (not the index's copy)."""
    _, found = await services.archive.chain_page(snapshot.case_id, snapshot.chain_seq, 1)
    chained = found[0] if found else None
    if (
        chained is None
        or chained.kind != "snapshot"
        or chained.body.get("snapshot_id") != snapshot.snapshot_id
    ):
        logger.warning(
            "marked-up copy not made: the snapshot's chain entry is not where the index says",
            extra={"case_id": snapshot.case_id, "seq": snapshot.chain_seq},
        )
        return
    try:
        source = RenderSource(
            snapshot.case_id,
            snapshot.inspection_id,
            snapshot.snapshot_id,
            ChainedObject.of(chained),
            annotation_id,
            ChainedObject.of(entry),
        )
    except MarkedUpError as exc:
        logger.warning("marked-up copy not made: %s", exc, extra={"case_id": snapshot.case_id})
        return
    await try_record(services, source)


async def annotations_of(services: Services, snapshot: SnapshotRecord) -> list[AnnotationRecord]:
    rows = await services.store.evidence.annotations_of(snapshot.snapshot_id)
    return [AnnotationRecord(**row) for row in rows]


async def annotation_bytes(services: Services, user: SessionToken, annotation_id: str) -> bytes:
    """The stored annotation document, if ``user`` may read its inspection."""
    try:
        layout.check_object_id(annotation_id, "annotation_id")
    except ValueError:
        raise NotFound(f"annotation {annotation_id[:64]!r} does not exist") from None
    row = await services.store.evidence.annotation_place(annotation_id)
    if row is None:
        raise NotFound(f"annotation '{annotation_id}' does not exist")
    await readable_inspection(services, user, row["inspection_id"])
    try:
        return await services.archive.read_object(row["object_key"])
    except ObjectNotFound as exc:
        raise NotFound(f"annotation '{annotation_id}' is not in the archive: {exc}") from exc

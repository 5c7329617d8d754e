"""Annotations: arrows, boxes and text drawn over a snapshot, kept as a separate JSON object.

The snapshot's PNG is never touched: an annotation is its own archived object that names the
snapshot and its SHA-256, chained like every other piece of evidence.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json
from recorder.errors import ObjectNotFound
from server.clock import utc_iso
from server.errors import BadRequest, NotFound
from server.inspection.evidence_access import (
    owned_inspection,
    readable_inspection,
    require_not_concluded,
)
from server.inspection.snapshots import SnapshotRecord, snapshot_by_id
from server.security.tokens import SessionToken
from server.services import Services

SHAPE_TYPES = ("arrow", "box", "text")
MAX_SHAPES = 200
MAX_TEXT = 200
COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
SHAPE_FIELDS = frozenset({"type", "x1", "y1", "x2", "y2", "text", "color"})


@dataclass(frozen=True, slots=True)
class Shape:
    """One mark in image pixels; (x1, y1) → (x2, y2) is an arrow's tail → head, a box's corners
    or a text's anchor and extent."""

    type: str
    x1: int
    y1: int
    x2: int
    y2: int
    color: str
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "type": self.type,
            "x1": self.x1,
            "y1": self.y1,
            "x2": self.x2,
            "y2": self.y2,
            "color": self.color,
        }
        if self.text:
            shape["text"] = self.text
        return shape


def _coordinate(raw: dict[str, Any], name: str, limit: int, where: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{where}: '{name}' must be an integer (image pixels)")
    if not 0 <= value <= limit:
        raise BadRequest(f"{where}: '{name}' must be within 0..{limit} (the image's pixels)")
    return value


def parse_shapes(value: Any, width: int, height: int) -> list[Shape]:
    """Validate the ``shapes`` of a request against an image of ``width`` x ``height``."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SHAPES:
        raise BadRequest(f"field 'shapes' must be a list of 1 to {MAX_SHAPES} shapes")
    shapes = []
    for index, raw in enumerate(value):
        where = f"shapes[{index}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"{where} must be an object")
        unknown = sorted(set(raw) - SHAPE_FIELDS)
        if unknown:
            raise BadRequest(f"{where}: unknown field '{unknown[0]}'")
        kind = raw.get("type")
        if kind not in SHAPE_TYPES:
            raise BadRequest(f"{where}: 'type' must be one of {', '.join(SHAPE_TYPES)}")
        color = raw.get("color")
        if not isinstance(color, str) or not COLOR_PATTERN.fullmatch(color):
            raise BadRequest(f"{where}: 'color' must be '#rrggbb'")
        text = raw.get("text", "")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise BadRequest(f"{where}: 'text' must be a string of at most {MAX_TEXT} characters")
        if kind == "text" and not text.strip():
            raise BadRequest(f"{where}: a text shape needs a non-empty 'text'")
        shapes.append(
            Shape(
                type=kind,
                x1=_coordinate(raw, "x1", width, where),
                y1=_coordinate(raw, "y1", height, where),
                x2=_coordinate(raw, "x2", width, where),
                y2=_coordinate(raw, "y2", height, where),
                color=color.lower(),
                text=text.strip(),
            )
        )
    return shapes


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
    snapshot = snapshot_by_id(services, snapshot_id)
    inspection = owned_inspection(services, user, snapshot.inspection_id)  # implies readable
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
    services.db.conn.execute(
        "INSERT INTO annotations (annotation_id, snapshot_id, object_key, sha256, created_by,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (annotation_id, snapshot.snapshot_id, key, entry.body["sha256"], user.user_id, created_at),
    )
    return AnnotationRecord(
        annotation_id, snapshot.snapshot_id, key, entry.body["sha256"], user.username, created_at
    )


_SELECT = (
    "SELECT a.annotation_id, a.snapshot_id, a.object_key AS key, a.sha256,"
    " COALESCE(u.username, '') AS by, a.created_at"
    " FROM annotations a LEFT JOIN users u ON u.id = a.created_by"
)


def annotations_of(services: Services, snapshot: SnapshotRecord) -> list[AnnotationRecord]:
    rows = services.db.conn.execute(
        _SELECT + " WHERE a.snapshot_id = ? ORDER BY a.created_at, a.annotation_id",
        (snapshot.snapshot_id,),
    )
    return [AnnotationRecord(**dict(row)) for row in rows]


async def annotation_bytes(services: Services, user: SessionToken, annotation_id: str) -> bytes:
    """The stored annotation document, if ``user`` may read its inspection."""
    try:
        layout.check_object_id(annotation_id, "annotation_id")
    except ValueError:
        raise NotFound(f"annotation {annotation_id[:64]!r} does not exist") from None
    row = services.db.conn.execute(
        "SELECT a.object_key, s.inspection_id FROM annotations a"
        " JOIN snapshots s ON s.snapshot_id = a.snapshot_id WHERE a.annotation_id = ?",
        (annotation_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"annotation '{annotation_id}' does not exist")
    readable_inspection(services, user, row["inspection_id"])
    try:
        return await services.archive.read_object(row["object_key"])
    except ObjectNotFound as exc:
        raise NotFound(f"annotation '{annotation_id}' is not in the archive: {exc}") from exc

"""Marked-up copies: a snapshot with one annotation's arrows, boxes and text drawn on it.

The original PNG stays untouched and remains the evidence; the copy is a new object, derived
from it, hashed and chained as ``annotation_rendered`` naming the original's snapshot entry and
the annotation entry it renders, the renderer and the font (docs/archive.md, *Marked-up
copies*). It is made when the annotation is saved, or, if that did not happen (an older
archive, a failed render), when the report is made; storing goes through the archive's one path
(staged, chained, moved), so no copy exists without its entry.

Boxes and arrows are drawn with OpenCV; text with Pillow's FreeType, in the CJK font the PDF
reports use (Noto Sans CJK SC, Debian's fonts-noto-cjk), since OpenCV's own fonts have no
Chinese.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recorder import layout
from recorder.canonical import parse_json
from recorder.chain import ChainEntry
from recorder.errors import StorageError
from recorder.marked_up import MARKED_UP_KIND
from server.errors import BadRequest
from server.inspection.chain_record import AnnotationFacts, InspectionFacts, SnapshotFacts
from server.inspection.shapes import Shape, parse_shapes
from server.services import Services

logger = logging.getLogger(__name__)

RENDERER_VERSION = 1
RENDERER = f"takan-marked-up/{RENDERER_VERSION}"
# (file, family): the CJK fonts Debian ships, in the order the report's CSS asks for them.
CJK_FONTS = (
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"), "Noto Sans CJK SC"),
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), "Noto Sans CJK SC"),
    (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), "WenQuanYi Zen Hei"),
)
MAX_FONT_FACES = 16
MIN_TEXT_PX = 12


class MarkedUpError(Exception):
    """A marked-up copy cannot be made (an unreadable original or annotation, no CJK font)."""


@dataclass(frozen=True, slots=True)
class CjkFont:
    path: Path
    index: int  # the face in a font collection
    family: str

    def at(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(self.path), size, index=self.index)


@functools.cache
def cjk_font(candidates: tuple[tuple[Path, str], ...] = CJK_FONTS) -> CjkFont | None:
    """The first installed font of ``candidates`` with the face of its family, or None."""
    for path, family in candidates:
        if not path.is_file():
            continue
        for index in range(MAX_FONT_FACES):
            try:
                face = ImageFont.truetype(str(path), MIN_TEXT_PX, index=index)
            except OSError:
                break
            if face.getname()[0] == family:
                return CjkFont(path, index, family)
    return None


# drawing (blocking, pure)


def _bgr(color: str) -> tuple[int, int, int]:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return blue, green, red


def _line_px(width: int, height: int) -> int:
    """About what the inspector saw: 3 screen pixels on a ~720-pixel-wide view."""
    return max(2, round(max(width, height) / 400))


def _draw_arrow(image: np.ndarray[Any, Any], shape: Shape, thickness: int) -> None:
    color = _bgr(shape.color)
    tail, tip = (shape.x1, shape.y1), (shape.x2, shape.y2)
    cv2.line(image, tail, tip, color, thickness, cv2.LINE_AA)
    angle = math.atan2(shape.y2 - shape.y1, shape.x2 - shape.x1)
    head = max(16, 7 * thickness)
    wings = [
        (
            round(shape.x2 - head * math.cos(angle + side * math.pi / 7)),
            round(shape.y2 - head * math.sin(angle + side * math.pi / 7)),
        )
        for side in (-1, 1)
    ]
    cv2.fillPoly(image, [np.array([tip, *wings], dtype=np.int32)], color, cv2.LINE_AA)


def render(png: bytes, shapes: Sequence[Shape], font: CjkFont | None) -> bytes:
    """``png`` with ``shapes`` drawn on it, as PNG. Text needs ``font``."""
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MarkedUpError("the original is not a readable image")
    height, width = image.shape[:2]
    thickness = _line_px(width, height)
    for shape in shapes:
        if shape.type == "box":
            corner1 = (min(shape.x1, shape.x2), min(shape.y1, shape.y2))
            corner2 = (max(shape.x1, shape.x2), max(shape.y1, shape.y2))
            cv2.rectangle(image, corner1, corner2, _bgr(shape.color), thickness, cv2.LINE_AA)
        elif shape.type == "arrow":
            _draw_arrow(image, shape, thickness)
    texts = [shape for shape in shapes if shape.type == "text"]
    if texts:
        if font is None:
            raise MarkedUpError("no CJK font is installed for the annotation's text")
        picture = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        draw = ImageDraw.Draw(picture)
        for shape in texts:
            face = font.at(max(MIN_TEXT_PX, abs(shape.y2 - shape.y1)))
            draw.text(
                (shape.x1, shape.y1),
                shape.text,
                font=face,
                fill=shape.color,
                anchor="la",  # top-left, as the page's canvas draws it
                stroke_width=max(2, thickness),
                stroke_fill=(0, 0, 0),
            )
        image = cv2.cvtColor(np.asarray(picture), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise MarkedUpError("could not encode the marked-up copy")
    return bytes(encoded)


# recording


@dataclass(frozen=True, slots=True)
class ChainedObject:
    """An object as its chain entry records it."""

    key: str
    sha256: str
    seq: int

    @classmethod
    def of(cls, entry: ChainEntry) -> ChainedObject:
        key, sha256 = entry.body.get("key"), entry.body.get("sha256")
        if not isinstance(key, str) or not isinstance(sha256, str):
            raise MarkedUpError(f"chain entry {entry.seq} records no object")
        return cls(key, sha256, entry.seq)


@dataclass(frozen=True, slots=True)
class RenderSource:
    """What a copy is derived from: a snapshot entry and an annotation entry of it."""

    case_id: str
    inspection_id: str
    snapshot_id: str
    original: ChainedObject
    annotation_id: str
    annotation: ChainedObject

    @classmethod
    def of_facts(
        cls, case_id: str, inspection_id: str, snapshot: SnapshotFacts, annotation: AnnotationFacts
    ) -> RenderSource:
        if annotation.snapshot_id != snapshot.snapshot_id:
            raise ValueError("the annotation is not of this snapshot")
        return cls(
            case_id,
            inspection_id,
            snapshot.snapshot_id,
            ChainedObject(snapshot.key, snapshot.sha256, snapshot.seq),
            annotation.annotation_id,
            ChainedObject(annotation.key, annotation.sha256, annotation.seq),
        )

    @property
    def key(self) -> str:
        return layout.marked_up_key(
            self.case_id, self.inspection_id, self.annotation_id, RENDERER_VERSION
        )


def _checked(data: bytes, sha256: str, what: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise MarkedUpError(f"the {what} does not have the SHA-256 its chain entry recorded")
    return data


def _shapes(document: bytes, source: RenderSource) -> tuple[list[Shape], int, int]:
    try:
        value = parse_json(document)
        image = value["image"]
        width, height = int(image["width"]), int(image["height"])
        return parse_shapes(value["shapes"], width, height), width, height
    except (ValueError, KeyError, TypeError, BadRequest) as exc:
        raise MarkedUpError(f"annotation {source.annotation_id}: {exc}") from exc


def _make(original: bytes, document: bytes, source: RenderSource) -> tuple[bytes, str, int, int]:
    _checked(original, source.original.sha256, "original")
    _checked(document, source.annotation.sha256, "annotation")
    shapes, width, height = _shapes(document, source)
    font = cjk_font() if any(shape.type == "text" for shape in shapes) else None
    png = render(original, shapes, font)
    return png, font.path.name if font is not None else "", width, height


async def record_marked_up(services: Services, source: RenderSource) -> ChainEntry:
    """Render the copy and store it, chained as ``annotation_rendered``. MarkedUpError if the
    inputs do not hold what the chain recorded or it cannot be drawn."""
    archive = services.archive
    original = await archive.read_object(source.original.key)
    document = await archive.read_object(source.annotation.key)
    png, font, width, height = await asyncio.to_thread(_make, original, document, source)
    body = {
        "inspection_id": source.inspection_id,
        "snapshot_id": source.snapshot_id,
        "annotation_id": source.annotation_id,
        "original_key": source.original.key,
        "original_sha256": source.original.sha256,
        "original_seq": source.original.seq,
        "annotation_key": source.annotation.key,
        "annotation_sha256": source.annotation.sha256,
        "annotation_seq": source.annotation.seq,
        "renderer": RENDERER,
        "font": font,
        "width": width,
        "height": height,
    }
    entry = await archive.store_object(source.case_id, source.key, png, MARKED_UP_KIND, body)
    logger.info(
        "marked-up copy stored",
        extra={
            "case_id": source.case_id,
            "inspection_id": source.inspection_id,
            "seq": entry.seq,
            "sha256": entry.body["sha256"],
        },
    )
    return entry


async def try_record(services: Services, source: RenderSource) -> ChainEntry | None:
    """``record_marked_up``, or None with the reason logged: the annotation stands without it,
    and the report makes the copy later or says that it could not."""
    try:
        return await record_marked_up(services, source)
    except (MarkedUpError, StorageError) as exc:
        logger.warning(
            "marked-up copy not made: %s",
            exc,
            extra={"case_id": source.case_id, "inspection_id": source.inspection_id},
        )
        return None


async def record_missing(services: Services, case_id: str, facts: InspectionFacts) -> int:
    """Make the copy of each chained annotation that has none by this renderer; how many."""
    made = {m.annotation_id for m in facts.marked_up if m.renderer == RENDERER}
    snapshots = {s.snapshot_id: s for s in facts.snapshots}
    count = 0
    for annotation in facts.annotations:
        snapshot = snapshots.get(annotation.snapshot_id)
        if annotation.annotation_id in made or snapshot is None:
            continue
        source = RenderSource.of_facts(case_id, facts.inspection_id, snapshot, annotation)
        if await try_record(services, source) is not None:
            count += 1
    return count

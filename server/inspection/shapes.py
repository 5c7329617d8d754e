"""The shapes of an annotation: arrows, boxes and text in a snapshot's pixels, as a request
gives them and as the stored annotation document keeps them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from server.errors import BadRequest

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

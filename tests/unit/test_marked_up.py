"""Marked-up copies (pure): the marks drawn where the annotation put them, the original left as
it was, and the rule a verifier applies to their chain entries."""

from __future__ import annotations

import dataclasses
from typing import Any

import cv2
import numpy as np
import pytest

from recorder import layout
from recorder.chain import ChainEntry
from recorder.errors import IntegrityError
from recorder.marked_up import check_marked_up
from server.inspection.marked_up import MarkedUpError, cjk_font, render
from server.inspection.shapes import parse_shapes

CASE = "case-1"
INSPECTION = "a" * 32
SNAPSHOT = "b" * 32
ANNOTATION = "c" * 32
RED = "#e53935"
TEXT = "洗手池未配备消毒设施"


def grey_png(width: int = 640, height: int = 480) -> bytes:
    ok, png = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))
    assert ok
    return bytes(png)


def decoded(png: bytes) -> np.ndarray[Any, Any]:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def is_red(pixel: np.ndarray[Any, Any]) -> bool:
    blue, green, red = (int(v) for v in pixel)
    return red > 180 and green < 110 and blue < 110


def test_a_box_an_arrow_and_chinese_text_are_drawn_where_the_annotation_put_them() -> None:
    original = grey_png()
    kept = bytes(original)
    shapes = parse_shapes(
        [
            {"type": "box", "x1": 100, "y1": 100, "x2": 300, "y2": 200, "color": RED},
            {"type": "arrow", "x1": 20, "y1": 400, "x2": 200, "y2": 300, "color": RED},
            {"type": "text", "x1": 330, "y1": 300, "x2": 630, "y2": 332, "text": TEXT,
             "color": RED},
        ],
        640,
        480,
    )  # fmt: skip
    image = decoded(render(original, shapes, cjk_font()))
    assert original == kept  # the original's bytes are untouched
    assert is_red(image[100, 200])  # the box's top
    assert is_red(image[200, 200])  # and bottom
    assert not is_red(image[150, 200])  # its inside is the photo
    assert is_red(image[350, 110])  # the arrow's shaft, halfway
    text_area = image[300:340, 330:640]
    red_pixels = sum(is_red(p) for row in text_area for p in row)
    assert red_pixels > 500, red_pixels  # ten characters of 32 px
    assert not is_red(image[450, 600])  # elsewhere: untouched


def test_text_without_a_cjk_font_is_refused_rather_than_drawn_as_boxes() -> None:
    shapes = parse_shapes(
        [{"type": "text", "x1": 1, "y1": 1, "x2": 50, "y2": 20, "text": TEXT, "color": RED}],
        640,
        480,
    )
    with pytest.raises(MarkedUpError, match="no CJK font"):
        render(grey_png(), shapes, None)


def test_the_font_is_the_one_the_pdf_uses() -> None:
    font = cjk_font()
    assert font is not None, "make system-deps installs fonts-noto-cjk"
    assert font.family == "Noto Sans CJK SC"


# the rule


def entry(seq: int, kind: str, body: dict[str, Any]) -> ChainEntry:
    return ChainEntry(CASE, seq, kind, "2026-12-07T12:00:00.000Z", "test", body, "0" * 64, "1" * 64)


def chain(**changes: Any) -> list[ChainEntry]:
    snapshot_key = layout.snapshot_key(CASE, INSPECTION, SNAPSHOT)
    annotation_key = layout.annotation_key(CASE, INSPECTION, ANNOTATION)
    marked = {
        "inspection_id": INSPECTION,
        "snapshot_id": SNAPSHOT,
        "annotation_id": ANNOTATION,
        "original_key": snapshot_key,
        "original_sha256": "2" * 64,
        "original_seq": 0,
        "annotation_key": annotation_key,
        "annotation_sha256": "3" * 64,
        "annotation_seq": 1,
        "renderer": "takan-marked-up/1",
        "font": "",
        "width": 640,
        "height": 480,
        "key": layout.marked_up_key(CASE, INSPECTION, ANNOTATION, 1),
        "sha256": "4" * 64,
        "size": 10,
    }
    return [
        entry(0, "snapshot", {"snapshot_id": SNAPSHOT, "key": snapshot_key, "sha256": "2" * 64}),
        entry(
            1,
            "annotation",
            {
                "annotation_id": ANNOTATION,
                "snapshot_id": SNAPSHOT,
                "key": annotation_key,
                "sha256": "3" * 64,
            },
        ),
        entry(2, "annotation_rendered", {**marked, **changes}),
    ]


def test_a_copy_derived_from_its_snapshot_and_annotation_entries_holds() -> None:
    check_marked_up(CASE, chain())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"original_seq": 5}, "renders the original cases/case-1/inspections/"),
        ({"original_seq": 2}, "which no earlier snapshot entry records"),
        ({"original_sha256": "9" * 64}, "which no earlier snapshot entry records"),
        ({"original_key": None}, "renders the original None, which no earlier snapshot"),
        ({"annotation_seq": 0}, "which no earlier annotation entry of that snapshot records"),
        ({"annotation_sha256": "9" * 64}, "which no earlier annotation entry of that snapshot"),
        ({"snapshot_id": "d" * 32}, "which no earlier snapshot entry records"),
        ({"annotation_id": "d" * 32}, "must name its inspection and annotation"),
        ({"key": layout.annotation_key(CASE, INSPECTION, "e" * 32)}, "must name its inspection"),
    ],
)
def test_a_copy_naming_no_such_original_or_annotation_fails_at_its_entry(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(IntegrityError, match=reason) as failure:
        check_marked_up(CASE, chain(**changes))
    assert failure.value.where == "chain entry 2"


def test_a_marked_up_key_recorded_by_another_kind_fails_at_that_entry() -> None:
    entries = chain()
    entries[2] = dataclasses.replace(entries[2], kind="snapshot")
    with pytest.raises(IntegrityError, match=r"records the marked-up copy .* as snapshot"):
        check_marked_up(CASE, entries)

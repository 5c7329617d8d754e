"""Pure rules of inspection evidence: shapes, checklist items, conclusions and their signature."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from recorder.canonical import canonical_json
from recorder.conclusion import Conclusion, verify_conclusion
from recorder.errors import IntegrityError
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.errors import BadRequest
from server.inspection.checklists import ChecklistTemplate, Mark, parse_items, pass_blockers
from server.inspection.conclusions import ConclusionRequest
from server.inspection.shapes import parse_shapes
from tests.unit.evidence_fixture import build_case

INSPECTION = "ab" * 16


def conclusion(**changes: Any) -> Conclusion:
    fields: dict[str, Any] = {
        "inspection_id": INSPECTION,
        "outcome": "pass",
        "reason": "符合要求",
        "by": "inspector1",
        "at": "2026-03-01T09:00:00.000Z",
        "refers_to": None,
        **changes,
    }
    return Conclusion(**fields)


def test_shapes_keep_pixels_and_normalise_colour() -> None:
    [arrow, text] = parse_shapes(
        [
            {"type": "arrow", "x1": 0, "y1": 0, "x2": 640, "y2": 480, "color": "#AbCdEf"},
            {
                "type": "text",
                "x1": 5,
                "y1": 5,
                "x2": 50,
                "y2": 20,
                "text": " 门牌 ",
                "color": "#000000",
            },
        ],
        640,
        480,
    )
    assert arrow.to_json() == {
        "type": "arrow", "x1": 0, "y1": 0, "x2": 640, "y2": 480, "color": "#abcdef",
    }  # fmt: skip
    assert text.text == "门牌"


@pytest.mark.parametrize(
    "shape",
    [
        {"type": "box", "x1": 0, "y1": 0, "x2": 641, "y2": 1, "color": "#000000"},
        {"type": "box", "x1": True, "y1": 0, "x2": 1, "y2": 1, "color": "#000000"},
        {"type": "box", "x1": 0, "y1": 0, "x2": 1, "y2": 1, "color": "#00000"},
        {"type": "text", "x1": 0, "y1": 0, "x2": 1, "y2": 1, "color": "#000000"},
        {"type": "box", "x1": 0, "y1": 0, "x2": 1, "y2": 1, "color": "#000000", "text": "x" * 201},
    ],
)
def test_bad_shapes_are_refused(shape: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match=r"shapes\[0\]"):
        parse_shapes([shape], 640, 480)


def test_checklist_items_are_validated_and_unique() -> None:
    items = parse_items([{"item_id": "a-1", "text": " 现场 ", "required_photos": 2}])
    assert [(i.item_id, i.text, i.required_photos) for i in items] == [("a-1", "现场", 2)]
    with pytest.raises(BadRequest, match="appears twice"):
        parse_items([{"item_id": "a", "text": "x"}, {"item_id": "a", "text": "y"}])
    with pytest.raises(BadRequest, match="required_photos must be an integer"):
        parse_items([{"item_id": "a", "text": "x", "required_photos": "1"}])


def test_a_pass_is_blocked_by_required_unmarked_failing_and_photo_short_items_only() -> None:
    items = parse_items(
        [
            {"item_id": "open", "text": "未核查的必查项", "required_photos": 0},
            {"item_id": "optional", "text": "选查项", "required_photos": 1, "required": False},
            {"item_id": "failed", "text": "不符合项", "required_photos": 0},
            {"item_id": "short", "text": "照片不足", "required_photos": 2},
            {"item_id": "ticked", "text": "旧页面勾选", "required_photos": 1},
            {"item_id": "na", "text": "不适用项", "required_photos": 3},
            {"item_id": "ok", "text": "符合项", "required_photos": 1},
            {"item_id": "cleared", "text": "改回未核查", "required_photos": 0},
        ]
    )
    assert [i.required for i in items] == [True, False, True, True, True, True, True, True]
    template = ChecklistTemplate("t", "", "t", items, 1, "")

    def mark(item_id: str, verdict: str | None, photos: int = 0, done: bool = True) -> Mark:
        return Mark(item_id, done, "", tuple(f"{n:032x}" for n in range(photos)), "i", "", verdict)

    marks = {
        m.item_id: m
        for m in (
            mark("failed", "fail", 1),
            mark("short", "pass", 1),
            mark("ticked", None),  # an older page's "done" tick stands for 符合
            mark("na", "not_applicable"),
            mark("ok", "pass", 1),
            mark("cleared", None, done=False),
        )
    }
    blockers = [(b.item_id, b.problem, b.have, b.need) for b in pass_blockers(template, marks)]
    assert blockers == [
        ("open", "unmarked", 0, 0),
        ("failed", "fail", 1, 0),
        ("short", "photos", 1, 2),
        ("ticked", "photos", 0, 1),
        ("cleared", "unmarked", 0, 0),
    ]
    with pytest.raises(BadRequest, match=r"items\[0\]: required must be true or false"):
        parse_items([{"item_id": "a", "text": "x", "required": 0}])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"outcome": "pass"}, "'reason' is required"),
        ({"outcome": "ok", "reason": "x"}, "'outcome' must be one of"),
        ({"outcome": "pass", "reason": "x", "corrects": True}, "'corrects'"),
        ({"outcome": "pass", "reason": "x", "corrects": -1}, "'corrects'"),
        ({"outcome": "pass", "reason": "x", "by": "admin"}, "unknown field 'by'"),
    ],
)
def test_bad_conclusion_requests_are_refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        ConclusionRequest.parse(body)


def test_conclusion_signature_covers_every_field() -> None:
    signer = Signer.generate()
    body = conclusion().signed_body(signer)
    assert body["key_fingerprint"] == signer.fingerprint
    assert verify_conclusion(signer.public_key_bytes, body)
    for name, value in (("outcome", "fail"), ("reason", "不符合"), ("refers_to", 3), ("by", "x")):
        assert not verify_conclusion(signer.public_key_bytes, {**body, name: value}), name
    assert not verify_conclusion(Signer.generate().public_key_bytes, body)
    assert not verify_conclusion(signer.public_key_bytes, {**body, "signature": "%%%"})
    message = canonical_json({"conclusion": conclusion().fields()})
    assert base64.b64decode(body["signature"]) == signer.sign(message)  # Ed25519: deterministic


def test_verify_names_a_conclusion_whose_signature_fails(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    signer = Signer.generate()
    builder = build_case(storage, signer)
    builder.append("conclusion", conclusion(at=builder.tick()).signed_body(signer))
    builder.checkpoint()
    assert verify_case(storage, builder.case_id).conclusions == 1
    forged = conclusion(outcome="fail", at=builder.tick(), refers_to=builder.entries[-1].seq)
    body = {**forged.signed_body(signer), "outcome": "pass"}
    entry = builder.append("conclusion", body)
    builder.checkpoint()
    with pytest.raises(IntegrityError) as failure:
        verify_case(storage, builder.case_id)
    assert failure.value.where == f"chain entry {entry.seq}"
    assert "signature does not verify" in failure.value.reason

"""Snapshot, annotation and report keys: built from validated ids, parsed back, nothing else."""

from __future__ import annotations

import pytest

from recorder import layout

CASE = "case-1"
INSPECTION = "a" * 32
OBJECT = "0123456789abcdef" * 2


def test_snapshot_key_round_trips() -> None:
    key = layout.snapshot_key(CASE, INSPECTION, OBJECT)
    assert key == f"cases/{CASE}/inspections/{INSPECTION}/snapshots/{OBJECT}.png"
    assert layout.parse_snapshot_key(CASE, key) == (INSPECTION, OBJECT)
    assert layout.parse_snapshot_key("case-2", key) is None


def test_annotation_key_round_trips() -> None:
    key = layout.annotation_key(CASE, INSPECTION, OBJECT)
    assert key == f"cases/{CASE}/inspections/{INSPECTION}/annotations/{OBJECT}.json"
    assert layout.parse_annotation_key(CASE, key) == (INSPECTION, OBJECT)
    assert layout.parse_snapshot_key(CASE, key) is None


@pytest.mark.parametrize(("version", "fmt"), [(1, "html"), (12, "pdf"), (999, "pdf")])
def test_report_key_round_trips(version: int, fmt: str) -> None:
    key = layout.report_key(CASE, INSPECTION, version, fmt)
    assert key == f"cases/{CASE}/inspections/{INSPECTION}/reports/{version:03d}.{fmt}"
    assert layout.parse_report_key(CASE, key) == (INSPECTION, version, fmt)


@pytest.mark.parametrize("bad", ["A" * 32, "a" * 31, "../" + "a" * 29, "g" * 32, ""])
def test_bad_object_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="32 lower-case hex"):
        layout.snapshot_key(CASE, INSPECTION, bad)
    with pytest.raises(ValueError, match="32 lower-case hex"):
        layout.annotation_key(CASE, INSPECTION, bad)


@pytest.mark.parametrize(("version", "fmt"), [(0, "html"), (1000, "pdf"), (1, "docx")])
def test_bad_report_versions_and_formats_are_refused(version: int, fmt: str) -> None:
    with pytest.raises(ValueError, match="report"):
        layout.report_key(CASE, INSPECTION, version, fmt)


def test_parsers_reject_near_misses() -> None:
    prefix = f"cases/{CASE}/inspections/{INSPECTION}"
    assert layout.parse_snapshot_key(CASE, f"{prefix}/snapshots/{OBJECT}.jpg") is None
    assert layout.parse_annotation_key(CASE, f"{prefix}/annotations/{OBJECT}.png") is None
    assert layout.parse_report_key(CASE, f"{prefix}/reports/000.pdf") is None
    assert layout.parse_report_key(CASE, f"{prefix}/reports/1.pdf") is None

"""Archive.store_object: an object is spooled, chained with its hash and stored, and verifies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from recorder import layout
from recorder.archive import Archive
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case

CASE = "case-7"
INSPECTION = "c" * 32


async def test_stored_object_is_chained_with_its_hash_and_verifies(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "archive")
    archive = Archive(storage, tmp_path / "spool", Signer.generate())
    await archive.start()
    try:
        data = b"\x89PNG fake but stored bytes"
        key = layout.snapshot_key(CASE, INSPECTION, "d" * 32)
        entry = await archive.store_object(CASE, key, data, "snapshot", {"snapshot_id": "d" * 32})
        await archive.checkpoint(CASE)
        await archive.drain()
    finally:
        await archive.stop()
    assert entry.kind == "snapshot"
    assert entry.body == {
        "snapshot_id": "d" * 32,
        "key": key,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    assert storage.get(key) == data
    report = verify_case(storage, CASE)
    assert [(s.seq, s.key) for s in report.snapshots] == [(entry.seq, key)]


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("cases/other/inspections/x.png", {}),
        (f"cases/{CASE}/../other/x.png", {}),
        (f"cases/{CASE}/x.json", {"sha256": "0" * 64}),
        (f"cases/{CASE}/x.json", {"lat": 1.5}),
    ],
)
async def test_refused_object_leaves_nothing_behind(
    tmp_path: Path, key: str, body: dict[str, object]
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    archive = Archive(storage, tmp_path / "spool", Signer.generate())
    await archive.start()
    try:
        with pytest.raises(ValueError, match=r"\S"):
            await archive.store_object(CASE, key, b"data", "snapshot", body)
        total, entries = await archive.chain_page(CASE, 0, 10)
    finally:
        await archive.stop()
    assert (total, entries) == (0, [])
    assert storage.list("cases/") == []
    assert [p for p in (tmp_path / "spool" / "objects").rglob("*") if p.is_file()] == []

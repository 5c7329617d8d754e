"""``takan reindex`` over many cases, and what the database cross-check adds to integrity.

    .venv/bin/python tests/bench/bench_reindex.py [--cases 200] [--segments 15] [--long 450]

Builds --cases cases through the real recorder API (an ``Archive`` over ``LocalStorage`` in
DATA/archive, as the server does): each a case_created, an invited, the applicant and the
inspector joining, consent, --segments 4 s segment pairs of random bytes (video 60 kB, audio
4 kB: small, so that the chain, not hashing, dominates), 10 location fixes, a liveness
challenge, 3 checklist marks, 2 snapshots (100 kB), a signed conclusion with its checklist, the
end, the signed manifest and a two-file report, with the bodies the server chains. Then:

- ``verify_case`` of every case in this process: the floor, since reindex verifies each case;
- ``.venv/bin/takan reindex --data DATA`` into an empty database (a subprocess, start-up
  included), then again with ``--force``;
- per case, integrity's own check (``verify_case`` over the case's listing) against what the
  cross-check adds (reading the chain entries, ``CaseRecord.from_entries``, ``disagreements``
  against the rebuilt database); also for one long case of --long segment pairs (30 min at 450).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from recorder import layout
from recorder.archive import Archive
from recorder.chain import ChainEntry
from recorder.clock import utc_iso
from recorder.conclusion import Conclusion
from recorder.export import KeySetStorage
from recorder.recording import FinishedSegment
from recorder.segments import ClosedSegment
from recorder.signing import Signer
from recorder.storage import LocalStorage, Storage
from recorder.verify import verify_case
from server.inspection.chain_record import CaseRecord
from server.inspection.cross_check import disagreements
from server.store.store import Store, open_sqlite

REPO = Path(__file__).resolve().parents[2]
TAKAN = REPO / ".venv" / "bin" / "takan"
SEGMENT_S = 4
TRACKS = {"applicant-video": (60_000, 90_000, 120), "applicant-audio": (4_000, 48_000, 200)}
ITEMS = ("site_sign", "boundary", "structure")


async def build_case(archive: Archive, case_id: str, segments: int, fixes: int) -> None:
    now = time.time() - 3600
    inspection_id = uuid.uuid4().hex
    base = {"inspection_id": inspection_id}
    await archive.append(
        case_id,
        "case_created",
        {
            "by": "inspector1",
            "title": "新建厂房踏勘",
            "address": "杭州市西湖区文三路 100 号",
            "applicant_name": "张三",
            "applicant_phone": "13800000000",
            "case_type": "建设工程",
            "site_lat": "30.2741",
            "site_lon": "120.1551",
            "created_at": utc_iso(now),
        },
    )
    await archive.append(
        case_id,
        "invited",
        {
            **base,
            "by": "inspector1",
            "invite_expires_at": utc_iso(now + 7200),
            "scheduled_at": None,
            "created_at": utc_iso(now + 1),
        },
    )
    for pid, role, name in (
        ("inspector-1", "inspector", "inspector1"),
        ("applicant", "applicant", "张三"),
    ):
        body: dict[str, Any] = {"participant_id": pid, "role": role, "name": name}
        body["joined_at"] = utc_iso(now + 2)
        await archive.append(case_id, "joined", {**base, **body})
    await archive.append(
        case_id,
        "consented",
        {**base, "participant_id": "applicant", "lang": "zh-CN", "consented_at": utc_iso(now + 3)},
    )
    spool = archive.recording_dir / case_id / inspection_id
    spool.mkdir(parents=True)
    wall = now + 3
    for seq in range(segments):
        for track, (size, rate, frames) in TRACKS.items():
            path = spool / f"{track}-{seq:06d}.webm"
            data = os.urandom(size)
            path.write_bytes(data)
            first = seq * SEGMENT_S * rate
            closed = ClosedSegment(
                path, hashlib.sha256(data).hexdigest(), size, first,
                first + SEGMENT_S * rate - 1, Fraction(1, rate), frames, True,
            )  # fmt: skip
            finished = FinishedSegment(track, seq, closed, wall, wall + SEGMENT_S)
            await archive.store_segment(case_id, inspection_id, finished)
        if seq % max(1, segments // fixes) == 0:
            fix = {"lat": "30.2741000", "lon": "120.1551000", "accuracy_m": "8.0"}
            fix |= {"fix_at": utc_iso(wall), "fix_source": "device", "distance_m": "3.0"}
            await archive.append(
                case_id, "location", {**base, "participant_id": "applicant", **fix}
            )
        wall += SEGMENT_S
    challenge = {"challenge_id": uuid.uuid4().hex, "by": "inspector1"}
    await archive.append(
        case_id,
        "challenge_issued",
        {**base, **challenge, "kind": "code", "prompt": "1234", "issued_at": utc_iso(wall)},
    )
    await archive.append(
        case_id,
        "challenge_judged",
        {**base, **challenge, "judgement": "passed", "note": "", "judged_at": utc_iso(wall)},
    )
    snapshot_ids = []
    for _ in range(2):
        snapshot_id = uuid.uuid4().hex
        snapshot_ids.append(snapshot_id)
        key = layout.snapshot_key(case_id, inspection_id, snapshot_id)
        body = {"snapshot_id": snapshot_id, "width": 640, "media_pts": 0}
        body["height"] = 480
        body |= {"time_base": "1/90000", "taken_at": utc_iso(wall), "lat": None, "lon": None}
        await archive.store_object(
            case_id, key, os.urandom(100_000), "snapshot", {**base, **body, "by": "inspector1"}
        )
    for item_id in ITEMS:
        body = {"item_id": item_id, "template_id": "building", "template_version": 1}
        body |= {"done": True, "note": "已核对", "snapshot_ids": snapshot_ids, "by": "inspector1"}
        await archive.append(case_id, "checklist_mark", {**base, **body})
    conclusion = Conclusion(
        inspection_id, "pass", "现场与申报材料一致", "inspector1", utc_iso(wall), None
    )
    items = [{"item_id": i, "text": i, "required_photos": 0} for i in ITEMS]
    checklist = {
        "template_id": "building",
        "version": 1,
        "name": "建设工程现场踏勘",
        "items": items,
    }
    signed = conclusion.signed_body(archive.signer)
    await archive.append(case_id, "conclusion", {**signed, "checklist": checklist})
    ended = {"by": "inspector1", "ended_at": utc_iso(wall + 1)}
    await archive.finish_inspection(case_id, inspection_id, ended)
    for report_format in ("html", "pdf"):
        key = layout.report_key(case_id, inspection_id, 1, report_format)
        body = {"version": 1, "format": report_format, "generated_at": utc_iso(wall + 2)}
        await archive.store_object(case_id, key, os.urandom(50_000), "report", {**base, **body})
    await archive.checkpoint(case_id)  # as a published report is signed


async def build(data_dir: Path, cases: int, segments: int, long_segments: int) -> None:
    storage = LocalStorage(data_dir / "archive")
    signer = Signer.load_or_create(data_dir / "signing.key")
    archive = Archive(storage, data_dir / "spool", signer)
    await archive.start()
    for number in range(cases):
        await build_case(archive, f"BENCH-{number:04d}", segments, 10)
    await build_case(archive, "BENCH-LONG", long_segments, long_segments // 2)
    await archive.drain()  # stop() waits 10 s at most for the uploads; here all must be stored
    await archive.stop()


def read_chain(storage: Storage, case_id: str) -> list[ChainEntry]:
    keys = storage.list(layout.chain_prefix(case_id))
    return [ChainEntry.from_json(json.loads(storage.get(key))) for key in keys]


def integrity_costs(storage: LocalStorage, store: Store, case_id: str) -> tuple[float, float]:
    """(integrity's verify, what the cross-check adds), seconds, as the endpoint runs them."""
    view = KeySetStorage(storage, storage.list(layout.case_prefix(case_id)))
    started = time.perf_counter()
    verify_case(view, case_id)
    verified = time.perf_counter()
    record = CaseRecord.from_entries(case_id, read_chain(view, case_id))
    found = disagreements(asyncio.run(store.case_index.rows(case_id)), record)
    assert not found, found  # a bench of the normal case: the rebuilt database agrees
    return verified - started, time.perf_counter() - verified


def reindex(data_dir: Path, *extra: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(TAKAN), "reindex", "--data", str(data_dir), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"takan reindex failed ({done.returncode}): {done.stdout}{done.stderr}")
    return elapsed, done.stdout.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--segments", type=int, default=15, help="segment pairs per case")
    parser.add_argument("--long", type=int, default=450, help="segment pairs of the long case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reindex-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        asyncio.run(build(data_dir, args.cases, args.segments, args.long))
        storage = LocalStorage(data_dir / "archive")
        keys = storage.list("cases/")
        size = sum((storage.root / key).stat().st_size for key in keys)
        entries = sum(1 for key in keys if "/chain/" in key)
        print(
            f"built {args.cases + 1} cases ({len(keys)} objects, {entries} chain entries,"
            f" {size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s"
        )
        case_ids = sorted({key.split("/")[1] for key in keys})
        started = time.perf_counter()
        for case_id in case_ids:
            verify_case(storage, case_id)
        floor = time.perf_counter() - started
        per_case = floor / len(case_ids) * 1000
        print(f"verify_case of every case, in process:   {floor:7.2f} s ({per_case:.1f} ms a case)")
        elapsed, line = reindex(data_dir)
        per_case = elapsed / len(case_ids) * 1000
        print(
            f"takan reindex into an empty database:    {elapsed:7.2f} s ({per_case:.1f} ms a case)"
        )
        print(f"  {line}")
        elapsed, _ = reindex(data_dir, "--force")
        print(f"takan reindex --force over it:           {elapsed:7.2f} s")
        db = open_sqlite(data_dir / "takan.sqlite3")
        try:
            costs = [integrity_costs(storage, db, case_id) for case_id in case_ids[:50]]
            verify_ms = statistics.median(c[0] for c in costs) * 1000
            added_ms = statistics.median(c[1] for c in costs) * 1000
            print(
                f"integrity of a {args.segments * 2}-segment case (median of 50): verify"
                f" {verify_ms:.1f} ms, cross-check adds {added_ms:.1f} ms"
                f" ({added_ms / verify_ms * 100:.0f} %)"
            )
            long_verify, long_added = integrity_costs(storage, db, "BENCH-LONG")
            share = long_added / long_verify * 100
            print(
                f"integrity of the {args.long * 2}-segment case: verify"
                f" {long_verify * 1000:.0f} ms, cross-check adds {long_added * 1000:.0f} ms"
                f" ({share:.0f} %)"
            )
        finally:
            db.close()


if __name__ == "__main__":
    main()

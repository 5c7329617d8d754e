"""A real archive, made once through the real server, for the tamper suite to break copies of.

Two cases, each with real media from ``python -m client publish`` of the test source (1 s
segments, a checkpoint every second, each checkpoint and manifest stamped by a local RFC 3161
TSA): the first with a snapshot, an annotation on it (and its marked-up copy), a checklist mark,
a signed conclusion and its generated report (HTML and PDF); the second with media only. Every
token is chained before the server stops, and nothing is written after, so the archive is final.
"""

from __future__ import annotations

import asyncio
import shutil
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from recorder import layout
from recorder.canonical import parse_json
from recorder.chain import ChainEntry
from recorder.storage import LocalStorage
from server.http.api_report import REPORT_TASKS
from tests.conftest import LiveServer, running_server
from tests.integration.evidence_helpers import register_passkey, sign_conclusion
from tests.integration.recorded_case import record_inspection, run
from tests.soft_authenticator import SoftAuthenticator
from tests.tsa_server import LocalTsa, TsaCerts

SEGMENT_S = 1.0
CHECKPOINT_S = 1.0
MIN_VIDEO_SEGMENTS = 3  # per inspection, so that middle and last segments both exist


@dataclass(frozen=True)
class RealCase:
    """One case of the pristine archive, as stored."""

    case_id: str
    inspection_id: str
    keys: list[str]
    entries: list[ChainEntry]
    checkpoint_seqs: list[int]
    manifest_heads: list[int]
    receipt: Path  # the inspection's receipt as served at its end (outside the data dir)

    @property
    def last_seq(self) -> int:
        return self.entries[-1].seq

    @property
    def anchor_seqs(self) -> list[int]:
        """Every chain position a signature vouches for (checkpoints and manifests)."""
        return sorted({*self.checkpoint_seqs, *self.manifest_heads})

    @property
    def last_signed(self) -> int:
        """The highest signed head: above it only ``timestamp`` entries (the tail rule)."""
        return max(self.anchor_seqs)

    def last_unsigned_event(self, above: int) -> int | None:
        """The last entry above ``above`` that is not a timestamp: what verify names as not
        covered when ``above`` is the highest signed head left."""
        found = [e.seq for e in self.entries if e.seq > above and e.kind != "timestamp"]
        return found[-1] if found else None

    def token_of(self, document: str) -> str:
        """The key of the timestamp token over a checkpoint or manifest."""
        [key] = [
            e.body["key"]
            for e in self.entries
            if e.kind == "timestamp" and e.body["document"] == document
        ]
        return str(key)

    def of_kind(self, kind: str) -> list[str]:
        """Stored keys of one object kind (see ``kind_of``), in key order."""
        return [key for key in self.keys if kind_of(self.case_id, key) == kind]

    def entry_recording(self, key: str) -> ChainEntry:
        """The chain entry that records the object ``key``."""
        return next(e for e in self.entries if e.body.get("key") == key)


def kind_of(case_id: str, key: str) -> str:
    """What an object of a case is: chain, checkpoint, public_key, segment, manifest, snapshot,
    annotation, marked_up, report_html, report_pdf, timestamp_token, or other."""
    if layout.parse_chain_entry_key(case_id, key) is not None:
        return "chain"
    if layout.parse_checkpoint_key(case_id, key) is not None:
        return "checkpoint"
    if layout.parse_public_key_key(case_id, key) is not None:
        return "public_key"
    if layout.parse_segment_key(case_id, key) is not None:
        return "segment"
    if layout.parse_manifest_key(case_id, key) is not None:
        return "manifest"
    if layout.parse_snapshot_key(case_id, key) is not None:
        return "snapshot"
    if layout.parse_annotation_key(case_id, key) is not None:
        return "annotation"
    if layout.parse_marked_up_key(case_id, key) is not None:
        return "marked_up"
    report = layout.parse_report_key(case_id, key)
    if report is not None:
        return f"report_{report[2]}"
    if layout.parse_timestamp_key(case_id, key) is not None:
        return "timestamp_token"
    return "other"


@dataclass(frozen=True)
class RealArchive:
    """The pristine data directory (never written after it is built) and what it holds."""

    data_dir: Path
    fingerprint: str
    tsa_ca: Path  # the root certificate of the TSA that stamped it (takan verify --tsa-cert)
    full: RealCase  # snapshot, annotation, checklist, conclusion, report
    plain: RealCase  # media only
    build_s: float = 0.0

    @property
    def archive(self) -> Path:
        return self.data_dir / "archive"


def copy_data_dir(source: Path, target: Path) -> Path:
    """A writable copy of a data directory: archived objects are 0444 (write-once); only the
    copy's become writable again, so a test can change them as an insider would."""
    shutil.copytree(source, target)
    for path in (target / "archive").rglob("*"):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    return target


def read_case(archive: Path, case_id: str, receipt: Path) -> RealCase:
    storage = LocalStorage(archive)
    keys = storage.list(layout.case_prefix(case_id))
    entries = [
        ChainEntry.from_json(parse_json(storage.get(key)))
        for key in keys
        if layout.parse_chain_entry_key(case_id, key) is not None
    ]
    checkpoints = [layout.parse_checkpoint_key(case_id, key) for key in keys]
    manifests = [
        parse_json(storage.get(key))["manifest"]["chain_head_seq"]
        for key in keys
        if layout.parse_manifest_key(case_id, key) is not None
    ]
    [inspection_id] = {e.body["inspection_id"] for e in entries if e.kind == "segment"}
    return RealCase(
        case_id=case_id,
        inspection_id=inspection_id,
        keys=keys,
        entries=entries,
        checkpoint_seqs=sorted(seq for seq in checkpoints if seq is not None),
        manifest_heads=sorted(manifests),
        receipt=receipt,
    )


async def _wait_for_segments(server: LiveServer, case_id: str, count: int) -> None:
    async with asyncio.timeout(90):
        while True:
            _, entries = await server.services.archive.chain_page(case_id, 0, 100_000)
            video = [
                e
                for e in entries
                if e.kind == "segment" and e.body.get("track") == "applicant-video"
            ]
            if len(video) >= count:
                return
            await asyncio.sleep(0.2)


async def _snapshot(server: LiveServer, inspection_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            status, body = await server.request(
                "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
            )
            if status == 201:
                return dict(body)
            assert status == 409, body  # no full frame yet
            await asyncio.sleep(0.3)


async def _save_receipt(server: LiveServer, case_id: str, target: Path) -> Path:
    """The receipt of the case's inspection, as the applicant would download it."""
    _, entries = await server.services.archive.chain_page(case_id, 0, 100_000)
    inspection_id = next(e.body["inspection_id"] for e in entries if e.kind == "manifest")
    headers = {"Authorization": f"Bearer {await server.token('auditor1')}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.base_url}/api/inspections/{inspection_id}/receipt", headers=headers
        ) as response,
    ):
        assert response.status == 200, await response.text()
        data = await response.read()
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(target.write_bytes, data)
    return target


async def _status_of(server: LiveServer, path: str, username: str) -> int:
    headers = {"Authorization": f"Bearer {await server.token(username)}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + path, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def _wait_for_report(server: LiveServer, inspection_id: str) -> None:
    async with asyncio.timeout(180):
        for fmt in ("html", "pdf"):
            while True:
                status = await _status_of(
                    server, f"/api/inspections/{inspection_id}/report.{fmt}", "auditor1"
                )
                if status == 200:
                    break
                assert status == 202, status
                await asyncio.sleep(0.3)


# The full case's checklist: one required item (its one mark) and one a pass may leave open.
ONE_CHECK_TEMPLATE = {
    "case_type": "单项核查",
    "name": "单项核查",
    "items": [
        {"item_id": "boundary", "text": "场地四至边界与审批红线一致", "required_photos": 1},
        {"item_id": "surroundings", "text": "周边情况", "required_photos": 0, "required": False},
    ],
}


async def _record_full_case(server: LiveServer) -> str:
    status, template = await server.request(
        "PUT", "/api/checklist-templates/one-check", "admin1", json=ONE_CHECK_TEMPLATE
    )
    assert status == 200, template
    case = await server.new_case(case_type="单项核查")
    case_id: str = case["case_id"]
    status, invite = await server.request("POST", f"/api/cases/{case_id}/inspections", "inspector1")
    assert status == 201, invite
    inspection_id = invite["inspection_id"]
    publish = ("publish", invite["applicant_url"], "--source", "testsrc", "--seconds", "60")
    publisher = asyncio.create_task(run(sys.executable, "-m", "client", *publish, timeout=120))
    snapshot = await _snapshot(server, inspection_id)
    status, annotation = await server.request(
        "POST",
        f"/api/snapshots/{snapshot['snapshot_id']}/annotations",
        "inspector1",
        json={
            "shapes": [{"type": "box", "x1": 4, "y1": 4, "x2": 90, "y2": 60, "color": "#ff0000"}]
        },
    )
    assert status == 201, annotation
    status, marked = await server.request(
        "POST",
        f"/api/inspections/{inspection_id}/checklist/boundary",
        "inspector1",
        json={"verdict": "pass", "note": "四至清楚", "snapshot_ids": [snapshot["snapshot_id"]]},
    )
    assert status == 200, marked
    await _wait_for_segments(server, case_id, MIN_VIDEO_SEGMENTS)
    # The inspector signs with a passkey (the archive key countersigns): the case chains the
    # passkey's enrolment and the conclusion carries its assertion.
    device = SoftAuthenticator(server.base_url, "localhost")
    await register_passkey(server, device)
    status, concluded = await sign_conclusion(
        server, device, inspection_id, {"outcome": "pass", "reason": "现场与申报材料一致"}
    )
    assert status == 201, concluded
    assert concluded["inspector_signature"] is not None
    code, _, err = await publisher
    assert code == 0, err
    await _wait_for_report(server, inspection_id)
    return case_id


async def build_real_archive(data_dir: Path, tsa_certs: TsaCerts) -> RealArchive:
    started = time.monotonic()
    tsa = LocalTsa(tsa_certs, data_dir.parent / "tsa")
    await tsa.start()
    try:
        async with running_server(
            data_dir,
            database="",  # its own SQLite, which the copies carry, whatever the test's engine
            host_name="localhost",  # a host name, so that passkeys work
            segment_s=SEGMENT_S,
            checkpoint_interval_s=CHECKPOINT_S,
            tsa_urls=(tsa.url,),
            tsa_cert_files=(tsa_certs.ca,),
        ) as server:
            full = await _record_full_case(server)
            plain = (await record_inspection(server, seconds=MIN_VIDEO_SEGMENTS + 1))["case_id"]
            fingerprint = server.services.archive.signer.fingerprint
            await server.app[REPORT_TASKS].close()
            archive, timestamper = server.services.archive, server.services.timestamper
            assert timestamper is not None
            for case_id in (full, plain):
                await archive.checkpoint(case_id)  # the last one; stopping signs nothing new
            await timestamper.idle()
            await archive.drain()
            receipts = {
                case_id: await _save_receipt(
                    server, case_id, data_dir.parent / "receipts" / f"{case_id}.json"
                )
                for case_id in (full, plain)
            }
    finally:
        await tsa.stop()
    stored = data_dir / "archive"
    return RealArchive(
        data_dir=data_dir,
        fingerprint=fingerprint,
        tsa_ca=tsa_certs.ca,
        full=read_case(stored, full, receipts[full]),
        plain=read_case(stored, plain, receipts[plain]),
        build_s=time.monotonic() - started,
    )

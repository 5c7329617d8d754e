"""The object store goes away for 20 s mid-recording: recording goes on, nothing is lost.

Takan reaches the S3 server through a TcpGate, so while the server is down Takan's uploads are
refused exactly as they would be by a stopped MinIO. It runs against LocalStack and SeaweedFS.
SeaweedFS keeps its disk across the restart; LocalStack community keeps S3 in memory, so there the
test stands in for MinIO's disk: it dumps the bucket before stopping the server and restores it
after the restart (same port, same data dir), before the gate opens again.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from recorder.verify import verify_case
from tests.conftest import new_bucket, running_server
from tests.integration.test_recording import run
from tests.s3server import S3Server, TcpGate

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine

OUTAGE_S = 20.0


@pytest.fixture
def gate(s3_server: S3Server) -> Iterator[TcpGate]:
    gate = TcpGate(s3_server.port)
    gate.open()
    try:
        yield gate
    finally:
        gate.close()


async def wait_for(condition_fn: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition_fn):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def test_twenty_second_storage_outage_loses_no_segment(
    s3_server: S3Server, gate: TcpGate, tmp_path: Path
) -> None:
    bucket = new_bucket()
    storage = s3_server.storage(bucket)
    async with running_server(tmp_path / "data", s3_server.url(bucket, port=gate.port)) as server:
        invite = await server.new_inspection()
        case_id, inspection_id = invite["case_id"], invite["inspection_id"]
        segments_prefix = f"cases/{case_id}/inspections/{inspection_id}/segments/"
        publish = asyncio.create_task(
            run(
                sys.executable, "-m", "client", "publish", invite["applicant_url"],
                "--source", "testsrc", "--seconds", "36", timeout=90,
            )
        )  # fmt: skip
        await wait_for(lambda: storage.list(segments_prefix), 30, "a first segment in S3")

        # The outage: refused connections, the server stopped, 20 s later back with its data.
        gate.close()
        outage_from = time.time()
        contents = {} if s3_server.keeps_data else await asyncio.to_thread(s3_server.dump)
        await asyncio.to_thread(s3_server.stop)
        failures_before = server.services.archive.stats.upload_failures
        await asyncio.sleep(OUTAGE_S - (time.time() - outage_from))
        await asyncio.to_thread(s3_server.start)
        if not s3_server.keeps_data:
            await asyncio.to_thread(s3_server.restore, contents)
        gate.open()
        outage_to = time.time()

        code, _, err = await publish
        assert code == 0, err
        status, _ = await server.request(
            "POST", f"/api/inspections/{inspection_id}/end", "inspector1"
        )
        assert status == 200
        async with asyncio.timeout(60):
            await server.services.archive.drain()

        # Uploads failed during the outage (it was felt) ...
        assert server.services.archive.stats.upload_failures > failures_before
        # ... recording went on through it ...
        chain = [
            json.loads(storage.get(key))
            for key in await asyncio.to_thread(storage.list, f"cases/{case_id}/chain/")
        ]
        records = [entry["body"] for entry in chain if entry["kind"] == "segment"]
        during = [r for r in records if outage_from < _epoch(r["end_utc"]) < outage_to]
        assert len(during) >= 4, [(r["track"], r["start_utc"], r["end_utc"]) for r in records]
        # ... and every chained segment is in S3, nothing is left in the spool.
        stored = set(await asyncio.to_thread(storage.list, segments_prefix))
        assert {r["key"] for r in records} <= stored
        spool = server.data_dir / "spool" / "objects"
        assert not [p for p in spool.rglob("*") if p.is_file()]

    report = await asyncio.to_thread(verify_case, storage, case_id)
    assert report.segments == len(records)
    assert report.gaps == 0


def _epoch(utc: str) -> float:
    return datetime.fromisoformat(utc.replace("Z", "+00:00")).timestamp()


async def test_a_case_is_opened_while_the_store_is_down_and_stored_once_it_is_back(
    s3_server: S3Server, gate: TcpGate, tmp_path: Path
) -> None:
    bucket = new_bucket()
    storage = s3_server.storage(bucket)
    async with running_server(tmp_path / "data", s3_server.url(bucket, port=gate.port)) as server:
        gate.close()  # the object store unreachable
        case = await server.new_case()
        status, invite = await server.request(
            "POST", f"/api/cases/{case['case_id']}/inspections", "inspector1"
        )
        assert status == 201, invite
        gate.open()
        chain_prefix = f"cases/{case['case_id']}/chain/"
        await wait_for(lambda: len(storage.list(chain_prefix)) >= 3, 60, "the case's entries")
        report = await asyncio.to_thread(
            verify_case, storage, case["case_id"], require_signed_tail=False
        )
        assert report.chain_entries >= 3

"""An inspection recorded into an S3 bucket with object lock: all of it stored, locked, verified."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from recorder.verify import verify_case
from tests.conftest import S3LiveServer
from tests.integration.test_recording import check_ten_seconds_of_tracks, record_ten_seconds, run
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine


async def test_ten_second_inspection_is_archived_in_s3_locked_and_verifies(
    live_server_s3: S3LiveServer, s3_server: S3Server, tmp_path: Path
) -> None:
    server, storage = live_server_s3.server, live_server_s3.storage
    invite = await record_ten_seconds(server)
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    keys = await asyncio.to_thread(
        storage.list, f"cases/{case_id}/inspections/{inspection_id}/segments/"
    )
    await asyncio.to_thread(check_ten_seconds_of_tracks, storage, keys, tmp_path)
    # Nothing is left in the local spool, and every object is locked in the bucket.
    spool = server.data_dir / "spool" / "objects"
    assert not [p for p in spool.rglob("*") if p.is_file()]
    assert not (server.data_dir / "archive").exists()
    client = storage._client
    for key in await asyncio.to_thread(storage.list, f"cases/{case_id}/"):
        retention = client.get_object_retention(live_server_s3.bucket, key)
        assert retention is not None, key
        assert retention.mode == "GOVERNANCE", key

    report = await asyncio.to_thread(verify_case, storage, case_id)
    assert report.segments == len(keys)
    assert report.manifests == 1
    url = f"minio://{s3_server.endpoint}/{live_server_s3.bucket}?secure=false&region={REGION}"
    env = {**os.environ, "TAKAN_S3_ACCESS_KEY": ACCESS_KEY, "TAKAN_S3_SECRET_KEY": SECRET_KEY}
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", case_id, "--storage", url, env=env
    )
    assert code == 0, out + err
    assert f"S3 bucket {live_server_s3.bucket}" in out

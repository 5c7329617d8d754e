"""``kill -9`` the server mid-recording and start it again on the same data dir.

At most the open segment's unwritten tail is lost: the next start finalizes the partial segment,
chains it marked partial with a ``recovered`` event, uploads what was spooled, and the case
verifies.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from recorder.storage import LocalStorage
from recorder.verify import verify_case
from tests.conftest import add_users
from tests.fault.server_process import ServerProcess
from tests.integration.test_recording import run
from tests.s3server import free_port


@pytest.fixture
async def server_process(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, dict[str, str]]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    passwords = add_users(data_dir)
    server = ServerProcess(data_dir, free_port(), tmp_path / "server.log")
    try:
        yield server, passwords
    finally:
        await server.stop()


def spooled_files(data_dir: Path) -> list[Path]:
    spool = data_dir / "spool"
    return [p for p in (spool / "objects").rglob("*") if p.is_file()] + list(
        (spool / "recording").rglob("*.webm")
    )


async def test_kill9_mid_recording_loses_at_most_the_open_segment_tail(
    server_process: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, passwords = server_process
    await server.start()
    status, login = await server.call(
        "POST", "/api/login", json={"username": "inspector1", "password": passwords["inspector1"]}
    )
    assert status == 200, login
    token = login["token"]
    status, case = await server.call(
        "POST", "/api/cases", token,
        json={"case_id": "KILL-9", "title": "t", "address": "a", "applicant_name": "n",
              "applicant_phone": "13800000000"},
    )  # fmt: skip
    assert status == 201, case
    status, invite = await server.call("POST", "/api/cases/KILL-9/inspections", token)
    assert status == 201, invite
    inspection_id = invite["inspection_id"]

    publish = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "client", "publish", invite["applicant_url"],
        "--source", "testsrc", "--seconds", "30",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Record ~8 s (two segments a track and part of the third), then kill -9.
        recording = server.data_dir / "spool" / "recording" / "KILL-9" / inspection_id
        started = time.monotonic()
        while time.monotonic() - started < 8 or not list(recording.glob("*.webm")):
            assert time.monotonic() - started < 30, "recording never started"
            await asyncio.sleep(0.2)
        killed_at = time.time()
        await server.kill9()
    finally:
        publish.kill()
        await publish.wait()

    open_segments = sorted(p.name for p in recording.glob("*.webm"))
    assert open_segments, "the kill left no open segment to recover"
    archive = LocalStorage(server.data_dir / "archive")
    chained_before = len(archive.list("cases/KILL-9/chain/"))

    await server.start()  # same data dir, same port: recovery runs at start
    deadline = time.monotonic() + 30
    while spooled_files(server.data_dir):
        assert time.monotonic() < deadline, spooled_files(server.data_dir)
        await asyncio.sleep(0.2)

    entries = [json.loads(archive.get(k)) for k in archive.list("cases/KILL-9/chain/")]
    assert len(entries) > chained_before
    # (a segment committed but not yet moved when the kill came is "moved", not remuxed)
    recovered = [
        e["body"] for e in entries if e["kind"] == "recovered" and e["body"]["how"] != "moved"
    ]
    assert sorted(f"{r['track']}-{r['seq']:06d}.webm" for r in recovered) == open_segments
    partial = [e["body"] for e in entries if e["kind"] == "segment" and e["body"]["partial"]]
    assert {(p["track"], p["seq"]) for p in partial} == {
        (r["track"], r["seq"]) for r in recovered if r["readable"]
    }
    assert partial, "no partial segment was readable"
    for segment in partial:
        # What reached the disk runs to within a cluster (1 s) of the kill.
        lost_s = killed_at - datetime.fromisoformat(segment["end_utc"]).timestamp()
        assert segment["frames"] > 0
        assert lost_s < 2.0, (segment["track"], lost_s)

    # The recovered state is signed: verify passes as it is, without --allow-unsigned-tail.
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", "KILL-9", "--data", str(server.data_dir)
    )
    assert code == 0, out + err
    assert "partial      " in out

    # The inspector ends the inspection after the restart: its manifest covers everything.
    status, _ = await server.call("POST", f"/api/inspections/{inspection_id}/end", token)
    assert status == 200
    await server.stop()
    report = verify_case(archive, "KILL-9")
    assert report.manifests == 1
    assert len(report.partial_segments) == len(partial)

"""Every inspection is recorded as playable, hashed, chained and signed segments."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
from pathlib import Path

import av
import pytest

from recorder.storage import LocalStorage, Storage
from recorder.verify import verify_case
from tests.conftest import LiveServer

# The media path, once: what it stores (joins, consent) runs on both engines in test_signalling.
pytestmark = pytest.mark.single_engine

TRACKS = ("applicant-video", "applicant-audio", "inspector-audio")


async def run(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def decoded_seconds(data: bytes, path: Path) -> float:
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams[0]
        stamps = [f.pts for f in container.decode(stream) if f.pts is not None]
        assert stamps, f"{path.name} has no decodable frames"
        assert stream.time_base is not None
        return float((stamps[-1] - stamps[0]) * stream.time_base)


async def record_ten_seconds(server: LiveServer) -> dict[str, str]:
    """Publish ~11 s of test video while an inspector watches, end the inspection, and wait
    until the archive has stored everything; the invite of the inspection."""
    invite = await server.new_inspection()
    token = await server.token("inspector1")
    publish = run(
        sys.executable, "-m", "client", "publish", invite["applicant_url"],
        "--source", "testsrc", "--seconds", "11",
    )  # fmt: skip
    watch = run(
        sys.executable, "-m", "client", "watch", invite["inspector_url"],
        "--token", token, "--seconds", "9", "--json",
    )  # fmt: skip
    (publish_code, _, publish_err), (watch_code, _, watch_err) = await asyncio.gather(
        publish, watch
    )
    assert publish_code == 0, publish_err
    assert watch_code == 0, watch_err
    status, _ = await server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    assert status == 200
    await server.services.archive.drain()
    return invite


def check_ten_seconds_of_tracks(storage: Storage, keys: list[str], tmp_path: Path) -> None:
    """Every track has segments, and the video segments decode to the ~11 s published."""
    for track in TRACKS:
        assert any(f"/{track}/" in key for key in keys), f"no {track} segments in {keys}"
    video_keys = [k for k in keys if "/applicant-video/" in k]
    video_seconds = sum(
        decoded_seconds(storage.get(k), tmp_path / f"v{i}.webm") for i, k in enumerate(video_keys)
    )
    # Publishing lasted ~11 s from connecting; the recording holds all of it but the first
    # keyframe wait, within one segment (4 s).
    assert 6 <= video_seconds <= 12, video_seconds


async def test_ten_second_inspection_is_archived_playable_and_verifies(
    live_server: LiveServer, tmp_path: Path
) -> None:
    invite = await record_ten_seconds(live_server)
    storage = LocalStorage(live_server.data_dir / "archive")
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    prefix = f"cases/{case_id}/inspections/{inspection_id}/segments/"
    keys = storage.list(prefix)
    check_ten_seconds_of_tracks(storage, keys, tmp_path)
    for i, key in enumerate(k for k in keys if "audio" in k):
        assert decoded_seconds(storage.get(key), tmp_path / f"a{i}.webm") > 0

    report = verify_case(storage, case_id)
    assert report.segments == len(keys)
    code, out, err = await run(
        sys.executable, "-m", "server.cli", "verify", case_id, "--data", str(live_server.data_dir)
    )
    assert code == 0, out + err
    assert "sha256:" in out


async def test_every_action_that_matters_is_a_chain_entry(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection()
    code, _, err = await run(
        sys.executable, "-m", "client", "publish", invite["applicant_url"],
        "--source", "testsrc", "--seconds", "3",
    )  # fmt: skip
    assert code == 0, err
    await live_server.request(
        "POST", f"/api/inspections/{invite['inspection_id']}/end", "inspector1"
    )
    await live_server.services.archive.drain()
    storage = LocalStorage(live_server.data_dir / "archive")
    kinds = [
        json.loads(storage.get(key))["kind"]
        for key in storage.list(f"cases/{invite['case_id']}/chain/")
    ]
    for kind in ("case_created", "invited", "joined", "consented", "recording_started", "left"):
        assert kind in kinds, (kind, kinds)
    assert "segment" in kinds
    assert kinds.index("ended") > kinds.index("left")


async def test_auditor_pages_through_the_chain_with_each_entry_hash(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    path = f"/api/cases/{invite['case_id']}/audit"
    status, page = await live_server.request("GET", path + "?limit=1", "auditor1")
    assert status == 200, page
    assert page["total"] == 3  # the archive's signing key, case_created, invited
    assert [e["kind"] for e in page["entries"]] == ["signing_key"]
    assert len(page["entries"][0]["hash"]) == 64
    status, page = await live_server.request("GET", path + "?offset=1&limit=5", "admin1")
    assert [e["kind"] for e in page["entries"]] == ["case_created", "invited"]
    assert (
        page["entries"][0]["prev"]
        == ((await live_server.request("GET", path, "auditor1"))[1]["entries"][0]["hash"])
    )


async def test_audit_refuses_inspectors_huge_pages_and_unknown_cases(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    path = f"/api/cases/{invite['case_id']}/audit"
    status, body = await live_server.request("GET", path, "inspector2")  # not the case's
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await live_server.request("GET", path + "?limit=100000", "auditor1")
    assert (status, body["error"]) == (400, "bad_request")
    status, body = await live_server.request("GET", path + "?offset=-1", "auditor1")
    assert (status, body["error"]) == (400, "bad_request")
    status, body = await live_server.request("GET", "/api/cases/NOPE/audit", "auditor1")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await live_server.request("GET", "/api/cases/..%2Fx/audit", "auditor1")
    assert status in (400, 404)


async def test_public_key_is_published_with_its_fingerprint(live_server: LiveServer) -> None:
    status, body = await live_server.request("GET", "/api/keys")
    assert status == 200
    (key,) = body["keys"]
    assert key["algorithm"] == "Ed25519"
    raw = base64.b64decode(key["public_key"])
    assert key["fingerprint"] == "sha256:" + hashlib.sha256(raw).hexdigest()

"""Snapshots of a real aiortc publisher's video: full-resolution PNGs, hashed, chained, verified;
annotations stored beside them without touching the original."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from typing import Any

import aiohttp
import cv2
import numpy as np

from recorder.storage import LocalStorage
from recorder.verify import verify_case
from tests.conftest import LiveServer
from tests.integration.evidence_helpers import chain, kinds, object_files, publishing

ARROW = {"type": "arrow", "x1": 10, "y1": 10, "x2": 200, "y2": 150, "color": "#FF0000"}
BOX = {"type": "box", "x1": 300, "y1": 100, "x2": 639, "y2": 479, "color": "#00ff00"}
TEXT = {
    "type": "text",
    "x1": 20,
    "y1": 400,
    "x2": 220,
    "y2": 440,
    "text": "门牌号",
    "color": "#ffffff",
}


async def get_bytes(server: LiveServer, path: str, username: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {await server.token(username)}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + path, headers=headers) as response,
    ):
        return response.status, await response.read()


async def test_snapshot_is_the_full_frame_as_png_whose_hash_is_chained_and_verifies(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    async with publishing(live_server, invite, 640, 480):
        status, first = await live_server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
        assert status == 201, first
        status, second = await live_server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
        assert status == 201, second
    assert (first["width"], first["height"]) == (640, 480)
    assert first["url"] == f"/api/snapshots/{first['snapshot_id']}.png"
    assert first["snapshot_id"] != second["snapshot_id"]
    assert second["media_pts"] > first["media_pts"]

    status, png = await get_bytes(live_server, first["url"], "inspector1")
    assert status == 200
    assert hashlib.sha256(png).hexdigest() == first["sha256"]
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    assert image.shape == (480, 640, 3)
    assert float(image.std()) > 10  # a test picture, not a blank frame

    entries = {e.body.get("snapshot_id"): e for e in await chain(live_server, case_id)}
    entry = entries[first["snapshot_id"]]
    assert entry.kind == "snapshot"
    assert entry.body["sha256"] == first["sha256"]
    assert entry.body["size"] == len(png)
    assert entry.body["by"] == "inspector1"
    assert entry.body["taken_at"] == first["taken_at"]
    assert entry.body["media_pts"] == first["media_pts"]
    assert entry.body["time_base"] == "1/90000"

    status, ended = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/end", "inspector1"
    )
    assert status == 200, ended
    await live_server.services.archive.drain()
    report = verify_case(LocalStorage(live_server.data_dir / "archive"), case_id)
    assert [(s.snapshot_id, s.sha256) for s in report.snapshots] == [
        (first["snapshot_id"], first["sha256"]),
        (second["snapshot_id"], second["sha256"]),
    ]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.cli", "verify", case_id,
        "--data", str(live_server.data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out.decode() + err.decode()
    assert "snapshots    2:" in out.decode()
    assert first["sha256"] in out.decode()


async def test_annotating_keeps_the_original_png_and_stores_the_overlay_apart(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    async with publishing(live_server, invite):
        status, snap = await live_server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
    assert status == 201, snap
    _, before = await get_bytes(live_server, snap["url"], "inspector1")

    status, note = await live_server.request(
        "POST",
        f"/api/snapshots/{snap['snapshot_id']}/annotations",
        "inspector1",
        json={"shapes": [ARROW, BOX, TEXT]},
    )
    assert status == 201, note
    _, after = await get_bytes(live_server, snap["url"], "inspector1")
    assert after == before
    assert hashlib.sha256(after).hexdigest() == snap["sha256"]

    status, document = await live_server.request("GET", note["url"], "auditor1")
    assert status == 200, document
    assert document["snapshot_sha256"] == snap["sha256"]
    assert document["shapes"][0]["color"] == "#ff0000"
    assert document["shapes"][2]["text"] == "门牌号"
    raw_status, raw = await get_bytes(live_server, note["url"], "auditor1")
    assert raw_status == 200
    assert hashlib.sha256(raw).hexdigest() == note["sha256"]
    annotation_entries = [e for e in await chain(live_server, case_id) if e.kind == "annotation"]
    assert [e.body["sha256"] for e in annotation_entries] == [note["sha256"]]

    status, listed = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}/snapshots", "auditor1"
    )
    assert status == 200, listed
    [only] = listed["snapshots"]
    assert only["snapshot_id"] == snap["snapshot_id"]
    assert [a["annotation_id"] for a in only["annotations"]] == [note["annotation_id"]]


async def test_snapshot_without_flowing_video_is_refused_and_writes_nothing(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    before = await kinds(live_server, case_id)
    status, body = await live_server.request(
        "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
    )
    assert (status, body) == (409, {"error": "conflict", "reason": "no video is flowing"})
    assert await kinds(live_server, case_id) == before
    assert object_files(live_server, case_id, "/snapshots/") == []
    status, listed = await live_server.request(
        "GET", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
    )
    assert (status, listed["snapshots"]) == (200, [])


async def test_only_the_own_inspector_takes_snapshots_and_readers_are_checked(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    path = f"/api/inspections/{invite['inspection_id']}/snapshots"
    for username, expected in (("inspector2", 403), ("auditor1", 403), ("admin1", 403)):
        status, body = await live_server.request("POST", path, username)
        assert (status, body["error"]) == (expected, "forbidden"), (username, body)
    status, body = await live_server.request("GET", path, "inspector2")
    assert (status, body["error"]) == (403, "forbidden")
    status, body = await live_server.request(
        "GET", "/api/snapshots/" + "0" * 32 + ".png", "auditor1"
    )
    assert (status, body["error"]) == (404, "not_found")
    status, body = await live_server.request("GET", "/api/snapshots/nothex.png", "auditor1")
    assert (status, body["error"]) == (404, "not_found")
    status, body = await live_server.request(
        "POST", "/api/inspections/" + "f" * 32 + "/snapshots", "inspector1"
    )
    assert (status, body["error"]) == (404, "not_found")


async def test_bad_annotations_are_refused_precisely_and_nothing_is_chained(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection()
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    async with publishing(live_server, invite, 320, 240):
        status, snap = await live_server.request(
            "POST", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
        )
    assert status == 201, snap
    before = await kinds(live_server, case_id)
    path = f"/api/snapshots/{snap['snapshot_id']}/annotations"
    bad: list[tuple[Any, str]] = [
        ({"shapes": []}, "1 to 200"),
        ({"shapes": [ARROW] * 201}, "1 to 200"),
        ({"shapes": [{**ARROW, "x2": 321}]}, "'x2' must be within 0..320"),
        ({"shapes": [{**ARROW, "y1": -1}]}, "'y1' must be within 0..240"),
        ({"shapes": [{**ARROW, "x1": 1.5}]}, "'x1' must be an integer"),
        ({"shapes": [{**ARROW, "color": "red"}]}, "#rrggbb"),
        ({"shapes": [{**ARROW, "type": "circle"}]}, "'type' must be one of"),
        ({"shapes": [{**TEXT, "x2": 100, "y2": 100, "text": " "}]}, "non-empty 'text'"),
        ({"shapes": [{**ARROW, "width": 3}]}, "unknown field 'width'"),
        ({"shapes": [ARROW], "extra": 1}, "unknown field 'extra'"),
    ]
    for body, reason in bad:
        status, answer = await live_server.request("POST", path, "inspector1", json=body)
        assert status == 400, (body, answer)
        assert answer["error"] == "bad_request"
        assert reason in answer["reason"], (reason, answer)
    status, answer = await live_server.request(
        "POST", path, "inspector2", json={"shapes": [{**ARROW, "x2": 100, "y2": 100}]}
    )
    assert (status, answer["error"]) == (403, "forbidden")
    denials = [e.body for e in await chain(live_server, case_id) if e.kind == "access_denied"]
    assert denials[-1] == {"by": "inspector2", "role": "inspector", "method": "POST", "path": path}
    after = await kinds(live_server, case_id)
    assert after[: len(before)] == before
    # Only what the applicant's leaving chains by itself meanwhile, never an annotation.
    assert set(after[len(before) :]) <= {"left", "participant_offline", "media_interrupted"}
    assert object_files(live_server, case_id, "/annotations/") == []

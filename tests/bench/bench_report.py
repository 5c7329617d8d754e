"""Report generation time for an inspection with 50 snapshots.

    .venv/bin/python tests/bench/bench_report.py [--snapshots 50] [--runs 3]

Starts a real Takan server (loopback, temporary data dir) and builds the inspection through the
real services: 50 snapshots of 1280x720 PNG (a gradient with sensor-like noise, about the size of
a camera frame) stored and chained as the snapshot endpoint does, 60 location fixes, two judged
challenges, every checklist item marked 符合 with its photos over REST, then the signed conclusion
over REST, which ends the inspection and starts the report in the background.

Prints: conclusion → report v1 served (first run in the process: WeasyPrint's import included),
then ``publish_report`` end to end --runs more times (gather + HTML + PDF + store + chain), and
one breakdown of its parts. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from recorder import layout
from server.clock import utc_iso
from server.live import site_checks
from server.live.geo import LocationFix
from server.reports import publish
from server.reports.gather import chain_facts, gather
from server.reports.html import render_html
from server.services import Services
from tests.conftest import LiveServer, running_server


def camera_like_png(rng: np.random.Generator, index: int) -> bytes:
    """1280x720: a colour gradient, a few shapes and noise, so PNG compresses like a photo."""
    y, x = np.mgrid[0:720, 0:1280]
    image = np.stack([(x * 255 // 1280), (y * 255 // 720), ((x + y + index * 40) % 256)], axis=2)
    image = image.astype(np.int16) + rng.normal(0, 6, image.shape).astype(np.int16)
    frame = np.clip(image, 0, 255).astype(np.uint8)
    cv2.rectangle(frame, (200 + index * 7, 150), (600, 500), (30, 30, 200), 8)
    cv2.putText(
        frame, f"#{index:03d}", (60, 100), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (255, 255, 255), 5
    )
    ok, png = cv2.imencode(".png", frame)
    assert ok
    return bytes(png)


async def add_snapshot(
    services: Services, case_id: str, inspection_id: str, user_id: int, png: bytes, pts: int
) -> None:
    """What server.snapshots.take stores for one snapshot, minus the live video."""
    snapshot_id = secrets.token_hex(16)
    key = layout.snapshot_key(case_id, inspection_id, snapshot_id)
    taken_at = utc_iso(services.clock.now())
    entry = await services.archive.store_object(
        case_id,
        key,
        png,
        "snapshot",
        {
            "snapshot_id": snapshot_id,
            "inspection_id": inspection_id,
            "width": 1280,
            "height": 720,
            "media_pts": pts,
            "time_base": "1/90000",
            "taken_at": taken_at,
            "lat": "30.2741000",
            "lon": "120.1551000",
            "by": "inspector1",
        },
    )
    await services.store.evidence.add_snapshot(
        {
            "snapshot_id": snapshot_id,
            "inspection_id": inspection_id,
            "object_key": key,
            "sha256": entry.body["sha256"],
            "size": entry.body["size"],
            "width": 1280,
            "height": 720,
            "taken_at": taken_at,
            "media_pts": pts,
            "lat": "30.2741000",
            "lon": "120.1551000",
            "taken_by": user_id,
            "chain_seq": entry.seq,
        }
    )


async def build_inspection(server: LiveServer, snapshots: int) -> tuple[str, str]:
    services = server.services
    case = await server.new_case(case_type="building", site_lat=30.2741, site_lon=120.1551)
    case_id = case["case_id"]
    status, invite = await server.request("POST", f"/api/cases/{case_id}/inspections", "inspector1")
    assert status == 201, invite
    inspection_id = invite["inspection_id"]
    user = await services.store.users.by_name("inspector1")
    assert user is not None
    rng = np.random.default_rng(6)
    pngs = [await asyncio.to_thread(camera_like_png, rng, i) for i in range(snapshots)]
    mean_mb = statistics.mean(map(len, pngs)) / 1e6
    print(f"snapshots: {snapshots} x 1280x720 PNG, mean {mean_mb:.2f} MB")
    for i, png in enumerate(pngs):
        await add_snapshot(services, case_id, inspection_id, user.id, png, i * 90_000)
    now = services.clock.now()
    for i in range(60):
        fix = LocationFix(30.2741 + i * 1e-5, 120.1551, 6.0, now - 600 + i * 10)
        await site_checks.record_location(services, case_id, inspection_id, "applicant-1", fix)
    for kind, text in (("code", None), ("instruction", "请拍摄门牌号")):
        challenge = await site_checks.issue_challenge(
            services, case_id, inspection_id, kind, text, user.id, "inspector1"
        )
        await site_checks.mark_shown(services, case_id, inspection_id, challenge.challenge_id)
        await site_checks.judge(
            services, case_id, inspection_id, challenge.challenge_id, "passed", "清晰", "inspector1"
        )
    status, checklist = await server.request(
        "GET", f"/api/inspections/{inspection_id}/checklist", "inspector1"
    )
    assert status == 200, checklist
    status, listed = await server.request(
        "GET", f"/api/inspections/{inspection_id}/snapshots", "inspector1"
    )
    assert status == 200, listed
    ids = [s["snapshot_id"] for s in listed["snapshots"]]
    for n, item in enumerate(checklist["items"]):
        picked = [ids[(n + k) % len(ids)] for k in range(item["required_photos"])]
        status, body = await server.request(
            "POST",
            f"/api/inspections/{inspection_id}/checklist/{item['item_id']}",
            "inspector1",
            json={"verdict": "pass", "note": "已核对", "snapshot_ids": picked},
        )
        assert status == 200, body
    return case_id, inspection_id


async def main(snapshots: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="takan-bench-report-") as tmp:
        async with running_server(Path(tmp) / "data") as server:
            services = server.services
            case_id, inspection_id = await build_inspection(server, snapshots)
            started = time.perf_counter()
            status, body = await server.request(
                "POST",
                f"/api/inspections/{inspection_id}/conclusion",
                "inspector1",
                json={"outcome": "pass", "reason": "现场情况与申报一致"},
            )
            assert status == 201, body
            while await publish.latest_report(services, inspection_id) is None:
                await asyncio.sleep(0.05)
            first = time.perf_counter() - started
            print(f"conclusion → report v1 stored and chained: {first:.2f} s (cold: imports)")

            times = []
            for _ in range(runs):
                started = time.perf_counter()
                record = await publish.publish_report(services, inspection_id)
                times.append(time.perf_counter() - started)
            print(
                f"publish_report, {runs} runs: median {statistics.median(times):.2f} s,"
                f" min {min(times):.2f} s, max {max(times):.2f} s (version {record.version})"
            )

            inspection = await services.store.inspections.get(inspection_id)
            assert inspection is not None
            t0 = time.perf_counter()
            facts = await chain_facts(services, case_id, inspection_id)
            t1 = time.perf_counter()
            content = await gather(services, inspection, facts, 99, utc_iso(time.time()))
            t2 = time.perf_counter()
            document = render_html(content)
            t3 = time.perf_counter()
            pdf = await asyncio.to_thread(publish.render_pdf, document)
            t4 = time.perf_counter()
            print(
                f"breakdown: chain read {t1 - t0:.2f} s, gather (50 PNG read+hash+thumbnail)"
                f" {t2 - t1:.2f} s, HTML {t3 - t2:.3f} s, PDF {t4 - t3:.2f} s;"
                f" HTML {len(document.encode()) / 1e6:.2f} MB, PDF {len(pdf) / 1e6:.2f} MB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.snapshots, arguments.runs))

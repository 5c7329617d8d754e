"""Time from clicking "replay" to the first frame, for a long archive, in Chromium.

    .venv/bin/python tests/bench/bench_replay.py [--minutes 30] [--repeats 3]

1. Builds an inspection of ``--minutes`` of media through the real server and its real Archive:
   a 4 s VP8 640x480 30 fps clip and Opus 20 ms packets (pre-encoded once, tests/bench/_clip.py)
   are muxed by the recorder's own ``SegmentWriter`` into 4 s single-track WebM segments with
   continuing timestamps, for the three tracks, and stored with ``Archive.store_segment`` (spooled,
   hashed, chained, uploaded); ending the inspection signs its manifest. So the archive is what a
   live inspection of that length leaves behind, only written faster than real time.
2. An auditor signs in in Chromium, opens the case page and clicks "replay"; the replay page
   reports the milliseconds from that click to its first video frame (requestVideoFrameCallback):
   the page announces the replay, fetches the chain and the signed manifest, checks the chain,
   the Ed25519 signature and the Merkle root, then fetches, hashes and appends the first segments.
   Also printed: the time until every segment has been hashed in the background, and the time
   from a seek into the last minutes to the next frame there.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

import av
from playwright.async_api import Page, async_playwright

from recorder.recording import FinishedSegment
from recorder.segments import SegmentWriter
from tests.bench._clip import EncodedClip, encode_clip
from tests.conftest import LiveServer, running_server

SEGMENT_S = 4
VIDEO_TB = Fraction(1, 90_000)
AUDIO_TB = Fraction(1, 48_000)
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 600_000


def _packet(data: bytes, pts: int, time_base: Fraction, keyframe: bool) -> av.Packet[Any]:
    packet = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.time_base = time_base
    packet.is_keyframe = keyframe
    return packet


def write_segment(path: Path, track: str, seq: int, clip: EncodedClip) -> FinishedSegment:
    """Segment `seq` of `track`: the clip's 4 s, stamped where it falls in the recording."""
    if track == "applicant-video":
        frames = clip.video[: SEGMENT_S * clip.fps]
        step = 90_000 // clip.fps
        base = seq * len(frames) * step
        packets = [
            _packet(data, base + i * step, VIDEO_TB, key or i == 0)
            for i, (data, key) in enumerate(frames)
        ]
        kind = "video"
    else:
        frames_a = clip.audio[: SEGMENT_S * 50]
        base = seq * len(frames_a) * 960
        packets = [_packet(d, base + i * 960, AUDIO_TB, True) for i, d in enumerate(frames_a)]
        kind = "audio"
    writer = SegmentWriter(path, kind, packets[0])
    for packet in packets[1:]:
        writer.write(packet)
    closed = writer.close()
    return FinishedSegment(track, seq, closed, 0.0, 0.0)


async def build_archive(server: LiveServer, minutes: float, work: Path) -> tuple[str, str, int]:
    """Case id, inspection id and the number of segments of a recorded-length inspection."""
    clip = await asyncio.to_thread(encode_clip, SEGMENT_S, keyframe_interval_s=SEGMENT_S)
    invite = await server.new_inspection("inspector1")
    case_id, inspection_id = invite["case_id"], invite["inspection_id"]
    archive = server.services.archive
    await archive.open_case(case_id)
    count = int(minutes * 60 / SEGMENT_S)
    start = time.time() - count * SEGMENT_S - 60
    stored = 0
    for seq in range(count):
        for track in ("applicant-video", "applicant-audio", "inspector-audio"):
            path = archive.recording_dir / f"bench-{track}-{seq}.webm"
            made = await asyncio.to_thread(write_segment, path, track, seq, clip)
            wall = start + seq * SEGMENT_S
            finished = FinishedSegment(track, seq, made.closed, wall, wall + SEGMENT_S)
            await archive.store_segment(case_id, inspection_id, finished)
            stored += 1
        if seq % 50 == 0:
            print(f"  stored {stored} segments", flush=True)
    status, body = await server.request(
        "POST", f"/api/inspections/{inspection_id}/end", "inspector1"
    )
    assert status == 200, body
    await archive.drain()
    return case_id, inspection_id, stored


async def replay_once(page: Page, server: LiveServer, case_id: str) -> dict[str, float]:
    await page.goto(f"{server.base_url}/cases/{case_id}")
    link = page.locator(".replay-link")
    await link.wait_for(timeout=TIMEOUT_MS)
    clicked = time.monotonic()
    await link.click()
    replay = page.locator("#replay[data-first-frame]")
    await replay.wait_for(state="attached", timeout=TIMEOUT_MS)
    seen = time.monotonic() - clicked
    first_frame = float(await replay.get_attribute("data-first-frame") or "nan")
    await page.locator('#replay[data-verify="verified"]').wait_for(
        state="attached", timeout=TIMEOUT_MS
    )
    all_hashed = time.monotonic() - clicked
    seek_ms: float = await page.evaluate(
        """() => new Promise((resolve) => {
            const video = document.getElementById('replay-video');
            const segs = document.querySelectorAll('.tl-seg[data-track="applicant-video"]');
            const last = Number(segs[segs.length - 1].dataset.end);
            const to = Math.max(0, last - 90);
            const began = performance.now();
            video.requestVideoFrameCallback(function check(now, meta) {
                if (meta.mediaTime >= to) resolve(performance.now() - began);
                else video.requestVideoFrameCallback(check);
            });
            document.querySelector('.tl').dispatchEvent(new MouseEvent('click', {
                clientX: (() => {
                    const box = document.querySelector('.tl-bar').getBoundingClientRect();
                    return box.left + box.width * (to + 0.5) / last;
                })(),
                bubbles: true,
            }));
        })"""
    )
    return {
        "first_frame_ms": first_frame,
        "seen_by_driver_ms": seen * 1000,
        "all_hashed_s": all_hashed,
        "seek_ms": seek_ms,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="takan-bench-replay-") as tmp:
        async with running_server(Path(tmp) / "data") as server:
            began = time.monotonic()
            print(f"building a {args.minutes:g}-minute archive…", flush=True)
            case_id, _, segments = await build_archive(server, args.minutes, Path(tmp))
            size = sum(
                p.stat().st_size
                for p in (server.data_dir / "archive" / "cases" / case_id).rglob("*.webm")
            )
            print(
                f"archive: {segments} segments, {size / 1e6:.0f} MB, built in "
                f"{time.monotonic() - began:.0f} s"
            )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                try:
                    context = await browser.new_context(viewport={"width": 1280, "height": 900})
                    page = await context.new_page()
                    await page.goto(f"{server.base_url}/login")
                    await page.fill("#username", "auditor1")
                    await page.fill("#password", server.passwords["auditor1"])
                    await page.click("#login-submit")
                    await page.wait_for_url("**/audit", timeout=TIMEOUT_MS)
                    runs = []
                    for run in range(args.repeats):
                        figures = await replay_once(page, server, case_id)
                        runs.append(figures)
                        print(
                            f"run {run + 1}: click → first frame {figures['first_frame_ms']:.0f} ms"
                            f" (driver saw it after {figures['seen_by_driver_ms']:.0f} ms);"
                            f" all {segments} segments hashed after"
                            f" {figures['all_hashed_s']:.1f} s; seek near the end → frame"
                            f" {figures['seek_ms']:.0f} ms"
                        )
                finally:
                    await browser.close()
            first = [r["first_frame_ms"] for r in runs]
            print(
                f"click → first frame, {args.minutes:g}-minute archive: median "
                f"{statistics.median(first):.0f} ms, min {min(first):.0f}, max {max(first):.0f}"
            )


if __name__ == "__main__":
    asyncio.run(main())

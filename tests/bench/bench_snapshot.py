"""Snapshot latency while recording, and report generation time for a many-snapshot inspection.

    .venv/bin/python tests/bench/bench_snapshot.py [--snapshots 50] [--width 640 --height 480]

A Takan server runs in this process (as in the integration tests) with a real aiortc publisher
(``python -m client publish --source testsrc``, a subprocess) streaming 640x480; the recorder
runs from the publisher's consent on. The bench then clicks "snapshot" --snapshots times, one
after the other with 0.3 s between: each figure is POST sent → answer received, i.e. the next
keyframe requested and received, decoded, PNG encoded, spooled with fsync, chained. Then it
concludes the inspection and times conclusion → the report's PDF available
(server/reports/publish.py: gathering, HTML, PDF with the embedded CJK font, stored and
chained). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from tests.conftest import running_server
from tests.integration.evidence_helpers import mark_open_items, publishing


def percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))
    return ordered[index]


async def bench(snapshots: int, width: int, height: int, pause_s: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as workdir:
        async with running_server(Path(workdir) / "data") as server:
            invite = await server.new_inspection()
            inspection_id = invite["inspection_id"]
            path = f"/api/inspections/{inspection_id}/snapshots"
            latencies: list[float] = []
            sizes: list[int] = []
            async with publishing(server, invite, width, height):
                await asyncio.sleep(2.0)  # past the first segments: the recorder is running
                live = server.services.live.get(inspection_id)
                recording = live is not None and live.recording is not None
                for _ in range(snapshots):
                    started = time.perf_counter()
                    status, body = await server.request("POST", path, "inspector1")
                    latencies.append(time.perf_counter() - started)
                    if status != 201:
                        print(f"snapshot failed: {status} {body}")
                        return
                    sizes.append(int(body["size"]))
                    await asyncio.sleep(pause_s)
                frame = f"{body['width']}x{body['height']}"
            ms = [1000 * value for value in latencies]
            print(
                f"snapshots while recording ({'yes' if recording else 'NO'}): {len(ms)} of {frame}"
            )
            print(
                f"  click -> stored and chained: p50 {percentile(ms, 50):.0f} ms,"
                f" p95 {percentile(ms, 95):.0f} ms, min {min(ms):.0f} ms, max {max(ms):.0f} ms"
            )
            print(f"  PNG size: mean {statistics.mean(sizes) / 1000:.0f} kB")

            await mark_open_items(server, inspection_id)  # a pass needs the checklist marked
            started = time.perf_counter()
            status, signed = await server.request(
                "POST",
                f"/api/inspections/{inspection_id}/conclusion",
                "inspector1",
                json={"outcome": "pass", "reason": "基准测试"},
            )
            concluded = time.perf_counter() - started
            if status != 201:
                print(f"conclusion failed: {status} {signed}")
                return
            headers = {"Authorization": f"Bearer {await server.token('inspector1')}"}
            while True:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(server.base_url + signed["report_pdf_url"], headers=headers) as got,
                ):
                    status = got.status
                    pdf = await got.read()
                if status == 200:
                    break
                if status not in (202, 409) or time.perf_counter() - started > 600:
                    print(f"report failed: {status}")
                    return
                await asyncio.sleep(0.1)
            total = time.perf_counter() - started
            print(f"conclusion (signed, inspection ended, manifest signed): {concluded:.2f} s")
            print(
                f"report with {len(ms)} snapshots: PDF ({len(pdf) / 1e6:.1f} MB) available"
                f" {total:.1f} s after the click"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=50)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between clicks")
    args = parser.parse_args()
    asyncio.run(bench(args.snapshots, args.width, args.height, args.pause))


if __name__ == "__main__":
    main()

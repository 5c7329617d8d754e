"""Server CPU per inspection, against a decode/re-encode baseline, and capacity.

    .venv/bin/python tests/bench/bench_live.py [--quick] [--only single|capacity] [--profile N]
        [--capacity-server takan|takan-norec] [--seconds S] [--max-n N] [--keep]

1. One inspection (640x480 VP8 at 30 fps + Opus from the applicant, relayed to one inspector,
   inspector audio back): the server's CPU in % of one core, Takan vs a plain aiortc server
   using MediaRelay (decode + re-encode), measured in the same run, and their ratio; Takan
   both as shipped (recording) and with recording switched off by the bench's launcher.
2. Capacity: N concurrent inspections (5, 10, 20, 25, then +5 until the frame rate drops; 5 and
   10 with --quick), each one publisher and one inspector, from load clients that send a
   pre-encoded clip and count packets without decoding (_loadclient.py, in two processes).

Server CPU comes from /proc/<pid>/stat of the server process only. Prints figures; asserts
nothing about timing. --profile N samples the Takan server with py-spy (if installed; a
diagnosis tool, not a dependency) during the capacity point N and prints where its CPU goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

import aiohttp

from tests.bench._clip import EncodedClip, encode_clip
from tests.bench._harness import (
    CORES,
    TAKAN_VARIANTS,
    VIDEO_CLOCK_RATE,
    CpuMeter,
    CpuUse,
    code_state,
    finish_workdir,
    fmt,
    percentile,
    print_heading,
    print_table,
    recorded_bytes,
    running,
    start_baseline,
    start_takan,
    wait_for_quiet,
)
from tests.bench._load import (
    TARGET_FPS,
    TARGET_LOSS_PERCENT,
    LoadWindow,
    load_clients,
    measure_load,
    takan_items,
)
from tests.bench._profile import ServerProfile

TARGET_CPU_PER_INSPECTION = 3.0
TARGET_INSPECTIONS = 20
FIRST_CAPACITY_POINTS = (5, 10, 20, 25)
CAPACITY_STEP = 5


@dataclass(frozen=True, slots=True)
class Point:
    server: str
    inspections: int
    ready: int
    setup_s: float
    errors: list[str]
    idle_cpu: float | None
    window: LoadWindow | None
    recorded_mb: float

    @property
    def server_cpu(self) -> float:
        return self.window.cpu.processes["server"] if self.window else 0.0

    @property
    def fps_median(self) -> float:
        return self.window.fps_median() if self.window else 0.0

    @property
    def fps_min(self) -> float:
        return self.window.fps_min() if self.window else 0.0

    def meets_capacity_target(self) -> bool:
        return (
            self.window is not None
            and self.ready == self.inspections
            and self.window.meets_target()
        )


async def run_point(
    kind: str,
    inspections: int,
    workdir: Path,
    clip_path: Path,
    fps: int,
    seconds: float,
    warmup_s: float,
    idle_s: float = 0.0,
    profile: ServerProfile | None = None,
) -> Point:
    """Start a server, connect ``inspections`` pairs, measure one window, tear everything down."""
    point_dir = workdir / f"{kind}-{inspections}"
    point_dir.mkdir(parents=True)
    await wait_for_quiet()
    if kind == "baseline":
        server_process = await start_baseline(point_dir)
    else:
        server_process = await start_takan(point_dir, TAKAN_VARIANTS[kind])
    async with running(server_process) as server, aiohttp.ClientSession() as http:
        spec: dict[str, Any] = {
            "mode": "baseline" if kind == "baseline" else "takan",
            "base_url": server.base_url,
            "clip": str(clip_path),
            "concurrency": 4,
            "first_frame_timeout_s": 15.0,
        }
        if kind == "baseline":
            items = [
                {"key": f"i{n:03d}", "inspection_id": f"room-{n}", "invite_token": ""}
                for n in range(inspections)
            ]
        else:
            items = await takan_items(http, server.base_url, range(inspections))
        meter = CpuMeter({"server": server.pid})
        idle = None
        if idle_s:
            before = meter.sample()
            await asyncio.sleep(idle_s)
            idle = CpuUse.between(before, meter.sample()).processes["server"]
        async with load_clients(spec, items, 2, point_dir, meter) as load:
            window = None
            if load.ready:
                await asyncio.sleep(warmup_s)
                async with profile.recording(server, seconds) if profile else _nothing():
                    window = await measure_load(
                        load.clients, meter, seconds, VIDEO_CLOCK_RATE // fps
                    )
            recorded = await asyncio.to_thread(recorded_bytes, server.data_dir)
    ready, setup_s, errors = load.ready, load.setup_s, load.errors
    return Point(kind, inspections, ready, setup_s, errors, idle, window, recorded / 1e6)


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


def _window_row(point: Point) -> list[str]:
    window = point.window
    if window is None:
        head = ["n/a", point.server, str(point.inspections)]
        tail = [fmt(point.recorded_mb), "n/a"]
        return [*head, f"{point.ready}/{point.inspections}", *["n/a"] * 12, *tail]
    others = window.cpu.machine - point.server_cpu - window.cpu.total("client")
    return [
        fmt(others, 0),
        point.server,
        str(point.inspections),
        f"{point.ready}/{point.inspections}",
        fmt(point.setup_s),
        fmt(point.fps_min),
        fmt(point.fps_median),
        fmt(window.loss_percent(), 2),
        fmt(window.gap_loss_percent(), 2),
        fmt(window.audio_loss_percent(), 2),
        "/".join(fmt(percentile(window.latencies_ms, p), 0) for p in (50, 95)),
        fmt(max(f.max_gap_ms for f in window.inspections), 0),
        fmt(point.server_cpu),
        fmt(point.server_cpu / point.inspections, 2),
        fmt(window.cpu.total("client")),
        fmt(window.cpu.machine),
        fmt(point.recorded_mb),
        _drops(window),
    ]


def _drops(window: LoadWindow) -> str:
    drops = window.cpu.udp_drops
    clients = sum(v for name, v in drops.items() if name.startswith("client"))
    return f"{drops.get('server', 0)}/{clients}"


HEADERS = [
    "others %core",
    "server",
    "N",
    "ready",
    "setup s",
    "fps min",
    "fps med",
    "loss %",
    "gap loss %",
    "audio loss %",
    "relay ms p50/p95",
    "max gap ms",
    "server %core",
    "per insp.",
    "clients %core",
    f"machine %core (of {CORES * 100})",
    "rec MB",
    "UDP drops srv/cli",
]


def _explain_columns() -> None:
    print(
        "columns: fps = video frames received per inspection per second; loss = frames sent vs\n"
        "received in the window; gap loss = missing RTP time stamps at the inspector; relay ms =\n"
        "publisher's send() to inspector's receive (same process, both load-client side); max gap\n"
        "= longest pause between two received frames; %core = CPU time / wall time x 100;\n"
        "others = the rest of this machine's CPU use during the window (other jobs on a shared\n"
        "machine skew every figure; the script waits up to 20 s for a quiet machine first);\n"
        "rec MB = what the server wrote to its data dir (archive, spool) by the window's end;\n"
        "UDP drops = datagrams the kernel dropped because the server's / load clients' sockets\n"
        "were not read in time (receive buffer full), during the window."
    )


def recorder_note(points: list[Point]) -> str:
    written = [p.recorded_mb for p in points if p.server == "takan"]
    if not written:
        return "recorder: off (takan-norec)"
    if any(written):
        return (
            f"recorder: ON in this server build (it wrote {max(written):.1f} MB during a point): "
            "Takan figures include recording; the baseline does not record"
        )
    return "recorder: not in this server build (nothing written): relay-only figures"


async def single(workdir: Path, clip_path: Path, clip: EncodedClip, seconds: float) -> None:
    print_heading("1. one inspection: server CPU, Takan vs plain aiortc MediaRelay")
    print(f"media: {clip.describe()}; inspector audio back to the applicant")
    points = []
    for kind in ("takan", "takan-norec", "baseline"):
        points.append(await run_point(kind, 1, workdir, clip_path, clip.fps, seconds, 3.0, 3.0))
    print_table(
        ["idle %core", *HEADERS],
        [[fmt(p.idle_cpu, 2), *_window_row(p)] for p in points],
    )
    _explain_columns()
    print(recorder_note(points))
    print("takan-norec = the same server with recording switched off (_takan_variant.py)")
    takan, relay_only, baseline = points
    for point in (takan, relay_only):
        if point.server_cpu > 0:
            print(
                f"server CPU for one inspection: {point.server} {point.server_cpu:.2f}% of a "
                f"core, baseline (decode + re-encode, no recording) {baseline.server_cpu:.2f}%:"
                f" baseline/{point.server} = {baseline.server_cpu / point.server_cpu:.1f}x"
            )
    for point in (takan, relay_only):
        verdict = "MET" if 0 < point.server_cpu <= TARGET_CPU_PER_INSPECTION else "MISSED"
        print(
            f"target <= {TARGET_CPU_PER_INSPECTION:g}% of a core per inspection, "
            f"{point.server}: {verdict} ({point.server_cpu:.2f}%)"
        )
    for point in points:
        for error in point.errors:
            print(f"  {point.server}: {error}")


async def capacity(
    workdir: Path,
    clip_path: Path,
    clip: EncodedClip,
    seconds: float,
    max_inspections: int,
    profile: ServerProfile | None,
    profile_at: int,
    variant: str,
) -> None:
    print_heading(f"2. capacity: N concurrent inspections on one Takan server ({variant})")
    print(f"media per inspection: {clip.describe()}; inspector audio back")
    print("load clients: 2 processes, pre-encoded packets out, packets counted (no decoding)")
    sizes = [n for n in FIRST_CAPACITY_POINTS if n <= max_inspections]
    points: list[Point] = []
    while sizes:
        n = sizes.pop(0)
        point = await run_point(
            variant, n, workdir, clip_path, clip.fps, seconds, 3.0,
            profile=profile if n == profile_at else None,
        )  # fmt: skip
        points.append(point)
        print_table(HEADERS, [_window_row(point)])
        for error in point.errors[:3]:
            print(f"  error: {error}")
        dropped = (
            point.window is None
            or point.ready < n
            or point.fps_median < TARGET_FPS
            or point.window.loss_percent() >= TARGET_LOSS_PERCENT
        )
        if dropped:
            print(f"fps or delivery dropped at N={n}: stopping")
            break
        if not sizes and n + CAPACITY_STEP <= max_inspections:
            sizes.append(n + CAPACITY_STEP)
    print("\nall points:")
    print_table(HEADERS, [_window_row(p) for p in points])
    _explain_columns()
    print(recorder_note(points))
    good = [p.inspections for p in points if p.meets_capacity_target()]
    best = max(good, default=0)
    verdict = "MET" if best >= TARGET_INSPECTIONS else "MISSED"
    print(
        f"target >= {TARGET_INSPECTIONS} inspections with every inspection >= {TARGET_FPS:g} fps "
        f"and < {TARGET_LOSS_PERCENT:g}% frame loss: {verdict} (largest N meeting it: {best})"
    )
    profiled = [p for p in points if p.inspections == profile_at]
    if profile is not None and profiled:
        profile.report(profiled[0].server_cpu)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter windows, capacity to 10")
    parser.add_argument("--only", choices=("single", "capacity"))
    parser.add_argument("--seconds", type=float, help="measured window per point")
    parser.add_argument("--max-n", type=int, default=50, help="largest capacity point")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="py-spy the Takan server at the point N"
    )
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="with --profile: sample only the thread holding the GIL (Python CPU, no waits)",
    )
    parser.add_argument(
        "--capacity-server",
        choices=tuple(TAKAN_VARIANTS),
        default="takan",
        help="takan-norec: recording switched off, to see the relay alone",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    arguments = parser.parse_args()
    seconds = arguments.seconds or (8.0 if arguments.quick else 12.0)
    max_n = 10 if arguments.quick else arguments.max_n
    workdir = Path(tempfile.mkdtemp(prefix="takan-bench-"))
    started = time.monotonic()
    try:
        encode_started = time.monotonic()
        clip = encode_clip()
        clip_path = workdir / "clip.bin"
        clip.save(clip_path)
        print(f"pre-encoded {clip.describe()} in {time.monotonic() - encode_started:.1f} s")
        print(code_state())
        if arguments.only in (None, "single"):
            await single(workdir, clip_path, clip, seconds + 3)
        if arguments.only in (None, "capacity"):
            profile = None
            if arguments.profile:
                profile = ServerProfile.create(workdir, arguments.profile_gil)
            await capacity(
                workdir, clip_path, clip, seconds, max_n, profile, arguments.profile,
                arguments.capacity_server,
            )  # fmt: skip
    finally:
        finish_workdir(workdir, started, arguments.keep)


if __name__ == "__main__":
    asyncio.run(main())

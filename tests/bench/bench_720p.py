"""How soon the inspector receives 1280x720, on loopback.

    .venv/bin/python tests/bench/bench_720p.py [--quick] [--no-chromium] [--seconds S]
        [--remb-floor-bps BPS ...] [--repeat N]

A. Python client: ``python -m client publish --source testsrc --width 1280 --height 720``,
   watched by ``python -m client watch --json`` (which decodes): join → first frame, the sizes
   of all decoded frames, frame rate, glass-to-glass latency. aiortc encodes at the source's
   size from the first frame, so when every frame is 1280x720 the first frame is the first 720p.
B. Chromium (if /usr/bin/chromium exists; never downloaded): the applicant page /join/<token>
   with a fake camera (the page asks for 1280x720 at 30 fps); the inspector is an aiortc peer
   in this process that does not decode but reads the size from each VP8 keyframe header. Time
   counted from the click on the consent button. With --remb-floor-bps, the Chromium run is
   repeated against a server whose REMB floor (Settings.remb_floor_bps, not on takan's command
   line) is set to that value: a what-if, through _takan_variant.py.

Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from server.live.media import passthrough
from tests.bench._harness import (
    ClientRun,
    InspectionLinks,
    TakanApi,
    code_state,
    fmt,
    print_heading,
    print_table,
    running,
    start_takan,
    wait_for_quiet,
)
from tests.bench._loadclient import Peer, TakanLink, _drain, _prefer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
]
HD = (1280, 720)

# Benchmark instrumentation only: keep every RTCPeerConnection the page makes reachable, so that
# the browser's own view (capture size, encoder's limitation reason) can be read at the end.
KEEP_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__benchPcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__benchPcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
  Object.assign(window.RTCPeerConnection, Original);
})();
"""

BROWSER_VIEW = """
async () => {
  const video = document.getElementById('local-video');
  const track = video && video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
  const pc = window.__benchPcs[window.__benchPcs.length - 1];
  const view = { capture: track ? track.getSettings() : null, outbound: null };
  if (!pc) return view;
  const answer = pc.remoteDescription?.sdp ?? '';
  const videoSection = answer.split('m=video')[1]?.split('m=audio')[0] ?? '';
  const lines = videoSection.split(/\\r?\\n/);
  view.answerVideoFormats = lines.filter((l) => /^a=(rtpmap|fmtp):/.test(l));
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      view.outbound = {
        frameWidth: s.frameWidth, frameHeight: s.frameHeight, framesPerSecond: s.framesPerSecond,
        targetBitrate: s.targetBitrate, qualityLimitationReason: s.qualityLimitationReason,
        qualityLimitationDurations: s.qualityLimitationDurations,
        qualityLimitationResolutionChanges: s.qualityLimitationResolutionChanges,
        encoderImplementation: s.encoderImplementation,
      };
    }
    if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
      view.availableOutgoingBitrate = s.availableOutgoingBitrate;
    }
  });
  return view;
}
"""


# ---------------------------------------------------------------- A: the Python client


async def python_client(api: TakanApi, seconds: float) -> None:
    print_heading(
        "4a. 720p from the Python client: publish --source testsrc --width 1280 --height 720"
    )
    await wait_for_quiet(max_wait_s=20.0)
    links = await api.new_inspection()
    watcher = await ClientRun.start(
        "watch", links.inspector_url, "--token", api.token, "--json", "--seconds", "120", "-v"
    )
    try:
        if not await watcher.wait_for_log("peer connection state=connected", 30.0):
            raise RuntimeError("the watcher never connected:\n" + watcher.tail())
        await asyncio.sleep(0.5)
        publisher = await ClientRun.start(
            "publish", links.applicant_url, "--source", "testsrc", "--width", "1280",
            "--height", "720", "--json", "--seconds", f"{seconds:g}",
        )  # fmt: skip
        published = await publisher.finish(seconds + 30) or {}
    finally:
        watched = await watcher.finish(15.0, interrupt=True)
    await api.end(links.inspection_id)
    if watched is None or watcher.clock is None or publisher.clock is None:
        print("no report from the watcher:\n" + watcher.tail())
        return
    first = watched.get("first_frame_ms")
    join_ms = None if first is None else (watcher.clock + first / 1000 - publisher.clock) * 1000
    sizes: dict[str, int] = watched.get("resolutions") or {}
    all_hd = bool(sizes) and set(sizes) == {"1280x720"}
    print_table(
        ["join -> 1st frame ms", "sizes decoded", "fps", "frames", "sent", "g2g p50/p95 ms"],
        [
            [
                fmt(join_ms, 0),
                ", ".join(f"{size}: {count}" for size, count in sizes.items()) or "none",
                fmt(watched.get("fps")),
                str(watched.get("frames")),
                str(published.get("video_frames_sent", "n/a")),
                f"{fmt(watched.get('latency_ms_p50'), 0)}/{fmt(watched.get('latency_ms_p95'), 0)}",
            ]
        ],
    )
    if all_hd:
        print(f"join -> first 1280x720 frame at the inspector: {fmt(join_ms, 0)} ms (every frame)")
    else:
        print("not every decoded frame was 1280x720: the time of the first 720p frame is unknown")


# ---------------------------------------------------------------- B: Chromium


def vp8_size(keyframe: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 9.1), scaling bits dropped."""
    if len(keyframe) < 10 or keyframe[0] & 0x01 or keyframe[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(keyframe[6:8], "little") & 0x3FFF
    height = int.from_bytes(keyframe[8:10], "little") & 0x3FFF
    return width, height


@dataclass
class SizeProbe:
    """Counts encoded frames per second and notes each keyframe's size, without decoding."""

    start: float = 0.0
    size: tuple[int, int] | None = None
    first_frame_at: float | None = None
    first_hd_at: float | None = None
    changes: list[tuple[float, tuple[int, int]]] = field(default_factory=list)
    per_second: dict[int, list[int]] = field(default_factory=dict)  # second -> [frames, bytes]

    def on_packet(self, packet: Any) -> None:
        now = time.monotonic() - self.start
        data = bytes(packet)
        if packet.is_keyframe:
            size = vp8_size(data)
            if size is not None and size != self.size:
                self.size = size
                self.changes.append((now, size))
                if size >= HD and self.first_hd_at is None:
                    self.first_hd_at = now
        if self.first_frame_at is None:
            self.first_frame_at = now
        second = self.per_second.setdefault(int(now), [0, 0])
        second[0] += 1
        second[1] += len(data)


@contextlib.asynccontextmanager
async def probe_inspector(
    http: aiohttp.ClientSession, base_url: str, token: str, links: InspectionLinks
) -> AsyncIterator[SizeProbe]:
    passthrough.install()
    probe = SizeProbe()
    ws_url = base_url.replace("http://", "ws://") + "/ws"
    link = TakanLink(http, ws_url, {"token": token, "inspection_id": links.inspection_id})
    await link.open(consent=False)
    peer = Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])), link)
    _prefer(peer.pc.addTransceiver("video", direction="recvonly"), "video")
    _prefer(peer.pc.addTransceiver("audio", direction="recvonly"), "audio")

    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video":
            peer.readers.append(asyncio.create_task(_drain(track, probe.on_packet)))
        else:
            peer.readers.append(asyncio.create_task(_drain(track, lambda _: None)))

    try:
        await peer.negotiate(on_track)
        yield probe
    finally:
        await peer.close()


async def chromium(
    api: TakanApi, http: aiohttp.ClientSession, seconds: float, variant: str
) -> None:
    print_heading(
        f"4b. 720p from Chromium ({CHROMIUM}, fake camera, the page asks for 1280x720 at 30 fps),"
        f" {variant}"
    )
    from playwright.async_api import async_playwright

    await wait_for_quiet(max_wait_s=20.0)
    links = await api.new_inspection()
    async with (
        probe_inspector(http, api.base_url, api.token, links) as probe,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.add_init_script(KEEP_PEER_CONNECTIONS)
            await page.goto(links.applicant_url + "?lang=en")
            accept = page.locator("#consent-accept")
            await accept.wait_for(state="visible", timeout=15_000)
            await page.wait_for_function(
                "!document.getElementById('consent-accept').disabled", timeout=15_000
            )
            probe.start = time.monotonic()
            await accept.click()
            await asyncio.sleep(seconds)
            view = await page.evaluate(BROWSER_VIEW)
        finally:
            await browser.close()
    await api.end(links.inspection_id)
    _print_probe(probe, seconds)
    print(f"the browser's own view at the end: {view}")


def _print_probe(probe: SizeProbe, seconds: float) -> None:
    rows = []
    for second in range(int(seconds)):
        frames, size = probe.per_second.get(second, [0, 0])
        shown = [s for t, s in probe.changes if t < second + 1]
        rows.append(
            [
                f"{second}-{second + 1}",
                str(frames),
                f"{size * 8 / 1000:.0f}",
                "x".join(map(str, shown[-1])) if shown else "-",
            ]
        )
    print_table(["s after click", "frames", "kbps", "size"], rows)
    changes = ", ".join(f"{'x'.join(map(str, s))} at {t * 1000:.0f} ms" for t, s in probe.changes)
    print(f"sizes (from keyframes): {changes or 'none'}")
    steady = [v[0] for k, v in probe.per_second.items() if 2 <= k < int(seconds)]
    hd = fmt(_ms(probe.first_hd_at), 0, " ms") if probe.first_hd_at else f"not in {seconds:g} s"
    print(
        f"click -> first frame at the inspector: {fmt(_ms(probe.first_frame_at), 0)} ms; "
        f"click -> first 1280x720: {hd}; "
        f"frames per second after 2 s: median {fmt(statistics.median(steady) if steady else None)}"
    )


def chromium_installed() -> bool:
    return Path(CHROMIUM).exists()


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--no-chromium", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--repeat", type=int, default=1, help="Chromium runs per variant")
    parser.add_argument(
        "--remb-floor-bps",
        type=int,
        action="append",
        default=[],
        help="what-if: repeat the Chromium run with the server's REMB floor at this value",
    )
    arguments = parser.parse_args()
    seconds = arguments.seconds or (6.0 if arguments.quick else 12.0)
    workdir = Path(tempfile.mkdtemp(prefix="takan-bench-720p-"))
    started = time.monotonic()
    print(code_state())
    try:
        async with running(await start_takan(workdir)) as server, aiohttp.ClientSession() as http:
            api = TakanApi(http, server.base_url)
            await api.login()
            await python_client(api, seconds)
            if arguments.no_chromium:
                pass
            elif not chromium_installed():
                print(f"\n4b. skipped: {CHROMIUM} is not installed")
            else:
                for run in range(arguments.repeat):
                    await chromium(api, http, seconds, f"default settings, run {run + 1}")
        for floor in [] if arguments.no_chromium else arguments.remb_floor_bps:
            overrides = {"remb_floor_bps": floor}
            variant_dir = workdir / f"floor-{floor}"
            async with (
                running(await start_takan(variant_dir, overrides)) as server,
                aiohttp.ClientSession() as http,
            ):
                api = TakanApi(http, server.base_url)
                await api.login()
                for run in range(arguments.repeat):
                    variant = f"what-if: server REMB floor {floor} bit/s, run {run + 1}"
                    await chromium(api, http, seconds, variant)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())

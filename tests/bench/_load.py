"""The bench side of the load clients (_loadclient.py): create the inspections they join, start
them, snapshot their counters, and turn two snapshots into per-inspection figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp

from tests.bench._harness import (
    BENCH_DIR,
    PYTHON,
    REPO,
    CpuMeter,
    CpuUse,
    TakanApi,
    child_environment,
)

# The capacity criterion (issue 11): every inspection at >= 25 fps, < 1 % of frames lost.
TARGET_FPS: Final = 25.0
TARGET_LOSS_PERCENT: Final = 1.0


class LoadClientProcess:
    """One ``_loadclient.py`` subprocess: JSON lines out, commands (``snap``, ``stop``) in."""

    def __init__(self, process: asyncio.subprocess.Process, log: TextIO) -> None:
        self.process = process
        self._log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, spec: dict[str, Any], log_path: Path) -> LoadClientProcess:
        log = log_path.open("w")
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            str(BENCH_DIR / "_loadclient.py"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=REPO,
            env=child_environment(),
        )
        client = cls(process, log)
        await client._send(json.dumps(spec))
        return client

    async def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def _expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"load client {self.pid} exited before '{event}'")
                message = json.loads(line)
                if isinstance(message, dict) and message.get("event") == event:
                    return message

    async def ready(self, timeout_s: float) -> dict[str, Any]:
        return await self._expect("ready", timeout_s)

    async def snap(self) -> dict[str, Any]:
        await self._send("snap")
        return await self._expect("snap", 30.0)

    async def stop(self, timeout_s: float = 30.0) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await self._send("stop")
                await self._expect("done", timeout_s)
            try:
                await asyncio.wait_for(self.process.wait(), 5.0)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._log.close()


@dataclass(frozen=True, slots=True)
class InspectionFigures:
    """One inspection between two snapshots."""

    seconds: float
    fps: float
    sent: int
    received: int
    expected_by_pts: int | None
    audio_sent: int
    audio_received: int
    keyframe_requests: int
    max_gap_ms: float

    @property
    def sent_fps(self) -> float:
        """The publisher's own frame rate: below the clip's, the load client fell behind."""
        return self.sent / self.seconds

    @property
    def loss_percent(self) -> float:
        return 100 * (self.sent - self.received) / self.sent if self.sent else 100.0

    @property
    def gap_loss_percent(self) -> float | None:
        if not self.expected_by_pts:
            return None
        return 100 * (self.expected_by_pts - self.received) / self.expected_by_pts


def inspection_figures(
    first: dict[str, Any], second: dict[str, Any], seconds: float, video_period: int
) -> InspectionFigures:
    received = second["recv_video"] - first["recv_video"]
    expected = None
    if first["last_pts"] is not None and second["last_pts"] is not None:
        expected = (second["last_pts"] - first["last_pts"]) // video_period
    return InspectionFigures(
        seconds=seconds,
        fps=received / seconds,
        sent=second["sent_video"] - first["sent_video"],
        received=received,
        expected_by_pts=expected,
        audio_sent=second["sent_audio"] - first["sent_audio"],
        audio_received=second["recv_audio"] - first["recv_audio"],
        keyframe_requests=second["keyframe_requests"] - first["keyframe_requests"],
        max_gap_ms=float(second["max_gap_ms"]),
    )


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """What N inspections did during one measured window."""

    inspections: list[InspectionFigures]
    latencies_ms: list[float]
    cpu: CpuUse

    def fps_values(self) -> list[float]:
        return sorted(f.fps for f in self.inspections)

    def fps_median(self) -> float:
        return statistics.median(self.fps_values())

    def fps_min(self) -> float:
        return min(self.fps_values())

    def sent_fps_min(self) -> float:
        return min(f.sent_fps for f in self.inspections)

    def meets_target(self) -> bool:
        """Every inspection at >= TARGET_FPS and < TARGET_LOSS_PERCENT lost overall."""
        return self.fps_min() >= TARGET_FPS and self.loss_percent() < TARGET_LOSS_PERCENT

    def loss_percent(self) -> float:
        sent = sum(f.sent for f in self.inspections)
        received = sum(f.received for f in self.inspections)
        return 100 * (sent - received) / sent if sent else 100.0

    def gap_loss_percent(self) -> float | None:
        expected = [f.expected_by_pts for f in self.inspections]
        if not self.inspections or any(e is None for e in expected):
            return None
        total = sum(e or 0 for e in expected)
        received = sum(f.received for f in self.inspections)
        return 100 * (total - received) / total if total else None

    def audio_loss_percent(self) -> float:
        sent = sum(f.audio_sent for f in self.inspections)
        received = sum(f.audio_received for f in self.inspections)
        return 100 * (sent - received) / sent if sent else 100.0


async def measure_load(
    clients: Sequence[LoadClientProcess], meter: CpuMeter, seconds: float, video_period: int
) -> LoadWindow:
    """Snapshot every load client and the CPU, wait ``seconds``, snapshot again."""
    cpu_first = meter.sample()
    firsts = await asyncio.gather(*(c.snap() for c in clients))
    await asyncio.sleep(seconds)
    cpu_second = meter.sample()
    lasts = await asyncio.gather(*(c.snap() for c in clients))
    figures: list[InspectionFigures] = []
    latencies: list[float] = []
    for first, second in zip(firsts, lasts, strict=True):
        wall = second["t"] - first["t"]
        for key, counters in second["inspections"].items():
            figures.append(
                inspection_figures(first["inspections"][key], counters, wall, video_period)
            )
        latencies += second["latencies_ms"]
    return LoadWindow(figures, latencies, CpuUse.between(cpu_first, cpu_second))


# ---------------------------------------------------------------- setting up a load


async def takan_items(
    http: aiohttp.ClientSession, base_url: str, numbers: Iterable[int]
) -> list[dict[str, str]]:
    """Create one case and inspection per number through this server's REST API, as the bench
    inspector: the load clients' ``inspections`` items (keyed ``i<number>``), each naming its
    server and token, so that one load client can join inspections on several servers."""
    api = TakanApi(http, base_url)
    token = await api.login()
    items = []
    for number in numbers:
        links = await api.new_inspection()
        items.append(
            {
                "key": f"i{number:03d}",
                "inspection_id": links.inspection_id,
                "invite_token": links.invite_token,
                "base_url": base_url,
                "token": token,
            }
        )
    return items


@dataclass(frozen=True, slots=True)
class LoadRun:
    """Load clients whose inspections are connected (those that could be)."""

    clients: list[LoadClientProcess]
    ready: int
    errors: list[str]
    setup_s: float


@contextlib.asynccontextmanager
async def load_clients(
    spec: dict[str, Any],
    items: Sequence[dict[str, str]],
    processes: int,
    log_dir: Path,
    meter: CpuMeter,
) -> AsyncIterator[LoadRun]:
    """Spread ``items`` round-robin over up to ``processes`` load clients, wait until each has
    connected its own, add them to ``meter`` as ``client0``.., and stop them all on exit."""
    groups = [list(items[i::processes]) for i in range(min(processes, len(items)))]
    clients: list[LoadClientProcess] = []
    try:
        for number, group in enumerate(groups):
            clients.append(
                await LoadClientProcess.start(
                    {**spec, "inspections": group}, log_dir / f"loadclient-{number}.log"
                )
            )
        readies = await asyncio.gather(*(c.ready(60 + 3 * len(items)) for c in clients))
        for number, client in enumerate(clients):
            meter.pids[f"client{number}"] = client.pid
        yield LoadRun(
            clients,
            sum(r["ready"] for r in readies),
            [e for r in readies for e in r["errors"]],
            max(r["setup_s"] for r in readies),
        )
    finally:
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)

"""Shared pieces of the benchmark scripts: servers as subprocesses, CPU meters, REST, clips.

Nothing here asserts on timing: the scripts print what they measure and compare figures taken in
the same run. Every process started here is stopped here, by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp
import av
import numpy as np

REPO: Final = Path(__file__).resolve().parents[2]
BENCH_DIR: Final = Path(__file__).resolve().parent
PYTHON: Final = str(REPO / ".venv" / "bin" / "python")
TAKAN: Final = str(REPO / ".venv" / "bin" / "takan")
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
CORES: Final = os.cpu_count() or 1

BENCH_USER: Final = "bench-inspector"
BENCH_PASSWORD: Final = "bench-password-0"  # a throwaway data dir's user

VIDEO_CLOCK_RATE: Final = 90_000
AUDIO_CLOCK_RATE: Final = 48_000
AUDIO_FRAME_SAMPLES: Final = 960  # 20 ms


# ---------------------------------------------------------------- CPU


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user/nice
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    processes: dict[str, float]
    machine_busy: float
    machine_total: float


@dataclass(slots=True)
class CpuMeter:
    """Samples the CPU time of named processes and of the machine."""

    pids: dict[str, int] = field(default_factory=dict)

    def sample(self) -> CpuSample:
        busy, total = machine_cpu_seconds()
        processes = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                processes[name] = process_cpu_seconds(pid)
        return CpuSample(time.monotonic(), processes, busy, total)


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU use between two samples, in % of one core (so a 2-core machine tops out at 200)."""

    seconds: float
    processes: dict[str, float]
    machine: float

    @classmethod
    def between(cls, first: CpuSample, second: CpuSample) -> CpuUse:
        wall = second.wall - first.wall
        processes = {
            name: 100 * (second.processes[name] - first.processes[name]) / wall
            for name in first.processes
            if name in second.processes
        }
        machine_total = second.machine_total - first.machine_total
        machine = 100 * CORES * (second.machine_busy - first.machine_busy) / machine_total
        return cls(wall, processes, machine)

    def total(self, prefix: str) -> float:
        return sum(v for name, v in self.processes.items() if name.startswith(prefix))


async def machine_load(seconds: float) -> float:
    """The whole machine's CPU use over ``seconds``, in % of one core."""
    meter = CpuMeter()
    first = meter.sample()
    await asyncio.sleep(seconds)
    return CpuUse.between(first, meter.sample()).machine


async def wait_for_quiet(limit: float = 30.0, max_wait_s: float = 45.0) -> float:
    """Wait (up to ``max_wait_s``) until other work on this machine stays under ``limit`` % of
    a core for 2 s; returns the last figure. Other jobs on a shared machine skew everything."""
    deadline = time.monotonic() + max_wait_s
    load = await machine_load(2.0)
    while load > limit and time.monotonic() < deadline:
        load = await machine_load(2.0)
    return load


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def child_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


@dataclass
class ServerProcess:
    """A server subprocess (Takan or the baseline) with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    _log: TextIO
    data_dir: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_healthy(self, path: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(self.base_url + path) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy after {timeout_s:g} s:\n{self.log_tail()}")

    async def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._log.close()


def add_takan_user(data_dir: Path, name: str, password: str) -> None:
    subprocess.run(
        [TAKAN, "user", "add", name, "--role", "inspector", "--data", str(data_dir)],
        input=f"{password}\n".encode(),
        check=True,
        capture_output=True,
        env=child_environment(),
    )


def _spawn(name: str, argv: Sequence[str], log_path: Path, base_url: str) -> ServerProcess:
    log = log_path.open("w")
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env=child_environment(),
    )
    return ServerProcess(name, process, base_url, log_path, log)


async def start_takan(workdir: Path, overrides: dict[str, Any] | None = None) -> ServerProcess:
    """``takan serve`` on a free loopback port with a fresh data dir and one inspector;
    ``overrides`` sets Settings fields the CLI does not expose (_takan_variant.py)."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    add_takan_user(data_dir, BENCH_USER, BENCH_PASSWORD)
    port = free_port()
    takan = [TAKAN]
    if overrides:
        takan = [PYTHON, str(BENCH_DIR / "_takan_variant.py"), json.dumps(overrides)]
    argv = [*takan, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data_dir)]
    server = _spawn("takan", argv, workdir / "takan.log", f"http://127.0.0.1:{port}")
    server.data_dir = data_dir
    await server.wait_healthy("/api/health")
    return server


async def start_baseline(workdir: Path) -> ServerProcess:
    """The plain aiortc MediaRelay server (decode and re-encode) of _baseline_server.py."""
    port = free_port()
    argv = [PYTHON, str(BENCH_DIR / "_baseline_server.py"), "--port", str(port)]
    server = _spawn("baseline", argv, workdir / "baseline.log", f"http://127.0.0.1:{port}")
    await server.wait_healthy("/health")
    return server


@contextlib.asynccontextmanager
async def running(server: ServerProcess) -> AsyncIterator[ServerProcess]:
    try:
        yield server
    finally:
        await server.stop()


_NOT_RECORDINGS = ("takan.sqlite3", "token-secret.key", "signing.key")


def recorded_bytes(data_dir: Path | None) -> int:
    """Bytes in the data dir besides the database and keys: what a recorder wrote."""
    if data_dir is None or not data_dir.exists():
        return 0
    return sum(
        path.stat().st_size
        for path in data_dir.rglob("*")
        if path.is_file() and not path.name.startswith(_NOT_RECORDINGS)
    )


def code_state() -> str:
    """Which server code runs: HEAD, and whether server/ or recorder/ differ from it."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "server", "recorder"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    dirty = f", plus uncommitted changes in {len(changed)} files" if changed else ""
    return f"server code: working tree at {head or 'unknown'}{dirty} (server/, recorder/)"


# ---------------------------------------------------------------- REST


@dataclass(frozen=True, slots=True)
class InspectionLinks:
    inspection_id: str
    applicant_url: str
    inspector_url: str

    @property
    def invite_token(self) -> str:
        return self.applicant_url.rstrip("/").rsplit("/", 1)[1]


class TakanApi:
    """The REST calls the benchmarks need, as the bench inspector."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.token = ""
        self._cases = 0

    async def login(self) -> str:
        body = {"username": BENCH_USER, "password": BENCH_PASSWORD}
        async with self.http.post(f"{self.base_url}/api/login", json=body) as response:
            answer = await response.json()
            if response.status != 200:
                raise RuntimeError(f"login failed: {response.status} {answer}")
        self.token = str(answer["token"])
        return self.token

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.post(
            self.base_url + path, json=body or {}, headers=headers
        ) as response:
            answer = await response.json()
            if response.status not in (200, 201):
                raise RuntimeError(f"POST {path} failed: {response.status} {answer}")
        if not isinstance(answer, dict):
            raise RuntimeError(f"POST {path}: not a JSON object")
        return answer

    async def new_inspection(self) -> InspectionLinks:
        self._cases += 1
        case_id = f"BENCH-{os.getpid()}-{self._cases:04d}"
        await self._post(
            "/api/cases", {"case_id": case_id, "title": "benchmark", "address": "loopback"}
        )
        created = await self._post(f"/api/cases/{case_id}/inspections")
        return InspectionLinks(
            str(created["inspection_id"]),
            str(created["applicant_url"]),
            str(created["inspector_url"]),
        )

    async def end(self, inspection_id: str) -> None:
        with contextlib.suppress(RuntimeError):
            await self._post(f"/api/inspections/{inspection_id}/end")


# ---------------------------------------------------------------- pre-encoded media

_RECORD = struct.Struct(">BI")
VIDEO_DELTA, VIDEO_KEY, AUDIO = 0, 1, 2


@dataclass(frozen=True, slots=True)
class EncodedClip:
    """One loop of pre-encoded media: VP8 frames (data, keyframe) and 20 ms Opus packets."""

    video: list[tuple[bytes, bool]]
    audio: list[bytes]
    fps: int
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return len(self.video) / self.fps

    def video_kbps(self) -> float:
        return sum(len(data) for data, _ in self.video) * 8 / self.seconds / 1000

    def audio_kbps(self) -> float:
        return sum(len(data) for data in self.audio) * 8 / (len(self.audio) * 0.02) / 1000

    def describe(self) -> str:
        keyframes = sum(1 for _, key in self.video if key)
        return (
            f"{self.width}x{self.height} VP8 {self.fps} fps {self.video_kbps():.0f} kbps, "
            f"{keyframes} keyframes in {self.seconds:g} s; Opus 20 ms {self.audio_kbps():.0f} kbps"
        )

    def save(self, path: Path) -> None:
        with path.open("wb") as out:
            out.write(json.dumps([self.fps, self.width, self.height]).encode() + b"\n")
            for data, key in self.video:
                out.write(_RECORD.pack(VIDEO_KEY if key else VIDEO_DELTA, len(data)) + data)
            for data in self.audio:
                out.write(_RECORD.pack(AUDIO, len(data)) + data)

    @classmethod
    def load(cls, path: Path) -> EncodedClip:
        raw = path.read_bytes()
        header_end = raw.index(b"\n")
        fps, width, height = json.loads(raw[:header_end])
        video: list[tuple[bytes, bool]] = []
        audio: list[bytes] = []
        pos = header_end + 1
        while pos < len(raw):
            kind, length = _RECORD.unpack_from(raw, pos)
            pos += _RECORD.size
            data = raw[pos : pos + length]
            pos += length
            if kind == AUDIO:
                audio.append(data)
            else:
                video.append((data, kind == VIDEO_KEY))
        return cls(video, audio, int(fps), int(width), int(height))


def encode_clip(
    seconds: int = 10,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    video_bps: int = 1_500_000,
    keyframe_interval_s: int = 2,
) -> EncodedClip:
    """Encode ``seconds`` of lavfi testsrc (with noise, so it costs a camera's bitrate) as VP8
    with the settings aiortc's own encoder uses, and a tone as Opus."""
    frames = seconds * fps
    source = av.open(
        f"testsrc=size={width}x{height}:rate={fps},noise=alls=10:allf=t+u", format="lavfi"
    )
    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    encoder.bit_rate = video_bps
    encoder.gop_size = keyframe_interval_s * fps
    encoder.qmin, encoder.qmax = 2, 56
    encoder.options = {
        "bufsize": str(video_bps),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(video_bps),
        "maxrate": str(video_bps),
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    video: list[tuple[bytes, bool]] = []
    try:
        for index, frame in enumerate(source.decode(video=0)):
            if index >= frames:
                break
            picture = frame.reformat(format="yuv420p")
            # lavfi marks every frame as I: left so, libvpx would make each one a keyframe.
            picture.pict_type = av.video.frame.PictureType.NONE
            picture.pts, picture.time_base = index, Fraction(1, fps)
            video += [(bytes(p), bool(p.is_keyframe)) for p in encoder.encode(picture)]
        video += [(bytes(p), bool(p.is_keyframe)) for p in encoder.encode(None)]
    finally:
        source.close()
    return EncodedClip(video[:frames], _encode_tone(seconds), fps, width, height)


def _encode_tone(seconds: int) -> list[bytes]:
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = AUDIO_CLOCK_RATE
    encoder.format = "s16"
    encoder.layout = "mono"
    encoder.time_base = Fraction(1, AUDIO_CLOCK_RATE)
    encoder.bit_rate = 32_000
    packets: list[bytes] = []
    count = seconds * AUDIO_CLOCK_RATE // AUDIO_FRAME_SAMPLES
    for index in range(count):
        first = index * AUDIO_FRAME_SAMPLES
        t = np.arange(first, first + AUDIO_FRAME_SAMPLES, dtype=np.float64) / AUDIO_CLOCK_RATE
        samples = (np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = AUDIO_CLOCK_RATE
        frame.pts, frame.time_base = first, Fraction(1, AUDIO_CLOCK_RATE)
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]
    return packets[:count]


# ---------------------------------------------------------------- figures


def percentile(values: Sequence[float], percent: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), percent))


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    table = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for number, row in enumerate(table):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    sys.stdout.flush()


def print_heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


# ---------------------------------------------------------------- load clients


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

    fps: float
    sent: int
    received: int
    expected_by_pts: int | None
    audio_sent: int
    audio_received: int
    keyframe_requests: int
    max_gap_ms: float

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


# ---------------------------------------------------------------- python -m client


class ClientRun:
    """``python -m client ...`` as a subprocess (through _clocked_client.py), its stderr read
    as it comes so that log lines can be waited for."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.clock: float | None = None
        self.stderr: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read_stderr())

    @classmethod
    async def start(cls, *arguments: str) -> ClientRun:
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            str(BENCH_DIR / "_clocked_client.py"),
            *arguments,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
            env=child_environment(),
        )
        return cls(process)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            if text.startswith("CLOCK ") and self.clock is None:
                self.clock = float(text.split()[1])
            else:
                self.stderr.append(text)
            self._changed.set()

    async def wait_for_log(self, text: str, timeout_s: float) -> bool:
        """Wait until a stderr line contains ``text``; False on timeout or exit."""
        async with asyncio.timeout(timeout_s):
            while not any(text in line for line in self.stderr):
                if self._reader.done():
                    return False
                self._changed.clear()
                await self._changed.wait()
            return True
        return False

    async def wait_for_clock(self, timeout_s: float) -> float:
        async with asyncio.timeout(timeout_s):
            while self.clock is None:
                if self._reader.done():
                    raise RuntimeError("client exited before starting:\n" + self.tail())
                self._changed.clear()
                await self._changed.wait()
        return self.clock

    def tail(self, lines: int = 10) -> str:
        return "\n".join(self.stderr[-lines:])

    async def finish(self, timeout_s: float, interrupt: bool = False) -> dict[str, Any] | None:
        """Wait for the exit (after SIGINT if ``interrupt``: the client then reports) and return
        its ``--json`` report, or None."""
        if interrupt and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
        assert self.process.stdout is not None
        try:
            stdout = await asyncio.wait_for(self.process.stdout.read(), timeout_s)
            await asyncio.wait_for(self.process.wait(), 5.0)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            return None
        finally:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reader, 5.0)
        with contextlib.suppress(ValueError, IndexError):
            report = json.loads(stdout.decode().strip().splitlines()[-1])
            if isinstance(report, dict):
                return report
        return None

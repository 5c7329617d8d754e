"""Shared pieces of the benchmark scripts: servers as subprocesses, CPU meters, REST, clients.

Pre-encoded media is in _clip.py, the bench side of the load clients in _load.py.

Nothing here asserts on timing: the scripts print what they measure and compare figures taken in
the same run. Every process started here is stopped here, by its own pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp
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


def _stat_cpu_seconds(stat_path: str) -> float:
    text = Path(stat_path).read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    return _stat_cpu_seconds(f"/proc/{pid}/stat")


def main_thread_cpu_seconds(pid: int) -> float:
    """utime + stime of a process's main thread only: a Python process's event loop runs there,
    so this nearing 100 % of a core means the process itself is saturated (the GIL)."""
    return _stat_cpu_seconds(f"/proc/{pid}/task/{pid}/stat")


def main_thread_wait_seconds(pid: int) -> float:
    """How long a process's main thread was runnable but waited for a CPU (the run queue), from
    /proc/<pid>/task/<pid>/schedstat: much of it, and what this machine lacks is cores."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user/nice
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def udp_drops(pid: int) -> int:
    """Datagrams the kernel dropped on this process's UDP sockets (receive buffer full)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    drops = 0
    for table in ("udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) >= 13 and fields[9] in inodes:
                    drops += int(fields[-1])
    return drops


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    processes: dict[str, float]
    machine_busy: float
    machine_total: float
    udp_drops: dict[str, int] = field(default_factory=dict)
    main_threads: dict[str, float] = field(default_factory=dict)
    main_thread_waits: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class CpuMeter:
    """Samples the CPU time of named processes and of the machine."""

    pids: dict[str, int] = field(default_factory=dict)

    def sample(self) -> CpuSample:
        busy, total = machine_cpu_seconds()
        processes = {}
        drops = {}
        main_threads = {}
        waits = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                processes[name] = process_cpu_seconds(pid)
                main_threads[name] = main_thread_cpu_seconds(pid)
                waits[name] = main_thread_wait_seconds(pid)
                drops[name] = udp_drops(pid)
        return CpuSample(time.monotonic(), processes, busy, total, drops, main_threads, waits)


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU use between two samples, in % of one core (so a 2-core machine tops out at 200)."""

    seconds: float
    processes: dict[str, float]
    machine: float
    udp_drops: dict[str, int]
    main_threads: dict[str, float] = field(default_factory=dict)
    main_thread_waits: dict[str, float] = field(default_factory=dict)  # % of the wall time

    @classmethod
    def between(cls, first: CpuSample, second: CpuSample) -> CpuUse:
        wall = second.wall - first.wall

        def rates(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
            return {
                name: 100 * (after[name] - before[name]) / wall for name in before if name in after
            }

        processes = rates(first.processes, second.processes)
        machine_total = second.machine_total - first.machine_total
        machine = 100 * CORES * (second.machine_busy - first.machine_busy) / machine_total
        drops = {
            name: second.udp_drops[name] - first.udp_drops[name]
            for name in first.udp_drops
            if name in second.udp_drops
        }
        main_threads = rates(first.main_threads, second.main_threads)
        waits = rates(first.main_thread_waits, second.main_thread_waits)
        return cls(wall, processes, machine, drops, main_threads, waits)

    def total(self, prefix: str) -> float:
        return sum(v for name, v in self.processes.items() if name.startswith(prefix))

    def named(self, prefix: str) -> list[float]:
        """The CPU of each process whose name starts with ``prefix``, in the meter's order."""
        return [v for name, v in self.processes.items() if name.startswith(prefix)]

    def busiest_main_thread(self, prefix: str) -> float:
        return max(
            (v for name, v in self.main_threads.items() if name.startswith(prefix)), default=0.0
        )

    def longest_main_thread_wait(self, prefix: str) -> float:
        return max(
            (v for name, v in self.main_thread_waits.items() if name.startswith(prefix)),
            default=0.0,
        )


async def machine_load(seconds: float) -> float:
    """The whole machine's CPU use over ``seconds``, in % of one core."""
    meter = CpuMeter()
    first = meter.sample()
    await asyncio.sleep(seconds)
    return CpuUse.between(first, meter.sample()).machine


async def wait_for_quiet(limit: float = 30.0, max_wait_s: float = 20.0) -> float:
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


def add_takan_user(
    data_dir: Path, name: str, password: str, store_args: Sequence[str] = ()
) -> None:
    """``takan user add`` (``--password-stdin``): to the data dir's database, or to the one
    ``store_args`` name (``("--database", URL)``)."""
    added = subprocess.run(
        [TAKAN, "user", "add", name, "--role", "inspector", "--data", str(data_dir), *store_args],
        input=f"{password}\n".encode(),
        check=False,
        capture_output=True,
        env=child_environment(),
    )
    if added.returncode != 0:
        said = (added.stderr or added.stdout).decode(errors="replace").strip()
        raise RuntimeError(f"takan user add {name} exited {added.returncode}: {said}")


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


# Takan as shipped, and Takan with recording switched off by the bench launcher (relay only).
TAKAN_VARIANTS: Final[dict[str, dict[str, Any] | None]] = {
    "takan": None,
    "takan-norec": {"_recording": False},
}


async def start_takan(
    workdir: Path,
    overrides: dict[str, Any] | None = None,
    *,
    name: str = "takan",
    store_args: Sequence[str] = (),
    add_user: bool = True,
) -> ServerProcess:
    """``takan serve`` on a free loopback port with a fresh data dir and one inspector;
    ``overrides`` sets Settings fields the CLI does not expose (_takan_variant.py).
    ``store_args`` go to both ``takan serve`` and ``takan user add`` (a shared database URL);
    ``add_user=False`` when that database already holds the bench inspector. The user is added
    once the server runs: ``takan serve`` makes the data dir's database."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    takan = [TAKAN]
    if overrides:
        takan = [PYTHON, str(BENCH_DIR / "_takan_variant.py"), json.dumps(overrides)]
    argv = [*takan, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data_dir)]
    argv += store_args
    server = _spawn(name, argv, workdir / f"{name}.log", f"http://127.0.0.1:{port}")
    server.data_dir = data_dir
    try:
        await server.wait_healthy("/api/health")
        if add_user:
            await asyncio.to_thread(
                add_takan_user, data_dir, BENCH_USER, BENCH_PASSWORD, store_args
            )
    except BaseException:
        await server.stop()
        raise
    return server


async def start_takan_processes(
    workdir: Path,
    count: int,
    overrides: dict[str, Any] | None = None,
    store_args: Sequence[str] = (),
    add_user: bool = True,
) -> list[ServerProcess]:
    """``count`` media processes, ``takan1``.., each ``takan serve`` on its own loopback port
    with its own data dir (``workdir/p1``..). Each has its own database unless ``store_args``
    names a shared one (``("--database", URL)``): then the bench inspector is added once, by
    the first, and ``add_user=False`` once that database has it (it outlives the processes).
    The caller stops them (``running_all``); if one fails to start, those started are stopped."""
    servers: list[ServerProcess] = []
    try:
        for number in range(1, count + 1):
            directory = workdir / f"p{number}"
            directory.mkdir(parents=True)
            servers.append(
                await start_takan(
                    directory,
                    overrides,
                    name=f"takan{number}",
                    store_args=store_args,
                    add_user=add_user and (not store_args or number == 1),
                )
            )
    except BaseException:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
        raise
    return servers


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


@contextlib.asynccontextmanager
async def running_all(servers: Sequence[ServerProcess]) -> AsyncIterator[Sequence[ServerProcess]]:
    try:
        yield servers
    finally:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)


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


_case_numbers = itertools.count(1)  # case ids stay unique across servers sharing a database


class TakanApi:
    """The REST calls the benchmarks need, as the bench inspector."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url
        self.token = ""

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
        case_id = f"BENCH-{os.getpid()}-{next(_case_numbers):04d}"
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


def finish_workdir(workdir: Path, started: float, keep: bool) -> None:
    """Say how long the bench took, and remove its work dir unless ``keep``."""
    print(f"\ntotal {time.monotonic() - started:.0f} s; work dir {workdir}", end="")
    if keep:
        print(" (kept)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        print(" (removed)")

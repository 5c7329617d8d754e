"""``takan verify`` throughput against plain hashlib SHA-256 over the same files, in one run.

    .venv/bin/python tests/bench/bench_verify.py [--quick] [--mb 400] [--profile]

Builds a case of about --mb MB (100 with --quick) through the real recorder API: an ``Archive``
over ``LocalStorage`` in DATA/archive stores 4 s segments of random bytes sized like the
recorder's (video ~1.2 Mbit/s: 600 kB; Opus: 40 kB), each chained, then a signed manifest and
checkpoint, exactly as a recording does. Then, twice in turn (the first round warms the page
cache, the second is reported):

- plain ``hashlib.file_digest(f, "sha256")`` over every segment file, one thread;
- the same with as many threads as ``takan verify`` reads with (``--workers``, default 4);
- ``recorder.verify.verify_case`` in this process (hashes, chain, signatures, Merkle root);
- ``.venv/bin/takan verify CASE --data DATA`` as a subprocess (interpreter start included).

MB/s are segment bytes over elapsed time. ``takan verify --help`` is timed too (the command's
start-up alone). --profile adds where verify_case's time goes (cProfile). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from recorder.archive import Archive
from recorder.recording import FinishedSegment
from recorder.segments import ClosedSegment
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import DEFAULT_WORKERS, verify_case

REPO = Path(__file__).resolve().parents[2]
TAKAN = REPO / ".venv" / "bin" / "takan"
VERIFY_PY = str(REPO / "recorder" / "verify.py")
CASE_ID = "bench-verify"
SEGMENT_S = 4
TRACKS = {  # track: (bytes per segment, RTP clock rate, frames per segment)
    "applicant-video": (600_000, 90_000, 30 * SEGMENT_S),
    "applicant-audio": (40_000, 48_000, 50 * SEGMENT_S),
}


@dataclass(frozen=True, slots=True)
class BuiltCase:
    storage: LocalStorage
    segment_paths: list[Path]
    segment_bytes: int
    object_bytes: int
    objects: int
    build_s: float


def write_segment(path: Path, size: int) -> tuple[str, int]:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest(), size


async def build_case(data_dir: Path, megabytes: int) -> BuiltCase:
    started = time.perf_counter()
    storage = LocalStorage(data_dir / "archive")  # where `takan verify --data DATA` looks
    # The key a server keeps in DATA, so that `takan export --data DATA` signs as the case's own.
    archive = Archive(storage, data_dir / "spool", Signer.load_or_create(data_dir / "signing.key"))
    await archive.start()
    inspection_id = uuid.uuid4().hex
    await archive.open_case(CASE_ID)
    await archive.append(
        CASE_ID, "recording_started", {"inspection_id": inspection_id, "tracks": sorted(TRACKS)}
    )
    spool = archive.recording_dir / CASE_ID / inspection_id
    spool.mkdir(parents=True)
    pair_bytes = sum(size for size, _, _ in TRACKS.values())
    wall = time.time() - SEGMENT_S * megabytes * 1_000_000 / pair_bytes
    seq = 0
    while seq * pair_bytes < megabytes * 1_000_000:
        for track, (size, clock_rate, frames) in TRACKS.items():
            path = spool / f"{track}-{seq:06d}.webm"
            sha256, size = await asyncio.to_thread(write_segment, path, size)
            first_pts = seq * SEGMENT_S * clock_rate
            closed = ClosedSegment(
                path=path,
                sha256=sha256,
                size=size,
                first_pts=first_pts,
                last_pts=first_pts + SEGMENT_S * clock_rate - clock_rate // (frames // SEGMENT_S),
                time_base=Fraction(1, clock_rate),
                frames=frames,
                keyframe_first=True,
            )
            finished = FinishedSegment(track, seq, closed, wall, wall + SEGMENT_S)
            await archive.store_segment(CASE_ID, inspection_id, finished)
        seq += 1
        wall += SEGMENT_S
    await archive.finish_inspection(CASE_ID, inspection_id)
    await archive.stop()  # checkpoints and waits until every object is stored
    keys = storage.list(f"cases/{CASE_ID}/")
    paths = [storage.root / key for key in keys if key.endswith(".webm")]
    return BuiltCase(
        storage,
        paths,
        sum(p.stat().st_size for p in paths),
        sum((storage.root / key).stat().st_size for key in keys),
        len(keys),
        time.perf_counter() - started,
    )


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def hash_all(paths: list[Path]) -> None:
    for path in paths:
        sha256_file(path)


def hash_all_threads(paths: list[Path], workers: int) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(sha256_file, paths))


def takan_cli(data_dir: Path, workers: int) -> str:
    command = [str(TAKAN), "verify", CASE_ID, "--data", str(data_dir), "--workers", str(workers)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"takan verify exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def takan_startup() -> None:
    subprocess.run([str(TAKAN), "verify", "--help"], capture_output=True, check=True)


def profile_verify(storage: LocalStorage, workers: int) -> None:
    """Where verify_case's time goes: cumulative time of its steps, and the top functions."""
    profile = cProfile.Profile()
    profile.runcall(verify_case, storage, CASE_ID, workers=workers)
    stats = pstats.Stats(profile)
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    table = stats.stats  # type: ignore[attr-defined]
    total = max(ct for _, _, _, ct, _ in table.values())
    print(f"profile of verify_case (cProfile, its thread only; {total:.3f} s with profiling):")
    steps = [(ct, fn) for (file, _, fn), (_, _, _, ct, _) in table.items() if file == VERIFY_PY]
    for ct, fn in sorted(steps, reverse=True)[:12]:
        print(f"  {ct:7.3f} s  {ct / total * 100:5.1f} %  recorder/verify.py {fn}")
    print("  top functions by own time:")
    for (file, line, fn), (_, calls, tt, _, _) in sorted(
        table.items(), key=lambda item: item[1][2], reverse=True
    )[:10]:
        where = f"{Path(file).name}:{line}" if line else file
        print(f"  {tt:7.3f} s  {tt / total * 100:5.1f} %  {calls:7d} calls  {fn} ({where})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100 MB instead of --mb")
    parser.add_argument("--mb", type=int, default=400, help="segment megabytes (default 400)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--profile", action="store_true", help="also profile verify_case")
    args = parser.parse_args()
    megabytes = 100 if args.quick else args.mb
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        case = asyncio.run(build_case(data_dir, megabytes))
        mb = case.segment_bytes / 1e6
        print(
            f"case {CASE_ID}: {len(case.segment_paths)} segments, {mb:.1f} MB of segments,"
            f" {case.objects} objects, {case.object_bytes / 1e6:.1f} MB in all"
            f" (built through Archive in {case.build_s:.1f} s)"
        )
        summary: list[str] = []
        works: dict[str, Callable[[], object]] = {
            "hashlib.file_digest, 1 thread": lambda: hash_all(case.segment_paths),
            f"hashlib.file_digest, {args.workers} threads": lambda: hash_all_threads(
                case.segment_paths, args.workers
            ),
            "verify_case (in process)": lambda: verify_case(
                case.storage, CASE_ID, workers=args.workers
            ),
            "takan verify (subprocess)": lambda: summary.append(takan_cli(data_dir, args.workers)),
            "takan verify --help (startup only)": takan_startup,
        }
        elapsed: dict[str, float] = {}
        for _ in range(2):  # the first round warms the page cache; the second is reported
            for name, work in works.items():
                start = time.perf_counter()
                work()
                elapsed[name] = time.perf_counter() - start
        print(f"second of two rounds, workers={args.workers}, page cache warm:")
        for name, seconds in elapsed.items():
            rate = "" if "startup" in name else f"{mb / seconds:8.1f} MB/s"
            print(f"  {name:38} {seconds:7.3f} s {rate}")
        print("takan verify said: " + summary[-1].splitlines()[0])
        plain = elapsed["hashlib.file_digest, 1 thread"]
        threaded = elapsed[f"hashlib.file_digest, {args.workers} threads"]
        for name in ("verify_case (in process)", "takan verify (subprocess)"):
            ratio = plain / elapsed[name]
            verdict = "met" if ratio >= 0.8 else "MISSED"
            print(
                f"{name} / hashlib 1 thread: {ratio * 100:.0f} % (target ≥ 80 %: {verdict});"
                f" / hashlib {args.workers} threads: {threaded / elapsed[name] * 100:.0f} %"
            )
        startup = elapsed["takan verify --help (startup only)"]
        net = elapsed["takan verify (subprocess)"] - startup
        print(
            f"takan verify (subprocess) less its {startup:.3f} s startup: {mb / net:.1f} MB/s,"
            f" {plain / net * 100:.0f} % of hashlib 1 thread"
        )
        if args.profile:
            profile_verify(case.storage, args.workers)


if __name__ == "__main__":
    main()

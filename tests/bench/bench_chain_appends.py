"""Chain appends per second across processes sharing one data directory (nodes, ``takan export``).

    .venv/bin/python tests/bench/bench_chain_appends.py [--appends 300] [--processes 1,2,4]

For each P: P processes (recorder.archive.Archive, each its own spool, the server's spool as
their shared ledger and case locks, as tests/integration/test_shared_chain.py runs them) append
--appends entries each, at once, first all to ONE case (the per-case lock is a queue), then
each to its own case. Prints appends/s of all processes together and the wall time, and checks
afterwards that each case verifies with every entry in it; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recorder.storage import LocalStorage
from recorder.verify import verify_case
from tests.integration.test_shared_chain import WRITER


async def run(data: Path, script: Path, writers: list[str], cases: list[str], count: int) -> float:
    """Seconds for every writer to append ``count`` entries to its case (``cases[i]``)."""
    started = time.monotonic()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            str(data),
            name,
            str(count),
            case,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name, case in zip(writers, cases, strict=True)
    ]
    results = await asyncio.gather(*(p.communicate() for p in processes))
    elapsed = time.monotonic() - started
    for process, (_, err) in zip(processes, results, strict=True):
        if process.returncode != 0:
            raise SystemExit(err.decode())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--appends", type=int, default=300, help="per process")
    parser.add_argument("--processes", default="1,2,4")
    args = parser.parse_args()
    print(f"{'processes':>9} {'cases':>6} {'appends':>8} {'seconds':>8} {'appends/s':>10}")
    for p in (int(x) for x in args.processes.split(",")):
        for shape in ("one", "own"):
            work = Path(tempfile.mkdtemp(prefix="takan-bench-appends-"))
            try:
                data = work / "data"
                (data / "spool").mkdir(parents=True)
                script = work / "writer.py"
                script.write_text(WRITER)
                writers = ["server", *(f"cli-{k}" for k in range(1, p))]
                cases = ["bench"] * p if shape == "one" else [f"bench-{k}" for k in range(p)]
                seconds = asyncio.run(run(data, script, writers, cases, args.appends))
                for case in sorted(set(cases)):
                    report = verify_case(LocalStorage(data / "archive"), case)
                    assert report.chain_entries >= args.appends * cases.count(case)
                total = p * args.appends
                label = "1" if shape == "one" else str(p)
                print(f"{p:>9} {label:>6} {total:>8} {seconds:8.2f} {total / seconds:10.0f}")
            finally:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Chain appends per second across processes (nodes, ``takan export``): sharing one data
directory (SQLite's deployments), or sequenced through PostgreSQL (nodes on machines of their own).

    .venv/bin/python tests/bench/bench_chain_appends.py [--appends 300] [--processes 1,2,4]
        [--database sqlite|postgresql]

For each P: P processes (recorder.archive.Archive, as tests/integration/test_shared_chain.py
runs them) append --appends entries each, at once, first all to ONE case, then each to its own
case. With ``sqlite`` they share the server's spool as their ledger and case locks (the per-case
lock is a queue); with ``postgresql`` each has a spool of its own and every append goes through
a throwaway, durable (fsync on) PostgreSQL started for the run, a fresh database per row. Prints
appends/s of all processes together and the wall time (each process's start-up, ~0.5 s,
included), and checks afterwards that each case verifies with every entry in it; asserts nothing
about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.cli.cluster.postgres import PostgresCluster
from server.store.store import open_store
from tests.integration.test_shared_chain import WRITER


async def run(
    data: Path, script: Path, writers: list[str], cases: list[str], count: int, database: str
) -> float:
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
            database,
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
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        databases = None
        if args.database == "postgresql":
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="takan-bench-")))
            root.chmod(0o755)  # PostgreSQL may run as its own user and must reach it
            databases = stack.enter_context(PostgresCluster.start(root / "pg", durable=True))
        bench(args.appends, [int(x) for x in args.processes.split(",")], databases)


def bench(appends: int, process_counts: list[int], databases: PostgresCluster | None) -> None:
    engine = "postgresql" if databases else "sqlite (one shared data directory)"
    print(f"chain appends through {engine}")
    print(f"{'processes':>9} {'cases':>6} {'appends':>8} {'seconds':>8} {'appends/s':>10}")
    for p in process_counts:
        for shape in ("one", "own") if p > 1 else ("one",):
            work = Path(tempfile.mkdtemp(prefix="takan-bench-appends-"))
            work.chmod(0o755)
            try:
                database = ""
                if databases is not None:
                    database = databases.create_database(f"appends_{p}_{shape}")
                    open_store(database, work).close()  # migrated
                data = work / "data"
                (data / "spool").mkdir(parents=True)
                script = work / "writer.py"
                script.write_text(WRITER)
                writers = ["server", *(f"cli-{k}" for k in range(1, p))]
                cases = ["bench"] * p if shape == "one" else [f"bench-{k}" for k in range(p)]
                seconds = asyncio.run(run(data, script, writers, cases, appends, database))
                for case in sorted(set(cases)):
                    report = verify_case(LocalStorage(data / "archive"), case)
                    assert report.chain_entries >= appends * cases.count(case)
                total = p * appends
                label = "1" if shape == "one" else str(p)
                print(f"{p:>9} {label:>6} {total:>8} {seconds:8.2f} {total / seconds:10.0f}")
            finally:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

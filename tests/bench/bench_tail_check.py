"""What it costs a process to account for a case's chain before its first append after a start.

    .venv/bin/python tests/bench/bench_tail_check.py [--entries 10000] [--runs 5]

Builds one case of --entries chain entries with the real ``Archive`` over ``LocalStorage`` (each
entry written and fsynced like a recording's, a checkpoint every 30 entries), then, --runs
times each, in turn:

- **baseline**: what loading a case cost before the check, the same reads the load makes: list
  the chain (store and spool), read and parse every entry (``Archive._read_entry``);
- **load with the check**: a new ``Archive`` over the same spool (so its head ledger) opening
  the case: the same reads, plus every hash and link recomputed, the ledger consulted and the
  last checkpoint's signature verified (``Archive.open_case``);
- **load without the ledger**: the same from another spool: only a checkpoint can vouch.

Prints medians and the ratio to the baseline; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recorder.archive import Archive
from recorder.signing import Signer
from recorder.storage import LocalStorage

CASE = "bench-tail"


async def build(storage: LocalStorage, spool: Path, signer: Signer, entries: int) -> None:
    archive = Archive(storage, spool, signer, checkpoint_interval_s=3600)
    await archive.start()
    try:
        for number in range(entries - 1):  # the signing key is the first entry
            await archive.append(CASE, "chat", {"n": number, "text": "测试 message"})
            if number % 30 == 29:
                await archive.checkpoint(CASE)
        await archive.checkpoint(CASE)
        await archive.drain()
    finally:
        await archive.stop()


def baseline(storage: LocalStorage, spool: Path, signer: Signer) -> int:
    archive = Archive(storage, spool, signer)
    return len([archive._read_entry(key) for key in archive._chain_keys(CASE)])


async def load(storage: LocalStorage, spool: Path, signer: Signer) -> tuple[float, str | None]:
    """Seconds to open the case (the ledger is read at the process start, before the timer)."""
    archive = Archive(storage, spool, signer)
    archive.ledger.open()
    start = time.perf_counter()
    await archive.open_case(CASE)
    elapsed = time.perf_counter() - start
    archive.ledger.close()
    return elapsed, archive.flag_of(CASE)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    signer = Signer.generate()
    with tempfile.TemporaryDirectory(prefix="takan-bench-tail-") as tmp:
        root = Path(tmp)
        storage = LocalStorage(root / "archive")
        started = time.perf_counter()
        await build(storage, root / "spool", signer, args.entries)
        print(f"built {args.entries} entries in {time.perf_counter() - started:.1f} s")
        rounds: dict[str, list[float]] = {"baseline": [], "ledger": [], "no ledger": []}
        for _ in range(args.runs):
            start = time.perf_counter()
            assert baseline(storage, root / "spool", signer) == args.entries
            rounds["baseline"].append(time.perf_counter() - start)
            elapsed, flag = await load(storage, root / "spool", signer)
            rounds["ledger"].append(elapsed)
            assert flag is None, flag
            elapsed, flag = await load(storage, root / f"other-spool-{_}", signer)
            rounds["no ledger"].append(elapsed)
            assert flag is None, flag
    base = statistics.median(rounds["baseline"])
    print(f"case of {args.entries} entries, median of {args.runs} runs:")
    for name, times in rounds.items():
        median = statistics.median(times)
        print(f"  {name:<10} {median * 1000:8.1f} ms   ({median / base:.2f}x baseline)")


if __name__ == "__main__":
    asyncio.run(main())

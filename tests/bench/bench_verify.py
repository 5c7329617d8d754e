"""``takan verify`` throughput against plain hashlib SHA-256, measured in the same run.

    .venv/bin/python tests/bench/bench_verify.py [--mb 200]

Builds a case holding one segment of --mb MB of random bytes in a temporary LocalStorage, then
prints the best of interleaved runs of hashlib.sha256 over the bytes already in memory, over
the file in 1 MiB reads, and a full verify_case of the case (object in the page cache).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recorder import layout
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from tests.unit.evidence_fixture import CaseBuilder

INSPECTION = "0" * 32


def best_interleaved(runs: int, *works: Callable[[], object]) -> list[float]:
    """Best time of each, running them in turn so that machine noise hits all alike."""
    best = [float("inf")] * len(works)
    for _ in range(runs):
        for i, work in enumerate(works):
            start = time.perf_counter()
            work()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = os.urandom(args.mb * 1_000_000)
    with tempfile.TemporaryDirectory() as scratch:
        storage = LocalStorage(Path(scratch))
        builder = CaseBuilder(storage, Signer.generate(), "bench")
        builder.append("created", {})
        record = builder.segment(INSPECTION, "applicant-video", 0, builder.now)
        key = layout.segment_key("bench", INSPECTION, "applicant-video", 0)
        # Replace the small stand-in with the big object before chaining its record.
        (Path(scratch) / key).chmod(0o644)
        (Path(scratch) / key).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        big = record.to_json() | {"sha256": digest, "size": len(data)}
        builder.append("segment", big)
        builder.checkpoint()
        verify_case(storage, "bench")  # warm the page cache

        plain, chunked, verify = best_interleaved(
            args.runs,
            lambda: hashlib.sha256(data).hexdigest(),
            lambda: hash_file(Path(scratch) / key),
            lambda: verify_case(storage, "bench"),
        )
    mb = len(data) / 1e6
    print(f"object size                        {mb:.0f} MB, best of {args.runs}")
    print(f"hashlib.sha256(bytes in memory)    {mb / plain:8.1f} MB/s  ({plain:.3f} s)")
    print(f"hashlib.sha256 over the file       {mb / chunked:8.1f} MB/s  ({chunked:.3f} s)")
    print(f"takan verify (LocalStorage)        {mb / verify:8.1f} MB/s  ({verify:.3f} s)")
    print(f"verify / in-memory hashlib         {plain / verify * 100:8.1f} %")


if __name__ == "__main__":
    main()

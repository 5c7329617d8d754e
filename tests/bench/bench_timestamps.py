"""What an RFC 3161 TSA costs the recording: segments and checkpoints with and without ``--tsa``.

    .venv/bin/python tests/bench/bench_timestamps.py [--seconds S] [--streams N]

Each run records ``--streams`` concurrent real-time streams (video + audio, one case each, 1 s
segments; the recording of tests/bench/bench_recorder.py) into an ``Archive`` on LocalStorage
that signs a checkpoint of every case each second (30 s in production), so that many
checkpoints are stamped while segments are stored. Runs, in one process and in this order:

- baseline: no timestamper;
- tsa up: a ``Timestamper`` with the local TSA of tests/tsa_server.py (``openssl ts -reply``
  behind aiohttp on loopback; P-256), replies checked against its root CA as the server does;
- tsa down: the same with the TSA stopped (connection refused, retried with backoff);

and again (``--rounds``), to show the run-to-run noise.

First, on an idle archive, 100 checkpoints one after another, each waiting for its token. Then
per run: segment closed → stored (``Archive.stats.latencies``), the time ``Archive.checkpoint``
takes (the checkpoint path: lock, sign, write, fsync, announce), and, with a TSA, checkpoint
durable → its token chained (``Timestamper.stats.latencies``). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `tests`

from recorder.archive import Archive
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.timestamper import Timestamper
from recorder.timestamps import load_tsa_trust
from recorder.tsa_http import HttpTsaClient
from tests.bench._media import EncodedMedia, encode_media
from tests.bench.bench_recorder import LATENCY_SEGMENT_S, percentile, run_streams
from tests.tsa_server import LocalTsa, make_tsa_certs

CHECKPOINT_EVERY_S = 1.0


class TimedArchive(Archive):
    """An Archive that notes how long each ``checkpoint`` call takes."""

    checkpoint_times: list[float]

    async def checkpoint(self, case_id: str) -> None:
        started = time.perf_counter()
        await super().checkpoint(case_id)
        self.checkpoint_times.append(time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    segments: list[float]
    checkpoints: list[float]
    tokens: list[float]
    round_trips: list[float]
    failed_attempts: int


async def one_run(name: str, media: EncodedMedia, streams: int, tsa: LocalTsa | None) -> Run:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = TimedArchive(
            LocalStorage(root / "archive"),
            root / "spool",
            Signer.generate(),
            checkpoint_interval_s=CHECKPOINT_EVERY_S,
        )
        archive.checkpoint_times = []
        stamper = None
        if tsa is not None:
            trust = load_tsa_trust([tsa.certs.ca])
            stamper = Timestamper(archive, [tsa.url], HttpTsaClient(), trust)
        await archive.start()
        if stamper is not None:
            await stamper.start()
        recorded = await run_streams(archive, media, streams, LATENCY_SEGMENT_S, True)
        for stream in recorded:
            await archive.finish_inspection(stream.case_id, stream.inspection_id)
        if stamper is not None and tsa is not None and tsa.running:
            async with asyncio.timeout(60):
                await stamper.idle()
        await archive.stop()
        if stamper is not None:
            await stamper.stop(grace_s=0)
        return Run(
            name,
            list(archive.stats.latencies),
            archive.checkpoint_times,
            list(stamper.stats.latencies) if stamper else [],
            list(stamper.stats.round_trips) if stamper else [],
            stamper.stats.failed_attempts if stamper else 0,
        )


async def sequential_tokens(tsa: LocalTsa, count: int) -> tuple[list[float], list[float]]:
    """Checkpoint durable → token chained, one checkpoint at a time on an otherwise idle
    archive: what the TSA round trip, the reply's check and the chained store take."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = Archive(LocalStorage(root / "archive"), root / "spool", Signer.generate())
        stamper = Timestamper(archive, [tsa.url], HttpTsaClient(), load_tsa_trust([tsa.certs.ca]))
        await archive.start()
        await stamper.start()
        for i in range(count):
            await archive.append("bench", "note", {"n": i})
            await archive.checkpoint("bench")
            await stamper.idle()
        await archive.stop()
        await stamper.stop()
        return list(stamper.stats.latencies), list(stamper.stats.round_trips)


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:6.1f}" if values else "     -"


def show(run: Run) -> None:
    print(
        f"{run.name:14} segments {len(run.segments):4d}: closed → stored p50 {ms(run.segments, 50)}"
        f" p95 {ms(run.segments, 95)} ms | checkpoint() calls {len(run.checkpoints):4d}: p50"
        f" {ms(run.checkpoints, 50)} p95 {ms(run.checkpoints, 95)} ms"
    )
    if run.tokens:
        print(
            f"{'':14} tokens {len(run.tokens):4d}: checkpoint durable → token chained p50"
            f" {ms(run.tokens, 50)} p95 {ms(run.tokens, 95)} ms, max"
            f" {max(run.tokens) * 1000:.1f} ms, mean {statistics.fmean(run.tokens) * 1000:.1f} ms;"
            f" TSA round trip p50 {ms(run.round_trips, 50)} p95 {ms(run.round_trips, 95)} ms"
        )
    if run.failed_attempts:
        print(
            f"{'':14} failed TSA attempts {run.failed_attempts}, tokens chained {len(run.tokens)}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=12, help="media per stream")
    parser.add_argument("--streams", type=int, default=3, help="concurrent streams")
    parser.add_argument("--rounds", type=int, default=2, help="baseline, tsa up, tsa down: times")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the TSA-down run retries, logging each attempt
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    media = (await asyncio.to_thread(encode_media, int(args.seconds))).head(args.seconds)
    print(
        f"{args.streams} real-time streams of {media.seconds:.0f} s, {LATENCY_SEGMENT_S:.0f} s"
        f" segments, a checkpoint of every case each {CHECKPOINT_EVERY_S:.0f} s\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        certs = await asyncio.to_thread(make_tsa_certs, Path(scratch) / "certs")
        tsa = LocalTsa(certs, Path(scratch) / "tsa")
        try:
            await tsa.start()
            alone, trips = await sequential_tokens(tsa, 100)
            print(
                f"idle archive  tokens {len(alone):4d}, one checkpoint at a time: durable → token"
                f" chained p50 {ms(alone, 50)} p95 {ms(alone, 95)} ms; of which TSA round trip"
                f" (POST → reply checked) p50 {ms(trips, 50)} p95 {ms(trips, 95)} ms\n"
            )
            await tsa.stop()
            for round_no in range(1, args.rounds + 1):
                show(await one_run(f"{round_no}. baseline", media, args.streams, None))
                await tsa.start()
                show(await one_run(f"{round_no}. tsa up", media, args.streams, tsa))
                await tsa.stop()
                show(await one_run(f"{round_no}. tsa down", media, args.streams, tsa))
        finally:
            await tsa.stop()


if __name__ == "__main__":
    asyncio.run(main())

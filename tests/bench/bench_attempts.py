"""What the shared limits on failed attempts cost a sign-in, SQLite against PostgreSQL.

    .venv/bin/python tests/bench/bench_attempts.py [--rows 10000] [--runs 500]
        [--engines sqlite,postgresql]

For each engine, a temporary database with the app's migrations (PostgreSQL: a throwaway
cluster on loopback, not durable: fsync off, so its writes are cheaper than a real server's),
the login guard as the server builds it (10 per account and address, 30 per address, a minute),
--rows failures already in the window from as many addresses, then times, from the event loop as
a request handler does, ``check`` (one read transaction) and ``fail`` (one write transaction:
the rows, the prune, the limits read again) --runs times each and prints p50/p95 in ms. Then a
minute later (the guard's clock moved on) the same number of failures again, and the rows left:
the window's only. Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script

from server.security.ratelimit import AttemptGuard, AttemptLimit
from server.store.store import Store
from tests.bench.bench_search import opened

SECRET = b"bench secret, 32 bytes or more.."


def guard(store: Store) -> AttemptGuard:
    return AttemptGuard(
        "login",
        AttemptLimit("account", 10, "too many for this account"),
        AttemptLimit("address", 30, "too many from this address"),
        attempts=store.attempts,
        secret=SECRET,
    )


def keys(n: int) -> dict[str, str]:
    address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return {"account": f'["{address}", "inspector1"]', "address": address}


def ms(samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[18]
    return f"p50 {statistics.median(samples) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms"


async def measure(store: Store, rows: int, runs: int) -> None:
    login = guard(store)
    now = time.time()
    for n in range(rows):
        await login.fail(keys(n), now)
    checks, fails = [], []
    for n in range(runs):
        start = time.perf_counter()
        await login.check(keys(n), now)
        checks.append(time.perf_counter() - start)
        start = time.perf_counter()
        await login.fail(keys(rows + n), now)
        fails.append(time.perf_counter() - start)
    print(f"  check {ms(checks)}")
    print(f"  fail  {ms(fails)}")
    later = now + 61
    for n in range(rows + runs):
        await login.fail(keys(10_000_000 + n), later)
    count = await store.db.read(lambda tx: tx.one("SELECT COUNT(*) AS n FROM failed_attempts"))
    assert count is not None
    print(
        f"  a minute later, {rows + runs} new failures: {count['n']} rows"
        f" (window: {2 * (rows + runs)})"
    )


def main() -> None:
    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 10_000
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 500
    engines = (
        sys.argv[sys.argv.index("--engines") + 1].split(",")
        if "--engines" in sys.argv
        else ["sqlite", "postgresql"]
    )
    for engine in engines:
        with tempfile.TemporaryDirectory() as where, opened(engine, Path(where)) as store:
            print(f"{engine}: {rows} failures in the window")
            asyncio.run(measure(store, rows, runs))


if __name__ == "__main__":
    main()

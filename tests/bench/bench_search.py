# ruff: noqa: RUF001, RUF003 - Chinese case numbers use full-width brackets on purpose
"""Case search latency over 100,000 cases, SQLite against PostgreSQL, through the real store.

    .venv/bin/python tests/bench/bench_search.py [--cases 100000] [--runs 50]
        [--engines sqlite,postgresql]

For each engine, creates a temporary database with the app's own migrations (PostgreSQL: a
throwaway cluster on loopback, server/cli/cluster/postgres.py), 20 inspectors, --cases cases over
three years (applicant names from a pool of Chinese and Latin names, each case assigned to its
creator) and about 1.5 inspections per case with varied outcomes, then times ``Store.search``
(the query on the store's thread, awaited from the event loop as a request handler does) for
typical auditor queries (each --runs times, after one warm-up) and prints p50/p95 in
milliseconds with the number of matches, then PostgreSQL's p50 over SQLite's per query.
Both engines answer the same totals (checked). Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script

from server.cli.cluster.postgres import PostgresCluster
from server.inspection.case_numbers import CaseNumber
from server.store.backend import Tx
from server.store.case_search import CaseQuery
from server.store.store import Store, open_sqlite, open_store
from server.store.users import add_user

SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
LATIN = ("Wang", "Li", "Zhang", "Liu", "Chen", "Smith", "Müller", "Garcia", "Nguyen", "Kim")
OUTCOMES = ("pass", "pass", "pass", "fail", "correction", None)
START = datetime(2024, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def applicant(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
    return f"{rng.choice(LATIN)} {rng.choice(LATIN)}"


def populate(store: Store, cases: int, rng: random.Random) -> int:
    return store.db.write_now(lambda tx: _populate(tx, cases, rng))


def _populate(tx: Tx, cases: int, rng: random.Random) -> int:
    inspectors = [
        add_user(tx, f"inspector{i:02d}", "inspector", "x", iso(START)).id for i in range(20)
    ]
    case_rows, inspection_rows = [], []
    span = 3 * 365 * 24 * 3600
    for number in range(cases):
        created = START + timedelta(seconds=rng.randrange(span))
        owner = rng.choice(inspectors)
        if number % 3:
            case_number = f"{rng.choice(('HZ', 'SH', 'BJ', 'SZ'))}-{created.year}-{number:06d}"
        else:  # a third as permit offices write them: 杭规许〔2025〕000123号
            office = rng.choice(("杭规许", "沪食经", "京建审"))
            case_number = f"{office}〔{created.year}〕{number:06d}号"
        case_id = CaseNumber.parse(case_number).case_id
        case_rows.append(
            (case_id, case_number, "厂房踏勘", "杭州市西湖区文三路 100 号", applicant(rng),
             "13800000000", "factory", owner, iso(created))
        )  # fmt: skip
        for index in range(rng.choice((0, 1, 1, 2, 2, 3))):
            at = created + timedelta(days=index * 7 + rng.random())
            outcome = rng.choice(OUTCOMES)
            inspection_rows.append(
                (rng.randbytes(16).hex(), case_id, "ended",
                 owner if rng.random() < 0.9 else rng.choice(inspectors), iso(at),
                 iso(at + timedelta(minutes=20)), 0, None, iso(at), outcome,
                 iso(at + timedelta(minutes=19)) if outcome else None)
            )  # fmt: skip
    tx.many(
        "INSERT INTO cases (case_id, case_number, title, address, applicant_name,"
        " applicant_phone, case_type, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        case_rows,
    )
    tx.many(
        "INSERT INTO case_inspectors (case_id, user_id, assigned_at, assigned_by)"
        " VALUES (?, ?, ?, ?)",
        [(row[0], row[7], row[8], row[7]) for row in case_rows],
    )
    tx.many(
        "INSERT INTO inspections (inspection_id, case_id, status, created_by, created_at,"
        " ended_at, invite_expires_at, short_code, consented_at, outcome, concluded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        inspection_rows,
    )
    return len(inspection_rows)


QUERIES = {
    "first page, no filter": {},
    "case_id prefix": {"case_id": "sh-2025-0123"},
    "case number part": {"case_id": "0123号"},
    "applicant substring": {"applicant": "王伟"},
    "applicant, sorted by name": {"applicant": "wang", "sort": "applicant_name", "order": "asc"},
    "date range (1 month)": {"from": "2025-03-01", "to": "2025-03-31"},
    "outcome fail": {"outcome": "fail"},
    "outcome none": {"outcome": "none"},
    "inspector": {"inspector": "inspector07"},
    "inspector + outcome + dates": {
        "inspector": "inspector07",
        "outcome": "pass",
        "from": "2025-01-01",
        "to": "2025-12-31",
    },
    "deep page (offset 50,000)": {"offset": "50000"},
}


@dataclass(frozen=True, slots=True)
class Timing:
    total: int
    p50_ms: float
    p95_ms: float


async def time_queries(store: Store, runs: int) -> dict[str, Timing]:
    user = await store.users.by_name("inspector07")
    assert user is not None
    queries: list[tuple[str, CaseQuery, int | None]] = [
        (name, CaseQuery.from_params(params), None) for name, params in QUERIES.items()
    ]
    queries.append(("as inspector07 (assigned)", CaseQuery(), user.id))
    timings = {}
    for name, query, owner in queries:
        total = (await store.search(query, owner)).total  # the warm-up
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            await store.search(query, owner)
            times.append((time.perf_counter() - began) * 1000)
        p95 = statistics.quantiles(times, n=20)[18]
        timings[name] = Timing(total, statistics.median(times), p95)
    return timings


def analyze(store: Store) -> None:
    """Fresh planner statistics, as a database in service has (autovacuum, or SQLite's
    ANALYZE after a bulk load)."""

    def run(tx: Tx) -> None:
        tx.run("ANALYZE")

    store.db.write_now(run)


@contextlib.contextmanager
def opened(engine: str, where: Path) -> Iterator[Store]:
    if engine == "sqlite":
        store = open_sqlite(where / "takan.sqlite3")
        try:
            yield store
        finally:
            store.close()
        return
    # Its own directory in /tmp: started as root, PostgreSQL runs as its own user, who must
    # traverse every parent.
    root = Path(tempfile.mkdtemp(prefix="takan-bench-postgres-"))
    try:
        with PostgresCluster.start(root, durable=False) as cluster:
            store = open_store(cluster.create_database("bench"), where)
            try:
                yield store
            finally:
                store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    cases = int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 100_000
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 50
    engines = (
        sys.argv[sys.argv.index("--engines") + 1].split(",")
        if "--engines" in sys.argv
        else ["sqlite", "postgresql"]
    )
    results: dict[str, dict[str, Timing]] = {}
    for engine in engines:
        rng = random.Random(5)  # the same rows for every engine
        with (
            tempfile.TemporaryDirectory(prefix="takan-bench-search-") as tmp,
            opened(engine, Path(tmp)) as store,
        ):
            started = time.perf_counter()
            inspections = populate(store, cases, rng)
            analyze(store)
            built_s = time.perf_counter() - started
            print(f"{engine}: {cases} cases, {inspections} inspections, built in {built_s:.1f} s")
            results[engine] = asyncio.run(time_queries(store, runs))
        print(f"{'query':<30} {'matches':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for name, timing in results[engine].items():
            print(f"{name:<30} {timing.total:>8} {timing.p50_ms:8.2f} {timing.p95_ms:8.2f}")
        print()
    if {"sqlite", "postgresql"} <= set(results):
        sqlite, postgres = results["sqlite"], results["postgresql"]
        print(f"{'query':<30} {'SQLite p50':>10} {'PG p50':>8} {'PG/SQLite':>10}  same matches")
        for name in sqlite:
            ratio = postgres[name].p50_ms / sqlite[name].p50_ms
            same = "yes" if postgres[name].total == sqlite[name].total else "NO"
            print(
                f"{name:<30} {sqlite[name].p50_ms:10.2f} {postgres[name].p50_ms:8.2f}"
                f" {ratio:10.2f}  {same}"
            )


if __name__ == "__main__":
    main()

# ruff: noqa: RUF001, RUF003 - Chinese case numbers use full-width brackets on purpose
"""Case search latency over 100,000 cases in SQLite, through the real Database and search code.

    .venv/bin/python tests/bench/bench_search.py [--cases 100000] [--runs 50]

Creates a temporary database with the app's own migrations, 20 inspectors, --cases cases over
three years (applicant names from a pool of Chinese and Latin names) and about 1.5 inspections
per case with varied outcomes, then times ``server.case_search.search`` for typical auditor
queries (each --runs times, after one warm-up) and prints p50/p95 in milliseconds with the
number of matches. Prints figures; asserts nothing.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script

from server.inspection.case_numbers import CaseNumber
from server.store.case_search import CaseQuery, search
from server.store.db import Database

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


def populate(db: Database, cases: int, rng: random.Random) -> int:
    conn = db.conn
    inspectors = [
        db.add_user(f"inspector{i:02d}", "inspector", "x", iso(START)).id for i in range(20)
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
    with db.transaction():
        conn.executemany(
            "INSERT INTO cases (case_id, case_number, title, address, applicant_name,"
            " applicant_phone, case_type, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            case_rows,
        )
        conn.executemany(
            "INSERT INTO inspections (inspection_id, case_id, status, created_by, created_at,"
            " ended_at, invite_expires_at, short_code, consented_at, outcome, concluded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            inspection_rows,
        )
    conn.execute("ANALYZE")
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


def main() -> None:
    cases = int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 100_000
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 50
    rng = random.Random(5)
    with tempfile.TemporaryDirectory(prefix="takan-bench-search-") as tmp:
        db = Database(Path(tmp) / "takan.sqlite3")
        started = time.perf_counter()
        inspections = populate(db, cases, rng)
        built_s = time.perf_counter() - started
        print(f"{cases} cases, {inspections} inspections, built in {built_s:.1f} s")
        print(f"{'query':<30} {'matches':>8} {'p50 ms':>8} {'p95 ms':>8}")
        inspector_id = db.user_by_name("inspector07")
        for name, params in QUERIES.items():
            query = CaseQuery.from_params(params)
            total = search(db.conn, query, None).total
            times = []
            for _ in range(runs):
                began = time.perf_counter()
                search(db.conn, query, None)
                times.append((time.perf_counter() - began) * 1000)
            p95 = statistics.quantiles(times, n=20)[18]
            print(f"{name:<30} {total:>8} {statistics.median(times):8.2f} {p95:8.2f}")
        assert inspector_id is not None
        query = CaseQuery()
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            page = search(db.conn, query, inspector_id.id)
            times.append((time.perf_counter() - began) * 1000)
        p95 = statistics.quantiles(times, n=20)[18]
        label = "as inspector07 (own cases)"
        print(f"{label:<30} {page.total:>8} {statistics.median(times):8.2f} {p95:8.2f}")
        db.close()


if __name__ == "__main__":
    main()

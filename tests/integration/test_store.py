"""The store, on each engine: what it keeps apart, what it never does to the event loop, how it
opens and migrates, and that both engines have one schema."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.cli.cluster.postgres import PostgresCluster
from server.store.backend import Tx
from server.store.models import Case, Inspection
from server.store.schema import SCHEMA_VERSION
from server.store.store import SQLITE_FILE, Store, open_sqlite, open_store
from tests.conftest import current_database


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(current_database(), tmp_path)
    yield opened
    opened.close()


async def two_inspections(store: Store) -> tuple[str, str]:
    user = await store.users.add("inspector1", "inspector", "!", "2026-01-01T00:00:00.000Z")
    ids = []
    for n in (1, 2):
        case = Case(f"C-{n}", "title", "address", "", "", "", None, None, user.id, f"2026-0{n}")
        await store.cases.add(case, [user.id])
        inspection_id = f"{n:032x}"
        await store.inspections.add(
            Inspection(inspection_id, case.case_id, "active", user.id, "2026", None, 0, None, None)
        )
        await store.participants.add(inspection_id, "applicant", "applicant", None, "张三", "t0")
        ids.append(inspection_id)
    return ids[0], ids[1]


async def test_an_applicant_leaving_one_inspection_leaves_the_others_open(store: Store) -> None:
    first, second = await two_inspections(store)
    await store.participants.left(first, "applicant", "2026-01-01T00:10:00.000Z")
    assert [p["left_at"] for p in await store.participants.of(first)] == [
        "2026-01-01T00:10:00.000Z"
    ]
    assert [p["left_at"] for p in await store.participants.of(second)] == [None]


async def test_a_transaction_that_raises_leaves_nothing_behind(store: Store) -> None:
    first, _ = await two_inspections(store)

    def half_done(tx: Tx) -> None:
        tx.run("UPDATE inspections SET status = 'ended' WHERE inspection_id = ?", (first,))
        raise RuntimeError("cut off")

    with pytest.raises(RuntimeError, match="cut off"):
        await store.db.write(half_done)
    inspection = await store.inspections.get(first)
    assert inspection is not None
    assert inspection.status == "active"


def hold_the_database(tmp_path: Path, seconds: float, held: threading.Event) -> None:
    """Another process's write lock on the users, held ``seconds``."""
    url = current_database()
    if not url:
        lite = sqlite3.connect(tmp_path / SQLITE_FILE, isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        lite.execute("ROLLBACK")
        lite.close()
        return
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        held.set()
        time.sleep(seconds)
        conn.rollback()


async def test_a_waiting_query_never_holds_up_the_event_loop(store: Store, tmp_path: Path) -> None:
    await store.users.add("auditor1", "auditor", "!", "2026-01-01T00:00:00.000Z")
    held = threading.Event()
    holder = asyncio.create_task(asyncio.to_thread(hold_the_database, tmp_path, 0.6, held))
    await asyncio.to_thread(held.wait, 10)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    began = time.monotonic()
    added = await store.users.add("admin1", "admin", "!", "2026-01-01T00:00:00.000Z")
    waited = time.monotonic() - began
    ticker.cancel()
    await holder
    assert added.username == "admin1"
    assert waited > 0.3  # it did wait for the other writer …
    assert max(gaps) < 0.3  # … while the loop kept running (blocked, one gap would be > 0.5)


def test_opening_twice_at_once_migrates_once_to_the_current_version(tmp_path: Path) -> None:
    url = current_database()
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(open_store(url, tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for store in opened:
        version = store.db.read_now(
            lambda tx: tx.one("SELECT version FROM takan_schema" if url else "PRAGMA user_version")
        )
        assert version is not None
        assert next(iter(version.values())) == SCHEMA_VERSION
        store.close()


def columns(store: Store) -> dict[str, list[str]]:
    """Every table's columns, in order (PostgreSQL's own bookkeeping table left out)."""

    def read(tx: Tx) -> dict[str, list[str]]:
        if tx.dialect.name == "sqlite":
            tables = [
                r["name"]
                for r in tx.all("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            ]
            return {t: [r["name"] for r in tx.all(f"PRAGMA table_info({t})")] for t in tables}
        rows = tx.all(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name != 'takan_schema'"
            " ORDER BY table_name, ordinal_position"
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["table_name"], []).append(row["column_name"])
        return found

    return store.db.read_now(read)


def test_both_engines_have_the_same_tables_and_columns(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    sqlite = open_sqlite(tmp_path / SQLITE_FILE)
    postgres = open_store(
        postgres_cluster.create_database("schema_" + tmp_path.name[-8:]), tmp_path
    )
    try:
        assert columns(postgres) == columns(sqlite)
    finally:
        sqlite.close()
        postgres.close()

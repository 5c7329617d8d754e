"""The embedded default: one SQLite file in the data dir, on one thread of its own."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from server.store.backend import SQLITE, Database, Dialect, Row
from server.store.schema import LATER_MIGRATIONS, SQLITE_MIGRATIONS, statements

T = TypeVar("T")
# Another process on the same file (`takan user`, `takan reindex`) holds the write lock for
# milliseconds; wait that out rather than fail.
BUSY_TIMEOUT_MS = 10_000


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class _SqliteTx:
    dialect: Dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        super().__init__(threads=1)
        self.path = path
        self._lock = threading.Lock()  # the one connection, whichever thread calls
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._conn.row_factory = _dict_row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _migrate(self) -> None:
        scripts = [*SQLITE_MIGRATIONS, *(m.sqlite for m in LATER_MIGRATIONS)]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # two processes opening at once: one migrates
            try:
                version = int(self._conn.execute("PRAGMA user_version").fetchone()["user_version"])
                for number, script in enumerate(scripts[version:], start=version + 1):
                    for statement in statements(script):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def describe(self) -> str:
        return str(self.path)

    def _transaction(self, work: Callable[[Any], T], *, write: bool) -> T:
        with self._lock:
            # A read is a transaction too, so that it sees one state of the file.
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = work(_SqliteTx(self._conn))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    def _close(self) -> None:
        with self._lock:
            self._conn.close()

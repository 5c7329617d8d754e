"""PostgreSQL for many processes: psycopg 3's connection pool, on the backend's threads.

The repositories' SQL is written once with ``?`` placeholders; here each statement is respelled
for psycopg (``%s``, and ``%`` doubled) once and cached. Every transaction is READ COMMITTED,
PostgreSQL's default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from server.store.backend import POSTGRESQL, Database, Dialect, Row, StoreUnavailable, Tx
from server.store.schema import (
    LATER_MIGRATIONS,
    POSTGRES_BASELINE,
    POSTGRES_BASELINE_VERSION,
    statements,
)

T = TypeVar("T")
POOL_SIZE = 4
OPEN_TIMEOUT_S = 10.0
# Any constant: the key of the advisory lock two nodes starting at once migrate under.
MIGRATION_LOCK = 0x74616B616E


@functools.lru_cache(maxsize=1024)
def _psycopg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTx:
    dialect: Dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(_psycopg_sql(sql), params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(_psycopg_sql(sql), params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(_psycopg_sql(sql), params).rowcount

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_psycopg_sql(sql), rows)


class PostgresDatabase(Database):
    dialect = POSTGRESQL

    def __init__(self, url: str) -> None:
        try:  # one connection first: its error says why (refused, no such database, login)
            psycopg.connect(url, connect_timeout=int(OPEN_TIMEOUT_S)).close()
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {_without_password(url)}: {_first_line(exc)}"
            ) from exc
        super().__init__(threads=POOL_SIZE)
        self.url = url
        self._pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            kwargs={"row_factory": dict_row},
            name="takan",
        )
        try:
            self._pool.open(wait=True, timeout=OPEN_TIMEOUT_S)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {_without_password(url)} within"
                f" {OPEN_TIMEOUT_S:.0f} s"
            ) from exc
        self._migrate()

    def _migrate(self) -> None:
        def migrate(tx: Tx) -> None:
            tx.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            tx.run("CREATE TABLE IF NOT EXISTS takan_schema (version INTEGER NOT NULL)")
            row = tx.one("SELECT version FROM takan_schema")
            version = int(row["version"]) if row else 0
            if row is None:
                tx.run("INSERT INTO takan_schema (version) VALUES (0)")
            if version == 0:
                for statement in statements(POSTGRES_BASELINE):
                    tx.run(statement)
                version = POSTGRES_BASELINE_VERSION
            for number, step in enumerate(
                LATER_MIGRATIONS[version - POSTGRES_BASELINE_VERSION :], start=version + 1
            ):
                for statement in statements(step.postgresql):
                    tx.run(statement)
                version = number
            tx.run("UPDATE takan_schema SET version = ?", (version,))

        self.write_now(migrate)

    def describe(self) -> str:
        return f"PostgreSQL at {_without_password(self.url)}"

    def _transaction(self, work: Callable[[Any], T], *, write: bool) -> T:
        with self._pool.connection() as conn, conn.transaction():
            return work(_PostgresTx(conn))

    def _close(self) -> None:
        self._pool.close()


def _first_line(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _without_password(url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

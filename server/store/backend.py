"""The database seam: one transaction is one plain function, run on the database's own threads.

Repositories write their SQL once, with ``?`` placeholders, against ``Tx``; the SQLite and the
PostgreSQL backends run it. A transaction is a synchronous function handed to ``read`` or
``write``, so it can never span an ``await`` (no lock or open transaction waits on the network
or the media), and the event loop never waits on the database: the function runs on the
backend's worker threads (one for SQLite, whose writes are serial anyway; a pool's worth for
PostgreSQL, whose driver releases the GIL while it waits).
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What the two engines spell differently, as SQL fragments."""

    name: str  # "sqlite" or "postgresql"

    def nocase(self, expr: str) -> str:
        """``expr`` compared and sorted without regard to (ASCII) case."""
        return f"{expr} COLLATE NOCASE" if self.name == "sqlite" else f"lower({expr})"

    @property
    def like_nocase(self) -> str:
        """SQLite's LIKE ignores ASCII case; PostgreSQL's does not."""
        return "LIKE" if self.name == "sqlite" else "ILIKE"

    @property
    def for_update(self) -> str:
        """Lock the rows selected until the transaction ends (SQLite's write transaction holds
        the whole file already)."""
        return "" if self.name == "sqlite" else " FOR UPDATE"

    @property
    def skip_locked(self) -> str:
        """Lock the rows selected, passing over those another transaction holds, so that two
        transactions taking rows to delete never wait on each other (nor deadlock)."""
        return "" if self.name == "sqlite" else " FOR UPDATE SKIP LOCKED"

    def joined(self, expr: str) -> str:
        """The aggregate joining ``expr``'s values with commas."""
        if self.name == "sqlite":
            return f"group_concat({expr}, ',')"
        return f"string_agg({expr}, ',')"


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")


class StoreUnavailable(Exception):
    """The database cannot be opened: the words say why (never its password)."""


class Tx(Protocol):
    """One transaction's connection, used on the backend's thread only."""

    dialect: Dialect

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row, or None."""

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Execute once per parameter row."""


def value(tx: Tx, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row (None without a row)."""
    row = tx.one(sql, params)
    return next(iter(row.values())) if row else None


class Database(ABC):
    """An open database: transactions in, their results out, off the event loop."""

    dialect: Dialect

    def __init__(self, threads: int) -> None:
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="takan-db")

    async def read(self, work: Callable[[Tx], T]) -> T:
        """``work`` in a transaction that changes nothing."""
        return await self._off_loop(functools.partial(self.read_now, work))

    async def write(self, work: Callable[[Tx], T]) -> T:
        """``work`` in a transaction committed when it returns, rolled back if it raises."""
        return await self._off_loop(functools.partial(self.write_now, work))

    async def _off_loop(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def read_now(self, work: Callable[[Tx], T]) -> T:
        """As ``read``, blocking: for tools with no event loop, and the backend's thread."""
        return self._transaction(work, write=False)

    def write_now(self, work: Callable[[Tx], T]) -> T:
        """As ``write``, blocking."""
        return self._transaction(work, write=True)

    @abstractmethod
    def describe(self) -> str:
        """Which database this is, for people (never a password)."""

    @abstractmethod
    def _transaction(self, work: Callable[[Tx], T], *, write: bool) -> T: ...

    def close(self) -> None:
        self._threads.shutdown(wait=True)
        self._close()

    @abstractmethod
    def _close(self) -> None: ...

"""What every repository shares: its database and one-statement transactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.store.backend import Database, Row


class Repository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._db.read(lambda tx: tx.one(sql, params))

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._db.read(lambda tx: tx.all(sql, params))

    async def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._db.write(lambda tx: tx.run(sql, params))


def marks(values: Sequence[Any]) -> str:
    """``?, ?, …``: one placeholder per value, for ``IN (…)``."""
    return ", ".join("?" * len(values))

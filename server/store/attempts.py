"""Failed attempts (wrong passwords, wrong short codes), kept in the database so that every
process on it counts the same failures and a restart forgets none.

A row is one failure under one limit: its ``scope`` (``login.account``, ``login.address``,
``code.address``: the guard and the limit), its key and when (``at``, seconds since the epoch,
from the server's clock). The key is never the account name or the address as typed but a
keyed hash of them (HMAC-SHA256 under a key derived from the token secret; see
``server/security/ratelimit.py``), because this table must hold nothing it does not need:

- a limit only ever asks "how many failures under *this* key lately", which equal hashes answer
  as well as the plain text does;
- what is typed as an account name on a failed sign-in is sometimes a password (typed in the
  wrong field), and an address is personal data: in the clear, both would sit in every backup and
  replica of the database, readable by anyone who may read the database;
- an unkeyed hash would not hide them (every IPv4 address, and every name an office uses, is
  hashed in seconds); under the secret, a row names no one to a reader without it;
- every node must share the token secret anyway (its sessions are signed with it), so the
  nodes' hashes of one key are equal; a new secret starts every limit afresh, which costs a
  window (a minute) of counting.

The table stays bounded: each failure deletes at most ``PRUNE_BATCH`` rows of its scopes that
have left their window, more than it adds, so expired rows never pile up; what remains is the
failures of one window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.store.backend import Tx
from server.store.repository import Repository

# Expired rows each failure deletes per scope, at most: more than the one row it adds, so
# the expired ones are gone after a few failures, and no request ever pays for a big delete.
PRUNE_BATCH = 10


@dataclass(frozen=True, slots=True)
class Window:
    """The failures that count now under ``scope`` and ``key_hash``: those after ``since``;
    at most the ``newest`` of them are read (a limit of n needs no more than n)."""

    scope: str
    key_hash: str
    since: float
    newest: int

    def __post_init__(self) -> None:
        if self.newest < 1:
            raise ValueError("a window reads at least its newest failure")


class Attempts(Repository):
    async def recent(self, windows: Sequence[Window]) -> list[list[float]]:
        """Per window, the times of its newest failures, newest first (one transaction)."""
        return await self._db.read(lambda tx: [_recent(tx, window) for window in windows])

    async def fail(self, windows: Sequence[Window], at: float) -> list[list[float]]:
        """One failure at ``at`` under every window's scope and key, the expired rows of those
        scopes pruned (a few), and then, as ``recent``, the windows' failures: one transaction."""
        if not windows:
            raise ValueError("a failure counts under at least one window")

        def fail(tx: Tx) -> list[list[float]]:
            tx.run(
                "INSERT INTO failed_attempts (scope, key_hash, at) VALUES "  # noqa: S608
                + ", ".join(["(?, ?, ?)"] * len(windows)),
                [value for w in windows for value in (w.scope, w.key_hash, at)],
            )
            for window in windows:
                _prune(tx, window.scope, window.since)
            return [_recent(tx, window) for window in windows]

        return await self._db.write(fail)


def _recent(tx: Tx, window: Window) -> list[float]:
    rows = tx.all(
        "SELECT at FROM failed_attempts WHERE scope = ? AND key_hash = ? AND at > ?"
        " ORDER BY at DESC LIMIT ?",
        (window.scope, window.key_hash, window.since, window.newest),
    )
    return [float(row["at"]) for row in rows]


def _prune(tx: Tx, scope: str, before: float) -> None:
    """Delete up to ``PRUNE_BATCH`` of ``scope``'s rows at or before ``before``, oldest first
    (on PostgreSQL, passing over rows another node is deleting)."""
    tx.run(
        "DELETE FROM failed_attempts WHERE id IN (SELECT id FROM failed_attempts"  # noqa: S608
        " WHERE scope = ? AND at <= ? ORDER BY at LIMIT ?" + tx.dialect.skip_locked + ")",
        (scope, before, PRUNE_BATCH),
    )

"""Case chains sequenced through the database: how nodes on different machines take turns.

A writer *holds* a case by stamping its head row with its name and a short deadline (a lease,
not a lock: a writer that dies or stalls holds nothing once the deadline passes). Holding it, it
reads the entries sequenced above its own head and commits its next entry in one transaction
that checks, with the head row locked, that it still holds the case, that the entry is the
head's successor and links to it, and, for a live inspection, that the placement is still this
node's at the writer's epoch. ``UNIQUE (case_id, seq)`` is the backstop. So two writers can
never take the same seq, and a writer that lost its turn (or its inspection) is refused.
``recorder/shared_chain.py`` is the archive's side of this seam; docs/archive.md has the
argument.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from recorder.chain import ChainEntry
from recorder.errors import ChainRefused
from recorder.shared_chain import Sequenced, SequencedEntry
from server.clock import millis
from server.errors import Fenced
from server.store.backend import Database, Tx

logger = logging.getLogger(__name__)

HOLD_S = 5.0  # how long a writer holds a case for its next entries, renewed by each entry
RETRY_FIRST_S = 0.002
RETRY_MAX_S = 0.05
FOUND_MAC = ""  # an entry found in the archive, sequenced as found: no Takan MAC

FenceScope = Callable[[dict[str, Any]], tuple[str, int] | None]
"""For an entry's body: (inspection_id, epoch) if this node runs that inspection live at an
epoch the placement must still have when the entry is sequenced, else None."""


def writer_name(role: str) -> str:
    """A name no other writer has: the role (a node's name, ``export``), host, process."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _entries(tx: Tx, case_id: str, after_seq: int) -> list[SequencedEntry]:
    rows = tx.all(
        "SELECT seq, data, mac FROM chain_entries WHERE case_id = ? AND seq > ? ORDER BY seq",
        (case_id, after_seq),
    )
    return [SequencedEntry(int(r["seq"]), bytes(r["data"]), r["mac"]) for r in rows]


def _signed_seq(tx: Tx, case_id: str) -> int:
    row = tx.one("SELECT signed_seq FROM chain_heads WHERE case_id = ?", (case_id,))
    return int(row["signed_seq"]) if row else -1


@dataclass(frozen=True, slots=True)
class Holding:
    """What ``hold`` checks in the commit's transaction."""

    writer: str
    now_ms: int
    until_ms: int


class ChainLog:
    """The SQL of sequencing (every method is one transaction)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def try_hold(self, case_id: str, holding: Holding, after_seq: int) -> Sequenced | None:
        def hold(tx: Tx) -> Sequenced | None:
            tx.run(
                "INSERT INTO chain_heads (case_id, seq, hash) VALUES (?, -1, '')"
                " ON CONFLICT (case_id) DO NOTHING",
                (case_id,),
            )
            held = tx.run(
                "UPDATE chain_heads SET holder = ?, held_until_ms = ? WHERE case_id = ?"
                " AND (holder IS NULL OR holder = ? OR held_until_ms <= ?)",
                (holding.writer, holding.until_ms, case_id, holding.writer, holding.now_ms),
            )
            if held != 1:
                return None
            return Sequenced(_entries(tx, case_id, after_seq), _signed_seq(tx, case_id))

        return await self._db.write(hold)

    async def let_go(self, case_id: str, writer: str) -> None:
        await self._db.write(
            lambda tx: tx.run(
                "UPDATE chain_heads SET holder = NULL, held_until_ms = 0"
                " WHERE case_id = ? AND holder = ?",
                (case_id, writer),
            )
        )

    async def load(self, case_id: str) -> Sequenced:
        def load(tx: Tx) -> Sequenced:
            return Sequenced(_entries(tx, case_id, -1), _signed_seq(tx, case_id))

        return await self._db.read(load)

    async def commit(
        self,
        case_id: str,
        holding: Holding,
        entry: ChainEntry,
        data: bytes,
        mac: str,
        fence: tuple[str, str, int] | None,
    ) -> None:
        """Sequence ``entry``; ``fence`` is (inspection_id, node, epoch) the placement must be."""

        def commit(tx: Tx) -> None:
            head = tx.one(
                "SELECT seq, hash, holder, held_until_ms FROM chain_heads WHERE case_id = ?"  # noqa: S608
                + tx.dialect.for_update,
                (case_id,),
            )
            if (
                head is None
                or head["holder"] != holding.writer
                or int(head["held_until_ms"]) <= holding.now_ms
            ):
                raise ChainRefused(
                    f"case {case_id}: this writer's hold lapsed before entry {entry.seq}"
                    " was sequenced (another writer may have appended since)"
                )
            seq = int(head["seq"])
            # seq -1: nothing sequenced through the database yet (a case chained before, by
            # one process alone, continues from its stored head).
            if seq != -1 and (seq != entry.seq - 1 or head["hash"] != entry.prev):
                raise ChainRefused(
                    f"case {case_id}: entry {entry.seq} does not follow the head, entry {seq}"
                )
            if fence is not None:
                inspection_id, node, epoch = fence
                placement = tx.one(
                    "SELECT node, epoch FROM placements WHERE inspection_id = ?",
                    (inspection_id,),
                )
                if placement is None or (placement["node"], int(placement["epoch"])) != (
                    node,
                    epoch,
                ):
                    holder = (
                        f"{placement['node']} at epoch {placement['epoch']}"
                        if placement
                        else "nobody"
                    )
                    raise Fenced(
                        f"inspection '{inspection_id}' is held by {holder}; this node ({node},"
                        f" epoch {epoch}) no longer writes for it"
                    )
            tx.run(
                "INSERT INTO chain_entries (case_id, seq, data, mac, writer)"
                " VALUES (?, ?, ?, ?, ?)",
                (case_id, entry.seq, data, mac, holding.writer),
            )
            tx.run(
                "UPDATE chain_heads SET seq = ?, hash = ?, held_until_ms = ? WHERE case_id = ?",
                (entry.seq, entry.hash, holding.until_ms, case_id),
            )

        await self._db.write(commit)

    async def signed(self, case_id: str, holding: Holding, seq: int) -> None:
        def signed(tx: Tx) -> None:
            moved = tx.run(
                "UPDATE chain_heads SET signed_seq = ?, held_until_ms = ?"
                " WHERE case_id = ? AND holder = ? AND held_until_ms > ? AND signed_seq < ?",
                (seq, holding.until_ms, case_id, holding.writer, holding.now_ms, seq),
            )
            if moved != 1 and _signed_seq(tx, case_id) < seq:
                raise ChainRefused(
                    f"case {case_id}: this writer's hold lapsed before it signed entry {seq}"
                )

        await self._db.write(signed)


class DatabaseChain:
    """The archive's ``SharedChain`` on the database: a writer named ``writer``, fencing the
    inspections ``fence_scope`` names with ``node``'s placements."""

    def __init__(
        self,
        db: Database,
        writer: str,
        node: str = "",
        fence_scope: FenceScope | None = None,
        hold_s: float = HOLD_S,
    ) -> None:
        self.log = ChainLog(db)
        self.writer = writer
        self._node = node
        self._fence_scope = fence_scope
        self._hold_ms = int(hold_s * 1000)

    def _holding(self) -> Holding:
        now = millis(time.time())
        return Holding(self.writer, now, now + self._hold_ms)

    async def hold(self, case_id: str, after_seq: int) -> Sequenced:
        delay = RETRY_FIRST_S
        while True:
            held = await self.log.try_hold(case_id, self._holding(), after_seq)
            if held is not None:
                return held
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def let_go(self, case_id: str) -> None:
        await self.log.let_go(case_id, self.writer)

    async def load(self, case_id: str) -> Sequenced:
        return await self.log.load(case_id)

    async def commit(self, case_id: str, entry: ChainEntry, data: bytes, mac: str) -> None:
        scope = self._fence_scope(entry.body) if self._fence_scope else None
        fence = (scope[0], self._node, scope[1]) if scope else None
        try:
            await self.log.commit(case_id, self._holding(), entry, data, mac, fence)
        except ChainRefused as exc:
            logger.error(
                "chain write refused",
                extra={"case_id": case_id, "seq": entry.seq, "kind": entry.kind, "why": str(exc)},
            )
            raise

    async def adopt(self, case_id: str, entry: ChainEntry, data: bytes) -> None:
        await self.log.commit(case_id, self._holding(), entry, data, FOUND_MAC, None)
        logger.error(
            "a chain entry found in the archive that no writer sequenced, sequenced as found",
            extra={"case_id": case_id, "seq": entry.seq},
        )

    async def signed(self, case_id: str, seq: int) -> None:
        await self.log.signed(case_id, self._holding(), seq)


CHAIN_DATABASE_FILE = "chain-database"  # in a server's spool: the database its chains are in


def record_chain_database(spool: Path, url: str) -> None:
    """Note in the server's spool which database sequences its chains (without a password), so
    that ``takan export`` beside it appends through the same database."""
    spool.mkdir(parents=True, exist_ok=True)
    target = spool / CHAIN_DATABASE_FILE
    text = url_without_password(url) + "\n"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)


def recorded_chain_database(spool: Path) -> str | None:
    try:
        return (spool / CHAIN_DATABASE_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def url_without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

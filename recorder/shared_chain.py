"""The seam through which processes on different machines take turns on a case's chain.

Processes that share a data directory take turns with a file lock and a shared head ledger
(``recorder/chain_lock.py``). Nodes on different machines share no disk, so with PostgreSQL
every append goes through the database instead (``server/store/chain_log.py``): a writer holds
the case (a short lease on its head row), reads the entries the others sequenced since its own
head, and commits its entry there, in one transaction that checks it still holds the case, that
the entry links to the database's head and (for a live inspection) that this node still holds
the inspection at its epoch. The database's copy of an entry is the commit point; the spool file
and the stored object follow, and any node can write out an entry whose writer died first.

Each row carries a MAC under the head ledger's key (derived from the signing key, which every
node shares), so a row inserted by someone without the key is told from Takan's own.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from recorder.chain import ChainEntry


@dataclass(frozen=True, slots=True)
class SequencedEntry:
    """A chain entry as the database holds it: its canonical bytes and their MAC."""

    seq: int
    data: bytes
    mac: str


@dataclass(frozen=True, slots=True)
class Sequenced:
    """A case as the database has sequenced it: entries (all, or those above a seq) and the
    highest seq a checkpoint was signed for (-1: none)."""

    entries: list[SequencedEntry]
    signed_seq: int


def entry_mac(mac_key: bytes, case_id: str, seq: int, data: bytes) -> str:
    message = f"{case_id} {seq} ".encode() + data
    return hmac.new(mac_key, message, hashlib.sha256).hexdigest()


def mac_holds(mac_key: bytes, case_id: str, row: SequencedEntry) -> bool:
    return hmac.compare_digest(entry_mac(mac_key, case_id, row.seq, row.data), row.mac)


class SharedChain(Protocol):
    """Where a case's chain entries are sequenced across processes (the database)."""

    async def hold(self, case_id: str, after_seq: int) -> Sequenced:
        """Wait until this process holds the case; what was sequenced above ``after_seq``
        (-1: everything), read in the same transaction."""
        ...

    async def let_go(self, case_id: str) -> None: ...

    async def load(self, case_id: str) -> Sequenced:
        """Every entry of the case sequenced through the database, in order."""
        ...

    async def commit(self, case_id: str, entry: ChainEntry, data: bytes, mac: str) -> None:
        """Sequence ``entry`` as the case's next, or raise ``ChainRefused`` (this process no
        longer holds the case, the head moved, or another node holds the entry's inspection)."""
        ...

    async def adopt(self, case_id: str, entry: ChainEntry, data: bytes) -> None:
        """Sequence, holding the case, an entry found in storage that no process sequenced
        (without a MAC: the next entry flags it)."""
        ...

    async def signed(self, case_id: str, seq: int) -> None:
        """Record, holding the case, that a checkpoint over entry ``seq`` is being written."""
        ...

"""Chains sequenced through PostgreSQL, by writers that share no disk (nodes on machines of their
own): what one sequenced and died before storing, another stores; a row nobody with the signing
key wrote is flagged by the next entry; a writer whose turn lapsed is refused; and a case opens
after a restart while the object store is down."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from recorder import layout
from recorder.archive import Archive
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, next_entry
from recorder.clock import CLOCK_SOURCE, utc_iso
from recorder.errors import ChainRefused, StorageError
from recorder.key_history import KeyHistory
from recorder.minio_storage import MinioStorage
from recorder.signing import Signer
from recorder.storage import LocalStorage, Storage
from recorder.tail import DATABASE_SOURCE
from recorder.verify import verify_case
from server.store.chain_log import DatabaseChain, url_without_password, writer_name
from server.store.store import Store, open_store
from tests.integration.evidence_helpers import stored_entries_of
from tests.s3server import free_port

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.single_engine  # PostgreSQL only: SQLite's writers share one disk


@pytest.fixture
def database(own_postgres_database: str) -> str:
    return own_postgres_database


@contextlib.asynccontextmanager
async def writer(
    root: Path,
    name: str,
    database: str,
    storage: Storage,
    signer: Signer,
    *,
    hold_s: float = 5.0,
    started: bool = True,
    key_history: KeyHistory | None = None,
) -> AsyncIterator[Archive]:
    """A writer on a machine of its own: its own spool, the shared database and archive."""
    store: Store = open_store(database, root)
    archive = Archive(
        storage,
        root / name / "spool",
        signer,
        shared_chain=DatabaseChain(store.db, writer_name(name), hold_s=hold_s),
        key_history=key_history,
    )
    try:
        if started:
            await archive.start()
        yield archive
    finally:
        if started:
            await archive.stop()
        store.close()


async def test_entries_a_writer_sequenced_and_never_stored_are_written_out_by_another(
    tmp_path: Path, database: str
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    signer = Signer.generate()
    # The first writer dies (its machine with it) after sequencing three entries, before its
    # uploader stored them: only the database has them.
    async with writer(tmp_path, "lost", database, storage, signer, started=False) as lost:
        for n in range(3):
            await lost.append("c1", "note", {"text": f"before the loss {n}"})
    shutil.rmtree(tmp_path / "lost")
    assert storage.list(layout.chain_prefix("c1")) == []
    async with writer(tmp_path, "other", database, storage, signer) as other:
        await other.append("c1", "note", {"text": "after the loss"})
        keys = await other.settled_keys("c1")
    entries = stored_entries_of(storage, "c1")
    assert [e.body["text"] for e in entries if e.kind == "note"] == [
        "before the loss 0",
        "before the loss 1",
        "before the loss 2",
        "after the loss",
    ]
    assert layout.checkpoint_key("c1", entries[-1].seq) in keys
    report = verify_case(storage, "c1")
    assert report.chain_entries == len(entries)


async def forge_next(store: Store, case_id: str, kind: str, body: dict[str, Any]) -> int:
    """What someone with the database but not the signing key can do: sequence a well-formed
    entry that links to the head, with a MAC they cannot compute."""
    forger = DatabaseChain(store.db, "forger")
    held = await forger.hold(case_id, -1)
    head = ChainEntry.from_json(parse_json(held.entries[-1].data))
    entry = next_entry(head, case_id, kind, head.at, CLOCK_SOURCE, body)
    await forger.commit(case_id, entry, canonical_json(entry.to_json()), "0" * 64)
    await forger.let_go(case_id)
    return entry.seq


async def test_an_entry_sequenced_without_the_signing_key_is_flagged_by_the_next_one(
    tmp_path: Path, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    signer = Signer.generate()
    async with writer(tmp_path, "node", database, storage, signer) as node:
        await node.append("c1", "note", {"text": "genuine"})
        store = open_store(database, tmp_path)
        try:
            forged = await forge_next(store, "c1", "chat", {"text": "现场合格", "by": "forger"})
        finally:
            store.close()
        await node.append("c1", "note", {"text": "after"})
        await node.settled_keys("c1")
    entries = stored_entries_of(storage, "c1")
    assert [e.seq for e in entries] == list(range(len(entries)))
    [flag] = [e for e in entries if e.kind == "foreign_tail"]
    assert flag.seq == forged + 1
    assert (flag.body["first_seq"], flag.body["last_seq"]) == (forged, forged)
    assert (flag.body["trusted_seq"], flag.body["vouched_by"]) == (forged - 1, DATABASE_SOURCE)
    assert entries[flag.seq + 1].body["text"] == "after"
    assert "sequenced chain entries no Takan process wrote" in caplog.text


async def test_a_writer_whose_turn_lapsed_is_refused_and_leaves_nothing(
    tmp_path: Path, database: str
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    signer = Signer.generate()
    async with (
        writer(tmp_path, "slow", database, storage, signer, hold_s=0.3) as slow,
        writer(tmp_path, "fast", database, storage, signer) as fast,
    ):
        await slow.append("c1", "note", {"text": "first"})

        async def stall(case_id: str, kind: str, body: dict[str, Any]) -> None:
            if body.get("text") == "too late":
                # Stalled past its hold, holding the case: the other writer takes a turn.
                await asyncio.sleep(0.6)
                await fast.append("c1", "note", {"text": "taken over"})

        slow.fence = stall
        with pytest.raises(ChainRefused, match="hold lapsed"):
            await slow.append("c1", "note", {"text": "too late"})
        await slow.append("c1", "note", {"text": "in turn"})  # its next turn catches up
        await slow.settled_keys("c1")
    texts = [e.body["text"] for e in stored_entries_of(storage, "c1") if e.kind == "note"]
    assert texts == ["first", "taken over", "in turn"]
    spooled = [path.read_bytes() for path in (tmp_path / "slow").rglob("*.json")]
    assert not [data for data in spooled if b"too late" in data]
    verify_case(storage, "c1")


async def test_a_case_opens_after_a_restart_while_the_object_store_is_down(
    tmp_path: Path, database: str
) -> None:
    signer = Signer.generate()
    local = LocalStorage(tmp_path / "archive")
    async with writer(tmp_path, "node", database, local, signer) as node:
        await node.append("c1", "note", {"text": "before the restart"})
    # Restarted with the archive on an S3 endpoint nothing answers on: the head comes from
    # the database, the entry waits in the spool.
    down = MinioStorage(f"127.0.0.1:{free_port()}", "k", "s", "takan", secure=False)
    async with writer(tmp_path, "node", database, down, signer) as node:
        async with asyncio.timeout(10):
            await node.append("c1", "note", {"text": "while S3 is down"})
        spooled = [
            ChainEntry.from_json(parse_json(node._spool.get(key)))
            for key in await asyncio.to_thread(node.spooled_keys)
            if "/chain/" in key
        ]
    [entry] = [e for e in spooled if e.body.get("text") == "while S3 is down"]
    head = stored_entries_of(local, "c1")[-1]
    assert (entry.seq, entry.prev) == (head.seq + 1, head.hash)


class BlippingStorage(LocalStorage):
    """The archive, with the store out of reach for the next ``blips`` checkpoint reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.blips = 0

    def get(self, key: str) -> bytes:
        if "/checkpoints/" in key and self.blips > 0:
            self.blips -= 1
            raise StorageError(f"connection refused reading {key}")
        return super().get(key)


async def test_after_a_key_rotation_a_checkpoint_vouches_for_the_old_rows_even_past_a_blip(
    tmp_path: Path, database: str
) -> None:
    old = Signer.generate()
    storage = BlippingStorage(tmp_path / "archive")
    async with writer(tmp_path, "node", database, storage, old) as node:
        await node.append("c1", "note", {"text": "under the old key"})
        await node.checkpoint("c1")
        await node.drain()
    new = Signer.generate()
    history = KeyHistory.starting_with(old.public_key_bytes).rotated(old, new, utc_iso(0))
    # Restarted with the new key, the old rows' MACs no longer hold: the checkpoint the old
    # key signed vouches for them. The store out of reach while it is read must refuse the
    # append, never flag the genuine rows as foreign (a flag is chained for good).
    storage.blips = 10
    async with writer(tmp_path, "node", database, storage, new, key_history=history) as node:
        with pytest.raises(StorageError):
            await node.append("c1", "note", {"text": "while the store blips"})
        storage.blips = 0
        await node.append("c1", "note", {"text": "under the new key"})
        assert node.flag_of("c1") is None
        await node.settled_keys("c1")
    entries = stored_entries_of(storage, "c1")
    assert not [e for e in entries if e.kind == "foreign_tail"], [e.kind for e in entries]
    assert [e.body.get("text") for e in entries if e.kind == "note"] == [
        "under the old key",
        "under the new key",
    ]
    verify_case(storage, "c1")


def test_the_database_noted_in_the_spool_carries_no_password() -> None:
    assert (
        url_without_password("postgresql://takan:s3cret@db.example:5432/takan")
        == "postgresql://takan@db.example:5432/takan"
    )
    assert url_without_password("postgresql:///takan?host=/run/pg") == (
        "postgresql:///takan?host=/run/pg"
    )

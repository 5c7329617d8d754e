"""Takan never signs or builds on a chain tail it cannot account for: an insider's appended
entries, or a cut-off end, are flagged in the chain, and every later signature says so."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from recorder import layout
from recorder.archive import Archive
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, next_entry
from recorder.errors import IntegrityError
from recorder.head_ledger import HeadRecord
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case

CASE = "case-9"
CLOCK = "server-system-clock"


def stored_entries(storage: LocalStorage) -> list[ChainEntry]:
    keys = storage.list(layout.chain_prefix(CASE))
    return [ChainEntry.from_json(parse_json(storage.get(key))) for key in keys]


def forge_tail(storage: LocalStorage, count: int = 2) -> list[int]:
    """Append correctly hashed and linked entries, as an insider with write access can."""
    head = stored_entries(storage)[-1]
    seqs = []
    for number in range(count):
        head = next_entry(head, CASE, "conclusion", head.at, CLOCK, {"forged": number})
        data = canonical_json(head.to_json())
        storage.put(layout.chain_entry_key(CASE, head.seq), data, hashlib.sha256(data).hexdigest())
        seqs.append(head.seq)
    return seqs


async def run(archive: Archive, *kinds: str) -> None:
    await archive.start()
    try:
        for kind in kinds:
            await archive.append(CASE, kind, {"n": kind})
        await archive.checkpoint(CASE)
        await archive.drain()
    finally:
        await archive.stop()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


async def test_a_forged_tail_is_flagged_not_signed_after_a_restart(
    tmp_path: Path, signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    await run(Archive(storage, tmp_path / "spool", signer), "one", "two")
    forged = forge_tail(storage)

    restarted = Archive(storage, tmp_path / "spool", signer)
    with caplog.at_level(logging.ERROR):
        await run(restarted, "three")  # appends, then checkpoints: the 30 s timer's work
    assert any(r.levelno == logging.ERROR and "account for" in r.message for r in caplog.records)
    words = restarted.flag_of(CASE)
    assert words is not None
    assert f"chain entries {forged[0]} to {forged[-1]}" in words

    kinds = [e.kind for e in stored_entries(storage)]
    assert kinds[forged[-1] + 1] == "foreign_tail"
    assert kinds[-1] == "three"  # recording went on after the flag
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, CASE, trusted_keys={signer.fingerprint})
    assert failed.value.where == f"chain entries {forged[0]} to {forged[-1]}"
    assert "not written by Takan" in failed.value.reason
    assert f"flagged by chain entry {forged[-1] + 1}" in failed.value.reason


async def test_a_forged_tail_is_flagged_even_by_a_process_without_the_ledger(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    await run(Archive(storage, tmp_path / "spool", signer), "one")
    forged = forge_tail(storage, 1)
    elsewhere = Archive(storage, tmp_path / "other-spool", signer)  # e.g. `takan export`
    await elsewhere.start()
    try:
        await elsewhere.open_case(CASE)
        assert elsewhere.flag_of(CASE) is not None
        assert f"chain entry {forged[0]}:" in (elsewhere.flag_of(CASE) or "")
    finally:
        await elsewhere.stop()


async def test_what_the_server_itself_wrote_after_its_last_checkpoint_is_not_foreign(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    archive = Archive(storage, tmp_path / "spool", signer, checkpoint_interval_s=3600)
    await archive.start()
    await archive.append(CASE, "one", {})
    await archive.checkpoint(CASE)
    await archive.append(CASE, "unsigned", {})  # then the process dies: no stop, no checkpoint
    await archive.drain()
    archive.ledger.close()

    restarted = Archive(storage, tmp_path / "spool", signer)
    await run(restarted, "after")
    assert restarted.flag_of(CASE) is None
    verify_case(storage, CASE, trusted_keys={signer.fingerprint})


async def test_an_entry_lost_in_flight_by_a_crash_is_not_a_cut(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    await run(Archive(storage, tmp_path / "spool", signer), "one")
    head = stored_entries(storage)[-1]
    restarted = Archive(storage, tmp_path / "spool", signer)
    restarted.ledger.open()
    # The ledger line of the next entry was written; the entry never was.
    restarted.ledger.record(HeadRecord(CASE, head.seq + 1, "e" * 64, head.hash))
    await run(restarted, "after")
    assert restarted.flag_of(CASE) is None
    verify_case(storage, CASE, trusted_keys={signer.fingerprint})


async def test_cutting_off_the_end_with_its_checkpoints_is_flagged_as_a_cut(
    tmp_path: Path, signer: Signer
) -> None:
    root = tmp_path / "archive"
    storage = LocalStorage(root)
    await run(Archive(storage, tmp_path / "spool", signer), "one", "two", "three", "four")
    entries = stored_entries(storage)
    last = entries[-1].seq
    for seq in (last, last - 1):
        (root / layout.chain_entry_key(CASE, seq)).unlink()
        (root / layout.checkpoint_key(CASE, seq)).unlink(missing_ok=True)
    # Without Takan's memory, verify sees a shorter, consistent chain (after a crash, it may be).
    verify_case(storage, CASE, require_signed_tail=False)

    restarted = Archive(storage, tmp_path / "spool", signer)
    await run(restarted, "after")
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, CASE)
    assert failed.value.where == f"chain entries {last - 1} to {last}", failed.value
    assert "the chain was cut" in failed.value.reason


async def test_a_ledger_line_without_the_key_s_mac_is_ignored(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    await run(Archive(storage, tmp_path / "spool", signer), "one")
    forged = forge_tail(storage, 1)
    entry = stored_entries(storage)[-1]
    ledger = tmp_path / "spool" / "heads.log"
    with ledger.open("a") as handle:  # the insider vouches for the forgery in the ledger
        handle.write(f"{CASE} {entry.seq} {entry.hash} {entry.prev} {'0' * 64}\n")
    restarted = Archive(storage, tmp_path / "spool", signer)
    await run(restarted, "after")
    assert restarted.ledger.rejected_lines == 1
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, CASE)
    assert failed.value.where == f"chain entry {forged[0]}"


@contextlib.asynccontextmanager
async def holding(storage: LocalStorage, spool: Path, signer: Signer) -> AsyncIterator[Archive]:
    """A started archive that has chained and stored one entry of the case."""
    archive = Archive(storage, spool, signer)
    await archive.start()
    try:
        await archive.append(CASE, "one", {})
        await archive.drain()
        yield archive
    finally:
        await archive.stop()


async def test_entries_appearing_while_the_server_holds_the_case_are_flagged(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    async with holding(storage, tmp_path / "spool", signer) as archive:
        await archive.checkpoint(CASE)
        await archive.drain()
        forged = forge_tail(storage, 1)
        keys = await archive.settled_keys(CASE)  # what integrity and export list
        assert layout.checkpoint_key(CASE, forged[0] + 1) in keys  # the flag, signed
        await archive.append(CASE, "after", {})
        await archive.checkpoint(CASE)
        await archive.drain()
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, CASE)
    assert failed.value.where == f"chain entry {forged[0]}"


async def test_a_foreign_entry_at_the_next_key_is_found_and_flagged_before_the_append(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    async with holding(storage, tmp_path / "spool", signer) as archive:
        [forged] = forge_tail(storage, 1)  # lands at the seq this server writes next
        entry = await archive.append(CASE, "two", {})
        async with asyncio.timeout(10):
            await archive.drain()
        # Nothing was overwritten or set aside: the forged entry is named by a flag chained
        # right after it, and the append links after the flag.
        kinds = [e.kind for e in stored_entries(storage)]
        assert kinds[forged:] == ["conclusion", "foreign_tail", "two"]
        assert entry.seq == forged + 2
        assert CASE in await asyncio.to_thread(archive.flagged_cases)
        assert not (tmp_path / "spool" / "conflicts").exists()


async def test_a_foreign_object_at_a_later_key_does_not_stall_uploads(
    tmp_path: Path, signer: Signer
) -> None:
    storage = LocalStorage(tmp_path / "archive")
    async with holding(storage, tmp_path / "spool", signer) as archive:
        # An insider writes the entry after next: the append before it sees nothing yet.
        head = stored_entries(storage)[-1]
        ahead = next_entry(head, CASE, "two", head.at, CLOCK, {})
        forged = next_entry(ahead, CASE, "conclusion", head.at, CLOCK, {"forged": 1})
        data = canonical_json(forged.to_json())
        storage.put(
            layout.chain_entry_key(CASE, forged.seq), data, hashlib.sha256(data).hexdigest()
        )
        await archive.append(CASE, "two", {})
        entry = await archive.append(CASE, "three", {})
        assert entry.seq == forged.seq
        async with asyncio.timeout(10):
            await archive.drain()  # the conflict is set aside, not retried forever
        await archive.append("other-case", "still", {})
        async with asyncio.timeout(10):
            await archive.drain()
        assert storage.list(layout.chain_prefix("other-case"))
        flagged = await asyncio.to_thread(archive.flagged_cases)
        assert CASE in flagged
        kept = tmp_path / "spool" / "conflicts" / layout.chain_entry_key(CASE, entry.seq)
        assert kept.read_bytes() == canonical_json(entry.to_json())

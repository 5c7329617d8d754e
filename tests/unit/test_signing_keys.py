"""Trust is explicit: only keys the chain records, the server's history trusts, and still in use
may sign; a rotation is a chained event signed by the key before it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from recorder import layout
from recorder.archive import Archive
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry
from recorder.conclusion import Conclusion
from recorder.errors import IntegrityError
from recorder.key_history import KeyHistory
from recorder.manifest import sign_checkpoint
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from tests.unit.evidence_fixture import build_case, put

CASE = "case-1"


def failure(storage: LocalStorage, **kwargs: object) -> IntegrityError:
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, CASE, **kwargs)  # type: ignore[arg-type]
    return failed.value


def drop_key(storage: LocalStorage, signer: Signer) -> str:
    key = layout.public_key_key(CASE, signer.fingerprint)
    put(storage, key, signer.public_key_bytes)
    return key


def test_the_first_entry_records_the_signing_key_and_verify_names_it(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    signer = Signer.generate()
    build_case(storage, signer)
    report = verify_case(storage, CASE)
    assert [(use.fingerprint, use.recorded_by) for use in report.signers] == [
        (signer.fingerprint, 0)
    ]
    assert report.signers[0].checkpoints == report.checkpoints
    assert report.signers[0].manifests == 2
    assert not report.pinned


def test_a_key_file_nothing_records_is_named(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    build_case(storage, Signer.generate())
    dropped = drop_key(storage, Signer.generate())
    assert failure(storage).where == dropped
    assert "not referenced by any chain entry" in failure(storage).reason


def test_a_checkpoint_by_a_dropped_key_is_named_even_with_its_key_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    builder = build_case(storage, Signer.generate())
    forger = Signer.generate()
    drop_key(storage, forger)
    forged = builder.append("chat", {"text": "forged"})
    signed = sign_checkpoint(forger, CASE, forged.seq, forged.hash, builder.tick())
    checkpoint = layout.checkpoint_key(CASE, forged.seq)
    put(storage, checkpoint, canonical_json(signed))
    found = failure(storage)
    assert found.where == checkpoint
    assert found.reason == f"signed by {forger.fingerprint}, which no chain entry records"


def test_a_conclusion_signed_by_a_forged_key_does_not_count(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    genuine = Signer.generate()
    builder = build_case(storage, genuine)
    forger = Signer.generate()
    drop_key(storage, forger)
    conclusion = Conclusion("a" * 32, "fail", "forged", "inspector1", builder.tick(), None)
    body = conclusion.signed_body(forger)
    entry = builder.append("conclusion", body)
    builder.checkpoint()
    found = failure(storage, trusted_keys={genuine.fingerprint})
    assert found.where == f"chain entry {entry.seq}"
    assert "which no chain entry records" in found.reason


def test_a_second_key_chained_without_a_rotation_is_named(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    builder = build_case(storage, Signer.generate())
    forger = Signer.generate()
    key = drop_key(storage, forger)
    public = forger.public_key_bytes
    entry = builder.append(
        "signing_key",
        {
            "fingerprint": forger.fingerprint,
            "key": key,
            "sha256": hashlib.sha256(public).hexdigest(),
            "size": len(public),
        },
    )
    found = failure(storage)
    assert found.where == f"chain entry {entry.seq}"
    assert "second signing key" in found.reason


def test_a_pinned_key_that_did_not_sign_names_the_case_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    signer = Signer.generate()
    build_case(storage, signer)
    found = failure(storage, trusted_keys={Signer.generate().fingerprint})
    assert found.where == layout.public_key_key(CASE, signer.fingerprint)
    assert "not one of the trusted signing keys" in found.reason


async def record(archive: Archive, kind: str) -> None:
    await archive.start()
    try:
        await archive.append(CASE, kind, {"n": kind})
        await archive.checkpoint(CASE)
        await archive.drain()
    finally:
        await archive.stop()


async def rotated_case(tmp_path: Path) -> tuple[LocalStorage, Signer, Signer, KeyHistory]:
    """A case recorded by one key, then by the next one the history rotated to."""
    storage = LocalStorage(tmp_path / "archive")
    old, new = Signer.generate(), Signer.generate()
    history = KeyHistory.starting_with(old.public_key_bytes)
    await record(Archive(storage, tmp_path / "spool", old, key_history=history), "before")
    rotated = history.rotated(old, new, "2026-12-06T10:00:00.000Z")
    await record(Archive(storage, tmp_path / "spool", new, key_history=rotated), "after")
    return storage, old, new, rotated


async def test_a_rotation_is_chained_signed_by_the_previous_key(tmp_path: Path) -> None:
    storage, old, new, rotated = await rotated_case(tmp_path)

    report = verify_case(storage, CASE, trusted_keys={old.fingerprint})
    uses = {use.fingerprint: use for use in report.signers}
    assert uses[new.fingerprint].rotated_from == old.fingerprint
    assert uses[old.fingerprint].retired_at == uses[new.fingerprint].recorded_by
    assert uses[old.fingerprint].checkpoints == uses[new.fingerprint].checkpoints == 1
    verify_case(storage, CASE, trusted_keys=set(rotated.fingerprints))
    verify_case(storage, CASE)  # the first key, and where it handed over
    # Pinning only the new key does not make the old key's signatures count.
    assert "not one of the trusted" in failure(storage, trusted_keys={new.fingerprint}).reason


async def test_the_retired_key_signs_nothing_after_the_rotation(tmp_path: Path) -> None:
    storage, old, _, _ = await rotated_case(tmp_path)
    head = verify_case(storage, CASE).chain_entries - 1
    entry = layout.chain_entry_key(CASE, head)
    last = ChainEntry.from_json(parse_json(storage.get(entry)))
    late = layout.checkpoint_key(CASE, head)
    (tmp_path / "archive" / late).chmod(0o644)
    signed = sign_checkpoint(old, CASE, head, last.hash, "2026-12-06T11:00:00.000Z")
    (tmp_path / "archive" / late).write_bytes(canonical_json(signed))
    found = failure(storage)
    assert found.where == late
    assert "rotated away from it" in found.reason


def test_a_history_refuses_a_rotation_not_signed_by_the_key_before() -> None:
    old, new, stranger = Signer.generate(), Signer.generate(), Signer.generate()
    history = KeyHistory.starting_with(old.public_key_bytes)
    with pytest.raises(ValueError, match="not the current key"):
        history.rotated(stranger, new, "2026-12-06T10:00:00.000Z")
    rotated = history.rotated(old, new, "2026-12-06T10:00:00.000Z")
    document = rotated.to_json()
    assert KeyHistory.from_json(document) == rotated
    document["rotations"][0]["at"] = "2026-12-07T10:00:00.000Z"
    with pytest.raises(ValueError, match="not signed by the key before it"):
        KeyHistory.from_json(document)


def test_an_archive_refuses_a_key_that_is_not_the_history_s_current(tmp_path: Path) -> None:
    old, new = Signer.generate(), Signer.generate()
    history = KeyHistory.starting_with(old.public_key_bytes)
    with pytest.raises(ValueError, match="not the key history's current key"):
        Archive(LocalStorage(tmp_path), tmp_path / "spool", new, key_history=history)

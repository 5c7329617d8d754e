"""What an insider with write access to the archive tries, against the real server: a forged
tail is never laundered into a signed one, and the server's own key history is what it trusts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, next_entry
from recorder.conclusion import Conclusion
from recorder.manifest import sign_checkpoint
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.tail import LEDGER_SOURCE
from recorder.verify import verify_case
from tests.conftest import LiveServer, running_server
from tests.integration.evidence_helpers import stored_entries_of
from tests.integration.real_archive import RealArchive, RealCase
from tests.integration.recorded_case import record_inspection, takan


def archive_of(data_dir: Path) -> LocalStorage:
    return LocalStorage(data_dir / "archive")


def head_of(storage: LocalStorage, case_id: str) -> ChainEntry:
    last = storage.list(layout.chain_prefix(case_id))[-1]
    return ChainEntry.from_json(parse_json(storage.get(last)))


def append_forged(storage: LocalStorage, case_id: str, kind: str, body: dict[str, object]) -> int:
    """A correctly hashed and linked entry, written straight into the archive (no key needed)."""
    head = head_of(storage, case_id)
    forged = next_entry(head, case_id, kind, head.at, head.clock, body)
    data = canonical_json(forged.to_json())
    storage.put(layout.chain_entry_key(case_id, forged.seq), data, hashlib.sha256(data).hexdigest())
    return forged.seq


async def test_a_forged_tail_survives_no_restart_checkpoint_integrity_or_export(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        invite = await record_inspection(server, seconds=2)
        case_id = invite["case_id"]
        fingerprint = server.services.archive.signer.fingerprint
    storage = archive_of(data)
    forged = append_forged(storage, case_id, "chat", {"text": "the site passed", "by": "forger"})

    async with running_server(data) as server:  # the restart
        await server.services.archive.checkpoint(case_id)  # what the 30 s timer does
        status, integrity = await server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert status == 200, integrity
        assert integrity["state"] == "broken"
        assert integrity["where"] == f"chain entry {forged}"
        assert "not written by Takan" in integrity["reason"]
        assert f"chain entry {forged}" in integrity["flag"]
        status, body = await server.request("GET", f"/api/cases/{case_id}/export", "auditor1")
        assert (status, body["error"]) == (409, "case_flagged"), body
        status, flagged = await server.request("GET", "/api/admin/flagged-cases", "admin1")
        assert status == 200
        assert [c["case_id"] for c in flagged["cases"]] == [case_id]
        status, _ = await server.request("GET", "/api/admin/flagged-cases", "inspector1")
        assert status == 403

    code, out, _ = await takan("verify", case_id, "--data", str(data), "--key", fingerprint)
    assert code == 1
    assert out.startswith(f"FAILED: chain entry {forged}: not written by Takan"), out
    code, _, err = await takan(
        "export", case_id, "--data", str(data), "-o", str(tmp_path / "x.zip")
    )
    assert code == 1
    assert "refusing to export" in err
    assert f"chain entry {forged}" in err
    assert not (tmp_path / "x.zip").exists()


async def test_a_conclusion_signed_by_a_dropped_key_is_broken_on_the_case_page(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        invite = await record_inspection(server, seconds=0)
        case_id = invite["case_id"]
        storage = archive_of(data)
        forger = Signer.generate()
        storage.put(
            layout.public_key_key(case_id, forger.fingerprint),
            forger.public_key_bytes,
            hashlib.sha256(forger.public_key_bytes).hexdigest(),
        )
        conclusion = Conclusion(
            invite["inspection_id"],
            "fail",
            "forged",
            "inspector1",
            head_of(storage, case_id).at,
            None,
        )
        append_forged(storage, case_id, "conclusion", conclusion.signed_body(forger))
        # A restarted server would find it; this one finds the forgery by verifying its listing.
        status, integrity = await server.request(
            "GET", f"/api/cases/{case_id}/integrity", "auditor1"
        )
        assert status == 200
        assert integrity["state"] == "broken"
        assert forger.fingerprint not in (integrity.get("key_fingerprint") or "")


async def test_verify_without_a_key_names_every_key_and_what_it_signed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        invite = await record_inspection(server, seconds=0)
        fingerprint = server.services.archive.signer.fingerprint
    code, out, _ = await takan("verify", invite["case_id"], "--data", str(data))
    assert code == 0, out
    assert f"    {fingerprint}  (chain entry 0: the case's first key)" in out
    assert "trust        the case's first key, unpinned" in out
    code, out, _ = await takan(
        "verify", invite["case_id"], "--data", str(data), "--key", fingerprint
    )
    assert code == 0, out
    assert "unpinned" not in out


async def test_a_rotated_key_is_chained_and_trusted_from_the_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        invite = await record_inspection(server, seconds=0)
        first = server.services.archive.signer.fingerprint
    code, out, err = await takan("key", "rotate", "--data", str(data))
    assert code == 0, err
    assert out.startswith(f"rotated: {first} -> sha256:")
    second = out.split(" -> ")[1].split()[0]
    async with running_server(data) as server:
        status, keys = await server.request("GET", "/api/keys")
        assert [k["fingerprint"] for k in keys["keys"]] == [first, second]
        assert [k["current"] for k in keys["keys"]] == [False, True]
        await record_inspection(server, seconds=0, case_id=invite["case_id"])
        status, integrity = await server.request(
            "GET", f"/api/cases/{invite['case_id']}/integrity", "auditor1"
        )
        assert (status, integrity["state"]) == (200, "verified"), integrity
    code, out, _ = await takan("verify", invite["case_id"], "--data", str(data), "--key", first)
    assert code == 0, out
    assert f"rotated from {first}" in out
    assert "WARNING      2 keys sign this case" in out


# The same insider against the real archive of the tamper suite (tests/integration/conftest.py).


async def audited(server: LiveServer, case_id: str) -> dict[str, Any]:
    """The case page's integrity answer, which first signs the head (a consistent cut)."""
    status, integrity = await server.request("GET", f"/api/cases/{case_id}/integrity", "auditor1")
    assert status == 200, integrity
    return dict(integrity)


async def assert_refused_everywhere(
    server: LiveServer, data: Path, case_id: str, where: str, words: str
) -> None:
    """Integrity names ``where``; the HTTP export is refused; so is the CLI export."""
    integrity = await audited(server, case_id)
    assert (integrity["state"], integrity["where"]) == ("broken", where), integrity
    assert words in integrity["reason"], integrity
    assert integrity["flag"] is not None
    assert where.split(" ", 1)[1] in integrity["flag"]
    status, body = await server.request("GET", f"/api/cases/{case_id}/export", "auditor1")
    assert (status, body["error"]) == (409, "case_flagged"), body
    status, flagged = await server.request("GET", "/api/admin/flagged-cases", "admin1")
    assert case_id in [c["case_id"] for c in flagged["cases"]]


async def assert_named_offline(data: Path, case_id: str, fingerprint: str, where: str) -> None:
    code, out, _ = await takan("verify", case_id, "--data", str(data), "--key", fingerprint)
    assert code == 1
    assert out.startswith(f"FAILED: {where}: "), out
    code, _, err = await takan("export", case_id, "--data", str(data), "-o", str(data / "x.zip"))
    assert (code, "refusing to export" in err) == (1, True), err
    assert not (data / "x.zip").exists()


def cut(storage: LocalStorage, case: RealCase, first: int) -> None:
    """Entries ``first``… removed with every checkpoint covering them and every object they
    record: with the archive alone, what a crash after entry ``first - 1`` leaves."""
    root = storage.root
    # What the copy holds, not only what the pristine read saw: a loaded machine may have
    # stored a late timestamp entry after that read.
    for entry in stored_entries_of(storage, case.case_id)[first:]:
        (root / layout.chain_entry_key(case.case_id, entry.seq)).unlink()
        if isinstance(entry.body.get("key"), str) and "sha256" in entry.body:
            (root / entry.body["key"]).unlink(missing_ok=True)
    for key in storage.list(layout.checkpoint_prefix(case.case_id)):
        seq = layout.parse_checkpoint_key(case.case_id, key)
        if seq is not None and seq >= first:
            (root / key).unlink()


@pytest.mark.parametrize("end", ["signed", "unsigned"])
async def test_a_cut_off_tail_is_flagged_as_chain_cut_after_a_restart(
    real_archive: RealArchive, tampered: Path, end: str
) -> None:
    case = real_archive.full
    storage = archive_of(tampered)
    if end == "signed":  # below the last signature: its tokens are a tail of their own
        first = [s for s in case.checkpoint_seqs if s < case.last_signed][-1] + 1
    else:  # at least two entries gone: one is what a crash may lose in flight
        first = [s for s in range(case.last_seq - 1) if s not in case.anchor_seqs][-1] + 1
    cut(storage, case, first)
    assert verify_case(storage, case.case_id, require_signed_tail=False).chain_entries == first
    where = (
        f"chain entries {first} to {case.last_seq}"
        if first < case.last_seq
        else (f"chain entry {first}")
    )
    async with running_server(tampered) as server:
        await assert_refused_everywhere(server, tampered, case.case_id, where, "the chain was cut")
    kinds = [e.kind for e in stored_entries_of(storage, case.case_id)]
    assert kinds[first] == "chain_cut"
    await assert_named_offline(tampered, case.case_id, real_archive.fingerprint, where)


@pytest.mark.parametrize("ledger", ["kept", "deleted by the insider"])
async def test_a_forged_tail_recording_a_planted_object_is_flagged_after_a_restart(
    real_archive: RealArchive, tampered: Path, ledger: str
) -> None:
    """Two linked entries, one recording a planted snapshot; without the head ledger the
    server still vouches only up to its last checkpoint."""
    case = real_archive.full
    storage = archive_of(tampered)
    snapshot = next(e for e in case.entries if e.kind == "snapshot")
    planted = layout.snapshot_key(case.case_id, case.inspection_id, "b" * 32)
    data = storage.get(snapshot.body["key"])
    storage.put(planted, data, hashlib.sha256(data).hexdigest())
    body = {**snapshot.body, "key": planted, "snapshot_id": "b" * 32}
    forged = append_forged(storage, case.case_id, "snapshot", body)
    last = append_forged(storage, case.case_id, "chat", {"text": "现场合格", "by": "forger"})
    if ledger != "kept":
        (tampered / "spool" / "heads.log").unlink()
    # Without its ledger the server vouches only up to its last checkpoint, so the timestamp
    # entries it chained after that are not vouched for either.
    first = forged if ledger == "kept" else case.checkpoint_seqs[-1] + 1
    where = f"chain entries {first} to {last}"
    async with running_server(tampered) as server:
        await server.services.archive.checkpoint(case.case_id)  # what the 30 s timer does
        await assert_refused_everywhere(server, tampered, case.case_id, where, "not written")
    [flag] = [e for e in stored_entries_of(storage, case.case_id) if e.kind == "foreign_tail"]
    assert flag.seq == last + 1
    assert (flag.body["first_seq"], flag.body["last_seq"]) == (first, last)
    assert flag.body["trusted_seq"] == first - 1
    vouched = layout.checkpoint_key(case.case_id, case.checkpoint_seqs[-1])
    # Both vouch for the same head when the ledger is kept; either may be named.
    assert flag.body["vouched_by"] in ({LEDGER_SOURCE, vouched} if ledger == "kept" else {vouched})
    await assert_named_offline(tampered, case.case_id, real_archive.fingerprint, where)


async def test_a_tail_replaced_by_forged_entries_is_flagged_from_the_last_checkpoint_left(
    real_archive: RealArchive, tampered: Path
) -> None:
    """The insider removes the last entries (their checkpoints and objects) and writes
    others, linked, at the same seqs: the ledger's head no longer matches, a checkpoint does."""
    case = real_archive.full
    storage = archive_of(tampered)
    kept = [s for s in case.checkpoint_seqs if s < case.last_signed][-1]
    cut(storage, case, kept + 1)
    forged = [
        append_forged(storage, case.case_id, "chat", {"text": f"forged {n}"})
        for n in range(case.last_seq - kept)
    ]
    assert forged[-1] == case.last_seq
    where = (
        f"chain entries {kept + 1} to {case.last_seq}"
        if kept + 1 < case.last_seq
        else f"chain entry {case.last_seq}"
    )
    async with running_server(tampered) as server:
        await assert_refused_everywhere(server, tampered, case.case_id, where, "not written")
    await assert_named_offline(tampered, case.case_id, real_archive.fingerprint, where)


async def test_a_forged_tail_under_a_dropped_key_s_checkpoint_is_not_trusted_by_a_restart(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = real_archive.full
    storage = archive_of(tampered)
    forger = Signer.generate()
    storage.put(
        layout.public_key_key(case.case_id, forger.fingerprint),
        forger.public_key_bytes,
        hashlib.sha256(forger.public_key_bytes).hexdigest(),
    )
    seq = append_forged(storage, case.case_id, "chat", {"text": "forged"})
    head = head_of(storage, case.case_id)
    signed = sign_checkpoint(forger, case.case_id, seq, head.hash, head.at)
    data = canonical_json(signed)
    forged_key = layout.checkpoint_key(case.case_id, seq)
    storage.put(forged_key, data, hashlib.sha256(data).hexdigest())
    async with running_server(tampered) as server:
        integrity = await audited(server, case.case_id)
        # A signature by a key no entry records fails at that document (docs/archive.md).
        assert (integrity["state"], integrity["where"]) == ("broken", forged_key), integrity
        assert "which no chain entry records" in integrity["reason"]
        assert f"chain entry {seq}" in (integrity["flag"] or ""), integrity
        status, body = await server.request("GET", f"/api/cases/{case.case_id}/export", "auditor1")
        assert (status, body["error"]) == (409, "case_flagged"), body
    flags = [e for e in stored_entries_of(storage, case.case_id) if e.kind == "foreign_tail"]
    assert [(f.body["first_seq"], f.body["trusted_seq"]) for f in flags] == [(seq, seq - 1)]


async def test_a_cut_of_only_the_last_entry_looks_like_the_entry_a_crash_lost_in_flight(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Documented limit of the head ledger: it is written before each entry, so a ledger one
    entry ahead whose ``prev`` is the stored head is what a crash between the two leaves. An
    insider who removes only the last entry, its checkpoint and its object is not seen."""
    case = real_archive.full
    storage = archive_of(tampered)
    cut(storage, case, case.last_seq)
    async with running_server(tampered) as server:
        integrity = await audited(server, case.case_id)
        assert (integrity["state"], integrity["flag"]) == ("verified", None), integrity

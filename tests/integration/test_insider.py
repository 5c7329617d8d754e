"""What an insider with write access to the archive tries, against the real server: a forged
tail is never laundered into a signed one, and the server's own key history is what it trusts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, next_entry
from recorder.conclusion import Conclusion
from recorder.signing import Signer
from recorder.storage import LocalStorage
from tests.conftest import running_server
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

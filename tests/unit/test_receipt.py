"""Receipts: signed, parsed in any spelling, and checked against an archive by takan verify."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from recorder import layout
from recorder.canonical import canonical_json
from recorder.errors import IntegrityError
from recorder.receipt import (
    Receipt,
    ReceiptTimestamp,
    SignedReceipt,
    check_receipt,
    find_timestamp,
    parse_receipt,
    sign_receipt,
    verify_receipt_signature,
)
from recorder.signing import Signer
from recorder.storage import LocalStorage
from server.cli.verify import add_verify_parser, run_verify
from tests.unit.evidence_fixture import INSPECTIONS, CaseBuilder, build_case

CASE = "case-1"


def receipt_of(builder: CaseBuilder, inspection_id: str, signer: Signer) -> SignedReceipt:
    """The receipt the server would issue for one of the fixture's inspections."""
    key = layout.manifest_key(CASE, inspection_id)
    entry = builder.entries[builder.manifest_heads[key] + 1]
    assert entry.kind == "manifest"
    receipt = Receipt(
        case_id=CASE,
        inspection_id=inspection_id,
        manifest_key=key,
        manifest_sha256=entry.body["sha256"],
        chain_head_seq=entry.seq,
        chain_head=entry.hash,
        started_at="2026-03-01T09:00:00.000Z",
        ended_at=entry.at,
        clock="server-system-clock",
        issued_at=entry.at,
        key_fingerprint=signer.fingerprint,
    )
    return sign_receipt(signer, receipt)


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


@pytest.fixture
def case(tmp_path: Path, signer: Signer) -> CaseBuilder:
    return build_case(LocalStorage(tmp_path / "archive"), signer, CASE)


def write(path: Path, signed: SignedReceipt) -> str:
    path.write_bytes(signed.to_bytes())
    return str(path)


def verify(tmp_path: Path, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="takan")
    add_verify_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = run_verify(parser.parse_args(["verify", CASE, "--data", str(tmp_path), *argv]), out)
    return code, out.getvalue()


def delete(root: Path, key: str) -> None:
    path = root / key
    path.parent.chmod(stat.S_IRWXU)
    path.unlink()


def cut_tail(root: Path, builder: CaseBuilder, from_seq: int) -> None:
    """Delete chain entries from ``from_seq`` on, the checkpoints signing them and the objects
    they record, as an insider with the archive's directory would."""
    for entry in builder.entries[from_seq:]:
        delete(root, layout.chain_entry_key(CASE, entry.seq))
        if isinstance(entry.body.get("key"), str):
            delete(root, entry.body["key"])
    for seq in builder.checkpoint_seqs:
        if seq >= from_seq:
            delete(root, layout.checkpoint_key(CASE, seq))


# the document


def test_receipt_round_trips_and_its_signature_verifies(case: CaseBuilder, signer: Signer) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    again = parse_receipt(signed.to_bytes(), "r")
    assert again == signed
    verify_receipt_signature(signer.public_key_bytes, again, "r")
    assert json.loads(signed.to_bytes())["signature"] == signed.signature


def test_receipt_in_another_json_spelling_still_verifies(case: CaseBuilder, signer: Signer) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    pretty = json.dumps(json.loads(signed.to_bytes()), indent=2).encode()
    verify_receipt_signature(signer.public_key_bytes, parse_receipt(pretty, "r"), "r")


def test_changed_receipt_fails_its_signature_naming_it(case: CaseBuilder, signer: Signer) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    forged = dataclasses.replace(
        signed, receipt=dataclasses.replace(signed.receipt, chain_head_seq=3)
    )
    with pytest.raises(IntegrityError) as failed:
        verify_receipt_signature(signer.public_key_bytes, forged, "receipt r.json")
    assert failed.value.where == "receipt r.json"
    assert "signature does not verify" in failed.value.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("signature"), "missing ['signature']"),
        (lambda d: d["receipt"].pop("chain_head"), "missing ['chain_head']"),
        (lambda d: d["receipt"].update(extra=1), "unexpected ['extra']"),
        (lambda d: d["receipt"].update(manifest_key="cases/case-1/x.json"), "manifest_key"),
        (lambda d: d["receipt"].update(ended_at="2020-01-01T00:00:00.000Z"), "before started"),
        (lambda d: d.update(signature="AAAA"), "signature"),
    ],
)
def test_malformed_receipt_is_refused_naming_it(
    case: CaseBuilder, signer: Signer, change: object, reason: str
) -> None:
    document = json.loads(receipt_of(case, INSPECTIONS[1], signer).to_bytes())
    change(document)  # type: ignore[operator]
    with pytest.raises(IntegrityError) as failed:
        parse_receipt(json.dumps(document).encode(), "receipt r.json")
    assert failed.value.where == "receipt r.json"
    assert reason in failed.value.reason


def test_timestamp_token_travels_inside_the_signed_receipt(
    case: CaseBuilder, signer: Signer
) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    stamp = ReceiptTimestamp.of(f"cases/{CASE}/timestamps/000001.tsr", os.urandom(1500))
    with_token = sign_receipt(signer, dataclasses.replace(signed.receipt, timestamp=stamp))
    parsed = parse_receipt(with_token.to_bytes(), "r")
    assert parsed.receipt.timestamp is not None
    assert parsed.receipt.timestamp.token_bytes() == stamp.token_bytes()
    document = json.loads(with_token.to_bytes())
    document["receipt"]["timestamp"]["sha256"] = "00" * 32
    with pytest.raises(IntegrityError, match="SHA-256"):
        parse_receipt(json.dumps(document).encode(), "r")


def test_find_timestamp_takes_the_chained_token_of_that_manifest(case: CaseBuilder) -> None:
    manifest = layout.manifest_key(CASE, INSPECTIONS[1])
    manifest_sha256 = case.entries[case.manifest_heads[manifest] + 1].body["sha256"]
    token = os.urandom(64)
    body = {
        "document": manifest,
        "document_sha256": manifest_sha256,
        "tsa": "http://tsa.example/",
        "gen_time": "2026-03-01T09:10:00Z",
        "key": f"cases/{CASE}/timestamps/0123/inspections/{INSPECTIONS[1]}/manifest.tsr",
        "sha256": hashlib.sha256(token).hexdigest(),
        "size": 64,
    }
    other = {**body, "document_sha256": "ff" * 32}
    entries = [case.append("timestamp", other), case.append("timestamp", body)]
    assert find_timestamp(entries, CASE, manifest, manifest_sha256) == (body["key"], body["sha256"])
    assert find_timestamp(entries[:1], CASE, manifest, manifest_sha256) is None


# against the archive


def test_receipt_of_an_intact_archive_passes_takan_verify(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    first = write(tmp_path / "first.json", receipt_of(case, INSPECTIONS[0], signer))
    last = write(tmp_path / "last.json", receipt_of(case, INSPECTIONS[1], signer))
    code, out = verify(tmp_path, "--receipt", first, "--receipt", last)
    assert code == 0, out
    assert "receipts     2, each still held" in out
    assert f"{last}: inspection {INSPECTIONS[1]}" in out


def test_cut_off_last_inspection_passes_alone_but_fails_the_receipt_naming_it(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    receipt = write(tmp_path / "last.json", receipt_of(case, INSPECTIONS[1], signer))
    manifest_entry = receipt_of(case, INSPECTIONS[1], signer).receipt.chain_head_seq
    # The whole last inspection: from its first entry (three before its segments) on.
    first = next(e.seq for e in case.entries if e.body.get("inspection_id") == INSPECTIONS[1])
    cut_tail(tmp_path / "archive", case, first)
    code, out = verify(tmp_path, "--allow-unsigned-tail")
    assert code == 0, out
    code, out = verify(tmp_path, "--allow-unsigned-tail", "--receipt", receipt)
    assert code == 1
    assert out == (
        f"FAILED: receipt {receipt}: chain entry {manifest_entry} is missing; the receipt issued"
        f" {case.entries[manifest_entry].at} says the chain reached it\n"
    )


def test_receipt_of_a_rewritten_entry_fails_naming_the_receipt(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    forged = dataclasses.replace(signed.receipt, chain_head="12" * 32)
    with pytest.raises(IntegrityError) as failed:
        check_receipt(
            case.storage,
            CASE,
            sign_receipt(signer, forged),
            {signer.fingerprint: None},
            "receipt r",
        )
    assert failed.value.where == "receipt r"
    assert f"has hash {signed.receipt.chain_head}" in failed.value.reason


def test_receipt_signed_by_a_key_that_does_not_sign_the_case_fails_naming_it(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    stranger = Signer.generate()
    theirs = dataclasses.replace(
        receipt_of(case, INSPECTIONS[1], signer).receipt, key_fingerprint=stranger.fingerprint
    )
    receipt = write(tmp_path / "r.json", sign_receipt(stranger, theirs))
    code, out = verify(tmp_path, "--receipt", receipt)
    assert code == 1
    assert out == (
        f"FAILED: receipt {receipt}: is signed by key {stranger.fingerprint}, which does not"
        " sign this case\n"
    )


def test_receipt_with_a_bad_signature_fails_naming_it(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    document = json.loads(receipt_of(case, INSPECTIONS[1], signer).to_bytes())
    document["receipt"]["issued_at"] = "2030-01-01T00:00:00.000Z"
    path = tmp_path / "r.json"
    path.write_bytes(canonical_json(document))
    code, out = verify(tmp_path, "--receipt", str(path))
    assert code == 1
    assert out.startswith(f"FAILED: receipt {path}: signature does not verify with key")


def test_receipt_of_another_case_or_no_receipt_at_all_is_named(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    path = tmp_path / "not-a-receipt.json"
    path.write_text('{"hello": 1}')
    code, out = verify(tmp_path, "--receipt", str(path))
    assert code == 1
    assert out.startswith(f"FAILED: receipt {path}: not a valid signed receipt")
    code, _ = verify(tmp_path, "--receipt", str(tmp_path / "absent.json"))
    assert code == 2


def test_removed_manifest_fails_the_receipt_naming_it(
    case: CaseBuilder, signer: Signer, tmp_path: Path
) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    manifest = tmp_path / "archive" / signed.receipt.manifest_key
    manifest.chmod(stat.S_IRUSR | stat.S_IWUSR)
    manifest.write_bytes(b"{}")
    with pytest.raises(IntegrityError) as failed:
        check_receipt(case.storage, CASE, signed, {signer.fingerprint: None}, "receipt r")
    assert failed.value.where == "receipt r"
    assert failed.value.reason.startswith(f"{signed.receipt.manifest_key} has SHA-256")


def test_receipt_signed_by_a_key_retired_before_its_entry_fails_naming_it(
    case: CaseBuilder, signer: Signer
) -> None:
    signed = receipt_of(case, INSPECTIONS[1], signer)
    seq = signed.receipt.chain_head_seq
    check_receipt(case.storage, CASE, signed, {signer.fingerprint: seq + 1}, "receipt r")
    with pytest.raises(IntegrityError) as failed:
        check_receipt(case.storage, CASE, signed, {signer.fingerprint: seq}, "receipt r")
    assert failed.value.where == "receipt r"
    assert failed.value.reason == (
        f"is signed by key {signer.fingerprint}, retired by chain entry {seq}, at or before the"
        f" receipted entry {seq}"
    )

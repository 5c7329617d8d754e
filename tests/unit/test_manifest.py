"""Segment records, checkpoints and manifests: shapes, signatures, Merkle roots."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.canonical import canonical_json
from recorder.chain import next_entry
from recorder.errors import IntegrityError
from recorder.layout import segment_key
from recorder.manifest import (
    Checkpoint,
    Manifest,
    SegmentRecord,
    decode_signature,
    sign_checkpoint,
    verify_checkpoint,
    verify_manifest,
)
from recorder.merkle import merkle_root
from recorder.signing import Signer

INSPECTION = "0123456789abcdef0123456789abcdef"
HEAD = "ab" * 32


def record(track: str = "applicant-video", seq: int = 0, **changes: Any) -> SegmentRecord:
    fields: dict[str, Any] = {
        "inspection_id": INSPECTION,
        "track": track,
        "seq": seq,
        "key": segment_key("case-1", INSPECTION, track, seq),
        "sha256": f"{seq:02x}" * 32,
        "size": 1000 + seq,
        "codec": "vp8",
        "first_pts": 0,
        "last_pts": 357_000,
        "time_base": "1/90000",
        "start_utc": "2026-03-01T09:00:00.000Z",
        "end_utc": "2026-03-01T09:00:04.000Z",
        "frames": 120,
        "partial": False,
    }
    fields.update(changes)
    return SegmentRecord(**fields)


def build(signer: Signer, segments: list[SegmentRecord]) -> Manifest:
    return Manifest.build(
        case_id="case-1",
        inspection_id=INSPECTION,
        segments=segments,
        chain_head_seq=7,
        chain_head=HEAD,
        created_at="2026-03-01T09:01:00.000Z",
        signer=signer,
    )


def test_segment_record_round_trips_and_knows_its_case_and_length() -> None:
    segment = record()
    assert SegmentRecord.from_json(segment.to_json()) == segment
    assert segment.case_id == "case-1"
    assert segment.duration_s == 4.0


@pytest.mark.parametrize(
    "changes",
    [
        {"track": "screen"},
        {"key": segment_key("case-1", INSPECTION, "applicant-audio", 0)},
        {"key": "cases/case-1/../x.webm"},
        {"seq": -1},
        {"size": True},
        {"sha256": "00"},
        {"codec": ""},
        {"last_pts": -1},
        {"time_base": "1/0"},
        {"time_base": "90000"},
        {"end_utc": "2026-03-01T08:59:59.000Z"},
        {"partial": 0},
        {"frames": 2**60},
    ],
)
def test_bad_segment_records_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        record(**changes)


def test_segment_record_with_extra_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="unexpected"):
        SegmentRecord.from_json({**record().to_json(), "note": "x"})


def test_checkpoint_signs_and_verifies() -> None:
    signer = Signer.generate()
    signed = sign_checkpoint(signer, "case-1", 7, HEAD, "2026-03-01T09:01:00.000Z")
    checkpoint = verify_checkpoint(signer.public_key_bytes, signed)
    assert checkpoint == Checkpoint(
        "case-1", 7, HEAD, "2026-03-01T09:01:00.000Z", signer.fingerprint
    )
    assert checkpoint.payload() == canonical_json({"checkpoint": signed["checkpoint"]})


@pytest.mark.parametrize(("field", "value"), [("seq", 8), ("head", "cd" * 32), ("case_id", "x")])
def test_a_changed_checkpoint_does_not_verify(field: str, value: Any) -> None:
    signer = Signer.generate()
    signed = sign_checkpoint(signer, "case-1", 7, HEAD, "2026-03-01T09:01:00.000Z")
    signed["checkpoint"][field] = value
    with pytest.raises(IntegrityError, match="signature"):
        verify_checkpoint(signer.public_key_bytes, signed, "cp")


def test_a_checkpoint_checked_with_another_key_names_the_mismatch() -> None:
    signed = sign_checkpoint(Signer.generate(), "case-1", 7, HEAD, "2026-03-01T09:01:00.000Z")
    with pytest.raises(IntegrityError, match="names key") as failure:
        verify_checkpoint(Signer.generate().public_key_bytes, signed, "cases/case-1/cp.json")
    assert failure.value.where == "cases/case-1/cp.json"


def test_a_second_spelling_of_the_same_signature_is_refused() -> None:
    signer = Signer.generate()
    signed = sign_checkpoint(signer, "case-1", 7, HEAD, "2026-03-01T09:01:00.000Z")
    text = signed["signature"]
    assert text.endswith("==")
    # The last base64 digit before "==" carries 4 unused bits; decoders ignore them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = text[:-3] + alphabet[alphabet.index(text[-3]) ^ 1] + "=="
    with pytest.raises(ValueError, match="canonical"):
        decode_signature(twin)
    with pytest.raises(IntegrityError):
        verify_checkpoint(signer.public_key_bytes, {**signed, "signature": twin})


def test_manifest_orders_segments_by_track_then_seq_and_roots_them() -> None:
    segments = [
        record("inspector-audio", 0),
        record("applicant-video", 1),
        record(),
        record("applicant-audio", 0),
    ]
    manifest = build(Signer.generate(), segments)
    assert [(s.track, s.seq) for s in manifest.segments] == [
        ("applicant-audio", 0),
        ("applicant-video", 0),
        ("applicant-video", 1),
        ("inspector-audio", 0),
    ]
    expected = merkle_root([bytes.fromhex(s.sha256) for s in manifest.segments]).hex()
    assert manifest.merkle_root == expected


def test_manifest_signed_json_verifies_and_round_trips() -> None:
    signer = Signer.generate()
    manifest = build(signer, [record(), record(seq=1)])
    assert verify_manifest(signer.public_key_bytes, manifest.signed_json()) == manifest


def test_a_changed_manifest_is_refused() -> None:
    signer = Signer.generate()
    document = build(signer, [record(), record(seq=1)]).signed_json()
    forged = copy.deepcopy(document)
    forged["manifest"]["segments"][1]["size"] = 1
    with pytest.raises(IntegrityError, match="signature"):
        verify_manifest(signer.public_key_bytes, forged, "m")
    forged = copy.deepcopy(document)
    forged["manifest"]["segments"][1]["sha256"] = "ee" * 32
    with pytest.raises(IntegrityError, match="merkle_root"):
        verify_manifest(signer.public_key_bytes, forged, "m")


def test_a_checkpoint_signature_cannot_pass_as_a_manifest_signature() -> None:
    signer = Signer.generate()
    manifest = build(signer, [record()])
    checkpoint = sign_checkpoint(signer, "case-1", 7, HEAD, "2026-03-01T09:01:00.000Z")
    document = {**manifest.signed_json(), "signature": checkpoint["signature"]}
    with pytest.raises(IntegrityError, match="signature"):
        verify_manifest(signer.public_key_bytes, document)


def test_manifest_refuses_segments_of_another_inspection_or_duplicates() -> None:
    signer = Signer.generate()
    other = "f" * 32
    stranger = record(inspection_id=other, key=segment_key("case-1", other, "applicant-video", 0))
    with pytest.raises(ValueError, match="another inspection"):
        build(signer, [stranger])
    with pytest.raises(ValueError, match="duplicates"):
        build(signer, [record(), record()])
    manifest = build(signer, [record(), record(seq=1)])
    with pytest.raises(ValueError, match="order"):
        dataclasses.replace(manifest, segments=tuple(reversed(manifest.segments)))


def test_the_chain_and_checkpoint_examples_in_the_docs_are_exact() -> None:
    secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret)))
    first = next_entry(
        None,
        "case-1",
        "created",
        "2026-03-01T09:00:00.000Z",
        "server-system-clock",
        {"title": "Warehouse 7"},
    )
    second = next_entry(
        first,
        "case-1",
        "joined",
        "2026-03-01T09:00:05.250Z",
        "server-system-clock",
        {"inspection_id": INSPECTION, "role": "applicant"},
    )
    checkpoint = sign_checkpoint(signer, "case-1", 1, second.hash, "2026-03-01T09:00:30.000Z")
    docs = (Path(__file__).parents[2] / "docs" / "archive.md").read_text(encoding="utf-8")
    for document in (first.to_json(), second.to_json(), checkpoint):
        assert canonical_json(document).decode() in docs
    assert signer.public_key_bytes.hex() in docs

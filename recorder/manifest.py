"""Segment records, signed checkpoints and signed per-inspection manifests.

A signed document is ``{"<type>": {...}, "signature": "<base64>"}`` where the signature is the
Ed25519 signature of ``canonical_json({"<type>": {...}})``, the document without its
signature. The type name (``checkpoint``, ``manifest``) is inside what is signed, so one kind
of document can never be passed off as the other.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json, check_safe_integer
from recorder.chain import parse_utc
from recorder.errors import IntegrityError
from recorder.merkle import merkle_root
from recorder.signing import SIGNATURE_SIZE, Signer, fingerprint_of, verify_signature

CODEC_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,32}")
TIME_BASE_PATTERN = re.compile(r"([1-9][0-9]{0,9})/([1-9][0-9]{0,9})")
FINGERPRINT_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def exact_fields(obj: Any, fields: frozenset[str], what: str) -> dict[str, Any]:
    """``obj`` if it is a JSON object with exactly ``fields``; ValueError naming the rest."""
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be a JSON object")
    if set(obj) != fields:
        missing = sorted(fields - set(obj))
        extra = sorted(set(obj) - fields)
        raise ValueError(f"{what} fields wrong: missing {missing}, unexpected {extra}")
    return obj


def _check_fingerprint(value: str) -> None:
    if not isinstance(value, str) or not FINGERPRINT_PATTERN.fullmatch(value):
        raise ValueError(f"key_fingerprint {value!r} must be 'sha256:' and 64 hex digits")


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """One stored segment of one track: what the chain says about it."""

    inspection_id: str
    track: str
    seq: int
    key: str
    sha256: str
    size: int
    codec: str
    first_pts: int
    last_pts: int
    time_base: str
    start_utc: str
    end_utc: str
    frames: int
    partial: bool

    def __post_init__(self) -> None:
        layout.check_inspection_id(self.inspection_id)
        layout.check_track(self.track)
        for name in ("seq", "size", "first_pts", "last_pts", "frames"):
            if not _is_int(getattr(self, name)):
                raise ValueError(f"{name} must be an integer")
        if self.seq < 0 or self.size < 0 or self.frames < 0:
            raise ValueError("seq, size and frames must not be negative")
        parts = layout.segment_key_parts(self.key) if isinstance(self.key, str) else None
        if parts is None or parts[1:] != (self.inspection_id, self.track, self.seq):
            raise ValueError(f"key {self.key!r} is not this segment's object key")
        layout.check_hex64(self.sha256, "sha256")
        if not isinstance(self.codec, str) or not CODEC_PATTERN.fullmatch(self.codec):
            raise ValueError(f"codec {self.codec!r} must match {CODEC_PATTERN.pattern}")
        if self.last_pts < self.first_pts:
            raise ValueError("last_pts is before first_pts")
        if not isinstance(self.time_base, str) or not TIME_BASE_PATTERN.fullmatch(self.time_base):
            raise ValueError(f"time_base {self.time_base!r} must look like 1/90000")
        if parse_utc(self.end_utc) < parse_utc(self.start_utc):
            raise ValueError("end_utc is before start_utc")
        if not isinstance(self.partial, bool):
            raise ValueError("partial must be true or false")
        # Every string above is pattern-checked ASCII: only the integers can fall outside
        # canonical JSON.
        for name in ("seq", "size", "first_pts", "last_pts", "frames"):
            check_safe_integer(getattr(self, name))

    @property
    def case_id(self) -> str:
        return self.key.split("/")[1]  # the key was checked in __post_init__

    @property
    def duration_s(self) -> float:
        """Wall-clock length, from the server's UTC times."""
        return (parse_utc(self.end_utc) - parse_utc(self.start_utc)).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "track": self.track,
            "seq": self.seq,
            "key": self.key,
            "sha256": self.sha256,
            "size": self.size,
            "codec": self.codec,
            "first_pts": self.first_pts,
            "last_pts": self.last_pts,
            "time_base": self.time_base,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "frames": self.frames,
            "partial": self.partial,
        }

    @classmethod
    def from_json(cls, obj: Any) -> SegmentRecord:
        fields = exact_fields(obj, SEGMENT_FIELDS, "segment record")
        return cls(**fields)


SEGMENT_FIELDS = frozenset(SegmentRecord.__dataclass_fields__)


def encode_signature(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def decode_signature(text: Any) -> bytes:
    """Standard base64 with padding, in its one canonical spelling, of 64 bytes."""
    if not isinstance(text, str):
        raise ValueError("signature must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("signature is not base64") from exc
    if len(raw) != SIGNATURE_SIZE or encode_signature(raw) != text:
        raise ValueError("signature is not the canonical base64 of 64 bytes")
    return raw


def _split_signed(obj: Any, name: str) -> tuple[Any, bytes]:
    document = exact_fields(obj, frozenset({name, "signature"}), f"signed {name}")
    return document[name], decode_signature(document["signature"])


def _signed_message(name: str, content: dict[str, Any]) -> bytes:
    return canonical_json({name: content})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: the case's chain entry ``seq`` has hash ``head``."""

    case_id: str
    seq: int
    head: str
    at: str
    key_fingerprint: str

    def __post_init__(self) -> None:
        layout.check_case_id(self.case_id)
        if not _is_int(self.seq) or not 0 <= self.seq <= layout.MAX_CHAIN_SEQ:
            raise ValueError(f"seq {self.seq!r} must be an integer in 0..{layout.MAX_CHAIN_SEQ}")
        layout.check_hex64(self.head, "head")
        parse_utc(self.at)
        _check_fingerprint(self.key_fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "head": self.head,
            "at": self.at,
            "key_fingerprint": self.key_fingerprint,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Checkpoint:
        return cls(**exact_fields(obj, CHECKPOINT_FIELDS, "checkpoint"))

    def payload(self) -> bytes:
        """The signed bytes: ``canonical_json({"checkpoint": ...})``."""
        return _signed_message("checkpoint", self.to_json())


CHECKPOINT_FIELDS = frozenset(Checkpoint.__dataclass_fields__)


def sign_checkpoint(signer: Signer, case_id: str, seq: int, head: str, at: str) -> dict[str, Any]:
    """The signed checkpoint document, ready for ``canonical_json``."""
    checkpoint = Checkpoint(case_id, seq, head, at, signer.fingerprint)
    signature = signer.sign(checkpoint.payload())
    return {"checkpoint": checkpoint.to_json(), "signature": encode_signature(signature)}


def verify_checkpoint(public_key: bytes, obj: Any, where: str = "checkpoint") -> Checkpoint:
    """The checkpoint in a signed document, if ``public_key`` signed it; else IntegrityError."""
    try:
        content, signature = _split_signed(obj, "checkpoint")
        checkpoint = Checkpoint.from_json(content)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(where, f"not a valid signed checkpoint: {exc}") from exc
    _check_signed(public_key, checkpoint.key_fingerprint, checkpoint.payload(), signature, where)
    return checkpoint


def _check_signed(
    public_key: bytes, claimed: str, message: bytes, signature: bytes, where: str
) -> None:
    if fingerprint_of(public_key) != claimed:
        raise IntegrityError(where, f"names key {claimed}, not {fingerprint_of(public_key)}")
    if not verify_signature(public_key, message, signature):
        raise IntegrityError(where, f"signature does not verify with key {claimed}")


def segment_order(record: SegmentRecord) -> tuple[str, int]:
    """Manifest order: by track name (ASCII), then by seq."""
    return record.track, record.seq


def segments_root(segments: Sequence[SegmentRecord]) -> str:
    """Hex Merkle root over the raw SHA-256 of each segment, in manifest order."""
    ordered = sorted(segments, key=segment_order)
    return merkle_root([bytes.fromhex(s.sha256) for s in ordered]).hex()


@dataclass(frozen=True, slots=True)
class Manifest:
    """The signed list of an inspection's segments with their Merkle root.

    ``chain_head_seq``/``chain_head`` name the chain head when it was signed (-1 and "" for an
    empty chain); ``signature`` is base64 over ``payload()``.
    """

    case_id: str
    inspection_id: str
    segments: tuple[SegmentRecord, ...]
    merkle_root: str
    chain_head_seq: int
    chain_head: str
    created_at: str
    key_fingerprint: str
    signature: str

    def __post_init__(self) -> None:
        layout.check_case_id(self.case_id)
        layout.check_inspection_id(self.inspection_id)
        if not isinstance(self.segments, tuple):
            raise ValueError("segments must be a tuple of SegmentRecord")
        for record in self.segments:
            if not isinstance(record, SegmentRecord):
                raise ValueError("segments must be a tuple of SegmentRecord")
            if record.inspection_id != self.inspection_id or record.case_id != self.case_id:
                raise ValueError(f"segment {record.key} belongs to another inspection")
        order = [segment_order(s) for s in self.segments]
        if order != sorted(set(order)):
            raise ValueError("segments are not in (track, seq) order without duplicates")
        layout.check_hex64(self.merkle_root, "merkle_root")
        if self.merkle_root != segments_root(self.segments):
            raise ValueError("merkle_root is not the root over the segments")
        if not _is_int(self.chain_head_seq) or self.chain_head_seq < -1:
            raise ValueError("chain_head_seq must be an integer >= -1")
        if self.chain_head_seq == -1:
            if self.chain_head != "" or self.segments:
                raise ValueError(
                    "chain_head_seq -1 (empty chain) needs chain_head '' and no segments"
                )
        else:
            layout.check_hex64(self.chain_head, "chain_head")
        parse_utc(self.created_at)
        _check_fingerprint(self.key_fingerprint)
        decode_signature(self.signature)

    @classmethod
    def build(
        cls,
        *,
        case_id: str,
        inspection_id: str,
        segments: Sequence[SegmentRecord],
        chain_head_seq: int,
        chain_head: str,
        created_at: str,
        signer: Signer,
    ) -> Manifest:
        """Order the segments, compute the Merkle root, and sign."""
        ordered = tuple(sorted(segments, key=segment_order))
        root = segments_root(ordered)
        content: dict[str, Any] = {
            "case_id": case_id,
            "inspection_id": inspection_id,
            "segments": [s.to_json() for s in ordered],
            "merkle_root": root,
            "chain_head_seq": chain_head_seq,
            "chain_head": chain_head,
            "created_at": created_at,
            "key_fingerprint": signer.fingerprint,
        }
        signature = encode_signature(signer.sign(_signed_message("manifest", content)))
        return cls(
            case_id=case_id,
            inspection_id=inspection_id,
            segments=ordered,
            merkle_root=root,
            chain_head_seq=chain_head_seq,
            chain_head=chain_head,
            created_at=created_at,
            key_fingerprint=signer.fingerprint,
            signature=signature,
        )

    def to_json(self) -> dict[str, Any]:
        """The signed content (everything but the signature)."""
        return {
            "case_id": self.case_id,
            "inspection_id": self.inspection_id,
            "segments": [s.to_json() for s in self.segments],
            "merkle_root": self.merkle_root,
            "chain_head_seq": self.chain_head_seq,
            "chain_head": self.chain_head,
            "created_at": self.created_at,
            "key_fingerprint": self.key_fingerprint,
        }

    def payload(self) -> bytes:
        return _signed_message("manifest", self.to_json())

    def signed_json(self) -> dict[str, Any]:
        return {"manifest": self.to_json(), "signature": self.signature}

    @classmethod
    def from_signed_json(cls, obj: Any) -> Manifest:
        """Parse a signed manifest document (shape only: the signature is not checked)."""
        content, signature = _split_signed(obj, "manifest")
        fields = exact_fields(content, MANIFEST_CONTENT_FIELDS, "manifest")
        segments = fields["segments"]
        if not isinstance(segments, list):
            raise ValueError("segments must be a list")
        return cls(
            **{**fields, "segments": tuple(SegmentRecord.from_json(s) for s in segments)},
            signature=encode_signature(signature),
        )


MANIFEST_CONTENT_FIELDS = frozenset(Manifest.__dataclass_fields__) - {"signature"}


def verify_manifest(
    public_key: bytes, obj: Any, where: str = "manifest", parsed: Manifest | None = None
) -> Manifest:
    """The manifest in a signed document, if ``public_key`` signed it; else IntegrityError.
    ``parsed``: ``Manifest.from_signed_json(obj)``, when the caller has it already."""
    try:
        manifest = parsed if parsed is not None else Manifest.from_signed_json(obj)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(where, f"not a valid signed manifest: {exc}") from exc
    signature = decode_signature(manifest.signature)
    _check_signed(public_key, manifest.key_fingerprint, manifest.payload(), signature, where)
    return manifest

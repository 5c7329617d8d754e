"""Receipts: what an inspection's end looked like, signed, for someone outside Takan to keep.

A receipt names the inspection's manifest (key and SHA-256) and the chain entry that records it
(seq and hash), so an archive that later lacks that entry or that manifest (a tail cut off
together with the checkpoints that signed it) is caught by whoever holds the receipt.

It is a signed document like a checkpoint (``{"receipt": {...}, "signature": "<base64>"}``,
the signature over ``canonical_json({"receipt": {...}})``); docs/archive.md specifies it.
Building, parsing and the signature check are pure; ``check_receipt`` reads the archive through
the ``Storage`` interface.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import MAX_CLOCK_LENGTH, ChainEntry, chain_where, parse_utc
from recorder.errors import IntegrityError, ObjectNotFound, StorageError
from recorder.manifest import FINGERPRINT_PATTERN, decode_signature, encode_signature
from recorder.signing import Signer, fingerprint_of, verify_signature
from recorder.storage import Storage

REQUIRED_FIELDS = frozenset(
    {
        "case_id",
        "inspection_id",
        "manifest_key",
        "manifest_sha256",
        "chain_head_seq",
        "chain_head",
        "started_at",
        "ended_at",
        "clock",
        "issued_at",
        "key_fingerprint",
    }
)
OPTIONAL_FIELDS = frozenset({"timestamp"})
TIMESTAMP_FIELDS = frozenset({"key", "sha256", "token"})
MAX_RECEIPT_BYTES = 1024 * 1024  # a receipt file bigger than this is not one


def _exact(obj: Any, required: frozenset[str], optional: frozenset[str], what: str) -> Any:
    if not isinstance(obj, dict):
        raise ValueError(f"{what} must be a JSON object")
    missing = sorted(required - set(obj))
    extra = sorted(set(obj) - required - optional)
    if missing or extra:
        raise ValueError(f"{what} fields wrong: missing {missing}, unexpected {extra}")
    return obj


@dataclass(frozen=True, slots=True)
class ReceiptTimestamp:
    """The manifest's RFC 3161 reply as the archive stores it (``TimeStampResp``, DER): its
    object key and SHA-256, and its bytes (``token``, standard base64), so that the receipt
    holds the token itself."""

    key: str
    sha256: str
    token: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.startswith("cases/"):
            raise ValueError(f"timestamp key {self.key!r} is not an archive key")
        layout.check_hex64(self.sha256, "timestamp sha256")
        if hashlib.sha256(self.token_bytes()).hexdigest() != self.sha256:
            raise ValueError("timestamp token does not have the SHA-256 the receipt names")

    def token_bytes(self) -> bytes:
        if not isinstance(self.token, str):
            raise ValueError("timestamp token must be a base64 string")
        try:
            raw = base64.b64decode(self.token.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise ValueError("timestamp token is not base64") from exc
        if base64.b64encode(raw).decode("ascii") != self.token:
            raise ValueError("timestamp token is not in canonical base64")
        return raw

    @classmethod
    def of(cls, key: str, data: bytes) -> ReceiptTimestamp:
        return cls(key, hashlib.sha256(data).hexdigest(), base64.b64encode(data).decode("ascii"))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "token": self.token}


@dataclass(frozen=True, slots=True)
class Receipt:
    """The signed content of a receipt (everything but the signature)."""

    case_id: str
    inspection_id: str
    manifest_key: str
    manifest_sha256: str
    chain_head_seq: int
    chain_head: str
    started_at: str
    ended_at: str
    clock: str
    issued_at: str
    key_fingerprint: str
    timestamp: ReceiptTimestamp | None = None

    def __post_init__(self) -> None:
        layout.check_case_id(self.case_id)
        layout.check_inspection_id(self.inspection_id)
        if self.manifest_key != layout.manifest_key(self.case_id, self.inspection_id):
            raise ValueError(f"manifest_key {self.manifest_key!r} is not this inspection's")
        layout.check_hex64(self.manifest_sha256, "manifest_sha256")
        seq = self.chain_head_seq
        if (
            isinstance(seq, bool)
            or not isinstance(seq, int)
            or not 0 <= seq <= layout.MAX_CHAIN_SEQ
        ):
            raise ValueError(
                f"chain_head_seq {seq!r} must be an integer in 0..{layout.MAX_CHAIN_SEQ}"
            )
        layout.check_hex64(self.chain_head, "chain_head")
        if parse_utc(self.ended_at) < parse_utc(self.started_at):
            raise ValueError("ended_at is before started_at")
        parse_utc(self.issued_at)
        if not isinstance(self.clock, str) or not 0 < len(self.clock) <= MAX_CLOCK_LENGTH:
            raise ValueError(f"clock must be a source name of 1-{MAX_CLOCK_LENGTH} characters")
        if not isinstance(self.key_fingerprint, str) or not FINGERPRINT_PATTERN.fullmatch(
            self.key_fingerprint
        ):
            raise ValueError(f"key_fingerprint {self.key_fingerprint!r} is not sha256:<64 hex>")
        if self.timestamp is not None and not self.timestamp.key.startswith(
            layout.case_prefix(self.case_id)
        ):
            raise ValueError(f"timestamp key {self.timestamp.key!r} is outside the case")

    def to_json(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "case_id": self.case_id,
            "inspection_id": self.inspection_id,
            "manifest_key": self.manifest_key,
            "manifest_sha256": self.manifest_sha256,
            "chain_head_seq": self.chain_head_seq,
            "chain_head": self.chain_head,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "clock": self.clock,
            "issued_at": self.issued_at,
            "key_fingerprint": self.key_fingerprint,
        }
        if self.timestamp is not None:
            content["timestamp"] = self.timestamp.to_json()
        return content

    @classmethod
    def from_json(cls, obj: Any) -> Receipt:
        fields = dict(_exact(obj, REQUIRED_FIELDS, OPTIONAL_FIELDS, "receipt"))
        if "timestamp" in fields:
            stamp = _exact(fields["timestamp"], TIMESTAMP_FIELDS, frozenset(), "receipt timestamp")
            fields["timestamp"] = ReceiptTimestamp(**stamp)
        return cls(**fields)

    def payload(self) -> bytes:
        """The signed bytes: ``canonical_json({"receipt": ...})``."""
        return canonical_json({"receipt": self.to_json()})


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    receipt: Receipt
    signature: str

    def __post_init__(self) -> None:
        decode_signature(self.signature)

    def to_json(self) -> dict[str, Any]:
        return {"receipt": self.receipt.to_json(), "signature": self.signature}

    def to_bytes(self) -> bytes:
        """The document as it is served and kept: canonical JSON."""
        return canonical_json(self.to_json())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def sign_receipt(signer: Signer, receipt: Receipt) -> SignedReceipt:
    if receipt.key_fingerprint != signer.fingerprint:
        raise ValueError("the receipt names another key than the signer's")
    return SignedReceipt(receipt, encode_signature(signer.sign(receipt.payload())))


def parse_receipt(data: bytes, where: str) -> SignedReceipt:
    """A receipt document in any JSON spelling (what is signed is recomputed canonically);
    IntegrityError naming ``where`` if it is not one."""
    if len(data) > MAX_RECEIPT_BYTES:
        raise IntegrityError(where, f"{len(data)} bytes: too large for a receipt")
    try:
        document = _exact(parse_json(data), frozenset({"receipt", "signature"}), frozenset(), "")
        return SignedReceipt(Receipt.from_json(document["receipt"]), document["signature"])
    except (ValueError, TypeError) as exc:
        raise IntegrityError(where, f"not a valid signed receipt: {exc}") from exc


def verify_receipt_signature(public_key: bytes, signed: SignedReceipt, where: str) -> None:
    claimed = signed.receipt.key_fingerprint
    if fingerprint_of(public_key) != claimed:
        raise IntegrityError(where, f"names key {claimed}, not {fingerprint_of(public_key)}")
    if not verify_signature(
        public_key, signed.receipt.payload(), decode_signature(signed.signature)
    ):
        raise IntegrityError(where, f"signature does not verify with key {claimed}")


def find_timestamp(
    entries: Iterable[ChainEntry], case_id: str, manifest_key: str, manifest_sha256: str
) -> tuple[str, str] | None:
    """``(key, sha256)`` of the first chained RFC 3161 reply over the manifest: a ``timestamp``
    entry (docs/archive.md, "Timestamps") whose ``document`` is the manifest's key and whose
    ``document_sha256`` its SHA-256, recording an object under ``cases/{case}/timestamps/``."""
    prefix = layout.case_prefix(case_id) + "timestamps/"
    for entry in entries:
        body = entry.body
        key, sha256 = body.get("key"), body.get("sha256")
        if (
            entry.kind == "timestamp"
            and body.get("document") == manifest_key
            and body.get("document_sha256") == manifest_sha256
            and isinstance(key, str)
            and key.startswith(prefix)
            and isinstance(sha256, str)
        ):
            return key, sha256
    return None


def _read(storage: Storage, key: str) -> bytes | None:
    try:
        return storage.get(key)
    except ObjectNotFound:
        return None


def check_receipt(
    storage: Storage,
    case_id: str,
    signed: SignedReceipt,
    case_keys: Mapping[str, int | None],
    where: str,
) -> None:
    """Whether the archive still holds what the receipt says it held; IntegrityError naming
    ``where`` (the receipt) if not.

    Run after the case verified, so the chain below the receipted entry is known to be intact;
    ``case_keys`` are the fingerprints that verification found recorded and trusted as the
    case's signing keys, each with the seq of the entry that retired it (or None). The
    receipt's key must be one of them, not retired at or before the receipted entry.
    """
    receipt = signed.receipt
    if receipt.case_id != case_id:
        raise IntegrityError(where, f"is a receipt for case {receipt.case_id}, not {case_id}")
    fingerprint = receipt.key_fingerprint
    key_object = layout.public_key_key(case_id, fingerprint)
    if fingerprint not in case_keys:
        raise IntegrityError(
            where, f"is signed by key {fingerprint}, which does not sign this case"
        )
    retired = case_keys[fingerprint]
    if retired is not None and retired <= receipt.chain_head_seq:
        raise IntegrityError(
            where,
            f"is signed by key {fingerprint}, retired by chain entry {retired}, at or before the"
            f" receipted entry {receipt.chain_head_seq}",
        )
    try:
        public_key = _read(storage, key_object)
        if public_key is None:
            raise IntegrityError(where, f"is signed by key {fingerprint}, absent ({key_object})")
        verify_receipt_signature(public_key, signed, where)
        _check_covered(storage, receipt, where)
    except StorageError as exc:
        raise IntegrityError(where, f"cannot read the archive: {exc}") from exc


def _check_covered(storage: Storage, receipt: Receipt, where: str) -> None:
    seq, case_id = receipt.chain_head_seq, receipt.case_id
    issued = f"receipt issued {receipt.issued_at}"
    raw = _read(storage, layout.chain_entry_key(case_id, seq))
    if raw is None:
        raise IntegrityError(
            where, f"{chain_where(seq)} is missing; the {issued} says the chain reached it"
        )
    try:
        entry = ChainEntry.from_json(parse_json(raw))
    except ValueError as exc:
        raise IntegrityError(where, f"{chain_where(seq)} is malformed: {exc}") from exc
    if entry.hash != receipt.chain_head:
        raise IntegrityError(
            where,
            f"{chain_where(seq)} has hash {entry.hash}; the {issued} says {receipt.chain_head}",
        )
    if entry.body.get("key") != receipt.manifest_key or (
        entry.body.get("sha256") != receipt.manifest_sha256
    ):
        raise IntegrityError(where, f"{chain_where(seq)} does not record the receipted manifest")
    _check_object(storage, receipt.manifest_key, receipt.manifest_sha256, issued, where)
    if receipt.timestamp is not None:
        _check_object(storage, receipt.timestamp.key, receipt.timestamp.sha256, issued, where)


def _check_object(storage: Storage, key: str, sha256: str, issued: str, where: str) -> None:
    data = _read(storage, key)
    if data is None:
        raise IntegrityError(where, f"{key} is missing; the {issued} names it")
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise IntegrityError(where, f"{key} has SHA-256 {actual}; the {issued} says {sha256}")

"""The package index: an export's last member, signed, listing every other member's bytes.

``package-index.json`` is the signed document ``{"package_index": {…}, "signature": "…"}``
(docs/archive.md, *Exports*): the case, the export time and its clock, the signing key's
fingerprint, and every other member of the zip in the order written, with its size and SHA-256.
Signed by the archive key, the key that signs the case's checkpoints, so the package vouches for
every byte in it: the offline page, the README and ``public-key.txt`` as much as ``cases/``.

Pure: building, parsing and the rules, each failure an IntegrityError naming the member. Reading
a zip and hashing its members is ``recorder.package_verify``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import MAX_CLOCK_LENGTH, parse_utc
from recorder.errors import IntegrityError, StorageError
from recorder.manifest import (
    FINGERPRINT_PATTERN,
    decode_signature,
    encode_signature,
    exact_fields,
)
from recorder.signing import PUBLIC_KEY_SIZE, Signer, fingerprint_of, verify_signature
from recorder.storage import check_key, check_recorded_digest

INDEX_NAME = "package-index.json"
PUBLIC_KEY_TEXT = "public-key.txt"
DOCUMENT_TYPE = "package_index"
INDEX_FIELDS = frozenset({"case_id", "exported_at", "clock", "key_fingerprint", "members"})
MEMBER_FIELDS = frozenset({"name", "size", "sha256"})
MAX_SIZE = 2**53 - 1  # canonical JSON's integers


def check_member_name(name: str) -> str:
    """``name`` if a package may hold a member of that name; ValueError saying why not.

    The rules of object keys: 1-1024 characters of ``A-Z a-z 0-9 . _ - /``, no empty segment and
    none starting with a dot, so no name can leave the folder it is unzipped into.
    """
    try:
        return check_key(name)
    except StorageError as exc:
        raise ValueError(str(exc)) from exc


def member_case(name: str) -> str | None:
    """The case a ``cases/{case_id}/…`` member name belongs to, or None."""
    parts = name.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "cases" else None


@dataclass(frozen=True, slots=True)
class IndexedMember:
    """One member of the package as the index lists it."""

    name: str
    size: int
    sha256: str

    def __post_init__(self) -> None:
        check_member_name(self.name)
        if self.name == INDEX_NAME:
            raise ValueError(f"the index cannot list itself ({INDEX_NAME})")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValueError(f"{self.name}: size must be an integer")
        if not 0 <= self.size <= MAX_SIZE:
            raise ValueError(f"{self.name}: size {self.size} is out of range")
        layout.check_hex64(self.sha256, f"{self.name}: sha256")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}

    @classmethod
    def from_json(cls, obj: Any) -> IndexedMember:
        return cls(**exact_fields(obj, MEMBER_FIELDS, "a member"))


@dataclass(frozen=True, slots=True)
class PackageIndex:
    """What an export holds: ``members`` in the order they were written, the index excluded."""

    case_id: str
    exported_at: str
    clock: str
    key_fingerprint: str
    members: tuple[IndexedMember, ...]

    def __post_init__(self) -> None:
        layout.check_case_id(self.case_id)
        parse_utc(self.exported_at)
        if not isinstance(self.clock, str) or not 0 < len(self.clock) <= MAX_CLOCK_LENGTH:
            raise ValueError(f"clock must be a source name of 1-{MAX_CLOCK_LENGTH} characters")
        if not isinstance(self.key_fingerprint, str) or not FINGERPRINT_PATTERN.fullmatch(
            self.key_fingerprint
        ):
            raise ValueError(
                f"key_fingerprint {self.key_fingerprint!r} must be 'sha256:' and 64 hex digits"
            )
        seen: set[str] = set()
        for member in self.members:
            if member.name in seen:
                raise ValueError(f"lists {member.name} twice")
            seen.add(member.name)
            case = member_case(member.name)
            if case is not None and case != self.case_id:
                raise ValueError(f"lists {member.name}, a member of another case")

    @property
    def public_key_name(self) -> str:
        """The member holding the signing key: ``cases/{case_id}/keys/{fingerprint_hex}.pub``."""
        return layout.public_key_key(self.case_id, self.key_fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "exported_at": self.exported_at,
            "clock": self.clock,
            "key_fingerprint": self.key_fingerprint,
            "members": [member.to_json() for member in self.members],
        }

    @classmethod
    def from_json(cls, obj: Any) -> PackageIndex:
        fields = exact_fields(obj, INDEX_FIELDS, "the index")
        members = fields["members"]
        if not isinstance(members, list):
            raise ValueError("members must be a list")
        return cls(**{**fields, "members": tuple(IndexedMember.from_json(m) for m in members)})

    def payload(self) -> bytes:
        """The signed bytes: ``canonical_json({"package_index": …})``."""
        return canonical_json({DOCUMENT_TYPE: self.to_json()})

    def signed(self, signer: Signer) -> bytes:
        """The member's bytes: the canonical JSON of the signed document."""
        if signer.fingerprint != self.key_fingerprint:
            raise ValueError(f"the index names key {self.key_fingerprint}, not the signer's")
        signature = encode_signature(signer.sign(self.payload()))
        return canonical_json({DOCUMENT_TYPE: self.to_json(), "signature": signature})


class IndexBuilder:
    """The index of a package being written: each member is added as its bytes go out."""

    def __init__(self, case_id: str) -> None:
        self.case_id = layout.check_case_id(case_id)
        self._members: list[IndexedMember] = []

    def add(self, name: str, size: int, sha256: str) -> None:
        self._members.append(IndexedMember(name, size, sha256))

    def sign(self, signer: Signer, exported_at: str, clock: str) -> bytes:
        index = PackageIndex(
            self.case_id, exported_at, clock, signer.fingerprint, tuple(self._members)
        )
        return index.signed(signer)


@dataclass(frozen=True, slots=True)
class SignedIndex:
    index: PackageIndex
    signature: bytes


def parse_index(raw: bytes) -> SignedIndex:
    """The index in a package's ``package-index.json``, not yet checked against any key."""
    try:
        value = parse_json(raw)
        canonical = canonical_json(value)
    except ValueError as exc:
        raise IntegrityError(INDEX_NAME, str(exc)) from exc
    if canonical != raw:
        raise IntegrityError(INDEX_NAME, "not in canonical JSON form")
    try:
        document = exact_fields(value, frozenset({DOCUMENT_TYPE, "signature"}), "signed index")
        signature = decode_signature(document["signature"])
        index = PackageIndex.from_json(document[DOCUMENT_TYPE])
    except (ValueError, TypeError) as exc:
        raise IntegrityError(INDEX_NAME, f"not a valid signed package index: {exc}") from exc
    return SignedIndex(index, signature)


def check_public_key(name: str, raw: bytes, fingerprint: str) -> None:
    """The key member holds the raw key whose fingerprint its name says (verify.py's words)."""
    if len(raw) != PUBLIC_KEY_SIZE:
        raise IntegrityError(name, f"{len(raw)} bytes, not a raw Ed25519 public key")
    if fingerprint_of(raw) != fingerprint:
        raise IntegrityError(name, f"holds key {fingerprint_of(raw)}, not the one its name says")


def check_signature(signed: SignedIndex, public_key: bytes) -> None:
    if not verify_signature(public_key, signed.index.payload(), signed.signature):
        raise IntegrityError(
            INDEX_NAME, f"signature does not verify with key {signed.index.key_fingerprint}"
        )


def check_listing(index: PackageIndex, present: Iterable[str]) -> None:
    """Every member there is listed (names in order), then every listed member is there (in
    the index's order). ``present``: the package's member names, the index among them."""
    names = set(present)
    listed = {member.name for member in index.members}
    for name in sorted(names - listed - {INDEX_NAME}):
        case = member_case(name)
        if case is not None and case != index.case_id:
            raise IntegrityError(
                name, f"a member of case {case}; this package is of case {index.case_id}"
            )
        raise IntegrityError(name, "not listed in the package index")
    for member in index.members:
        if member.name not in names:
            raise IntegrityError(member.name, "listed in the package index but absent")


def check_digest(member: IndexedMember, sha256: str, size: int) -> None:
    """``sha256`` and ``size`` of at most ``member.size`` + 1 bytes read, as the index lists."""
    check_recorded_digest(
        member.name, sha256, size, member.sha256, member.size, "the package index records"
    )


def public_keys_in_text(data: bytes) -> dict[str, bytes]:
    """``public-key.txt``'s keys by fingerprint: each ``fingerprint:`` line and the
    ``public_key_base64:`` line after it. ValueError naming the first line that is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    keys: dict[str, bytes] = {}
    fingerprint: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        name, _, value = line.partition(": ")
        if name == "fingerprint":
            if fingerprint is not None:
                raise ValueError(f"line {number}: {fingerprint} has no public_key_base64 line")
            if not FINGERPRINT_PATTERN.fullmatch(value):
                raise ValueError(f"line {number}: {value!r} is not a key fingerprint")
            fingerprint = value
        elif name == "public_key_base64":
            if fingerprint is None:
                raise ValueError(f"line {number}: a public key without its fingerprint")
            try:
                raw = base64.b64decode(value.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError) as exc:
                raise ValueError(f"line {number}: the public key is not base64") from exc
            if len(raw) != PUBLIC_KEY_SIZE or fingerprint_of(raw) != fingerprint:
                raise ValueError(f"line {number}: the public key is not the one of {fingerprint}")
            keys[fingerprint] = raw
            fingerprint = None
    if fingerprint is not None:
        raise ValueError(f"{fingerprint} has no public_key_base64 line")
    return keys


def check_public_key_text(data: bytes, index: PackageIndex) -> None:
    """``public-key.txt`` names the index's signing key and gives its bytes rightly."""
    try:
        keys = public_keys_in_text(data)
    except ValueError as exc:
        raise IntegrityError(PUBLIC_KEY_TEXT, str(exc)) from exc
    if index.key_fingerprint not in keys:
        raise IntegrityError(
            PUBLIC_KEY_TEXT, f"does not name the package's signing key {index.key_fingerprint}"
        )


def check_case_signer(
    index: PackageIndex, checkpoint_signers: Collection[str], retired: Mapping[str, int]
) -> None:
    """The index is signed by the key the case is signed with at its end: one that signs the
    case's checkpoints and that no ``key_rotated`` entry has retired. ``checkpoint_signers``:
    the keys of the case's verified checkpoints; ``retired``: key → the seq of the rotation
    away from it."""
    fingerprint = index.key_fingerprint
    if fingerprint in retired:
        raise IntegrityError(
            INDEX_NAME,
            f"signed by {fingerprint} after chain entry {retired[fingerprint]} rotated away"
            " from it",
        )
    if fingerprint not in checkpoint_signers:
        raise IntegrityError(
            INDEX_NAME,
            f"signed by {fingerprint}, which signs no checkpoint of case {index.case_id}",
        )

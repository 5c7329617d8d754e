"""An inspector's passkey (WebAuthn) signature over a conclusion, checked offline. Pure: no I/O.

A ``passkey_enrolled`` chain entry records a staff user's credential: its ID, its P-256 public
key (SubjectPublicKeyInfo DER, base64), the relying party ID and the origin it signs for. A
conclusion signed with it carries the browser's assertion, whose challenge is the SHA-256 of the
conclusion's signed bytes (``Conclusion.message()``): the authenticator signed
``authenticatorData || SHA-256(clientDataJSON)`` and clientDataJSON names that challenge, so
the signature covers the conclusion and nothing else. docs/archive.md states the rules;
web/js/case-verify.js applies the same ones, in the same order and words.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recorder.canonical import parse_json
from recorder.chain import parse_utc
from recorder.manifest import exact_fields

ALGORITHM = "ES256"  # COSE -7: ECDSA over P-256 with SHA-256, what every platform offers
COSE_ES256 = -7
MAX_CREDENTIAL_ID = 1023  # bytes, WebAuthn's own bound
MAX_CLIENT_DATA = 4096
MAX_AUTHENTICATOR_DATA = 4096
FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04
# SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 04 X Y } }
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")
P256_SPKI_SIZE = len(P256_SPKI_PREFIX) + 64
B64URL_PATTERN = re.compile(r"[A-Za-z0-9_-]*")
ENROLMENT_FIELDS = frozenset(
    {"username", "credential_id", "public_key", "algorithm", "rp_id", "origin", "registered_at"}
)
ASSERTION_FIELDS = frozenset(
    {"credential_id", "authenticator_data", "client_data_json", "signature"}
)


def b64url(data: bytes) -> str:
    """Base64url without padding, as WebAuthn spells binary values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: Any, name: str) -> bytes:
    """The bytes of unpadded base64url in its one spelling; ValueError naming ``name``."""
    if not isinstance(text, str) or not B64URL_PATTERN.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError(f"{name} is not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:
        raise ValueError(f"{name} is not unpadded base64url")
    return raw


def key_fingerprint(public_key: str) -> str:
    """``sha256:`` and the hex SHA-256 of a passkey's public key DER (given as base64): how
    pages and reports name the passkey."""
    return "sha256:" + hashlib.sha256(base64.b64decode(public_key)).hexdigest()


def challenge_of(message: bytes) -> bytes:
    """The challenge a conclusion is signed under: the SHA-256 of its signed bytes."""
    return hashlib.sha256(message).digest()


def _public_key(text: Any) -> ec.EllipticCurvePublicKey:
    """The key of an enrolment's ``public_key``: exactly the 91-byte DER of an uncompressed
    P-256 point (what browsers and ``cryptography`` write), so every verifier parses it alike."""
    if not isinstance(text, str):
        raise ValueError("public_key must be a base64 string")
    try:
        der = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("public_key is not base64") from exc
    if base64.b64encode(der).decode("ascii") != text:
        raise ValueError("public_key is not base64 in its one spelling")
    if len(der) != P256_SPKI_SIZE or not der.startswith(P256_SPKI_PREFIX):
        raise ValueError("public_key is not an uncompressed P-256 SubjectPublicKeyInfo")
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise ValueError("public_key is not a point of P-256") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):  # pragma: no cover - the prefix says so
        raise ValueError("public_key is not a point of P-256")
    return key


@dataclass(frozen=True, slots=True)
class PasskeyEnrolment:
    """What a ``passkey_enrolled`` entry states: whose credential, and how it signs."""

    username: str
    credential_id: str
    public_key: str
    algorithm: str
    rp_id: str
    origin: str
    registered_at: str

    def __post_init__(self) -> None:
        if not isinstance(self.username, str) or not self.username:
            raise ValueError("username must be a non-empty string")
        credential = from_b64url(self.credential_id, "credential_id")
        if not 1 <= len(credential) <= MAX_CREDENTIAL_ID:
            raise ValueError(f"credential_id must be 1-{MAX_CREDENTIAL_ID} bytes")
        _public_key(self.public_key)
        if self.algorithm != ALGORITHM:
            raise ValueError(f"algorithm {self.algorithm!r} is not {ALGORITHM}")
        if not isinstance(self.rp_id, str) or not self.rp_id:
            raise ValueError("rp_id must be a non-empty string")
        if not isinstance(self.origin, str) or not self.origin.startswith(("https://", "http://")):
            raise ValueError("origin must be an http(s) origin")
        parse_utc(self.registered_at)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public_key)

    def to_body(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "credential_id": self.credential_id,
            "public_key": self.public_key,
            "algorithm": self.algorithm,
            "rp_id": self.rp_id,
            "origin": self.origin,
            "registered_at": self.registered_at,
        }

    @classmethod
    def from_body(cls, body: Any) -> PasskeyEnrolment:
        return cls(**exact_fields(body, ENROLMENT_FIELDS, "passkey enrolment"))


@dataclass(frozen=True, slots=True)
class PasskeyAssertion:
    """The browser's answer to the conclusion's challenge, as the conclusion carries it."""

    credential_id: str
    authenticator_data: str
    client_data_json: str
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {
            "credential_id": self.credential_id,
            "authenticator_data": self.authenticator_data,
            "client_data_json": self.client_data_json,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, obj: Any) -> PasskeyAssertion:
        fields = exact_fields(obj, ASSERTION_FIELDS, "passkey assertion")
        for name in sorted(fields):
            if not isinstance(fields[name], str):
                raise ValueError(f"{name} must be a string")
        return cls(**fields)


def assertion_fault(
    enrolment: PasskeyEnrolment, assertion: PasskeyAssertion, message: bytes
) -> str | None:
    """Why ``assertion`` is not ``enrolment``'s signature over ``message``, or None if it is.

    The checks, in order: the credential, the encodings, the client data (a ``webauthn.get``
    for this challenge from the enrolled origin, not cross-origin), the authenticator data (the
    enrolled relying party, the user present), the ECDSA signature.
    """
    if assertion.credential_id != enrolment.credential_id:
        return (
            f"the passkey assertion is by credential {assertion.credential_id}, not the"
            f" enrolled {enrolment.credential_id}"
        )
    try:
        authenticator_data = from_b64url(assertion.authenticator_data, "authenticator_data")
        client_data = from_b64url(assertion.client_data_json, "client_data_json")
        signature = from_b64url(assertion.signature, "signature")
    except ValueError as exc:
        return f"the passkey assertion's {exc}"
    if len(client_data) > MAX_CLIENT_DATA or len(authenticator_data) > MAX_AUTHENTICATOR_DATA:
        return "the passkey assertion is larger than any authenticator writes"
    try:
        collected = parse_json(client_data)  # strict, as every verifier parses it
    except ValueError:
        return "the passkey's client data is not JSON"
    if not isinstance(collected, dict):
        return "the passkey's client data is not a JSON object"
    if collected.get("type") != "webauthn.get":
        return f"the passkey's client data is of type {collected.get('type')!r}, not webauthn.get"
    if collected.get("challenge") != b64url(challenge_of(message)):
        return "the passkey signed another challenge than this conclusion's"
    if collected.get("origin") != enrolment.origin:
        return f"the passkey signed for origin {collected.get('origin')!r}, not {enrolment.origin}"
    if collected.get("crossOrigin") is True:
        return "the passkey signed inside a cross-origin frame"
    if len(authenticator_data) < 37:
        return "the passkey's authenticator data is shorter than 37 bytes"
    if authenticator_data[:32] != hashlib.sha256(enrolment.rp_id.encode("utf-8")).digest():
        return (
            f"the passkey's authenticator data is for another relying party than {enrolment.rp_id}"
        )
    if not authenticator_data[32] & FLAG_USER_PRESENT:
        return "the passkey's authenticator did not see the user present"
    signed = authenticator_data + hashlib.sha256(client_data).digest()
    try:
        _public_key(enrolment.public_key).verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "the passkey signature does not verify"
    return None


def user_verified(assertion: PasskeyAssertion) -> bool:
    """Whether the authenticator verified the user (PIN, fingerprint), not only their presence."""
    data = from_b64url(assertion.authenticator_data, "authenticator_data")
    return len(data) > 32 and bool(data[32] & FLAG_USER_VERIFIED)

"""The server's signing-key history: the trust root every verifier checks signatures against.

The history starts with the server's first key; each rotation names the next key and is signed
by the key before it, so a verifier that trusts the first key (or any key of the history) can
follow every rotation without trusting anything else. It is kept beside the signing key as
canonical JSON (``{"first": <base64 key>, "rotations": [...]}``) and chained into each case the
first time a key signs for it (``signing_key``, then ``key_rotated`` entries): see "Signing keys"
in docs/archive.md.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from recorder.canonical import canonical_json
from recorder.signing import PUBLIC_KEY_SIZE, Signer, fingerprint_of, verify_signature

ROTATION_TYPE = "takan.key-rotation"
KEY_KINDS = ("signing_key", "key_rotated")  # the chain entries that record a signing key


def rotation_statement(previous: str, next_fingerprint: str, public_key: bytes, at: str) -> bytes:
    """What the previous key signs when it hands over to the next one."""
    return canonical_json(
        {
            "type": ROTATION_TYPE,
            "previous": previous,
            "next": next_fingerprint,
            "public_key": base64.b64encode(public_key).decode("ascii"),
            "at": at,
        }
    )


def _decode_b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not base64") from exc


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """``previous`` hands over to ``public_key`` at ``at``; ``signature`` is the previous key's."""

    previous: str
    public_key: bytes
    at: str
    signature: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.public_key)

    def statement(self) -> bytes:
        return rotation_statement(self.previous, self.fingerprint, self.public_key, self.at)

    def verifies_with(self, previous_public_key: bytes) -> bool:
        return fingerprint_of(previous_public_key) == self.previous and verify_signature(
            previous_public_key, self.statement(), self.signature
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "previous": self.previous,
            "fingerprint": self.fingerprint,
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "at": self.at,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, obj: Any) -> KeyRotation:
        if not isinstance(obj, dict):
            raise ValueError("a key rotation must be a JSON object")
        expected = {"previous", "fingerprint", "public_key", "at", "signature"}
        if set(obj) != expected:
            raise ValueError(f"a key rotation has the fields {sorted(expected)}")
        public_key = _decode_b64(obj["public_key"], "public_key")
        if len(public_key) != PUBLIC_KEY_SIZE:
            raise ValueError("public_key is not a raw Ed25519 public key")
        if not isinstance(obj["previous"], str) or not isinstance(obj["at"], str):
            raise ValueError("previous and at must be strings")
        rotation = cls(obj["previous"], public_key, obj["at"], _decode_b64(obj["signature"], "s"))
        if obj["fingerprint"] != rotation.fingerprint:
            raise ValueError("fingerprint is not the public key's")
        return rotation


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """The first key and every rotation since, each signed by the key before it."""

    first: bytes
    rotations: tuple[KeyRotation, ...] = ()

    def __post_init__(self) -> None:
        if len(self.first) != PUBLIC_KEY_SIZE:
            raise ValueError("the first key is not a raw Ed25519 public key")
        previous = self.first
        for number, rotation in enumerate(self.rotations, 1):
            if not rotation.verifies_with(previous):
                raise ValueError(f"rotation {number} is not signed by the key before it")
            previous = rotation.public_key

    @classmethod
    def starting_with(cls, public_key: bytes) -> KeyHistory:
        return cls(public_key)

    @property
    def public_keys(self) -> tuple[bytes, ...]:
        return (self.first, *(r.public_key for r in self.rotations))

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(fingerprint_of(key) for key in self.public_keys)

    @property
    def current(self) -> str:
        return self.fingerprints[-1]

    def rotations_after(self, fingerprint: str) -> tuple[KeyRotation, ...]:
        """The rotations that lead from ``fingerprint`` to the current key; ValueError if
        ``fingerprint`` is not a key of this history."""
        fingerprints = self.fingerprints
        if fingerprint not in fingerprints:
            raise ValueError(f"{fingerprint} is not a key of this server's history")
        return self.rotations[fingerprints.index(fingerprint) :]

    def rotated(self, old: Signer, new: Signer, at: str) -> KeyHistory:
        """The history with ``old`` (the current key) handing over to ``new``."""
        if old.fingerprint != self.current:
            raise ValueError(f"{old.fingerprint} is not the current key {self.current}")
        if new.fingerprint in self.fingerprints:
            raise ValueError(f"{new.fingerprint} is already in the history")
        statement = rotation_statement(old.fingerprint, new.fingerprint, new.public_key_bytes, at)
        rotation = KeyRotation(old.fingerprint, new.public_key_bytes, at, old.sign(statement))
        return KeyHistory(self.first, (*self.rotations, rotation))

    def to_json(self) -> dict[str, Any]:
        return {
            "first": base64.b64encode(self.first).decode("ascii"),
            "rotations": [rotation.to_json() for rotation in self.rotations],
        }

    @classmethod
    def from_json(cls, obj: Any) -> KeyHistory:
        if not isinstance(obj, dict) or set(obj) != {"first", "rotations"}:
            raise ValueError('a key history is {"first": …, "rotations": […]}')
        if not isinstance(obj["rotations"], list):
            raise ValueError("rotations must be a list")
        rotations = tuple(KeyRotation.from_json(r) for r in obj["rotations"])
        return cls(_decode_b64(obj["first"], "first"), rotations)

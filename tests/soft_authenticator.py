"""A software WebAuthn authenticator for the API tests: what a phone or laptop passkey answers.

It answers ``navigator.credentials.create`` (attestation "none", a P-256 key) and
``navigator.credentials.get`` in the JSON the browser's ``PublicKeyCredential.toJSON()`` gives,
so the server's real ceremony code (py_webauthn) checks it as it checks Chromium's. The browser
tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recorder.passkey import b64url

AAGUID = bytes(16)


@dataclass
class SoftAuthenticator:
    origin: str
    rp_id: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    user_verified: bool = True

    @property
    def spki_b64(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def _flags(self, attested: bool) -> int:
        return 0x01 | (0x04 if self.user_verified else 0) | (0x40 if attested else 0)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin},
            separators=(",", ":"),
        ).encode()

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """The registration response to the server's creation options (their JSON)."""
        rp_hash = hashlib.sha256(self.rp_id.encode()).digest()
        attested = (
            AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        auth_data = rp_hash + bytes([self._flags(True)]) + struct.pack(">I", 0) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], None)
        return self._answer(
            {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            }
        )

    def get(
        self, challenge: str, *, origin: str | None = None, rp_id: str | None = None
    ) -> dict[str, Any]:
        """The assertion over ``challenge`` (base64url), as ``toJSON()`` spells it."""
        self.sign_count += 1
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        auth_data = rp_hash + bytes([self._flags(False)]) + struct.pack(">I", self.sign_count)
        client_data = self._client_data("webauthn.get", challenge, origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return self._answer(
            {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": None,
            }
        )

    def _answer(self, response: dict[str, Any]) -> dict[str, Any]:
        """``PublicKeyCredential.toJSON()`` around an authenticator's response."""
        credential = b64url(self.credential_id)
        return {
            "id": credential,
            "rawId": credential,
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

"""An inspection's conclusion, signed by the server key on the inspector's behalf.

``signature`` is base64 Ed25519 over ``canonical_json({"conclusion": {inspection_id, outcome,
reason, by, at, refers_to}})``; ``refers_to`` is the chain seq of the conclusion a correction
replaces (None for the first). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from recorder.canonical import canonical_json
from recorder.chain import parse_utc
from recorder.layout import check_inspection_id
from recorder.manifest import encode_signature
from recorder.signing import Signer, verify_signature

OUTCOMES = ("pass", "fail", "correction")
MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class Conclusion:
    inspection_id: str
    outcome: str
    reason: str
    by: str
    at: str
    refers_to: int | None

    def __post_init__(self) -> None:
        check_inspection_id(self.inspection_id)
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError("a conclusion needs a reason")
        if len(self.reason) > MAX_REASON:
            raise ValueError(f"reason is over {MAX_REASON} characters")
        if not isinstance(self.by, str) or not self.by:
            raise ValueError("a conclusion names who concluded")
        parse_utc(self.at)
        if self.refers_to is not None and (
            isinstance(self.refers_to, bool) or not isinstance(self.refers_to, int)
        ):
            raise ValueError("refers_to must be a chain seq or null")

    def fields(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
            "refers_to": self.refers_to,
        }

    def message(self) -> bytes:
        """The signed bytes."""
        return canonical_json({"conclusion": self.fields()})

    def signed_body(self, signer: Signer) -> dict[str, Any]:
        """The chain entry body: the fields, the signature and the signing key's fingerprint."""
        signature = encode_signature(signer.sign(self.message()))
        return {**self.fields(), "signature": signature, "key_fingerprint": signer.fingerprint}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Conclusion:
        """The conclusion a chain entry body states; ValueError if malformed."""
        try:
            return cls(
                body["inspection_id"],
                body["outcome"],
                body["reason"],
                body["by"],
                body["at"],
                body["refers_to"],
            )
        except KeyError as exc:
            raise ValueError(f"conclusion lacks {exc.args[0]}") from exc


def verify_conclusion(public_key: bytes, body: dict[str, Any]) -> bool:
    """True when ``body`` (a chain entry body) carries a valid signature by ``public_key``."""
    try:
        conclusion = Conclusion.from_body(body)
        signature = base64.b64decode(str(body.get("signature", "")), validate=True)
    except (ValueError, TypeError, binascii.Error):
        return False
    return verify_signature(public_key, conclusion.message(), signature)

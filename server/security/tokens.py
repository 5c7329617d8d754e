"""Signed, expiring tokens (pure: no I/O).

A token is ``base64url(payload_json) + "." + base64url(hmac_sha256(secret, kind + "." + payload))``.
The kind is part of what is signed, so a session token can never pass as an invite and the other way
round. Whether a token was revoked (logout, inspection ended) is the caller's business.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal

TokenKind = Literal["session", "invite"]


class TokenError(Exception):
    """The token is malformed, forged, of another kind, or expired."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SessionToken:
    """Proves a logged-in user; ``session_id`` lets the server revoke it."""

    user_id: int
    username: str
    role: str
    session_id: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class InviteToken:
    """Lets the applicant into one inspection of one case until expiry or the inspection ends."""

    case_id: str
    inspection_id: str
    expires_at: int


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 bytes")
        self._secret = secret

    def _mac(self, kind: TokenKind, payload: str) -> str:
        message = f"{kind}.{payload}".encode("ascii")
        return _b64e(hmac.new(self._secret, message, hashlib.sha256).digest())

    def _sign(self, kind: TokenKind, body: dict[str, Any]) -> str:
        payload = _b64e(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(kind, payload)}"

    def _open(self, kind: TokenKind, token: str, now: float) -> dict[str, Any]:
        if (
            not isinstance(token, str)
            or len(token) > 4096
            or not token.isascii()
            or token.count(".") != 1
        ):
            raise TokenError("malformed token")
        payload, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(kind, payload)):
            raise TokenError("bad signature")
        try:
            body = json.loads(_b64d(payload))
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenError("malformed token") from exc
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
            raise TokenError("malformed token")
        if body["exp"] <= now:
            raise TokenError("token expired")
        return body

    def sign_session(self, token: SessionToken) -> str:
        return self._sign(
            "session",
            {
                "uid": token.user_id,
                "sub": token.username,
                "role": token.role,
                "sid": token.session_id,
                "exp": token.expires_at,
            },
        )

    def open_session(self, token: str, now: float) -> SessionToken:
        body = self._open("session", token, now)
        try:
            return SessionToken(
                user_id=int(body["uid"]),
                username=str(body["sub"]),
                role=str(body["role"]),
                session_id=str(body["sid"]),
                expires_at=int(body["exp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenError("malformed token") from exc

    def sign_invite(self, token: InviteToken) -> str:
        return self._sign(
            "invite",
            {"case": token.case_id, "insp": token.inspection_id, "exp": token.expires_at},
        )

    def open_invite(self, token: str, now: float) -> InviteToken:
        body = self._open("invite", token, now)
        try:
            return InviteToken(
                case_id=str(body["case"]),
                inspection_id=str(body["insp"]),
                expires_at=int(body["exp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenError("malformed token") from exc

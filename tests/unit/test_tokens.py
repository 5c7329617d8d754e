"""Signed tokens: what opens, what is refused, and why (server.tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from server.security.tokens import InviteToken, SessionToken, TokenError, TokenSigner

SECRET = b"s" * 32
NOW = 1_800_000_000.0
SESSION = SessionToken(7, "inspector1", "inspector", "sid-123", int(NOW) + 3600)
INVITE = InviteToken("CASE-1", "a" * 32, int(NOW) + 3600)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed_by_hand(kind: str, payload: bytes, secret: bytes = SECRET) -> str:
    """A token with a valid signature over an arbitrary payload (the documented format)."""
    encoded = _b64(payload)
    mac = hmac.new(secret, f"{kind}.{encoded}".encode(), hashlib.sha256).digest()
    return f"{encoded}.{_b64(mac)}"


def test_session_token_opens_to_the_same_values() -> None:
    signer = TokenSigner(SECRET)
    assert signer.open_session(signer.sign_session(SESSION), NOW) == SESSION


def test_invite_token_opens_to_the_same_values() -> None:
    signer = TokenSigner(SECRET)
    assert signer.open_invite(signer.sign_invite(INVITE), NOW) == INVITE


def test_token_is_url_safe_text_without_padding() -> None:
    token = TokenSigner(SECRET).sign_invite(INVITE)
    assert token.count(".") == 1
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_tampered_payload_is_refused_as_bad_signature() -> None:
    signer = TokenSigner(SECRET)
    payload, mac = signer.sign_session(SESSION).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["role"] = "admin"
    forged = _b64(json.dumps(body).encode()) + "." + mac
    with pytest.raises(TokenError, match="bad signature"):
        signer.open_session(forged, NOW)


def test_tampered_signature_is_refused() -> None:
    signer = TokenSigner(SECRET)
    token = signer.sign_invite(INVITE)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(TokenError, match="bad signature"):
        signer.open_invite(flipped, NOW)


def test_token_signed_with_another_secret_is_refused() -> None:
    token = TokenSigner(b"x" * 32).sign_session(SESSION)
    with pytest.raises(TokenError, match="bad signature"):
        TokenSigner(SECRET).open_session(token, NOW)


def test_session_token_cannot_be_used_as_an_invite() -> None:
    signer = TokenSigner(SECRET)
    with pytest.raises(TokenError, match="bad signature"):
        signer.open_invite(signer.sign_session(SESSION), NOW)


def test_invite_token_cannot_be_used_as_a_session() -> None:
    signer = TokenSigner(SECRET)
    with pytest.raises(TokenError, match="bad signature"):
        signer.open_session(signer.sign_invite(INVITE), NOW)


def test_token_is_accepted_until_one_second_before_expiry() -> None:
    signer = TokenSigner(SECRET)
    token = signer.sign_invite(INVITE)
    assert signer.open_invite(token, INVITE.expires_at - 1) == INVITE


def test_token_is_refused_as_expired_at_and_after_its_expiry_time() -> None:
    signer = TokenSigner(SECRET)
    session, invite = signer.sign_session(SESSION), signer.sign_invite(INVITE)
    for now in (SESSION.expires_at, SESSION.expires_at + 1):
        with pytest.raises(TokenError, match="expired"):
            signer.open_session(session, now)
    with pytest.raises(TokenError, match="expired"):
        signer.open_invite(invite, INVITE.expires_at + 86400)


@pytest.mark.parametrize(
    "token",
    ["", "no-dot-at-all", "a.b.c", "x" * 5000, "!!!.???", "\u00e9.\u00e9", "\u754c.x"],
    ids=["empty", "no-dot", "two-dots", "too-long", "junk", "latin-1", "cjk"],
)
def test_malformed_token_is_refused_without_crashing(token: str) -> None:
    signer = TokenSigner(SECRET)
    with pytest.raises(TokenError):
        signer.open_session(token, NOW)
    with pytest.raises(TokenError):
        signer.open_invite(token, NOW)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'{"exp": "soon"}', b'{"exp": 1900000000}', b"\xff\xfe"],
    ids=["not-json", "array", "exp-not-int", "fields-missing", "not-utf8"],
)
def test_validly_signed_but_malformed_payload_is_refused_as_malformed(payload: bytes) -> None:
    signer = TokenSigner(SECRET)
    with pytest.raises(TokenError, match="malformed"):
        signer.open_session(_signed_by_hand("session", payload), NOW)
    with pytest.raises(TokenError, match="malformed"):
        signer.open_invite(_signed_by_hand("invite", payload), NOW)


def test_signature_format_matches_the_documented_construction() -> None:
    expires_at = int(NOW) + 60
    body = {"case": "CASE-1", "exp": expires_at, "insp": "b" * 32}
    token = _signed_by_hand("invite", json.dumps(body).encode())
    expected = InviteToken("CASE-1", "b" * 32, expires_at)
    assert TokenSigner(SECRET).open_invite(token, NOW) == expected


def test_short_secret_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenSigner(b"short")

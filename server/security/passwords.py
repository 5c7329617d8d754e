"""Salted password hashes with scrypt (pure)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest_hex) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


MIN_LENGTH = 8
MAX_LENGTH = 256  # what POST /api/login takes: a longer password could never sign in
_COMMON = frozenset(
    ("password", "password1", "12345678", "123456789", "1234567890", "87654321", "qwertyui",
     "qwerty123", "abcd1234", "abc12345", "11111111", "00000000", "iloveyou", "admin123",
     "changeme", "letmein1", "welcome1", "passw0rd", "inspector", "auditor1", "takan123")
)  # fmt: skip


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` may not be ``username``'s, or None if it may: empty, shorter than 8 or
    longer than 256 characters, control characters, one character repeated, the user name,
    or one of the first passwords anyone tries."""
    if not password:
        return "the password is empty"
    if len(password) < MIN_LENGTH:
        return f"the password must be at least {MIN_LENGTH} characters (it has {len(password)})"
    if len(password) > MAX_LENGTH:
        return f"the password must be at most {MAX_LENGTH} characters"
    if not password.isprintable():
        return "the password must not hold control characters"
    folded = password.casefold()
    if len(set(folded)) == 1:
        return "the password must not be one character repeated"
    if folded == username.casefold():
        return "the password must not be the user name"
    if folded in _COMMON:
        return "the password is one of the first anyone tries"
    return None

"""Password hashes (server.passwords): salted scrypt, verifiable, never reversible."""

from __future__ import annotations

import pytest

from server.security.passwords import check_password, hash_password, password_problem


def test_hash_verifies_the_right_password() -> None:
    stored = hash_password("correct horse battery staple")
    assert check_password("correct horse battery staple", stored)


def test_hash_refuses_a_wrong_password() -> None:
    stored = hash_password("correct horse battery staple")
    assert not check_password("correct horse battery stapler", stored)
    assert not check_password("", stored)


def test_same_password_hashes_differently_each_time_because_of_the_salt() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]  # the salts differ
    assert check_password("same", first)
    assert check_password("same", second)


def test_hash_names_scheme_and_parameters_and_does_not_contain_the_password() -> None:
    stored = hash_password("pw-visible?")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(bytes.fromhex(salt)) == 16
    assert len(bytes.fromhex(digest)) == 32
    assert "pw-visible?" not in stored


def test_non_ascii_password_verifies() -> None:
    stored = hash_password("密码-пароль-🔑")
    assert check_password("密码-пароль-🔑", stored)
    assert not check_password("密码-пароль", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "bcrypt$16384$8$1$00$00",
        "scrypt$x$8$1$00$00",
        "scrypt$16384$8$1$zz$00",
        "scrypt$16384$8$1$00",
    ],
    ids=["empty", "no-fields", "other-scheme", "bad-n", "bad-salt-hex", "missing-digest"],
)
def test_corrupt_stored_hash_never_verifies_and_never_raises(stored: str) -> None:
    assert check_password("anything", stored) is False


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "empty"),
        ("short1", "at least 8 characters (it has 6)"),
        ("x" * 257, "at most 256"),
        ("aaaaaaaaaa", "one character repeated"),
        ("InSpEcToR", "not be the user name"),
        ("Password1", "first anyone tries"),
        ("tab\there-ok", "control characters"),
    ],
)
def test_weak_passwords_are_refused_saying_why(password: str, problem: str) -> None:
    found = password_problem(password, "inspector")
    assert found is not None
    assert problem in found


def test_a_long_enough_unusual_password_is_accepted() -> None:
    assert password_problem("correct horse battery staple", "inspector") is None
    assert password_problem("ab" * 128, "inspector") is None  # 256 characters: the most
    assert password_problem("pw-inspector1-secret", "auditor1") is None

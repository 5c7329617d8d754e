"""The signing key: created once with safe permissions, refused when it is not safe."""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recorder.errors import SigningKeyError
from recorder.signing import Signer, fingerprint_of, verify_signature


def test_first_use_creates_a_0600_key_and_later_uses_load_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"
    first = Signer.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Signer.load_or_create(path).public_key_bytes == first.public_key_bytes
    assert [p.name for p in path.parent.iterdir()] == ["signing.pem"]


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    with ThreadPoolExecutor(8) as pool:
        signers = list(pool.map(lambda _: Signer.load_or_create(path), range(16)))
    assert len({s.fingerprint for s in signers}) == 1


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "signing.pem"
    Signer.load_or_create(path)
    path.chmod(mode)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        Signer.load_or_create(path)


def test_a_symlinked_key_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    Signer.load_or_create(real)
    link = tmp_path / "signing.pem"
    link.symlink_to(real)
    with pytest.raises(SigningKeyError):
        Signer.load_or_create(link)


def test_a_key_of_another_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(SigningKeyError, match="Ed25519"):
        Signer.load_or_create(path)


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(SigningKeyError, match="PEM"):
        Signer.load_or_create(path)


def test_fingerprint_is_sha256_of_the_raw_public_key() -> None:
    signer = Signer.generate()
    assert len(signer.public_key_bytes) == 32
    expected = "sha256:" + hashlib.sha256(signer.public_key_bytes).hexdigest()
    assert signer.fingerprint == fingerprint_of(signer.public_key_bytes) == expected


def test_signatures_verify_only_for_their_key_and_message() -> None:
    signer, other = Signer.generate(), Signer.generate()
    signature = signer.sign(b"message")
    assert verify_signature(signer.public_key_bytes, b"message", signature)
    assert not verify_signature(other.public_key_bytes, b"message", signature)
    assert not verify_signature(signer.public_key_bytes, b"messagE", signature)
    assert not verify_signature(signer.public_key_bytes, b"message", signature[:-1])
    assert not verify_signature(signer.public_key_bytes[:-1], b"message", signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify_signature(signer.public_key_bytes, b"message", flipped)

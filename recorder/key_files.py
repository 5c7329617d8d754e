"""The signing key and its history on disk: loaded together, created together, rotated together.

``signing.key`` is the current private key (recorder.signing); ``signing-keys.json`` beside it is
the key history (recorder.key_history) as canonical JSON. A rotation writes the next key to
``signing.key.next`` first, then the history naming it, then moves the next key into place; a
start that finds the history one rotation ahead finishes the move, so a crash at any step leaves
a key that the history names as current.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from recorder.canonical import canonical_json, parse_json
from recorder.errors import SigningKeyError
from recorder.key_history import KeyHistory
from recorder.signing import Signer
from recorder.storage import fsync_dir, write_durably

HISTORY_FILE = "signing-keys.json"


def history_path(key_path: Path) -> Path:
    return key_path.with_name(HISTORY_FILE)


def _next_key_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".next")


def _write_history(path: Path, history: KeyHistory) -> None:
    write_durably(path, canonical_json(history.to_json()))


def read_history(path: Path) -> KeyHistory:
    try:
        return KeyHistory.from_json(parse_json(path.read_bytes()))
    except ValueError as exc:
        raise SigningKeyError(f"key history {path} is not valid: {exc}") from exc


def load_signing_key(key_path: Path) -> tuple[Signer, KeyHistory]:
    """The current key and its history, creating both on first use.

    A key the history does not name as current is refused (someone replaced the key file),
    except the next key of an interrupted rotation, whose move into place is finished here.
    """
    path = history_path(key_path)
    if not path.exists():
        signer = Signer.load_or_create(key_path)
        history = KeyHistory.starting_with(signer.public_key_bytes)
        _write_history(path, history)
        return signer, history
    history = read_history(path)
    pending = _next_key_path(key_path)
    if pending.exists():
        upcoming = Signer.load_or_create(pending)
        if upcoming.fingerprint == history.current:
            pending.replace(key_path)
            fsync_dir(key_path.parent)
        else:
            pending.unlink()  # a rotation that never reached the history
    if not key_path.exists():
        raise SigningKeyError(f"no signing key at {key_path}, though {path} names one")
    signer = Signer.load_or_create(key_path)
    if signer.fingerprint != history.current:
        raise SigningKeyError(
            f"signing key {key_path} is {signer.fingerprint}, but the key history {path} names"
            f" {history.current} as current: restore the key, or rotate with `takan key rotate`"
        )
    return signer, history


def rotate_signing_key(key_path: Path, at: str) -> tuple[Signer, KeyHistory]:
    """Replace the current key by a new one, the old key signing the handover."""
    old, history = load_signing_key(key_path)
    pending = _next_key_path(key_path)
    with contextlib.suppress(FileNotFoundError):
        pending.unlink()
    new = Signer.load_or_create(pending)
    rotated = history.rotated(old, new, at)
    _write_history(history_path(key_path), rotated)
    pending.replace(key_path)
    fsync_dir(key_path.parent)
    return new, rotated

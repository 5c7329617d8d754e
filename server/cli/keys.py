"""``takan key``: show the signing-key history, or rotate to a new key.

A rotation is signed by the key it replaces and chained into each case the first time the new
key signs for it (``key_rotated``), so verifiers that trust the old key follow it. Stop the
server first: it holds the current key.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from recorder.clock import utc_iso
from recorder.errors import SigningKeyError
from recorder.key_files import load_signing_key, rotate_signing_key
from recorder.key_history import KeyHistory
from server.settings import SIGNING_KEY_FILE

DEFAULT_DATA = Path("data")


def add_key_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("key", help="show or rotate the archive signing key")
    commands = parser.add_subparsers(dest="key_command", required=True)
    for name, text in (
        ("show", "print every key of the history, oldest first"),
        ("rotate", "replace the signing key; the old key signs the handover (stop the server)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data directory")
    return parser


def _print_history(history: KeyHistory, out: TextIO) -> None:
    for number, fingerprint in enumerate(history.fingerprints):
        since = "first key" if number == 0 else f"since {history.rotations[number - 1].at}"
        current = "  (current)" if fingerprint == history.current else ""
        print(f"  {fingerprint}  {since}{current}", file=out)


def run_key(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    key_path = args.data / SIGNING_KEY_FILE
    try:
        if args.key_command == "rotate":
            if not key_path.exists():
                raise SigningKeyError(f"no signing key at {key_path}: nothing to rotate")
            old, _ = load_signing_key(key_path)
            new, history = rotate_signing_key(key_path, utc_iso(time.time()))
            print(f"rotated: {old.fingerprint} -> {new.fingerprint}", file=out)
        else:
            if not key_path.exists():
                raise SigningKeyError(f"no signing key at {key_path} (start the server once)")
            _, history = load_signing_key(key_path)
    except SigningKeyError as exc:
        print(f"takan key: {exc}", file=sys.stderr)
        return 1
    print("signing keys (server clock, UTC):", file=out)
    _print_history(history, out)
    return 0

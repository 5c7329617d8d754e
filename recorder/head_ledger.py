"""This process's durable record of each case's chain head: what lets it tell its own tail from
one an insider appended to the archive.

Before a chain entry is written, its ``(case, seq, hash, prev)`` is appended to ``heads.log``
and synced, each line authenticated with an HMAC whose key only the signing key can derive
(an Ed25519 signature is deterministic, so the key is the same at every start and nobody
without the private key can forge a line). At most one entry per case is in flight, so after a
crash the ledger is at most one entry ahead of the chain, and that entry's ``prev`` is the
stored head. The file keeps only the latest record per case once it grows (compaction).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from recorder.signing import Signer
from recorder.storage import fsync_dir

logger = logging.getLogger(__name__)

LEDGER_FILE = "heads.log"
COMPACT_AFTER_LINES = 20_000
_CONTEXT = b"takan head ledger v1"


def ledger_mac_key(signer: Signer) -> bytes:
    return hashlib.sha256(_CONTEXT + signer.sign(_CONTEXT)).digest()


@dataclass(frozen=True, slots=True)
class HeadRecord:
    case_id: str
    seq: int
    hash: str
    prev: str

    def line(self, mac_key: bytes) -> bytes:
        fields = f"{self.case_id} {self.seq} {self.hash} {self.prev}"
        mac = hmac.new(mac_key, fields.encode(), hashlib.sha256).hexdigest()
        return f"{fields} {mac}\n".encode()

    @classmethod
    def parse(cls, line: str, mac_key: bytes) -> HeadRecord | None:
        """The record a line holds, or None if it is torn or its MAC does not hold."""
        parts = line.split(" ")
        if len(parts) != 5 or not parts[1].isdigit():
            return None
        expected = hmac.new(mac_key, " ".join(parts[:4]).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts[4]):
            return None
        return cls(parts[0], int(parts[1]), parts[2], parts[3])


class HeadLedger:
    """The latest head this process wrote for each case; thread-safe, appends are synced."""

    def __init__(self, directory: Path, mac_key: bytes) -> None:
        self.path = directory / LEDGER_FILE
        self._mac_key = mac_key
        self._heads: dict[str, HeadRecord] = {}
        self._lines = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.rejected_lines = 0

    def open(self) -> None:
        """Read the ledger (blocking); lines whose MAC fails are counted and ignored."""
        with self._lock:
            if self._fd is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                for line in self.path.read_text(encoding="ascii", errors="replace").splitlines():
                    record = HeadRecord.parse(line, self._mac_key)
                    if record is None:
                        self.rejected_lines += 1
                        continue
                    self._heads[record.case_id] = record
                    self._lines += 1
            if self.rejected_lines:
                logger.error(
                    "head ledger lines rejected (torn or not written with this key)",
                    extra={"path": str(self.path), "lines": self.rejected_lines},
                )
            if self._lines > COMPACT_AFTER_LINES:
                self._compact_locked()
            else:
                # Appending only: another process with this ledger open (``takan export``)
                # keeps appending to the same file.
                self._fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600
                )

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def reread(self, case_id: str) -> HeadRecord | None:
        """The latest record for ``case_id`` in the file, as another process (``takan export``
        beside the server) may have appended it since this one opened it (blocking)."""
        latest: HeadRecord | None = None
        with contextlib.suppress(FileNotFoundError):
            for line in self.path.read_text(encoding="ascii", errors="replace").splitlines():
                record = HeadRecord.parse(line, self._mac_key)
                if record is not None and record.case_id == case_id:
                    latest = record
        with self._lock:
            if latest is not None:
                self._heads[case_id] = latest
            return latest

    def head(self, case_id: str) -> HeadRecord | None:
        with self._lock:
            return self._heads.get(case_id)

    def record(self, record: HeadRecord) -> None:
        """Append ``record`` durably (blocking) before its chain entry is written."""
        with self._lock:
            if self._fd is None:
                raise RuntimeError("the head ledger is not open")
            line = record.line(self._mac_key)
            os.write(self._fd, line)
            os.fdatasync(self._fd)
            self._heads[record.case_id] = record
            self._lines += 1
            if self._lines > COMPACT_AFTER_LINES:
                self._compact_locked()

    def _compact_locked(self) -> None:
        """Rewrite the file with the latest record per case, then append to it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with tmp.open("wb") as handle:
            for record in self._heads.values():
                handle.write(record.line(self._mac_key))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)
        fsync_dir(self.path.parent)
        self._lines = len(self._heads)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)

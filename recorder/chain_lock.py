"""One writer at a time per case chain, across the processes that share a data directory.

A running server and ``takan export`` (or ``takan reindex``, or a second server on the same
spool) may all append to a case's chain. Each append holds an exclusive ``flock`` on
``spool/locks/{case_id}`` from before it reads the head to after its entry is durable in the
spool; the holder first looks for the entry after its own head (in the spool, where every writer
puts an entry before releasing the lock, or in storage once uploaded), so an entry another
process wrote is read and linked to, never overwritten. The lock is taken without blocking the
event loop (non-blocking attempts, a short sleep between), so a cancelled wait holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
from pathlib import Path

from recorder import layout

RETRY_S = 0.002
LOCKS_DIR = "locks"


class ChainLocks:
    def __init__(self, spool_root: Path) -> None:
        self.directory = spool_root / LOCKS_DIR
        self._made = False

    def _try(self, case_id: str) -> int | None:
        """The locked descriptor, or None if another process holds the case (blocking I/O:
        an open and a non-blocking flock)."""
        layout.check_case_id(case_id)
        if not self._made:  # once, not on every append
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        fd = os.open(self.directory / case_id, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        return fd

    async def acquire(self, case_id: str) -> int:
        while True:
            fd = self._try(case_id)
            if fd is not None:
                return fd
            await asyncio.sleep(RETRY_S)

    @staticmethod
    def release(fd: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

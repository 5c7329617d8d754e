"""The recorder's exceptions: an archive that fails verification, and a storage backend that fails.

Foreign errors (``OSError``, S3 errors, ``zipfile`` errors) are translated into these at the
storage boundary, so callers handle two kinds of failure, never a backend's.
"""

from __future__ import annotations


class IntegrityError(Exception):
    """The archive is not what was recorded.

    ``where`` names the place exactly: an object key (``cases/c1/chain/000000000003.json``) or a
    chain position (``chain entry 3``). ``reason`` says what is wrong there. ``missing``: when
    what failed is an object the chain records and the archive lacks, every such object as
    (key, chain entry) — the first is ``where`` — so an operator sees all a spool still holds.
    """

    def __init__(self, where: str, reason: str, missing: tuple[tuple[str, int], ...] = ()) -> None:
        super().__init__(where, reason)
        self.where = where
        self.reason = reason
        self.missing = missing

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class StorageError(Exception):
    """A storage backend could not do what was asked (I/O failure, conflicting write, bad key)."""


class ObjectNotFound(StorageError):
    """The key names no stored object."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no object at {self.key}"


class WriteConflict(StorageError):
    """The key already holds other bytes: write-once storage never replaces them."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key} already exists with different content (write-once)")
        self.key = key


class NotAStoredObject(ObjectNotFound):
    """Something is at the key's place that is not a stored object: a symlink (on the path or
    at the end), a FIFO, a device, a socket or a directory. ``reason`` says which."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key)
        self.args = (key, reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"no object at {self.key}: {self.reason}"


class ChainMoved(Exception):
    """An append that had to follow a given entry, refused: another writer chained an entry
    of that kind for that inspection first (``last`` is its seq, None if there is none)."""

    def __init__(self, kind: str, inspection_id: str, last: int | None) -> None:
        super().__init__(f"the last {kind} of inspection {inspection_id} is now entry {last}")
        self.kind = kind
        self.inspection_id = inspection_id
        self.last = last


class SigningKeyError(Exception):
    """The signing key file is unusable: unsafe permissions, wrong type, unreadable."""


class ChainRefused(Exception):
    """The database would not sequence an entry: the writer's hold on the case lapsed, another
    writer's entry is the head now, or another node holds the entry's inspection."""

"""Where the archive lives: a small write-once object store interface and its local backend.

Keys are the object keys of ``recorder.layout``. Every backend is write-once: putting an existing
key succeeds only if the stored bytes are identical (so a retried upload is harmless) and fails
otherwise. Methods are synchronous; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Protocol

from recorder.errors import ObjectNotFound, StorageError, WriteConflict

KEY_PATTERN = re.compile(r"[A-Za-z0-9._/-]{1,1024}")
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9._/-]{0,1024}")
HASH_CHUNK = 1 << 20
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Storage(Protocol):
    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Store ``data`` under ``key`` once; ``sha256`` (hex) must be the data's SHA-256.

        Putting the identical bytes again is a no-op; different bytes raise StorageError.
        """
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A stream of the object's bytes, for large objects; the caller closes it.

        Reading it yields the stored bytes themselves, never a cached or recorded checksum.
        """
        ...

    def exists(self, key: str) -> bool: ...

    def describe(self) -> str:
        """Where this storage is, for humans (never credentials)."""
        ...

    def list(self, prefix: str) -> builtins.list[str]:
        """All keys starting with ``prefix`` (a plain string prefix), sorted."""
        ...


def check_key(key: str) -> str:
    """``key`` if it is a safe relative object key: ``a/b/c.ext`` and nothing that could escape.

    Refused: empty, absolute, backslashes, empty segments, ``.``/``..`` segments, segments
    starting with a dot (reserved for temporary files), characters outside ``A-Za-z0-9._/-``.
    """
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise StorageError(f"object key {key!r} is empty, too long or has a forbidden character")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise StorageError(f"object key {key!r} has an empty or dot segment")
    return key


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise StorageError(f"prefix {prefix!r} has a forbidden character")
    if prefix.startswith("/") or any(s.startswith(".") for s in prefix.split("/")[:-1]):
        raise StorageError(f"prefix {prefix!r} is absolute or has a dot segment")
    return prefix


def digest_stream(stream: BinaryIO, chunk_size: int = HASH_CHUNK) -> tuple[str, int]:
    """Hex SHA-256 and size of everything ``stream`` yields, read in chunks into one buffer."""
    digest = hashlib.sha256()
    size = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
    buffer = memoryview(bytearray(chunk_size))
    while count := readinto(buffer):
        digest.update(buffer[:count])
        size += count
    return digest.hexdigest(), size


def object_digest(storage: Storage, key: str) -> tuple[str, int]:
    """Hex SHA-256 and size of a stored object, streamed."""
    with storage.open(key) as stream:
        return digest_stream(stream)


class LocalStorage:
    """Objects as read-only files under ``root``: ``root/cases/c1/chain/000000000000.json``.

    A put writes a temporary file next to the target, fsyncs it, makes it 0444, hard-links it
    into place (which fails if the key exists: write-once even between processes), and fsyncs
    the directory.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def describe(self) -> str:
        return f"local directory {self.root}"

    def put(self, key: str, data: bytes, sha256: str) -> None:
        path = self._path(key)
        if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
            raise StorageError(f"{key}: sha256 {sha256!r} is not 64 lower-case hex digits")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise StorageError(f"{key}: data has SHA-256 {actual}, the caller said {sha256}")
        try:
            if path.is_file():
                self._same_or_conflict(key, path, data)
                return
            self._make_dirs(path.parent)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                    os.fchmod(fd, 0o444)
                finally:
                    os.close(fd)
                self._link_into_place(key, tmp, path, data)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"{key}: {exc.strerror or exc}") from exc

    def _link_into_place(self, key: str, tmp: Path, path: Path, data: bytes) -> None:
        try:
            os.link(tmp, path)
        except FileExistsError:
            self._same_or_conflict(key, path, data)
        except OSError:
            # A file system without hard links: rename, refusing if the key appeared meanwhile.
            if path.exists():
                self._same_or_conflict(key, path, data)
            else:
                os.rename(tmp, path)

    @staticmethod
    def _same_or_conflict(key: str, path: Path, data: bytes) -> None:
        if path.read_bytes() != data:
            raise WriteConflict(key)

    def _make_dirs(self, directory: Path) -> None:
        missing: builtins.list[Path] = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
            fsync_dir(new.parent)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"{key}: {exc.strerror or exc}") from exc

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            if path.is_dir():
                raise ObjectNotFound(key)
            return path.open("rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"{key}: {exc.strerror or exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> builtins.list[str]:
        check_prefix(prefix)
        directory = prefix.rpartition("/")[0]
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        keys: builtins.list[str] = []

        def failed(exc: OSError) -> None:
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                raise StorageError(f"listing {prefix!r}: {exc.strerror or exc}") from exc

        for here, dirs, files in os.walk(start, onerror=failed):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            relative = Path(here).relative_to(self.root).as_posix()
            base = "" if relative == "." else relative + "/"
            keys.extend(
                base + name
                for name in files
                if not name.startswith(".") and (base + name).startswith(prefix)
            )
        return sorted(keys)


def move_durably(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` (same file system), creating its folder, durably."""
    target.parent.mkdir(parents=True, exist_ok=True)
    source.replace(target)
    fsync_dir(target.parent)


def file_digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size) of a file."""
    with path.open("rb") as handle:
        return digest_stream(handle)


def fsync_dir(directory: Path) -> None:
    """Make a rename or new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Where the archive lives: a small write-once object store interface and its local backend.

Keys are the object keys of ``recorder.layout``. Every backend is write-once: putting an existing
key succeeds only if the stored bytes are identical (so a retried upload is harmless) and fails
otherwise. Methods are synchronous; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Protocol

from recorder.errors import (
    IntegrityError,
    NotAStoredObject,
    ObjectNotFound,
    StorageError,
    WriteConflict,
)

KEY_PATTERN = re.compile(r"[A-Za-z0-9._/-]{1,1024}")
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9._/-]{0,1024}")
HASH_CHUNK = 1 << 20
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
TEMPORARY_SUFFIX = ".tmp"
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: should a FIFO replace the file between the look and the open, opening it cannot
# block; the descriptor's fstat then refuses it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Storage(Protocol):
    def put(self, key: str, data: bytes, sha256: str) -> None:
        """Store ``data`` under ``key`` once; ``sha256`` (hex) must be the data's SHA-256.

        Putting the identical bytes again is a no-op; different bytes raise StorageError.
        """
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none (or only something that is not an
        object: NotAStoredObject says what), StorageError for a key ``key_problem`` refuses."""
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
        """All keys starting with ``prefix`` (a plain string prefix), sorted: exactly the
        objects ``get`` reads, never a key ``key_problem`` refuses."""
        ...


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot name a stored object, or None if it can.

    One rule for every backend: what one would never list, none lists and none reads. Refused:
    empty, absolute, backslashes, empty segments, ``.``/``..`` segments, segments starting with
    a dot (reserved for temporary files), a last segment ending in ``.tmp`` (a temporary),
    characters outside ``A-Za-z0-9._/-``, more than 1024 characters.
    """
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        return "is empty, too long or has a forbidden character"
    for segment in key.split("/"):
        if not segment:
            return "has an empty segment"
        if segment.startswith("."):
            return "has a segment starting with a dot"
    if key.endswith(TEMPORARY_SUFFIX):
        return f"ends in {TEMPORARY_SUFFIX} (a temporary file)"
    return None


def is_object_key(key: str) -> bool:
    """Whether ``key`` can name a stored object: the filter of every backend's ``list``."""
    return key_problem(key) is None


def check_key(key: str) -> str:
    """``key`` if it can name a stored object (see ``key_problem``), else StorageError."""
    problem = key_problem(key)
    if problem is not None:
        raise StorageError(f"object key {key!r} {problem}")
    return key


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise StorageError(f"prefix {prefix!r} has a forbidden character")
    if prefix.startswith("/") or any(s.startswith(".") for s in prefix.split("/")[:-1]):
        raise StorageError(f"prefix {prefix!r} is absolute or has a dot segment")
    return prefix


def digest_stream(
    stream: BinaryIO, chunk_size: int = HASH_CHUNK, limit: int | None = None
) -> tuple[str, int]:
    """Hex SHA-256 and size of what ``stream`` yields, read in chunks into one buffer.

    With ``limit``, at most that many bytes are read (and hashed): a size equal to ``limit``
    means the stream holds at least that many, so an endless stream cannot hold the reader.
    """
    digest = hashlib.sha256()
    size = 0
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while (want := _wanted(chunk_size, size, limit)) and (chunk := stream.read(want)):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
    buffer = memoryview(bytearray(chunk_size))
    while (want := _wanted(chunk_size, size, limit)) and (
        count := readinto(buffer if want == chunk_size else buffer[:want])
    ):
        digest.update(buffer[:count])
        size += count
    return digest.hexdigest(), size


def _wanted(chunk_size: int, size: int, limit: int | None) -> int:
    return chunk_size if limit is None else min(chunk_size, limit - size)


def object_digest(storage: Storage, key: str, limit: int | None = None) -> tuple[str, int]:
    """Hex SHA-256 and size of a stored object, streamed; at most ``limit`` bytes are read.

    A verifier passes the recorded size + 1: a size above the recorded one is then reported
    as "more than" it, however large (or endless) the object behind the key is.
    """
    with storage.open(key) as stream:
        return digest_stream(stream, limit=limit)


class LocalStorage:
    """Objects as read-only files under ``root``: ``root/cases/c1/chain/000000000000.json``.

    A put writes a temporary file next to the target, fsyncs it, makes it 0444, hard-links it
    into place (which fails if the key exists: write-once even between processes), and fsyncs
    the directory.

    Only regular files are objects. Reads and listings open every directory below ``root``
    relative to its parent without following a symlink, look at the final name without
    following one, and refuse anything but a regular file (a FIFO, a device, a socket) without
    reading it: what ``list`` skips, ``get`` and ``open`` refuse. ``root`` itself may be a
    symlink (it is configured, not stored).
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
            if self.exists(key):
                self._same_or_conflict(key, data)
                return
            self._make_dirs(path.parent)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMPORARY_SUFFIX}")
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
            self._same_or_conflict(key, data)
        except OSError:
            # A file system without hard links: rename, refusing if the key appeared meanwhile.
            if os.path.lexists(path):
                self._same_or_conflict(key, data)
            else:
                os.rename(tmp, path)

    def _same_or_conflict(self, key: str, data: bytes) -> None:
        try:
            fd = self._open_object(key)
        except ObjectNotFound as exc:  # taken by what is not an object: other bytes all the same
            raise WriteConflict(key) from exc
        with os.fdopen(fd, "rb", buffering=0) as stored:
            if stored.read(len(data) + 1) != data:
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

    # reads: regular files only, no symlink followed below the root

    def _open_directory(self, key: str, names: builtins.list[str]) -> int:
        """A descriptor of ``root/names[0]/names[1]/…``, each opened in its parent without
        following a symlink. ObjectNotFound (naming ``key``) if one is absent, a symlink or
        not a directory."""
        try:
            dir_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"{key}: {self.root}: {exc.strerror or exc}") from exc
        for depth, name in enumerate(names):
            try:
                child = os.open(name, _DIRECTORY_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                error = _refusal(key, "/".join(names[: depth + 1]), name, dir_fd, exc)
                os.close(dir_fd)
                raise error from exc
            os.close(dir_fd)
            dir_fd = child
        return dir_fd

    def _open_object(self, key: str) -> int:
        """A read-only, blocking descriptor of the regular file ``key`` names."""
        *directories, name = check_key(key).split("/")
        dir_fd = self._open_directory(key, directories)
        try:
            try:
                found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if not stat.S_ISREG(found.st_mode):
                    raise NotAStoredObject(key, _not_regular(found.st_mode))
                fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                raise _refusal(key, key, name, dir_fd, exc) from exc
        finally:
            os.close(dir_fd)
        try:
            opened = os.fstat(fd).st_mode
            if not stat.S_ISREG(opened):  # swapped between the look and the open
                raise NotAStoredObject(key, _not_regular(opened))
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            try:
                return stream.read()
            except OSError as exc:
                raise StorageError(f"{key}: {exc.strerror or exc}") from exc

    def open(self, key: str) -> BinaryIO:
        return os.fdopen(self._open_object(key), "rb", buffering=0)

    def exists(self, key: str) -> bool:
        try:
            os.close(self._open_object(key))
        except ObjectNotFound:
            return False
        return True

    def list(self, prefix: str) -> builtins.list[str]:
        check_prefix(prefix)
        directory = prefix.rpartition("/")[0]
        try:
            dir_fd = self._open_directory(prefix, directory.split("/") if directory else [])
        except ObjectNotFound:
            return []
        keys: builtins.list[str] = []
        try:
            _collect(dir_fd, directory + "/" if directory else "", prefix, keys)
        except OSError as exc:
            raise StorageError(f"listing {prefix!r}: {exc.strerror or exc}") from exc
        finally:
            os.close(dir_fd)
        return sorted(keys)


def _collect(dir_fd: int, base: str, prefix: str, keys: builtins.list[str]) -> None:
    """Add to ``keys`` every object key under the directory ``dir_fd`` (at ``base``) that
    starts with ``prefix``: regular files, through real directories, never a symlink."""
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if not SEGMENT_PATTERN.fullmatch(entry.name):
                continue
            path = base + entry.name
            if entry.is_file(follow_symlinks=False):
                if path.startswith(prefix) and is_object_key(path):
                    keys.append(path)
                continue
            path += "/"
            if not entry.is_dir(follow_symlinks=False) or not (
                path.startswith(prefix) or prefix.startswith(path)
            ):
                continue
            try:
                child = os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=dir_fd)
            except OSError as exc:
                if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                    continue  # gone, or swapped for a symlink, since the scan: nothing stored
                raise
            try:
                _collect(child, path, prefix, keys)
            finally:
                os.close(child)


def _not_regular(mode: int) -> str:
    kinds = (
        (stat.S_ISLNK, "it is a symlink"),
        (stat.S_ISDIR, "it is a directory"),
        (stat.S_ISFIFO, "not a regular file (a FIFO)"),
        (stat.S_ISCHR, "not a regular file (a character device)"),
        (stat.S_ISBLK, "not a regular file (a block device)"),
        (stat.S_ISSOCK, "not a regular file (a socket)"),
    )
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def _refusal(key: str, where: str, name: str, dir_fd: int, exc: OSError) -> StorageError:
    """What a failed no-follow open of ``name`` (in ``dir_fd``, at ``where``) means for ``key``."""
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFound(key)
    if isinstance(exc, NotADirectoryError) or exc.errno == errno.ELOOP:
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError:
            return ObjectNotFound(key)
        if stat.S_ISLNK(mode):
            return NotAStoredObject(
                key, "it is a symlink" if where == key else f"{where} is a symlink"
            )
        return ObjectNotFound(key)  # a file where the path needs a directory
    return StorageError(f"{key}: {exc.strerror or exc}")


def check_recorded_digest(
    where: str, sha256: str, size: int, recorded_sha256: str, recorded_size: int, by: str
) -> None:
    """IntegrityError at ``where`` unless ``(sha256, size)`` — of at most ``recorded_size`` + 1
    bytes read — is what ``by`` (e.g. "chain entry 7 recorded") says; a size above the
    recorded one is "more than" it, however large the object is."""
    if size > recorded_size:
        raise IntegrityError(
            where, f"size is more than {recorded_size} bytes; {by} {recorded_size}"
        )
    if size != recorded_size:
        raise IntegrityError(where, f"size is {size} bytes; {by} {recorded_size}")
    if sha256 != recorded_sha256:
        raise IntegrityError(where, f"SHA-256 is {sha256}; {by} {recorded_sha256}")


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (creating its folder) so that it survives a crash whole or not
    at all: a temporary file beside it, fsynced, renamed over it, the folder fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique: processes sharing a data directory may write the same file at once.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


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

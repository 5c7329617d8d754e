"""A read-only Storage over an export zip: the case's objects are the members under ``cases/``,
named by their keys; ``list("")`` gives every member (``recorder.package_verify`` checks them
all against the package index)."""

from __future__ import annotations

import builtins
import io
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, cast

from recorder.errors import IntegrityError, ObjectNotFound, StorageError
from recorder.package_index import check_member_name
from recorder.storage import check_key

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


class _Member(io.RawIOBase):
    """A member's stream whose read errors (bad CRC, corrupt deflate data) are StorageErrors."""

    def __init__(self, key: str, stream: BinaryIO) -> None:
        self._key = key
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except _READ_ERRORS as exc:
            raise StorageError(f"{self._key}: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


class ZipStorage:
    """Objects are zip members. A member name that is not a valid name (a directory entry is
    not: a package holds files only) or that appears twice makes the package invalid."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise StorageError(f"{self.path}: not a readable zip file: {exc}") from exc
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            try:
                check_member_name(info.filename)
            except ValueError as exc:
                raise IntegrityError(info.filename, f"not a valid member name: {exc}") from exc
            if info.filename in self._members:
                raise IntegrityError(info.filename, "appears twice in the package")
            self._members[info.filename] = info

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def describe(self) -> str:
        return f"export {self.path}"

    def put(self, key: str, data: bytes, sha256: str) -> None:
        raise StorageError(f"{key}: an export is read-only")

    def _info(self, key: str) -> zipfile.ZipInfo:
        info = self._members.get(check_key(key))
        if info is None:
            raise ObjectNotFound(key)
        return info

    def get(self, key: str) -> bytes:
        info = self._info(key)
        try:
            return self._zip.read(info)
        except _READ_ERRORS as exc:
            raise StorageError(f"{key}: {exc}") from exc

    def open(self, key: str) -> BinaryIO:
        info = self._info(key)
        try:
            stream = cast(BinaryIO, self._zip.open(info))
        except _READ_ERRORS as exc:
            raise StorageError(f"{key}: {exc}") from exc
        return cast(BinaryIO, _Member(key, stream))

    def exists(self, key: str) -> bool:
        return key in self._members

    def case_ids(self) -> builtins.list[str]:
        """The cases the export holds (``cases/{case_id}/...``)."""
        return sorted({k.split("/")[1] for k in self._members if k.startswith("cases/")})

    def list(self, prefix: str) -> builtins.list[str]:
        return sorted(k for k in self._members if k.startswith(prefix))

"""LocalStorage: write-once, durable, read-only files, and no key can leave the root."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from recorder.errors import NotAStoredObject, ObjectNotFound, StorageError, WriteConflict
from recorder.storage import HASH_CHUNK, LocalStorage, digest_stream, object_digest
from recorder.storage_url import open_storage


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_then_get_exists_and_list(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("cases/c1/chain/000000000001.json", b"one", sha(b"one"))
    storage.put("cases/c1/chain/000000000000.json", b"zero", sha(b"zero"))
    storage.put("cases/c2/keys/a.pub", b"k", sha(b"k"))
    assert storage.get("cases/c1/chain/000000000000.json") == b"zero"
    assert storage.exists("cases/c1/chain/000000000001.json")
    assert not storage.exists("cases/c1/chain/000000000002.json")
    assert storage.list("cases/c1/") == [
        "cases/c1/chain/000000000000.json",
        "cases/c1/chain/000000000001.json",
    ]
    assert storage.list("cases/c") == [*storage.list("cases/c1/"), "cases/c2/keys/a.pub"]
    assert storage.list("cases/c1/chain/000000000001") == ["cases/c1/chain/000000000001.json"]
    assert storage.list("cases/c3/") == []
    assert storage.describe() == f"local directory {tmp_path}"


def test_stored_files_are_read_only(tmp_path: Path) -> None:
    LocalStorage(tmp_path).put("cases/c1/x.bin", b"x", sha(b"x"))
    assert stat.S_IMODE((tmp_path / "cases/c1/x.bin").stat().st_mode) == 0o444


def test_putting_the_same_bytes_again_is_harmless_and_different_bytes_are_refused(
    tmp_path: Path,
) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("cases/c1/x.bin", b"first", sha(b"first"))
    storage.put("cases/c1/x.bin", b"first", sha(b"first"))
    with pytest.raises(StorageError, match="write-once"):
        storage.put("cases/c1/x.bin", b"second", sha(b"second"))
    assert storage.get("cases/c1/x.bin") == b"first"


def test_racing_writers_of_one_key_leave_exactly_one_version(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    payloads = [f"writer {i}".encode() for i in range(12)]

    def attempt(data: bytes) -> bool:
        try:
            storage.put("cases/c1/race.bin", data, sha(data))
        except StorageError:
            return False
        return True

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(attempt, payloads))
    assert outcomes.count(True) == 1
    assert storage.get("cases/c1/race.bin") == payloads[outcomes.index(True)]
    assert storage.list("") == ["cases/c1/race.bin"]
    assert [p.name for p in (tmp_path / "cases/c1").iterdir()] == ["race.bin"]


def test_data_that_does_not_match_its_sha256_is_not_written(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(StorageError, match="SHA-256"):
        storage.put("cases/c1/x.bin", b"data", sha(b"other"))
    with pytest.raises(StorageError, match="hex"):
        storage.put("cases/c1/x.bin", b"data", sha(b"data").upper())
    assert storage.list("") == []


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "cases/../../etc/passwd",
        "cases/./x",
        "cases//x",
        "cases/x/",
        "cases\\x",
        "cases/.hidden",
        "cases/x y",
        "cases/\x00",
        "a" * 1025,
    ],
)
def test_keys_that_could_escape_the_root_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "archive")
    with pytest.raises(StorageError):
        storage.put(key, b"x", sha(b"x"))
    with pytest.raises(StorageError):
        storage.get(key)
    assert not (tmp_path / "archive").exists()


def test_listing_with_a_traversal_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).list("../")


def test_missing_objects_raise_object_not_found(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("cases/c1/x.bin", b"x", sha(b"x"))
    for key in ("cases/c1/y.bin", "cases/c1", "cases/c1/x.bin/z"):
        with pytest.raises(ObjectNotFound):
            storage.get(key)
        with pytest.raises(ObjectNotFound):
            storage.open(key)


def test_streamed_digest_equals_hashlib(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = bytes(range(256)) * 9000
    storage.put("cases/c1/big.bin", data, sha(data))
    assert object_digest(storage, "cases/c1/big.bin") == (sha(data), len(data))
    with (tmp_path / "cases/c1/big.bin").open("rb") as stream:
        assert digest_stream(stream, chunk_size=1000) == (sha(data), len(data))


def test_temporary_files_are_never_listed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("cases/c1/x.bin", b"x", sha(b"x"))
    (tmp_path / "cases/c1/.x.bin.1234.tmp").write_bytes(b"partial")
    assert storage.list("") == ["cases/c1/x.bin"]


def test_open_storage_understands_file_urls(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}")
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path


@pytest.mark.parametrize(
    "spec", ["gopher://host/bucket", "s3://bucket", "/plain/path", "file://host/x", "file:rel"]
)
def test_open_storage_refuses_what_it_does_not_know(spec: str) -> None:
    with pytest.raises(ValueError, match="storage"):
        open_storage(spec)


# Only regular files are objects: what a hostile insider can leave in the archive directory.

SEGMENT = "cases/c1/inspections/" + "a" * 32 + "/segments/applicant-video/000000.webm"
HANG_GUARD_S = 60.0


def archive_with_objects(tmp_path: Path) -> LocalStorage:
    """An archive under ``tmp_path / "archive"`` holding ``cases/c1/x.bin`` and SEGMENT."""
    storage = LocalStorage(tmp_path / "archive")
    storage.put("cases/c1/x.bin", b"x", sha(b"x"))
    storage.put(SEGMENT, b"segment", sha(b"segment"))
    return storage


def not_blocking(call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised (None if nothing), run on a daemon thread: a read that blocked on a
    FIFO fails the test instead of hanging the run."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            raised.append(exc)
        else:
            raised.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), "the read blocked"
    return raised[0]


def reads(storage: LocalStorage, key: str) -> list[BaseException | None]:
    """What get, open and a streamed digest of ``key`` raise; none may block."""
    return [
        not_blocking(lambda: storage.get(key)),
        not_blocking(lambda: storage.open(key).close()),
        not_blocking(lambda: object_digest(storage, key, limit=10)),
    ]


def bind_unix_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))


def make_char_device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o444, os.makedev(1, 5))  # what /dev/zero is
    except PermissionError:
        pytest.skip("creating a device file needs CAP_MKNOD")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (os.mkfifo, "not a regular file (a FIFO)"),
        (bind_unix_socket, "not a regular file (a socket)"),
        (make_char_device, "not a regular file (a character device)"),
        (lambda path: path.symlink_to("/dev/zero"), "it is a symlink"),
        (lambda path: path.symlink_to("x.bin"), "it is a symlink"),
        (lambda path: path.mkdir(), "it is a directory"),
    ],
    ids=["fifo", "socket", "device", "symlink-to-dev-zero", "symlink-to-an-object", "directory"],
)
def test_what_is_not_a_regular_file_is_neither_listed_nor_read(
    tmp_path: Path, make: Callable[[Path], object], reason: str
) -> None:
    storage = archive_with_objects(tmp_path)
    key = "cases/c1/y.bin"
    make(storage.root / key)
    assert storage.list("") == [SEGMENT, "cases/c1/x.bin"]
    for refused in reads(storage, key):
        assert isinstance(refused, NotAStoredObject)
        assert str(refused) == f"no object at {key}: {reason}"
    assert not storage.exists(key)


@pytest.mark.parametrize("target", ["inside", "outside"])
def test_objects_behind_a_symlinked_directory_are_neither_listed_nor_read(
    tmp_path: Path, target: str
) -> None:
    storage = archive_with_objects(tmp_path)
    real = storage.root / "cases/c1" if target == "inside" else tmp_path / "elsewhere"
    (real / "inspections").mkdir(parents=True, exist_ok=True)
    (real / "inspections/z.bin").write_bytes(b"z")
    (storage.root / "cases/c2").symlink_to(real, target_is_directory=True)
    seen_in_c1 = ["cases/c1/inspections/z.bin"] if target == "inside" else []
    assert storage.list("") == [SEGMENT, *seen_in_c1, "cases/c1/x.bin"]
    assert storage.list("cases/c2/") == []
    for key in ("cases/c2/x.bin", "cases/c2/inspections/z.bin"):
        for refused in reads(storage, key):
            assert isinstance(refused, NotAStoredObject)
            assert str(refused) == f"no object at {key}: cases/c2 is a symlink"
        assert not storage.exists(key)


def test_a_symlink_deep_in_the_path_is_named(tmp_path: Path) -> None:
    storage = archive_with_objects(tmp_path)
    segments = storage.root / SEGMENT.rsplit("/", 2)[0]
    segments.rename(tmp_path / "moved")
    segments.symlink_to(tmp_path / "moved", target_is_directory=True)
    assert storage.list("") == ["cases/c1/x.bin"]
    with pytest.raises(NotAStoredObject, match=f"{SEGMENT.rsplit('/', 2)[0]} is a symlink$"):
        storage.get(SEGMENT)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (".hidden", "has a segment starting with a dot"),
        (".d/x.bin", "has a segment starting with a dot"),
        ("x.tmp", "ends in .tmp (a temporary file)"),
        (".x.bin.0123456789ab.tmp", "has a segment starting with a dot"),
        ("x y.bin", "is empty, too long or has a forbidden character"),
        ("é.bin", "is empty, too long or has a forbidden character"),
    ],
)
def test_a_file_no_key_can_name_is_neither_listed_nor_read(
    tmp_path: Path, name: str, reason: str
) -> None:
    storage = archive_with_objects(tmp_path)
    path = storage.root / "cases/c1" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"planted")
    assert storage.list("") == [SEGMENT, "cases/c1/x.bin"]
    key = f"cases/c1/{name}"
    for refused in reads(storage, key):
        assert isinstance(refused, StorageError)
        assert not isinstance(refused, ObjectNotFound)
        assert str(refused) == f"object key {key!r} {reason}"


def test_list_and_get_agree_on_every_file_in_the_archive(tmp_path: Path) -> None:
    storage = archive_with_objects(tmp_path)
    root = storage.root
    (tmp_path / "outside.bin").write_bytes(b"o")
    os.mkfifo(root / "cases/c1/fifo.bin")
    (root / "cases/c1/link.bin").symlink_to(tmp_path / "outside.bin")
    (root / "cases/c1/.dot.bin").write_bytes(b"d")
    (root / "cases/c1/half.tmp").write_bytes(b"t")
    (root / "cases/c1/sub").mkdir()
    (root / "cases/c1/sub/ok.bin").write_bytes(b"ok")
    (root / "cases/c3").symlink_to(root / "cases/c1", target_is_directory=True)
    on_disk = sorted(
        (Path(here) / name).relative_to(root).as_posix()
        for here, dirs, files in os.walk(root, followlinks=True)
        for name in files
    )
    assert len(on_disk) > 10  # the walk above follows the symlinked directory
    readable = [key for key in on_disk if not isinstance(reads(storage, key)[0], StorageError)]
    assert storage.list("") == readable == [SEGMENT, "cases/c1/sub/ok.bin", "cases/c1/x.bin"]


def test_a_streamed_digest_reads_at_most_its_limit(tmp_path: Path) -> None:
    class Endless(io.RawIOBase):
        """What /dev/zero yields: zeros, for ever; counts what was read."""

        read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            view = memoryview(buffer)
            view[:] = bytes(len(view))
            self.read_bytes += len(view)
            return len(view)

    endless = Endless()
    limit = 3 * HASH_CHUNK + 7
    assert digest_stream(cast(BinaryIO, endless), limit=limit) == (sha(bytes(limit)), limit)
    assert endless.read_bytes == limit
    assert digest_stream(io.BytesIO(b"abc"), limit=0) == (sha(b""), 0)
    assert digest_stream(io.BytesIO(b"abc"), chunk_size=2, limit=10) == (sha(b"abc"), 3)

    storage = archive_with_objects(tmp_path)
    with (storage.root / "cases/c1/huge.bin").open("wb") as huge:
        huge.truncate(1 << 40)  # sparse: a terabyte of zeros that takes no disk
    assert object_digest(storage, "cases/c1/huge.bin", limit=8) == (sha(bytes(8)), 8)
    assert object_digest(storage, "cases/c1/x.bin", limit=8) == (sha(b"x"), 1)


def test_putting_onto_a_fifo_is_a_write_conflict_without_blocking(tmp_path: Path) -> None:
    storage = archive_with_objects(tmp_path)
    os.mkfifo(storage.root / "cases/c1/y.bin")
    refused = not_blocking(lambda: storage.put("cases/c1/y.bin", b"y", sha(b"y")))
    assert isinstance(refused, WriteConflict)
    assert str(refused.__cause__) == "no object at cases/c1/y.bin: not a regular file (a FIFO)"

"""LocalStorage: write-once, durable, read-only files, and no key can leave the root."""

from __future__ import annotations

import hashlib
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from recorder.errors import ObjectNotFound, StorageError
from recorder.storage import LocalStorage, digest_stream, object_digest
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

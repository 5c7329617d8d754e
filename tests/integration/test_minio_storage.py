"""The MinIO backend against a real S3 server: write-once, checksummed, locked, retained."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio.error import S3Error

from recorder import layout
from recorder.canonical import parse_json
from recorder.errors import IntegrityError, ObjectNotFound, StorageError, WriteConflict
from recorder.minio_storage import MinioStorage, S3Credentials
from recorder.signing import Signer
from recorder.storage import LocalStorage, check_key, object_digest
from recorder.storage_url import open_storage
from recorder.verify import verify_case
from tests.conftest import new_bucket
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, TcpGate, free_port
from tests.unit.evidence_fixture import INSPECTIONS, build_case

pytestmark = pytest.mark.single_engine  # archives only: no database

SEGMENT = "cases/C-1/inspections/" + "a" * 32 + "/segments/applicant-video/000000.webm"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Tests of what LocalStack does not do faithfully (docs/minio.md, Tests)
# run against SeaweedFS only: its If-None-Match: * is atomic and it checks credentials.
SEAWEEDFS_ONLY = pytest.mark.parametrize("s3_server", ["seaweedfs"], indirect=True)


@pytest.fixture
def storage(s3_server: S3Server) -> MinioStorage:
    return s3_server.storage(new_bucket())


def test_stored_objects_read_back_list_and_exist(storage: MinioStorage) -> None:
    data = b"\x1a\x45\xdf\xa3 webm bytes" * 1000
    storage.put(SEGMENT, data, sha(data))
    storage.put("cases/C-1/chain/000000000000.json", b"{}", sha(b"{}"))
    storage.put("cases/C-2/chain/000000000000.json", b"[]", sha(b"[]"))

    assert storage.get(SEGMENT) == data
    with storage.open(SEGMENT) as stream:
        assert stream.read() == data
    assert storage.exists(SEGMENT)
    assert not storage.exists("cases/C-1/chain/000000000001.json")
    assert storage.list("cases/C-1/") == ["cases/C-1/chain/000000000000.json", SEGMENT]
    assert storage.list("cases/C-1/chain/") == ["cases/C-1/chain/000000000000.json"]
    assert len(storage.list("")) == 3
    assert storage.list("cases/C-3/") == []


def test_missing_object_is_object_not_found(storage: MinioStorage) -> None:
    storage.put("cases/C-1/chain/000000000000.json", b"{}", sha(b"{}"))
    with pytest.raises(ObjectNotFound):
        storage.get("cases/C-1/chain/000000000001.json")
    with pytest.raises(ObjectNotFound):
        storage.open("cases/C-1/chain/000000000001.json")


def test_retried_put_is_harmless_but_different_bytes_are_refused(storage: MinioStorage) -> None:
    storage.put(SEGMENT, b"first", sha(b"first"))
    storage.put(SEGMENT, b"first", sha(b"first"))
    with pytest.raises(StorageError, match="write-once"):
        storage.put(SEGMENT, b"second", sha(b"second"))
    assert storage.get(SEGMENT) == b"first"
    versions = list(
        storage._client.list_objects(storage.bucket, prefix=SEGMENT, include_version=True)
    )
    assert len(versions) == 1


# LocalStack's If-None-Match: * is not atomic (2-5 of 8 racing PUTs won in 11 of 25 rounds): here
# it would pass or fail by chance. On SeaweedFS it fails if put() sends no If-None-Match.
@SEAWEEDFS_ONLY
def test_of_eight_writers_racing_for_one_key_one_wins_the_rest_get_write_conflict(
    s3_server: S3Server,
) -> None:
    bucket = new_bucket()
    s3_server.storage(bucket).list("")  # the bucket exists before the race
    writers = [s3_server.storage(bucket) for _ in range(8)]
    start = threading.Barrier(len(writers))
    outcomes: dict[int, str] = {}

    def write(n: int) -> None:
        data = f"writer {n}".encode()
        start.wait()
        try:
            writers[n].put(SEGMENT, data, sha(data))
        except WriteConflict:
            outcomes[n] = "conflict"
        except StorageError as exc:  # pragma: no cover - shown in the assertion below
            outcomes[n] = repr(exc)
        else:
            outcomes[n] = "stored"

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [n for n, outcome in outcomes.items() if outcome == "stored"]
    assert len(winners) == 1, outcomes
    assert sorted(outcomes.values()) == ["conflict"] * 7 + ["stored"]
    assert writers[0].get(SEGMENT) == f"writer {winners[0]}".encode()
    versions = list(s3_server.client().list_objects(bucket, prefix=SEGMENT, include_version=True))
    assert len(versions) == 1


@SEAWEEDFS_ONLY  # LocalStack accepts any secret key
def test_wrong_secret_key_is_refused_and_stores_nothing(s3_server: S3Server) -> None:
    bucket = new_bucket()
    s3_server.storage(bucket).list("")
    intruder = MinioStorage(
        s3_server.endpoint, ACCESS_KEY, "not-the-secret", bucket, secure=False, region=REGION
    )
    with pytest.raises(StorageError, match="S3 AccessDenied"):
        intruder.put(SEGMENT, b"x", sha(b"x"))
    assert not s3_server.storage(bucket).exists(SEGMENT)


def test_put_whose_sha256_does_not_match_the_data_is_refused(storage: MinioStorage) -> None:
    with pytest.raises(StorageError, match="SHA-256"):
        storage.put(SEGMENT, b"data", sha(b"other data"))
    assert not storage.exists(SEGMENT)


def test_body_changed_in_transit_is_rejected_by_its_checksum(s3_server: S3Server) -> None:
    bucket = new_bucket()
    s3_server.storage(bucket).list("")  # create the bucket directly
    gate = TcpGate(s3_server.port, rewrite=(b"evidence", b"EVIDENCE"))
    gate.open()
    try:
        through_gate = MinioStorage(
            f"127.0.0.1:{gate.port}", ACCESS_KEY, SECRET_KEY, bucket, secure=False, region=REGION
        )
        data = b"the evidence as recorded"
        with pytest.raises(StorageError, match=r"BadDigest|SHA256|checksum"):
            through_gate.put(SEGMENT, data, sha(data))
    finally:
        gate.close()
    assert not s3_server.storage(bucket).exists(SEGMENT)


def test_every_object_carries_sha256_checksum_and_retention(storage: MinioStorage) -> None:
    data = b"segment"
    before = datetime.now(UTC)
    storage.put(SEGMENT, data, sha(data))

    info = storage._client.stat_object(
        storage.bucket, SEGMENT, extra_headers={"x-amz-checksum-mode": "ENABLED"}
    )
    assert info.metadata is not None
    assert info.metadata["x-amz-meta-sha256"] == sha(data)
    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert info.metadata["x-amz-checksum-sha256"] == checksum
    retention = storage._client.get_object_retention(storage.bucket, SEGMENT)
    assert retention is not None
    assert retention.mode == "GOVERNANCE"
    expected = before + timedelta(days=storage.retention_days)
    assert abs(retention.retain_until_date - expected) < timedelta(minutes=1)


def test_compliance_retention_is_applied(s3_server: S3Server) -> None:
    storage = MinioStorage(
        s3_server.endpoint, ACCESS_KEY, SECRET_KEY, new_bucket(), secure=False, region=REGION,
        retention_mode="COMPLIANCE", retention_days=2,
    )  # fmt: skip
    storage.put(SEGMENT, b"x", sha(b"x"))
    retention = storage._client.get_object_retention(storage.bucket, SEGMENT)
    assert retention is not None
    assert retention.mode == "COMPLIANCE"
    assert retention.retain_until_date > datetime.now(UTC) + timedelta(days=1, hours=23)


def test_locked_version_cannot_be_deleted(storage: MinioStorage) -> None:
    storage.put(SEGMENT, b"evidence", sha(b"evidence"))
    version_id = storage._client.stat_object(storage.bucket, SEGMENT).version_id
    assert version_id

    with pytest.raises(S3Error) as denied:
        storage._client.remove_object(storage.bucket, SEGMENT, version_id=version_id)
    assert denied.value.code == "AccessDenied"
    assert storage.get(SEGMENT) == b"evidence"


def test_missing_bucket_is_created_with_object_lock(s3_server: S3Server) -> None:
    bucket = new_bucket()
    client = s3_server.client()
    assert not client.bucket_exists(bucket)
    s3_server.storage(bucket).put(SEGMENT, b"x", sha(b"x"))
    assert client.bucket_exists(bucket)
    client.get_object_lock_config(bucket)  # raises unless object lock is on


def test_bucket_without_object_lock_is_refused(s3_server: S3Server) -> None:
    bucket = new_bucket()
    s3_server.client().make_bucket(bucket)
    storage = s3_server.storage(bucket)
    with pytest.raises(StorageError, match="no object lock"):
        storage.put(SEGMENT, b"x", sha(b"x"))
    with pytest.raises(StorageError, match="no object lock"):
        storage.list("")
    assert list(s3_server.client().list_objects(bucket, recursive=True)) == []


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "cases/../../etc/passwd",
        "/cases/C-1/chain/000000000000.json",
        "cases//C-1",
        "cases/C-1/.hidden",
        "cases\\C-1",
        "cases/C-1/%2e%2e/x",
        "",
    ],
)
def test_traversal_looking_keys_are_refused(storage: MinioStorage, key: str) -> None:
    with pytest.raises(StorageError):
        storage.put(key, b"x", sha(b"x"))
    with pytest.raises(StorageError):
        storage.get(key)
    with pytest.raises(StorageError):
        storage.exists(key)
    assert storage.list("") == []


@pytest.mark.parametrize("prefix", ["../", "/cases", "cases/../"])
def test_traversal_looking_prefixes_are_refused(storage: MinioStorage, prefix: str) -> None:
    with pytest.raises(StorageError):
        storage.list(prefix)


def test_unreachable_server_is_a_storage_error() -> None:
    storage = MinioStorage(
        f"127.0.0.1:{free_port()}", ACCESS_KEY, SECRET_KEY, new_bucket(), secure=False
    )
    with pytest.raises(StorageError):
        storage.put(SEGMENT, b"x", sha(b"x"))
    with pytest.raises(StorageError):
        storage.list("cases/")


def test_storage_url_names_a_minio_bucket_without_showing_the_secret(s3_server: S3Server) -> None:
    bucket = new_bucket()
    storage = open_storage(s3_server.url(bucket, days=5))
    assert isinstance(storage, MinioStorage)
    assert (storage.bucket, storage.retention_mode, storage.retention_days) == (
        bucket,
        "GOVERNANCE",
        5,
    )
    assert SECRET_KEY not in storage.describe().replace("test-", "")
    assert bucket in storage.describe()
    storage.put(SEGMENT, b"x", sha(b"x"))
    assert storage.get(SEGMENT) == b"x"


def test_storage_url_without_credentials_takes_them_from_the_caller(
    s3_server: S3Server,
) -> None:
    url = f"minio://{s3_server.endpoint}/{new_bucket()}?secure=false&retention=compliance"
    with pytest.raises(ValueError, match="TAKAN_S3_ACCESS_KEY"):
        open_storage(url)
    storage = open_storage(url, S3Credentials(ACCESS_KEY, SECRET_KEY))
    assert isinstance(storage, MinioStorage)
    assert storage.retention_mode == "COMPLIANCE"
    assert storage.retention_days == 3650


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("minio://a:b@host:9000/", "exactly /bucket"),
        ("minio://a:b@host:9000/bucket/prefix", "exactly /bucket"),
        ("minio://a:b@host:9000/Bad_Bucket", "bucket name"),
        ("minio://a:b@host:9000/bucket?retention=forever", "GOVERNANCE or COMPLIANCE"),
        ("minio://a:b@host:9000/bucket?days=0", "1-36500"),
        ("minio://a:b@host:9000/bucket?days=-1", "whole number"),
        ("minio://a:b@host:9000/bucket?secure=maybe", "true or false"),
        ("minio://a:b@host:9000/bucket?colour=blue", "unknown option"),
    ],
)
def test_bad_storage_urls_are_refused_plainly(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as refused:
        open_storage(url)
    assert ":b@" not in str(refused.value)


# The same objects as a local directory: one key rule, bounded reads.

GOOD_KEYS = ["cases/C-1/ok.bin", "cases/C-1/sub/ok.bin"]
TRICKY_KEYS = [  # put into the bucket (or the directory) by other means than Takan
    "cases/C-1/.hidden",
    "cases/C-1/.d/x.bin",
    "cases/C-1/x.tmp",
    "cases/C-1/.ok.bin.0123456789ab.tmp",
    "cases/C-1/x y.bin",
    "cases/C-1/é.bin",
    "cases/C-1/back\\slash.bin",
    "cases/C-1//twice.bin",
    "cases/C-1/dir/",
]


def tricky_keys(s3_server: S3Server) -> list[str]:
    """The TRICKY_KEYS this server stores under their own names (SeaweedFS's filer turns
    ``back\\slash`` and ``//`` into ``/``: planted there they would be other, valid keys)."""
    if s3_server.verbatim_keys:
        return TRICKY_KEYS
    return [key for key in TRICKY_KEYS if "\\" not in key and "//" not in key]


def plant(s3_server: S3Server, bucket: str, key: str, data: bytes) -> None:
    """Store ``data`` under ``key`` with the plain S3 client, past every check of ours."""
    s3_server.client().put_object(bucket, key, io.BytesIO(data), len(data))


def test_s3_lists_and_reads_exactly_what_a_local_directory_would(
    s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = new_bucket()
    s3 = s3_server.storage(bucket)
    local = LocalStorage(tmp_path)
    for key in GOOD_KEYS:
        s3.put(key, b"object", sha(b"object"))
        local.put(key, b"object", sha(b"object"))
    tricky = tricky_keys(s3_server)
    for key in tricky:
        plant(s3_server, bucket, key, b"planted")
        path = tmp_path / key
        if key.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        elif "//" not in key:  # a file system has no empty names
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"planted")
    client = s3_server.client()
    in_bucket = {o.object_name for o in client.list_objects(bucket, recursive=True)}
    assert in_bucket == {*GOOD_KEYS, *tricky}
    assert s3.list("") == local.list("") == GOOD_KEYS
    assert s3.list("cases/C-1/") == local.list("cases/C-1/") == GOOD_KEYS
    for key in tricky:
        refusals = []
        for storage in (s3, local):
            with pytest.raises(StorageError) as refused:
                storage.get(key)
            assert not isinstance(refused.value, ObjectNotFound)
            refusals.append(str(refused.value))
        assert refusals[0] == refusals[1] == str(key_refusal(key))


def key_refusal(key: str) -> StorageError:
    try:
        check_key(key)
    except StorageError as exc:
        return exc
    raise AssertionError(f"{key!r} is a valid key")


def test_a_streamed_digest_of_an_s3_object_stops_at_its_limit(storage: MinioStorage) -> None:
    data = bytes(range(256)) * 16_000  # 4 MB
    storage.put(SEGMENT, data, sha(data))
    assert object_digest(storage, SEGMENT, limit=11) == (sha(data[:11]), 11)
    assert object_digest(storage, SEGMENT, limit=len(data) + 1) == (sha(data), len(data))


def test_verify_on_s3_names_an_object_larger_than_recorded_and_ignores_planted_junk(
    s3_server: S3Server,
) -> None:
    bucket = new_bucket()
    storage = s3_server.storage(bucket)
    build_case(storage, Signer.generate(), "case-1")
    for key in tricky_keys(s3_server):
        plant(s3_server, bucket, key.replace("C-1", "case-1"), b"planted")
    verify_case(storage, "case-1")
    key = layout.segment_key("case-1", INSPECTIONS[0], "applicant-audio", 2)
    entry = next(
        parse_json(storage.get(k))
        for k in storage.list("cases/case-1/chain/")
        if parse_json(storage.get(k))["body"].get("key") == key
    )
    size = entry["body"]["size"]
    plant(s3_server, bucket, key, b"\0" * (size + 5_000_000))  # a new version of the key
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, "case-1")
    assert (failed.value.where, failed.value.reason) == (
        key,
        f"size is more than {size} bytes; chain entry {entry['seq']} recorded {size}",
    )

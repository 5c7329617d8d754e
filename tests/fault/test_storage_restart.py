"""The S3 store restarts, stopped cleanly or killed as by a power cut: every object Takan stored
reads back with the same bytes, checksums, version and retention, the case still verifies, and
the retention still refuses deletes, overwrites and a shorter date.

SeaweedFS only: LocalStack community keeps S3 in memory and comes back empty (tests/s3server.py),
so there is nothing to check after its restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.helpers import DictType
from minio.retention import Retention

from recorder.errors import WriteConflict
from recorder.minio_storage import MinioStorage
from recorder.signing import Signer
from recorder.verify import verify_case
from tests.conftest import new_bucket
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.seaweedfs_server import SeaweedServer
from tests.unit.evidence_fixture import build_case

pytestmark = [
    pytest.mark.single_engine,
    pytest.mark.parametrize("s3_server", ["seaweedfs"], indirect=True),
]  # archives only: no database

# A 3 MB segment beside the signed case-1 (in a case of its own, so case-1 still verifies).
SEGMENT = "cases/case-2/inspections/" + "b" * 32 + "/segments/applicant-video/000000.webm"


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """What the store said about one object right after Takan stored it."""

    key: str
    sha256: str
    size: int
    version_id: str
    checksum: str
    mode: str
    retain_until: datetime


@dataclass
class Archive:
    """Two buckets as Takan's archive writes them: GOVERNANCE (the default) and COMPLIANCE."""

    governance: MinioStorage
    compliance: MinioStorage

    def storages(self) -> Iterator[MinioStorage]:
        yield self.governance
        yield self.compliance


def open_archive(s3_server: S3Server, buckets: tuple[str, str]) -> Archive:
    """Fresh clients (nothing cached from before a restart) on the two buckets."""
    return Archive(
        s3_server.storage(buckets[0]),
        MinioStorage(
            s3_server.endpoint, ACCESS_KEY, SECRET_KEY, buckets[1], secure=False, region=REGION,
            retention_mode="COMPLIANCE", retention_days=1,
        ),
    )  # fmt: skip


def describe(storage: MinioStorage, key: str) -> StoredVersion:
    client = storage._client
    info = client.stat_object(storage.bucket, key, extra_headers={"x-amz-checksum-mode": "ENABLED"})
    retention = client.get_object_retention(storage.bucket, key)
    assert info.metadata is not None
    assert info.version_id is not None
    assert info.size is not None
    assert retention is not None
    assert retention.mode is not None
    return StoredVersion(
        key=key,
        sha256=info.metadata["x-amz-meta-sha256"],
        size=info.size,
        version_id=info.version_id,
        checksum=info.metadata["x-amz-checksum-sha256"],
        mode=retention.mode,
        retain_until=retention.retain_until_date,
    )


def store_evidence(archive: Archive) -> dict[str, dict[str, bytes]]:
    """A signed case and a 3 MB segment in each bucket, through MinioStorage as the archive does."""
    segment = bytes(range(256)) * 12_000
    stored: dict[str, dict[str, bytes]] = {}
    for storage in archive.storages():
        build_case(storage, Signer.generate(), "case-1")
        storage.put(SEGMENT, segment, hashlib.sha256(segment).hexdigest())
        stored[storage.bucket] = {key: storage.get(key) for key in storage.list("")}
    return stored


def snapshot(archive: Archive) -> dict[tuple[str, str], StoredVersion]:
    return {
        (storage.bucket, key): describe(storage, key)
        for storage in archive.storages()
        for key in storage.list("")
    }


def check_nothing_lost_and_still_locked(
    s3_server: S3Server,
    buckets: tuple[str, str],
    stored: dict[str, dict[str, bytes]],
    before: dict[tuple[str, str], StoredVersion],
) -> None:
    archive = open_archive(s3_server, buckets)
    for storage in archive.storages():
        # Same keys, same bytes, same checksums, same version, same retention; the case verifies.
        assert storage.list("") == sorted(stored[storage.bucket])
        for key, data in stored[storage.bucket].items():
            assert storage.get(key) == data, key
            assert describe(storage, key) == before[(storage.bucket, key)]
        report = verify_case(storage, "case-1")
        assert report.segments > 0
        # Still write-once: other bytes are refused, the retried upload of the same is harmless.
        with pytest.raises(WriteConflict):
            storage.put(SEGMENT, b"rewritten", hashlib.sha256(b"rewritten").hexdigest())
        data = stored[storage.bucket][SEGMENT]
        storage.put(SEGMENT, data, hashlib.sha256(data).hexdigest())
        versions = list(
            storage._client.list_objects(storage.bucket, prefix=SEGMENT, include_version=True)
        )
        assert [v.version_id for v in versions] == [before[(storage.bucket, SEGMENT)].version_id]

    # Still locked: deleting the version is refused (COMPLIANCE: even with the bypass header).
    for storage, bypass in ((archive.governance, False), (archive.compliance, True)):
        version = before[(storage.bucket, SEGMENT)]
        headers: DictType | None = {"x-amz-bypass-governance-retention": "true"} if bypass else None
        with pytest.raises(S3Error) as denied:
            storage._client._execute(
                "DELETE", storage.bucket, SEGMENT, headers=headers,
                query_params={"versionId": version.version_id},
            )  # fmt: skip
        assert denied.value.code == "AccessDenied"
        assert storage.get(SEGMENT) == stored[storage.bucket][SEGMENT]
    # COMPLIANCE retention cannot be shortened.
    version = before[(archive.compliance.bucket, SEGMENT)]
    shorter = Retention(COMPLIANCE, version.retain_until - timedelta(hours=12))
    with pytest.raises(S3Error) as denied:
        archive.compliance._client.set_object_retention(
            archive.compliance.bucket, SEGMENT, shorter, version_id=version.version_id
        )
    assert denied.value.code == "AccessDenied"
    assert describe(archive.compliance, SEGMENT) == version


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_after_the_store_restarts_nothing_is_lost_and_retention_still_refuses_deletes(
    s3_server: S3Server, how: str
) -> None:
    assert isinstance(s3_server, SeaweedServer)
    buckets = (new_bucket(), new_bucket())
    stored = store_evidence(open_archive(s3_server, buckets))
    before = snapshot(open_archive(s3_server, buckets))
    assert {v.mode for v in before.values()} == {"GOVERNANCE", "COMPLIANCE"}
    starts = s3_server.starts

    if how == "stopped":
        s3_server.restart()  # SIGTERM, then the same ports and data dir
    else:
        s3_server.crash_restart()  # SIGKILL right after the last write
    assert s3_server.starts == starts + 1

    check_nothing_lost_and_still_locked(s3_server, buckets, stored, before)

"""The archive in a MinIO (or any S3) bucket with object lock: write-once, checksummed, retained.

Every put:

1. refuses a key that already holds different bytes (identical bytes: a retried upload, no-op);
2. uploads with ``If-None-Match: *`` (so two writers cannot both create the key), the
   ``x-amz-checksum-sha256`` of the bytes (the server rejects a body that does not match), the hex
   SHA-256 as user metadata ``x-amz-meta-sha256``, and a retention (mode and retain-until date)
   on the new object version;
3. reads the version back (stat, then the bytes) and compares size, metadata, lock mode and
   SHA-256 with what was sent.

The bucket is checked on first use: created with object lock if missing, refused if it exists
without object lock. Every error of the ``minio`` client or of urllib3 leaves this module as a
``StorageError`` (``ObjectNotFound`` for a missing key), so the archive's uploader retries it.
Methods are synchronous, like every backend's.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import io
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import MinioException, S3Error
from minio.helpers import genheaders
from minio.retention import Retention
from urllib3.util import Retry, Timeout

from recorder.errors import ObjectNotFound, StorageError, WriteConflict
from recorder.storage import (
    HASH_CHUNK,
    SHA256_HEX,
    check_key,
    check_prefix,
    digest_stream,
    is_object_key,
)

logger = logging.getLogger(__name__)

RetentionMode = Literal["GOVERNANCE", "COMPLIANCE"]
DEFAULT_RETENTION_DAYS = 3650
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SHA256_METADATA = "x-amz-meta-sha256"
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchObject"})
_FOREIGN_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class S3Credentials:
    access_key: str
    secret_key: str

    def __post_init__(self) -> None:
        if not self.access_key or not self.secret_key:
            raise ValueError("S3 credentials need both an access key and a secret key")

    def __repr__(self) -> str:
        return f"S3Credentials(access_key={self.access_key!r}, secret_key=<hidden>)"


def _checksum_b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn the client's and the network's errors into StorageError naming ``what``."""
    try:
        yield
    except StorageError:
        raise
    except S3Error as exc:
        if exc.code in _MISSING:
            raise ObjectNotFound(what) from exc
        raise StorageError(f"{what}: S3 {exc.code}: {exc.message}") from exc
    except _FOREIGN_ERRORS as exc:
        raise StorageError(f"{what}: {type(exc).__name__}: {exc}") from exc


class _ObjectStream(io.RawIOBase):
    """The body of a GET as a raw stream; closing it returns the connection to the pool."""

    def __init__(self, response: Any, key: str) -> None:
        self._response = response
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _translated(self._key):
            count: int = self._response.readinto(buffer)
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._response.close()
                self._response.release_conn()
            finally:
                super().close()


class MinioStorage:
    """Objects in ``bucket``: ``cases/c1/chain/000000000000.json`` is that object's key."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = True,
        region: str | None = None,
        retention_mode: RetentionMode = "GOVERNANCE",
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        if not BUCKET_PATTERN.fullmatch(bucket) or ".." in bucket:
            raise ValueError(f"bucket name {bucket!r} is not a valid S3 bucket name")
        if retention_mode not in (GOVERNANCE, COMPLIANCE):
            raise ValueError(
                f"retention mode must be GOVERNANCE or COMPLIANCE, not {retention_mode}"
            )
        if isinstance(retention_days, bool) or not 1 <= retention_days <= 36500:
            raise ValueError(f"retention days must be 1-36500, not {retention_days}")
        credentials = S3Credentials(access_key, secret_key)
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.region = region
        self.retention_mode: RetentionMode = retention_mode
        self.retention_days = retention_days
        # Short timeouts and few retries here: the archive's uploader retries with backoff for
        # as long as the store is away, so one call must fail fast rather than hang.
        http = urllib3.PoolManager(
            timeout=Timeout(connect=5.0, read=60.0),
            maxsize=10,
            retries=Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self._client = Minio(
            endpoint,
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    @classmethod
    def from_url(cls, spec: str, credentials: S3Credentials | None = None) -> MinioStorage:
        """``minio://[ACCESS:SECRET@]host:port/bucket?secure=&retention=&days=&region=``.

        Credentials in the URL win over ``credentials`` (the CLI reads those from the
        environment, so they need not appear in a command line).
        """
        parts = urlsplit(spec)
        if parts.scheme != "minio":
            raise ValueError(f"storage {_redacted(spec)!r}: not a minio:// URL")
        if not parts.hostname:
            raise ValueError(f"storage {_redacted(spec)!r}: no host")
        bucket = parts.path.strip("/")
        if not bucket or "/" in bucket:
            raise ValueError(f"storage {_redacted(spec)!r}: the path must be exactly /bucket")
        if parts.fragment:
            raise ValueError(f"storage {_redacted(spec)!r}: no fragment allowed")
        if parts.username or parts.password:
            credentials = S3Credentials(
                unquote(parts.username or ""), unquote(parts.password or "")
            )
        if credentials is None:
            raise ValueError(
                f"storage {_redacted(spec)!r}: no credentials; put ACCESS:SECRET@ in the URL or"
                " set TAKAN_S3_ACCESS_KEY and TAKAN_S3_SECRET_KEY"
            )
        options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
        unknown = set(options) - {"secure", "retention", "days", "region"}
        if unknown:
            raise ValueError(f"storage URL: unknown option(s) {', '.join(sorted(unknown))}")
        secure_text = options.get("secure", "true").lower()
        if secure_text not in ("true", "false", "1", "0"):
            raise ValueError(f"storage URL: secure must be true or false, not {secure_text!r}")
        mode = options.get("retention", GOVERNANCE).upper()
        if mode not in (GOVERNANCE, COMPLIANCE):
            raise ValueError(f"storage URL: retention must be GOVERNANCE or COMPLIANCE, not {mode}")
        days_text = options.get("days", str(DEFAULT_RETENTION_DAYS))
        if not days_text.isdigit():
            raise ValueError(f"storage URL: days must be a whole number, not {days_text!r}")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        endpoint = f"{host}:{parts.port}" if parts.port else host
        return cls(
            endpoint,
            credentials.access_key,
            credentials.secret_key,
            bucket,
            secure=secure_text in ("true", "1"),
            region=options.get("region") or None,
            retention_mode="COMPLIANCE" if mode == COMPLIANCE else "GOVERNANCE",
            retention_days=int(days_text),
        )

    def describe(self) -> str:
        scheme = "https" if self.secure else "http"
        return (
            f"S3 bucket {self.bucket} at {scheme}://{self.endpoint}"
            f" ({self.retention_mode} retention, {self.retention_days} days)"
        )

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            with _translated(what):
                yield
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, S3Error) and cause.code == "NoSuchBucket" and self._bucket_ready:
                # Gone since it was checked: the next call checks (and creates) it again.
                logger.warning("bucket vanished", extra={"bucket": self.bucket})
                self._bucket_ready = False
            raise

    # the bucket

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock, _translated(f"bucket {self.bucket}"):
            if self._bucket_ready:
                return
            if not self._client.bucket_exists(self.bucket):
                self._create_bucket()
            try:
                self._client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code in ("ObjectLockConfigurationNotFoundError", "InvalidRequest"):
                    raise StorageError(
                        f"bucket {self.bucket} has no object lock, so stored evidence could be"
                        " overwritten or deleted; use a bucket created with object lock"
                        f" (mc mb --with-lock ALIAS/{self.bucket})"
                    ) from exc
                raise
            self._bucket_ready = True

    def _create_bucket(self) -> None:
        try:
            self._client.make_bucket(self.bucket, location=self.region, object_lock=True)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        logger.info("created bucket with object lock", extra={"bucket": self.bucket})

    # writes

    def _retention(self) -> Retention:
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=self.retention_days)
        return Retention(self.retention_mode, until)

    def put(self, key: str, data: bytes, sha256: str) -> None:
        check_key(key)
        if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
            raise StorageError(f"{key}: sha256 {sha256!r} is not 64 lower-case hex digits")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise StorageError(f"{key}: data has SHA-256 {actual}, the caller said {sha256}")
        self._ensure_bucket()
        with self._translated(key):
            if self._exists(key):
                self._same_or_conflict(key, sha256, len(data))
                return
            headers = genheaders(
                {SHA256_METADATA: sha256}, None, None, self._retention(), legal_hold=False
            )
            headers["Content-Type"] = "application/octet-stream"
            headers["x-amz-checksum-sha256"] = _checksum_b64(sha256)
            # AWS asks object-lock uploads for Content-MD5 or a named checksum algorithm.
            headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
            headers["If-None-Match"] = "*"
            try:
                # put_object() takes no conditional or checksum headers in minio 7.2.20 (pinned):
                # its single-part path is this call with headers of our own.
                result = self._client._put_object(self.bucket, key, data, headers)
            except S3Error as exc:
                if exc.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    self._same_or_conflict(key, sha256, len(data))  # stored by another meanwhile
                    return
                raise
            self._read_back(key, result.version_id, sha256, len(data))

    def _same_or_conflict(self, key: str, sha256: str, size: int) -> None:
        stored, stored_size = self._digest(key, None, size + 1)
        if stored != sha256 or stored_size != size:
            raise WriteConflict(key)

    def _read_back(self, key: str, version_id: str | None, sha256: str, size: int) -> None:
        info = self._client.stat_object(
            self.bucket,
            key,
            version_id=version_id,
            extra_headers={"x-amz-checksum-mode": "ENABLED"},
        )
        metadata = info.metadata or {}
        problems = []
        if info.size != size:
            problems.append(f"size {info.size}, sent {size}")
        if metadata.get(SHA256_METADATA) != sha256:
            problems.append(f"metadata sha256 {metadata.get(SHA256_METADATA)!r}")
        checksum = metadata.get("x-amz-checksum-sha256")
        if checksum is not None and checksum != _checksum_b64(sha256):
            problems.append(f"checksum {checksum!r}")
        mode = metadata.get("x-amz-object-lock-mode")
        if mode != self.retention_mode:
            problems.append(f"object lock mode {mode!r}, asked {self.retention_mode}")
        stored, stored_size = self._digest(key, version_id, size + 1)
        if stored != sha256 or stored_size != size:
            problems.append(f"read back SHA-256 {stored} ({stored_size} bytes)")
        if problems:
            raise StorageError(
                f"{key}: stored object differs from what was sent: " + "; ".join(problems)
            )

    def _digest(self, key: str, version_id: str | None, limit: int) -> tuple[str, int]:
        response = self._client.get_object(self.bucket, key, version_id=version_id)
        with io.BufferedReader(_ObjectStream(response, key), HASH_CHUNK) as stream:
            return digest_stream(stream, limit=limit)

    # reads

    def get(self, key: str) -> bytes:
        check_key(key)
        self._ensure_bucket()
        with self._translated(key):
            response = self._client.get_object(self.bucket, key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def open(self, key: str) -> BinaryIO:
        check_key(key)
        self._ensure_bucket()
        with self._translated(key):
            response = self._client.get_object(self.bucket, key)
        return io.BufferedReader(_ObjectStream(response, key), HASH_CHUNK)

    def _exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return False
            raise
        return True

    def exists(self, key: str) -> bool:
        check_key(key)
        self._ensure_bucket()
        with self._translated(key):
            return self._exists(key)

    def list(self, prefix: str) -> builtins.list[str]:
        """Keys under ``prefix`` that can name a stored object (``is_object_key``): no
        directory marker, dot-file, temporary or key outside the layout's characters, exactly
        what the local store would list; ``get`` refuses the rest by ``check_key``."""
        check_prefix(prefix)
        self._ensure_bucket()
        with self._translated(f"listing {prefix!r}"):
            names = [
                obj.object_name
                for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if obj.object_name is not None and is_object_key(obj.object_name)
            ]
        return sorted(names)


def _redacted(spec: str) -> str:
    """``spec`` without its credentials, for error messages."""
    parts = urlsplit(spec)
    if parts.password is None and parts.username is None:
        return spec
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()

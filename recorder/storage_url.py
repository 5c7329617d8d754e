"""Which storage a URL names: the factory over the backends (local directory, MinIO/S3)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from recorder.storage import LocalStorage, Storage

if TYPE_CHECKING:
    from recorder.minio_storage import S3Credentials


def open_storage(spec: str, credentials: S3Credentials | None = None) -> Storage:
    """The storage a URL names. ``file:///absolute/path`` is a LocalStorage there;
    ``minio://[ACCESS:SECRET@]host:port/bucket?secure=false&retention=GOVERNANCE&days=3650``
    is a MinioStorage (``credentials`` are used when the URL carries none).
    """
    parts = urlsplit(spec)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"storage {spec!r}: use file:///absolute/path")
        if parts.query or parts.fragment:
            raise ValueError(f"storage {spec!r}: file URLs take no query or fragment")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "minio":
        # Imported here: the MinIO client takes ~0.1 s to import, which every `takan verify`
        # of a local archive would otherwise pay.
        from recorder.minio_storage import MinioStorage

        return MinioStorage.from_url(spec, credentials)
    raise ValueError(
        f"storage {spec!r}: unknown scheme {parts.scheme or '(none)'!r}; supported: file:///path"
    )

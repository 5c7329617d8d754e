"""The evidence package: one case's archived objects plus an offline verifier, as one zip.

Members, in this order: ``README.md``, ``public-key.txt``, ``index.html``, ``offline/…`` (the
offline page), every listed object under ``cases/{case_id}/`` in key order, named by its key
and holding its stored bytes, and last ``package-index.json``: every other member's name, size
and SHA-256, signed by the archive key (``recorder.package_index``; ``takan verify FILE.zip``
checks it, then the case). Media and images are stored, JSON is deflated. The zip is written in
one pass to any writable stream (no seeking), each object read as a stream and hashed as it
goes out, so a large case goes out without being held in memory or read twice.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

from recorder import layout
from recorder.clock import CLOCK_SOURCE
from recorder.errors import ObjectNotFound, StorageError
from recorder.package_index import INDEX_NAME, PUBLIC_KEY_TEXT, IndexBuilder
from recorder.signing import Signer
from recorder.storage import Storage

README_TEMPLATE = Path(__file__).with_name("package_readme.md")
STORED_SUFFIXES = (".webm", ".png", ".pdf")
COPY_CHUNK = 1 << 20


class ExportError(Exception):
    """The package cannot be built: an asset is missing or the case has no objects."""


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PackageAssets:
    """The offline page's files: member name in the package → file on disk."""

    files: tuple[tuple[str, Path], ...]

    @classmethod
    def from_web_dir(cls, web_dir: Path) -> PackageAssets:
        """The page from a ``web/`` directory; ExportError naming every missing file."""
        files = (
            ("index.html", web_dir / "offline" / "index.html"),
            ("offline/evidence-core.js", web_dir / "js" / "evidence-core.js"),
            ("offline/python-words.js", web_dir / "js" / "python-words.js"),
            ("offline/timestamp-token.js", web_dir / "js" / "timestamp-token.js"),
            ("offline/case-verify.js", web_dir / "js" / "case-verify.js"),
            ("offline/offline.js", web_dir / "offline" / "offline.js"),
            ("offline/package-index.js", web_dir / "offline" / "package-index.js"),
            ("offline/style.css", web_dir / "offline" / "style.css"),
        )
        missing = [str(path) for _, path in files if not path.is_file()]
        if missing:
            raise ExportError(f"the offline page is not installed: missing {', '.join(missing)}")
        return cls(files)


class KeySetStorage:
    """A read-only view of ``storage`` that lists only ``keys``: a consistent cut of a case
    taken at one moment, while the real store goes on growing."""

    def __init__(self, storage: Storage, keys: Iterable[str]) -> None:
        self._storage = storage
        self._keys = sorted(set(keys))

    def describe(self) -> str:
        return self._storage.describe()

    def put(self, key: str, data: bytes, sha256: str) -> None:
        raise StorageError(f"{key}: this view is read-only")

    def get(self, key: str) -> bytes:
        return self._storage.get(key)

    def open(self, key: str) -> BinaryIO:
        return self._storage.open(key)

    def exists(self, key: str) -> bool:
        return key in self._keys and self._storage.exists(key)

    def list(self, prefix: str) -> builtins.list[str]:
        return [key for key in self._keys if key.startswith(prefix)]


@dataclass(frozen=True, slots=True)
class ExportSummary:
    case_id: str
    objects: int
    object_bytes: int
    fingerprints: tuple[str, ...]


def package_name(case_id: str, exported_at: str) -> str:
    """``takan-<case_id>-<YYYYMMDDTHHMMSSZ>.zip`` for an export at ``exported_at`` (UTC ISO)."""
    stamp = exported_at[:19].replace("-", "").replace(":", "") + "Z"
    return f"takan-{layout.check_case_id(case_id)}-{stamp}.zip"


def _fingerprints(storage: Storage, keys: list[str], case_id: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key in keys:
        fingerprint_hex = layout.parse_public_key_key(case_id, key)
        if fingerprint_hex is not None:
            found["sha256:" + fingerprint_hex] = storage.get(key)
    return found


def render_readme(case_id: str, exported_at: str, fingerprints: Iterable[str]) -> bytes:
    names = sorted(fingerprints)
    text = README_TEMPLATE.read_text(encoding="utf-8")
    for name, value in (
        ("case_id", case_id),
        ("exported_at", exported_at),
        ("fingerprints", ", ".join(f"`{f}`" for f in names) or "(none)"),
        ("first_fingerprint", names[0] if names else "sha256:…"),
    ):
        text = text.replace("{{" + name + "}}", value)
    return text.encode("utf-8")


def render_public_keys(case_id: str, keys: dict[str, bytes]) -> bytes:
    lines = [
        f"# Takan signing public key(s) of case {case_id} / 案件 {case_id} 的签名公钥",
        "# algorithm: Ed25519; fingerprint = sha256: + hex SHA-256 of the 32 raw key bytes",
        "# 算法 Ed25519, 指纹 = sha256: + 32 字节原始公钥的 SHA-256 十六进制",
        "",
    ]
    for fingerprint, raw in sorted(keys.items()):
        lines += [
            f"fingerprint: {fingerprint}",
            f"public_key_base64: {base64.b64encode(raw).decode('ascii')}",
            f"object: {layout.public_key_key(case_id, fingerprint)}",
            "",
        ]
    return "\n".join(lines).encode("utf-8")


def _zip_info(name: str, date_time: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time)
    stored = name.endswith(STORED_SUFFIXES)
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _date_time(exported_at: str) -> tuple[int, int, int, int, int, int]:
    date, _, time = exported_at.partition("T")
    year, month, day = (int(part) for part in date.split("-"))
    hour, minute, second = (int(part) for part in time[:8].split(":"))
    return (max(year, 1980), month, day, hour, minute, second)


def _copy(source: BinaryIO, target: IO[bytes]) -> tuple[str, int]:
    """Copy ``source`` to ``target``; the SHA-256 and size of what was copied."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(COPY_CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def write_package(
    out: Writable,
    storage: Storage,
    case_id: str,
    keys: Iterable[str],
    assets: PackageAssets,
    exported_at: str,
    signer: Signer,
) -> ExportSummary:
    """Write the package of ``case_id``'s objects ``keys`` (all under its prefix) to ``out``,
    its index signed by ``signer`` (the archive key, which signs the case's checkpoints).

    ExportError if there is no object; StorageError if an object cannot be read.
    """
    prefix = layout.case_prefix(case_id)
    objects = sorted(set(keys))
    outside = [key for key in objects if not key.startswith(prefix)]
    if outside:
        raise ExportError(f"{outside[0]} is not an object of case {case_id}")
    if not objects:
        raise ExportError(f"case {case_id} has no archived objects")
    public_keys = _fingerprints(storage, objects, case_id)
    stamp = _date_time(exported_at)
    index = IndexBuilder(case_id)
    total = 0
    with zipfile.ZipFile(out, "w", allowZip64=True) as package:

        def write(name: str, data: bytes) -> None:
            package.writestr(_zip_info(name, stamp), data)
            index.add(name, len(data), hashlib.sha256(data).hexdigest())

        write("README.md", render_readme(case_id, exported_at, public_keys))
        write(PUBLIC_KEY_TEXT, render_public_keys(case_id, public_keys))
        for name, path in assets.files:
            write(name, path.read_bytes())
        for key in objects:
            info = _zip_info(key, stamp)
            try:
                source = storage.open(key)
            except ObjectNotFound as exc:
                raise ExportError(f"{key} was listed but is not stored") from exc
            with source, package.open(info, "w", force_zip64=True) as target:
                sha256, size = _copy(source, target)
            index.add(key, size, sha256)
            total += size
        package.writestr(
            _zip_info(INDEX_NAME, stamp), index.sign(signer, exported_at, CLOCK_SOURCE)
        )
    return ExportSummary(case_id, len(objects), total, tuple(sorted(public_keys)))

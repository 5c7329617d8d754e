"""Verify an export zip: the package index first, then the case it names.

The rules of docs/archive.md, *Checking an export*, in order, the first failure raised as
IntegrityError naming the member:

1. member names valid and unique (``ZipStorage``, when it opens the zip);
2. ``package-index.json``: there, canonical, a signed index (of ``case_id`` when one is asked
   for), the key's member holding its key, and the signature valid;
3. every member listed in the index (in name order);
4. every listed member there (in the index's order);
5. every member's size and SHA-256 as the index records them (in the index's order);
6. ``public-key.txt`` names the index's key;
7. the case: ``recorder.verify.verify_case``, its objects' digests taken from rule 5;
8. the index's key is the case's at its end: it signs the case's checkpoints (so it is trusted
   as the case's keys are: ``trusted_keys`` and the keys the chain rotates to from them) and no
   ``key_rotated`` entry retired it.
"""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from recorder.errors import IntegrityError, ObjectNotFound, StorageError
from recorder.package_index import (
    INDEX_NAME,
    PUBLIC_KEY_TEXT,
    IndexedMember,
    PackageIndex,
    check_case_signer,
    check_digest,
    check_listing,
    check_public_key,
    check_public_key_text,
    check_signature,
    parse_index,
)
from recorder.storage import Storage, object_digest
from recorder.timestamps import TsaTrust
from recorder.verify import DEFAULT_WORKERS, VerifyReport, verify_case


@dataclass(frozen=True, slots=True)
class PackageReport:
    """An intact package: its index and the report on the case it holds."""

    index: PackageIndex
    case: VerifyReport


def verify_package(
    export: Storage,
    *,
    case_id: str | None = None,
    trusted_keys: Collection[str] | None = None,
    require_signed_tail: bool = True,
    workers: int = DEFAULT_WORKERS,
    tsa_trust: TsaTrust | None = None,
) -> PackageReport:
    """Verify the package ``export`` (a ``ZipStorage``) and the case its index names.

    ``case_id``: the case the package must be of (``--case``); ``trusted_keys`` as for
    ``verify_case``, whose trust the index's key must share.
    """
    names = export.list("")
    index = _signed_index(export, names, case_id)
    check_listing(index, names)
    digests = _check_members(export, index, workers)
    check_public_key_text(_read(export, PUBLIC_KEY_TEXT), index)
    report = verify_case(
        export,
        index.case_id,
        require_signed_tail=require_signed_tail,
        trusted_keys=trusted_keys,
        workers=workers,
        tsa_trust=tsa_trust,
        known_digests=digests,
    )
    check_case_signer(
        index,
        {use.fingerprint for use in report.signers if use.checkpoints},
        {use.fingerprint: use.retired_at for use in report.signers if use.retired_at is not None},
    )
    return PackageReport(index, report)


def _read(export: Storage, name: str) -> bytes:
    try:
        return export.get(name)
    except ObjectNotFound as exc:
        raise IntegrityError(name, "missing") from exc
    except StorageError as exc:
        raise IntegrityError(name, f"unreadable: {exc}") from exc


def _signed_index(export: Storage, names: list[str], case_id: str | None) -> PackageIndex:
    if INDEX_NAME not in names:
        raise IntegrityError(INDEX_NAME, "missing: the package has no index of its members")
    signed = parse_index(_read(export, INDEX_NAME))
    index = signed.index
    if case_id is not None and case_id != index.case_id:
        raise IntegrityError(INDEX_NAME, f"the package is of case {index.case_id}, not {case_id}")
    key_name = index.public_key_name
    if key_name not in names:
        raise IntegrityError(
            INDEX_NAME, f"names signing key {index.key_fingerprint}, absent ({key_name})"
        )
    public_key = _read(export, key_name)
    check_public_key(key_name, public_key, index.key_fingerprint)
    check_signature(signed, public_key)
    return index


def _digest(export: Storage, member: IndexedMember) -> tuple[str, int] | IntegrityError:
    """SHA-256 and size, reading at most the listed size + 1 bytes (as verify_case does)."""
    try:
        return object_digest(export, member.name, limit=member.size + 1)
    except (StorageError, OSError) as exc:
        return IntegrityError(member.name, f"unreadable: {exc}")


def _check_members(
    export: Storage, index: PackageIndex, workers: int
) -> dict[str, tuple[str, int]]:
    """Every member hashed (several at a time), checked in the index's order; the digests, so
    that the case's verification need not read its objects again."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    digests: dict[str, tuple[str, int]] = {}
    try:
        results = pool.map(lambda member: _digest(export, member), index.members)
        for member, result in zip(index.members, results, strict=True):
            if isinstance(result, IntegrityError):
                raise result
            sha256, size = result
            check_digest(member, sha256, size)
            digests[member.name] = result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a failure need not hash the rest
    return digests

"""Receipts of ended inspections: issued once the manifest is signed, kept, pushed to witnesses.

A receipt (recorder/receipt.py) is issued when an inspection ends and kept in
``DATA/receipts/{case}/{inspection}.json``; it is not evidence (the archive is), it is what the
server handed to the outside. An inspection whose receipt was never issued (the server stopped
between the manifest and the receipt) gets it on the first request. A receipt issued before the
manifest's RFC 3161 token was chained is issued again, once, with the token and the same head.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

import segno

from recorder import layout
from recorder.clock import CLOCK_SOURCE
from recorder.errors import ObjectNotFound, StorageError
from recorder.manifest import Manifest
from recorder.receipt import (
    Receipt,
    ReceiptTimestamp,
    SignedReceipt,
    find_timestamp,
    parse_receipt,
    sign_receipt,
)
from recorder.storage import fsync_dir
from server.clock import utc_iso
from server.errors import Conflict
from server.inspection.chain_record import CaseRecord
from server.services import Services
from server.settings import RECEIPTS_DIR
from server.store.models import Inspection

logger = logging.getLogger(__name__)

TIMESTAMP_SEARCH_ENTRIES = 200  # how far after the manifest's entry a token is looked for
QR_MAX_VERSION = 25  # 117 x 117 modules: still read off a phone screen by a phone camera
QR_ERROR = "m"


def receipt_path(services: Services, case_id: str, inspection_id: str) -> Path:
    root = services.settings.data_dir / RECEIPTS_DIR
    return (
        root / layout.check_case_id(case_id) / f"{layout.check_inspection_id(inspection_id)}.json"
    )


def _write_durably(path: Path, data: bytes, replace_existing: bool) -> bool:
    """Write ``data`` at ``path``; unless ``replace_existing``, only if nothing is there yet
    (False then: whoever wrote first wins, as two requests may issue at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace_existing:
            tmp.replace(path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read_stored(path: Path) -> SignedReceipt | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_receipt(data, str(path))


async def receipt_of(services: Services, inspection: Inspection) -> SignedReceipt:
    """The inspection's receipt: the kept one (issued again if a timestamp token has come
    since), or a new one if the inspection ended without one; 409 while it has not ended."""
    if inspection.status != "ended" or inspection.ended_at is None:
        raise Conflict("the inspection has not ended; its receipt is issued when it ends")
    path = receipt_path(services, inspection.case_id, inspection.inspection_id)
    stored = await asyncio.to_thread(_read_stored, path)
    if stored is None:
        return await issue_receipt(services, inspection)
    if stored.receipt.timestamp is None:
        stamp = await _timestamp(services, stored.receipt)
        if stamp is not None:
            again = replace(
                stored.receipt, timestamp=stamp, issued_at=utc_iso(services.clock.now())
            )
            return await _keep(services, sign_receipt(services.archive.signer, again), True)
    return stored


async def issue_receipt(services: Services, inspection: Inspection) -> SignedReceipt:
    """Sign a receipt of the ended inspection's manifest and the chain entry recording it,
    keep it and hand it to the witnesses."""
    archive, case_id = services.archive, inspection.case_id
    if inspection.ended_at is None:
        raise Conflict("the inspection has not ended")
    manifest_key = layout.manifest_key(case_id, inspection.inspection_id)
    try:
        manifest_bytes = await archive.read_object(manifest_key)
    except ObjectNotFound:
        raise Conflict("the inspection's manifest is not signed yet") from None
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    manifest = Manifest.from_signed_json(json.loads(manifest_bytes))
    # The manifest's entry is chained right after the head the manifest names (same lock).
    seq = manifest.chain_head_seq + 1
    _, chain = await archive.chain_page(case_id, 0, seq + 1)
    entries = chain[seq:]
    if not entries or (entries[0].body.get("key"), entries[0].body.get("sha256")) != (
        manifest_key,
        manifest_sha256,
    ):
        raise StorageError(f"chain entry {seq} does not record {manifest_key}")
    # The times the receipt vouches for are the chain's, not the database's (an index).
    facts = CaseRecord.from_entries(case_id, chain).inspection(inspection.inspection_id)
    if facts is None or facts.ended_at is None:
        raise StorageError(f"the chain up to entry {seq} does not record the inspection's end")
    receipt = Receipt(
        case_id=case_id,
        inspection_id=inspection.inspection_id,
        manifest_key=manifest_key,
        manifest_sha256=manifest_sha256,
        chain_head_seq=seq,
        chain_head=entries[0].hash,
        started_at=facts.created_at.at,
        ended_at=facts.ended_at.at,
        clock=CLOCK_SOURCE,
        issued_at=utc_iso(services.clock.now()),
        key_fingerprint=archive.signer.fingerprint,
    )
    stamp = await _timestamp(services, receipt)
    signed = sign_receipt(archive.signer, replace(receipt, timestamp=stamp))
    return await _keep(services, signed, False)


async def _keep(services: Services, signed: SignedReceipt, again: bool) -> SignedReceipt:
    """Keep and push ``signed``: the first receipt of the inspection, or (``again``) the one
    that replaces it; a first receipt that lost the race to another returns that one."""
    receipt = signed.receipt
    path = receipt_path(services, receipt.case_id, receipt.inspection_id)
    data = signed.to_bytes()
    if not await asyncio.to_thread(_write_durably, path, data, again):
        kept = await asyncio.to_thread(_read_stored, path)
        if kept is None:
            raise StorageError(f"{path} vanished while a receipt was issued")
        return kept
    services.witness.push_receipt(receipt.case_id, data)
    logger.info(
        "receipt issued",
        extra={
            "case_id": receipt.case_id,
            "inspection_id": receipt.inspection_id,
            "seq": receipt.chain_head_seq,
            "sha256": signed.sha256,
        },
    )
    return signed


async def _timestamp(services: Services, receipt: Receipt) -> ReceiptTimestamp | None:
    """The manifest's chained RFC 3161 token, if one has been chained after its entry."""
    archive = services.archive
    _, entries = await archive.chain_page(
        receipt.case_id, receipt.chain_head_seq + 1, TIMESTAMP_SEARCH_ENTRIES
    )
    found = find_timestamp(entries, receipt.case_id, receipt.manifest_key, receipt.manifest_sha256)
    if found is None:
        return None
    key, sha256 = found
    stamp = ReceiptTimestamp.of(key, await archive.read_object(key))
    if stamp.sha256 != sha256:
        raise StorageError(f"{key} does not have the SHA-256 its chain entry records")
    return stamp


async def issue_at_end(services: Services, inspection_id: str) -> None:
    """Issue the receipt of an inspection that has just ended; a failure is logged (the first
    request for the receipt issues it)."""
    inspection = await services.store.inspections.get(inspection_id)
    if inspection is None:
        return
    try:
        await issue_receipt(services, inspection)
    except Exception:
        logger.exception("receipt not issued at the end", extra={"inspection_id": inspection_id})


def qr_content(signed: SignedReceipt, url: str) -> bytes | str:
    """What the receipt's QR code holds: the receipt itself when it fits a QR code of at most
    version ``QR_MAX_VERSION`` at error level M (a receipt without a timestamp token: about
    720 bytes, version 22), else its URL with its SHA-256 (a token alone is 1-6 KB)."""
    data = signed.to_bytes()
    try:
        segno.make(data, error=QR_ERROR, micro=False, version=QR_MAX_VERSION)
    except ValueError:  # segno's DataOverflowError is a ValueError
        return f"{url}#sha256={signed.sha256}"
    return data

"""REST handlers for finding and proving evidence (docs/api.md): case search and detail, the
audit trail, integrity, raw objects, replay events and the evidence package.

Auditors and admins see every case, an inspector only their own (``inspections.visible_case``);
nobody can change anything here. Every replay, verification and export is chained in the case.
Integrity also cross-checks the database against the verified chain and names each difference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from recorder import layout
from recorder.canonical import parse_json
from recorder.chain import ChainEntry, chain_where
from recorder.errors import IntegrityError, NotAStoredObject, ObjectNotFound, StorageError
from recorder.export import (
    ExportError,
    ExportSummary,
    KeySetStorage,
    PackageAssets,
    package_name,
    write_package,
)
from recorder.storage import Storage, check_key
from recorder.timestamps import TsaTrust
from recorder.verify import VerifyReport, verify_case
from server.clock import utc_iso
from server.errors import BadRequest, CaseFlagged, Conflict, Forbidden, NotFound, TakanError
from server.http.requests import json_body
from server.inspection import inspections
from server.inspection.chain_record import CaseRecord
from server.inspection.cross_check import Disagreement, disagreements
from server.security.auth import current_user, requester
from server.security.tokens import SessionToken
from server.services import SERVICES, Services
from server.store.case_search import CaseQuery
from server.store.models import Inspection

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 60.0
MAX_AUDIT_PAGE = 500
MAX_BROKEN_KEYS = 1000
MAX_WHERE = 300
MAX_REASON = 1000
MAX_SEGMENTS_CHECKED = 10_000_000
STREAM_CHUNK = 256 * 1024
CONTENT_TYPES = {
    ".webm": "video/webm",
    ".json": "application/json",
    ".png": "image/png",
    ".pdf": "application/pdf",
    ".tsr": "application/timestamp-reply",
}
_INSPECTION_IN_KEY = re.compile(r"cases/[^/]+/inspections/([0-9a-f]{32})/")
_CHAIN_WHERE = re.compile(r"chain entry ([0-9]{1,12})")
_OBJECT_PARSERS = (
    layout.parse_chain_entry_key,
    layout.parse_checkpoint_key,
    layout.parse_public_key_key,
    layout.parse_segment_key,
    layout.parse_manifest_key,
    layout.parse_snapshot_key,
    layout.parse_annotation_key,
    layout.parse_marked_up_key,
    layout.parse_report_key,
    layout.parse_timestamp_key,
)


class ArchiveUnavailable(TakanError):
    code = "archive_unavailable"
    status = 503


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


async def _username(services: Services, user_id: int) -> str:
    user = await services.store.users.by_id(user_id)
    return user.username if user else f"#{user_id}"


def _object_key(case_id: str, relative: str) -> str:
    """The full key of ``relative`` (under ``cases/{case_id}/``) if the layout knows it."""
    key = layout.case_prefix(case_id) + relative
    try:
        check_key(key)
    except StorageError as exc:
        raise BadRequest(f"object key {relative[:200]!r} is not a valid key") from exc
    if not any(parse(case_id, key) is not None for parse in _OBJECT_PARSERS):
        raise BadRequest(f"object key {relative[:200]!r} is not an archive object of a case")
    return key


def _relative(case_id: str, key: str) -> str:
    return key.removeprefix(layout.case_prefix(case_id))


# search and case detail


async def get_cases(request: web.Request) -> web.Response:
    services = _services(request)
    user = await current_user(request)
    query = CaseQuery.from_params(request.query)
    owner = user.user_id if user.role == "inspector" else None
    return web.json_response((await services.store.search(query, owner)).to_json())


def _duration_s(inspection: Inspection) -> float | None:
    if inspection.ended_at is None:
        return None
    start = datetime.fromisoformat(inspection.consented_at or inspection.created_at)
    return round((datetime.fromisoformat(inspection.ended_at) - start).total_seconds(), 3)


async def inspection_detail(services: Services, inspection: Inspection) -> dict[str, Any]:
    body = inspection.to_json()
    body["participants"] = await services.store.participants.of(inspection.inspection_id)
    body["duration_s"] = _duration_s(inspection)
    body["created_by"] = await _username(services, inspection.created_by)
    return body


async def get_case(request: web.Request) -> web.Response:
    services = _services(request)
    user = await current_user(request)
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    body = case.to_json()
    body["inspectors"] = await services.store.cases.inspector_names(case.case_id)
    body["inspections"] = [
        await inspection_detail(services, i)
        for i in await services.store.inspections.of_case(case.case_id)
    ]
    return web.json_response(body)


# the audit trail


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not low <= int(text) <= high:
        raise BadRequest(f"query parameter '{name}' must be an integer in {low}..{high}")
    return int(text)


async def get_audit(request: web.Request) -> web.Response:
    services = _services(request)
    user = await current_user(request)
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    offset = _int_param(request, "offset", 0, 0, 10**9)
    limit = _int_param(request, "limit", 100, 1, MAX_AUDIT_PAGE)
    total, entries = await services.archive.chain_page(case.case_id, offset, limit)
    return web.json_response(
        {
            "case_id": case.case_id,
            "total": total,
            "offset": offset,
            "limit": limit,
            "entries": [entry.to_json() for entry in entries],
        }
    )


# integrity


@dataclass(frozen=True, slots=True)
class Integrity:
    state: str
    where: str | None
    reason: str | None
    broken_inspection: str | None  # None with state "broken": the whole case
    report: VerifyReport | None
    entries: tuple[ChainEntry, ...] = ()  # the verified chain, for the database's cross-check


async def _settled_keys(services: Services, case_id: str) -> list[str]:
    try:
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            return await services.archive.settled_keys(case_id)
    except TimeoutError as exc:
        raise ArchiveUnavailable(
            f"the archive storage did not take the pending objects within {SETTLE_TIMEOUT_S:g} s"
        ) from exc


def _entry_body(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        body = parse_json(storage.get(key)).get("body")
    except (StorageError, ValueError, AttributeError):
        return None
    return body if isinstance(body, dict) else None


def _inspection_of(body: dict[str, Any] | None) -> str | None:
    value = body.get("inspection_id") if body is not None else None
    return value if isinstance(value, str) else None


def _implicated_inspection(storage: Storage, case_id: str, where: str) -> str | None:
    """The inspection a failure at ``where`` belongs to, or None if it is the whole case's."""
    if match := _INSPECTION_IN_KEY.match(where):
        return match[1]
    if match := _CHAIN_WHERE.fullmatch(where):
        return _inspection_of(_entry_body(storage, layout.chain_entry_key(case_id, int(match[1]))))
    for key in storage.list(layout.chain_prefix(case_id)):  # whoever recorded the object
        body = _entry_body(storage, key)
        if body is not None and body.get("key") == where:
            return _inspection_of(body)
    return None


def _check(
    storage: Storage, case_id: str, trusted_keys: Collection[str], tsa_trust: TsaTrust | None
) -> Integrity:
    try:
        report = verify_case(storage, case_id, trusted_keys=trusted_keys, tsa_trust=tsa_trust)
    except IntegrityError as exc:
        inspection_id = _implicated_inspection(storage, case_id, exc.where)
        return Integrity("broken", exc.where, exc.reason, inspection_id, None)
    chain = tuple(
        ChainEntry.from_json(parse_json(storage.get(key)))
        for key in storage.list(layout.chain_prefix(case_id))
    )
    return Integrity("verified", None, None, None, report, chain)


async def _disagreements(
    services: Services, case_id: str, verified: tuple[ChainEntry, ...]
) -> list[Disagreement]:
    """What the database says otherwise than the verified chain. A row indexed for an entry
    chained after the verified cut is no disagreement: those are read from the live chain."""
    indexed = await services.store.case_index.rows(case_id)
    found = disagreements(indexed, CaseRecord.from_entries(case_id, verified))
    if found:
        _, later = await services.archive.chain_page(case_id, len(verified), 10**9)
        if later:
            chain = [*verified, *later]
            found = disagreements(indexed, CaseRecord.from_entries(case_id, chain))
    return found


async def get_integrity(request: web.Request) -> web.Response:
    services = _services(request)
    user = await current_user(request)
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    keys = await _settled_keys(services, case.case_id)
    view = KeySetStorage(services.archive.storage, keys)
    try:
        trusted = services.archive.key_history.fingerprints
        stamper = services.timestamper
        tsa_trust = stamper.trust if stamper is not None else None
        result = await asyncio.to_thread(_check, view, case.case_id, trusted, tsa_trust)
    except StorageError as exc:
        raise ArchiveUnavailable(f"the archive storage cannot be read: {exc}") from exc
    found = []
    if result.state == "verified":
        found = await _disagreements(services, case.case_id, result.entries)
    differing = {d.inspection_id for d in found}
    state = "disagrees" if found else result.state
    per_inspection = {
        i.inspection_id: (
            "broken"
            if result.state == "broken" and result.broken_inspection in (None, i.inspection_id)
            else "disagrees"
            if i.inspection_id in differing
            else "verified"
        )
        for i in await services.store.inspections.of_case(case.case_id)
    }
    where = result.where
    if found and found[0].seq is not None:
        where = chain_where(found[0].seq)
    chained: dict[str, Any] = {"by": user.username, "role": user.role, "state": state}
    chained["where"] = where
    if result.state == "verified":
        chained["disagreements"] = len(found)
    await services.archive.append(case.case_id, "verified", chained)
    return web.json_response(
        {
            "case_id": case.case_id,
            "state": state,
            "checked_at": utc_iso(services.clock.now()),
            "where": result.where,
            "reason": result.reason,
            "database": "unchecked"
            if result.state != "verified"
            else state.replace("verified", "agrees"),
            "disagreements": [d.to_json() for d in found],
            "inspections": per_inspection,
            "segments": sum(1 for k in keys if layout.parse_segment_key(case.case_id, k)),
            "chain_entries": sum(
                1 for k in keys if layout.parse_chain_entry_key(case.case_id, k) is not None
            ),
            "key_fingerprint": (
                result.report.key_fingerprint
                if result.report and result.report.key_fingerprint
                else services.archive.signer.fingerprint
            ),
            # In plain words, when this server found entries it did not write, or a cut.
            "flag": services.archive.flag_of(case.case_id),
        }
    )


# raw objects


async def get_objects(request: web.Request) -> web.Response:
    """The case's stored objects (keys relative to ``cases/{case_id}/``), listed as integrity
    lists them: a consistent cut, so a browser checks the same set as ``takan verify``."""
    services = _services(request)
    user = await current_user(request)
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    keys = await _settled_keys(services, case.case_id)
    return web.json_response(
        {"case_id": case.case_id, "objects": [_relative(case.case_id, key) for key in keys]},
        headers={"Cache-Control": "no-store"},
    )


async def get_object(request: web.Request) -> web.Response:
    services = _services(request)
    user = await current_user(request)
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    key = _object_key(case.case_id, request.match_info["key"])
    try:
        data = await services.archive.read_object(key)
    except NotAStoredObject as exc:
        relative = _relative(case.case_id, key)
        raise NotFound(f"object {relative!r} is not stored: {exc.reason}") from exc
    except ObjectNotFound as exc:
        raise NotFound(f"object {_relative(case.case_id, key)!r} does not exist") from exc
    except StorageError as exc:
        raise ArchiveUnavailable(f"the archive storage cannot be read: {exc}") from exc
    suffix = key[key.rfind(".") :]
    return web.Response(
        body=data,
        content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


# replay events


async def _ended_inspection(request: web.Request) -> tuple[Services, SessionToken, Inspection]:
    services = _services(request)
    user = await current_user(request)
    inspection = await inspections.inspection_for(
        services, user, request.match_info["inspection_id"]
    )
    if inspection.status == "active":
        raise Conflict("the inspection is still active: it has no signed manifest to replay yet")
    return services, user, inspection


async def post_replay(request: web.Request) -> web.Response:
    services, user, inspection = await _ended_inspection(request)
    case_id = inspection.case_id
    await services.archive.append(
        case_id,
        "replayed",
        {"by": user.username, "role": user.role, "inspection_id": inspection.inspection_id},
    )
    case = await services.store.cases.get(case_id)
    return web.json_response(
        {
            "case_id": case_id,
            "case_number": case.number if case else case_id,
            "inspection_id": inspection.inspection_id,
            "manifest_key": _relative(
                case_id, layout.manifest_key(case_id, inspection.inspection_id)
            ),
            "audit_url": f"/api/cases/{case_id}/audit",
            "objects_url": f"/api/cases/{case_id}/objects/",
        }
    )


def _replay_finding(case_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """The browser's finding as it is chained; BadRequest naming the first bad field."""
    unknown = sorted(set(body) - {"state", "segments_checked", "broken", "where", "reason"})
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0][:40]}'")
    state = body.get("state")
    if state not in ("verified", "broken"):
        raise BadRequest("field 'state' must be 'verified' or 'broken'")
    checked = body.get("segments_checked")
    if (
        isinstance(checked, bool)
        or not isinstance(checked, int)
        or not 0 <= checked <= MAX_SEGMENTS_CHECKED
    ):
        raise BadRequest(
            f"field 'segments_checked' must be an integer in 0..{MAX_SEGMENTS_CHECKED}"
        )
    broken = body.get("broken")
    if not isinstance(broken, list) or len(broken) > MAX_BROKEN_KEYS:
        raise BadRequest(f"field 'broken' must be a list of at most {MAX_BROKEN_KEYS} keys")
    for item in broken:
        if not isinstance(item, str):
            raise BadRequest("field 'broken' must hold object keys (strings)")
        _object_key(case_id, item)
    if len(set(broken)) != len(broken):
        raise BadRequest("field 'broken' names a key twice")
    if state == "verified" and broken:
        raise BadRequest("state 'verified' cannot come with broken keys")
    finding: dict[str, Any] = {"state": state, "segments_checked": checked, "broken": broken}
    # The first failure, named as takan verify names it ("FAILED: <where>: <reason>").
    for name, limit in (("where", MAX_WHERE), ("reason", MAX_REASON)):
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise BadRequest(f"field '{name}' must be a string of 1..{limit} characters")
        if state == "verified":
            raise BadRequest(f"state 'verified' cannot come with a '{name}'")
        finding[name] = value
    return finding


async def post_replay_verified(request: web.Request) -> web.Response:
    services, user, inspection = await _ended_inspection(request)
    finding = _replay_finding(inspection.case_id, await json_body(request))
    entry = await services.archive.append(
        inspection.case_id,
        "replay_verified",
        {
            "by": user.username,
            "role": user.role,
            "inspection_id": inspection.inspection_id,
            **finding,
        },
    )
    return web.json_response(
        {"case_id": inspection.case_id, "seq": entry.seq, "state": finding["state"]}
    )


# the evidence package


class _QueueWriter:
    """A file-like sink for the zip writer's thread: full chunks go to the event loop."""

    def __init__(self, queue: asyncio.Queue[bytes | None], loop: asyncio.AbstractEventLoop):
        self._queue = queue
        self._loop = loop
        self._buffer = bytearray()
        self.aborted = threading.Event()

    def _send(self, item: bytes | None) -> None:
        asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop).result()

    def write(self, data: bytes, /) -> int:
        if self.aborted.is_set():
            raise OSError("the client went away")
        self._buffer += data
        if len(self._buffer) >= STREAM_CHUNK:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def flush(self) -> None:
        """Chunks go out when full; the zip's own flushes would only make them small."""

    def close(self) -> None:
        """The end of the stream is ``finish``."""

    def finish(self) -> None:
        if self._buffer and not self.aborted.is_set():
            self._send(bytes(self._buffer))
        self._buffer.clear()
        self._send(None)


async def get_flagged_cases(request: web.Request) -> web.Response:
    """Cases whose chain holds entries this server did not write, or lost some (admins and
    auditors): each with the plain words of what was found."""
    services = _services(request)
    user = await current_user(request)
    if user.role not in ("admin", "auditor"):
        raise Forbidden("only admins and auditors see flagged cases")
    flagged = await asyncio.to_thread(services.archive.flagged_cases)
    return web.json_response(
        {"cases": [{"case_id": case_id, "flag": words} for case_id, words in flagged.items()]},
        headers={"Cache-Control": "no-store"},
    )


async def get_export(request: web.Request) -> web.StreamResponse:
    services = _services(request)
    user = await current_user(request)
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    try:
        assets = PackageAssets.from_web_dir(services.settings.web_dir)
    except ExportError as exc:
        logger.error("export impossible", extra={"case_id": case.case_id, "error": str(exc)})
        raise ArchiveUnavailable(str(exc)) from exc
    await services.archive.open_case(case.case_id)
    flag = services.archive.flag_of(case.case_id)
    if flag is not None:
        raise CaseFlagged(f"case {case.case_id} is not exported: {flag}")
    await services.archive.append(
        case.case_id, "exported", {"by": user.username, "role": user.role}
    )
    keys = await _settled_keys(services, case.case_id)  # signs the export event too
    exported_at = utc_iso(services.clock.now())
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": (
                f'attachment; filename="{package_name(case.case_id, exported_at)}"'
            ),
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
    writer = _QueueWriter(queue, asyncio.get_running_loop())
    storage = services.archive.storage
    signer = services.archive.signer

    def produce() -> ExportSummary:
        try:
            return write_package(writer, storage, case.case_id, keys, assets, exported_at, signer)
        finally:
            writer.finish()

    producer = asyncio.create_task(asyncio.to_thread(produce))
    try:
        while (chunk := await queue.get()) is not None:
            await response.write(chunk)
    except BaseException:
        writer.aborted.set()
        while not producer.done():  # let the thread put its last chunk and stop
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            await asyncio.sleep(0.01)
        raise
    try:
        summary = await producer
    except (StorageError, ExportError, OSError) as exc:
        # The status line is sent: the truncated zip fails to open, and the log says why.
        logger.error("export failed", extra={"case_id": case.case_id, "error": str(exc)})
        raise
    logger.info(
        "case exported",
        extra={"case_id": case.case_id, "objects": summary.objects, "by": user.username},
    )
    await response.write_eof()
    return response


# denials


async def _case_of_request(services: Services, request: web.Request) -> str | None:
    case_id = request.match_info.get("case_id")
    if case_id is not None:
        case = (
            await services.store.cases.get(case_id)
            if layout.CASE_ID_PATTERN.fullmatch(case_id)
            else None
        )
        return case.case_id if case else None
    inspection_id = request.match_info.get("inspection_id")
    snapshot_id = request.match_info.get("snapshot_id")
    if snapshot_id is not None and layout.INSPECTION_ID_PATTERN.fullmatch(snapshot_id):
        inspection_id = await services.store.evidence.inspection_of_snapshot(snapshot_id)
    annotation_id = request.match_info.get("annotation_id")
    if annotation_id is not None and layout.INSPECTION_ID_PATTERN.fullmatch(annotation_id):
        place = await services.store.evidence.annotation_place(annotation_id)
        inspection_id = place["inspection_id"] if place else None
    if inspection_id is not None and layout.INSPECTION_ID_PATTERN.fullmatch(inspection_id):
        inspection = await services.store.inspections.get(inspection_id)
        return inspection.case_id if inspection else None
    return None


async def record_denial(request: web.Request) -> None:
    """Chain a refused request (403) in the case it was about, if that case exists."""
    services = _services(request)
    case_id = await _case_of_request(services, request)
    if case_id is None:
        return
    by, role = requester(request) or ("anonymous", "none")
    await services.archive.append(
        case_id,
        "access_denied",
        {"by": by, "role": role, "method": request.method, "path": request.path[:300]},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/cases", get_cases)
    app.router.add_get("/api/cases/{case_id}", get_case)
    app.router.add_get("/api/cases/{case_id}/audit", get_audit)
    app.router.add_get("/api/cases/{case_id}/integrity", get_integrity)
    app.router.add_get("/api/cases/{case_id}/objects", get_objects)
    app.router.add_get("/api/cases/{case_id}/objects/{key:.+}", get_object)
    app.router.add_get("/api/cases/{case_id}/export", get_export)
    app.router.add_get("/api/admin/flagged-cases", get_flagged_cases)
    app.router.add_post("/api/inspections/{inspection_id}/replay", post_replay)
    app.router.add_post("/api/inspections/{inspection_id}/replay-verified", post_replay_verified)

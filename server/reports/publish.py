"""The inspection report: gathered after the conclusion (server.report_gather), rendered to HTML
(server.report_html) and PDF (WeasyPrint, CJK font embedded), stored in the archive and chained as
``report`` entries, so the report's own hashes are evidence too.

A ``reports`` row whose ``html_sha256`` is empty marks a version being generated: it reserves
the version number (so two generations never write the same keys) and tells readers to wait.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from recorder import layout
from recorder.chain import parse_utc
from server.clock import utc_iso
from server.errors import Conflict, NotFound
from server.inspection.marked_up import record_missing
from server.reports.gather import ChainFacts, chain_facts, gather, read_checked
from server.reports.html import ReportContent, render_html
from server.services import Services
from server.store.models import Inspection

logger = logging.getLogger(__name__)

STALE_PENDING_S = 600.0  # a reservation this old was left by a crashed generation
RESERVE_POLL_S = 0.25
# WeasyPrint shares fontconfig/Pango state; one render at a time on a 2-core server anyway.
_PDF_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class ReportRecord:
    inspection_id: str
    version: int
    html_key: str
    html_sha256: str
    pdf_key: str
    pdf_sha256: str
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "version": self.version,
            "html_key": self.html_key,
            "html_sha256": self.html_sha256,
            "pdf_key": self.pdf_key,
            "pdf_sha256": self.pdf_sha256,
            "created_at": self.created_at,
        }


# rendering


def render_pdf(document: str) -> bytes:
    """The HTML rendered to PDF with its fonts embedded; it may load nothing but data: URLs."""
    import weasyprint  # ~0.5 s to import: only where a report is made

    fetcher = weasyprint.URLFetcher(allowed_protocols=["data"])
    with _PDF_LOCK:
        pdf: bytes = weasyprint.HTML(string=document, url_fetcher=fetcher).write_pdf()
    return pdf


def render_files(content: ReportContent) -> tuple[bytes, bytes]:
    """(HTML, PDF) bytes of the report (blocking)."""
    document = render_html(content)
    return document.encode("utf-8"), render_pdf(document)


# the reports table


def _record(row: Any) -> ReportRecord:
    return ReportRecord(
        inspection_id=row["inspection_id"],
        version=row["version"],
        html_key=row["html_key"],
        html_sha256=row["html_sha256"],
        pdf_key=row["pdf_key"],
        pdf_sha256=row["pdf_sha256"],
        created_at=row["created_at"],
    )


def _is_stale(reserved_at: str, now: float) -> bool:
    return bool((now - parse_utc(reserved_at).timestamp()) > STALE_PENDING_S)


async def latest_report(services: Services, inspection_id: str) -> ReportRecord | None:
    """The newest complete report of the inspection, if any."""
    row = await services.store.reports.latest(inspection_id)
    return _record(row) if row is not None else None


async def report_pending(services: Services, inspection_id: str) -> bool:
    """True while a version of the inspection's report is being generated."""
    now = services.clock.now()
    reserved = await services.store.reports.pending_since(inspection_id)
    return any(not _is_stale(at, now) for at in reserved)


def _report_keys(case_id: str, inspection_id: str, version: int) -> tuple[str, str]:
    return (
        layout.report_key(case_id, inspection_id, version, "html"),
        layout.report_key(case_id, inspection_id, version, "pdf"),
    )


async def _reserve(services: Services, inspection: Inspection) -> tuple[int, ChainFacts]:
    deadline = time.monotonic() + STALE_PENDING_S
    while True:
        facts = await chain_facts(services, inspection.case_id, inspection.inspection_id)
        now = services.clock.now()
        case_id, inspection_id = inspection.case_id, inspection.inspection_id
        version = await services.store.reports.reserve(
            inspection_id,
            facts.reported_versions,
            functools.partial(_report_keys, case_id, inspection_id),
            utc_iso(now),
            functools.partial(_is_stale, now=now),
        )
        if version is not None:
            return version, facts
        if time.monotonic() > deadline:
            raise Conflict("another report of this inspection is still being generated")
        # Two conclusions in quick succession (a correction): the second waits for the first.
        await asyncio.sleep(RESERVE_POLL_S)


async def publish_report(services: Services, inspection_id: str) -> ReportRecord:
    """Generate the next version of the inspection's report, store both files in the archive,
    chain each as ``report``, record it, and sign the chain head. The heavy work runs in a
    thread. Conflict if the inspection has no conclusion or has not ended yet."""
    inspection = await services.store.inspections.get(inspection_id)
    if inspection is None:
        raise NotFound(f"inspection '{inspection_id}' does not exist")
    if inspection.outcome is None:
        raise Conflict("the inspection has no conclusion yet")
    started = time.monotonic()
    case_id = inspection.case_id
    version, facts = await _reserve(services, inspection)
    try:
        if not facts.conclusions:
            raise Conflict("the chain holds no conclusion for this inspection")
        if facts.inspection is not None and await record_missing(
            services, case_id, facts.inspection
        ):  # annotations whose marked-up copy was not made when they were saved
            facts = await chain_facts(services, case_id, inspection_id)
        now = utc_iso(services.clock.now())
        content = await gather(services, inspection, facts, version, now)
        html_bytes, pdf_bytes = await asyncio.to_thread(render_files, content)
        entries = {}
        for report_format, data in (("html", html_bytes), ("pdf", pdf_bytes)):
            key = layout.report_key(case_id, inspection_id, version, report_format)
            body = {
                "inspection_id": inspection_id,
                "version": version,
                "format": report_format,
                "generated_at": now,
                "timezone": content.timezone,
            }
            entries[report_format] = await services.archive.store_object(
                case_id, key, data, "report", body
            )
        html_sha256 = str(entries["html"].body["sha256"])
        pdf_sha256 = str(entries["pdf"].body["sha256"])
        await services.store.reports.complete(inspection_id, version, html_sha256, pdf_sha256, now)
    except BaseException:
        # The version number is not reused: its keys may already be chained.
        await services.store.reports.release(inspection_id, version)
        raise
    await services.archive.checkpoint(case_id)
    logger.info(
        "report published",
        extra={
            "case_id": case_id,
            "inspection_id": inspection_id,
            "version": version,
            "sha256": pdf_sha256,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return ReportRecord(
        inspection_id=inspection_id,
        version=version,
        html_key=layout.report_key(case_id, inspection_id, version, "html"),
        html_sha256=html_sha256,
        pdf_key=layout.report_key(case_id, inspection_id, version, "pdf"),
        pdf_sha256=pdf_sha256,
        created_at=now,
    )


async def read_report(services: Services, record: ReportRecord, report_format: str) -> bytes:
    """The stored bytes of one file of a report, checked against its recorded SHA-256."""
    key, sha256 = (
        (record.html_key, record.html_sha256)
        if report_format == "html"
        else (record.pdf_key, record.pdf_sha256)
    )
    return await read_checked(services.archive, key, sha256)

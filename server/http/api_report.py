"""REST: an inspection's report (docs/api.md, "Inspection evidence"), and the tasks that make it.

``GET /api/inspections/{id}/report.html`` and ``.../report.pdf`` answer the latest stored
report's bytes (checked against their recorded SHA-256) to the inspection's own inspector, auditors
and admins; 409 before a conclusion; 202 while the report is being generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from server.errors import Conflict
from server.inspection.evidence_access import READERS, readable_inspection
from server.reports import publish
from server.security.auth import current_user
from server.services import SERVICES

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2
SHUTDOWN_WAIT_S = 30.0
CONTENT_TYPES = {"html": "text/html", "pdf": "application/pdf"}
# The stored HTML carries its images as data: URLs and needs nothing else.
HTML_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


class ReportTasks:
    """The report generations running in this server; shutdown waits for them to finish, since
    a generation cut short between storing a file and chaining it would leave a stray object."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def start(self, app: web.Application, inspection_id: str, again: bool = True) -> None:
        """Generate the next report version of the inspection in the background, one at a time
        per inspection. With ``again`` (a conclusion or correction was just signed), a request
        while one runs runs once more after it, so the newest conclusion gets its own version;
        without (a reader asking for a missing report), it is folded into the running one."""
        running = self._tasks.get(inspection_id)
        if running is not None and not running.done():
            if again:
                self._again.add(inspection_id)
            return
        task = asyncio.create_task(self._run(app, inspection_id), name=f"report-{inspection_id}")
        self._tasks[inspection_id] = task
        task.add_done_callback(lambda done: self._finished(app, inspection_id, done))

    def _finished(self, app: web.Application, inspection_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(inspection_id) is task:
            del self._tasks[inspection_id]
        if inspection_id in self._again and not task.cancelled():
            self._again.discard(inspection_id)
            self.start(app, inspection_id)

    @staticmethod
    async def _run(app: web.Application, inspection_id: str) -> None:
        try:
            await publish.publish_report(app[SERVICES], inspection_id)
        except Exception:
            logger.exception("report generation failed", extra={"inspection_id": inspection_id})

    async def close(self) -> None:
        self._again.clear()
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_WAIT_S)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)


REPORT_TASKS: web.AppKey[ReportTasks] = web.AppKey("report_tasks", ReportTasks)


def schedule_report(app: web.Application, inspection_id: str) -> None:
    """Start generating the inspection's next report version (after its conclusion)."""
    app[REPORT_TASKS].start(app, inspection_id)


def _generating() -> web.Response:
    return web.json_response(
        {
            "status": "generating",
            "reason": "the report is being generated; ask again shortly",
            "retry_after": RETRY_AFTER_S,
        },
        status=202,
        headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"},
    )


async def _get_report(request: web.Request, report_format: str) -> web.StreamResponse:
    services = request.app[SERVICES]
    user = await current_user(request, READERS)
    inspection = await readable_inspection(services, user, request.match_info["inspection_id"])
    record = await publish.latest_report(services, inspection.inspection_id)
    if record is None:
        if inspection.outcome is None:
            raise Conflict(
                "the inspection has no conclusion yet; its report follows the conclusion"
            )
        if not await publish.report_pending(services, inspection.inspection_id):
            # Concluded without a report (a failed or interrupted generation): make it now.
            request.app[REPORT_TASKS].start(request.app, inspection.inspection_id, again=False)
        return _generating()
    data = await publish.read_report(services, record, report_format)
    sha256 = record.html_sha256 if report_format == "html" else record.pdf_sha256
    filename = f"report-{inspection.case_id}-{record.version:03d}.{report_format}"
    headers = {
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, no-cache",
        "ETag": f'"{sha256}"',
        "X-Report-Version": str(record.version),
        "X-Content-SHA256": sha256,
        "X-Content-Type-Options": "nosniff",
    }
    if report_format == "html":
        headers["Content-Security-Policy"] = HTML_CSP
    return web.Response(
        body=data,
        content_type=CONTENT_TYPES[report_format],
        charset="utf-8" if report_format == "html" else None,
        headers=headers,
    )


async def get_report_html(request: web.Request) -> web.StreamResponse:
    return await _get_report(request, "html")


async def get_report_pdf(request: web.Request) -> web.StreamResponse:
    return await _get_report(request, "pdf")


def add_routes(app: web.Application) -> None:
    tasks = ReportTasks()
    app[REPORT_TASKS] = tasks

    async def on_shutdown(app: web.Application) -> None:
        await tasks.close()

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/api/inspections/{inspection_id}/report.html", get_report_html)
    app.router.add_get("/api/inspections/{inspection_id}/report.pdf", get_report_pdf)

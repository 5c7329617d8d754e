"""An ended inspection's receipt (docs/archive.md, "Receipts"), as JSON and as a QR code.

Readable by whoever may read the inspection, and by its applicant with their invite token (an
expired invite still names its applicant: the receipt is theirs to keep).
"""

from __future__ import annotations

import io

import segno
from aiohttp import web

from server.errors import Forbidden, NotFound
from server.inspection import inspections, receipts
from server.security.auth import bearer_or_cookie, current_user
from server.security.tokens import TokenError
from server.services import SERVICES
from server.store.models import Inspection

HEADERS = {"Cache-Control": "no-store"}


async def _readable_inspection(request: web.Request) -> Inspection:
    services = request.app[SERVICES]
    inspection_id = inspections.check_inspection_id(request.match_info["inspection_id"])
    token = bearer_or_cookie(request)
    try:
        invite = services.signer.open_invite(token, now=0.0) if token else None
    except TokenError:
        invite = None
    if invite is None:
        user = await current_user(request)
        return await inspections.inspection_for(services, user, inspection_id)
    inspection = await services.store.inspections.get(inspection_id)
    if invite.inspection_id != inspection_id or inspection is None:
        raise Forbidden("this invite is for another inspection")
    if inspection.case_id != invite.case_id:
        raise NotFound(f"inspection '{inspection_id}' does not exist")
    return inspection


def receipt_url(request: web.Request, inspection_id: str) -> str:
    base = request.app[SERVICES].settings.base_url
    return f"{base}/api/inspections/{inspection_id}/receipt"


async def get_receipt(request: web.Request) -> web.Response:
    inspection = await _readable_inspection(request)
    signed = await receipts.receipt_of(request.app[SERVICES], inspection)
    name = f"takan-receipt-{inspection.case_id}-{inspection.inspection_id}.json"
    return web.Response(
        body=signed.to_bytes(),
        content_type="application/json",
        headers={**HEADERS, "Content-Disposition": f'inline; filename="{name}"'},
    )


async def get_receipt_qr(request: web.Request) -> web.Response:
    inspection = await _readable_inspection(request)
    signed = await receipts.receipt_of(request.app[SERVICES], inspection)
    content = receipts.qr_content(signed, receipt_url(request, inspection.inspection_id))
    out = io.BytesIO()
    qr = segno.make(content, error=receipts.QR_ERROR, micro=False)
    qr.save(out, kind="svg", scale=4, border=4)
    holds = "receipt" if isinstance(content, bytes) else "url-and-sha256"
    return web.Response(
        body=out.getvalue(),
        content_type="image/svg+xml",
        headers={**HEADERS, "X-Takan-QR-Holds": holds, "X-Takan-QR-Version": str(qr.version)},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/inspections/{inspection_id}/receipt", get_receipt)
    app.router.add_get("/api/inspections/{inspection_id}/receipt/qr.svg", get_receipt_qr)

"""REST handlers for an inspection's evidence (docs/api.md "Inspection evidence"): snapshots,
annotations, checklist templates and marks, the signed conclusion, the inspector's dashboard."""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.errors import BadRequest
from server.http import api_report, forward
from server.http.requests import json_body
from server.inspection import checklists, snapshots
from server.inspection.annotations import annotate, annotation_bytes, annotations_of
from server.inspection.conclusions import conclude, conclusion_challenge
from server.inspection.dashboard import BEIJING_OFFSET_MIN, dashboard
from server.inspection.evidence_access import READERS, readable_inspection
from server.security.auth import current_user
from server.services import SERVICES

CONCLUSION_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("conclusion_lock", asyncio.Lock)
IMMUTABLE = "private, max-age=86400, immutable"


async def post_snapshot(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    forwarded = await forward.to_holder(request, services, request.match_info["inspection_id"])
    if forwarded is not None:  # taken from the live video, where the inspection runs
        return forwarded
    record = await snapshots.take(services, user, request.match_info["inspection_id"])
    return web.json_response(record.to_json(), status=201)


async def get_snapshots(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, READERS)
    inspection = await readable_inspection(services, user, request.match_info["inspection_id"])
    listed = [
        {
            **record.to_json(),
            "annotations": [a.to_json() for a in await annotations_of(services, record)],
        }
        for record in await snapshots.snapshots_of(services, inspection.inspection_id)
    ]
    return web.json_response({"inspection_id": inspection.inspection_id, "snapshots": listed})


async def get_snapshot_png(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, READERS)
    record = await snapshots.visible_snapshot(services, user, request.match_info["snapshot_id"])
    data = await snapshots.png_bytes(services, record)
    return web.Response(
        body=data,
        content_type="image/png",
        headers={"Cache-Control": IMMUTABLE, "X-Takan-SHA256": record.sha256},
    )


async def post_annotation(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    body = await json_body(request)
    record = await annotate(services, user, request.match_info["snapshot_id"], body)
    return web.json_response(record.to_json(), status=201)


async def get_annotation(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, READERS)
    data = await annotation_bytes(services, user, request.match_info["annotation_id"])
    return web.Response(
        body=data, content_type="application/json", headers={"Cache-Control": IMMUTABLE}
    )


async def get_templates(request: web.Request) -> web.Response:
    await current_user(request, READERS)
    listed = await checklists.templates(request.app[SERVICES])
    return web.json_response({"templates": [t.to_json() for t in listed]})


async def get_template(request: web.Request) -> web.Response:
    await current_user(request, READERS)
    found = await checklists.template(request.app[SERVICES], request.match_info["template_id"])
    return web.json_response(found.to_json())


async def put_template(request: web.Request) -> web.Response:
    user = await current_user(request, ("admin",))
    body = await json_body(request)
    saved = await checklists.put_template(
        request.app[SERVICES], user, request.match_info["template_id"], body
    )
    return web.json_response(saved.to_json())


async def get_checklist(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, READERS)
    inspection = await readable_inspection(services, user, request.match_info["inspection_id"])
    return web.json_response(await checklists.checklist(services, inspection))


async def post_checklist_mark(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    body = await json_body(request)
    result = await checklists.mark(
        services, user, request.match_info["inspection_id"], request.match_info["item_id"], body
    )
    return web.json_response(result)


async def post_conclusion(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    body = await json_body(request)
    signed = await conclude(
        services, user, request.match_info["inspection_id"], body, request.app[CONCLUSION_LOCK]
    )
    # The inspection has ended and its manifest is signed: the report can be made from it.
    api_report.schedule_report(request.app, signed.conclusion.inspection_id)
    return web.json_response(signed.to_json(), status=201)


async def post_conclusion_challenge(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    body = await json_body(request)
    asked = await conclusion_challenge(
        services, user, request.match_info["inspection_id"], body, request.app[CONCLUSION_LOCK]
    )
    return web.json_response(asked)


async def get_dashboard(request: web.Request) -> web.Response:
    user = await current_user(request, ("inspector",))
    text = request.query.get("utc_offset_min", str(BEIJING_OFFSET_MIN))
    try:
        offset = int(text)
    except ValueError:
        offset = None
    if offset is None or not -840 <= offset <= 840:
        raise BadRequest("query parameter 'utc_offset_min' must be an integer in -840..840")
    return web.json_response(await dashboard(request.app[SERVICES], user, offset))


def add_routes(app: web.Application) -> None:
    app[CONCLUSION_LOCK] = asyncio.Lock()
    inspection = "/api/inspections/{inspection_id}"
    app.router.add_post(f"{inspection}/snapshots", post_snapshot)
    app.router.add_post(f"{inspection}/conclusion/challenge", post_conclusion_challenge)
    app.router.add_get(f"{inspection}/snapshots", get_snapshots)
    app.router.add_get("/api/snapshots/{snapshot_id}.png", get_snapshot_png)
    app.router.add_post("/api/snapshots/{snapshot_id}/annotations", post_annotation)
    app.router.add_get("/api/annotations/{annotation_id}.json", get_annotation)
    app.router.add_get("/api/checklist-templates", get_templates)
    app.router.add_get("/api/checklist-templates/{template_id}", get_template)
    app.router.add_put("/api/checklist-templates/{template_id}", put_template)
    app.router.add_get(f"{inspection}/checklist", get_checklist)
    app.router.add_post(f"{inspection}/checklist/{{item_id}}", post_checklist_mark)
    app.router.add_post(f"{inspection}/conclusion", post_conclusion)
    app.router.add_get("/api/dashboard", get_dashboard)

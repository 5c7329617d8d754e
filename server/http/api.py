"""REST handlers (docs/api.md). Thin: validate, call server.inspections, answer JSON."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Mapping
from typing import Any

import segno
from aiohttp import web

from server.clock import utc_iso
from server.errors import (
    BadRequest,
    Detail,
    Forbidden,
    NotFound,
    RateLimited,
    TakanError,
    Unauthorized,
)
from server.http import api_archive, api_evidence, api_passkeys, api_receipt, api_report, forward
from server.http.requests import json_body
from server.inspection import case_staff, inspections
from server.inspection.short_codes import ShortCodeError, parse_short_code
from server.security.auth import COOKIE_NAME, bearer_or_cookie, current_user, login, open_session
from server.security.client_address import Network, client_address
from server.security.ratelimit import Failed
from server.services import SERVICES

logger = logging.getLogger(__name__)


def error_response(
    status: int, code: str, reason: str, details: Mapping[str, Detail] | None = None
) -> web.Response:
    return web.json_response({**(details or {}), "error": code, "reason": reason}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except TakanError as exc:
        if isinstance(exc, Forbidden):
            logger.warning(
                "request denied",
                extra={
                    "path": request.path,
                    "reason": exc.reason,
                    "remote": _client_address(request),
                },
            )
            try:
                await api_archive.record_denial(request)
            except Exception:  # the 403 must go out even if the chain cannot take the record
                logger.exception("denial not chained", extra={"path": request.path})
        response = error_response(exc.status, exc.code, exc.reason, exc.details)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        return error_response(exc.status, code, exc.reason)


TRUSTED_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies", tuple)
# Whom rate limits and logs name: the peer, or the client a trusted proxy names.
CLIENT_ADDRESS: web.RequestKey[str] = web.RequestKey("client_address", str)


@web.middleware
async def client_address_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    request[CLIENT_ADDRESS] = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), request.app[TRUSTED_PROXIES]
    )
    response: web.StreamResponse = await handler(request)
    return response


def _client_address(request: web.Request) -> str:
    return request.get(CLIENT_ADDRESS) or request.remote or "unknown"


def _failure_details(failed: Failed) -> dict[str, int | str]:
    """What a wrong password or code answers besides its reason: the attempts left, and once
    none are, the seconds until the next one is taken."""
    details: dict[str, int | str] = {"attempts_left": failed.attempts_left}
    if not failed.attempts_left:
        details["retry_after"] = failed.retry_after
    return details


async def post_login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username or len(username) > 64:
        raise BadRequest("field 'username' is required and must be a string")
    if not isinstance(password, str) or not password or len(password) > 256:
        raise BadRequest("field 'password' is required and must be a string")
    address = _client_address(request)
    # The account's key holds the address and the name as typed (JSON: no separator can clash).
    keys = {"account": json.dumps([address, username]), "address": address}
    await services.login_guard.check(keys, services.clock.now())
    try:
        user, token, expires_at = await login(services, username, password)
    except Unauthorized as exc:
        failed = await services.login_guard.fail(keys, services.clock.now())
        raise Unauthorized(exc.reason, **_failure_details(failed)) from None
    response = web.json_response(
        {
            "token": token,
            "username": user.username,
            "role": user.role,
            "expires_at": utc_iso(expires_at),
        }
    )
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=services.settings.session_ttl_s,
        httponly=True,
        samesite="Strict",
        secure=services.settings.base_url.startswith("https:"),
        path="/",
    )
    return response


async def post_logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    token = bearer_or_cookie(request)
    if not token:
        raise Unauthorized("login required")
    session = await open_session(services, token)
    await services.store.users.revoke_session(session.session_id)
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


async def get_me(request: web.Request) -> web.Response:
    user = await current_user(request)
    return web.json_response({"username": user.username, "role": user.role})


async def post_case(request: web.Request) -> web.Response:
    user = await current_user(request, ("inspector", "admin"))
    body = await json_body(request)
    services = request.app[SERVICES]
    case = await inspections.create_case(services, user, body)
    answer = case.to_json()
    answer["inspectors"] = await services.store.cases.inspector_names(case.case_id)
    return web.json_response(answer, status=201)


async def get_inspectors(request: web.Request) -> web.Response:
    """The inspectors a case can be assigned, for the case form."""
    await current_user(request, ("inspector", "admin"))
    return web.json_response(
        {"inspectors": await request.app[SERVICES].store.users.assignable_inspectors()}
    )


async def post_case_inspector(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector", "admin"))
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    body = await json_body(request)
    await case_staff.assign(services, user, case, body)
    names = await services.store.cases.inspector_names(case.case_id)
    return web.json_response({"case_id": case.case_id, "inspectors": names}, status=201)


async def delete_case_inspector(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector", "admin"))
    case = await inspections.visible_case(services, user, request.match_info["case_id"])
    await case_staff.unassign(services, user, case, request.match_info["username"])
    names = await services.store.cases.inspector_names(case.case_id)
    return web.json_response({"case_id": case.case_id, "inspectors": names})


async def post_inspection(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    body = await json_body(request) if request.body_exists else {}
    created = await inspections.create_inspection(
        services, user, request.match_info["case_id"], body
    )
    return web.json_response(created, status=201)


async def get_inspection(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request)
    inspection, case = await inspections.inspection_and_case(
        services, user, request.match_info["inspection_id"]
    )
    body = inspection.to_json()
    body["case"] = case.to_json()
    body["inspectors"] = await services.store.cases.inspector_names(case.case_id)
    body["participants"] = await services.store.participants.of(inspection.inspection_id)
    if user.role == "inspector" and inspection.status == "active":
        body["invite"] = inspections.invite_links(services, inspection)
    return web.json_response(body)


async def get_qr(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    inspection = await inspections.inspection_for(
        services, user, request.match_info["inspection_id"]
    )
    if inspection.status != "active":
        raise NotFound("the inspection has ended; its invite is void")
    url = inspections.invite_links(services, inspection)["applicant_url"]
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2)
    return web.Response(
        body=out.getvalue(),
        content_type="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )


async def post_end(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request, ("inspector",))
    inspection = await inspections.inspection_for(
        services, user, request.match_info["inspection_id"]
    )
    forwarded = await forward.to_holder(request, services, inspection.inspection_id)
    if forwarded is not None:  # ended where it runs, which hangs up its participants
        return forwarded
    ended_at = await inspections.end_inspection(services, inspection.inspection_id, user.username)
    return web.json_response(
        {"inspection_id": inspection.inspection_id, "status": "ended", "ended_at": ended_at}
    )


async def post_join_code(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await json_body(request)
    typed = body.get("code")
    if not isinstance(typed, str):
        raise BadRequest("field 'code' must be a string of 6 digits (spaces and dashes allowed)")
    try:
        code = parse_short_code(typed)
    except ShortCodeError as exc:
        raise BadRequest(f"field 'code' {exc}") from None
    keys = {"address": _client_address(request)}
    await services.code_guard.check(keys, services.clock.now())
    inspection = await services.store.inspections.active_by_code(code)
    if inspection is None or inspection.invite_expires_at <= services.clock.now():
        failed = await services.code_guard.fail(keys, services.clock.now())
        raise NotFound("no active inspection has this code", **_failure_details(failed))
    links = inspections.invite_links(services, inspection)
    return web.json_response({"applicant_url": links["applicant_url"]})


async def get_keys(request: web.Request) -> web.Response:
    """The server's key history, oldest first: the keys to pass to ``takan verify --key``."""
    history = request.app[SERVICES].archive.key_history
    since = [None, *(rotation.at for rotation in history.rotations)]
    return web.json_response(
        {
            "keys": [
                {
                    "algorithm": "Ed25519",
                    "fingerprint": fingerprint,
                    "public_key": base64.b64encode(public_key).decode("ascii"),
                    "current": fingerprint == history.current,
                    "since": at,
                }
                for fingerprint, public_key, at in zip(
                    history.fingerprints, history.public_keys, since, strict=True
                )
            ],
            "history": history.to_json(),
        }
    )


async def get_config(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response(
        {
            "ice_servers": [
                server.to_json(with_credentials=False) for server in services.settings.ice_servers
            ]
        }
    )


async def get_health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "live_inspections": len(request.app[SERVICES].live)})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/login", post_login)
    app.router.add_post("/api/logout", post_logout)
    app.router.add_get("/api/me", get_me)
    app.router.add_post("/api/cases", post_case)
    app.router.add_post("/api/cases/{case_id}/inspections", post_inspection)
    app.router.add_get("/api/inspectors", get_inspectors)
    app.router.add_post("/api/cases/{case_id}/inspectors", post_case_inspector)
    app.router.add_delete("/api/cases/{case_id}/inspectors/{username}", delete_case_inspector)
    app.router.add_get("/api/inspections/{inspection_id}", get_inspection)
    app.router.add_get("/api/inspections/{inspection_id}/qr.svg", get_qr)
    app.router.add_post("/api/inspections/{inspection_id}/end", post_end)
    app.router.add_post("/api/join/code", post_join_code)
    app.router.add_get("/api/keys", get_keys)
    app.router.add_get("/api/config", get_config)
    app.router.add_get("/api/health", get_health)
    api_archive.add_routes(app)
    api_evidence.add_routes(app)
    api_passkeys.add_routes(app)
    api_report.add_routes(app)
    api_receipt.add_routes(app)

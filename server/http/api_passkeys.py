"""The passkey routes: a staff user's own passkeys, and registering one (WebAuthn)."""

from __future__ import annotations

from aiohttp import web

from server.http.requests import json_body
from server.security import passkeys
from server.security.auth import current_user
from server.services import SERVICES


async def get_passkeys(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response(await passkeys.status(services, await current_user(request)))


async def post_passkey_options(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request)
    return web.json_response(await passkeys.registration_options(services, user))


async def post_passkey(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user = await current_user(request)
    body = await json_body(request)
    return web.json_response(await passkeys.register(services, user, body), status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/passkeys", get_passkeys)
    app.router.add_post("/api/passkeys/options", post_passkey_options)
    app.router.add_post("/api/passkeys", post_passkey)

"""The pages (web/) and their static files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from server.services import SERVICES

PAGES = {
    "/login": "login.html",
    "/cases": "cases.html",
    "/inspect/{inspection_id}": "inspect.html",
    "/join/{token}": "join.html",
    "/j": "code.html",
    "/dashboard": "dashboard.html",
    "/audit": "audit.html",
    "/templates": "templates.html",
    "/cases/{case_id}": "case.html",
    "/replay/{case_id}/{inspection_id}": "replay.html",
}

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the applicant's URL carries its invite token
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _page(web_dir: Path, filename: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    path = web_dir / filename

    async def handler(request: web.Request) -> web.StreamResponse:
        if not path.is_file():
            raise web.HTTPNotFound(text=f"page {filename} is not installed")
        return web.FileResponse(path, headers=SECURITY_HEADERS)

    return handler


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/cases")


def add_routes(app: web.Application) -> None:
    web_dir = app[SERVICES].settings.web_dir
    app.router.add_get("/", root)
    for route, filename in PAGES.items():
        app.router.add_get(route, _page(web_dir, filename))
    if web_dir.is_dir():
        app.router.add_static("/static/", web_dir, follow_symlinks=False)

"""REST handlers of api_evidence: filled in by the feature that owns it."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    del app

"""What the handlers share: built once by create_app, stored in the app under SERVICES."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from recorder.archive import Archive
from server.clock import Clock
from server.db import Database
from server.live import LiveRegistry
from server.ratelimit import AttemptLimiter
from server.settings import Settings
from server.tokens import TokenSigner


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    signer: TokenSigner
    clock: Clock
    live: LiveRegistry
    login_limiter: AttemptLimiter
    code_limiter: AttemptLimiter
    archive: Archive


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)

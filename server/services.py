"""What the handlers share: built once by create_app, stored in the app under SERVICES."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from recorder.archive import Archive
from server.clock import Clock
from server.settings import Settings

if TYPE_CHECKING:  # the composition root names every room's types; only http/app builds it
    from recorder.timestamper import Timestamper
    from server.inspection.witness import WitnessPush
    from server.live.nodes import NodeAgent
    from server.live.registry import LiveRegistry
    from server.security.passkeys import Challenges
    from server.security.ratelimit import AttemptGuard
    from server.security.tokens import TokenSigner
    from server.store.store import Store


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    signer: TokenSigner
    clock: Clock
    live: LiveRegistry
    login_guard: AttemptGuard  # scopes "account" (name and address) and "address"
    code_guard: AttemptGuard  # scope "address"
    archive: Archive
    witness: WitnessPush
    challenges: Challenges  # passkey ceremonies waiting for the browser's answer
    timestamper: Timestamper | None = None  # with --tsa
    nodes: NodeAgent | None = None  # with --node: this process is one node of many


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)

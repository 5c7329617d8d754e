"""The application factory: everything a server needs, built from Settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from recorder.archive import Archive
from recorder.key_files import load_signing_key
from recorder.storage import LocalStorage, Storage
from recorder.storage_url import open_storage
from recorder.timestamper import RetryPolicy, Timestamper
from recorder.timestamps import load_tsa_trust
from recorder.tsa_http import HttpTsaClient
from server.clock import Clock, SystemClock
from server.http import api, pages
from server.http.openapi import get_openapi
from server.http.signalling import websocket_handler
from server.inspection import checklists
from server.inspection.witness import WitnessPush
from server.live.media import passthrough
from server.live.nodes import NodeAgent
from server.live.registry import LiveRegistry
from server.security.client_address import parse_proxies
from server.security.passkeys import Challenges
from server.security.ratelimit import AttemptGuard, AttemptLimit
from server.security.secrets_store import load_or_create_secret
from server.security.tokens import TokenSigner
from server.services import SERVICES, Services
from server.settings import (
    ARCHIVE_DIR,
    SIGNING_KEY_FILE,
    SPOOL_DIR,
    TOKEN_SECRET_FILE,
    WITNESS_SPOOL_DIR,
    Settings,
)
from server.store.chain_log import DatabaseChain, FenceScope, record_chain_database, writer_name
from server.store.store import open_store

logger = logging.getLogger(__name__)


def open_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Open the data dir (creating it, its database and its secret on first use)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    secret = load_or_create_secret(settings.data_dir / TOKEN_SECRET_FILE)
    clock = clock or SystemClock()
    signer, key_history = load_signing_key(settings.data_dir / SIGNING_KEY_FILE)
    archive = Archive(
        storage=archive_storage(settings),
        spool_root=settings.data_dir / SPOOL_DIR,
        signer=signer,
        wall_clock=clock.now,
        checkpoint_interval_s=settings.checkpoint_interval_s,
        key_history=key_history,
    )
    store = open_store(settings.database, settings.data_dir)
    services = Services(
        settings=settings,
        store=store,
        signer=TokenSigner(secret),
        clock=clock,
        live=LiveRegistry(archive, clock.now),
        login_guard=AttemptGuard(
            "login",
            AttemptLimit(
                "account",
                settings.login_attempts_per_minute,
                "too many failed sign-ins for this account from this address",
            ),
            AttemptLimit(
                "address",
                settings.login_attempts_per_address_per_minute,
                "too many failed sign-ins from this address",
            ),
            attempts=store.attempts,
            secret=secret,
        ),
        code_guard=AttemptGuard(
            "code",
            AttemptLimit(
                "address",
                settings.code_attempts_per_minute,
                "too many wrong codes from this address",
            ),
            attempts=store.attempts,
            secret=secret,
        ),
        archive=archive,
        witness=WitnessPush(
            settings.witnesses,
            settings.data_dir / SPOOL_DIR / WITNESS_SPOOL_DIR,
            archive.signer.public_key_bytes,
        ),
        challenges=Challenges(store, clock.now),
    )
    if store.engine == "postgresql":
        archive.shared_chain = DatabaseChain(
            store.db,
            writer_name(settings.node or "serve"),
            settings.node,
            fence_scope=_live_epoch(services) if settings.node else None,
        )
        record_chain_database(settings.data_dir / SPOOL_DIR, settings.database)
    if settings.node:
        services.nodes = NodeAgent(
            settings.node,
            settings.advertise_url,
            services.store,
            archive,
            clock.now,
            services.live.epoch_of,
            settings.node_lease_s,
        )
        archive.fence = services.nodes.fence
    if settings.tsa_urls:
        retry = RetryPolicy(
            first_s=min(1.0, settings.tsa_retry_max_s), max_s=settings.tsa_retry_max_s
        )
        services.timestamper = Timestamper(
            archive,
            settings.tsa_urls,
            HttpTsaClient(),
            load_tsa_trust(settings.tsa_cert_files),
            retry,
        )
    return services


def _live_epoch(services: Services) -> FenceScope:
    """The inspection an entry is about and the epoch this node runs it live at, if it does."""

    def scope(body: dict[str, Any]) -> tuple[str, int] | None:
        inspection_id = body.get("inspection_id")
        if not isinstance(inspection_id, str):
            return None
        epoch = services.live.epoch_of(inspection_id)
        return (inspection_id, epoch) if epoch else None

    return scope


def archive_storage(settings: Settings) -> Storage:
    if not settings.storage:
        return LocalStorage(settings.data_dir / ARCHIVE_DIR)
    return open_storage(settings.storage, settings.s3_credentials)


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    passthrough.install(remb_floor_bps=settings.remb_floor_bps)
    app = web.Application(
        middlewares=[api.client_address_middleware, api.error_middleware],
        client_max_size=1024**2,
    )
    app[api.TRUSTED_PROXIES] = parse_proxies(settings.trusted_proxies)
    services = open_services(settings, clock)
    app[SERVICES] = services

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await checklists.seed_defaults(services)
        # The witness push first and last: it hears of the checkpoints recovery and stop sign.
        await services.witness.start()
        services.archive.signed_listeners.append(services.witness.on_signed)
        await services.archive.start()
        if services.nodes is not None:
            await services.nodes.start()
        recovered = await services.archive.recover()
        if recovered:
            logger.warning("recovered partial segments", extra={"count": len(recovered)})
        if services.timestamper is not None:
            await services.timestamper.start()
        yield
        if services.nodes is not None:
            await services.nodes.stop()
        await services.live.close_all()
        await services.archive.stop()
        if services.timestamper is not None:
            # Tokens over the last checkpoints are chained into the spool and uploaded at the
            # next start; requests still unanswered stay pending on disk.
            await services.timestamper.stop()
        await services.witness.stop()
        await asyncio.to_thread(services.store.close)

    async def hang_up(app: web.Application) -> None:
        # On shutdown, before the runner waits for open requests to finish: signalling sockets
        # never finish by themselves, so a SIGTERM would first wait out aiohttp's shutdown
        # timeout (60 s) with everyone still connected and recording.
        if services.nodes is not None:  # one of many: its inspections go to the others
            await services.nodes.drain(services.live.close_all)
        else:
            await services.live.close_all()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(hang_up)
    api.add_routes(app)
    app.router.add_get("/api/openapi.json", get_openapi)
    app.router.add_get("/ws", websocket_handler)
    pages.add_routes(app)
    return app

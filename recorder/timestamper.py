"""Ask timestamp authorities to stamp every signed checkpoint and manifest, off the signing path.

``Archive.signed_listeners`` tells ``on_signed`` of each signed document once it is durable; each
(TSA, document) then runs as a task of its own, so a slow or dead TSA delays no segment and no
checkpoint. A request is first written to ``spool/timestamp-requests/{tsa_id}/{document key}``
(durable across restarts; ``start`` takes up what a previous process left), retried with backoff
until the TSA answers, and removed once its token is chained (``timestamp`` entry, through
``Archive.store_object``). After ``attempts_before_recording`` failed attempts the outage is
chained once per TSA and case (``timestamp_failed``), and the first token after it says the TSA
is back (``timestamp_resumed``); both are ordinary entries that the next checkpoint signs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from recorder import layout
from recorder.canonical import canonical_json
from recorder.storage import write_durably
from recorder.timestamps import (
    TIMESTAMP_FAILED_KIND,
    TIMESTAMP_KIND,
    TIMESTAMP_RESUMED_KIND,
    TokenError,
    TsaTrust,
    TsaUnavailable,
    build_query,
    check_token,
    tsa_id,
)

if TYPE_CHECKING:
    from recorder.archive import Archive

logger = logging.getLogger(__name__)

PENDING_DIR = "timestamp-requests"
CONCURRENT_REQUESTS_PER_TSA = 4
STOP_GRACE_S = 5.0


class TsaClient(Protocol):
    async def post(self, url: str, query: bytes) -> bytes:
        """The reply to ``query``; TsaUnavailable when there is none."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_s: float = 1.0
    max_s: float = 60.0
    attempts_before_recording: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s:
            raise ValueError("retry delays must be positive, the first no longer than the max")
        if self.attempts_before_recording < 1:
            raise ValueError("attempts_before_recording must be at least 1")


@dataclass
class TimestampStats:
    """Signed document durable → its token chained, in seconds (the most recent ones)."""

    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    # Of which: the granted attempt's request → checked reply.
    round_trips: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    failed_attempts: int = 0


@dataclass(frozen=True, slots=True)
class _Tsa:
    url: str
    id: str


@dataclass(frozen=True, slots=True)
class _Request:
    tsa: _Tsa
    case_id: str
    document: str  # the key of the signed checkpoint or manifest


class Timestamper:
    def __init__(
        self,
        archive: Archive,
        tsa_urls: Sequence[str],
        client: TsaClient,
        trust: TsaTrust | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not tsa_urls:
            raise ValueError("a Timestamper needs at least one TSA URL")
        self.archive = archive
        self._tsas = {t.id: t for t in (_Tsa(url, tsa_id(url)) for url in tsa_urls)}
        self._client = client
        self._trust = trust
        self.trust = trust  # what integrity checks stored tokens against
        self._retry = retry or RetryPolicy()
        self._limits = {key: asyncio.Semaphore(CONCURRENT_REQUESTS_PER_TSA) for key in self._tsas}
        self._tasks: set[asyncio.Task[None]] = set()
        self._under_way: set[_Request] = set()
        self._down: set[tuple[str, str]] = set()  # (tsa id, case) whose outage is chained
        self._started = False
        self._stopping = False
        # Signed before ``start`` (by recovery, which must not meet tokens being staged).
        self._early: list[tuple[_Request, bytes, float]] = []
        self.stats = TimestampStats()
        archive.signed_listeners.append(self.on_signed)

    @property
    def pending_dir(self) -> Path:
        return self.archive.spool_root / PENDING_DIR

    def _pending_path(self, request: _Request) -> Path:
        return self.pending_dir / request.tsa.id / request.document

    # lifecycle

    async def start(self) -> None:
        """Take up the requests a previous run left and those signed since construction (the
        archive's listener is registered then); call it after the archive's recovery."""
        self._started = True
        for request in await asyncio.to_thread(self._pending_requests):
            self._spawn(request, None, time.monotonic(), persisted=True)
        for request, data, durable_at in self._early:
            self._spawn(request, data, durable_at, persisted=False)
        self._early.clear()

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Give the requests under way ``grace_s`` to finish (the rest stay pending on disk),
        then close the client."""
        self._stopping = True
        with contextlib.suppress(ValueError):
            self.archive.signed_listeners.remove(self.on_signed)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.close()

    async def idle(self) -> None:
        """Wait until no request is under way (every token so far chained)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _pending_requests(self) -> list[_Request]:
        found: list[_Request] = []
        if not self.pending_dir.is_dir():
            return found
        for path in sorted(self.pending_dir.rglob("*")):
            if not path.is_file() or path.name.endswith(".tmp"):
                continue
            try:
                saved = json.loads(path.read_bytes())
                tsa = self._tsas.get(tsa_id(saved["tsa"]))
                request = _Request(tsa, saved["case_id"], saved["document"]) if tsa else None
            except (ValueError, KeyError, TypeError) as exc:
                logger.error(
                    "unreadable pending timestamp request", extra={"path": str(path), "error": exc}
                )
                continue
            if request is None or path != self._pending_path(request):
                logger.warning(
                    "pending timestamp request not for a configured TSA, left in place",
                    extra={"path": str(path), "tsa": saved["tsa"]},
                )
                continue
            found.append(request)
        return found

    # requests

    def on_signed(self, case_id: str, key: str, data: bytes) -> None:
        """The archive's signed listener: one task per TSA, nothing done here."""
        if self._stopping:
            return
        durable_at = time.monotonic()
        for tsa in self._tsas.values():
            request = _Request(tsa, case_id, key)
            if self._started:
                self._spawn(request, data, durable_at, persisted=False)
            else:
                self._early.append((request, data, durable_at))

    def _spawn(
        self, request: _Request, document: bytes | None, durable_at: float, persisted: bool
    ) -> None:
        if request in self._under_way:
            return
        self._under_way.add(request)
        task = asyncio.get_running_loop().create_task(
            self._stamp(request, document, durable_at, persisted),
            name=f"timestamp {request.document}",
        )
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(request, done))

    def _done(self, request: _Request, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._under_way.discard(request)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "timestamp request failed; it stays pending for the next start",
                extra={"document": request.document, "error": repr(task.exception())},
            )

    async def _stamp(
        self, request: _Request, document: bytes | None, durable_at: float, persisted: bool
    ) -> None:
        case_id, tsa = request.case_id, request.tsa
        token_key = layout.timestamp_key(case_id, tsa.id, request.document)
        pending = self._pending_path(request)
        if not persisted:
            saved = {"case_id": case_id, "document": request.document, "tsa": tsa.url}
            await asyncio.to_thread(write_durably, pending, canonical_json(saved))
        if await self.archive.recorded_sha256(case_id, token_key) is not None:
            await asyncio.to_thread(pending.unlink, missing_ok=True)  # chained before a crash
            return
        if document is None:
            document = await self.archive.read_object(request.document)
        digest = hashlib.sha256(document).digest()
        reply, gen_time = await self._until_granted(request, document, digest)
        await self.archive.store_object(
            case_id,
            token_key,
            reply,
            TIMESTAMP_KIND,
            {
                "document": request.document,
                "document_sha256": digest.hex(),
                "tsa": tsa.url,
                "gen_time": gen_time,
            },
        )
        self.stats.latencies.append(time.monotonic() - durable_at)
        logger.info(
            "timestamp chained",
            extra={"case_id": case_id, "key": token_key, "gen_time": gen_time},
        )
        if (tsa.id, case_id) in self._down:
            self._down.discard((tsa.id, case_id))
            logger.warning("TSA is back", extra={"case_id": case_id, "tsa": tsa.url})
            await self.archive.append(
                case_id, TIMESTAMP_RESUMED_KIND, {"tsa": tsa.url, "document": request.document}
            )
        await asyncio.to_thread(pending.unlink, missing_ok=True)

    async def _until_granted(
        self, request: _Request, document: bytes, digest: bytes
    ) -> tuple[bytes, str]:
        """A checked reply and its genTime, retrying with backoff for as long as it takes."""
        tsa = request.tsa
        delay = self._retry.first_s
        attempt = 0
        while True:
            attempt += 1
            query = build_query(document)  # a fresh nonce each time
            try:
                async with self._limits[tsa.id]:
                    sent = time.monotonic()
                    reply = await self._client.post(tsa.url, query.der)
                token = check_token(reply, digest, self._trust, nonce=query.nonce)
            except (TsaUnavailable, TokenError) as exc:
                self.stats.failed_attempts += 1
                logger.warning(
                    "timestamp request failed, will retry",
                    extra={
                        "case_id": request.case_id,
                        "document": request.document,
                        "tsa": tsa.url,
                        "attempt": attempt,
                        "error": str(exc),
                    },
                )
                if attempt == self._retry.attempts_before_recording:
                    await self._record_outage(request, attempt, str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry.max_s)
                continue
            self.stats.round_trips.append(time.monotonic() - sent)
            return reply, token.gen_time

    async def _record_outage(self, request: _Request, attempts: int, error: str) -> None:
        down = (request.tsa.id, request.case_id)
        if down in self._down:
            return
        self._down.add(down)
        await self.archive.append(
            request.case_id,
            TIMESTAMP_FAILED_KIND,
            {
                "tsa": request.tsa.url,
                "document": request.document,
                "attempts": attempts,
                "error": error[:500],
            },
        )

"""Witness push: every signed checkpoint and receipt goes to outside systems, in order per case.

A witness is a URL that accepts a POST of each payload (docs/archive.md, "Witnesses"). What a
witness keeps is what makes a cut-off end detectable: a later head than the archive still has.

Each payload is first written to a queue in the spool (``spool/witness/{witness}/{case}/``, one
file per payload, fsynced) by one intake task, so the archive's listener never waits; a sender
per witness and case then POSTs the files oldest first, deleting each once the witness answered
2xx, and retries with backoff for as long as it takes. A restart resends what is still queued.
Delivery is at least once: a witness treats the same document again as a no-op.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.storage import fsync_dir, write_durably

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.25
RETRY_MAX_S = 10.0
REQUEST_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0  # on shutdown, how long queued payloads may still go out before they wait
PAYLOAD_VERSION = 1
PayloadKind = Literal["checkpoint", "receipt"]


def witness_id(url: str) -> str:
    """The queue directory name of a witness URL."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def witness_payload(kind: PayloadKind, case_id: str, document: bytes, public_key: bytes) -> bytes:
    """The POST body: canonical JSON naming the kind, the case, the signed document as stored
    (a JSON object) and the signing public key (for convenience: a witness pins the key)."""
    return canonical_json(
        {
            "takan_witness": PAYLOAD_VERSION,
            "kind": kind,
            "case_id": case_id,
            "document": parse_json(document),
            "public_key": base64.b64encode(public_key).decode("ascii"),
        }
    )


@dataclass(frozen=True, slots=True)
class _Queued:
    path: Path
    number: int


class _CaseQueue:
    """One witness's queue for one case: the payload files not yet accepted, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending: deque[_Queued] = deque()
        self.next_number = 0
        self.sender: asyncio.Task[None] | None = None


def _delete_durably(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


class WitnessPush:
    """Pushes signed checkpoints and receipts to ``urls``; ``on_signed`` is an
    ``Archive.signed_listeners`` callable, ``push_receipt`` is called once a receipt is issued."""

    def __init__(
        self,
        urls: tuple[str, ...],
        spool_dir: Path,
        public_key: bytes,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.urls = urls
        self.spool_dir = spool_dir
        self._public_key = public_key
        self._retry_max_s = retry_max_s
        self._intake: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._queues: dict[tuple[str, str], _CaseQueue] = {}
        self._intake_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self.attempts_failed = 0

    # what the archive and the receipts call (never blocking)

    def on_signed(self, case_id: str, key: str, data: bytes) -> None:
        if self.urls and layout.parse_checkpoint_key(case_id, key) is not None:
            self._queue("checkpoint", case_id, data)

    def push_receipt(self, case_id: str, document: bytes) -> None:
        if self.urls:
            self._queue("receipt", case_id, document)

    def _queue(self, kind: PayloadKind, case_id: str, document: bytes) -> None:
        payload = witness_payload(kind, case_id, document, self._public_key)
        self._intake.put_nowait((case_id, payload))

    # lifecycle

    async def start(self) -> None:
        if not self.urls:
            return
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            headers={"Content-Type": "application/json"},
        )
        for url in self.urls:
            await asyncio.to_thread(self._load_queues, url)
        for queue_key, queue in self._queues.items():
            if queue.pending:
                self._start_sender(queue_key, queue)
        self._intake_task = asyncio.create_task(self._intake_forever(), name="witness-intake")

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Queue what was handed over, let the senders try for ``grace_s``, then stop them;
        what is still queued goes out after the next start."""
        if self._intake_task is None:
            return
        await self._intake.join()
        self._intake_task.cancel()
        senders = [q.sender for q in self._queues.values() if q.sender is not None]
        if senders:
            await asyncio.wait(senders, timeout=grace_s)
        for sender in senders:
            sender.cancel()
        await asyncio.gather(self._intake_task, *senders, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def delivered(self) -> None:
        """Wait until every payload handed over so far has been accepted by every witness."""
        await self._intake.join()
        while True:
            senders = [q.sender for q in self._queues.values() if q.sender is not None]
            if not senders:
                return
            await asyncio.wait(senders)

    def pending(self) -> int:
        """Payloads queued and not yet accepted, over all witnesses."""
        return sum(len(q.pending) for q in self._queues.values()) + self._intake.qsize()

    # the queue on disk

    def _witness_dir(self, url: str) -> Path:
        return self.spool_dir / witness_id(url)

    def _load_queues(self, url: str) -> None:
        directory = self._witness_dir(url)
        directory.mkdir(parents=True, exist_ok=True)
        url_file = directory / "url"
        if not url_file.exists():
            write_durably(url_file, url.encode("utf-8"))
        for case_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
            queue = self._case_queue(url, case_dir.name)
            for path in sorted(case_dir.glob("*.json")):
                number = int(path.stem) if path.stem.isdigit() else None
                if number is None:
                    logger.warning("not a witness payload, left alone", extra={"path": str(path)})
                    continue
                queue.pending.append(_Queued(path, number))
                queue.next_number = number + 1

    def _case_queue(self, url: str, case_id: str) -> _CaseQueue:
        key = (url, case_id)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _CaseQueue(self._witness_dir(url) / case_id)
        return queue

    async def _intake_forever(self) -> None:
        while True:
            case_id, payload = await self._intake.get()
            try:
                for url in self.urls:
                    await self._enqueue(url, case_id, payload)
            except Exception:
                logger.exception("witness payload not queued", extra={"case_id": case_id})
            finally:
                self._intake.task_done()

    async def _enqueue(self, url: str, case_id: str, payload: bytes) -> None:
        layout.check_case_id(case_id)  # it names a directory
        queue = self._case_queue(url, case_id)
        number = queue.next_number
        queue.next_number += 1
        path = queue.directory / f"{number:012d}.json"
        await asyncio.to_thread(write_durably, path, payload)
        queue.pending.append(_Queued(path, number))
        self._start_sender((url, case_id), queue)

    # sending

    def _start_sender(self, key: tuple[str, str], queue: _CaseQueue) -> None:
        if queue.sender is None:
            queue.sender = asyncio.create_task(self._send_all(key, queue), name="witness-sender")

    async def _send_all(self, key: tuple[str, str], queue: _CaseQueue) -> None:
        url, case_id = key
        try:
            while queue.pending:
                item = queue.pending[0]
                await self._send_until_accepted(url, case_id, item)
                await asyncio.to_thread(_delete_durably, item.path)
                queue.pending.popleft()
        finally:
            queue.sender = None  # set before any await after the last check: no payload strands

    async def _send_until_accepted(self, url: str, case_id: str, item: _Queued) -> None:
        payload = await asyncio.to_thread(item.path.read_bytes)
        delay = RETRY_FIRST_S
        while True:
            problem = await self._post(url, payload)
            if problem is None:
                return
            self.attempts_failed += 1
            logger.warning(
                "witness did not accept, will retry",
                extra={"witness": url, "case_id": case_id, "number": item.number, "error": problem},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def _post(self, url: str, payload: bytes) -> str | None:
        """None once the witness accepted ``payload`` (2xx), else what went wrong."""
        if self._http is None:
            raise RuntimeError("the witness push has not started")
        try:
            async with self._http.post(url, data=payload) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return repr(exc)

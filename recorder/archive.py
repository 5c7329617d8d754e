"""The archive service: per-case hash chains, a durable spool, ordered uploads, signatures.

Everything that becomes evidence goes the same way: written to the local spool (fsync), chained,
then uploaded in order by one uploader that retries with backoff for as long as it takes. If the
object store is down, recording goes on and the spool drains when it returns. One process owns a
case's chain at a time (the media process of its live inspection).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from recorder import layout
from recorder.canonical import canonical_json
from recorder.chain import ChainEntry, next_entry
from recorder.clock import CLOCK_SOURCE, utc_iso
from recorder.errors import StorageError
from recorder.manifest import Manifest, SegmentRecord, sign_checkpoint
from recorder.recording import FinishedSegment
from recorder.segments import remux_partial
from recorder.signing import Signer
from recorder.storage import Storage, digest_stream, fsync_dir

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 30.0
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def _file_digest(path: Path) -> tuple[str, int]:
    with path.open("rb") as handle:
        return digest_stream(handle)


@dataclass
class CaseState:
    head: ChainEntry | None = None
    checkpointed_seq: int = -1
    segments: dict[str, list[SegmentRecord]] = field(default_factory=lambda: defaultdict(list))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class DurabilityStats:
    """Segment closed → hashed, chained and stored, in seconds, per segment."""

    # The most recent segments only: a server runs for months.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    upload_failures: int = 0


class Archive:
    def __init__(
        self,
        storage: Storage,
        spool_root: Path,
        signer: Signer,
        wall_clock: Callable[[], float] = time.time,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self.storage = storage
        self.spool_root = spool_root
        self.signer = signer
        self._wall = wall_clock
        self._checkpoint_interval_s = checkpoint_interval_s
        self._cases: dict[str, CaseState] = {}
        self._uploads: asyncio.Queue[tuple[str, float | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = DurabilityStats()
        self._keys_spooled: set[str] = set()

    @property
    def recording_dir(self) -> Path:
        return self.spool_root / "recording"

    def _spool_path(self, key: str) -> Path:
        return self.spool_root / "objects" / key

    # lifecycle

    async def start(self) -> None:
        (self.spool_root / "objects").mkdir(parents=True, exist_ok=True)
        self.recording_dir.mkdir(parents=True, exist_ok=True)
        for key in await asyncio.to_thread(self._spooled_keys):
            self._enqueue(key, None)
        self._tasks = [
            asyncio.create_task(self._upload_forever(), name="archive-uploader"),
            asyncio.create_task(self._checkpoint_forever(), name="archive-checkpoints"),
        ]

    async def stop(self) -> None:
        for case_id in list(self._cases):
            await self.checkpoint(case_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.drain()  # what is left stays spooled and goes up at the next start
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every spooled object is stored."""
        await self._idle.wait()

    def _spooled_keys(self) -> list[str]:
        root = self.spool_root / "objects"
        keys = [
            path.relative_to(root).as_posix()
            for path in root.rglob("*")
            if path.is_file() and not path.name.endswith(".tmp")
        ]
        # Segments and keys before the chain entries that point at them, entries in order.
        return sorted(keys, key=lambda k: ("/chain/" in k or "/checkpoints/" in k, k))

    # uploads

    def _enqueue(self, key: str, closed_at: float | None) -> None:
        self._idle.clear()
        self._uploads.put_nowait((key, closed_at))

    async def _upload_forever(self) -> None:
        while True:
            key, closed_at = await self._uploads.get()
            delay = RETRY_FIRST_S
            while True:
                try:
                    await asyncio.to_thread(self._upload_one, key)
                    break
                except (StorageError, OSError) as exc:
                    self.stats.upload_failures += 1
                    logger.warning(
                        "upload failed, will retry", extra={"key": key, "error": str(exc)}
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
            if closed_at is not None:
                self.stats.latencies.append(time.monotonic() - closed_at)
            if self._uploads.empty():
                self._idle.set()

    def _upload_one(self, key: str) -> None:
        path = self._spool_path(key)
        data = path.read_bytes()
        self.storage.put(key, data, hashlib.sha256(data).hexdigest())
        path.unlink()

    # the chain

    async def _state(self, case_id: str) -> CaseState:
        state = self._cases.get(case_id)
        if state is None:
            state = await asyncio.to_thread(self._load_state, case_id)
            state = self._cases.setdefault(case_id, state)
        return state

    def _keys_under(self, prefix: str) -> list[str]:
        """The JSON objects directly under ``prefix``, stored or still spooled, in order."""
        keys = set(self.storage.list(prefix))
        spool_dir = self._spool_path(prefix)
        if spool_dir.is_dir():
            keys |= {prefix + p.name for p in spool_dir.iterdir() if p.suffix == ".json"}
        return sorted(keys)

    def _chain_keys(self, case_id: str) -> list[str]:
        return self._keys_under(layout.chain_prefix(case_id))

    def _read_entry(self, key: str) -> ChainEntry:
        spooled = self._spool_path(key)
        try:
            raw = spooled.read_bytes()
        except FileNotFoundError:  # uploaded (and unspooled) meanwhile
            raw = self.storage.get(key)
        return ChainEntry.from_json(json.loads(raw))

    async def chain_page(
        self, case_id: str, offset: int, limit: int
    ) -> tuple[int, list[ChainEntry]]:
        """(total, entries[offset:offset+limit]) of the case's chain."""

        def read() -> tuple[int, list[ChainEntry]]:
            keys = self._chain_keys(case_id)
            return len(keys), [self._read_entry(k) for k in keys[offset : offset + limit]]

        return await asyncio.to_thread(read)

    def _load_state(self, case_id: str) -> CaseState:
        state = CaseState()
        for key in self._chain_keys(case_id):
            entry = self._read_entry(key)
            state.head = entry
            if entry.kind == "segment":
                record = SegmentRecord.from_json(entry.body)
                state.segments[record.inspection_id].append(record)
        checkpoints = self._keys_under(layout.checkpoint_prefix(case_id))
        seqs = [layout.parse_checkpoint_key(case_id, key) for key in checkpoints]
        state.checkpointed_seq = max((s for s in seqs if s is not None), default=-1)
        return state

    async def append(self, case_id: str, kind: str, body: dict[str, Any]) -> ChainEntry:
        """Chain an audit event (or a segment record) for the case; durable on return."""
        state = await self._state(case_id)
        async with state.lock:
            return await self._append_locked(case_id, state, kind, body)

    async def _append_locked(
        self,
        case_id: str,
        state: CaseState,
        kind: str,
        body: dict[str, Any],
        closed_at: float | None = None,
    ) -> ChainEntry:
        at = utc_iso(self._wall())
        if state.head is not None and at < state.head.at:
            at = state.head.at  # the system clock stepped back: never let the chain do so
        entry = next_entry(state.head, case_id, kind, at, CLOCK_SOURCE, body)
        key = layout.chain_entry_key(case_id, entry.seq)
        await asyncio.to_thread(
            _write_durably, self._spool_path(key), canonical_json(entry.to_json())
        )
        state.head = entry
        self._enqueue(key, closed_at)
        return entry

    async def store_segment(
        self, case_id: str, inspection_id: str, finished: FinishedSegment
    ) -> SegmentRecord:
        """Spool a closed segment under its object key, chain its record, queue its upload."""
        closed_at = time.monotonic()
        state = await self._state(case_id)
        key = layout.segment_key(case_id, inspection_id, finished.track, finished.seq)
        target = self._spool_path(key)
        await asyncio.to_thread(self._move_into_spool, finished.closed.path, target)
        closed = finished.closed
        tb: Fraction = closed.time_base
        record = SegmentRecord(
            inspection_id=inspection_id,
            track=finished.track,
            seq=finished.seq,
            key=key,
            sha256=closed.sha256,
            size=closed.size,
            codec="vp8" if finished.track.endswith("video") else "opus",
            first_pts=closed.first_pts,
            last_pts=closed.last_pts,
            time_base=f"{tb.numerator}/{tb.denominator}",
            start_utc=utc_iso(finished.start_wall),
            end_utc=utc_iso(finished.end_wall),
            frames=closed.frames,
            partial=finished.partial,
        )
        async with state.lock:
            self._enqueue(key, None)
            # Uploads run in order, so the stored chain entry marks the segment durable.
            await self._append_locked(case_id, state, "segment", record.to_json(), closed_at)
            state.segments[inspection_id].append(record)
        return record

    async def store_object(
        self, case_id: str, key: str, data: bytes, kind: str, body: dict[str, Any]
    ) -> ChainEntry:
        """Spool ``data`` under ``key`` (in the case), chain ``body`` with the object's key,
        sha256 and size under ``kind``, and queue the upload; durable on return.

        The object is queued before its chain entry, so a stored entry marks it stored.
        """
        if not key.startswith(layout.case_prefix(case_id)) or ".." in key.split("/"):
            raise ValueError(f"key {key!r} is not under case {case_id!r}")
        reserved = {"key", "sha256", "size"} & set(body)
        if reserved:
            raise ValueError(f"body must not set {', '.join(sorted(reserved))}")
        sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        full = {**body, "key": key, "sha256": sha256, "size": len(data)}
        canonical_json(full)  # a body the chain would refuse must not leave an object behind
        state = await self._state(case_id)
        async with state.lock:
            await asyncio.to_thread(_write_durably, self._spool_path(key), data)
            self._enqueue(key, None)
            return await self._append_locked(case_id, state, kind, full)

    async def read_object(self, key: str) -> bytes:
        """A stored object's bytes, from the spool while its upload is pending."""

        def read() -> bytes:
            try:
                return self._spool_path(key).read_bytes()
            except FileNotFoundError:  # uploaded (and unspooled), or never spooled here
                return self.storage.get(key)

        return await asyncio.to_thread(read)

    @staticmethod
    def _move_into_spool(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        fsync_dir(target.parent)

    def next_segment_seq(self, case_id: str, inspection_id: str, track: str) -> int:
        state = self._cases.get(case_id)
        if state is None:
            return 0
        seqs = [r.seq for r in state.segments.get(inspection_id, []) if r.track == track]
        return max(seqs) + 1 if seqs else 0

    async def open_case(self, case_id: str) -> None:
        await self._state(case_id)

    # signatures

    async def checkpoint(self, case_id: str) -> None:
        """Sign the chain head if it moved since the last checkpoint."""
        state = await self._state(case_id)
        async with state.lock:
            await self._checkpoint_locked(case_id, state)

    async def _checkpoint_locked(self, case_id: str, state: CaseState) -> None:
        head = state.head
        if head is None or head.seq <= state.checkpointed_seq:
            return
        signed = sign_checkpoint(self.signer, case_id, head.seq, head.hash, utc_iso(self._wall()))
        await self._spool_public_key(case_id)
        key = layout.checkpoint_key(case_id, head.seq)
        await asyncio.to_thread(_write_durably, self._spool_path(key), canonical_json(signed))
        self._enqueue(key, None)
        state.checkpointed_seq = head.seq

    async def settled_keys(self, case_id: str) -> list[str]:
        """Sign the chain head, wait until everything spooled is stored, and list the case's
        stored objects, holding the case's chain still meanwhile: the list is a consistent cut
        (the last listed entry is signed, every object a listed entry names is listed).

        Waits as long as storage is down; callers bound it with a timeout.
        """
        state = await self._state(case_id)
        async with state.lock:
            await self._checkpoint_locked(case_id, state)
            await self.drain()
            return await asyncio.to_thread(self.storage.list, layout.case_prefix(case_id))

    async def _spool_public_key(self, case_id: str) -> None:
        fingerprint_hex = self.signer.fingerprint.removeprefix("sha256:")
        key = layout.public_key_key(case_id, fingerprint_hex)
        if key in self._keys_spooled:
            return
        # No look at the store (it may be down): storing the same bytes again is accepted.
        await asyncio.to_thread(_write_durably, self._spool_path(key), self.signer.public_key_bytes)
        self._enqueue(key, None)
        self._keys_spooled.add(key)

    async def finish_inspection(self, case_id: str, inspection_id: str) -> Manifest:
        """Sign the inspection's manifest (Merkle root over its segments) and checkpoint."""
        state = await self._state(case_id)
        await self._spool_public_key(case_id)
        async with state.lock:
            head = state.head
            manifest = Manifest.build(  # orders the segments itself
                case_id=case_id,
                inspection_id=inspection_id,
                segments=state.segments.get(inspection_id, []),
                chain_head_seq=head.seq if head else -1,
                chain_head=head.hash if head else "",
                created_at=utc_iso(self._wall()),
                signer=self.signer,
            )
            key = layout.manifest_key(case_id, inspection_id)
            data = canonical_json(manifest.signed_json())
            await asyncio.to_thread(_write_durably, self._spool_path(key), data)
            self._enqueue(key, None)
            # Chained, so that deleting the manifest is detected like any other object.
            await self._append_locked(
                case_id,
                state,
                "manifest",
                {
                    "inspection_id": inspection_id,
                    "key": key,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                },
            )
        await self.checkpoint(case_id)
        return manifest

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            for case_id in list(self._cases):
                try:
                    await self.checkpoint(case_id)
                except Exception:
                    logger.exception("checkpoint failed", extra={"case_id": case_id})

    # crash recovery

    async def recover(self) -> list[SegmentRecord]:
        """Finalize every segment a crash left open, chain it as partial with a ``recovered``
        event naming what was on disk; nothing is dropped silently. Then sign a checkpoint of
        every case this touched or whose chain entries were still spooled, so a crash before
        the periodic checkpoint leaves a signed chain, not an unsigned tail."""
        recovered: list[SegmentRecord] = []
        touched = {
            key.split("/")[1]
            for key in await asyncio.to_thread(self._spooled_keys)
            if key.startswith("cases/") and "/chain/" in key
        }
        for path in sorted(self.recording_dir.glob("*/*/*.webm")):
            case_id, inspection_id = path.parent.parent.name, path.parent.name
            track, _, seq_text = path.stem.rpartition("-")
            if track not in layout.TRACKS or not seq_text.isdigit():
                continue
            touched.add(case_id)
            original_sha256, original_size = await asyncio.to_thread(_file_digest, path)
            remuxed = path.with_name(path.stem + ".recovered.webm")
            result = await asyncio.to_thread(remux_partial, path, remuxed)
            body: dict[str, Any] = {
                "inspection_id": inspection_id,
                "track": track,
                "seq": int(seq_text),
                "original_size": original_size,
                "original_sha256": original_sha256,
            }
            if result is None:
                # Nothing readable: the raw bytes stay in quarantine, named in the chain by hash.
                quarantine = self.spool_root / "quarantine" / case_id / inspection_id / path.name
                await asyncio.to_thread(self._move_into_spool, path, quarantine)
                await self.append(case_id, "recovered", {**body, "readable": False})
                continue
            modified = path.stat().st_mtime
            finished = FinishedSegment(
                track, int(seq_text), result, modified, modified, partial=True
            )
            record = await self.store_segment(case_id, inspection_id, finished)
            path.unlink()
            await self.append(
                case_id, "recovered", {**body, "readable": True, "frames": result.frames}
            )
            recovered.append(record)
        for case_id in sorted(touched):
            try:
                await self.checkpoint(case_id)
            except StorageError as exc:  # the periodic checkpoint signs it once storage is back
                logger.warning(
                    "no checkpoint after recovery", extra={"case_id": case_id, "error": str(exc)}
                )
        return recovered

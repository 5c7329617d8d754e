"""The archive service: per-case hash chains, a durable spool, ordered uploads, signatures.

Everything that becomes evidence goes the same way: staged on the local disk (fsync), chained (the
chain entry, written durably to the spool, is the commit point), moved into the spool, then
uploaded in order by one uploader that retries with backoff for as long as it takes. If the object
store is down, recording goes on and the spool drains when it returns. Processes sharing the data
directory (a server, ``takan export``) append one at a time per case (``recorder/chain_lock.py``),
each linking to what the others wrote.

Each store runs as a unit that the caller's cancellation cannot stop half-way (a task under
``asyncio.shield``), so an object never reaches the spool without its entry: see "Durability" in
docs/archive.md for the argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from recorder import layout
from recorder.canonical import canonical_json
from recorder.chain import ChainEntry, next_entry
from recorder.chain_lock import ChainLocks
from recorder.clock import CLOCK_SOURCE, utc_iso
from recorder.errors import (
    ChainMoved,
    IntegrityError,
    ObjectNotFound,
    StorageError,
    WriteConflict,
)
from recorder.head_ledger import HeadLedger, HeadRecord, ledger_mac_key
from recorder.key_history import KEY_KINDS, KeyHistory
from recorder.manifest import Manifest, SegmentRecord, sign_checkpoint, verify_checkpoint
from recorder.recording import FinishedSegment
from recorder.shared_chain import Sequenced, SharedChain, entry_mac, mac_holds
from recorder.signing import Signer
from recorder.storage import LocalStorage, Storage, move_durably, write_durably
from recorder.tail import (
    DATABASE_SOURCE,
    FLAG_KINDS,
    LEDGER_SOURCE,
    TailFinding,
    TrustedHead,
    account_for_tail,
    consistent_prefix,
    describe_flag,
)
from recorder.timestamps import UNSIGNED_TAIL_KINDS

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 30.0
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0
PUBLISH_TIMEOUT_S = 30.0  # how long a writer beside a server tries to store its entry
MOVE_ATTEMPTS = 4  # a committed object's move into the spool; after these, recovery moves it
T = TypeVar("T")


@dataclass
class CaseState:
    head: ChainEntry | None = None
    checkpointed_seq: int = -1
    # The last entry a checkpoint must cover: timestamp entries never call for one, or each
    # token would move the head, be signed, be stamped again, forever (docs/archive.md).
    signable_seq: int = -1
    segments: dict[str, list[SegmentRecord]] = field(default_factory=lambda: defaultdict(list))
    # Every object key an entry records, with its SHA-256: what recovery moves, not quarantines.
    objects: dict[str, str] = field(default_factory=dict)
    # Signing keys the chain records (fingerprint → seq of its entry); the last one is in use.
    keys: dict[str, int] = field(default_factory=dict)
    # A tail this process cannot account for, found on loading and not chained yet.
    unflagged: TailFinding | None = None
    # The flags the chain holds (foreign_tail, chain_cut entries): the case is not intact.
    flags: list[ChainEntry] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The case's cross-process lock (recorder/chain_lock.py) while this process holds it, and
    # the chain entries written under it.
    lock_fd: int | None = None
    written: list[str] = field(default_factory=list)
    # While this process holds the case in the database (``shared_chain``).
    holding: bool = False
    # Every entry of the case was sequenced through the database, which so knows each
    # checkpoint signed: none needs looking for in storage.
    all_sequenced: bool = False
    # The seq of the last entry of each kind per inspection: what ``append(follows=…)`` checks.
    last_of: dict[tuple[str, str], int] = field(default_factory=dict)

    def note(self, entry: ChainEntry) -> None:
        inspection_id = entry.body.get("inspection_id")
        if isinstance(inspection_id, str):
            self.last_of[(inspection_id, entry.kind)] = entry.seq

    def take(self, entry: ChainEntry) -> None:
        """What a vouched entry adds to the state: keys, flags, segments, objects."""
        self.note(entry)
        fingerprint = entry.body.get("fingerprint")
        if entry.kind in KEY_KINDS and isinstance(fingerprint, str):
            self.keys[fingerprint] = entry.seq
        if entry.kind in FLAG_KINDS:
            self.flags.append(entry)
        if entry.kind == "segment":
            record = SegmentRecord.from_json(entry.body)
            self.segments[record.inspection_id].append(record)
        object_key, sha256 = entry.body.get("key"), entry.body.get("sha256")
        if isinstance(object_key, str) and isinstance(sha256, str):
            self.objects[object_key] = sha256


@dataclass
class DurabilityStats:
    """Segment closed → hashed, chained and stored, in seconds, per segment."""

    # The most recent segments only: a server runs for months.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    upload_failures: int = 0


Fence = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""Called as ``(case_id, kind, body)`` before an entry is chained; raising refuses it."""


class Anything(enum.Enum):
    """``append(follows=ANYTHING)``: an append after whatever is there."""

    ANYTHING = "anything"


ANYTHING = Anything.ANYTHING

SignedListener = Callable[[str, str, bytes], None]
"""Called as ``(case_id, key, data)`` once a signed checkpoint or manifest is durable in the
spool; it must not block (a listener schedules its own work: timestamping, witness push)."""


class Archive:
    def __init__(
        self,
        storage: Storage,
        spool_root: Path,
        signer: Signer,
        wall_clock: Callable[[], float] = time.time,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        key_history: KeyHistory | None = None,
        ledger_dir: Path | None = None,
        shared_chain: SharedChain | None = None,
    ) -> None:
        self.storage = storage
        self.spool_root = spool_root
        self.signer = signer
        self.key_history = key_history or KeyHistory.starting_with(signer.public_key_bytes)
        if self.key_history.current != signer.fingerprint:
            raise ValueError(
                f"the signing key {signer.fingerprint} is not the key history's current key"
                f" {self.key_history.current}"
            )
        self._wall = wall_clock
        self._checkpoint_interval_s = checkpoint_interval_s
        self._cases: dict[str, CaseState] = {}
        self._uploads: asyncio.Queue[tuple[str, float | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = DurabilityStats()
        self._units: dict[str, set[asyncio.Task[Any]]] = defaultdict(set)
        self.signed_listeners: list[SignedListener] = []
        # Asked before each entry is written, holding the case: raises to refuse it (a node
        # that lost the inspection the entry is about, server/live/nodes.py).
        self.fence: Fence | None = None
        self._mac_key = ledger_mac_key(signer)
        self.ledger = HeadLedger(ledger_dir or spool_root, self._mac_key)
        # With PostgreSQL, where every process appends in turn (recorder/shared_chain.py).
        self.shared_chain = shared_chain
        self._spool = LocalStorage(spool_root / "objects")
        # What processes sharing a data directory share: the server's spool directory (the
        # ledger's), its case locks, and the chain entries it spooled but has not uploaded yet.
        shared_root = ledger_dir or spool_root
        self._locks = ChainLocks(shared_root)
        self._spools = [self._spool]
        if shared_root.resolve() != spool_root.resolve():
            self._spools.append(LocalStorage(shared_root / "objects"))

    @property
    def recording_dir(self) -> Path:
        return self.spool_root / "recording"

    @property
    def staging_dir(self) -> Path:
        """Objects written but not yet committed by their chain entry."""
        return self.spool_root / "staging"

    def _spool_path(self, key: str) -> Path:
        return self.spool_root / "objects" / key

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Every blocking step of the storing paths runs here (one seam: tests interrupt it)."""
        return await asyncio.to_thread(fn, *args)

    async def _unit(self, case_id: str, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even if the caller is cancelled meanwhile.

        Storing stages an object, commits its chain entry, then moves it into the spool; a
        cancellation between those steps would leave an object without its entry, so the steps
        run in a task of their own that the caller only waits for. ``settle`` waits for them all.
        """
        task = asyncio.ensure_future(work)
        units = self._units[case_id]
        units.add(task)
        task.add_done_callback(self._unit_done(case_id))
        return await asyncio.shield(task)

    def _unit_done(self, case_id: str) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            self._units[case_id].discard(task)
            if not self._units[case_id]:
                del self._units[case_id]
            error = None if task.cancelled() else task.exception()
            if error is not None:
                # Whoever waited may have been cancelled: the failure is still written down.
                logger.error(
                    "archive store failed", extra={"case_id": case_id, "error": repr(error)}
                )

        return done

    async def settle(self, case_id: str | None = None) -> None:
        """Wait until every store unit under way (of the case, or of all) has ended."""
        current = asyncio.current_task()
        while True:
            pending = [
                task
                for cid, units in list(self._units.items())
                if case_id is None or cid == case_id
                for task in units
                if task is not current
            ]
            if not pending:
                return
            await asyncio.wait(pending)

    # lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self.ledger.open)
        (self.spool_root / "objects").mkdir(parents=True, exist_ok=True)
        self.recording_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        for key in await asyncio.to_thread(self.spooled_keys):
            self._enqueue(key, None)
        self._tasks = [
            asyncio.create_task(self._upload_forever(), name="archive-uploader"),
            asyncio.create_task(self._checkpoint_forever(), name="archive-checkpoints"),
        ]

    async def stop(self) -> None:
        await self.settle()
        for case_id in list(self._cases):
            await self.checkpoint(case_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.drain()  # what is left stays spooled and goes up at the next start
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.ledger.close()

    async def drain(self) -> None:
        """Wait until every spooled object is stored."""
        await self._idle.wait()

    def spooled_keys(self) -> list[str]:
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
                except WriteConflict:
                    # Someone wrote other bytes at this key first: retrying cannot help, and
                    # must not hold up every other upload. Ours are kept, the case flagged.
                    await asyncio.to_thread(self._set_aside, key)
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

    def _set_aside(self, key: str) -> None:
        """Keep our bytes for ``key`` under ``spool/conflicts/`` and flag the case (blocking)."""
        case_id = key.split("/")[1]
        kept = self.spool_root / "conflicts" / key
        move_durably(self._spool_path(key), kept)
        words = (
            f"{key}: the archive already holds other bytes at this key (written by someone"
            f" else); Takan's own are kept at {kept}"
        )
        logger.error("write-once conflict: %s", words, extra={"case_id": case_id, "key": key})
        write_durably(self._flags_dir / case_id, words.encode("utf-8"))

    def _upload_one(self, key: str) -> None:
        path = self._spool_path(key)
        data = path.read_bytes()
        self.storage.put(key, data, hashlib.sha256(data).hexdigest())
        with contextlib.suppress(FileNotFoundError):  # a process sharing the spool was first
            path.unlink()

    # the chain

    async def _state(self, case_id: str) -> CaseState:
        state = self._cases.get(case_id)
        if state is None:
            if self.shared_chain is not None:
                sequenced = await self.shared_chain.load(case_id)
                if sequenced.entries:
                    state = await asyncio.to_thread(self._load_sequenced, case_id, sequenced)
            if state is None:
                # Loaded holding the case's lock, so no other process is half-way through an
                # append.
                fd = await self._locks.acquire(case_id)
                try:
                    state = await asyncio.to_thread(self._load_state, case_id)
                finally:
                    self._locks.release(fd)
            state = self._cases.setdefault(case_id, state)
        return state

    def _load_sequenced(self, case_id: str, sequenced: Sequenced) -> CaseState:
        """The case as the database sequenced it (blocking only for a case whose first entries
        were chained before it was sequenced there: those are read from the archive)."""
        state = CaseState()
        first = sequenced.entries[0].seq
        prefix: list[ChainEntry] = []
        if first > 0:
            prefix = [self._read_entry(key) for key in self._chain_keys(case_id)[:first]]
            good = consistent_prefix(prefix, case_id)
            for entry in prefix[:good]:
                state.take(entry)
                if entry.kind not in UNSIGNED_TAIL_KINDS:
                    state.signable_seq = entry.seq
            state.head = prefix[good - 1] if good else None
        else:
            state.all_sequenced = True
        checkpoint = None
        if not all(mac_holds(self._mac_key, case_id, row) for row in sequenced.entries):
            # Rows MACed under a key rotated away since (or not by Takan): what a checkpoint
            # signed by a key of the history covers is vouched for all the same.
            rows = [ChainEntry.from_json(json.loads(row.data)) for row in sequenced.entries]
            checkpoint = self._trusted_checkpoint(
                case_id, prefix + rows, self._keys_under(layout.checkpoint_prefix(case_id))
            )
        self._take_sequenced(case_id, state, sequenced, checkpoint)
        return state

    def _take_sequenced(
        self,
        case_id: str,
        state: CaseState,
        sequenced: Sequenced,
        checkpoint: TrustedHead | None = None,
    ) -> None:
        """Build on what the database sequenced above ``state.head``. An entry whose MAC does
        not hold (nobody with the signing key wrote it), that ``checkpoint`` does not cover, or
        that does not link is a foreign tail: the head still moves to the database's, which is
        the only one a next entry can follow, and the next entry flags what is above the last
        one vouched for."""
        state.checkpointed_seq = max(state.checkpointed_seq, sequenced.signed_seq)
        entries: list[ChainEntry] = []
        # A Takan writer flags what it did not write before it builds on it, so the last row
        # with a MAC vouches for every linked row below it, as the head ledger does.
        vouched = 0
        by_checkpoint = 0
        for position, row in enumerate(sequenced.entries):
            try:
                entry = ChainEntry.from_json(json.loads(row.data))
            except (ValueError, KeyError, TypeError) as exc:
                logger.error(
                    "unreadable sequenced chain entry",
                    extra={"case_id": case_id, "seq": row.seq, "error": str(exc)},
                )
                break
            if entry.seq == row.seq and mac_holds(self._mac_key, case_id, row):
                vouched = position + 1
            elif checkpoint is not None and row.seq <= checkpoint.seq:
                vouched = by_checkpoint = position + 1
            entries.append(entry)
        vouched = min(vouched, consistent_prefix(entries, case_id, after=state.head))
        for entry in entries[:vouched]:
            state.take(entry)
            if entry.kind not in UNSIGNED_TAIL_KINDS:
                state.signable_seq = entry.seq
        last_vouched = entries[vouched - 1] if vouched else state.head
        if entries:
            state.head = entries[-1]
        if vouched < len(entries) and state.unflagged is None:
            source = (
                checkpoint.source
                if checkpoint is not None and vouched == by_checkpoint
                else DATABASE_SOURCE
            )
            trusted = (
                TrustedHead(last_vouched.seq, last_vouched.hash, source)
                if last_vouched is not None
                else None
            )
            state.unflagged = TailFinding(
                "foreign_tail", entries[vouched].seq, entries[-1].seq, trusted
            )
            logger.error(
                "sequenced chain entries no Takan process wrote: %s",
                state.unflagged.describe(),
                extra={"case_id": case_id, "seq": state.unflagged.first_seq},
            )

    def _keys_under(self, prefix: str) -> list[str]:
        """The JSON objects directly under ``prefix``, stored or still spooled (here or by the
        server whose spool this process shares), in order."""
        # The spools first: an object is stored before it leaves the spool, so one uploaded
        # meanwhile is in the storage listing that follows (the other order could miss it).
        keys: set[str] = set()
        for spool in self._spools:
            keys |= {k for k in spool.list(prefix) if "/" not in k[len(prefix) :]}
        keys |= set(self.storage.list(prefix))
        return sorted(key for key in keys if key.endswith(".json"))

    def _chain_keys(self, case_id: str) -> list[str]:
        return self._keys_under(layout.chain_prefix(case_id))

    def _read_entry(self, key: str) -> ChainEntry:
        return ChainEntry.from_json(json.loads(self._read_spooled_or_stored(key)))

    async def chain_page(
        self, case_id: str, offset: int, limit: int
    ) -> tuple[int, list[ChainEntry]]:
        """(total, entries[offset:offset+limit]) of the case's chain."""

        def read() -> tuple[int, list[ChainEntry]]:
            keys = self._chain_keys(case_id)
            return len(keys), [self._read_entry(k) for k in keys[offset : offset + limit]]

        return await asyncio.to_thread(read)

    def _load_state(self, case_id: str) -> CaseState:
        """The case as this process may build on it: the stored chain up to the head it can
        vouch for (its head ledger, or a checkpoint by a key of the history), the stored head to
        link to, and what it found above the vouched head, if anything (then flagged)."""
        self.ledger.open()
        entries: list[ChainEntry] = []
        for key in self._chain_keys(case_id):
            try:
                entries.append(self._read_entry(key))
            except (ValueError, StorageError) as exc:
                # Nothing can link to an entry that cannot be read: build on what precedes it
                # (the next entry's upload then meets it, is set aside, and flags the case).
                logger.error("unreadable chain entry", extra={"key": key, "error": str(exc)})
                break
        checkpoints = self._keys_under(layout.checkpoint_prefix(case_id))
        trusted = self._trusted_checkpoint(case_id, entries, checkpoints)
        state = CaseState()
        # Only a checkpoint by a key of the history counts as this server's signature.
        state.checkpointed_seq = trusted.seq if trusted is not None else -1
        # Read afresh: another process sharing the ledger may have appended since it was opened.
        ledger_head = self.ledger.reread(case_id)
        vouched, finding = account_for_tail(entries, case_id, ledger_head, trusted)
        state.head = entries[-1] if entries else None
        state.signable_seq = max(
            (e.seq for e in entries if e.kind not in UNSIGNED_TAIL_KINDS), default=-1
        )
        for entry in entries[: vouched + 1]:  # what a foreign entry records is not evidence
            state.take(entry)
        if finding is not None:
            logger.error(
                "a chain tail this server cannot account for: %s",
                finding.describe(),
                extra={"case_id": case_id, "seq": finding.first_seq, "kind": finding.kind},
            )
            state.unflagged = finding
        return state

    def _trusted_checkpoint(
        self, case_id: str, entries: list[ChainEntry], checkpoint_keys: list[str]
    ) -> TrustedHead | None:
        """The highest checkpoint signed by a key of the history over a stored entry's hash."""
        public_keys = dict(
            zip(self.key_history.fingerprints, self.key_history.public_keys, strict=True)
        )
        for key in sorted(checkpoint_keys, reverse=True):
            seq = layout.parse_checkpoint_key(case_id, key)
            if seq is None or seq >= len(entries):
                continue
            try:
                document = json.loads(self._read_spooled_or_stored(key))
                fingerprint = document["checkpoint"]["key_fingerprint"]
                public = public_keys.get(fingerprint)
                if public is None:
                    continue
                checkpoint = verify_checkpoint(public, document, key)
            except (ObjectNotFound, IntegrityError, ValueError, KeyError, TypeError) as exc:
                logger.warning("a checkpoint vouches for nothing", extra={"key": key, "error": exc})
                continue
            # Any other StorageError (the store unreachable) propagates: the case is not loaded
            # and the next request tries again, where vouching for nothing would have the next
            # entry flag genuine rows as foreign, for good.
            if (checkpoint.case_id, checkpoint.head) == (case_id, entries[seq].hash):
                return TrustedHead(seq, checkpoint.head, key)
        return None

    def _read_spooled_or_stored(self, key: str) -> bytes:
        """The spool's copy while its upload is pending, else the stored object. The spool is
        read with the store's own rules (regular files only, no symlinks): it is on the same
        disk an insider may write to."""
        for spool in self._spools:
            try:
                return spool.get(key)
            except ObjectNotFound:  # uploaded (and unspooled) meanwhile, or never spooled here
                continue
        return self.storage.get(key)

    def flag_of(self, case_id: str) -> str | None:
        """Plain words for why the case is not intact, if this process found or chained a
        foreign tail or a cut (None for a case not loaded here or found sound)."""
        state = self._cases.get(case_id)
        if state is None:
            return None
        if state.unflagged is not None:
            return state.unflagged.describe()
        if state.flags:
            return "; ".join(describe_flag(e.kind, e.body) for e in state.flags)
        return None

    @property
    def _flags_dir(self) -> Path:
        return self.ledger.path.parent / "flagged"

    def flagged_cases(self) -> dict[str, str]:
        """Every case this process flagged (now or before a restart) or found unsound, with
        its plain words: for the admin page. Blocking (reads the flag notes)."""
        found: dict[str, str] = {}
        if self._flags_dir.is_dir():
            for note in self._flags_dir.iterdir():
                if note.is_file() and not note.name.endswith(".tmp"):
                    found[note.name] = note.read_text(encoding="utf-8", errors="replace")
        for case_id in list(self._cases):
            words = self.flag_of(case_id)
            if words is not None:
                found[case_id] = words
        return dict(sorted(found.items()))

    @contextlib.asynccontextmanager
    async def _exclusive(self, case_id: str, state: CaseState) -> AsyncIterator[None]:
        """Hold the case's chain against other processes (docs/archive.md, One writer at a
        time), having first caught up with what they appended. Re-entrant under ``state.lock``."""
        if state.lock_fd is not None or state.holding:
            yield
            return
        if self.shared_chain is not None:
            async with self._held(case_id, state):
                yield
            return
        fd = await self._locks.acquire(case_id)
        state.lock_fd = fd
        try:
            await self.run_blocking(self._catch_up, case_id, state)
            yield
        finally:
            written, state.written = state.written, []
            try:
                if written and len(self._spools) > 1:
                    await self.run_blocking(self._publish, written)
            finally:
                state.lock_fd = None
                self._locks.release(fd)

    @contextlib.asynccontextmanager
    async def _held(self, case_id: str, state: CaseState) -> AsyncIterator[None]:
        """Hold the case in the database, having read what other processes sequenced since."""
        assert self.shared_chain is not None  # noqa: S101 - the caller checked
        after = state.head.seq if state.head is not None else -1
        sequenced = await self.shared_chain.hold(case_id, after)
        state.holding = True
        try:
            self._take_sequenced(case_id, state, sequenced)
            yield
        finally:
            state.holding = False
            state.written = []
            await self.shared_chain.let_go(case_id)

    def _publish(self, keys: list[str]) -> None:
        """Store the entries this process wrote under the lock before it lets the lock go: the
        server sharing the data directory cannot see this process's own spool (blocking).
        Retried for PUBLISH_TIMEOUT_S; after that the entry's upload is left to the uploader,
        and should another writer take its seq meanwhile, the conflict is set aside and the
        case flagged, never silently lost."""
        deadline = time.monotonic() + PUBLISH_TIMEOUT_S
        for key in keys:
            delay = RETRY_FIRST_S
            while True:
                try:
                    if self.storage.exists(key):
                        break  # this process's uploader stored it already
                    data = self._spool.get(key)
                    self.storage.put(key, data, hashlib.sha256(data).hexdigest())
                    break
                except WriteConflict:
                    break  # other bytes there: the uploader sets ours aside and flags the case
                except (StorageError, OSError) as exc:
                    if time.monotonic() > deadline:
                        logger.error(
                            "chain entry not published", extra={"key": key, "error": str(exc)}
                        )
                        return
                    time.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)

    def _entry_written(self, key: str) -> bool:
        """Whether any writer has written ``key``: a writer spools it before it lets the case's
        lock go, and it is stored before it leaves the spool (blocking)."""
        return any(spool.exists(key) for spool in self._spools) or self.storage.exists(key)

    def _catch_up(self, case_id: str, state: CaseState) -> None:
        """Entries another process appended after this one's head (blocking): linked and in the
        shared head ledger, they are the head to build on; otherwise they are flagged as any
        foreign tail is."""
        head = state.head
        seq = 0 if head is None else head.seq + 1
        entries: list[ChainEntry] = []
        try:
            while self._entry_written(layout.chain_entry_key(case_id, seq)):
                entries.append(self._read_entry(layout.chain_entry_key(case_id, seq)))
                seq += 1
        except (StorageError, ValueError) as exc:
            logger.error("unreadable chain entry", extra={"case_id": case_id, "error": str(exc)})
        if not entries:
            return
        top = entries[-1]
        record = self.ledger.reread(case_id)
        vouched = record is not None and (
            (record.seq, record.hash) == (top.seq, top.hash)
            or (record.seq == top.seq + 1 and record.prev == top.hash)  # a writer crashed
        )
        if vouched and consistent_prefix(entries, case_id, after=head) == len(entries):
            for entry in entries:
                state.take(entry)
                if entry.kind not in UNSIGNED_TAIL_KINDS:
                    state.signable_seq = entry.seq
            state.head = top
            logger.info(
                "chain entries another process appended",
                extra={"case_id": case_id, "first": entries[0].seq, "last": top.seq},
            )
            return
        trusted = TrustedHead(head.seq, head.hash, LEDGER_SOURCE) if head else None
        finding = TailFinding("foreign_tail", entries[0].seq, top.seq, trusted)
        logger.error(
            "chain entries appeared that no Takan process here wrote: %s",
            finding.describe(),
            extra={"case_id": case_id, "seq": finding.first_seq},
        )
        if consistent_prefix(entries, case_id, after=head) < len(entries):
            write_durably(self._flags_dir / case_id, finding.describe().encode("utf-8"))
            return
        state.head = top
        state.unflagged = finding

    async def append(
        self,
        case_id: str,
        kind: str,
        body: dict[str, Any],
        *,
        follows: int | Anything | None = ANYTHING,
    ) -> ChainEntry:
        """Chain an audit event for the case; durable on return, chained even if the caller is
        cancelled meanwhile. With ``follows`` (a seq, or None for "the first"), only if the last
        entry of ``kind`` for ``body["inspection_id"]`` in the chain, by any writer, is that one;
        else ``ChainMoved`` (a compare-and-append: two conclusions at once, on two nodes)."""
        return await self._unit(case_id, self._append(case_id, kind, body, follows))

    async def _append(
        self,
        case_id: str,
        kind: str,
        body: dict[str, Any],
        follows: int | Anything | None = ANYTHING,
    ) -> ChainEntry:
        state = await self._state(case_id)
        async with state.lock:
            return await self._commit(case_id, state, kind, body, follows=follows)

    async def _write_entry(
        self, case_id: str, state: CaseState, kind: str, body: dict[str, Any]
    ) -> ChainEntry:
        """Write the next chain entry durably to the spool (not yet queued) and make it the head."""
        at = utc_iso(self._wall())
        if state.head is not None and at < state.head.at:
            at = state.head.at  # the system clock stepped back: never let the chain do so
        entry = next_entry(state.head, case_id, kind, at, CLOCK_SOURCE, body)
        key = layout.chain_entry_key(case_id, entry.seq)
        data = canonical_json(entry.to_json())
        if self.shared_chain is not None:
            # Sequenced first: the database's copy is the commit point, the spool's follows.
            mac = entry_mac(self._mac_key, case_id, entry.seq, data)
            await self.shared_chain.commit(case_id, entry, data, mac)
            await self.run_blocking(write_durably, self._spool_path(key), data)
        else:
            record = HeadRecord(case_id, entry.seq, entry.hash, entry.prev)
            await self.run_blocking(self._write_entry_files, record, self._spool_path(key), data)
        state.written.append(key)
        state.head = entry
        state.note(entry)
        if kind not in UNSIGNED_TAIL_KINDS:
            state.signable_seq = entry.seq
        return entry

    def _write_entry_files(self, record: HeadRecord, path: Path, data: bytes) -> None:
        """The ledger first: a crash between the two leaves the ledger one entry ahead, which
        the next load recognises; the other way round would leave an entry it cannot vouch for."""
        self.ledger.record(record)
        write_durably(path, data)

    async def _commit(
        self,
        case_id: str,
        state: CaseState,
        kind: str,
        body: dict[str, Any],
        staged: Path | None = None,
        closed_at: float | None = None,
        follows: int | Anything | None = ANYTHING,
    ) -> ChainEntry:
        """Chain ``body``; if it records a staged object (``body["key"]``), move that into the
        spool after its entry is durable; queue the object, then the entry. Holds the lock.

        The durable entry is the commit: before it, nothing is queued and a staged object is not
        evidence; after it, the object is moved and queued whatever happens to this task.
        """
        async with self._exclusive(case_id, state):
            if self.fence is not None:
                await self.fence(case_id, kind, body)
            if follows is not ANYTHING:  # caught up with the others by now, holding the case
                inspection_id = str(body.get("inspection_id"))
                last = state.last_of.get((inspection_id, kind))
                if last != follows:
                    raise ChainMoved(kind, inspection_id, last)
            await self._chain_flag(case_id, state)
            if kind not in KEY_KINDS:
                await self._record_signing_key(case_id, state)
            entry = await self._write_entry(case_id, state, kind, body)
        try:
            if staged is not None:
                key = body["key"]
                state.objects[key] = body["sha256"]
                await self.move_committed(key, staged)
        finally:
            # Uploads run in order, so a stored chain entry marks its object stored.
            self._enqueue(layout.chain_entry_key(case_id, entry.seq), closed_at)
        return entry

    async def move_committed(self, key: str, staged: Path) -> None:
        """Move an object whose entry is already chained into the spool and queue it; if the
        move keeps failing it stays staged and the next start's recovery moves it."""
        delay = RETRY_FIRST_S
        for attempt in range(1, MOVE_ATTEMPTS + 1):
            try:
                await self.run_blocking(move_durably, staged, self._spool_path(key))
            except OSError as exc:
                logger.error(
                    "cannot move a committed object into the spool",
                    extra={"key": key, "attempt": attempt, "error": str(exc)},
                )
                if attempt < MOVE_ATTEMPTS:
                    await asyncio.sleep(delay)
                    delay *= 2
                continue
            self._enqueue(key, None)
            return

    def segment_record(
        self, case_id: str, inspection_id: str, finished: FinishedSegment
    ) -> SegmentRecord:
        closed = finished.closed
        tb: Fraction = closed.time_base
        return SegmentRecord(
            inspection_id=inspection_id,
            track=finished.track,
            seq=finished.seq,
            key=layout.segment_key(case_id, inspection_id, finished.track, finished.seq),
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

    async def store_segment(
        self, case_id: str, inspection_id: str, finished: FinishedSegment
    ) -> SegmentRecord:
        """Chain a closed segment's record, then move its file into the spool and queue both.

        The closed file itself is the staged object: until its entry is durable it stays where
        the recorder closed it (a failure here leaves it there, to be stored again or recovered).
        """
        closed_at = time.monotonic()
        record = self.segment_record(case_id, inspection_id, finished)
        return await self._unit(case_id, self._store_segment(case_id, record, finished, closed_at))

    async def _store_segment(
        self, case_id: str, record: SegmentRecord, finished: FinishedSegment, closed_at: float
    ) -> SegmentRecord:
        state = await self._state(case_id)
        async with state.lock:
            await self._commit(
                case_id, state, "segment", record.to_json(), finished.closed.path, closed_at
            )
            state.segments[record.inspection_id].append(record)
        return record

    async def store_object(
        self, case_id: str, key: str, data: bytes, kind: str, body: dict[str, Any]
    ) -> ChainEntry:
        """Stage ``data`` under ``key`` (in the case), chain ``body`` with the object's key,
        sha256 and size under ``kind``, and queue the upload; durable on return."""
        if not key.startswith(layout.case_prefix(case_id)) or ".." in key.split("/"):
            raise ValueError(f"key {key!r} is not under case {case_id!r}")
        reserved = {"key", "sha256", "size"} & set(body)
        if reserved:
            raise ValueError(f"body must not set {', '.join(sorted(reserved))}")
        sha256 = await self.run_blocking(lambda: hashlib.sha256(data).hexdigest())
        full = {**body, "key": key, "sha256": sha256, "size": len(data)}
        canonical_json(full)  # a body the chain would refuse must not leave an object behind
        return await self._unit(case_id, self._store_object(case_id, key, data, kind, full))

    async def _store_object(
        self, case_id: str, key: str, data: bytes, kind: str, body: dict[str, Any]
    ) -> ChainEntry:
        state = await self._state(case_id)
        staged = self.staging_dir / key
        await self.run_blocking(write_durably, staged, data)  # keys are unique: no lock needed
        async with state.lock:
            return await self._commit(case_id, state, kind, body, staged)

    async def read_object(self, key: str) -> bytes:
        """A stored object's bytes, from the spool while its upload is pending."""

        return await asyncio.to_thread(self._read_spooled_or_stored, key)

    def open_new_case(self, case_id: str) -> None:
        """A case the caller has just made (its ID new to the database): it starts empty here,
        without listing the store, so that a case can be opened while the object store is
        unreachable. Should the store hold objects of that ID after all (an insider's, or a
        database lost without reindexing), the first upload meets them and the case is flagged
        (``spool/conflicts/``), never overwritten."""
        self._cases.setdefault(case_id, CaseState(all_sequenced=self.shared_chain is not None))

    async def segments_recorded(self, case_id: str, inspection_id: str) -> dict[str, int]:
        """The seq of the last segment chained per track of the inspection, by any process
        sharing this archive (caught up first)."""
        state = await self._state(case_id)
        async with state.lock, self._exclusive(case_id, state):
            last: dict[str, int] = {}
            for record in state.segments.get(inspection_id, []):
                last[record.track] = max(last.get(record.track, -1), record.seq)
            return dict(sorted(last.items()))

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
        """Sign the chain head if an entry other than a timestamp was chained since the last
        checkpoint."""
        state = await self._state(case_id)
        async with state.lock:
            await self._checkpoint_locked(case_id, state)

    async def _checkpoint_locked(self, case_id: str, state: CaseState) -> None:
        if state.head is None:
            return
        async with self._exclusive(case_id, state):
            head = state.head
            unsigned = state.signable_seq > state.checkpointed_seq or state.unflagged is not None
            if head is None or not unsigned:
                return
            await self._chain_flag(case_id, state)
            await self._record_signing_key(case_id, state)
            head = state.head or head
            key = layout.checkpoint_key(case_id, head.seq)
            if not state.all_sequenced and await self.run_blocking(self._entry_written, key):
                # Another process signed this head already: its checkpoint stands.
                state.checkpointed_seq = head.seq
                return
            if self.shared_chain is not None:
                await self.shared_chain.signed(case_id, head.seq)
            at = utc_iso(self._wall())
            signed = sign_checkpoint(self.signer, case_id, head.seq, head.hash, at)
            data = canonical_json(signed)
            await asyncio.to_thread(write_durably, self._spool_path(key), data)
            self._enqueue(key, None)
            state.checkpointed_seq = head.seq
        self._announce_signed(case_id, key, data)

    def _announce_signed(self, case_id: str, key: str, data: bytes) -> None:
        for listener in self.signed_listeners:
            try:
                listener(case_id, key, data)
            except Exception:  # a listener's failure never fails a signature
                logger.exception("signed-document listener failed", extra={"key": key})

    async def settled_keys(self, case_id: str) -> list[str]:
        """Sign the chain head, wait until everything spooled is stored, and list the case's
        stored objects, holding the case's chain still meanwhile: the list is a consistent cut
        (the last listed entries are signed or timestamps, every object a listed entry names is
        listed).

        Waits as long as storage is down; callers bound it with a timeout.
        """
        state = await self._state(case_id)
        prefix = layout.case_prefix(case_id)
        async with state.lock:
            await self._checkpoint_locked(case_id, state)
            await self.drain()
            if self.shared_chain is not None:
                return await self._settled_sequenced(case_id, state)
            keys = await asyncio.to_thread(self.storage.list, prefix)
            if await asyncio.to_thread(self._adopt_foreign_entries, case_id, state, keys):
                await self._checkpoint_locked(case_id, state)  # chains the flag, then signs
                await self.drain()
                keys = await asyncio.to_thread(self.storage.list, prefix)
            return keys

    async def _settled_sequenced(self, case_id: str, state: CaseState) -> list[str]:
        """``settled_keys`` for a case other processes may append to: holding it in the
        database, sign what they appended since, wait for this process's uploads, store what is
        sequenced but not stored (the entries of a writer that died before its uploads), then
        list. What the other writers' spools still hold is not listed until they drain."""
        async with self._exclusive(case_id, state):
            keys: list[str] = []
            for _ in range(2):
                await self._checkpoint_locked(case_id, state)
                await self.drain()
                keys = await self.write_out(case_id)
                head = state.head
                found = await asyncio.to_thread(
                    self._adopt_foreign_entries, case_id, state, keys, DATABASE_SOURCE
                )
                if not found:
                    break
                await self._sequence_found(case_id, state, head)
            return keys

    async def _sequence_found(
        self, case_id: str, state: CaseState, after: ChainEntry | None
    ) -> None:
        """Sequence in the database the entries found in storage above ``after`` that no
        process sequenced (someone wrote them into the archive directly), so that the entry
        flagging them, the next, follows the database's head."""
        assert self.shared_chain is not None  # noqa: S101 - the caller checked
        assert state.head is not None  # noqa: S101 - it found entries above ``after``
        first = after.seq + 1 if after is not None else 0
        try:
            for seq in range(first, state.head.seq + 1):
                data = await self.run_blocking(
                    self.storage.get, layout.chain_entry_key(case_id, seq)
                )
                found = ChainEntry.from_json(json.loads(data))
                await self.shared_chain.adopt(case_id, found, data)
        except BaseException:
            state.head, state.unflagged = after, None  # found again at the next settle
            raise

    async def write_out(self, case_id: str) -> list[str]:
        """Store every chain entry the database holds for the case and storage does not (a
        writer that died between sequencing an entry and storing it), and the public keys its
        vouched key entries name; the stored keys."""
        assert self.shared_chain is not None  # noqa: S101 - the caller checked
        state = await self._state(case_id)
        sequenced = await self.shared_chain.load(case_id)
        return await self.run_blocking(self._store_sequenced, case_id, sequenced, set(state.keys))

    def _store_sequenced(
        self, case_id: str, sequenced: Sequenced, fingerprints: set[str]
    ) -> list[str]:
        prefix = layout.case_prefix(case_id)
        stored = set(self.storage.list(prefix))
        for row in sequenced.entries:
            key = layout.chain_entry_key(case_id, row.seq)
            if key in stored:
                continue
            # Stored even when no Takan process wrote it: the entries after it link to it, and
            # the first of them chained by a Takan process flags it (``_take_sequenced``).
            self.storage.put(key, row.data, hashlib.sha256(row.data).hexdigest())
            if mac_holds(self._mac_key, case_id, row):
                logger.info("chain entry written out", extra={"case_id": case_id, "key": key})
            else:
                logger.error(
                    "chain entry no Takan process wrote, written out as sequenced",
                    extra={"case_id": case_id, "key": key},
                )
        # The public key objects the case's vouched key entries name, should their writer not
        # have stored them: every node has the same key history, and a key's object name is its
        # fingerprint, the SHA-256 of its bytes.
        history = dict(
            zip(self.key_history.fingerprints, self.key_history.public_keys, strict=True)
        )
        for fingerprint in fingerprints & history.keys():
            key = layout.public_key_key(case_id, fingerprint)
            if key not in stored:
                public_key = history[fingerprint]
                self.storage.put(key, public_key, hashlib.sha256(public_key).hexdigest())
                logger.info("public key written out", extra={"case_id": case_id, "key": key})
        return self.storage.list(prefix)

    def _adopt_foreign_entries(
        self, case_id: str, state: CaseState, keys: list[str], source: str = LEDGER_SOURCE
    ) -> bool:
        """Entries that appeared in storage above this process's head while it held the case:
        someone else wrote them. If they continue the chain, the next entry links to them and
        flags them (True); if not, nothing can build on them, and the case is flagged."""
        head = state.head
        stored = [layout.parse_chain_entry_key(case_id, key) for key in keys]
        top = max((seq for seq in stored if seq is not None), default=-1)
        if head is None or top <= head.seq or state.unflagged is not None:
            return False
        entries: list[ChainEntry] = []
        try:
            for seq in range(head.seq + 1, top + 1):
                key = layout.chain_entry_key(case_id, seq)
                entries.append(self._read_entry(key))
        except (StorageError, ValueError) as exc:
            entries = []
            logger.error(
                "unreadable foreign chain entries", extra={"case_id": case_id, "error": exc}
            )
        trusted = TrustedHead(head.seq, head.hash, source)
        finding = TailFinding("foreign_tail", head.seq + 1, top, trusted)
        logger.error(
            "chain entries appeared that this server did not write: %s",
            finding.describe(),
            extra={"case_id": case_id, "seq": finding.first_seq},
        )
        if not entries or consistent_prefix(entries, case_id, after=head) < len(entries):
            write_durably(self._flags_dir / case_id, finding.describe().encode("utf-8"))
            return False
        state.head = entries[-1]
        state.unflagged = finding
        return True

    async def _chain_flag(self, case_id: str, state: CaseState) -> None:
        """Before building on a tail it cannot account for, say so in the chain: the next entry
        names the foreign (or missing) entries, so no later signature vouches for them."""
        finding = state.unflagged
        if finding is None:
            return
        state.unflagged = None
        try:
            entry = await self._write_entry(case_id, state, finding.kind, finding.body())
        except BaseException:
            state.unflagged = finding
            raise
        self._enqueue(layout.chain_entry_key(case_id, entry.seq), None)
        state.flags.append(entry)
        note = self._flags_dir / case_id
        await self.run_blocking(write_durably, note, finding.describe().encode("utf-8"))

    async def _record_signing_key(self, case_id: str, state: CaseState) -> None:
        """Chain this server's signing key into the case before it signs or appends anything:
        ``signing_key`` for the case's first key, else a ``key_rotated`` entry for each rotation
        from the case's last key to this one (each signed by the key before it). Holds the lock.
        """
        current = self.signer.fingerprint
        if current in state.keys:
            return
        if not state.keys:
            steps: list[tuple[str, bytes, dict[str, Any]]] = [
                ("signing_key", self.signer.public_key_bytes, {"fingerprint": current})
            ]
        else:
            last = max(state.keys, key=state.keys.__getitem__)
            steps = [
                (
                    "key_rotated",
                    rotation.public_key,
                    {
                        "fingerprint": rotation.fingerprint,
                        "previous": rotation.previous,
                        "at": rotation.at,
                        "signature": rotation.to_json()["signature"],
                    },
                )
                for rotation in self.key_history.rotations_after(last)
            ]
        for kind, public_key, body in steps:
            key = layout.public_key_key(case_id, body["fingerprint"])
            staged = self.staging_dir / key
            await self.run_blocking(write_durably, staged, public_key)
            full = {
                **body,
                "key": key,
                "sha256": hashlib.sha256(public_key).hexdigest(),
                "size": len(public_key),
            }
            entry = await self._commit(case_id, state, kind, full, staged)
            state.keys[body["fingerprint"]] = entry.seq

    async def finish_inspection(
        self, case_id: str, inspection_id: str, ended: dict[str, Any] | None = None
    ) -> Manifest:
        """Chain ``ended`` (its body, if given) and the inspection's signed manifest (Merkle root
        over its segments), as one unit a cancellation does not split, then checkpoint.

        Waits first for every store of the case under way, so the manifest covers each segment
        whose storing began before the inspection ended."""
        await self.settle(case_id)
        manifest = await self._unit(case_id, self._finish_inspection(case_id, inspection_id, ended))
        await self.checkpoint(case_id)
        return manifest

    async def _finish_inspection(
        self, case_id: str, inspection_id: str, ended: dict[str, Any] | None
    ) -> Manifest:
        state = await self._state(case_id)
        async with state.lock, self._exclusive(case_id, state):
            await self._chain_flag(case_id, state)
            await self._record_signing_key(case_id, state)
            if ended is not None:
                await self._commit(
                    case_id, state, "ended", {"inspection_id": inspection_id, **ended}
                )
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
            staged = self.staging_dir / key
            await self.run_blocking(write_durably, staged, data)
            # Chained, so that deleting the manifest is detected like any other object.
            body = {
                "inspection_id": inspection_id,
                "key": key,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
            await self._commit(case_id, state, "manifest", body, staged)
        self._announce_signed(case_id, key, data)
        return manifest

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            for case_id in list(self._cases):
                try:
                    await self.checkpoint(case_id)
                except Exception:
                    logger.exception("checkpoint failed", extra={"case_id": case_id})

    # crash recovery (recorder.recovery)

    async def recorded_sha256(self, case_id: str, key: str) -> str | None:
        """The SHA-256 the case's chain records for the object ``key``, if any entry does."""
        state = await self._state(case_id)
        return state.objects.get(key)

    async def recover(self) -> list[SegmentRecord]:
        from recorder.recovery import recover

        return await recover(self)

    async def salvage_segment(
        self,
        case_id: str,
        inspection_id: str,
        track: str,
        seq: int,
        path: Path,
        walls: tuple[float, float],
    ) -> bool:
        """Chain what can be read of a segment the recorder could not close (as partial)."""
        from recorder.recovery import salvage_segment

        record = await salvage_segment(self, case_id, inspection_id, track, seq, path, walls)
        return record is not None

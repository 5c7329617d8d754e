"""Verify a case's archive: every hash, link, signature, Merkle root, sequence and time.

The first failure is raised as IntegrityError naming the exact object key or chain entry.
Checks run cheapest first and in an order that names the changed object rather than one of
its victims: the chain and its signatures, then what the chain says, then the stored bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import Anchor, ChainEntry, chain_where, parse_utc, verify_entries
from recorder.conclusion import Conclusion, verify_conclusion
from recorder.errors import IntegrityError, ObjectNotFound, StorageError
from recorder.key_history import KEY_KINDS, KeyRotation
from recorder.manifest import (
    Checkpoint,
    Manifest,
    SegmentRecord,
    segment_order,
    verify_checkpoint,
    verify_manifest,
)
from recorder.marked_up import check_marked_up
from recorder.passkey import (
    PasskeyAssertion,
    PasskeyEnrolment,
    assertion_fault,
    user_verified,
)
from recorder.signing import PUBLIC_KEY_SIZE
from recorder.storage import Storage, check_recorded_digest, object_digest
from recorder.tail import FLAG_KINDS, flag_reason, flag_span
from recorder.timestamps import (
    TIMESTAMP_FAILED_KIND,
    UNSIGNED_TAIL_KINDS,
    TsaTrust,
    VerifiedTimestamp,
    verify_timestamps,
)

DEFAULT_WORKERS = 4
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A ``snapshot`` chain entry: where its picture is and what it hashes to."""

    seq: int
    at: str
    key: str | None
    snapshot_id: str | None = None
    sha256: str | None = None
    taken_at: str | None = None

    @classmethod
    def from_entry(cls, entry: ChainEntry) -> Snapshot:
        def text(name: str) -> str | None:
            value = entry.body.get(name)
            return value if isinstance(value, str) else None

        return cls(
            entry.seq, entry.at, text("key"), text("snapshot_id"), text("sha256"), text("taken_at")
        )


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What an intact case holds. ``duration_s`` sums, per inspection, its longest track's
    segment durations (server UTC times); ``bytes`` is the sum of segment sizes."""

    case_id: str
    inspections: int
    segments: int
    duration_s: float
    bytes: int
    first_utc: str
    last_utc: str
    key_fingerprint: str
    chain_entries: int
    snapshots: list[Snapshot] = field(default_factory=list)
    partial_segments: list[str] = field(default_factory=list)
    checkpoints: int = 0
    manifests: int = 0
    gaps: int = 0
    conclusions: int = 0
    key_fingerprints: list[str] = field(default_factory=list)
    storage: str = ""
    signers: list[KeyUse] = field(default_factory=list)
    pinned: bool = False  # True when the trusted keys were given, not taken from the chain
    timestamps: list[VerifiedTimestamp] = field(default_factory=list)
    timestamp_failures: int = 0  # ``timestamp_failed`` entries: a TSA that did not answer
    unsigned_timestamps: int = 0  # timestamp entries after the last signature
    inspector_signatures: list[InspectorSignature] = field(default_factory=list)
    node_losses: list[NodeLoss] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class InspectorSignature:
    """A conclusion signed by an inspector's passkey beside the archive key."""

    seq: int  # the conclusion's chain entry
    username: str
    fingerprint: str  # of the passkey's public key
    user_verified: bool


@dataclass(frozen=True, slots=True)
class NodeLoss:
    """A ``node_lost`` entry: the node that ran an inspection died or stalled, another took it
    over at the next epoch; what was recorded after its last chained segments was lost."""

    seq: int
    inspection_id: str
    node: str
    lost_epoch: int
    epoch: int
    taken_by: str
    last_segments: dict[str, int]
    how: str = "lapsed"  # lapsed (the node died or stalled) or released (it was shut down)

    @classmethod
    def from_entry(cls, entry: ChainEntry) -> NodeLoss:
        body = entry.body
        last = body.get("last_segments")

        def number(value: Any) -> int:
            return value if isinstance(value, int) and not isinstance(value, bool) else -1

        return cls(
            seq=entry.seq,
            inspection_id=str(body.get("inspection_id", "")),
            node=str(body.get("node", "")),
            lost_epoch=number(body.get("lost_epoch")),
            epoch=number(body.get("epoch")),
            taken_by=str(body.get("taken_by", "")),
            how="released" if body.get("how") == "released" else "lapsed",
            last_segments=(
                {str(k): number(v) for k, v in last.items()} if isinstance(last, dict) else {}
            ),
        )


@dataclass(frozen=True, slots=True)
class KeyUse:
    """A signing key of the case: where the chain records it and what it signed."""

    fingerprint: str
    recorded_by: int  # the seq of its signing_key or key_rotated entry
    checkpoints: int
    manifests: int
    conclusions: int
    rotated_from: str | None = None
    retired_at: int | None = None  # the seq of the rotation away from it


@dataclass(slots=True)
class _KeyRecord:
    seq: int
    kind: str
    rotated_from: str | None
    retired_at: int | None = None


@dataclass(frozen=True, slots=True)
class _Reference:
    """A stored object a chain entry vouches for."""

    seq: int
    key: str
    sha256: str
    size: int


@dataclass(slots=True)
class _Listing:
    chain: dict[int, str] = field(default_factory=dict)
    checkpoints: dict[int, str] = field(default_factory=dict)
    public_keys: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, str] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)


def _unreadable_segments(entries: list[ChainEntry]) -> set[tuple[str, str, int]]:
    """(inspection, track, seq) of each segment a ``recovered`` entry says was unreadable."""
    found = set()
    for entry in entries:
        body = entry.body
        if entry.kind == "recovered" and body.get("readable") is False:
            inspection_id, track, seq = (
                body.get("inspection_id"),
                body.get("track"),
                body.get("seq"),
            )
            if isinstance(inspection_id, str) and isinstance(track, str) and isinstance(seq, int):
                found.add((inspection_id, track, seq))
    return found


def _public_key_key(case_id: str, fingerprint: str) -> str | None:
    try:
        return layout.public_key_key(case_id, fingerprint)
    except ValueError:
        return None


def _recorded_sizes(entries: list[ChainEntry]) -> dict[str, int]:
    """The size each object reference (``key`` and ``sha256``) records, by key: the read limit
    of its hash. A malformed or repeated reference fails later, in ``_read_chain``."""
    sizes = {}
    for entry in entries:
        key, size = entry.body.get("key"), entry.body.get("size")
        if "sha256" in entry.body and isinstance(key, str) and isinstance(size, int):
            sizes[key] = max(size, 0)
    return sizes


def _inspector_signature(
    entry: ChainEntry, enrolled: Mapping[str, PasskeyEnrolment]
) -> InspectorSignature:
    """The passkey signature of a conclusion entry, checked against its enrolment."""
    where = chain_where(entry.seq)
    try:
        assertion = PasskeyAssertion.from_json(entry.body["passkey"])
    except (ValueError, TypeError) as exc:
        raise IntegrityError(where, f"bad passkey assertion: {exc}") from exc
    enrolment = enrolled.get(assertion.credential_id)
    if enrolment is None:
        raise IntegrityError(
            where,
            f"the conclusion's passkey {assertion.credential_id} is not enrolled by an earlier"
            " chain entry",
        )
    by = entry.body.get("by")
    if enrolment.username != by:
        raise IntegrityError(
            where, f"the conclusion by {by} is signed with the passkey of {enrolment.username}"
        )
    fault = assertion_fault(enrolment, assertion, Conclusion.from_body(entry.body).message())
    if fault is not None:
        raise IntegrityError(where, fault)
    return InspectorSignature(
        entry.seq, enrolment.username, enrolment.fingerprint, user_verified(assertion)
    )


def _guarded(fn: Callable[[T], R], item: T) -> R | Exception:
    """``fn(item)``, or the storage failure it raised."""
    try:
        return fn(item)
    except (StorageError, OSError) as exc:
        return exc


def verify_case(
    storage: Storage,
    case_id: str,
    *,
    require_signed_tail: bool = True,
    trusted_keys: Collection[str] | None = None,
    workers: int = DEFAULT_WORKERS,
    tsa_trust: TsaTrust | None = None,
    known_digests: Mapping[str, tuple[str, int]] | None = None,
) -> VerifyReport:
    """Verify everything stored for ``case_id``; IntegrityError on the first failure.

    ``trusted_keys``: fingerprints (``sha256:…``) of the server's key history; keys the chain
    rotates to from a trusted key (a ``key_rotated`` entry signed by it) are trusted too. None
    trusts the first key the chain records, and its rotations (the report names every key, to
    compare with ``GET /api/keys``). Every signature (checkpoint, manifest, conclusion) must be
    by a trusted key that the chain recorded at or before what it signs and had not rotated
    away from. With ``require_signed_tail`` every chain entry but timestamps must be
    covered by a checkpoint or manifest. ``tsa_trust``: the certificates timestamp tokens are
    checked against (a token they do not cover is reported as not checked).
    ``known_digests``: (SHA-256, size) by key, already computed from these same stored bytes
    (an export's members, hashed for its package index), so they are not read twice.
    """
    layout.check_case_id(case_id)
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        verifier = _Verifier(storage, case_id, pool, tsa_trust, known_digests or {})
        return verifier.run(require_signed_tail, trusted_keys)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a failure need not hash the rest


class _Verifier:
    def __init__(
        self,
        storage: Storage,
        case_id: str,
        pool: ThreadPoolExecutor,
        tsa_trust: TsaTrust | None = None,
        known_digests: Mapping[str, tuple[str, int]] | None = None,
    ) -> None:
        self.storage = storage
        self.known_digests = known_digests or {}
        self.case_id = case_id
        self.pool = pool
        self.tsa_trust = tsa_trust
        self._digests: dict[str, Future[tuple[str, int] | Exception]] = {}
        self._parsed_manifests: dict[str, Manifest] = {}

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R | Exception]:
        """``fn`` over ``items`` on the pool, in order; a failure is yielded, not raised."""
        return self.pool.map(partial(_guarded, fn), items)

    def _digest(self, key: str, recorded_size: int) -> tuple[str, int]:
        """SHA-256 and size, reading at most ``recorded_size`` + 1 bytes."""
        known = self.known_digests.get(key)
        return known or object_digest(self.storage, key, limit=recorded_size + 1)

    def run(self, require_signed_tail: bool, trusted_keys: Collection[str] | None) -> VerifyReport:
        listing = self._list()
        entries = self._load_chain(listing)
        # Hash the recorded segments on the pool while this thread checks the chain and the
        # signatures; an unrecorded one fails before its bytes matter.
        sizes = _recorded_sizes(entries)
        self._digests = {
            key: self.pool.submit(_guarded, partial(self._digest, recorded_size=sizes[key]), key)
            for key in listing.segments
            if key in sizes
        }
        public_keys = self._load_public_keys(listing)
        documents = self._load_documents(listing)
        checkpoints, manifests, used_keys = self._verify_signatures(documents, public_keys)
        key_records = self._key_records(entries, public_keys)
        trusted = self._trusted(key_records, trusted_keys)
        self._check_signers(checkpoints, manifests, key_records, trusted, entries)
        anchors = [Anchor(c.seq, c.head, key) for key, c in checkpoints.items()]
        anchors += [
            Anchor(m.chain_head_seq, m.chain_head, key)
            for key, m in manifests.items()
            if m.chain_head_seq >= 0
        ]
        verify_entries(entries, case_id=self.case_id, anchors=anchors)
        signed_by = {a.seq: a for a in anchors}
        latest = max(signed_by, default=None)
        tail = [e for e in entries if latest is None or e.seq > latest]
        unsigned = [e.seq for e in tail if e.kind not in UNSIGNED_TAIL_KINDS]
        if require_signed_tail and unsigned:
            raise IntegrityError(
                chain_where(unsigned[-1]),
                "not covered by a signed checkpoint or manifest (the last signed entry is "
                + ("none" if latest is None else f"{latest}")
                + ")",
            )
        self._check_flags(entries)
        inspector_signatures = self._check_conclusions(entries, public_keys, key_records, trusted)
        segments, references = self._read_chain(entries)
        self._check_tracks(segments, _unreadable_segments(entries))
        check_marked_up(self.case_id, entries)
        referenced = {ref.key for ref in references}
        recorded_only = [*listing.public_keys.values(), *listing.manifests]
        for key in [*listing.segments, *listing.others, *recorded_only]:
            if key not in referenced:
                raise IntegrityError(key, "stored object is not referenced by any chain entry")
        for key, manifest in manifests.items():
            self._check_manifest(key, manifest, segments)
        self._check_objects(references, {*listing.segments, *listing.others, *recorded_only})
        signed_documents = {key: canonical_json(value) for key, (_, value, _) in documents.items()}
        timestamps = verify_timestamps(
            self.case_id, entries, signed_documents, self.storage.get, self.tsa_trust
        )
        report = self._report(entries, segments, checkpoints, manifests, signed_by, used_keys)
        signers = self._key_uses(key_records, checkpoints, manifests, entries)
        return dataclasses.replace(
            report,
            signers=signers,
            pinned=trusted_keys is not None,
            timestamps=timestamps,
            timestamp_failures=sum(1 for e in entries if e.kind == TIMESTAMP_FAILED_KIND),
            unsigned_timestamps=len(tail) - len(unsigned),
            inspector_signatures=inspector_signatures,
        )

    # listing and loading

    def _list(self) -> _Listing:
        prefix = layout.case_prefix(self.case_id)
        try:
            keys = self.storage.list(prefix)
        except StorageError as exc:
            raise IntegrityError(prefix, f"cannot list: {exc}") from exc
        if not keys:
            raise IntegrityError(prefix, "no objects: unknown case")
        listing = _Listing()
        case = self.case_id
        for key in keys:
            if (seq := layout.parse_chain_entry_key(case, key)) is not None:
                listing.chain[seq] = key
            elif (seq := layout.parse_checkpoint_key(case, key)) is not None:
                listing.checkpoints[seq] = key
            elif (fingerprint := layout.parse_public_key_key(case, key)) is not None:
                listing.public_keys["sha256:" + fingerprint] = key
            elif (inspection_id := layout.parse_manifest_key(case, key)) is not None:
                listing.manifests[key] = inspection_id
            elif layout.parse_segment_key(case, key) is not None:
                listing.segments.append(key)
            else:
                listing.others.append(key)
        return listing

    def _get(self, key: str, where: str | None = None) -> bytes:
        try:
            return self.storage.get(key)
        except ObjectNotFound as exc:
            raise IntegrityError(where or key, f"missing ({key})") from exc
        except StorageError as exc:
            raise IntegrityError(where or key, f"unreadable: {exc}") from exc

    def _parse_canonical(self, raw: bytes, where: str) -> Any:
        try:
            value = parse_json(raw)
            canonical = canonical_json(value)
        except ValueError as exc:
            raise IntegrityError(where, str(exc)) from exc
        if canonical != raw:
            raise IntegrityError(where, "not in canonical JSON form")
        return value

    def _load_chain(self, listing: _Listing) -> list[ChainEntry]:
        if not listing.chain:
            raise IntegrityError(chain_where(0), "missing: the case has no chain")
        for seq in range(max(listing.chain) + 1):
            if seq not in listing.chain:
                missing = layout.chain_entry_key(self.case_id, seq)
                raise IntegrityError(chain_where(seq), f"missing ({missing} not found)")
        seqs = sorted(listing.chain)
        raws = list(self._map(self.storage.get, [listing.chain[s] for s in seqs]))
        entries = []
        for seq, raw in zip(seqs, raws, strict=True):
            where = chain_where(seq)
            if isinstance(raw, Exception):
                raise IntegrityError(where, f"unreadable: {raw}")
            try:
                entries.append(ChainEntry.from_json(self._parse_canonical(raw, where)))
            except ValueError as exc:
                raise IntegrityError(where, f"malformed: {exc}") from exc
        return entries

    def _load_public_keys(self, listing: _Listing) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for fingerprint, key in listing.public_keys.items():
            raw = self._get(key)
            if len(raw) != PUBLIC_KEY_SIZE:
                raise IntegrityError(key, f"{len(raw)} bytes, not a raw Ed25519 public key")
            actual = "sha256:" + hashlib.sha256(raw).hexdigest()
            if actual != fingerprint:
                raise IntegrityError(key, f"holds key {actual}, not the one its name says")
            found[fingerprint] = raw
        return found

    def _load_documents(self, listing: _Listing) -> dict[str, tuple[str, Any, str]]:
        """Signed documents by key: (type, parsed JSON, the signing key fingerprint it names)."""
        documents: dict[str, tuple[str, Any, str]] = {}
        for key in listing.checkpoints.values():
            value = self._parse_canonical(self._get(key), key)
            try:
                fingerprint = Checkpoint.from_json(value["checkpoint"]).key_fingerprint
            except (ValueError, TypeError, KeyError) as exc:
                raise IntegrityError(key, f"not a valid signed checkpoint: {exc}") from exc
            documents[key] = ("checkpoint", value, fingerprint)
        for key in listing.manifests:
            value = self._parse_canonical(self._get(key), key)
            try:
                parsed = Manifest.from_signed_json(value)
            except (ValueError, TypeError) as exc:
                raise IntegrityError(key, f"not a valid signed manifest: {exc}") from exc
            self._parsed_manifests[key] = parsed  # its signature is checked once its key is
            documents[key] = ("manifest", value, parsed.key_fingerprint)
        return documents

    def _verify_signatures(
        self, documents: dict[str, tuple[str, Any, str]], public_keys: dict[str, bytes]
    ) -> tuple[dict[str, Checkpoint], dict[str, Manifest], set[str]]:
        uses = Counter(fingerprint for _, _, fingerprint in documents.values())
        checkpoints: dict[str, Checkpoint] = {}
        manifests: dict[str, Manifest] = {}
        for key, (kind, value, fingerprint) in sorted(documents.items()):
            public = public_keys.get(fingerprint)
            if public is None:
                key_object = layout.public_key_key(self.case_id, fingerprint)
                if uses[fingerprint] > 1:
                    raise IntegrityError(
                        key_object, f"missing; {uses[fingerprint]} documents are signed by it"
                    )
                raise IntegrityError(key, f"names signing key {fingerprint}, absent ({key_object})")
            if kind == "checkpoint":
                checkpoint = verify_checkpoint(public, value, key)
                stored_at = layout.parse_checkpoint_key(self.case_id, key)
                if checkpoint.case_id != self.case_id or checkpoint.seq != stored_at:
                    raise IntegrityError(
                        key, f"signs case {checkpoint.case_id} seq {checkpoint.seq}, not this key's"
                    )
                checkpoints[key] = checkpoint
            else:
                manifest = verify_manifest(public, value, key, self._parsed_manifests.get(key))
                stored_for = layout.parse_manifest_key(self.case_id, key)
                if manifest.case_id != self.case_id or manifest.inspection_id != stored_for:
                    raise IntegrityError(
                        key,
                        f"is for case {manifest.case_id} inspection {manifest.inspection_id},"
                        " not this key's",
                    )
                manifests[key] = manifest
        return checkpoints, manifests, set(uses)

    # what the chain says

    def _read_chain(
        self, entries: list[ChainEntry]
    ) -> tuple[dict[tuple[str, str], list[tuple[int, SegmentRecord]]], list[_Reference]]:
        """Segment records per (inspection, track) in chain order, and every object reference."""
        segments: dict[tuple[str, str], list[tuple[int, SegmentRecord]]] = defaultdict(list)
        references: list[_Reference] = []
        seen: dict[str, int] = {}
        case_prefix = layout.case_prefix(self.case_id)
        for entry in entries:
            where = chain_where(entry.seq)
            body = entry.body
            if entry.kind == "segment":
                try:
                    record = SegmentRecord.from_json(body)
                except (ValueError, TypeError) as exc:
                    raise IntegrityError(where, f"bad segment record: {exc}") from exc
                if record.case_id != self.case_id:
                    raise IntegrityError(where, f"segment {record.key} is outside this case")
                segments[(record.inspection_id, record.track)].append((entry.seq, record))
            elif not ("key" in body and "sha256" in body):
                continue
            key, sha256, size = body.get("key"), body.get("sha256"), body.get("size")
            if not (
                isinstance(key, str)
                and key.startswith(case_prefix)
                and isinstance(sha256, str)
                and layout.HEX64_PATTERN.fullmatch(sha256)
                and isinstance(size, int)
                and not isinstance(size, bool)
                and size >= 0
            ):
                raise IntegrityError(
                    where, "object reference needs key (in this case), sha256, size"
                )
            if any(
                parse(self.case_id, key) is not None
                for parse in (layout.parse_chain_entry_key, layout.parse_checkpoint_key)
            ) or (layout.parse_public_key_key(self.case_id, key) is not None) != (
                entry.kind in KEY_KINDS
            ):
                raise IntegrityError(where, f"refers to {key}, which is not a recorded object")
            if key in seen:
                raise IntegrityError(
                    where, f"refers to {key}, already recorded by entry {seen[key]}"
                )
            seen[key] = entry.seq
            references.append(_Reference(entry.seq, key, sha256, size))
        return segments, references

    def _check_flags(self, entries: list[ChainEntry]) -> None:
        """A ``foreign_tail`` or ``chain_cut`` entry is Takan saying the case is not intact:
        entries it did not write, or entries it wrote that are gone."""
        for entry in entries:
            if entry.kind not in FLAG_KINDS:
                continue
            raise IntegrityError(
                flag_span(entry.body),
                f"{flag_reason(entry.kind, entry.body)} (flagged by chain entry {entry.seq},"
                f" {entry.kind})",
            )

    # signing keys: what the chain records, and whom to trust

    def _key_records(
        self, entries: list[ChainEntry], public_keys: dict[str, bytes]
    ) -> dict[str, _KeyRecord]:
        """Each key a ``signing_key`` or ``key_rotated`` entry records, in chain order. A
        rotation must come from the key in use and carry that key's signature."""
        records: dict[str, _KeyRecord] = {}
        current: str | None = None
        for entry in entries:
            if entry.kind not in KEY_KINDS:
                continue
            where = chain_where(entry.seq)
            body = entry.body
            fingerprint = body.get("fingerprint")
            if not isinstance(fingerprint, str) or body.get("key") != _public_key_key(
                self.case_id, fingerprint
            ):
                raise IntegrityError(where, "a key entry names its fingerprint and key object")
            if fingerprint in records:
                raise IntegrityError(where, f"records {fingerprint} again")
            previous: str | None = None
            if entry.kind == "key_rotated":
                previous = body.get("previous")
                if previous != current or current is None:
                    raise IntegrityError(
                        where, f"rotates from {previous}, but the key in use is {current}"
                    )
                public = public_keys.get(fingerprint)
                old = public_keys.get(current)
                if public is None or old is None:
                    raise IntegrityError(where, "the keys of this rotation are not stored")
                try:
                    rotation = KeyRotation.from_json(
                        {
                            "previous": previous,
                            "fingerprint": fingerprint,
                            "public_key": base64.b64encode(public).decode("ascii"),
                            "at": body.get("at"),
                            "signature": body.get("signature"),
                        }
                    )
                except ValueError as exc:
                    raise IntegrityError(where, f"bad key rotation: {exc}") from exc
                if not rotation.verifies_with(old):
                    raise IntegrityError(where, f"the rotation is not signed by {previous}")
                records[current].retired_at = entry.seq
            elif current is not None:
                raise IntegrityError(
                    where, f"records a second signing key {fingerprint} without a rotation"
                )
            records[fingerprint] = _KeyRecord(entry.seq, entry.kind, previous)
            current = fingerprint
        return records

    def _trusted(
        self, records: dict[str, _KeyRecord], trusted_keys: Collection[str] | None
    ) -> set[str]:
        """The given keys (or the chain's first key), and every key rotated to from one."""
        if trusted_keys is not None:
            trusted = set(trusted_keys)
        else:
            trusted = {f for f, r in records.items() if r.kind == "signing_key"}
        for fingerprint, record in records.items():  # chain order: rotations follow their source
            if record.rotated_from in trusted:
                trusted.add(fingerprint)
        return trusted

    def _signer_fault(
        self,
        fingerprint: str,
        seq: int,
        records: dict[str, _KeyRecord],
        trusted: set[str],
        inclusive: bool,
    ) -> str | None:
        """Why a signature by ``fingerprint`` over chain position ``seq`` does not count."""
        record = records.get(fingerprint)
        if record is None:
            return f"signed by {fingerprint}, which no chain entry records"
        if fingerprint not in trusted:
            return f"signed by {fingerprint}, which is not a trusted signing key of this case"
        if record.seq > seq or (record.seq == seq and not inclusive):
            return f"signed by {fingerprint}, which chain entry {record.seq} records only later"
        if record.retired_at is not None and seq >= record.retired_at:
            return (
                f"signed by {fingerprint} after chain entry {record.retired_at} rotated away"
                " from it"
            )
        return None

    def _check_signers(
        self,
        checkpoints: dict[str, Checkpoint],
        manifests: dict[str, Manifest],
        records: dict[str, _KeyRecord],
        trusted: set[str],
        entries: list[ChainEntry],
    ) -> None:
        signed: list[tuple[str, str, int]] = [
            (key, c.key_fingerprint, c.seq) for key, c in checkpoints.items()
        ]
        signed += [(key, m.key_fingerprint, m.chain_head_seq) for key, m in manifests.items()]
        heads = {key: (c.key_fingerprint, c.seq, c.head) for key, c in checkpoints.items()}
        heads |= {
            key: (m.key_fingerprint, m.chain_head_seq, m.chain_head) for key, m in manifests.items()
        }
        for fingerprint in sorted({fingerprint for _, fingerprint, _ in signed}):
            if fingerprint in records and fingerprint not in trusted:
                # A key the chain records but nobody trusts: the whole case is in doubt.
                raise IntegrityError(
                    layout.public_key_key(self.case_id, fingerprint),
                    f"{fingerprint} is not one of the trusted signing keys",
                )
        for key, fingerprint, seq in sorted(signed):
            fault = self._signer_fault(fingerprint, seq, records, trusted, inclusive=True)
            if fault is not None:
                if fingerprint not in records:
                    self._check_key_not_misrecorded(entries, fingerprint)
                if fingerprint not in records and fingerprint in trusted:
                    # A key the verifier was given signed it, so the document holds: if the
                    # chain contradicts what such keys signed, the chain is what changed.
                    anchors = [
                        Anchor(at, head, source)
                        for source, (signer, at, head) in heads.items()
                        if signer in trusted
                        and at >= 0
                        and (
                            signer not in records
                            or self._signer_fault(signer, at, records, trusted, True) is None
                        )
                    ]
                    verify_entries(entries, case_id=self.case_id, anchors=anchors)
                raise IntegrityError(key, fault)

    def _check_key_not_misrecorded(self, entries: list[ChainEntry], fingerprint: str) -> None:
        """A signer's key object recorded by an entry of another kind: that entry was changed
        (its kind edited), not the documents the key signs."""
        key_object = _public_key_key(self.case_id, fingerprint)
        for entry in entries:
            if entry.kind not in KEY_KINDS and entry.body.get("key") == key_object:
                raise IntegrityError(
                    chain_where(entry.seq),
                    f"refers to {key_object}, which is not a recorded object",
                )

    def _check_conclusions(
        self,
        entries: list[ChainEntry],
        public_keys: dict[str, bytes],
        records: dict[str, _KeyRecord],
        trusted: set[str],
    ) -> list[InspectorSignature]:
        """Every conclusion carries a valid signature by a trusted, recorded key in use; one
        signed with a passkey too, by the passkey an earlier ``passkey_enrolled`` entry records
        for the user it names. The passkey signatures, in chain order."""
        enrolled: dict[str, PasskeyEnrolment] = {}
        signatures: list[InspectorSignature] = []
        for entry in entries:
            where = chain_where(entry.seq)
            if entry.kind == "passkey_enrolled":
                self._enrol(entry, enrolled)
                continue
            if entry.kind != "conclusion":
                continue
            fingerprint = entry.body.get("key_fingerprint")
            public = public_keys.get(fingerprint) if isinstance(fingerprint, str) else None
            if public is None or not isinstance(fingerprint, str):
                raise IntegrityError(where, f"conclusion names signing key {fingerprint}, absent")
            fault = self._signer_fault(fingerprint, entry.seq, records, trusted, inclusive=False)
            if fault is not None:
                raise IntegrityError(where, f"the conclusion is {fault}")
            if not verify_conclusion(public, entry.body):
                raise IntegrityError(where, "the conclusion's signature does not verify")
            if "passkey" in entry.body:
                signatures.append(_inspector_signature(entry, enrolled))
        return signatures

    @staticmethod
    def _enrol(entry: ChainEntry, enrolled: dict[str, PasskeyEnrolment]) -> None:
        where = chain_where(entry.seq)
        try:
            enrolment = PasskeyEnrolment.from_body(entry.body)
        except (ValueError, TypeError) as exc:
            raise IntegrityError(where, f"bad passkey enrolment: {exc}") from exc
        earlier = enrolled.get(enrolment.credential_id)
        if earlier is not None and earlier != enrolment:
            raise IntegrityError(
                where, f"enrols passkey {enrolment.credential_id} again, with other values"
            )
        enrolled[enrolment.credential_id] = enrolment

    def _key_uses(
        self,
        records: dict[str, _KeyRecord],
        checkpoints: dict[str, Checkpoint],
        manifests: dict[str, Manifest],
        entries: list[ChainEntry],
    ) -> list[KeyUse]:
        conclusions = Counter(
            e.body.get("key_fingerprint") for e in entries if e.kind == "conclusion"
        )
        by_checkpoints = Counter(c.key_fingerprint for c in checkpoints.values())
        by_manifests = Counter(m.key_fingerprint for m in manifests.values())
        return [
            KeyUse(
                fingerprint,
                record.seq,
                by_checkpoints[fingerprint],
                by_manifests[fingerprint],
                conclusions[fingerprint],
                record.rotated_from,
                record.retired_at,
            )
            for fingerprint, record in records.items()
        ]

    def _check_tracks(
        self,
        segments: dict[tuple[str, str], list[tuple[int, SegmentRecord]]],
        unreadable: set[tuple[str, str, int]],
    ) -> None:
        """Per inspection and track: seqs 0, 1, 2, … in chain order, times never going back; a
        seq may be skipped only where a ``recovered`` entry says that segment was unreadable."""
        for (inspection_id, track), records in segments.items():
            previous: SegmentRecord | None = None
            expected = 0
            for seq, record in records:
                where = chain_where(seq)
                while (inspection_id, track, expected) in unreadable and record.seq != expected:
                    expected += 1
                if record.seq != expected:
                    raise IntegrityError(
                        where, f"{track} segment seq {record.seq}, expected {expected}"
                    )
                if previous is not None and (
                    parse_utc(record.start_utc) < parse_utc(previous.start_utc)
                    or parse_utc(record.end_utc) < parse_utc(previous.end_utc)
                ):
                    raise IntegrityError(
                        where,
                        f"{track} segment {record.seq} starts or ends before segment "
                        f"{previous.seq}",
                    )
                previous = record
                expected += 1

    def _check_manifest(
        self,
        key: str,
        manifest: Manifest,
        segments: dict[tuple[str, str], list[tuple[int, SegmentRecord]]],
    ) -> None:
        chained = [
            (seq, record)
            for (inspection_id, _), records in segments.items()
            if inspection_id == manifest.inspection_id
            for seq, record in records
        ]
        for seq, record in chained:
            if seq > manifest.chain_head_seq:
                raise IntegrityError(
                    key, f"chain entry {seq} adds segment {record.key} after this manifest"
                )
        ordered = sorted((record for _, record in chained), key=segment_order)
        if [r.to_json() for r in ordered] != [r.to_json() for r in manifest.segments]:
            listed = {r.key for r in manifest.segments}
            in_chain = {r.key for r in ordered}
            only_listed = sorted(listed - in_chain)
            only_chained = sorted(in_chain - listed)
            raise IntegrityError(
                key,
                "segments differ from the chain's"
                + (f"; not in the chain: {only_listed[0]}" if only_listed else "")
                + (f"; not in the manifest: {only_chained[0]}" if only_chained else ""),
            )

    # the stored bytes

    def _check_objects(self, references: list[_Reference], stored: set[str]) -> None:
        later = [r for r in references if r.key in stored and r.key not in self._digests]
        digests = {key: future.result() for key, future in self._digests.items()}
        read = self._map(lambda ref: self._digest(ref.key, ref.size), later)
        digests.update(zip([r.key for r in later], read, strict=True))

        def absent(key: str) -> bool:
            return isinstance(digests.get(key, ObjectNotFound(key)), ObjectNotFound)

        for position, ref in enumerate(references):
            by = f"recorded by chain entry {ref.seq}"
            result = digests.get(ref.key)
            if result is None or isinstance(result, ObjectNotFound):
                missing = tuple((r.key, r.seq) for r in references[position:] if absent(r.key))
                raise IntegrityError(ref.key, f"missing ({by})", missing)
            if isinstance(result, Exception):
                raise IntegrityError(ref.key, f"unreadable: {result}")
            sha256, size = result
            recorded = f"chain entry {ref.seq} recorded"
            check_recorded_digest(ref.key, sha256, size, ref.sha256, ref.size, recorded)

    def _report(
        self,
        entries: list[ChainEntry],
        segments: dict[tuple[str, str], list[tuple[int, SegmentRecord]]],
        checkpoints: dict[str, Checkpoint],
        manifests: dict[str, Manifest],
        signed_by: dict[int, Anchor],
        used_keys: set[str],
    ) -> VerifyReport:
        per_inspection: dict[str, float] = defaultdict(float)
        records = [record for track in segments.values() for _, record in track]
        for (inspection_id, _), track in segments.items():
            length = sum(record.duration_s for _, record in track)
            per_inspection[inspection_id] = max(per_inspection[inspection_id], length)
        inspections = set(per_inspection) | {m.inspection_id for m in manifests.values()}
        tail_signer = ""
        if signed_by:
            anchor = signed_by[max(signed_by)]
            document = checkpoints.get(anchor.source) or manifests.get(anchor.source)
            tail_signer = document.key_fingerprint if document is not None else ""
        return VerifyReport(
            case_id=self.case_id,
            inspections=len(inspections),
            segments=len(records),
            duration_s=round(sum(per_inspection.values()), 3),
            bytes=sum(record.size for record in records),
            first_utc=entries[0].at,
            last_utc=entries[-1].at,
            key_fingerprint=tail_signer,
            chain_entries=len(entries),
            snapshots=[Snapshot.from_entry(e) for e in entries if e.kind == "snapshot"],
            conclusions=sum(1 for e in entries if e.kind == "conclusion"),
            partial_segments=sorted(record.key for record in records if record.partial),
            checkpoints=len(checkpoints),
            manifests=len(manifests),
            gaps=sum(1 for e in entries if e.kind == "gap"),
            node_losses=[NodeLoss.from_entry(e) for e in entries if e.kind == "node_lost"],
            key_fingerprints=sorted(used_keys),
            storage=self.storage.describe(),
        )

"""The per-case hash chain: every segment record and audit event, in order, each bound to the last.

``hash = SHA-256(bytes.fromhex(prev) || canonical_json(entry without "hash"))``; the first entry's
``prev`` is 64 zeros. Signed checkpoints and manifests name a chain head (seq and hash); those
are the *anchors* that let verification say which entry was changed, not only that one was.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recorder.canonical import canonical_json, parse_json
from recorder.errors import IntegrityError
from recorder.layout import MAX_CHAIN_SEQ, check_case_id, check_hex64

GENESIS = "0" * 64
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
UTC_PATTERN = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]{1,6}))?Z"
)
ENTRY_FIELDS = frozenset({"case_id", "seq", "kind", "at", "clock", "body", "prev", "hash"})
MAX_CLOCK_LENGTH = 128


def parse_utc(text: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (UTC, to microseconds); ``ValueError`` if not."""
    match = UTC_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"time {text!r} is not UTC ISO 8601 like 2026-01-31T08:00:00.000Z")
    return datetime.fromisoformat(text)  # the pattern admits only what this parses exactly


def chain_where(seq: int) -> str:
    """How an IntegrityError names a chain position."""
    return f"chain entry {seq}"


def entry_hash(prev_hex: str, payload: Mapping[str, Any]) -> str:
    """SHA-256 of the previous hash's 32 bytes followed by the entry's canonical JSON."""
    return hashlib.sha256(bytes.fromhex(prev_hex) + canonical_json(dict(payload))).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    case_id: str
    seq: int
    kind: str
    at: str
    clock: str
    body: dict[str, Any]
    prev: str
    hash: str

    def __post_init__(self) -> None:
        check_case_id(self.case_id)
        if isinstance(self.seq, bool) or not isinstance(self.seq, int):
            raise ValueError(f"seq {self.seq!r} is not an integer")
        if not 0 <= self.seq <= MAX_CHAIN_SEQ:
            raise ValueError(f"seq {self.seq} is outside 0..{MAX_CHAIN_SEQ}")
        if not isinstance(self.kind, str) or not KIND_PATTERN.fullmatch(self.kind):
            raise ValueError(f"kind {self.kind!r} must match {KIND_PATTERN.pattern}")
        parse_utc(self.at)
        if not isinstance(self.clock, str) or not 0 < len(self.clock) <= MAX_CLOCK_LENGTH:
            raise ValueError(f"clock must be a source name of 1-{MAX_CLOCK_LENGTH} characters")
        if not isinstance(self.body, dict):
            raise ValueError("body must be a JSON object")
        canonical_json(self.body)
        check_hex64(self.prev, "prev")
        check_hex64(self.hash, "hash")

    def payload(self) -> dict[str, Any]:
        """The hashed part: every field but ``hash``."""
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "kind": self.kind,
            "at": self.at,
            "clock": self.clock,
            "body": self.body,
            "prev": self.prev,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.payload(), "hash": self.hash}

    def computed_hash(self) -> str:
        return entry_hash(self.prev, self.payload())

    @classmethod
    def from_json(cls, obj: Any) -> ChainEntry:
        """Build from a parsed JSON object; ``ValueError`` on any missing, extra or bad field."""
        if not isinstance(obj, dict):
            raise ValueError("a chain entry must be a JSON object")
        if set(obj) != ENTRY_FIELDS:
            missing = sorted(ENTRY_FIELDS - set(obj))
            extra = sorted(set(obj) - ENTRY_FIELDS)
            raise ValueError(f"chain entry fields wrong: missing {missing}, unexpected {extra}")
        for name in ("case_id", "kind", "at", "clock", "prev", "hash"):
            if not isinstance(obj[name], str):
                raise ValueError(f"{name} must be a string")
        return cls(
            case_id=obj["case_id"],
            seq=obj["seq"],
            kind=obj["kind"],
            at=obj["at"],
            clock=obj["clock"],
            body=obj["body"],
            prev=obj["prev"],
            hash=obj["hash"],
        )


def next_entry(
    head: ChainEntry | None, case_id: str, kind: str, at: str, clock: str, body: Mapping[str, Any]
) -> ChainEntry:
    """The entry that follows ``head`` (None: the first entry of the case).

    The body is copied through canonical JSON, so later changes to the caller's dict cannot
    reach the entry. ``ValueError`` if ``at`` is earlier than the head's time (a stepped-back
    clock) or the case differs: the chain never holds what verification would reject.
    """
    copied = parse_json(canonical_json(dict(body)))
    if head is None:
        seq, prev = 0, GENESIS
    else:
        if head.case_id != case_id:
            raise ValueError(f"head belongs to case {head.case_id!r}, not {case_id!r}")
        if parse_utc(at) < parse_utc(head.at):
            raise ValueError(f"time {at} is earlier than the chain head's {head.at}")
        seq, prev = head.seq + 1, head.hash
    payload = {
        "case_id": case_id,
        "seq": seq,
        "kind": kind,
        "at": at,
        "clock": clock,
        "body": copied,
        "prev": prev,
    }
    return ChainEntry(**payload, hash=entry_hash(prev, payload))


@dataclass(frozen=True, slots=True)
class Anchor:
    """A signed statement that the chain entry at ``seq`` has hash ``head``; ``source`` names it."""

    seq: int
    head: str
    source: str


def verify_entries(
    entries: Sequence[ChainEntry],
    *,
    case_id: str | None = None,
    anchors: Sequence[Anchor] = (),
    after: ChainEntry | None = None,
) -> None:
    """Check a chain (from seq 0, or continuing ``after``); ``IntegrityError`` names the entry.

    Checks: contiguous seqs, every ``prev`` link, every recomputed hash, one case, time never
    going backwards, and that every anchor's head is the hash of the entry at its seq.

    Blame follows trust. Below an anchor, trust flows down the ``prev`` links, so an entry
    whose hash is not what the entry above it (or an anchor) commits to is the one named: an
    edited entry is named even if its own ``hash`` field was recomputed. Above the last anchor
    (an unsigned tail) trust flows up from below, and the first entry that does not link to
    its predecessor is named. Of several failures, the lowest seq is reported.
    """
    base = 0 if after is None else after.seq + 1
    start_prev = GENESIS if after is None else after.hash
    if case_id is not None:
        expected_case = case_id
    elif after is not None:
        expected_case = after.case_id
    else:
        expected_case = entries[0].case_id if entries else ""
    failures: dict[int, str] = {}
    # Positions whose blame is a range: the entry is self-consistent but not what its voucher
    # committed, so the change may lie anywhere between the last anchor that holds and here.
    ranged: set[int] = set()

    def fail(position: int, reason: str) -> None:
        failures.setdefault(position, reason)

    end = base + len(entries)
    by_seq: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        if anchor.seq >= end:
            fail(
                end - base,
                f"missing: the chain ends at seq {end - 1}, {anchor.source} signed "
                f"seq {anchor.seq}",
            )
        elif anchor.seq >= base:
            by_seq.setdefault(anchor.seq, []).append(anchor)
    hashes = [entry.computed_hash() for entry in entries]
    top = max(by_seq, default=base - 1) - base

    trusted: str | None = None
    for position in range(min(top, len(entries) - 1), -1, -1):
        entry, computed = entries[position], hashes[position]
        vouchers = [(a.head, a.source) for a in by_seq.get(base + position, ())]
        if trusted is not None:
            vouchers.append((trusted, f"the prev of chain entry {base + position + 1}"))
        wrong = [source for head, source in vouchers if head != computed]
        if wrong and entry.hash == computed and position not in failures:
            fail(
                position,
                "changed with its hash recomputed (so may be every entry up to it): entry"
                f" {base + position} no longer has the hash committed by {wrong[0]}",
            )
            ranged.add(position)
            trusted = None
        elif wrong:
            fail(position, f"content does not match the hash committed by {wrong[0]}")
            trusted = None
        elif entry.hash != computed:
            fail(position, "stored hash is not the hash of the entry")
            trusted = None
        else:
            trusted = entry.prev if vouchers else None
    for position in range(max(top + 1, 0), len(entries)):
        entry = entries[position]
        linked = start_prev if position == 0 else hashes[position - 1]
        if entry.hash != hashes[position]:
            fail(position, "stored hash is not the hash of the entry")
        elif entry.prev != linked:
            fail(position, f"prev does not match the hash of chain entry {base + position - 1}")
    if entries and entries[0].prev != start_prev:
        fail(0, f"prev is {entries[0].prev}, expected {start_prev}")

    previous_time: datetime | None = None if after is None else parse_utc(after.at)
    for position, entry in enumerate(entries):
        if entry.seq != base + position:
            fail(position, f"holds seq {entry.seq}")
        if entry.case_id != expected_case:
            fail(position, f"belongs to case {entry.case_id!r}, not {expected_case!r}")
        when = parse_utc(entry.at)
        if previous_time is not None and when < previous_time:
            fail(position, f"time {entry.at} is earlier than the previous entry's")
        previous_time = when

    if failures:
        position = min(failures)
        where = chain_where(base + position)
        if position in ranged:
            # Every anchor below the lowest failure held, so the change lies above the highest,
            # and at or above the highest entry whose link to its predecessor is broken.
            low = max((seq - base + 1 for seq in by_seq if seq - base < position), default=0)
            start = position
            while start > low and entries[start].prev == hashes[start - 1]:
                start -= 1
            low = start
            if low < position:
                where = f"between chain entry {base + low} and {base + position}"
        raise IntegrityError(where, failures[position])

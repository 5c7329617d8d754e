"""Whether a process can account for a case's stored chain before it builds on it. Pure.

A process signs and appends only after the tail it finds is vouched for: by its own head ledger
(recorder.head_ledger: what it wrote) or by a checkpoint signed with a key of the server's
history. Entries above the vouched head are a *foreign tail*; a ledger that is ahead of the
stored chain by more than the one entry a crash can lose means the chain was *cut*. Either way
the process flags the case and continues the chain with an entry that says so (see "Foreign
tails" in docs/archive.md), so nothing it signs can vouch for what it did not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recorder.chain import GENESIS, ChainEntry
from recorder.head_ledger import HeadRecord

FLAG_KINDS = ("foreign_tail", "chain_cut")
LEDGER_SOURCE = "this server's head ledger"
DATABASE_SOURCE = "the database's chain log"


@dataclass(frozen=True, slots=True)
class TrustedHead:
    seq: int
    hash: str
    source: str  # a checkpoint key, or LEDGER_SOURCE


@dataclass(frozen=True, slots=True)
class TailFinding:
    """What a process found above the head it can vouch for."""

    kind: str  # foreign_tail | chain_cut
    first_seq: int  # the first entry not vouched for (foreign), or the first one missing (cut)
    last_seq: int  # the last stored entry (foreign), or the last one the ledger knows (cut)
    trusted: TrustedHead | None

    def body(self) -> dict[str, Any]:
        trusted = self.trusted
        return {
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "trusted_seq": trusted.seq if trusted else -1,
            "trusted_hash": trusted.hash if trusted else GENESIS,
            "vouched_by": trusted.source if trusted else "nothing",
        }

    def describe(self) -> str:
        return describe_flag(self.kind, self.body())


def flag_span(body: dict[str, Any]) -> str:
    """The entries a ``foreign_tail`` or ``chain_cut`` body names."""
    first, last = body.get("first_seq"), body.get("last_seq")
    return f"chain entry {first}" if first == last else f"chain entries {first} to {last}"


def flag_reason(kind: str, body: dict[str, Any]) -> str:
    """Why those entries do not count, in plain words."""
    first, last = body.get("first_seq"), body.get("last_seq")
    if kind == "chain_cut":
        held = f"up to chain entry {first - 1}" if isinstance(first, int) and first else "none"
        return (
            f"missing: the chain was cut; Takan had written up to chain entry {last}, the"
            f" archive held {held}"
        )
    vouched = body.get("trusted_seq")
    if vouched == -1:
        return "not written by Takan: nothing it signed or wrote vouches for them"
    return (
        f"not written by Takan: the last entry it vouches for is {vouched}"
        f" ({body.get('vouched_by')})"
    )


def describe_flag(kind: str, body: dict[str, Any]) -> str:
    return f"{flag_span(body)}: {flag_reason(kind, body)}"


def consistent_prefix(
    entries: Sequence[ChainEntry], case_id: str, after: ChainEntry | None = None
) -> int:
    """How many entries, from seq 0 (or continuing ``after``), link, hash and number right."""
    seq, prev = (0, GENESIS) if after is None else (after.seq + 1, after.hash)
    for position, entry in enumerate(entries):
        if (
            entry.seq != seq + position
            or entry.case_id != case_id
            or entry.prev != prev
            or entry.hash != entry.computed_hash()
        ):
            return position
        prev = entry.hash
    return len(entries)


def account_for_tail(
    entries: Sequence[ChainEntry],
    case_id: str,
    ledger: HeadRecord | None,
    checkpoint: TrustedHead | None,
) -> tuple[int, TailFinding | None]:
    """(the highest seq to build on, or -1; what is wrong above it, or None).

    ``checkpoint``: the highest checkpoint signed by a key of the history whose head is the
    hash of the stored entry at its seq, within the consistent prefix (the caller finds it).
    """
    good = consistent_prefix(entries, case_id)
    candidates: list[TrustedHead] = []
    if checkpoint is not None and checkpoint.seq < good:
        candidates.append(checkpoint)
    cut: TailFinding | None = None
    if ledger is not None:
        stored_head = entries[-1].hash if entries else GENESIS
        if ledger.seq < good and entries[ledger.seq].hash == ledger.hash:
            candidates.append(TrustedHead(ledger.seq, ledger.hash, LEDGER_SOURCE))
        elif ledger.seq == len(entries) == good and ledger.prev == stored_head:
            # The entry in flight when the process stopped never landed: nothing was lost.
            if entries:
                candidates.append(TrustedHead(len(entries) - 1, stored_head, LEDGER_SOURCE))
        elif ledger.seq >= len(entries):
            cut = TailFinding("chain_cut", len(entries), ledger.seq, None)
    trusted = max(candidates, key=lambda head: head.seq, default=None)
    vouched = trusted.seq if trusted else -1
    if cut is not None:
        # What is left is consistent, only shorter: build on it (the flag says what is gone).
        return good - 1, TailFinding(cut.kind, cut.first_seq, cut.last_seq, trusted)
    if vouched < len(entries) - 1:
        return vouched, TailFinding("foreign_tail", vouched + 1, len(entries) - 1, trusted)
    return vouched, None

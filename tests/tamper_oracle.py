"""Random tampering for property tests: a Hypothesis strategy of mutations over a case, each
knowing the places verify may name for it (docs/archive.md, "Naming the changed entry" and
"Naming a range"): the changed object or entry, or the range that holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from recorder import layout
from recorder.canonical import parse_json
from recorder.chain import ChainEntry, chain_where
from recorder.storage import LocalStorage
from tests.tamper import (
    SPELLINGS,
    flip,
    forged_tail,
    load_entry,
    move,
    placed,
    range_from,
    read,
    rewrite,
    rewrite_chain_from,
    span,
    store_entry,
    swap,
    truncate,
    where_of,
    with_body,
)


@dataclass(frozen=True)
class CaseFacts:
    """What a pristine case holds, as the oracle needs it."""

    case_id: str
    keys: list[str]
    entries: list[ChainEntry]
    checkpoint_seqs: list[int]
    manifest_heads: list[int]

    @property
    def last_seq(self) -> int:
        return self.entries[-1].seq

    @property
    def anchor_seqs(self) -> list[int]:
        return sorted({*self.checkpoint_seqs, *self.manifest_heads})

    @property
    def last_signed(self) -> int:
        """The highest signed head; above it only ``timestamp`` entries (the tail rule)."""
        return max(self.anchor_seqs)

    def token_of(self, document: str) -> str | None:
        """The timestamp token over a checkpoint or manifest, if a TSA stamped it."""
        for entry in self.entries:
            if entry.kind == "timestamp" and entry.body.get("document") == document:
                return str(entry.body["key"])
        return None

    def unsigned_without(self, checkpoint_seq: int) -> set[str]:
        """Where verify names a removed final checkpoint: the last event above the highest
        signed head left is not covered; if only timestamps are above it, the token over the
        removed checkpoint stamps what is not stored."""
        latest = max(a for a in self.anchor_seqs if a != checkpoint_seq or a in self.manifest_heads)
        events = [e.seq for e in self.entries if e.seq > latest and e.kind != "timestamp"]
        if events:
            return {chain_where(events[-1])}
        token = self.token_of(layout.checkpoint_key(self.case_id, checkpoint_seq))
        return {token} if token is not None else set()

    def keys_where(self, parse: Callable[[str, str], object]) -> list[str]:
        return [key for key in self.keys if parse(self.case_id, key) is not None]

    @property
    def recorded(self) -> list[str]:
        """Objects a chain entry records by hash, in chain order (not keys, not manifests)."""
        return [
            e.body["key"]
            for e in self.entries
            if "sha256" in e.body
            and isinstance(e.body.get("key"), str)
            and e.kind not in ("signing_key", "key_rotated", "manifest")
        ]

    def recorded_by(self, key: str) -> int:
        return next(e.seq for e in self.entries if e.body.get("key") == key)


def read_facts(root: Path, case_id: str) -> CaseFacts:
    storage = LocalStorage(root)
    keys = storage.list(layout.case_prefix(case_id))
    entries = [
        ChainEntry.from_json(parse_json(storage.get(key)))
        for key in keys
        if layout.parse_chain_entry_key(case_id, key) is not None
    ]
    checkpoints = [layout.parse_checkpoint_key(case_id, key) for key in keys]
    manifests = [
        parse_json(storage.get(key))["manifest"]["chain_head_seq"]
        for key in keys
        if layout.parse_manifest_key(case_id, key) is not None
    ]
    return CaseFacts(
        case_id, keys, entries, sorted(s for s in checkpoints if s is not None), sorted(manifests)
    )


Apply = Callable[[Path], set[str]]


@dataclass(frozen=True)
class Mutation:
    """One change to a copy of the case, and the places verify may name for it."""

    name: str
    apply: Apply

    def __repr__(self) -> str:
        return self.name


def _flip(facts: CaseFacts, key: str, offset: int, bit: int) -> Mutation:
    def apply(root: Path) -> set[str]:
        flip(root, key, offset, bit)
        return {where_of(facts.case_id, key)}

    return Mutation(f"flip({key}, {offset}, {bit})", apply)


def _truncate(facts: CaseFacts, key: str, fraction: float) -> Mutation:
    def apply(root: Path) -> set[str]:
        truncate(root, key, int(len(read(root, key)) * fraction))
        return {where_of(facts.case_id, key)}

    return Mutation(f"truncate({key}, {fraction:.3f})", apply)


def _delete(facts: CaseFacts, key: str) -> Mutation:
    def apply(root: Path) -> set[str]:
        (root / key).unlink()
        checkpoint = layout.parse_checkpoint_key(facts.case_id, key)
        if checkpoint == facts.checkpoint_seqs[-1]:
            return facts.unsigned_without(checkpoint)  # the tail is no longer signed
        if checkpoint is not None:  # an intermediate one: only its token can tell
            return {facts.token_of(key) or key}
        last = facts.entries[-1]
        if key == layout.chain_entry_key(facts.case_id, last.seq) and last.seq > facts.last_signed:
            return {last.body["key"]}  # an unsigned timestamp entry: its token is left over
        return {where_of(facts.case_id, key)}

    return Mutation(f"delete({key})", apply)


def _swap(facts: CaseFacts, a: str, b: str) -> Mutation:
    """Two objects of a kind: the first one verify reaches is named (the lower seq's entry or
    checkpoint, or the object recorded first)."""

    def apply(root: Path) -> set[str]:
        swap(root, a, b)
        if a in facts.recorded:
            return {min((a, b), key=facts.recorded_by)}
        return {where_of(facts.case_id, min(a, b))}

    return Mutation(f"swap({a}, {b})", apply)


def _rename(facts: CaseFacts, key: str, new: str) -> Mutation:
    """A chain entry moved away leaves a gap at its seq; any other object is named where it
    went (not recorded there, or not the seq or inspection its content names)."""

    def apply(root: Path) -> set[str]:
        move(root, key, new)
        seq = layout.parse_chain_entry_key(facts.case_id, key)
        return {chain_where(seq)} if seq is not None else {new}

    return Mutation(f"rename({key}, {new})", apply)


def _plant(facts: CaseFacts, key: str) -> Mutation:
    def apply(root: Path) -> set[str]:
        rewrite(root, key, b"planted")
        return {key}

    return Mutation(f"plant({key})", apply)


def _edit(facts: CaseFacts, seq: int, recompute: str) -> Mutation:
    def apply(root: Path) -> set[str]:
        entry = load_entry(root, facts.case_id, seq)
        edited = with_body(entry, forged=True)
        if recompute == "none":
            store_entry(root, edited)
            return {chain_where(seq)}
        if recompute == "own":
            store_entry(root, _rehashed(edited))
            return {span(range_from(facts.anchor_seqs, seq), seq)}
        rewrite_chain_from(root, facts.case_id, [edited, *facts.entries[seq + 1 :]], seq)
        return {span(*placed(facts.anchor_seqs, seq))}

    return Mutation(f"edit({seq}, recompute={recompute})", apply)


def _rehashed(entry: ChainEntry) -> ChainEntry:
    return ChainEntry.from_json({**entry.to_json(), "hash": entry.computed_hash()})


def _insert(facts: CaseFacts, seq: int) -> Mutation:
    def apply(root: Path) -> set[str]:
        inserted = with_body(facts.entries[seq], inserted=True)
        rewrite_chain_from(root, facts.case_id, [inserted, *facts.entries[seq:]], seq)
        return {span(*placed(facts.anchor_seqs, seq))}

    return Mutation(f"insert({seq})", apply)


def _forge_tail(facts: CaseFacts, count: int) -> Mutation:
    def apply(root: Path) -> set[str]:
        seqs = forged_tail(root, facts.case_id, [("chat", {"n": n}) for n in range(count)])
        return {chain_where(seqs[-1])}

    return Mutation(f"forge_tail({count})", apply)


def _respell(facts: CaseFacts, key: str, spelling: str) -> Mutation:
    def apply(root: Path) -> set[str]:
        rewrite(root, key, SPELLINGS[spelling](read(root, key)))
        return {where_of(facts.case_id, key)}

    return Mutation(f"respell({key}, {spelling})", apply)


def _replay_checkpoint(facts: CaseFacts, older: str, newer: str) -> Mutation:
    def apply(root: Path) -> set[str]:
        rewrite(root, newer, read(root, older))
        return {newer}

    return Mutation(f"replay({older} over {newer})", apply)


def mutations(facts: CaseFacts) -> st.SearchStrategy[Mutation]:
    """Every kind of change the oracle can place, over every object of the case."""
    case = facts.case_id
    chain = facts.keys_where(layout.parse_chain_entry_key)
    checkpoints = facts.keys_where(layout.parse_checkpoint_key)
    final = checkpoints[-1]
    segments = facts.keys_where(layout.parse_segment_key)
    inspection = layout.parse_segment_key(case, segments[0])
    assert inspection is not None
    planted = [
        layout.segment_key(case, inspection[0], "inspector-audio", 999),
        f"cases/{case}/inspections/{inspection[0]}/notes.txt",
        f"cases/{case}/chain/extra.json",
        layout.public_key_key(case, "0" * 64),
    ]
    keys = st.sampled_from(facts.keys)
    # Edits and insertions inside the signed chain; the unsigned timestamp tail has tests of
    # its own (tests/integration/test_tamper_chain.py).
    seqs = st.integers(0, facts.last_signed)
    # A removed intermediate checkpoint loses a redundant signature only (documented), unless
    # a timestamp token over it says what it stamped.
    deletable = [k for k in facts.keys if k not in checkpoints or k == final or facts.token_of(k)]
    unused = [s for s in range(facts.last_seq + 3) if s not in facts.anchor_seqs]
    unused_checkpoint = [layout.checkpoint_key(case, s) for s in unused]
    renames = st.one_of(
        st.sampled_from(chain).map(lambda k: (k, layout.chain_entry_key(case, facts.last_seq + 7))),
        st.tuples(st.sampled_from(checkpoints), st.sampled_from(unused_checkpoint)),
        st.sampled_from(segments).map(lambda k: (k, k.rsplit("/", 1)[0] + "/000777.webm")),
    )

    def two(of: list[str]) -> st.SearchStrategy[list[str]]:
        return st.lists(st.sampled_from(of), min_size=2, max_size=2, unique=True).map(sorted)

    manifests = facts.keys_where(layout.parse_manifest_key)
    kinds = [of for of in (facts.recorded, chain, checkpoints, manifests) if len(of) > 1]
    pairs = st.one_of(*(two(of) for of in kinds))
    return st.one_of(
        st.builds(
            lambda k, o, b: _flip(facts, k, o, b), keys, st.integers(0, 10**7), st.integers(0, 7)
        ),
        st.builds(lambda k, f: _truncate(facts, k, f), keys, st.floats(0, 0.999)),
        st.sampled_from(deletable).map(lambda k: _delete(facts, k)),
        pairs.map(lambda ab: _swap(facts, ab[0], ab[1])),
        renames.map(lambda kn: _rename(facts, kn[0], kn[1])),
        st.sampled_from(planted).map(lambda k: _plant(facts, k)),
        st.builds(lambda s, r: _edit(facts, s, r), seqs, st.sampled_from(["none", "own", "later"])),
        st.integers(1, facts.last_signed).map(lambda s: _insert(facts, s)),
        st.integers(1, 3).map(lambda n: _forge_tail(facts, n)),
        st.builds(
            lambda k, s: _respell(facts, k, s),
            st.sampled_from([*chain, *checkpoints, *manifests]),
            st.sampled_from(sorted(SPELLINGS)),
        ),
        *(
            [two(checkpoints).map(lambda on: _replay_checkpoint(facts, on[0], on[1]))]
            if len(checkpoints) > 1
            else []
        ),
    )

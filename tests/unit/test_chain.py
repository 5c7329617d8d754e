"""The hash chain: linking, validation, and verification that names the changed entry."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.canonical import canonical_json
from recorder.chain import (
    GENESIS,
    Anchor,
    ChainEntry,
    entry_hash,
    next_entry,
    parse_utc,
    verify_entries,
)
from recorder.errors import IntegrityError

CLOCK = "server-system-clock"


def at(second: int) -> str:
    return f"2026-03-01T09:{second // 60:02d}:{second % 60:02d}.000Z"


def make_chain(length: int, case_id: str = "case-1") -> list[ChainEntry]:
    entries: list[ChainEntry] = []
    for i in range(length):
        head = entries[-1] if entries else None
        entries.append(next_entry(head, case_id, "event", at(i), CLOCK, {"n": i}))
    return entries


def smart_edit(entry: ChainEntry, **changes: Any) -> ChainEntry:
    """Change fields and recompute the entry's own hash, as a forger would."""
    edited = dataclasses.replace(entry, **changes)
    return dataclasses.replace(edited, hash=edited.computed_hash())


def blamed(entries: list[ChainEntry], **kwargs: Any) -> str:
    with pytest.raises(IntegrityError) as failure:
        verify_entries(entries, **kwargs)
    return failure.value.where


def test_first_entry_starts_at_seq_0_from_genesis_and_hash_follows_the_formula() -> None:
    entry = next_entry(None, "case-1", "created", at(0), CLOCK, {"title": "x"})
    assert (entry.seq, entry.prev) == (0, GENESIS)
    payload = {k: v for k, v in entry.to_json().items() if k != "hash"}
    expected = hashlib.sha256(bytes(32) + canonical_json(payload)).hexdigest()
    assert entry.hash == expected == entry_hash(GENESIS, payload)


def test_next_entry_links_to_the_head() -> None:
    first, second = make_chain(2)
    assert (second.seq, second.prev) == (1, first.hash)


def test_json_round_trip() -> None:
    for entry in make_chain(3):
        assert ChainEntry.from_json(entry.to_json()) == entry


def test_body_is_copied_so_later_changes_do_not_reach_the_entry() -> None:
    body: dict[str, Any] = {"list": [1]}
    entry = next_entry(None, "case-1", "created", at(0), CLOCK, body)
    body["list"].append(2)
    assert entry.body == {"list": [1]}
    verify_entries([entry])


def test_next_entry_refuses_a_clock_that_went_backwards() -> None:
    head = next_entry(None, "case-1", "created", at(5), CLOCK, {})
    with pytest.raises(ValueError, match="earlier"):
        next_entry(head, "case-1", "joined", at(4), CLOCK, {})


def test_next_entry_refuses_another_case() -> None:
    head = next_entry(None, "case-1", "created", at(0), CLOCK, {})
    with pytest.raises(ValueError, match="case"):
        next_entry(head, "case-2", "joined", at(1), CLOCK, {})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("case_id", "../x"),
        ("case_id", "a" * 65),
        ("seq", -1),
        ("seq", True),
        ("kind", "Bad Kind"),
        ("at", "2026-03-01 09:00:00"),
        ("at", "2026-03-01T09:00:00+08:00"),
        ("at", "2026-02-30T09:00:00Z"),
        ("clock", ""),
        ("body", ["not", "an", "object"]),
        ("body", {"lat": 31.2}),
        ("prev", "0" * 63),
        ("hash", "A" * 64),
    ],
)
def test_from_json_rejects_bad_fields(field: str, value: Any) -> None:
    obj = make_chain(1)[0].to_json()
    obj[field] = value
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        ChainEntry.from_json(obj)


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_from_json_rejects_missing_or_extra_fields(change: str) -> None:
    obj = make_chain(1)[0].to_json()
    if change == "missing":
        del obj["clock"]
    else:
        obj["note"] = "x"
    with pytest.raises(ValueError, match="fields"):
        ChainEntry.from_json(obj)


def test_utc_times_parse_to_the_microsecond() -> None:
    assert parse_utc("2026-03-01T09:00:00.5Z") < parse_utc("2026-03-01T09:00:00.500001Z")
    assert parse_utc("2026-03-01T09:00:00Z") == parse_utc("2026-03-01T09:00:00.000Z")


def test_an_intact_chain_verifies() -> None:
    entries = make_chain(6)
    verify_entries(entries)
    verify_entries(entries, case_id="case-1", anchors=[Anchor(5, entries[5].hash, "cp")])
    verify_entries(entries[3:], after=entries[2])


def test_an_entry_from_another_case_is_named() -> None:
    assert blamed(make_chain(3), case_id="case-2") == "chain entry 0"


@given(st.integers(0, 7), st.booleans())
def test_edited_entry_is_named_whether_or_not_its_hash_was_recomputed(
    index: int, recompute: bool
) -> None:
    entries = make_chain(8)
    edited = dataclasses.replace(entries[index], body={"n": "forged"})
    entries[index] = smart_edit(edited) if recompute else edited
    anchors = [Anchor(7, make_chain(8)[7].hash, "final checkpoint")]
    # With its own hash recomputed, the edit could be in any entry below it whose hash was
    # recomputed too: nothing tells them apart, so the range is named.
    named = f"between chain entry 0 and {index}" if recompute and index else f"chain entry {index}"
    assert blamed(entries, anchors=anchors) == named


@given(st.integers(1, 7))
def test_edited_prev_link_is_named_at_the_entry_that_changed(index: int) -> None:
    entries = make_chain(8)
    entries[index] = smart_edit(entries[index], prev=entries[index - 1].prev)
    anchors = [Anchor(7, make_chain(8)[7].hash, "final checkpoint")]
    assert blamed(entries, anchors=anchors) == f"chain entry {index}"


@given(st.integers(0, 6))
def test_a_dropped_entry_is_named(index: int) -> None:
    entries = make_chain(8)
    del entries[index]
    assert blamed(entries) == f"chain entry {index}"


@given(st.integers(0, 6))
def test_two_swapped_entries_are_named(index: int) -> None:
    entries = make_chain(8)
    entries[index], entries[index + 1] = entries[index + 1], entries[index]
    assert blamed(entries) in {f"chain entry {index}", f"chain entry {index + 1}"}


def test_time_going_backwards_is_named() -> None:
    entries = make_chain(4)
    entries[2] = smart_edit(entries[2], at=at(0))
    entries[3] = smart_edit(entries[3], prev=entries[2].hash)
    assert blamed(entries) == "chain entry 2"


def test_an_unsigned_tail_is_checked_forward() -> None:
    entries = make_chain(6)
    original = make_chain(6)
    entries[4] = smart_edit(entries[4], body={"n": "forged"})
    anchors = [Anchor(2, original[2].hash, "checkpoint 2")]
    # Nothing signed vouches for 4; its successor's link is what breaks.
    assert blamed(entries, anchors=anchors) == "chain entry 5"


def test_an_anchor_beyond_the_end_names_the_missing_entry() -> None:
    entries = make_chain(6)
    anchors = [Anchor(5, entries[5].hash, "checkpoint 5")]
    assert blamed(entries[:5], anchors=anchors) == "chain entry 5"


def test_a_rewritten_suffix_is_named_at_the_first_signed_entry_it_contradicts() -> None:
    original = make_chain(10)
    entries = original[:4]
    forged = next_entry(entries[-1], "case-1", "event", at(3), CLOCK, {"n": "inserted"})
    entries.append(forged)
    for old in original[4:]:
        entries.append(next_entry(entries[-1], "case-1", old.kind, old.at, CLOCK, old.body))
    anchors = [Anchor(s, original[s].hash, f"checkpoint {s}") for s in (2, 6, 9)]
    # Checkpoint 2 holds, checkpoint 6 does not: the change lies between them.
    assert blamed(entries, anchors=anchors) == "between chain entry 3 and 6"


def test_a_range_is_named_with_the_checkpoint_that_commits_it() -> None:
    original = make_chain(26)
    entries = original[:10]
    entries.append(smart_edit(original[10], body={"n": "forged"}))
    for old in original[11:]:
        entries.append(next_entry(entries[-1], "case-1", old.kind, old.at, CLOCK, old.body))
    source = "checkpoints/000000000025.json"
    with pytest.raises(IntegrityError) as caught:
        verify_entries(entries, case_id="case-1", anchors=[Anchor(25, original[25].hash, source)])
    assert caught.value.where == "between chain entry 0 and 25"
    assert source in caught.value.reason


def test_a_mismatching_anchor_names_the_range_it_commits() -> None:
    entries = make_chain(5)
    # The checkpoint or any entry up to 3 may be the forgery: nothing below vouches.
    named = "between chain entry 0 and 3"
    assert blamed(entries, anchors=[Anchor(3, "f" * 64, "checkpoint 3")]) == named


def test_verifying_a_continuation_checks_the_link_to_the_known_head() -> None:
    entries = make_chain(5)
    with pytest.raises(IntegrityError, match="chain entry 2"):
        verify_entries(entries[3:], after=entries[1])

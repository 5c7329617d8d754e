"""What an insider can do to the chain and the signatures of a real archive fails verify,
naming the place docs/archive.md says: forged tails and documents, replays from another case
or an older checkpoint, edits with every later hash recomputed (named as a range)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from recorder import layout
from recorder.chain import chain_where
from recorder.signing import Signer
from tests.integration.real_archive import RealArchive, RealCase
from tests.integration.tamper_targets import (
    archive_of,
    case_of,
    target,
)
from tests.tamper import (
    OBJECT_REASONS,
    Expect,
    assert_named,
    drop_key,
    failure,
    forged_checkpoint,
    forged_conclusion,
    forged_manifest,
    forged_tail,
    load_entry,
    placed,
    put_object,
    range_from,
    read,
    rewrite,
    rewrite_chain_from,
    span,
    store_entry,
    takan_verify,
    with_body,
)

pytestmark = pytest.mark.single_engine  # archives only: no database


@pytest.mark.parametrize("count", [1, 3])
def test_a_forged_tail_hashed_and_linked_fails_as_unsigned(
    real_archive: RealArchive, tampered: Path, count: int
) -> None:
    """With the archive alone a correctly linked tail is an unsigned tail; with
    ``--allow-unsigned-tail`` it is accepted (documented: that option trusts what follows the
    last signature; a server that touches the case flags it, see test_insider)."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    seqs = forged_tail(
        root, case.case_id, [("chat", {"text": f"forged {n}"}) for n in range(count)]
    )
    assert_named(
        root,
        case.case_id,
        Expect(chain_where(seqs[-1]), f"the last signed entry is {case.last_signed}"),
    )
    assert failure(root, case.case_id, allow_unsigned_tail=True) is None
    code, out = takan_verify(tampered, case.case_id)
    assert code == 1
    assert out.startswith(f"FAILED: {chain_where(seqs[-1])}: not covered"), out


def test_a_forged_tail_with_a_checkpoint_by_a_dropped_key_fails_naming_the_checkpoint(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    forger = Signer.generate()
    drop_key(root, case.case_id, forger)
    [seq] = forged_tail(root, case.case_id, [("chat", {"text": "forged"})])
    key = forged_checkpoint(root, case.case_id, forger, load_entry(root, case.case_id, seq))
    assert_named(root, case.case_id, Expect(key, "which no chain entry records"))


def test_a_forged_conclusion_by_a_dropped_key_fails_naming_its_entry(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    forger = Signer.generate()
    drop_key(root, case.case_id, forger)
    head = load_entry(root, case.case_id, case.last_seq)
    body = forged_conclusion(forger, case.inspection_id, head.at)
    [seq] = forged_tail(root, case.case_id, [("conclusion", body)])
    assert_named(root, case.case_id, Expect(chain_where(seq), "not covered"))
    assert_named(
        root,
        case.case_id,
        Expect(chain_where(seq), "the conclusion is signed by", "which no chain entry records"),
        allow_unsigned_tail=True,
    )


def test_a_conclusion_re_signed_by_a_dropped_key_in_place_is_named_as_a_range(
    real_archive: RealArchive, tampered: Path
) -> None:
    """The insider replaces the real conclusion's signature with its own key's and rewrites
    every later entry: the first signature above it no longer holds."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    forger = Signer.generate()
    drop_key(root, case.case_id, forger)
    [conclusion] = [e for e in case.entries if e.kind == "conclusion"]
    body = forged_conclusion(forger, case.inspection_id, conclusion.at)
    later = [with_body(conclusion, **body), *case.entries[conclusion.seq + 1 :]]
    rewrite_chain_from(root, case.case_id, later, conclusion.seq)
    low, high = placed(case.anchor_seqs, conclusion.seq)
    assert_named(root, case.case_id, Expect(span(low, high), "changed with its hash recomputed"))


@pytest.mark.parametrize("signed_by", ["a dropped key", "the server's key"])
def test_a_forged_manifest_of_a_made_up_inspection_fails_naming_it(
    real_archive: RealArchive, tampered: Path, signed_by: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    if signed_by == "a dropped key":
        signer = Signer.generate()
        drop_key(root, case.case_id, signer)
        reason = "which no chain entry records"
    else:  # an insider who also has the signing key file
        signer = Signer.load_or_create(tampered / "signing.key")
        reason = "stored object is not referenced"
    head = load_entry(root, case.case_id, case.last_seq)
    key = forged_manifest(root, case.case_id, signer, "c" * 32, head)
    assert_named(root, case.case_id, Expect(key, reason))


# replays


def test_an_older_checkpoint_replayed_over_a_newer_one_fails_naming_it(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    older, newer = case.of_kind("checkpoint")[0], case.of_kind("checkpoint")[-1]
    rewrite(root, newer, read(root, older))
    assert_named(root, case.case_id, Expect(newer, "not this key's"))


def test_an_older_checkpoint_alone_at_the_end_leaves_the_tail_unsigned(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Deleting the newer checkpoints and keeping an older one is a deletion: the tail."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    for key in case.of_kind("checkpoint")[1:]:
        (root / key).unlink()
    latest = max(case.checkpoint_seqs[0], *case.manifest_heads)
    event = case.last_unsigned_event(latest)
    assert_named(root, case.case_id, Expect(chain_where(event or 0), "not covered"))


@pytest.mark.parametrize("seq", [0, 4, "segment"])
def test_another_case_s_chain_entry_replayed_into_this_case_fails_naming_it(
    real_archive: RealArchive, tampered: Path, seq: int | str
) -> None:
    case, other = case_of(real_archive), real_archive.plain
    root = archive_of(tampered)
    if seq == "segment":
        seq = next(e.seq for e in other.entries if e.kind == "segment")
    assert isinstance(seq, int)
    replayed = read(root, layout.chain_entry_key(other.case_id, seq))
    rewrite(root, layout.chain_entry_key(case.case_id, seq), replayed)
    reasons = ("no longer has the hash", "a key entry names", "belongs to case")
    assert_named(root, case.case_id, Expect(chain_where(seq), *reasons))


@pytest.mark.parametrize("kind", ["segment", "checkpoint", "manifest", "manifest_beside"])
def test_another_case_s_object_replayed_into_this_case_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str
) -> None:
    case, other = case_of(real_archive), real_archive.plain
    root = archive_of(tampered)
    if kind == "segment":
        key = target(case, "segment")
        rewrite(root, key, read(root, target(other, "segment")))
        expect = Expect(key, *OBJECT_REASONS)
    elif kind == "checkpoint":
        key = layout.checkpoint_key(case.case_id, other.checkpoint_seqs[0])
        rewrite(
            root, key, read(root, layout.checkpoint_key(other.case_id, other.checkpoint_seqs[0]))
        )
        expect = Expect(key, "not this key's")
    elif kind == "manifest":
        key = target(case, "manifest")
        rewrite(root, key, read(root, target(other, "manifest")))
        expect = Expect(key, "not this key's")
    else:  # under the other inspection's id, beside this case's own
        key = layout.manifest_key(case.case_id, other.inspection_id)
        rewrite(root, key, read(root, target(other, "manifest")))
        expect = Expect(key, "not this key's")
    assert_named(root, case.case_id, expect)


# edits


@pytest.mark.parametrize("position", ["first", "below_a_checkpoint", "conclusion", "last_signed"])
@pytest.mark.parametrize("recompute", ["own_hash", "none", "every_later_hash"])
def test_an_edited_chain_entry_is_named_or_placed_in_a_range(
    real_archive: RealArchive, tampered: Path, position: str, recompute: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    seq = {
        "first": 0,
        "below_a_checkpoint": case.checkpoint_seqs[1] - 1,
        "conclusion": next(e.seq for e in case.entries if e.kind == "conclusion"),
        "last_signed": case.last_signed,
    }[position]
    entry = load_entry(root, case.case_id, seq)
    edited = with_body(entry, forged=True)
    if recompute == "none":
        store_entry(root, edited)
        expect = Expect(chain_where(seq), "content does not match", "stored hash is not")
    elif recompute == "own_hash":
        store_entry(root, dataclasses.replace(edited, hash=edited.computed_hash()))
        # Self-consistent, so the change may lie in it or in any rehashed entry below it.
        expect = Expect(span(range_from(case.anchor_seqs, seq), seq), "no longer has the hash")
    else:
        rewrite_chain_from(root, case.case_id, [edited, *case.entries[seq + 1 :]], seq)
        low, high = placed(case.anchor_seqs, seq)
        expect = Expect(span(low, high), "changed with its hash recomputed")
    assert_named(root, case.case_id, expect)


@pytest.mark.parametrize("how", ["insert", "delete"])
def test_an_entry_inserted_or_removed_with_every_later_hash_recomputed_is_placed_in_a_range(
    real_archive: RealArchive, tampered: Path, how: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    seq = case.checkpoint_seqs[1] - 1
    later = case.entries[seq:]
    if how == "insert":
        forged = with_body(case.entries[seq], inserted=True)
        rewrite_chain_from(root, case.case_id, [forged, *later], seq)
        low, high = placed(case.anchor_seqs, seq)
        expect = Expect(span(low, high), "changed with its hash recomputed")
    else:
        last = rewrite_chain_from(root, case.case_id, later[1:], seq)
        (root / layout.chain_entry_key(case.case_id, last + 1)).unlink()
        low, high = placed(case.anchor_seqs, seq)
        if high > case.last_seq - 1:  # the chain is one entry shorter now
            expect = Expect(chain_where(high), "missing: the chain ends at seq")
        else:
            expect = Expect(span(low, high), "changed with its hash recomputed")
    assert_named(root, case.case_id, expect)


def widest_gap(case: RealCase) -> tuple[int, int]:
    """The longest run of entries between two signed heads: (first, signed head above it)."""
    runs = [(range_from(case.anchor_seqs, a), a) for a in case.anchor_seqs]
    low, high = max(runs, key=lambda run: run[1] - run[0])
    assert low < high, f"no two unsigned entries in a row: {case.anchor_seqs}"
    return low, high


def test_a_rewritten_range_is_named_by_takan_verify(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    low, high = widest_gap(case)
    later = [with_body(case.entries[high - 1], forged=True), *case.entries[high:]]
    rewrite_chain_from(root, case.case_id, later, high - 1)
    code, out = takan_verify(tampered, case.case_id)
    assert code == 1
    assert out.startswith(
        f"FAILED: between chain entry {low} and {high}: changed with its hash recomputed"
    ), out


def test_a_rewrite_from_a_broken_link_is_placed_from_that_link(
    real_archive: RealArchive, tampered: Path
) -> None:
    """docs/archive.md: the range starts at the highest entry below whose prev link is
    broken, when that is above the last signed head that holds."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    low, high = widest_gap(case)
    middle = (low + high + 1) // 2  # above the signed head below, at or below the one above
    relinked = dataclasses.replace(case.entries[middle], prev=hashlib.sha256(b"x").hexdigest())
    store_entry(root, dataclasses.replace(relinked, hash=relinked.computed_hash()))
    rewrite_chain_from(root, case.case_id, case.entries[middle + 1 :], middle + 1)
    assert_named(root, case.case_id, Expect(span(middle, high), "changed with its hash"))


def test_a_removed_entry_below_the_manifest_head_is_placed_by_the_manifest(
    real_archive: RealArchive, tampered: Path
) -> None:
    """The insider removes the checklist mark, rewrites every later entry and deletes every
    checkpoint above it; the manifest (recorded, so it must stay) still signs the old head."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    [mark] = [e for e in case.entries if e.kind == "checklist_mark"]
    last = rewrite_chain_from(root, case.case_id, case.entries[mark.seq + 1 :], mark.seq)
    (root / layout.chain_entry_key(case.case_id, last + 1)).unlink()
    for seq in case.checkpoint_seqs:
        if seq >= mark.seq:
            (root / layout.checkpoint_key(case.case_id, seq)).unlink()
    [manifest_head] = case.manifest_heads
    low = range_from([s for s in case.checkpoint_seqs if s < mark.seq], manifest_head)
    assert_named(
        root,
        case.case_id,
        Expect(span(low, manifest_head), "no longer has the hash committed by cases/"),
    )


def test_a_removed_entry_above_every_manifest_with_its_signatures_is_an_unsigned_tail(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Documented: removing an entry (and the object it records), every signature above it
    and the tokens over those, and rewriting every later entry, leaves an unsigned tail, which
    only ``--allow-unsigned-tail`` accepts."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    html = case.entry_recording(target(case, "report_html"))
    assert html.seq > max(case.manifest_heads)
    removed = [layout.checkpoint_key(case.case_id, s) for s in case.checkpoint_seqs]
    removed = [
        key for key, seq in zip(removed, case.checkpoint_seqs, strict=True) if seq >= html.seq
    ]
    gone = [html] + [
        e for e in case.entries if e.kind == "timestamp" and e.body["document"] in removed
    ]
    for key in [*removed, *(e.body["key"] for e in gone)]:
        (root / key).unlink()
    kept = [e for e in case.entries[html.seq + 1 :] if e not in gone]
    last = rewrite_chain_from(root, case.case_id, kept, html.seq)
    for seq in range(last + 1, case.last_seq + 1):
        (root / layout.chain_entry_key(case.case_id, seq)).unlink()
    event = case.last_unsigned_event(html.seq)  # the pdf's entry, now one seq lower
    assert event is not None
    assert_named(root, case.case_id, Expect(chain_where(event - 1), "not covered"))
    assert failure(root, case.case_id, allow_unsigned_tail=True) is None


# the chain's record of the signing key


@pytest.mark.parametrize("recompute", ["none", "own_hash"])
def test_the_key_entry_s_kind_edited_is_named_at_that_entry(
    real_archive: RealArchive, tampered: Path, recompute: str
) -> None:
    """Found by this suite: the checkpoints' signer then looked unrecorded, and verify named
    the first (genuine) checkpoint instead of the edited entry."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    entry = dataclasses.replace(load_entry(root, case.case_id, 0), kind="signing_kex")
    if recompute == "own_hash":
        entry = dataclasses.replace(entry, hash=entry.computed_hash())
    store_entry(root, entry)
    assert_named(root, case.case_id, Expect(chain_where(0), "which is not a recorded object"))


def test_the_key_entry_edited_to_a_forger_s_key_is_named_at_that_entry_when_pinned(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Found by this suite: trust was decided before the chain's hashes were checked, so the
    first genuine checkpoint was named ('signed by <the pinned key>, which no chain entry
    records') although entry 0's stored hash no longer matches its content."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    forger = Signer.generate()
    key = drop_key(root, case.case_id, forger)
    entry = load_entry(root, case.case_id, 0)
    body = {**entry.body, "fingerprint": forger.fingerprint, "key": key}
    body |= {"sha256": hashlib.sha256(forger.public_key_bytes).hexdigest()}
    store_entry(root, dataclasses.replace(entry, body=body))  # its stored hash left as it was
    assert_named(
        root,
        case.case_id,
        Expect(chain_where(0), "content does not match the hash committed by"),
        trusted=real_archive.fingerprint,
    )


# timestamp tokens and the tail rule (docs/archive.md, "Timestamps")


@pytest.mark.parametrize("recompute", ["none", "own_hash"])
def test_an_edited_timestamp_entry_above_every_signature_is_named_at_it(
    real_archive: RealArchive, tampered: Path, recompute: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    last = case.entries[-1]
    assert last.kind == "timestamp"
    assert last.seq > case.last_signed
    edited = with_body(last, forged=True)
    if recompute == "own_hash":
        edited = dataclasses.replace(edited, hash=edited.computed_hash())
        expect = Expect(chain_where(last.seq), "bad timestamp record")
    else:
        expect = Expect(chain_where(last.seq), "stored hash is not the hash of the entry")
    store_entry(root, edited)
    assert_named(root, case.case_id, expect)


def test_the_unsigned_timestamp_tail_removed_with_its_tokens_verifies_documented(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Documented (the tail rule): an unsigned timestamp entry can be removed unnoticed,
    which loses a proof of time and no event."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    for entry in case.entries[case.last_signed + 1 :]:
        assert entry.kind == "timestamp"
        (root / layout.chain_entry_key(case.case_id, entry.seq)).unlink()
        (root / entry.body["key"]).unlink()
    assert failure(root, case.case_id) is None


def test_a_forged_timestamp_tail_with_another_document_s_token_is_named_at_the_token(
    real_archive: RealArchive, tampered: Path
) -> None:
    """The tail rule lets timestamp entries follow the last signature; a forged one must
    still carry a real token over the document it names."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    first, second = case.of_kind("checkpoint")[:2]
    stolen = next(e for e in case.entries if e.kind == "timestamp" and e.body["document"] == first)
    key = layout.timestamp_key(case.case_id, "e" * 16, second)
    body = {
        **stolen.body,
        **put_object(root, key, read(root, stolen.body["key"])),
        "document": second,
        "document_sha256": hashlib.sha256(read(root, second)).hexdigest(),
    }
    [seq] = forged_tail(root, case.case_id, [("timestamp", body)])
    assert seq > case.last_signed
    assert_named(root, case.case_id, Expect(key, "message imprint"))


# receipts: what the outside kept (docs/archive.md, "Receipts")


def cut_below(root: Path, case: RealCase, first: int) -> None:
    """Entries ``first``… removed with every checkpoint at or above it and every object they
    record: a signed prefix, what a crash may leave."""
    for entry in case.entries[first:]:
        (root / layout.chain_entry_key(case.case_id, entry.seq)).unlink()
        if "key" in entry.body and "sha256" in entry.body:
            (root / entry.body["key"]).unlink()
    for seq in case.checkpoint_seqs:
        if seq >= first:
            (root / layout.checkpoint_key(case.case_id, seq)).unlink()


def test_a_cut_to_a_signed_point_below_the_receipt_fails_against_the_receipt(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    code, out = takan_verify(tampered, case.case_id, "--receipt", str(case.receipt))
    assert code == 0, out
    manifest_entry = case.entry_recording(target(case, "manifest"))
    first = max(s for s in case.checkpoint_seqs if s < manifest_entry.seq) + 1
    cut_below(root, case, first)
    assert failure(root, case.case_id) is None  # the archive alone cannot tell (documented)
    code, out = takan_verify(tampered, case.case_id, "--receipt", str(case.receipt))
    assert code == 1
    assert out.startswith(f"FAILED: receipt {case.receipt}: "), out
    assert f"chain entry {manifest_entry.seq}" in out, out


def test_a_cut_above_the_receipt_s_head_is_beyond_what_the_receipt_vouches_for(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Documented scope: a receipt vouches for its inspection up to its manifest's entry and
    the manifest's timestamp token; the reports made after it can go, with the archive alone
    (a signed prefix and a tail of timestamps) and with the receipt."""
    case = case_of(real_archive)
    token = case.entry_recording(case.token_of(target(case, "manifest")))
    assert any(e.kind == "report" for e in case.entries[token.seq + 1 :])
    cut_below(archive_of(tampered), case, token.seq + 1)
    assert failure(archive_of(tampered), case.case_id) is None
    code, out = takan_verify(tampered, case.case_id, "--receipt", str(case.receipt))
    assert code == 0, out


def test_a_tampered_receipt_is_named(real_archive: RealArchive, tampered: Path) -> None:
    case = case_of(real_archive)
    forged = tampered.parent / "receipt.json"
    data = case.receipt.read_bytes()
    forged.write_bytes(data.replace(b'"chain_head_seq":', b'"chain_head_seq":1', 1))
    code, out = takan_verify(tampered, case.case_id, "--receipt", str(forged))
    assert code == 1
    assert out.startswith(f"FAILED: receipt {forged}: "), out
    assert "signature does not verify" in out, out

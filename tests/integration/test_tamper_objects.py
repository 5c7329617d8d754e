"""Every way an insider can change the objects of a real archive (recorded through the real
server) fails verify, naming the place docs/archive.md says: flipped, truncated, swapped,
renamed, deleted, planted or respelled, for every kind of object."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder import layout
from recorder.chain import chain_where
from recorder.signing import Signer
from tests.integration.real_archive import RealArchive, RealCase
from tests.integration.tamper_targets import (
    JSON_KINDS,
    KINDS,
    RECORDED,
    archive_of,
    case_of,
    damaged,
    target,
)
from tests.tamper import (
    OBJECT_REASONS,
    SPELLINGS,
    Expect,
    assert_named,
    drop_key,
    failure,
    flip,
    move,
    read,
    rewrite,
    swap,
    takan_verify,
    truncate,
    where_of,
)

pytestmark = pytest.mark.single_engine  # archives only: no database

# the pristine archive itself


def test_the_real_archive_verifies_in_process_and_with_takan_verify(
    real_archive: RealArchive,
) -> None:
    for case in (real_archive.full, real_archive.plain):
        assert failure(real_archive.archive, case.case_id, trusted=real_archive.fingerprint) is None
    full = real_archive.full
    kinds = ("snapshot", "annotation", "marked_up", "report_pdf")
    assert {k: len(full.of_kind(k)) for k in kinds} == {
        "snapshot": 1, "annotation": 1, "marked_up": 1, "report_pdf": 1,
    }  # fmt: skip
    assert [e.kind for e in full.entries].count("conclusion") == 1
    assert [e.kind for e in full.entries].count("checklist_mark") == 1
    assert len([k for k in full.of_kind("segment") if "/applicant-video/" in k]) >= 3
    assert len(full.checkpoint_seqs) >= 3  # so that a range can lie between two of them
    code, out = takan_verify(real_archive.data_dir, full.case_id, "--key", real_archive.fingerprint)
    assert code == 0, out
    assert out.startswith(f"OK: case {full.case_id} is intact")


# byte flips, truncations


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_bit_in_any_object_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str, where: str
) -> None:
    case = case_of(real_archive)
    key = target(case, kind)
    size = len(read(archive_of(tampered), key))
    offset = {"first": 0, "middle": size // 2, "last": size - 1}[where]
    flip(archive_of(tampered), key, offset, 0)
    assert_named(archive_of(tampered), case.case_id, damaged(case, kind, key))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keep", ["empty", "half", "all_but_one"])
def test_a_truncated_object_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str, keep: str
) -> None:
    case = case_of(real_archive)
    key = target(case, kind)
    size = len(read(archive_of(tampered), key))
    truncate(
        archive_of(tampered), key, {"empty": 0, "half": size // 2, "all_but_one": size - 1}[keep]
    )
    expect = damaged(case, kind, key)
    if kind in RECORDED:
        expect = Expect(expect.where, "size is")
    assert_named(archive_of(tampered), case.case_id, expect)


def test_a_flipped_segment_byte_is_named_by_takan_verify(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    key = target(case, "segment")
    flip(archive_of(tampered), key, 100, 3)
    code, out = takan_verify(tampered, case.case_id)
    assert code == 1
    assert out.startswith(f"FAILED: {key}: SHA-256 is "), out


# swaps and renames


@pytest.mark.parametrize("kind", ["segment", "chain_entry", "checkpoint", "report"])
def test_two_swapped_objects_of_a_kind_fail_naming_the_first(
    real_archive: RealArchive, tampered: Path, kind: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    if kind == "segment":
        video = [k for k in case.of_kind("segment") if "/applicant-video/" in k]
        a, b = video[0], video[1]
        first = min((a, b), key=lambda k: case.entry_recording(k).seq)
        expect = Expect(first, *OBJECT_REASONS)
    elif kind == "chain_entry":
        a, b = layout.chain_entry_key(case.case_id, 3), layout.chain_entry_key(case.case_id, 9)
        expect = Expect(chain_where(3), "holds seq 9", "no longer has the hash")
    elif kind == "checkpoint":
        a, b = case.of_kind("checkpoint")[0], case.of_kind("checkpoint")[-1]
        expect = Expect(a, "not this key's")
    else:
        a, b = target(case, "report_html"), target(case, "report_pdf")
        expect = Expect(a, *OBJECT_REASONS)
    swap(root, a, b)
    assert_named(root, case.case_id, expect)


def renamed_key(case: RealCase, kind: str, key: str) -> str:
    """Another valid key for an object of ``kind``, where nothing is stored."""
    inspection = case.inspection_id
    other_inspection = "f" * 32
    return {
        "segment": layout.segment_key(case.case_id, inspection, "inspector-audio", 0),
        "last_segment": key.rsplit("/", 1)[0] + "/000099.webm",
        "first_chain_entry": layout.chain_entry_key(case.case_id, case.last_seq + 5),
        "chain_entry": layout.chain_entry_key(case.case_id, case.last_seq + 1),
        "last_chain_entry": layout.chain_entry_key(case.case_id, case.last_seq + 2),
        "checkpoint": layout.checkpoint_key(case.case_id, case.last_seq + 1),
        "final_checkpoint": layout.checkpoint_key(case.case_id, case.last_seq - 1)
        if case.last_seq - 1 not in case.checkpoint_seqs
        else layout.checkpoint_key(case.case_id, case.last_seq + 1),
        "manifest": layout.manifest_key(case.case_id, other_inspection),
        "public_key": layout.public_key_key(case.case_id, "0" * 64),
        "snapshot": layout.snapshot_key(case.case_id, inspection, "e" * 32),
        "annotation": layout.annotation_key(case.case_id, inspection, "e" * 32),
        "marked_up": layout.marked_up_key(case.case_id, inspection, "e" * 32, 1),
        "report_html": layout.report_key(case.case_id, inspection, 2, "html"),
        "report_pdf": layout.report_key(case.case_id, inspection, 2, "pdf"),
        "timestamp_token": layout.timestamp_key(
            case.case_id, "0" * 16, case.of_kind("checkpoint")[1]
        ),
    }[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_a_renamed_object_fails_naming_where_it_went_or_what_is_missing(
    real_archive: RealArchive, tampered: Path, kind: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    key = target(case, kind)
    new = renamed_key(case, kind, key)
    move(root, key, new)
    if "chain_entry" in kind:
        seq = layout.parse_chain_entry_key(case.case_id, key)
        expect = Expect(chain_where(seq or 0), "missing")
    elif kind in ("checkpoint", "final_checkpoint", "manifest"):
        expect = Expect(new, "not this key's")
    elif kind == "public_key":
        expect = Expect(new, "not the one its name says")
    else:
        expect = Expect(new, "stored object is not referenced by any chain entry")
    assert_named(root, case.case_id, expect)


# deletions


@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("checkpoint",)])
def test_a_deleted_object_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    key = target(case, kind)
    (root / key).unlink()
    seq = layout.parse_chain_entry_key(case.case_id, key)
    if kind == "last_chain_entry":
        # An unsigned timestamp entry (the tail rule): its token is left unrecorded.
        assert case.entries[-1].kind == "timestamp"
        expect = Expect(case.entries[-1].body["key"], "stored object is not referenced")
    elif seq is not None:
        expect = Expect(chain_where(seq), "missing")
    elif kind == "final_checkpoint":
        latest = max(a for a in case.anchor_seqs if a != case.checkpoint_seqs[-1])
        event = case.last_unsigned_event(latest)
        expect = Expect(chain_where(event or 0), "not covered by a signed checkpoint")
    elif kind == "public_key":
        expect = Expect(key, "documents are signed by it")
    else:
        expect = Expect(key, f"missing (recorded by chain entry {case.entry_recording(key).seq})")
    assert_named(root, case.case_id, expect)


def test_a_deleted_intermediate_checkpoint_is_named_by_its_timestamp_token(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Without a TSA a removed intermediate checkpoint loses a redundant signature only
    (documented; tests/unit/test_verify.py); its timestamp token, recorded by the chain, says
    what it stamped."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    key = case.of_kind("checkpoint")[0]
    (root / key).unlink()
    assert_named(root, case.case_id, Expect(case.token_of(key), f"stamps {key}, which is not"))


def test_a_middle_entry_deleted_with_every_checkpoint_covering_it_is_still_a_gap(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    seq = case.last_seq // 2
    (root / layout.chain_entry_key(case.case_id, seq)).unlink()
    for covering in (s for s in case.checkpoint_seqs if s >= seq):
        (root / layout.checkpoint_key(case.case_id, covering)).unlink()
    assert_named(root, case.case_id, Expect(chain_where(seq), "missing"))


def cut_tail(root: Path, case: RealCase, first: int) -> None:
    """Remove entries ``first``… with every signature and object that names them: exactly
    what a crash after entry ``first - 1`` would have left."""
    for entry in case.entries[first:]:
        (root / layout.chain_entry_key(case.case_id, entry.seq)).unlink()
        if "key" in entry.body and "sha256" in entry.body:
            (root / entry.body["key"]).unlink()
    for seq in case.checkpoint_seqs:
        if seq >= first:
            (root / layout.checkpoint_key(case.case_id, seq)).unlink()


def test_a_cut_to_an_unsigned_point_fails_but_passes_as_a_crash_with_allow_unsigned_tail(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Documented: with only the archive, removing the last entries together with their
    signatures and objects looks like a crash; verify demands a signed tail, and
    ``--allow-unsigned-tail`` (for a recording a crash cut short) accepts it."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    unsigned = [
        e.seq
        for e in case.entries[: case.last_signed]
        if e.seq not in case.anchor_seqs and e.kind != "timestamp"
    ]
    first = unsigned[-1] + 1  # the cut leaves an unsigned event at its end
    cut_tail(root, case, first)
    last_signed = max(a for a in case.anchor_seqs if a < first)
    assert_named(
        root,
        case.case_id,
        Expect(chain_where(first - 1), f"the last signed entry is {last_signed}"),
    )
    assert failure(root, case.case_id, allow_unsigned_tail=True) is None
    code, out = takan_verify(tampered, case.case_id, "--allow-unsigned-tail")
    assert code == 0, out


def test_a_cut_to_a_signed_point_verifies_documented_limitation(
    real_archive: RealArchive, tampered: Path
) -> None:
    """Documented: a cut to a signed prefix is what a crash leaves; only the server's head
    ledger tells (test_insider: a restart chains ``chain_cut``)."""
    case = case_of(real_archive)
    root = archive_of(tampered)
    signed = max(s for s in case.checkpoint_seqs if s < case.last_signed)
    cut_tail(root, case, signed + 1)
    assert failure(root, case.case_id) is None


# additions


def planted_key(case: RealCase, kind: str) -> str:
    inspection = case.inspection_id
    return {
        "segment": layout.segment_key(case.case_id, inspection, "inspector-audio", 0),
        "snapshot": layout.snapshot_key(case.case_id, inspection, "d" * 32),
        "annotation": layout.annotation_key(case.case_id, inspection, "d" * 32),
        "report_html": layout.report_key(case.case_id, inspection, 7, "html"),
        "report_pdf": layout.report_key(case.case_id, inspection, 7, "pdf"),
        "other": f"cases/{case.case_id}/inspections/{inspection}/notes.txt",
        "chain_lookalike": f"cases/{case.case_id}/chain/extra.json",
        "timestamp_token": layout.timestamp_key(
            case.case_id, "f" * 16, case.of_kind("checkpoint")[0]
        ),
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "segment",
        "snapshot",
        "annotation",
        "report_html",
        "report_pdf",
        "timestamp_token",
        "other",
        "chain_lookalike",
    ],
)
def test_an_unrecorded_object_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    key = planted_key(case, kind)
    source = {k: k for k in ("segment", "snapshot", "annotation", "timestamp_token")}
    data = read(root, target(case, source[kind])) if kind in source else b"planted"
    rewrite(root, key, data)
    assert_named(root, case.case_id, Expect(key, "stored object is not referenced"))


def test_an_unrecorded_public_key_fails_naming_it(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    key = drop_key(root, case.case_id, Signer.generate())
    assert_named(root, case.case_id, Expect(key, "stored object is not referenced"))


def test_garbage_at_the_next_chain_key_fails_naming_that_entry(
    real_archive: RealArchive, tampered: Path
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    rewrite(root, layout.chain_entry_key(case.case_id, case.last_seq + 1), b"{}")
    assert_named(root, case.case_id, Expect(chain_where(case.last_seq + 1), "malformed"))


# non-canonical JSON


@pytest.mark.parametrize("kind", JSON_KINDS)
@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_json_object_respelled_non_canonically_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str, spelling: str
) -> None:
    case = case_of(real_archive)
    root = archive_of(tampered)
    key = target(case, kind)
    original = read(root, key)
    respelled = SPELLINGS[spelling](original)
    assert respelled != original
    rewrite(root, key, respelled)
    if kind == "annotation":  # stored as recorded, by hash: any other byte is another object
        expect = Expect(key, *OBJECT_REASONS)
    else:
        expect = Expect(where_of(case.case_id, key), "not in canonical JSON form")
    assert_named(root, case.case_id, expect)


@pytest.mark.parametrize("kind", ["checkpoint", "manifest"])
def test_garbage_at_a_signed_document_s_key_fails_naming_it(
    real_archive: RealArchive, tampered: Path, kind: str
) -> None:
    case = case_of(real_archive)
    if kind == "checkpoint":
        key = layout.checkpoint_key(case.case_id, case.last_seq + 3)
    else:
        key = layout.manifest_key(case.case_id, "9" * 32)
    rewrite(archive_of(tampered), key, b"planted")
    assert_named(archive_of(tampered), case.case_id, Expect(key, "not JSON"))
    code, out = takan_verify(tampered, case.case_id)
    assert code == 1
    assert out.startswith(f"FAILED: {key}: not JSON"), out

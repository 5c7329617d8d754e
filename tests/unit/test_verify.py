"""verify_case on a real archive: intact passes, and every tampering fails naming its place."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry, next_entry
from recorder.errors import IntegrityError
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from recorder.zip_storage import ZipStorage
from server.cli.verify import add_verify_parser, run_verify
from tests.unit.evidence_fixture import CLOCK, INSPECTIONS, CaseBuilder, build_case, put

CASE = "case-1"


@dataclass(frozen=True)
class Pristine:
    root: Path
    keys: list[str]
    last_seq: int
    checkpoint_seqs: list[int]
    anchor_seqs: list[int]
    fingerprint: str

    @property
    def public_key(self) -> str:
        return layout.public_key_key(CASE, self.fingerprint)

    @property
    def final_checkpoint(self) -> str:
        return layout.checkpoint_key(CASE, self.last_seq)

    def keys_of(self, kind: str) -> list[str]:
        parsers: dict[str, Callable[[str, str], object]] = {
            "chain": layout.parse_chain_entry_key,
            "checkpoint": layout.parse_checkpoint_key,
            "segment": layout.parse_segment_key,
            "manifest": layout.parse_manifest_key,
        }
        return [k for k in self.keys if parsers[kind](CASE, k) is not None]

    @property
    def stored_media(self) -> list[str]:
        """Segments and snapshots: the objects chain entries vouch for by hash."""
        return [k for k in self.keys if k.endswith((".webm", ".jpg"))]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    root = tmp_path_factory.mktemp("pristine")
    signer = Signer.generate()
    builder = build_case(LocalStorage(root), signer, CASE)
    return Pristine(
        root=root,
        keys=LocalStorage(root).list(""),
        last_seq=builder.entries[-1].seq,
        checkpoint_seqs=builder.checkpoint_seqs,
        anchor_seqs=sorted({*builder.checkpoint_seqs, *builder.manifest_heads.values()}),
        fingerprint=signer.fingerprint.removeprefix("sha256:"),
    )


@pytest.fixture
def archive(pristine: Pristine, tmp_path: Path) -> Path:
    target = tmp_path / "archive"
    shutil.copytree(pristine.root, target)
    return target


# mutations: each changes the archive under root and returns the places verify may name


def where_of(key: str) -> str:
    seq = layout.parse_chain_entry_key(CASE, key)
    return key if seq is None else f"chain entry {seq}"


def rewrite(root: Path, key: str, data: bytes) -> None:
    path = root / key
    if path.exists():
        path.chmod(0o644)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def load_entry(root: Path, seq: int) -> ChainEntry:
    return ChainEntry.from_json(parse_json((root / layout.chain_entry_key(CASE, seq)).read_bytes()))


def store_entry(root: Path, entry: ChainEntry) -> None:
    rewrite(root, layout.chain_entry_key(CASE, entry.seq), canonical_json(entry.to_json()))


def flip(root: Path, p: Pristine, key: str, offset: int, bit: int) -> set[str]:
    data = bytearray((root / key).read_bytes())
    data[offset % len(data)] ^= 1 << bit
    rewrite(root, key, bytes(data))
    return {where_of(key)}


def truncate(root: Path, p: Pristine, key: str, keep: float) -> set[str]:
    data = (root / key).read_bytes()
    rewrite(root, key, data[: int(len(data) * keep)])
    return {where_of(key)}


def delete(root: Path, p: Pristine, key: str) -> set[str]:
    (root / key).unlink()
    if key == p.final_checkpoint:
        return {f"chain entry {p.last_seq}"}  # the tail is no longer signed
    return {where_of(key)}


def swap(root: Path, p: Pristine, a: str, b: str) -> set[str]:
    data_a, data_b = (root / a).read_bytes(), (root / b).read_bytes()
    rewrite(root, a, data_b)
    rewrite(root, b, data_a)
    return {where_of(a), where_of(b)}


def copy_over(root: Path, p: Pristine, source: str, target: str) -> set[str]:
    rewrite(root, target, (root / source).read_bytes())
    return {where_of(target)}


def placed(p: Pristine, low_from: int, seq: int) -> str:
    """How verify names a change it can only place at or below ``seq``, above the last signed
    head below ``low_from``: the range, or the one entry when the range holds only it."""
    low = max((a + 1 for a in p.anchor_seqs if a < low_from), default=0)
    return f"chain entry {seq}" if low == seq else f"between chain entry {low} and {seq}"


def edit_entry(root: Path, p: Pristine, seq: int, recompute: bool) -> set[str]:
    entry = load_entry(root, seq)
    edited = dataclasses.replace(entry, body={**entry.body, "forged": True})
    if recompute:
        edited = dataclasses.replace(edited, hash=edited.computed_hash())
    store_entry(root, edited)
    return {placed(p, seq, seq) if recompute else f"chain entry {seq}"}


def edit_prev(root: Path, p: Pristine, seq: int) -> set[str]:
    entry = load_entry(root, seq)
    edited = dataclasses.replace(entry, prev=hashlib.sha256(b"elsewhere").hexdigest())
    store_entry(root, dataclasses.replace(edited, hash=edited.computed_hash()))
    return {f"chain entry {seq}"}


def insert_at_end(root: Path, p: Pristine) -> set[str]:
    last = load_entry(root, p.last_seq)
    store_entry(root, next_entry(last, CASE, "chat", last.at, CLOCK, {"text": "forged"}))
    return {f"chain entry {p.last_seq + 1}"}


def insert_and_renumber(root: Path, p: Pristine, seq: int) -> set[str]:
    """Insert an entry at seq and rewrite every later entry so that all links hold."""
    old = [load_entry(root, s) for s in range(p.last_seq + 1)]
    head = old[seq - 1]
    head = next_entry(head, CASE, "chat", head.at, CLOCK, {"text": "forged"})
    store_entry(root, head)
    for entry in old[seq:]:
        head = next_entry(head, CASE, entry.kind, entry.at, entry.clock, entry.body)
        store_entry(root, head)
    # The first signed head at or after the insertion no longer matches; the ones below hold.
    return {placed(p, seq, min(a for a in p.anchor_seqs if a >= seq))}


def swap_key_content(root: Path, p: Pristine) -> set[str]:
    rewrite(root, p.public_key, Signer.generate().public_key_bytes)
    return {p.public_key}


def replace_key(root: Path, p: Pristine) -> set[str]:
    (root / p.public_key).unlink()
    other = Signer.generate()
    rewrite(root, layout.public_key_key(CASE, other.fingerprint), other.public_key_bytes)
    return {p.public_key}


def add_object(root: Path, p: Pristine, key: str) -> set[str]:
    rewrite(root, key, b"planted")
    return {key}


PLANTED = [
    layout.segment_key(CASE, INSPECTIONS[0], "applicant-video", 3),
    layout.segment_key(CASE, INSPECTIONS[1], "inspector-audio", 99),
    f"cases/{CASE}/inspections/{INSPECTIONS[0]}/notes.txt",
    f"cases/{CASE}/chain/extra.json",
    f"cases/{CASE}/readme",
]


def failure(root: Path) -> IntegrityError | None:
    try:
        verify_case(LocalStorage(root), CASE)
    except IntegrityError as exc:
        return exc
    return None


def check(root: Path, expected: set[str], what: str) -> None:
    found = failure(root)
    assert found is not None, f"{what}: verify passed"
    assert found.where in expected, (
        f"{what}: named {found.where!r} ({found.reason}), not {expected}"
    )


# the intact archive


def test_an_intact_case_verifies_with_a_full_report(archive: Path, pristine: Pristine) -> None:
    report = verify_case(LocalStorage(archive), CASE)
    assert report.case_id == CASE
    assert (report.inspections, report.segments, report.gaps) == (2, 18, 2)
    assert report.chain_entries == pristine.last_seq + 1
    assert (report.checkpoints, report.manifests) == (len(pristine.checkpoint_seqs), 2)
    assert report.key_fingerprint == "sha256:" + pristine.fingerprint
    assert report.key_fingerprints == [report.key_fingerprint]
    assert report.duration_s == 2 * 3 * 4.0
    assert report.bytes == sum(os.path.getsize(archive / k) for k in pristine.keys_of("segment"))
    assert [s.key for s in report.snapshots] == [k for k in pristine.keys if k.endswith(".jpg")]
    assert report.first_utc < report.last_utc
    assert report.partial_segments == []


def test_an_unknown_case_fails_naming_its_prefix(archive: Path) -> None:
    with pytest.raises(IntegrityError) as failed:
        verify_case(LocalStorage(archive), "case-2")
    assert failed.value.where == "cases/case-2/"


def test_a_traversal_looking_case_id_is_refused_before_any_read(archive: Path) -> None:
    with pytest.raises(ValueError, match="case_id"):
        verify_case(LocalStorage(archive), "../x")


# every object, every way


def test_a_flipped_byte_in_any_object_fails_naming_it(archive: Path, pristine: Pristine) -> None:
    for key in pristine.keys:
        original = (archive / key).read_bytes()
        for offset in (0, len(original) // 3, len(original) // 2, len(original) - 1):
            for bit in (0, 5):
                expected = flip(archive, pristine, key, offset, bit)
                check(archive, expected, f"flip bit {bit} at {offset} of {key}")
                rewrite(archive, key, original)
    assert failure(archive) is None


def test_a_truncated_object_fails_naming_it(archive: Path, pristine: Pristine) -> None:
    for key in pristine.keys:
        original = (archive / key).read_bytes()
        for keep in (0.0, 0.5, 0.99):
            check(archive, truncate(archive, pristine, key, keep), f"truncate {key} to {keep}")
            rewrite(archive, key, original)


def test_a_deleted_object_fails_naming_it(archive: Path, pristine: Pristine) -> None:
    intermediate = set(pristine.keys_of("checkpoint")) - {pristine.final_checkpoint}
    for key in pristine.keys:
        if key in intermediate:
            continue
        original = (archive / key).read_bytes()
        check(archive, delete(archive, pristine, key), f"delete {key}")
        rewrite(archive, key, original)


def test_deleting_an_intermediate_checkpoint_loses_only_a_redundant_signature(
    archive: Path, pristine: Pristine
) -> None:
    """Documented limitation: later signatures still cover everything it covered."""
    (archive / layout.checkpoint_key(CASE, pristine.checkpoint_seqs[0])).unlink()
    assert failure(archive) is None


def test_every_chain_entry_edited_with_or_without_its_hash_recomputed_is_named(
    archive: Path, pristine: Pristine
) -> None:
    for seq in range(pristine.last_seq + 1):
        original = (archive / layout.chain_entry_key(CASE, seq)).read_bytes()
        for recompute in (False, True):
            check(archive, edit_entry(archive, pristine, seq, recompute), f"edit {seq}")
            rewrite(archive, layout.chain_entry_key(CASE, seq), original)
        check(archive, edit_prev(archive, pristine, seq), f"relink {seq}")
        rewrite(archive, layout.chain_entry_key(CASE, seq), original)


def test_planted_objects_fail_naming_them(archive: Path, pristine: Pristine) -> None:
    for key in PLANTED:
        check(archive, add_object(archive, pristine, key), f"plant {key}")
        (archive / key).unlink()


def test_a_swapped_public_key_fails_naming_it(archive: Path, pristine: Pristine) -> None:
    check(archive, swap_key_content(archive, pristine), "swap key content")


def test_a_replaced_public_key_fails_naming_the_missing_one(
    pristine: Pristine, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(pristine.root, root)
    check(root, replace_key(root, pristine), "replace key")


# random mutations, many of them


@dataclass(frozen=True)
class Mutation:
    fn: Callable[..., set[str]]
    pristine: Pristine
    args: tuple[object, ...]

    def __call__(self, root: Path) -> set[str]:
        return self.fn(root, self.pristine, *self.args)

    def __repr__(self) -> str:
        return f"{self.fn.__name__}{self.args!r}"


def mutations(p: Pristine) -> st.SearchStrategy[Mutation]:
    keys = st.sampled_from(p.keys)
    seqs = st.integers(0, p.last_seq)
    media = st.sampled_from(p.stored_media)
    deletable = st.sampled_from(
        [k for k in p.keys if k not in set(p.keys_of("checkpoint")) - {p.final_checkpoint}]
    )

    def bind(fn: Callable[..., set[str]], *args: object) -> Mutation:
        return Mutation(fn, p, args)

    distinct_media = st.lists(media, min_size=2, max_size=2, unique=True)
    adjacent = st.integers(0, p.last_seq - 1)
    return st.one_of(
        st.builds(
            lambda k, o, b: bind(flip, k, o, b), keys, st.integers(0, 10**6), st.integers(0, 7)
        ),
        st.builds(lambda k, f: bind(truncate, k, f), keys, st.floats(0, 0.999)),
        deletable.map(lambda k: bind(delete, k)),
        distinct_media.map(lambda ab: bind(swap, ab[0], ab[1])),
        distinct_media.map(lambda ab: bind(copy_over, ab[0], ab[1])),
        adjacent.map(
            lambda s: bind(
                swap, layout.chain_entry_key(CASE, s), layout.chain_entry_key(CASE, s + 1)
            )
        ),
        st.builds(lambda s, r: bind(edit_entry, s, r), seqs, st.booleans()),
        seqs.map(lambda s: bind(edit_prev, s)),
        st.integers(1, p.last_seq).map(lambda s: bind(insert_and_renumber, s)),
        st.just(bind(insert_at_end)),
        st.just(bind(swap_key_content)),
        st.just(bind(replace_key)),
        st.sampled_from(PLANTED).map(lambda k: bind(add_object, k)),
    )


def test_random_tampering_never_goes_unnoticed_and_is_named(pristine: Pristine) -> None:
    @settings(max_examples=400, deadline=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        mutate = data.draw(mutations(pristine))
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch) / "archive"
            shutil.copytree(pristine.root, root)
            expected = mutate(root)
            check(root, expected, repr(mutate))

    run()


# what a recorder could get wrong, signed by the real key


def fresh_builder(tmp_path: Path) -> tuple[CaseBuilder, LocalStorage]:
    storage = LocalStorage(tmp_path / "archive")
    return CaseBuilder(storage, Signer.generate(), CASE), storage


def test_an_unsigned_tail_fails_unless_allowed(tmp_path: Path) -> None:
    builder, storage = fresh_builder(tmp_path)
    builder.append("created", {"title": "x"})
    builder.checkpoint()
    joined = builder.append("joined", {"who": "applicant"})
    with pytest.raises(IntegrityError) as failed:
        verify_case(storage, CASE)
    assert failed.value.where == f"chain entry {joined.seq}"
    assert "not covered" in failed.value.reason
    report = verify_case(storage, CASE, require_signed_tail=False)
    assert report.chain_entries == joined.seq + 1


def test_only_trusted_keys_are_accepted_when_named(archive: Path, pristine: Pristine) -> None:
    trusted = "sha256:" + pristine.fingerprint
    verify_case(LocalStorage(archive), CASE, trusted_keys={trusted})
    with pytest.raises(IntegrityError) as failed:
        verify_case(LocalStorage(archive), CASE, trusted_keys={"sha256:" + "0" * 64})
    assert failed.value.where == pristine.public_key


def test_a_skipped_segment_seq_is_named_at_its_chain_entry(tmp_path: Path) -> None:
    builder, storage = fresh_builder(tmp_path)
    builder.append("created", {})
    first = builder.segment(INSPECTIONS[0], "applicant-video", 0, builder.now)
    builder.append("segment", first.to_json())
    third = builder.segment(INSPECTIONS[0], "applicant-video", 2, builder.now)
    entry = builder.append("segment", third.to_json())
    builder.checkpoint()
    with pytest.raises(IntegrityError, match="expected 1") as failed:
        verify_case(storage, CASE)
    assert failed.value.where == f"chain entry {entry.seq}"


def test_partial_segments_are_reported(tmp_path: Path) -> None:
    builder, storage = fresh_builder(tmp_path)
    builder.append("created", {})
    record = builder.segment(INSPECTIONS[0], "applicant-audio", 0, builder.now)
    builder.append("segment", dataclasses.replace(record, partial=True).to_json())
    builder.append("recovered", {"segments": [record.key]})
    builder.checkpoint()
    assert verify_case(storage, CASE).partial_segments == [record.key]


def test_a_manifest_that_omits_a_chained_segment_is_named(tmp_path: Path) -> None:
    builder, storage = fresh_builder(tmp_path)
    builder.append("created", {})
    manifest = builder.inspection(INSPECTIONS[0], segments_per_track=1)
    builder.checkpoint()
    verify_case(storage, CASE)
    # A second archive, same story, but the signed manifest lists one segment fewer.
    other, other_storage = fresh_builder(tmp_path / "second")
    other.append("created", {})
    records = []
    for track in layout.TRACKS:
        records.append(other.segment(INSPECTIONS[0], track, 0, other.now))
        other.append("segment", records[-1].to_json())
    head = other.entries[-1]
    short = type(manifest).build(
        case_id=CASE,
        inspection_id=INSPECTIONS[0],
        segments=records[:-1],
        chain_head_seq=head.seq,
        chain_head=head.hash,
        created_at=other.tick(),
        signer=other.signer,
    )
    key = layout.manifest_key(CASE, INSPECTIONS[0])
    data = canonical_json(short.signed_json())
    put(other_storage, key, data)
    sha256 = hashlib.sha256(data).hexdigest()
    body = {"inspection_id": INSPECTIONS[0], "key": key, "sha256": sha256, "size": len(data)}
    other.append("manifest", body)
    other.checkpoint()
    with pytest.raises(IntegrityError, match="not in the manifest") as failed:
        verify_case(other_storage, CASE)
    assert failed.value.where == key


# exports


def export_zip(root: Path, keys: list[str], target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as export:
        for key in keys:
            export.writestr(key, (root / key).read_bytes())
    return target


def test_an_export_zip_verifies_and_a_corrupted_member_is_named(
    archive: Path, pristine: Pristine, tmp_path: Path
) -> None:
    path = export_zip(archive, pristine.keys, tmp_path / "export.zip")
    with ZipStorage(path) as export:
        assert export.case_ids() == [CASE]
        assert verify_case(export, CASE).segments == 18
    segment = pristine.keys_of("segment")[4]
    with zipfile.ZipFile(path) as export:
        info = export.getinfo(segment)
    raw = bytearray(path.read_bytes())
    raw[info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 7] ^= 1
    path.write_bytes(bytes(raw))
    with ZipStorage(path) as export, pytest.raises(IntegrityError) as failed:
        verify_case(export, CASE)
    assert failed.value.where == segment


def test_an_export_with_a_member_twice_is_refused(
    archive: Path, pristine: Pristine, tmp_path: Path
) -> None:
    path = export_zip(archive, pristine.keys, tmp_path / "export.zip")
    segment = pristine.keys_of("segment")[0]
    with (
        pytest.warns(UserWarning, match="Duplicate"),
        zipfile.ZipFile(path, "a") as export,
    ):
        export.writestr(segment, b"second version")
    with pytest.raises(IntegrityError) as failed:
        ZipStorage(path)
    assert failed.value.where == segment


# the command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="takan")
    add_verify_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["verify", *argv])


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_verify(parse(*argv), out), out.getvalue()


def test_takan_verify_summarises_an_intact_case(archive: Path, pristine: Pristine) -> None:
    data = archive.parent
    archive.rename(data / "archive-dir")
    (data / "archive-dir").rename(data / "archive")
    code, out = run(CASE, "--data", str(data))
    assert code == 0, out
    assert out.startswith(f"OK: case {CASE} is intact")
    assert "segments     18" in out
    assert "sha256:" + pristine.fingerprint in out
    assert len(out.splitlines()) <= 24
    code, out = run(CASE, "--storage", f"file://{archive}")
    assert code == 0, out


def test_takan_verify_names_the_failure_and_exits_1(archive: Path, pristine: Pristine) -> None:
    segment = pristine.keys_of("segment")[2]
    flip(archive, pristine, segment, 10, 1)
    code, out = run(CASE, "--storage", f"file://{archive}")
    assert code == 1
    assert out.startswith(f"FAILED: {segment}: SHA-256 is ")


def test_takan_verify_refuses_a_zip_of_objects_without_a_package_index(
    archive: Path, pristine: Pristine, tmp_path: Path
) -> None:
    """An intact case zipped by hand is not an export: nothing vouches for the zip as a whole
    (test_package_index.py verifies real exports)."""
    path = export_zip(archive, pristine.keys, tmp_path / "case-1-export.zip")
    code, out = run(str(path))
    assert (code, out.strip()) == (
        1,
        "FAILED: package-index.json: missing: the package has no index of its members",
    )


def test_takan_verify_refuses_bad_input(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("../x", "--storage", f"file://{archive}")[0] == 2
    assert "case_id" in capsys.readouterr().err
    assert run(CASE, "--storage", "ftp://x")[0] == 2
    code, out = run("nope", "--storage", f"file://{archive}")
    assert (code, out.strip()) == (1, "FAILED: cases/nope/: no objects: unknown case")


def test_integrity_errors_survive_pickling_for_worker_processes() -> None:
    error = pickle.loads(pickle.dumps(IntegrityError("chain entry 3", "edited")))  # noqa: S301
    assert (error.where, error.reason, str(error)) == (
        "chain entry 3",
        "edited",
        "chain entry 3: edited",
    )

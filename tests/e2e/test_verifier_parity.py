"""The browser checks what takan verify checks, and says it the same way.

Each fixture below is a copy of the real archive (recorded through the server, timestamped by a
local TSA) changed as an insider would change it: a forged tail, a checkpoint, manifest or
conclusion signed by a key dropped into keys/, a key that is not the trusted one, an edit with
every later hash recomputed, a replayed checkpoint or entry of another case, a non-canonical
spelling, a forged key rotation, a forged timestamp, a cut-off tail under a receipt, a tampered
receipt; and random tampering drawn by the tamper oracle. The pages' verifier (the one the
replay and offline pages run, in Chromium) and takan verify's must give the same verdict and
name the same place for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, sync_playwright

from recorder import layout
from recorder.canonical import canonical_json, parse_json
from recorder.chain import ChainEntry
from recorder.conclusion import Conclusion
from recorder.key_history import rotation_statement
from recorder.passkey import b64url, from_b64url
from recorder.signing import Signer
from tests.e2e.verify_harness import (
    ArchiveServer,
    Options,
    Verdict,
    archive_server,
    cli_verdict,
    page_verdict,
    same_verdict,
)
from tests.integration.real_archive import RealArchive, RealCase
from tests.integration.test_tamper_chain import cut_below
from tests.soft_authenticator import SoftAuthenticator
from tests.tamper import (
    SPELLINGS,
    drop_key,
    flip,
    forged_checkpoint,
    forged_conclusion,
    forged_manifest,
    forged_tail,
    load_entry,
    put_object,
    read,
    rewrite,
    rewrite_chain_from,
    with_body,
)
from tests.tamper_oracle import mutations, read_facts

pytestmark = [pytest.mark.single_engine, pytest.mark.browser]  # archives only: no database

Fixture = Callable[[Path, RealArchive], tuple[str, Options]]


@pytest.fixture(scope="module")
def verifier_page(chromium_endpoint: str) -> Iterator[tuple[Page, ArchiveServer]]:
    """The harness page in the session's Chromium, and the server of the archive it reads."""
    with sync_playwright() as playwright, archive_server() as served:
        browser = playwright.chromium.connect_over_cdp(chromium_endpoint)
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(served.url)
            page.wait_for_function("() => window.TakanVerify && window.verifyCase")
            yield page, served
        finally:
            context.close()
            browser.close()


def both_verdicts(
    verifier_page: tuple[Page, ArchiveServer], root: Path, case_id: str, options: Options
) -> tuple[Verdict, Verdict]:
    page, served = verifier_page
    served.root = root
    return cli_verdict(root, case_id, options), page_verdict(page, case_id, options)


def copy_archive(real: RealArchive, target: Path, case_id: str | None = None) -> Path:
    """A writable copy of the real archive (or of one case of it) at ``target``."""
    if case_id is None:
        shutil.copytree(real.archive, target)
    else:
        shutil.copytree(real.archive / "cases" / case_id, target / "cases" / case_id)
    for path in target.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    return target


# what an insider does


def pristine(root: Path, real: RealArchive) -> tuple[str, Options]:
    return real.full.case_id, Options()


def pristine_pinned(root: Path, real: RealArchive) -> tuple[str, Options]:
    return real.full.case_id, Options(trusted=real.fingerprint)


def pinned_to_another_key(root: Path, real: RealArchive) -> tuple[str, Options]:
    return real.plain.case_id, Options(trusted=Signer.generate().fingerprint)


def forged_tail_of_three(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full.case_id
    forged_tail(root, case, [("chat", {"text": f"伪造 {n}"}) for n in range(3)])
    return case, Options()


def forged_tail_allowed(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full.case_id
    forged_tail(root, case, [("chat", {"text": "forged"})])
    return case, Options(allow_unsigned_tail=True)


def checkpoint_by_a_dropped_key(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full.case_id
    forger = Signer.generate()
    drop_key(root, case, forger)
    [seq] = forged_tail(root, case, [("chat", {"text": "forged"})])
    forged_checkpoint(root, case, forger, load_entry(root, case, seq))
    return case, Options()


def conclusion_by_a_dropped_key(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full
    forger = Signer.generate()
    drop_key(root, case.case_id, forger)
    head = load_entry(root, case.case_id, case.last_seq)
    forged_tail(
        root, case.case_id, [("conclusion", forged_conclusion(forger, case.inspection_id, head.at))]
    )
    return case.case_id, Options(allow_unsigned_tail=True)


def conclusion_re_signed_in_place(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full
    forger = Signer.generate()
    drop_key(root, case.case_id, forger)
    [conclusion] = [e for e in case.entries if e.kind == "conclusion"]
    body = forged_conclusion(forger, case.inspection_id, conclusion.at)
    later = [with_body(conclusion, **body), *case.entries[conclusion.seq + 1 :]]
    rewrite_chain_from(root, case.case_id, later, conclusion.seq)
    return case.case_id, Options()


def edit_with_hashes_recomputed(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.plain
    seq = case.entries[len(case.entries) // 3].seq
    edited = with_body(case.entries[seq], note="改过")
    rewrite_chain_from(root, case.case_id, [edited, *case.entries[seq + 1 :]], seq)
    return case.case_id, Options(trusted=real.fingerprint)


def manifest_by_a_dropped_key(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.plain.case_id
    forger = Signer.generate()
    drop_key(root, case, forger)
    forged_manifest(root, case, forger, "c" * 32, load_entry(root, case, real.plain.last_seq))
    return case, Options()


def older_checkpoint_over_newer(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full
    older, newer = case.of_kind("checkpoint")[0], case.of_kind("checkpoint")[-1]
    rewrite(root, newer, read(root, older))
    return case.case_id, Options()


def entry_of_another_case(root: Path, real: RealArchive) -> tuple[str, Options]:
    full, plain = real.full.case_id, real.plain.case_id
    rewrite(root, layout.chain_entry_key(full, 3), read(root, layout.chain_entry_key(plain, 3)))
    return full, Options()


def public_key_replaced(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full.case_id
    [key] = real.full.of_kind("public_key")
    rewrite(root, key, Signer.generate().public_key_bytes)
    return case, Options()


def unrecorded_key_file(root: Path, real: RealArchive) -> tuple[str, Options]:
    drop_key(root, real.plain.case_id, Signer.generate())
    return real.plain.case_id, Options()


def rotation_not_signed_by_the_key_in_use(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full.case_id
    forger = Signer.generate()
    reference = drop_key(root, case, forger)
    head = load_entry(root, case, real.full.last_seq)
    statement = rotation_statement(
        real.fingerprint, forger.fingerprint, forger.public_key_bytes, head.at
    )
    body = {
        "fingerprint": forger.fingerprint,
        "key": reference,
        "sha256": hashlib.sha256(forger.public_key_bytes).hexdigest(),
        "size": len(forger.public_key_bytes),
        "previous": real.fingerprint,
        "at": head.at,
        "signature": base64.b64encode(forger.sign(statement)).decode(),
    }
    forged_tail(root, case, [("key_rotated", body)])
    return case, Options(allow_unsigned_tail=True)


def respelled(spelling: str, kind: str) -> Fixture:
    def change(root: Path, real: RealArchive) -> tuple[str, Options]:
        case = real.full
        key = case.of_kind(kind)[len(case.of_kind(kind)) // 2]
        rewrite(root, key, SPELLINGS[spelling](read(root, key)))
        return case.case_id, Options()

    change.__name__ = f"{spelling}_{kind}"
    return change


def forged_timestamp_token(content: str) -> Fixture:
    """A timestamp entry in the unsigned tail (which takan verify accepts after the last
    signature) for the final checkpoint, recording a token that is garbage or another
    document's real token."""

    def change(root: Path, real: RealArchive) -> tuple[str, Options]:
        case = real.full
        first, final = case.of_kind("checkpoint")[0], case.of_kind("checkpoint")[-1]
        token = (
            b"\x30\x03\x02\x01\x00" if content == "garbage" else read(root, case.token_of(first))
        )
        old = case.entry_recording(case.token_of(final))
        reference = put_object(root, case.token_of(final), token)
        later = [with_body(old, **reference), *case.entries[old.seq + 1 :]]
        rewrite_chain_from(root, case.case_id, later, old.seq)
        return case.case_id, Options()

    change.__name__ = f"timestamp_token_{content}"
    return change


def passkey_forgery(change: str) -> Fixture:
    """Someone holding the server and its archive key chains, in the unsigned tail, what the
    inspector's passkey did not sign: the passkey rules alone can tell."""

    def forge(root: Path, real: RealArchive) -> tuple[str, Options]:
        case = real.full
        archive_key = Signer.load_or_create(real.data_dir / "signing.key")
        [enrolled] = [e for e in case.entries if e.kind == "passkey_enrolled"]
        [genuine] = [e for e in case.entries if e.kind == "conclusion"]
        body = dict(genuine.body)
        fields: dict[str, Any] = {}  # the conclusion the passkey signed, unless changed
        passkey = dict(body["passkey"])
        tail: list[tuple[str, dict[str, Any]]] = []
        if change == "outcome":
            fields["outcome"] = "fail"
        elif change == "signer":
            fields["by"] = "inspector2"
        elif change == "unenrolled":
            passkey["credential_id"] = b64url(b"another credential")
        elif change == "signature":
            raw = bytearray(from_b64url(passkey["signature"], "signature"))
            raw[12] ^= 0x01  # inside r: still DER, no longer the signature
            passkey["signature"] = b64url(bytes(raw))
        elif change == "reenrolled":
            other = SoftAuthenticator(enrolled.body["origin"], enrolled.body["rp_id"])
            tail.append(("passkey_enrolled", {**enrolled.body, "public_key": other.spki_b64}))
        elif change == "bad_key":
            ed25519 = Signer.generate().public_key_bytes
            spki = bytes.fromhex("302a300506032b6570032100") + ed25519
            tail.append(
                (
                    "passkey_enrolled",
                    {**enrolled.body, "public_key": base64.b64encode(spki).decode()},
                )
            )
        conclusion = Conclusion.from_body({**body, **fields})
        tail.append(
            ("conclusion", {**body, **conclusion.signed_body(archive_key), "passkey": passkey})
        )
        forged_tail(root, case.case_id, tail)
        return case.case_id, Options(allow_unsigned_tail=True)

    forge.__name__ = f"passkey_{change}"
    return forge


def flipped_marked_up_copy(root: Path, real: RealArchive) -> tuple[str, Options]:
    [copy] = real.full.of_kind("marked_up")
    flip(root, copy, 200, 1)
    return real.full.case_id, Options()


def forged_marked_up_copy(names: str) -> Fixture:
    """An ``annotation_rendered`` entry in the unsigned tail (accepted with
    --allow-unsigned-tail) whose copy is stored, but which names an original or an annotation
    no earlier entry records."""

    def change(root: Path, real: RealArchive) -> tuple[str, Options]:
        case = real.full
        [rendered] = [e for e in case.entries if e.kind == "annotation_rendered"]
        other = "e" * 32
        body = dict(rendered.body)
        if names == "a missing original":
            body["original_key"] = layout.snapshot_key(case.case_id, case.inspection_id, other)
        else:  # an annotation entry that is not an annotation of this snapshot
            body["annotation_seq"] = body["original_seq"]
        copy = layout.marked_up_key(case.case_id, case.inspection_id, body["annotation_id"], 2)
        body |= put_object(root, copy, read(root, rendered.body["key"]))
        forged_tail(root, case.case_id, [("annotation_rendered", body)])
        return case.case_id, Options(allow_unsigned_tail=True)

    change.__name__ = f"marked_up_copy_naming_{names.replace(' ', '_')}"
    return change


def receipt_of(case: RealCase, data: bytes | None = None) -> Options:
    return Options(
        receipts=((str(case.receipt), data if data is not None else case.receipt.read_bytes()),)
    )


def intact_with_its_receipt(root: Path, real: RealArchive) -> tuple[str, Options]:
    return real.full.case_id, receipt_of(real.full)


def cut_under_a_receipt(root: Path, real: RealArchive) -> tuple[str, Options]:
    case = real.full
    manifest = case.entry_recording(case.of_kind("manifest")[0])
    cut_below(root, case, max(s for s in case.checkpoint_seqs if s < manifest.seq) + 1)
    return case.case_id, receipt_of(case)


def receipt_of_another_case(root: Path, real: RealArchive) -> tuple[str, Options]:
    return real.plain.case_id, receipt_of(real.full)


def receipt_changed(root: Path, real: RealArchive) -> tuple[str, Options]:
    data = real.full.receipt.read_bytes().replace(b'"chain_head_seq":', b'"chain_head_seq":1', 1)
    return real.full.case_id, receipt_of(real.full, data)


def receipt_not_json(root: Path, real: RealArchive) -> tuple[str, Options]:
    return real.full.case_id, receipt_of(real.full, real.full.receipt.read_bytes()[:-7])


FIXTURES: list[Fixture] = [
    pristine,
    pristine_pinned,
    pinned_to_another_key,
    forged_tail_of_three,
    forged_tail_allowed,
    checkpoint_by_a_dropped_key,
    conclusion_by_a_dropped_key,
    conclusion_re_signed_in_place,
    edit_with_hashes_recomputed,
    manifest_by_a_dropped_key,
    older_checkpoint_over_newer,
    entry_of_another_case,
    public_key_replaced,
    unrecorded_key_file,
    rotation_not_signed_by_the_key_in_use,
    *(
        passkey_forgery(change)
        for change in ("outcome", "signer", "unenrolled", "signature", "reenrolled", "bad_key")
    ),
    *(respelled(s, k) for s in sorted(SPELLINGS) for k in ("chain", "checkpoint", "manifest")),
    forged_timestamp_token("garbage"),
    forged_timestamp_token("another document's"),
    flipped_marked_up_copy,
    forged_marked_up_copy("a missing original"),
    forged_marked_up_copy("another entry as its annotation"),
    intact_with_its_receipt,
    cut_under_a_receipt,
    receipt_of_another_case,
    receipt_changed,
    receipt_not_json,
]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f.__name__)
def test_the_page_and_takan_verify_give_one_verdict(
    real_archive: RealArchive,
    verifier_page: tuple[Page, ArchiveServer],
    tmp_path: Path,
    fixture: Fixture,
) -> None:
    root = copy_archive(real_archive, tmp_path / "archive")
    case_id, options = fixture(root, real_archive)
    cli, page = both_verdicts(verifier_page, root, case_id, options)
    assert same_verdict(cli, page), f"takan verify: {cli}\nthe page:     {page}"
    if fixture.__name__.startswith(("pristine", "intact")) or fixture is forged_tail_allowed:
        assert cli is None, cli
    else:
        assert cli is not None, "takan verify passed a tampered archive"
    if fixture.__name__ in PASSKEY_REASONS:
        assert cli is not None
        assert cli[1].startswith(PASSKEY_REASONS[fixture.__name__]), cli
    if fixture.__name__ in MARKED_UP_VERDICTS:
        where, reason = MARKED_UP_VERDICTS[fixture.__name__]
        [copy] = real_archive.full.of_kind("marked_up")
        names = {
            "copy": copy,
            "tail": real_archive.full.last_seq + 1,
            "case": case_id,
            "inspection": real_archive.full.inspection_id,
        }
        assert cli is not None
        assert cli[0] == where.format(**names), cli
        assert cli[1].startswith(reason.format(**names)), cli
        assert page == cli, f"takan verify: {cli}\nthe page:     {page}"


PASSKEY_REASONS = {
    "passkey_outcome": "the passkey signed another challenge than this conclusion's",
    "passkey_signer": "the conclusion by inspector2 is signed with the passkey of inspector1",
    "passkey_unenrolled": "the conclusion's passkey YW5vdGhlciBjcmVkZW50aWFs is not enrolled",
    "passkey_signature": "the passkey signature does not verify",
    "passkey_reenrolled": "enrols passkey ",
    "passkey_bad_key": "bad passkey enrolment: public_key is not an uncompressed P-256",
}


MARKED_UP_VERDICTS = {
    "flipped_marked_up_copy": ("{copy}", "SHA-256 is "),
    "marked_up_copy_naming_a_missing_original": (
        "chain entry {tail}",
        "renders the original cases/{case}/inspections/{inspection}/snapshots/eeeeeeee",
    ),
    "marked_up_copy_naming_another_entry_as_its_annotation": (
        "chain entry {tail}",
        "renders the annotation cases/{case}/inspections/{inspection}/annotations/",
    ),
}


def test_random_tampering_gets_one_verdict_from_the_page_and_takan_verify(
    real_archive: RealArchive, verifier_page: tuple[Page, ArchiveServer], tmp_path: Path
) -> None:
    facts = {
        case.case_id: read_facts(real_archive.archive, case.case_id)
        for case in (real_archive.full, real_archive.plain)
    }
    runs = iter(range(10**6))

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(case_id=st.sampled_from(sorted(facts)), pinned=st.booleans(), data=st.data())
    def run(case_id: str, pinned: bool, data: st.DataObject) -> None:
        mutation = data.draw(mutations(facts[case_id]), label="mutation")
        root = copy_archive(real_archive, tmp_path / f"run-{next(runs)}" / "archive", case_id)
        mutation.apply(root)
        options = Options(trusted=real_archive.fingerprint if pinned else None)
        cli, page = both_verdicts(verifier_page, root, case_id, options)
        shutil.rmtree(root.parent)
        assert cli is not None, f"{mutation!r}: takan verify passed"
        assert same_verdict(cli, page), f"{mutation!r}:\ntakan verify: {cli}\nthe page:     {page}"

    run()


def test_the_entries_the_page_reads_are_the_chain_as_stored(real_archive: RealArchive) -> None:
    """The fixtures' premise: the pristine archive's chain is canonical JSON of its entries."""
    case = real_archive.full
    for entry in case.entries[:3]:
        raw = read(real_archive.archive, layout.chain_entry_key(case.case_id, entry.seq))
        assert canonical_json(parse_json(raw)) == raw
        assert ChainEntry.from_json(parse_json(raw)) == entry

"""The package vouches for every byte in it: ``takan verify EXPORT.zip`` names any member that
was changed, added or removed, and refuses an index that the case's own key did not sign.

The packages are written by ``recorder.export.write_package`` from a real archive (the evidence
fixture) and the real offline page, then changed as a tamperer would, member by member.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder import layout
from recorder.archive import Archive
from recorder.canonical import canonical_json
from recorder.export import PackageAssets, render_public_keys, write_package
from recorder.key_history import KeyHistory
from recorder.package_index import (
    INDEX_NAME,
    IndexBuilder,
    IndexedMember,
    PackageIndex,
    check_signature,
    parse_index,
    public_keys_in_text,
)
from recorder.signing import Signer
from recorder.storage import LocalStorage
from server.cli.verify import add_verify_parser, run_verify
from tests.unit.evidence_fixture import build_case

CASE = "case-1"
EXPORTED_AT = "2026-03-01T10:00:00.000Z"
WEB = Path(__file__).resolve().parents[2] / "web"
Change = Callable[[str, bytes], bytes | None]


@dataclass(frozen=True)
class Exported:
    path: Path
    signer: Signer

    def names(self) -> list[str]:
        with zipfile.ZipFile(self.path) as package:
            return package.namelist()

    def read(self, name: str) -> bytes:
        with zipfile.ZipFile(self.path) as package:
            return package.read(name)

    def index(self) -> PackageIndex:
        return parse_index(self.read(INDEX_NAME)).index


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("package")
    storage = LocalStorage(root / "archive")
    signer = Signer.generate()
    build_case(storage, signer, CASE)
    path = root / "package.zip"
    with path.open("wb") as out:
        write_package(
            out,
            storage,
            CASE,
            storage.list(layout.case_prefix(CASE)),
            PackageAssets.from_web_dir(WEB),
            EXPORTED_AT,
            signer,
        )
    return Exported(path, signer)


def rezip(
    source: Path,
    target: Path,
    change: Change = lambda name, data: data,
    add: tuple[tuple[str, bytes], ...] = (),
) -> Path:
    """``source`` written again member by member: ``change`` gives each member's new bytes
    (None drops it), ``add`` appends members."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info, data)
        for name, data in add:
            new.writestr(name, data)
    return target


def replacing(name: str, data: bytes) -> Change:
    return lambda member, old: data if member == name else old


def resigned(
    exported: Exported, signer: Signer, edit: Callable[[PackageIndex], PackageIndex]
) -> bytes:
    return edit(replace(exported.index(), key_fingerprint=signer.fingerprint)).signed(signer)


def verify(path: Path, *options: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="takan")
    add_verify_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = run_verify(parser.parse_args(["verify", str(path), *options]), out)
    return code, out.getvalue().strip()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# the format


def test_the_index_example_in_the_docs_is_exact() -> None:
    secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret)))
    docs = (Path(__file__).parents[2] / "docs" / "archive.md").read_text(encoding="utf-8")
    entry = docs.split("```json\n", 1)[1].split("\n", 1)[0].encode()  # the chain's entry 0
    assert entry.startswith(b'{"at":"2026-03-01T09:00:00.000Z"')
    readme = "# Takan 证据包 / Takan evidence package\n".encode()
    builder = IndexBuilder(CASE)
    builder.add("README.md", len(readme), sha256(readme))
    builder.add(layout.chain_entry_key(CASE, 0), len(entry), sha256(entry))
    document = builder.sign(signer, EXPORTED_AT, "server-system-clock")
    assert document.decode() in docs
    signed = parse_index(document)
    check_signature(signed, signer.public_key_bytes)
    assert [m.size for m in signed.index.members] == [43, 286]


def test_an_index_refuses_what_no_package_may_list() -> None:
    member = IndexedMember("README.md", 1, "0" * 64)
    fingerprint = Signer.generate().fingerprint
    for members, reason in (
        ((member, member), "lists README.md twice"),
        ((replace(member, name="cases/case-2/keys/x.pub"),), "a member of another case"),
    ):
        with pytest.raises(ValueError, match=reason):
            PackageIndex(CASE, EXPORTED_AT, "server-system-clock", fingerprint, members)
    for name in (INDEX_NAME, "../x", "a//b", ".x"):
        with pytest.raises(ValueError, match=r"itself|segment"):
            IndexedMember(name, 1, "0" * 64)
    with pytest.raises(ValueError, match="size"):
        IndexedMember("README.md", -1, "0" * 64)


# the intact package


def test_the_index_is_the_last_member_and_lists_every_other_one(exported: Exported) -> None:
    names = exported.names()
    assert names[-1] == INDEX_NAME
    index = exported.index()
    assert [m.name for m in index.members] == names[:-1]
    assert names[:4] == ["README.md", "public-key.txt", "index.html", "offline/evidence-core.js"]
    for member in index.members:
        data = exported.read(member.name)
        assert (member.size, member.sha256) == (len(data), sha256(data)), member.name
    assert (index.case_id, index.exported_at, index.clock) == (
        CASE,
        EXPORTED_AT,
        "server-system-clock",
    )
    assert index.key_fingerprint == exported.signer.fingerprint
    raw = exported.read(INDEX_NAME)
    assert canonical_json(json.loads(raw)) == raw
    assert set(json.loads(raw)) == {"package_index", "signature"}


def test_an_intact_package_verifies_and_says_its_index_is_signed(exported: Exported) -> None:
    code, out = verify(exported.path)
    assert code == 0, out
    assert out.startswith(f"OK: case {CASE} is intact")
    members = len(exported.names())
    assert (
        f"package      {members} members, each as {INDEX_NAME} lists it, signed by"
        f" {exported.signer.fingerprint} at {EXPORTED_AT}"
    ) in out
    assert verify(exported.path, "--key", exported.signer.fingerprint)[0] == 0
    assert verify(exported.path, "--case", CASE)[0] == 0


# changed, added, removed


def test_an_extra_page_is_named_as_not_listed(exported: Exported, tmp_path: Path) -> None:
    path = rezip(exported.path, tmp_path / "p.zip", add=(("evil.html", b"<script></script>"),))
    assert verify(path) == (1, "FAILED: evil.html: not listed in the package index")


def test_a_changed_offline_script_is_named_with_both_hashes(
    exported: Exported, tmp_path: Path
) -> None:
    original = exported.read("offline/offline.js")
    changed = original.replace(b"'use strict';", b"'use strict'; ")[:-1]
    assert len(changed) == len(original)
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: changed if name == "offline/offline.js" else data,
    )
    listed = sha256(original)
    assert verify(path) == (
        1,
        f"FAILED: offline/offline.js: SHA-256 is {sha256(changed)};"
        f" the package index records {listed}",
    )


def test_a_grown_or_shrunk_member_is_named_with_the_listed_size(
    exported: Exported, tmp_path: Path
) -> None:
    style = exported.read("offline/style.css")
    listed = len(style)
    for name, data, reason in (
        ("grown", style + b"x" * 5_000_000, f"size is more than {listed} bytes"),
        ("shrunk", style[:-1], f"size is {listed - 1} bytes"),
    ):
        path = rezip(exported.path, tmp_path / f"{name}.zip", replacing("offline/style.css", data))
        assert verify(path) == (
            1,
            f"FAILED: offline/style.css: {reason}; the package index records {listed}",
        )


def test_a_removed_readme_is_named_as_absent(exported: Exported, tmp_path: Path) -> None:
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: None if name == "README.md" else data,
    )
    assert verify(path) == (1, "FAILED: README.md: listed in the package index but absent")


def test_a_replaced_public_key_text_is_named(exported: Exported, tmp_path: Path) -> None:
    other = Signer.generate()
    text = exported.read("public-key.txt").decode()
    forged = text.replace(exported.signer.fingerprint, other.fingerprint).encode()
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: forged if name == "public-key.txt" else data,
    )
    code, out = verify(path)
    assert code == 1
    assert out.startswith("FAILED: public-key.txt: SHA-256 is "), out


def test_a_changed_readme_fingerprint_is_named(exported: Exported, tmp_path: Path) -> None:
    other = Signer.generate().fingerprint
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: (
            data.replace(exported.signer.fingerprint.encode(), other.encode())
            if name == "README.md"
            else data
        ),
    )
    code, out = verify(path)
    assert code == 1
    assert out.startswith("FAILED: README.md: SHA-256 is "), out


def test_a_changed_case_object_is_named_by_the_index(exported: Exported, tmp_path: Path) -> None:
    chain_entry = layout.chain_entry_key(CASE, 3)
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: data.replace(b'"seq":3', b'"seq":4') if name == chain_entry else data,
    )
    code, out = verify(path)
    assert code == 1
    listed = next(m for m in exported.index().members if m.name == chain_entry)
    assert out.startswith(f"FAILED: {chain_entry}: SHA-256 is "), out
    assert out.endswith(f"; the package index records {listed.sha256}"), out


def test_a_member_of_another_case_fails_naming_it_not_a_usage_error(
    exported: Exported, tmp_path: Path
) -> None:
    stray = layout.chain_entry_key("case-2", 0)
    path = rezip(exported.path, tmp_path / "p.zip", add=((stray, b"{}"),))
    assert verify(path) == (
        1,
        f"FAILED: {stray}: a member of case case-2; this package is of case {CASE}",
    )


def test_a_package_without_its_index_fails_naming_the_index(
    exported: Exported, tmp_path: Path
) -> None:
    path = rezip(
        exported.path, tmp_path / "p.zip", lambda name, data: None if name == INDEX_NAME else data
    )
    assert verify(path) == (
        1,
        f"FAILED: {INDEX_NAME}: missing: the package has no index of its members",
    )


def test_an_unsigned_or_badly_signed_index_fails_naming_the_index(
    exported: Exported, tmp_path: Path
) -> None:
    document = json.loads(exported.read(INDEX_NAME))
    unsigned = canonical_json({"package_index": document["package_index"]})
    path = rezip(
        exported.path,
        tmp_path / "unsigned.zip",
        lambda name, data: unsigned if name == INDEX_NAME else data,
    )
    code, out = verify(path)
    assert code == 1
    assert out.startswith(f"FAILED: {INDEX_NAME}: not a valid signed package index: "), out

    signature = bytearray(base64.b64decode(document["signature"]))
    signature[0] ^= 1
    document["signature"] = base64.b64encode(bytes(signature)).decode()
    path = rezip(
        exported.path,
        tmp_path / "bad.zip",
        lambda name, data: canonical_json(document) if name == INDEX_NAME else data,
    )
    assert verify(path) == (
        1,
        f"FAILED: {INDEX_NAME}: signature does not verify with key {exported.signer.fingerprint}",
    )

    spaced = exported.read(INDEX_NAME) + b"\n"
    path = rezip(
        exported.path,
        tmp_path / "spaced.zip",
        lambda name, data: spaced if name == INDEX_NAME else data,
    )
    assert verify(path) == (1, f"FAILED: {INDEX_NAME}: not in canonical JSON form")


def test_an_index_resigned_by_another_key_fails_naming_the_index(
    exported: Exported, tmp_path: Path
) -> None:
    """A tamperer's own key, put into the case, the index and public-key.txt: no chain entry
    records it."""
    forger = Signer.generate()
    key_name = layout.public_key_key(CASE, forger.fingerprint)
    key_text = render_public_keys(CASE, {forger.fingerprint: forger.public_key_bytes})

    def edit(index: PackageIndex) -> PackageIndex:
        members = [
            IndexedMember(m.name, len(key_text), sha256(key_text))
            if m.name == "public-key.txt"
            else m
            for m in index.members
        ]
        key = forger.public_key_bytes
        members.append(IndexedMember(key_name, len(key), sha256(key)))
        return replace(index, members=tuple(members))

    index = resigned(exported, forger, edit)
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: (
            None if name == INDEX_NAME else key_text if name == "public-key.txt" else data
        ),
        add=((key_name, forger.public_key_bytes), (INDEX_NAME, index)),
    )
    assert verify(path) == (
        1,
        f"FAILED: {key_name}: stored object is not referenced by any chain entry",
    )
    assert verify(path, "--key", exported.signer.fingerprint) == verify(path)


async def test_an_index_signed_by_a_retired_key_fails_naming_the_index(tmp_path: Path) -> None:
    """After a rotation the old key signs nothing new, the package index included; the new key,
    trusted through the rotation, does."""
    storage = LocalStorage(tmp_path / "archive")
    old, new = Signer.generate(), Signer.generate()
    history = KeyHistory.starting_with(old.public_key_bytes)
    rotated = history.rotated(old, new, "2026-12-06T10:00:00.000Z")
    for signer, keys, kind in ((old, history, "before"), (new, rotated, "after")):
        archive = Archive(storage, tmp_path / "spool", signer, key_history=keys)
        await archive.start()
        try:
            await archive.append(CASE, kind, {"n": kind})
            await archive.checkpoint(CASE)
            await archive.drain()
        finally:
            await archive.stop()
    rotation = next(
        seq
        for seq, key in enumerate(storage.list(layout.chain_prefix(CASE)))
        if b'"kind":"key_rotated"' in storage.get(key)
    )

    def export(signer: Signer) -> Path:
        path = tmp_path / f"{signer.fingerprint[7:15]}.zip"
        with path.open("wb") as out:
            keys = storage.list(layout.case_prefix(CASE))
            assets = PackageAssets.from_web_dir(WEB)
            write_package(out, storage, CASE, keys, assets, EXPORTED_AT, signer)
        return path

    assert verify(export(new), "--key", old.fingerprint)[0] == 0
    assert verify(export(old)) == (
        1,
        f"FAILED: {INDEX_NAME}: signed by {old.fingerprint} after chain entry {rotation}"
        " rotated away from it",
    )


def test_an_index_naming_a_key_the_package_lacks_fails_naming_the_index(
    exported: Exported, tmp_path: Path
) -> None:
    forger = Signer.generate()
    index = resigned(exported, forger, lambda index: index)
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: index if name == INDEX_NAME else data,
    )
    assert verify(path) == (
        1,
        f"FAILED: {INDEX_NAME}: names signing key {forger.fingerprint}, absent"
        f" ({layout.public_key_key(CASE, forger.fingerprint)})",
    )


def test_public_key_text_must_name_the_index_key(exported: Exported, tmp_path: Path) -> None:
    """Even a package its own key signed must not tell the reader another key."""
    text = b"fingerprint: " + Signer.generate().fingerprint.encode() + b"\n"
    other = Signer.generate()
    text += b"public_key_base64: " + base64.b64encode(other.public_key_bytes) + b"\n"
    forged = (
        b"fingerprint: "
        + other.fingerprint.encode()
        + b"\npublic_key_base64: "
        + base64.b64encode(other.public_key_bytes)
        + b"\n"
    )

    def edit(index: PackageIndex) -> PackageIndex:
        members = tuple(
            IndexedMember(m.name, len(forged), sha256(forged)) if m.name == "public-key.txt" else m
            for m in index.members
        )
        return replace(index, members=members)

    index = resigned(exported, exported.signer, edit)
    path = rezip(
        exported.path,
        tmp_path / "p.zip",
        lambda name, data: (
            index if name == INDEX_NAME else forged if name == "public-key.txt" else data
        ),
    )
    assert verify(path) == (
        1,
        f"FAILED: public-key.txt: does not name the package's signing key"
        f" {exported.signer.fingerprint}",
    )
    with pytest.raises(ValueError, match="line 2: the public key is not the one of"):
        public_keys_in_text(text)


def test_duplicate_and_invalid_member_names_fail_naming_them(
    exported: Exported, tmp_path: Path
) -> None:
    with pytest.warns(UserWarning, match="Duplicate"):
        path = rezip(exported.path, tmp_path / "twice.zip", add=(("README.md", b"again"),))
    assert verify(path) == (1, "FAILED: README.md: appears twice in the package")
    for name in ("../evil.html", ".hidden", "offline/", "a//b"):
        path = rezip(exported.path, tmp_path / "bad.zip", add=((name, b"x"),))
        code, out = verify(path)
        assert code == 1
        assert out.startswith(f"FAILED: {name}: not a valid member name: "), out


def test_a_package_of_another_case_than_asked_fails_naming_the_index(exported: Exported) -> None:
    assert verify(exported.path, "--case", "case-2") == (
        1,
        f"FAILED: {INDEX_NAME}: the package is of case {CASE}, not case-2",
    )
